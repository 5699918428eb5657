"""``explore --jobs 2`` and ``--cluster local:2`` against ``--jobs 1``, from the command line.

Each measurement is the wall time of a whole ``vmemu explore`` command (a new process:
interpreter start, imports, worker or cluster start-up, the schedules, the report), on a
scenario that never fails (contract ``abba_ordered``), the default strategy and driver,
a fixed number of schedules, so that every command does the same work. Rounds
alternate the commands; the ratio of the medians is printed, with its range over rounds.

Targets on 2 cores: ``--jobs 2`` >= 1.7x ``--jobs 1`` at 20,000 schedules;
``--cluster local:2`` >= 1.5x at 100,000 schedules (``--cluster`` rows need
``vmemu[dask]``; ``--no-cluster`` skips them). A ``jobs_in_process`` row times
``vmemu.explore`` called repeatedly in one process: its first, cold call and its warm best,
separately (the command-line rows are all cold).

The machine is shared: a control row runs the same CPU-bound loop in one process and in
two, side by side; its ratio is the most any two-process command could reach in that
minute (below 2 when another program takes a core).

Usage: ``.venv/bin/python bench/bench_jobs.py [--rounds R] [--no-cluster]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import _util  # noqa: F401  (puts the repo on sys.path)
from _util import CONTRACT, ROOT, emit

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
BURN = "import sys\ns = 0\nfor i in range(int(sys.argv[1])): s += i\n"


def _wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr}")
    return time.perf_counter() - t0


def _control(n: int) -> float:
    """One process burning 2n against two burning n each, side by side: the ceiling."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", BURN, str(2 * n)], env=ENV)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    ps = [subprocess.Popen([sys.executable, "-c", BURN, str(n)], env=ENV) for _ in range(2)]
    for p in ps:
        p.wait()
    return one / (time.perf_counter() - t0)


def _compare(label: str, runs: int, rounds: int, other: list[str], target: float,
             store: str) -> None:
    base = [sys.executable, "-m", "vmemu", "explore", str(CONTRACT / "abba_ordered.yaml"),
            "--runs", str(runs), "--store", store]
    one, two, ctl = [], [], []
    for _ in range(rounds):
        one.append(_wall(base + ["--jobs", "1"]))
        two.append(_wall(base + other))
        ctl.append(_control(8_000_000))
    ratios = [a / b for a, b in zip(one, two)]
    r = statistics.median(one) / statistics.median(two)
    emit(bench="jobs", compare=label, runs=runs, rounds=rounds,
         jobs1_s=round(statistics.median(one), 3), other_s=round(statistics.median(two), 3),
         jobs1_schedules_per_s=round(runs / statistics.median(one)),
         other_schedules_per_s=round(runs / statistics.median(two)),
         ratio=r, ratio_range=[round(min(ratios), 2), round(max(ratios), 2)],
         control_two_process_ratio=round(statistics.median(ctl), 2), target=target,
         meets_target=r >= target)


def _in_process(runs: int, rounds: int) -> None:
    """``vmemu.explore(..., jobs=J)`` called again and again in one process: the first call
    (a fresh forkserver and workers) and the best of the later, warm ones, separately.
    A command line always pays the first; a long-lived program (the pytest plugin, a
    notebook) pays it once."""
    import vmemu
    path = str(CONTRACT / "abba_ordered.yaml")
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(rounds):
        for jobs in (1, 2):
            t0 = time.perf_counter()
            vmemu.explore(path, runs=runs, jobs=jobs)
            times[jobs].append(time.perf_counter() - t0)
    first = {j: t[0] for j, t in times.items()}
    warm = {j: min(t[1:]) for j, t in times.items()}
    emit(bench="jobs_in_process", compare="--jobs 2", runs=runs, rounds=rounds,
         first_jobs1_s=round(first[1], 3), first_jobs2_s=round(first[2], 3),
         first_ratio=round(first[1] / first[2], 3),
         warm_best_jobs1_s=round(warm[1], 3), warm_best_jobs2_s=round(warm[2], 3),
         warm_ratio=round(warm[1] / warm[2], 3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-cluster", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmemu-bench-") as tmp:
        store = os.path.join(tmp, "c.sqlite")
        _compare("--jobs 2", 20_000, args.rounds, ["--jobs", "2"], 1.7, store)
        _in_process(20_000, max(args.rounds, 2))
        if not args.no_cluster:
            _compare("--cluster local:2", 100_000, args.rounds,
                     ["--cluster", "local:2"], 1.5, store)


if __name__ == "__main__":
    main()
