"""Schedules per second of ``explore``, against the least any schedule can cost.

The target row (issue 15): ``explore`` of contract ``abba_ordered`` (it never fails, so
every schedule runs to the end), in this process, direct driver, ``random`` strategy,
coverage counted, divided by a *bare coroutine loop* that does per schedule what a
schedule minimally is: seed a PRNG for it (``random.Random(seed)``: every schedule has
its own, independent seed), build one coroutine per task, and run as many steps as an
``abba_ordered`` schedule does, each a random pick among the live coroutines
(``getrandbits``) and a ``send()``. Target: ratio >= 0.45. Rounds alternate the two; the
ratio of the best rounds is printed, with the range over rounds.

Also printed, for reference: the same for the default strategy (portfolio: random and
PCT alternating), and a plain ``vmemu.run`` loop (what each schedule would cost without
the exploration's fast path: a Result per run).

Usage: ``.venv/bin/python bench/bench_schedules.py [--runs N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import types

import _util  # noqa: F401  (puts the repo on sys.path)
from _util import CONTRACT, emit

from vmemu._explore import explore
from vmemu._run import run
from vmemu._scenario import load_scenario


@types.coroutine
def _step():
    yield


async def _task(n: int) -> None:
    for _ in range(n):
        await _step()


def bare_loop(count: int, steps: int, tasks: int) -> None:
    """``count`` schedules of ``steps`` steps over ``tasks`` coroutines, a random pick per
    step (one bit for two candidates, as vmemu's random strategy draws)."""
    per = max(1, steps // tasks)
    for i in range(count):
        bits = random.Random(i).getrandbits
        live = [_task(per) for _ in range(tasks)]
        while live:
            n = len(live)
            j = 0 if n == 1 else bits(1) if n == 2 else (bits(30) * n) >> 30
            try:
                live[j].send(None)
            except StopIteration:
                del live[j]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    n = args.runs
    path = str(CONTRACT / "abba_ordered.yaml")
    sc = load_scenario(path)
    sample = [run(sc, seed=s, driver="direct") for s in range(200)]
    steps = round(statistics.mean(r.steps for r in sample))
    tasks = len(sc.tasks)

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def engine(strategy: str) -> None:
        x = explore(sc, runs=n, strategy=strategy, minimize=False)
        assert x.schedules == n and x.verdict == "ok"

    def loop() -> None:
        for i in range(n // 4):
            run(sc, seed=i, driver="direct")

    rows: dict[str, list[float]] = {"bare": [], "random": [], "portfolio": [], "run": []}
    for _ in range(args.rounds):
        rows["bare"].append(n / timed(lambda: bare_loop(n, steps, tasks)))
        rows["random"].append(n / timed(lambda: engine("random")))
        rows["portfolio"].append(n / timed(lambda: engine("portfolio")))
        rows["run"].append((n // 4) / timed(loop))
    bare, rnd, port, plain = (max(rows[k]) for k in ("bare", "random", "portfolio", "run"))
    ratios = [r / b for r, b in zip(rows["random"], rows["bare"])]
    emit(bench="schedules", scenario="abba_ordered", runs=n, steps_per_schedule=steps,
         bare_loop_per_s=round(bare), explore_random_per_s=round(rnd),
         explore_portfolio_per_s=round(port), run_loop_per_s=round(plain),
         ratio=rnd / bare, ratio_range=[round(min(ratios), 3), round(max(ratios), 3)],
         ratio_portfolio=port / bare, target=0.45, meets_target=rnd / bare >= 0.45)


if __name__ == "__main__":
    main()
