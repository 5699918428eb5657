"""Running scenarios: build a kernel, drive it, and package a :class:`Result`.

This is the seam between the public API / CLI and the kernel. A run is a pure function
of (scenario, fault plan, strategy answers); the driver only changes how tasks resume.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Callable

from ._errors import DivergenceError, TraceError, UserError, did_you_mean
from ._kernel._metrics import run_metrics
from ._kernel.context import TaskContext
from ._kernel.drivers import DRIVERS
from ._kernel.drivers.direct import run_direct
from ._kernel.interp import run_steps
from ._kernel.kernel import Kernel
from ._kernel.task import Task
from ._result import Result
from ._scenario import load_scenario
from ._scenario.model import Scenario, TaskSpec
from ._strategies import ReplayStrategy, make_strategy
from ._strategies.base import Strategy
from ._trace import Trace


def _as_scenario(scenario: Scenario | str | os.PathLike) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(str(scenario))


def _load_faults(faults: Any) -> Any:
    if faults is None or not isinstance(faults, (str, os.PathLike)):
        return faults
    from ._faults import load_fault_plan
    return load_fault_plan(str(faults))


def _body(k: Kernel, spec: TaskSpec) -> Callable[[Task], Any]:
    if not spec.flags and (spec.fn is None or inspect.iscoroutinefunction(spec.fn)):
        # No flag scope to enter: the task's coroutine is the steps' (or the async
        # function's) own, which saves a delegation level on every scheduling point.
        if spec.fn is None:
            return lambda t: run_steps(TaskContext(k, t), spec.steps)
        return lambda t: spec.fn(TaskContext(k, t))

    async def body(t: Task) -> None:
        ctx = TaskContext(k, t)
        with ctx.flags(*spec.flags):
            if spec.fn is not None:
                await spec.fn(ctx)
            else:
                await run_steps(ctx, spec.steps)
    return body


def new_kernel(scenario: Scenario, strategy: Strategy, *, faults: Any = None,
               log: Callable[[list], None] | None = None, observers: Any = ()) -> Kernel:
    """A kernel with the scenario's tasks (and kswapd) created, ready to be driven.

    ``observers`` (e.g. lockdep's graph builder) are attached before any task exists.
    """
    k = Kernel(scenario, strategy, faults=faults, log=log)
    k.observers.extend(observers)
    _populate(k, scenario)
    return k


def reset_kernel(k: Kernel, strategy: Strategy) -> Kernel:
    """``k`` made ready for another run of its scenario under ``strategy``: as
    :func:`new_kernel` would build it without observers (an exploration reuses one
    kernel per worker; observers, such as lockdep's, are per run and not kept)."""
    # A task refers to its root frame, its coroutine and its exit event, and each of
    # them back to the task: cutting those links frees the last run's tasks by their
    # refcounts, where the cyclic GC would have had to find them (on abba_ordered, a
    # collection every ~30 schedules, a tenth of an exploration's time).
    for t in k.tasks:
        # (A coroutine left parked for good runs again when dropped here, as Python
        # closes it: as its own task, and while the last run's state is still there.)
        k.current = t
        t.coro = t.exited = None
        t.stack.clear()
    if k.mm is not None:
        k.mm.detach()
    k._reset(strategy)
    _populate(k, k.scenario)
    return k


def _populate(k: Kernel, scenario: Scenario) -> None:
    if k.initial is None:     # (a kernel's first run: its bodies serve every reset)
        k.body_of = lambda spec: _body(k, spec)
        # `start: spawned` tasks start when a `spawn` step creates them.
        k.initial = [(spec, _body(k, spec)) for spec in scenario.tasks if not spec.spawned]
    add = k.add_task
    for spec, body in k.initial:
        add(spec.name, body, spec, spec.start, spec.daemon)
    if k.mm is not None:
        k.mm.start()


def _check_driver(driver: str) -> None:
    if driver not in DRIVERS:
        raise UserError(f"unknown driver {driver!r}" + did_you_mean(driver, DRIVERS)
                        + f"; choose one of {', '.join(DRIVERS)}", key="--driver")


def _resolve_strategy(strategy: str | Strategy, seed: int, params: dict[str, Any]) -> Strategy:
    if isinstance(strategy, Strategy):
        return strategy
    from ._bounds import MAX_SEED
    # (as the command line's --seed: a seed=-1 or 2**63 ran, then its trace was refused)
    if type(seed) is not int or not 0 <= seed <= MAX_SEED:
        raise UserError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return make_strategy(strategy, seed, **params)


def _check_no_running_loop(driver: str) -> None:
    """``run`` starts an event loop of its own (but for the direct driver): inside a
    running one it crashed that loop (asyncio inside trio: a TrioInternalError) or raised
    a bare RuntimeError. Say what to do instead."""
    if driver == "direct":
        return
    import sniffio
    try:
        host = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return
    raise UserError(f"vmemu.run() starts an event loop of its own, and this code runs in "
                    f"{host}'s: use `await vmemu.arun(...)` there, or driver='direct'")


def _result(k: Kernel, scenario: Scenario, strategy: Strategy, faults: Any,
            driver: str) -> Result:
    if k.error is not None:
        raise k.error
    assert k.outcome is not None
    o = k.outcome
    strategy.ran(len(k.tape))
    strat_name = getattr(strategy, "recorded", None) or strategy.name
    faults_path = getattr(faults, "path", None)
    # trace_hash=None: hashed when first read (LazyField), as many runs never are. The
    # tape and events are the kernel's own lists: it is done with them, so no copies;
    # it gets new ones (below), so that nothing can add to this trace once it is made
    # (a task left parked for good runs again when Python closes its coroutine).
    trace = Trace(
        scenario=scenario.path, scenario_hash=scenario.content_hash,
        scenario_name=scenario.name, strategy=strat_name, seed=strategy.seed,
        tape=k.tape, events=k.events, verdict=o.verdict, trace_hash=None,
        steps=k.steps, ticks=k.now, params=strategy.params(),
        faults=faults_path, faults_hash=getattr(faults, "content_hash", None),
        scenario_abspath=scenario.abspath or os.path.abspath(scenario.path),
        faults_abspath=os.path.abspath(faults_path) if faults_path else "",
    )
    k.tape, k.events = [], []
    r = Result(verdict=o.verdict, message=o.message, scenario=scenario,
               strategy=strat_name, seed=strategy.seed, steps=k.steps, ticks=k.now,
               trace_hash=None, tasks=_final_states(k.final_tasks, o), cycle=k.final_cycle,
               trace=trace,
               culprit=o.task, faults=faults_path, driver=driver)
    if k.mm is not None:
        r.extra["memory"] = k.mm.snapshot()   # pages never move while tasks unwind
    r.extra["metrics"] = run_metrics(k.mm)
    return r


#: The state reported for the task whose own step ended the run (it did not finish).
_CULPRIT_STATE = {"bug": "failed", "assertion": "failed", "oom": "failed",
                  "livelock": "running"}


def _final_states(tasks: list[dict[str, Any]], o: Any) -> list[dict[str, Any]]:
    """The task reports, with the culprit of a bug, a failed assertion, an unhandled
    allocation failure or a livelock it was running into (step budget, soft lockup) shown
    as ``failed`` / ``running`` rather than ``done``."""
    state = _CULPRIT_STATE.get(o.verdict)
    if state is None or o.task is None:
        return tasks
    return [{**t, "state": state} if t["name"] == o.task and t["state"] == "done" else t
            for t in tasks]


def run(scenario: Scenario | str | os.PathLike, *, seed: int = 0,
        strategy: str | Strategy = "random", faults: Any = None, driver: str = "trio",
        log: Callable[[list], None] | None = None, observers: Any = (),
        **params: Any) -> Result:
    """Run a scenario once, synchronously, and return its :class:`Result`.

    Args:
        scenario: a loaded :class:`Scenario` or a path to a scenario file.
        seed: the strategy's seed.
        strategy: a strategy name (``random``, ``pct`` ...) or a Strategy instance.
        faults: a fault plan path or object, or None.
        driver: ``trio`` (default), ``direct`` or ``asyncio`` (anyio on asyncio).
        log: called with every event (the CLI's structlog hook).
        observers: objects told of every lock operation (see docs/internals.md).
        **params: strategy parameters (e.g. ``depth=3`` for pct).
    """
    _check_driver(driver)
    _check_no_running_loop(driver)
    sc = _as_scenario(scenario)
    plan = _load_faults(faults)
    strat = _resolve_strategy(strategy, seed, params)
    k = new_kernel(sc, strat, faults=plan, log=log, observers=observers)
    if driver == "direct":
        run_direct(k)
    elif driver == "asyncio":
        import asyncio

        from ._kernel.drivers.anyio_driver import run_anyio
        # anyio runs on a plain asyncio loop; asyncio.run costs less per run than anyio.run.
        asyncio.run(run_anyio(k))
    else:
        import trio

        from ._kernel.drivers.trio_driver import run_trio
        # Ctrl-C only at a checkpoint of the loop, which then unwinds every task cleanly.
        trio.run(run_trio, k, restrict_keyboard_interrupt_to_checkpoints=True)
    return _result(k, sc, strat, plan, driver)


async def arun(scenario: Scenario | str | os.PathLike, *, seed: int = 0,
               strategy: str | Strategy = "random", faults: Any = None,
               driver: str | None = None, log: Callable[[list], None] | None = None,
               observers: Any = (), **params: Any) -> Result:
    """Like :func:`run`, awaited inside a running trio or asyncio program.

    Emulated tasks become tasks of the host loop. ``driver=None`` picks by the running
    async library: ``trio`` under trio, ``asyncio`` (the anyio driver) anywhere else.
    ``direct`` runs the whole schedule without yielding to the host loop.
    Cancelling the surrounding scope cancels the run (the cancellation propagates).
    """
    import sniffio
    host = sniffio.current_async_library()
    if driver is None:
        driver = "trio" if host == "trio" else "asyncio"
    _check_driver(driver)
    if driver == "trio" and host != "trio":
        raise UserError(f"driver 'trio' needs a trio host, but this is {host}; pass "
                        "driver='asyncio' or leave driver out", key="driver")
    sc = _as_scenario(scenario)
    plan = _load_faults(faults)
    strat = _resolve_strategy(strategy, seed, params)
    k = new_kernel(sc, strat, faults=plan, log=log, observers=observers)
    if driver == "trio":
        from ._kernel.drivers.trio_driver import run_trio
        await run_trio(k)
    elif driver == "asyncio":
        from ._kernel.drivers.anyio_driver import run_anyio
        await run_anyio(k)
    else:
        run_direct(k)
    return _result(k, sc, strat, plan, driver)


def _find(path: str, abspath: str, base: str) -> str:
    """Locate a file named by a trace: as given, absolute, or beside the trace."""
    for cand in (path, abspath, os.path.join(base, path)):
        if cand and os.path.exists(cand):
            return cand
    return path


def replay(trace: Trace | str | os.PathLike, *, driver: str = "trio",
           log: Callable[[list], None] | None = None) -> Result:
    """Replay a saved trace; raises :class:`DivergenceError` if it no longer fits.

    The scenario is re-read from disk; if it changed, the replay either still matches the
    recorded events (and succeeds) or the first differing step is named in the error.
    """
    _check_driver(driver)
    trace_path = None
    if not isinstance(trace, Trace):
        trace_path = str(trace)
        trace = Trace.load(trace_path)
    base = os.path.dirname(trace_path or ".")
    try:
        sc = load_scenario(_find(trace.scenario, trace.scenario_abspath, base))
        plan = None
        if trace.faults:
            plan = _load_faults(_find(trace.faults, trace.faults_abspath, base))
    except UserError as e:
        if trace_path is None:
            raise
        # Name the trace too: the file that is wrong was named by it, not by the user.
        raise TraceError(f"cannot replay it: {e}", file=trace_path) from None

    def where(t: Any) -> str:
        if t is None:
            return ""
        f = t.stack[-1]
        return f" (after {t.name} at {f.loc}: {f.what})" if f.loc else f" (after {t.name})"

    strat = ReplayStrategy(trace.tape, where, recorded=trace.strategy, seed=trace.seed)
    strat.params = lambda: dict(trace.params)  # type: ignore[method-assign]
    try:
        result = run(sc, strategy=strat, faults=plan, driver=driver, log=log)
        _compare_events(trace, result, where)
        if not strat.finished():
            raise DivergenceError(
                f"replay diverged: the run ended after {strat.pos} of the trace's "
                f"{len(trace.tape)} decisions; the trace was edited, or the scenario or "
                "fault plan changed since it was saved")
    except DivergenceError as e:
        if trace_path is None or e.file is not None:
            raise
        raise DivergenceError(e.bare, file=trace_path, key=e.key) from None
    result.trace_path = trace_path
    return result


def _compare_events(trace: Trace, result: Result, where: Any) -> None:
    rec, got = trace.events, result.trace.events
    if result.trace_hash == trace.trace_hash:
        return
    for i, (a, b) in enumerate(zip(rec, got)):
        if a != b:
            break
    else:
        i = min(len(rec), len(got))
    def show(ev: list | None) -> str:
        if ev is None:
            return "nothing"
        tick, task, op, arg, line = ev
        return f"tick {tick}: {task} {op}{' ' + str(arg) if arg is not None else ''}" + \
            (f" (line {line})" if line else "")
    a = rec[i] if i < len(rec) else None
    b = got[i] if i < len(got) else None
    raise DivergenceError(
        f"replay diverged at event {i + 1}: the trace recorded [{show(a)}] but the run did "
        f"[{show(b)}] in {result.scenario.path}; the scenario or fault plan changed since "
        "the trace was saved")
