"""``explore --jobs 2`` against ``--jobs 1``: schedules per second on a scenario that never
fails, a fixed number of schedules (so both do exactly the same work).

Measured through the API (``vmemu.explore``), the default strategy (portfolio) and
driver (direct), in this process: ``jobs=1`` runs in it, ``jobs=2`` starts two worker
processes (their start-up is part of the time: that is what a user waits for). Rounds
alternate the two. The first round is reported on its own (``cold_*``): it is the one a
user waits for, as ``--jobs 2`` then starts the forkserver and its workers from nothing
(later rounds reuse the forkserver). The warm figures are the best of the other rounds.
Target on 2 cores: ratio >= 1.7 (both reported; the cold one is the stricter).

Usage: ``.venv/bin/python bench/bench_jobs.py [--runs N] [--rounds R] [--scenario PATH]``
"""

from __future__ import annotations

import argparse
import os

import _util  # noqa: F401  (puts the repo on sys.path)
from _util import CONTRACT, emit, timings

from vmemu._explore import explore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=str(CONTRACT / "abba_ordered.yaml"))
    ap.add_argument("--runs", type=int, default=60_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    results = {}

    def go(jobs: int) -> None:
        x = explore(args.scenario, runs=args.runs, jobs=jobs)
        assert x.verdict == "ok" and x.schedules == args.runs, (x.verdict, x.schedules)
        results[jobs] = x.result.trace_hash

    # --jobs 2 first: its cold round then also pays for whatever the first exploration
    # of a process loads, on top of the forkserver (the stricter way round).
    t = timings(max(2, args.rounds), jobs2=lambda: go(2), jobs1=lambda: go(1))
    assert results[1] == results[2]          # the same answer, whatever the job count
    cold1, cold2 = args.runs / t["jobs1"][0], args.runs / t["jobs2"][0]
    one, two = args.runs / min(t["jobs1"][1:]), args.runs / min(t["jobs2"][1:])
    emit(bench="jobs", scenario=os.path.basename(args.scenario), runs=args.runs,
         cpus=len(os.sched_getaffinity(0)),
         cold_jobs1_schedules_per_s=round(cold1), cold_jobs2_schedules_per_s=round(cold2),
         cold_ratio=cold2 / cold1, warm_rounds=len(t["jobs1"]) - 1,
         jobs1_schedules_per_s=round(one), jobs2_schedules_per_s=round(two),
         ratio=two / one, target=1.7, meets_target=min(two / one, cold2 / cold1) >= 1.7)


if __name__ == "__main__":
    main()
