"""Schedules per second on small scenarios (contract abba and dining philosophers).

Three ways to run N schedules, alternated, best of ``--rounds``:

- ``direct``: ``vmemu.run(scenario, seed=i, driver="direct")`` in a loop;
- ``trio``: the same on the trio driver (``ratio_direct_vs_trio``);
- ``explore``: ``vmemu.explore(..., runs=N, keep_going=True, minimize=False)`` on the
  direct driver, ``random`` strategy: the exploration engine (schedule stream, signatures,
  dedup) over the bare loop (``ratio_explore_vs_loop``; 1.0 means no overhead).

Usage: ``.venv/bin/python bench/bench_schedules.py [--runs N] [--rounds R]``
"""

from __future__ import annotations

import argparse

import _util  # noqa: F401  (puts the repo on sys.path)
from _util import CONTRACT, best_of, emit

from vmemu._explore import explore
from vmemu._run import run
from vmemu._scenario import load_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n = args.runs
    for name in ("abba", "dining_philosophers"):
        sc = load_scenario(str(CONTRACT / f"{name}.yaml"))

        def loop(driver: str, count: int) -> None:
            for i in range(count):
                run(sc, seed=i, strategy="random", driver=driver)

        def engine() -> None:
            x = explore(sc, runs=n, strategy="random", keep_going=True, minimize=False)
            assert x.schedules == n

        nt = max(1, n // 5)     # trio is several times slower: fewer schedules
        t = best_of(args.rounds, direct=lambda: loop("direct", n), trio=lambda: loop("trio", nt),
                    explore=engine)
        direct, trio_rate, engine_rate = n / t["direct"], nt / t["trio"], n / t["explore"]
        emit(bench="schedules", scenario=name, runs=n,
             direct_schedules_per_s=round(direct), trio_schedules_per_s=round(trio_rate),
             explore_schedules_per_s=round(engine_rate),
             ratio_direct_vs_trio=direct / trio_rate, ratio_explore_vs_loop=engine_rate / direct)


if __name__ == "__main__":
    main()
