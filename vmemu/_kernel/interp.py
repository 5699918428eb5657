"""The step interpreter: runs a scenario file's steps through a :class:`TaskContext`.

Steps that touch shared state are scheduling points (inside the context's operations);
control flow (``if``, ``while``, ``repeat``, ``call``, ``assert``) is not, but every
executed step is charged to the step budget so that no loop can spin forever.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from .._scenario.model import Step
from .context import TaskContext
from .sync import Lock
from .task import Frame, VerdictSignal

#: Deepest routine nesting before the run ends with a ``bug`` (a kernel stack overflow).
MAX_CALL_DEPTH = 32


async def run_steps(ctx: TaskContext, steps: tuple[Step, ...], times: int = 1,
                    charge: bool = False) -> None:
    """Execute ``steps`` in order in the current frame of ``ctx``'s task, ``times`` times,
    charging a step to the budget before each pass when ``charge`` is set (``repeat``).

    Loops pass ``times`` rather than calling this once per pass: a coroutine per pass
    would cost more than a short body's steps.
    """
    t = ctx.task
    k = ctx.k
    frame = t.stack[-1]
    faults = k.faults
    handlers = _HANDLERS
    for _ in range(times):
        if charge:
            k.count_step(t)
        for step in steps:
            frame.loc = step.loc
            frame.step = step
            if faults is not None:
                action = faults.at("step", t)
                if action is not None:
                    await k.apply_action(t, action)
            await handlers[step.op](ctx, step)


def _eval(ctx: TaskContext, step: Step) -> int:
    try:
        return step.expr(ctx.vars)
    except ZeroDivisionError:
        raise VerdictSignal("bug", f"division by zero in {step.expr.source!r} at {step.loc}")


# The hottest handlers return the primitive's awaitable instead of awaiting it in a
# coroutine of their own: one coroutine frame less per lock, unlock and yield step.
# They also look the lock up themselves (ctx.lock() only when that fails, for its error).
def _lock(ctx: TaskContext, s: Step) -> Awaitable[None]:
    lock = ctx.k.resources.get(s.target)
    if not isinstance(lock, Lock):
        lock = ctx.lock(s.target)
    return lock._lock("lock")


def _unlock(ctx: TaskContext, s: Step) -> Awaitable[None]:
    lock = ctx.k.resources.get(s.target)
    if not isinstance(lock, Lock):
        lock = ctx.lock(s.target)
    return lock.release()


def _read_lock(ctx: TaskContext, s: Step) -> Awaitable[None]:
    return ctx.rwsem(s.target)._lock("read_lock")


def _read_unlock(ctx: TaskContext, s: Step) -> Awaitable[None]:
    return ctx.rwsem(s.target).release_read()


async def _trylock(ctx: TaskContext, s: Step) -> None:
    lock = ctx.lock(s.target)
    await ctx.k.checkpoint(ctx.task)
    ctx.vars["ok"] = int(lock.try_acquire())


async def _alloc(ctx: TaskContext, s: Step) -> None:
    h = await ctx.alloc(s.n, s.gfp, may_fail=s.may_fail)
    if s.as_ is not None:
        ctx.task.handles[s.as_] = h


async def _free(ctx: TaskContext, s: Step) -> None:
    handles = ctx.task.handles
    if s.target not in handles:
        raise VerdictSignal("bug", f"BUG: {ctx.name}: free of {s.target!r}, which this task "
                            f"does not hold (double free?) at {s.loc}")
    await ctx.free(handles.pop(s.target))


async def _fill(ctx: TaskContext, s: Step) -> None:
    await ctx.fill(s.target, s.n)


async def _io(ctx: TaskContext, s: Step) -> None:
    await ctx.io(s.n)


async def _sleep(ctx: TaskContext, s: Step) -> None:
    await ctx.sleep(s.n)


def _yield(ctx: TaskContext, s: Step) -> Awaitable[None]:
    return ctx.k.checkpoint(ctx.task)


async def _call(ctx: TaskContext, s: Step) -> None:
    t = ctx.task
    if len(t.stack) > MAX_CALL_DEPTH:
        raise VerdictSignal("bug", f"BUG: {t.name}: call depth beyond {MAX_CALL_DEPTH} "
                            f"(kernel stack overflow) calling {s.target} at {s.loc}")
    ctx.k.count_step(t)
    t.stack.append(Frame(s.target, s.loc))
    await run_steps(ctx, ctx.k.scenario.routines[s.target])
    t.stack.pop()


async def _flags(ctx: TaskContext, s: Step) -> None:
    ctx.k.count_step(ctx.task)
    with ctx.flags(*s.flags):
        await run_steps(ctx, s.body)


async def _wait(ctx: TaskContext, s: Step) -> None:
    with_lock = ctx.lock(s.with_lock) if s.with_lock else None
    await ctx.event(s.target).wait(with_lock)


async def _signal(ctx: TaskContext, s: Step) -> None:
    await ctx.event(s.target).signal()


async def _broadcast(ctx: TaskContext, s: Step) -> None:
    await ctx.event(s.target).broadcast()


async def _complete(ctx: TaskContext, s: Step) -> None:
    await ctx.event(s.target).complete()


async def _set(ctx: TaskContext, s: Step) -> None:
    await ctx.k.checkpoint(ctx.task)
    for name, value in s.assign:
        ctx.vars[name] = value
    ctx.k.emit(ctx.task, "set", s.describe()[4:])


async def _add(ctx: TaskContext, s: Step) -> None:
    await ctx.k.checkpoint(ctx.task)
    for name, value in s.assign:
        ctx.vars[name] = ctx.vars.get(name, 0) + value
    ctx.k.emit(ctx.task, "add", s.describe()[4:])


async def _assert(ctx: TaskContext, s: Step) -> None:
    ctx.k.count_step(ctx.task)
    if not _eval(ctx, s):
        shown = ", ".join(f"{n}={ctx.vars.get(n, 0)}" for n in s.expr.names)
        raise VerdictSignal("assertion", f"assertion failed: {s.expr.source!r} at {s.loc}"
                            + (f" ({shown})" if shown else ""))


async def _if(ctx: TaskContext, s: Step) -> None:
    ctx.k.count_step(ctx.task)
    body = s.body if _eval(ctx, s) else s.orelse
    frame = ctx.task.stack[-1]
    await run_steps(ctx, body)
    frame.loc, frame.step = s.loc, s


async def _repeat(ctx: TaskContext, s: Step) -> None:
    frame = ctx.task.stack[-1]
    await run_steps(ctx, s.body, s.n, charge=True)
    frame.loc, frame.step = s.loc, s


async def _while(ctx: TaskContext, s: Step) -> None:
    frame = ctx.task.stack[-1]
    while True:
        frame.loc, frame.step = s.loc, s
        ctx.k.count_step(ctx.task)
        if not _eval(ctx, s):
            break
        await run_steps(ctx, s.body)


async def _point(ctx: TaskContext, s: Step) -> None:
    await ctx.point(s.target)


_HANDLERS: dict[str, Callable[[TaskContext, Step], Awaitable[Any]]] = {
    "lock": _lock, "unlock": _unlock, "read_lock": _read_lock, "read_unlock": _read_unlock,
    "trylock": _trylock, "alloc": _alloc, "free": _free, "fill": _fill, "io": _io,
    "sleep": _sleep, "yield": _yield, "call": _call, "flags": _flags, "wait": _wait,
    "signal": _signal, "broadcast": _broadcast, "complete": _complete, "set": _set,
    "add": _add, "assert": _assert, "if": _if, "repeat": _repeat, "while": _while,
    "point": _point,
}
