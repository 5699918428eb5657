"""ABBA as a Python scenario: tasks are plain async functions using vmemu's API."""

name = "abba-python"
description = "Two tasks take two mutexes in opposite orders (Python tasks)."
expect = "deadlock"
locks = {"A": "mutex", "B": "mutex"}


async def t1(ctx):
    async with ctx.lock("A"):
        await ctx.yield_()
        async with ctx.lock("B"):
            pass


async def t2(ctx):
    async with ctx.lock("B"):
        await ctx.yield_()
        async with ctx.lock("A"):
            pass


tasks = {"t1": t1, "t2": t2}
