"""``await vmemu.arun(...)`` inside asyncio (and trio) programs, through anyio's plugin.

The anyio driver hands the CPU from one emulated task to the next with one-shot batons,
so the host loop never chooses who runs: the same seed gives the same trace whatever
else the host is doing, and a cancelled host scope ends the run instead of hanging it.
"""

from __future__ import annotations

import asyncio
import textwrap

import anyio
import pytest
import sniffio

import vmemu
from conftest import CONTRACT, SPIN, seed_reaching
from vmemu._kernel.drivers.anyio_driver import run_anyio
from vmemu._run import new_kernel
from vmemu._strategies import make_strategy
from vmemu._strategies.base import Strategy

ABBA = str(CONTRACT / "abba.yaml")
ABBA_SEED = seed_reaching(ABBA, "deadlock")  # a schedule that deadlocks
PHILOSOPHERS = str(CONTRACT / "dining_philosophers.yaml")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.fixture
def spin(tmp_path):
    p = tmp_path / "spin.yaml"
    p.write_text(textwrap.dedent(SPIN))
    return vmemu.load(str(p))


@pytest.mark.anyio
async def test_arun_on_the_host_loop_matches_the_sync_run(anyio_backend):
    r = await vmemu.arun(ABBA, seed=ABBA_SEED)
    assert r.verdict == "deadlock"
    assert r.cycle and {c["task"] for c in r.cycle} == {"t1", "t2"}
    # The faster native driver is chosen on trio; anyio's everywhere else.
    assert r.driver == ("trio" if anyio_backend == "trio" else "asyncio")
    assert r.trace_hash == vmemu.run(ABBA, seed=ABBA_SEED, driver="direct").trace_hash


@pytest.mark.anyio
async def test_busy_host_and_concurrent_runs_do_not_change_traces(anyio_backend):
    # Two emulations and a chatty bystander interleave on one host loop; each run's
    # trace is still exactly its sync trace.
    results: dict[int, vmemu.Result] = {}
    chatter = 0

    async def bystander():
        nonlocal chatter
        while True:
            chatter += 1
            await anyio.sleep(0)

    async def one(seed: int):
        results[seed] = await vmemu.arun(PHILOSOPHERS, seed=seed, driver="asyncio")

    async with anyio.create_task_group() as host:
        host.start_soon(bystander)
        async with anyio.create_task_group() as runs:
            for seed in range(4):
                runs.start_soon(one, seed)
        host.cancel_scope.cancel()
    assert chatter > 0
    for seed, r in results.items():
        assert r.trace_hash == vmemu.run(PHILOSOPHERS, seed=seed, driver="direct").trace_hash


@pytest.mark.anyio
async def test_emulated_tasks_are_tasks_of_the_host_loop(anyio_backend, tmp_path):
    p = tmp_path / "who.py"
    p.write_text(textwrap.dedent('''
        import anyio, sniffio
        expect = "ok"
        seen = []

        async def probe(ctx):
            seen.append((sniffio.current_async_library(), anyio.get_current_task().name))
            await ctx.yield_()

        tasks = {"a": probe, "b": probe}
    '''))
    sc = vmemu.load(str(p))
    seen = sc.tasks[0].fn.__globals__["seen"]
    seen.clear()   # the module is cached by content: the other backend ran it too
    r = await vmemu.arun(sc, driver="asyncio")
    assert r.verdict == "ok"
    assert sorted(seen) == [(anyio_backend, "vmemu:a"), (anyio_backend, "vmemu:b")]


def _unwound(coro) -> bool:
    """Has this task's coroutine ended? (A scenario file's task is a generator-based
    coroutine, ``run_steps``; a Python scenario's a native one.)"""
    return getattr(coro, "cr_frame", getattr(coro, "gi_frame", None)) is None


@pytest.mark.anyio
async def test_every_task_is_unwound_when_the_run_ends(anyio_backend):
    # A deadlock leaves every philosopher parked; Killed must unwind all of them, so no
    # coroutine (or host task) outlives the run.
    sc = vmemu.load(PHILOSOPHERS)
    seed = next(s for s in range(100) if vmemu.run(sc, seed=s, driver="direct").failed)
    k = new_kernel(sc, make_strategy("random", seed))
    await run_anyio(k)
    assert k.outcome is not None and k.outcome.verdict == "deadlock"
    assert all(_unwound(t.coro) for t in k.tasks)
    if anyio_backend == "asyncio":
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("vmemu:")]


@pytest.mark.anyio
async def test_cancelling_the_host_scope_mid_run_ends_it(anyio_backend, spin):
    k = new_kernel(spin, make_strategy("random", 0))
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            async def canceller():
                for _ in range(50):     # a few host loop turns: the run is well underway
                    await anyio.sleep(0)
                scope.cancel()
            tg.start_soon(canceller)
            await run_anyio(k)
    assert scope.cancelled_caught
    assert k.outcome is None and 0 < k.steps < 24000   # stopped mid-run, not finished
    assert all(_unwound(t.coro) for t in k.tasks)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_cancelling_one_emulated_task_directly_ends_the_whole_run(anyio_backend, spin):
    # asyncio lets anyone cancel a single task; the run must not wait forever for it.
    count = 0

    def log(_ev: list) -> None:
        nonlocal count
        count += 1
        if count == 100:
            me = asyncio.current_task()
            victim = next(t for t in asyncio.all_tasks()
                          if t.get_name().startswith("vmemu:") and t is not me)
            victim.cancel()

    k = new_kernel(spin, make_strategy("random", 0), log=log)
    with pytest.raises(RuntimeError, match="cancelled from outside the run"):
        await run_anyio(k)
    assert all(_unwound(t.coro) for t in k.tasks)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("vmemu:")]


class _Broken(Strategy):
    name = "broken"

    def pick_task(self, runnable, current):
        raise RuntimeError("strategy bug")

    def pick_bool(self, p, site):  # pragma: no cover - never asked
        return False


@pytest.mark.anyio
async def test_a_vmemu_bug_surfaces_as_an_exception_not_a_verdict(anyio_backend):
    with pytest.raises(RuntimeError, match="strategy bug"):
        await vmemu.arun(ABBA, strategy=_Broken(), driver="asyncio")


@pytest.mark.anyio
async def test_trio_driver_on_asyncio_is_a_one_line_user_error(anyio_backend):
    if sniffio.current_async_library() == "trio":
        r = await vmemu.arun(ABBA, seed=ABBA_SEED, driver="trio")
        assert r.verdict == "deadlock"
        return
    with pytest.raises(vmemu.UserError, match="driver 'trio' needs a trio host") as info:
        await vmemu.arun(ABBA, driver="trio")
    assert "\n" not in str(info.value)


def test_sync_run_on_the_asyncio_driver_leaves_no_loop_behind():
    r = vmemu.run(PHILOSOPHERS, seed=2, driver="asyncio")
    assert r.verdict == vmemu.run(PHILOSOPHERS, seed=2, driver="direct").verdict
    assert r.driver == "asyncio"
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
