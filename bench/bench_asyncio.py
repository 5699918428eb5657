"""Steps per second of the asyncio (anyio) driver against a bare asyncio future ping-pong.

The baseline, measured in this process, is the cheapest possible version of what a
loop-and-task driver does per step: a loop coroutine sets the task's future and awaits
its own; the task sets the loop's future and awaits a fresh one (one *round trip* = two
one-way handoffs). Every line's ``ratio`` is driver steps/s over baseline round trips/s;
``ratio_vs_handoff`` compares with one-way handoffs/s instead (the stricter bar, since
the anyio driver needs at most one handoff per step).

Workloads (one JSON line each, per driver):

- ``yield-4x``: 4 tasks that only yield, random strategy (some steps continue the same
  task, which costs the anyio driver no handoff at all);
- ``switch-every-step``: 2 tasks under a round-robin strategy, so every step is a task
  switch (the worst case: every step pays a handoff);
- ``explore-philosophers``: 200 short runs of a contract YAML scenario, so per-run setup
  (a fresh event loop per sync run) dominates; its steps include YAML control flow.

Rounds alternate the baseline with the workloads (``--repeat`` rounds, best of each).
A kernel step here is one scheduling point (the throughput workloads are Python scenarios,
whose steps are all scheduling points).

Usage: ``.venv/bin/python bench/bench_asyncio.py [--steps N] [--repeat R]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vmemu._run import run  # noqa: E402
from vmemu._scenario import load_scenario  # noqa: E402
from vmemu._strategies.base import Strategy  # noqa: E402

CONTRACT = ROOT.parent / "shared" / "contract"


class RoundRobin(Strategy):
    """Always switch to the next runnable task by tid: every step is a context switch."""

    name = "round-robin"

    def pick_task(self, runnable, current):
        if current is not None:
            for t in runnable:
                if t.tid > current.tid:
                    return t
        return runnable[0]

    def pick_bool(self, p, site):  # pragma: no cover - no faults here
        return False


def ping_pong_round_trips_per_s(n: int) -> float:
    """Bare asyncio: loop <-> task future ping-pong, round trips per second."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        box: dict[str, asyncio.Future] = {}

        async def task() -> None:
            while True:
                f = loop.create_future()
                box["task"] = f
                box["loop"].set_result(None)
                if await f:
                    return

        box["loop"] = loop.create_future()
        tk = loop.create_task(task())
        await box["loop"]              # the task is parked: start timing
        t0 = time.perf_counter()
        for _ in range(n):
            f = box["loop"] = loop.create_future()
            box["task"].set_result(False)
            await f
        dt = time.perf_counter() - t0
        box["loop"] = loop.create_future()
        box["task"].set_result(True)
        await tk
        return n / dt

    return asyncio.run(main())


def scenario_file(folder: Path, name: str, tasks: int, repeat: int) -> Path:
    """A Python scenario of ``tasks`` tasks that only yield: every kernel step is then a
    scheduling point (YAML ``repeat`` loops would also charge control-flow steps, which
    cost no handoff and would flatter the numbers)."""
    p = folder / f"{name}.py"
    p.write_text(f"""
name = "{name}"
expect = "ok"
limits = {{"steps": {tasks * repeat + 1000}}}


async def spin(ctx):
    for _ in range({repeat}):
        await ctx.yield_()

tasks = {{f"t{{i}}": spin for i in range({tasks})}}
""")
    return p


def steps_per_s(sc, driver: str, strategy, seeds: int = 1) -> float:
    t0 = time.perf_counter()
    steps = 0
    for seed in range(seeds):
        strat = strategy() if callable(strategy) else strategy
        r = run(sc, seed=seed, strategy=strat, driver=driver)
        assert r.verdict == "ok" or seeds > 1, r.message
        steps += r.steps
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40_000, help="steps per workload run")
    ap.add_argument("--repeat", type=int, default=3, help="rounds (best of each)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        workloads = [
            ("yield-4x", load_scenario(str(scenario_file(folder, "y4", 4, args.steps // 4))),
             "random", 1),
            ("switch-every-step",
             load_scenario(str(scenario_file(folder, "rr", 2, args.steps // 2))), RoundRobin, 1),
            ("explore-philosophers", load_scenario(str(CONTRACT / "dining_philosophers.yaml")),
             "random", 200),
        ]
        # Every round measures the baseline, then every workload on every driver, so the
        # baseline and the workloads share the machine's moods; the best of each is kept.
        base = 0.0
        best: dict[tuple[str, str], float] = {}
        for _ in range(args.repeat):
            base = max(base, ping_pong_round_trips_per_s(args.steps))
            for name, sc, strategy, seeds in workloads:
                for driver in ("asyncio", "trio", "direct"):
                    sps = steps_per_s(sc, driver, strategy, seeds)
                    best[name, driver] = max(best.get((name, driver), 0.0), sps)
    print(json.dumps({"bench": "asyncio", "workload": "bare-future-ping-pong",
                      "round_trips_per_s": round(base), "handoffs_per_s": round(2 * base),
                      "rounds": args.repeat}), flush=True)
    for (name, driver), sps in best.items():
        print(json.dumps({
            "bench": "asyncio", "workload": name, "driver": driver,
            "steps_per_s": round(sps), "ratio": round(sps / base, 2),
            "ratio_vs_handoff": round(sps / (2 * base), 2),
        }), flush=True)


if __name__ == "__main__":
    main()
