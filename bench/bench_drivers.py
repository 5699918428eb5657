"""Steps per second of the direct and trio drivers, against baselines in this process.

Baselines (the cheapest possible version of what each driver does per step):

- direct: a bare coroutine ``send()`` loop: an ``async def`` that awaits a
  ``types.coroutine`` yielding N times, driven by ``send(None)``. Target: the direct
  driver at >= 0.4x its steps/s.
- trio: a bare ``trio.lowlevel.reschedule`` / ``wait_task_rescheduled`` ping-pong between
  two trio tasks; one round trip (there and back) per step, as the driver's loop task and
  an emulated task do. Target: the trio driver at >= 0.5x.

Workloads (a step is one kernel scheduling point):

- ``yield-1task``: one Python-scenario task that only yields (no strategy call: the
  kernel, the driver and a ``ctx.yield_()``, nothing else);
- ``yield-2tasks``: two such tasks under ``random``: every step asks the strategy;
- ``yaml-locks``: 4 YAML tasks looping ``lock m / yield / unlock m`` (the interpreter,
  mutex handoff, events), for reference only (``target: null``): a step here does the
  interpreter's and the mutex's work on top of the driver's, which no bare ``send()``
  loop does, so its ratio measures the emulator, not the driver. The driver targets
  are judged on the two yield workloads, whose tasks do what the baseline's coroutine
  does: reach a scheduling point.

Only driving is timed: each round's kernel is built before the clock starts (kernel
construction and result packaging are per run, not per step; ``bench_scaling.py``
reports them). Usage: ``.venv/bin/python bench/bench_drivers.py [--steps N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import types
from typing import Callable

import _util  # noqa: F401  (puts the repo on sys.path)
from _util import best_of, emit, write_yaml

import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

from vmemu._kernel.drivers.direct import run_direct
from vmemu._kernel.drivers.trio_driver import run_trio
from vmemu._kernel.kernel import Kernel
from vmemu._run import new_kernel
from vmemu._scenario import load_scenario
from vmemu._scenario.model import Limits, Scenario, TaskSpec
from vmemu._bounds import MAX_STEPS
from vmemu._strategies import make_strategy

# Budgets no run reaches: the most limits.steps accepts (the loader refuses more).
BIG = MAX_STEPS


@types.coroutine
def _bare_park():
    yield


async def _bare_task(n: int) -> None:
    for _ in range(n):
        await _bare_park()


def bare_send_loop(n: int) -> None:
    """The direct driver's baseline: N yields of a coroutine driven by send()."""
    c = _bare_task(n)
    try:
        while True:
            c.send(None)
    except StopIteration:
        pass


def _abort(_: object) -> Abort:
    return Abort.SUCCEEDED


async def _pingpong(n: int) -> None:
    main = current_task()
    partner_task = None

    async def partner() -> None:
        nonlocal partner_task
        partner_task = current_task()
        reschedule(main)
        while True:
            await wait_task_rescheduled(_abort)
            reschedule(main)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(partner)
        await wait_task_rescheduled(_abort)
        for _ in range(n):
            reschedule(partner_task)
            await wait_task_rescheduled(_abort)
        nursery.cancel_scope.cancel()


def bare_trio_pingpong(n: int) -> None:
    """The trio driver's baseline: N round trips between two trio tasks."""
    trio.run(_pingpong, n)


def yield_scenario(tasks: int, steps: int) -> Scenario:
    per_task = steps // tasks

    async def body(ctx) -> None:
        for _ in range(per_task):
            await ctx.yield_()
    return Scenario(name=f"yield-{tasks}", path="<bench>", content_hash="-",
                    limits=Limits(steps=BIG, ticks=BIG, hung_task_timeout=BIG),
                    tasks=tuple(TaskSpec(f"t{i}", fn=body) for i in range(tasks)))


def lock_scenario(steps: int) -> Scenario:
    reps = max(1, steps // 20)   # ~5 steps per iteration and task, 4 tasks
    return load_scenario(write_yaml("locks", (
        f"name: locks\nlimits: {{steps: {BIG}, ticks: {BIG}, hung_task_timeout: {BIG}}}\n"
        "locks: {m: mutex}\ntasks:\n  w:\n    count: 4\n    steps:\n"
        f"      - repeat: {reps}\n        do:\n          - lock: m\n          - yield\n"
        "          - unlock: m\n")))


def drive(sc: Scenario, driver: str) -> tuple[Callable[[], Kernel], Callable[[Kernel], None]]:
    """``(setup, run)`` for :func:`best_of`: a fresh kernel of ``sc`` is built outside the
    clock, and only driving it to its verdict is timed."""
    def setup() -> Kernel:
        return new_kernel(sc, make_strategy("random", 1))

    def go(k: Kernel) -> None:
        if driver == "direct":
            run_direct(k)
        else:
            trio.run(run_trio, k)
        done.append(k)
    done: list[Kernel] = []
    go.done = done  # type: ignore[attr-defined]
    return setup, go


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200_000, help="steps per direct round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    n = args.steps
    nt = max(2_000, n // 10)       # trio is ~10x slower: keep rounds short
    workloads = {"yield-1task": lambda s: yield_scenario(1, s),
                 "yield-2tasks": lambda s: yield_scenario(2, s),
                 "yaml-locks": lock_scenario}
    for driver, steps, baseline, base_name, target in (
            ("direct", n, bare_send_loop, "bare coroutine send() loop", 0.4),
            ("trio", nt, bare_trio_pingpong, "bare trio reschedule ping-pong", 0.5)):
        for name, make in workloads.items():
            setup, go = drive(make(steps), driver)
            t = best_of(args.rounds, baseline=lambda: baseline(steps), driver=(setup, go))
            k = go.done[-1]
            assert k.outcome is not None and k.outcome.verdict == "ok", k.outcome
            drv_rate = k.steps / t["driver"]
            base_rate = steps / t["baseline"]
            goal = None if name == "yaml-locks" else target
            emit(bench="drivers", driver=driver, workload=name, steps=k.steps,
                 steps_per_s=round(drv_rate), ns_per_step=1e9 / drv_rate,
                 baseline=base_name, baseline_per_s=round(base_rate),
                 ratio=drv_rate / base_rate, target=goal,
                 **({"meets_target": drv_rate / base_rate >= goal} if goal is not None
                    else {"note": "reference: interpreter and mutex work per step"}))


if __name__ == "__main__":
    main()
