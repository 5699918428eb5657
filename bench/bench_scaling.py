"""Per-step cost as runs get longer (10 to 100,000 steps) and wider (2 to 1,000 tasks).

A step must cost the same whatever the run's length or task count: no per-step work may
grow with either (a copied run queue, a scan of all tasks at every clock tick ...).
Generated YAML scenarios, direct driver, ``random`` strategy; each size runs enough times
for ~``--budget`` steps in all, best of ``--rounds``. One JSON line per size, then one
summary line per series with ``max_over_min`` (target: <= 2).

Series:

- ``steps``: 2 tasks looping ``lock m / yield / unlock m`` on one mutex, 10 ... 100,000
  steps per run. ``ns_per_step`` is the whole run (kernel setup, trace hash and report
  included), so the shortest runs carry a fixed per-run cost, reported alone as
  ``run_overhead_us`` (the same two tasks running one step each); the summary is given
  over all sizes and over runs of 100 steps and more.
- ``tasks-locks``: N tasks, each pair sharing a mutex (``lock m{i//2} / yield / unlock``),
  about 100,000 steps per run: the same contention per task at every N, and up to N
  runnable tasks to choose from.
- ``tasks-timers``: N tasks sleeping 1..7 ticks in a loop: the clock advances all the time
  (the run queue empties, timers fire, the hung-task watchdog looks).

Usage: ``.venv/bin/python bench/bench_scaling.py [--budget STEPS] [--rounds R]``
"""

from __future__ import annotations

import argparse

import _util  # noqa: F401  (puts the repo on sys.path)
from _util import best_of, emit, write_yaml

from vmemu._run import run
from vmemu._scenario import load_scenario

BIG = 10**9
LIMITS = f"limits: {{steps: {BIG}, ticks: {BIG}, hung_task_timeout: {BIG}}}\n"


def loop_scenario(tasks: int, reps: int) -> str:
    """``tasks`` tasks, each ``reps`` times: lock m{i//2}, yield, unlock (4-5 steps)."""
    body = ("      - lock: \"m{i//2}\"\n      - yield\n      - unlock: \"m{i//2}\"\n"
            if reps == 1 else
            f"      - repeat: {reps}\n        do:\n          - lock: \"m{{i//2}}\"\n"
            "          - yield\n          - unlock: \"m{i//2}\"\n")
    return write_yaml(f"loop-{tasks}-{reps}", (
        f"name: loop\n{LIMITS}locks: {{m: {{kind: mutex, count: {(tasks + 1) // 2}}}}}\n"
        f"tasks:\n  w:\n    count: {tasks}\n    steps:\n{body}"))


def timer_scenario(tasks: int, reps: int) -> str:
    lines = [f"name: timers\n{LIMITS}tasks:"]
    for i in range(tasks):
        lines.append(f"  w{i}:\n    - repeat: {reps}\n      do:\n        - sleep: {i % 7 + 1}\n"
                     "        - yield")
    return write_yaml(f"timers-{tasks}-{reps}", "\n".join(lines) + "\n")


def one_step_scenario(tasks: int) -> str:
    return write_yaml(f"one-{tasks}", f"name: one\n{LIMITS}tasks:\n  w:\n    count: {tasks}\n"
                      "    steps: [yield]\n")


def measure(path: str, budget: int, rounds: int) -> tuple[int, float]:
    """(steps per run, best seconds per run), over enough runs for ~budget steps."""
    sc = load_scenario(path)
    probe = run(sc, seed=0, driver="direct")
    assert probe.verdict == "ok", (path, probe.verdict, probe.message)
    n = max(1, budget // probe.steps)

    def go() -> None:
        for s in range(n):     # results are dropped at once: no memory growth to time
            run(sc, seed=s, driver="direct")
    t = best_of(rounds, go=go)
    return probe.steps, t["go"] / n


def series(name: str, rows: list[dict], key: str) -> None:
    values = [r[key] for r in rows]
    emit(bench="scaling", series=name, summary=True, metric=key,
         min=min(values), max=max(values), max_over_min=max(values) / min(values),
         target=2.0, meets_target=max(values) / min(values) <= 2.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=200_000, help="steps per size and round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    rows = []
    _, setup = measure(one_step_scenario(2), args.budget // 10, args.rounds)
    emit(bench="scaling", series="steps", run_overhead_us=setup * 1e6,
         note="one run of 2 tasks doing one step each: kernel, strategy, trace, report")
    for reps in (1, 12, 125, 1250, 12500):
        steps, per_run = measure(loop_scenario(2, reps), args.budget, args.rounds)
        row = dict(bench="scaling", series="steps", tasks=2, steps=steps,
                   ns_per_step=per_run * 1e9 / steps)
        emit(**row)
        rows.append(row)
    series("steps", rows, "ns_per_step")
    series("steps>=100", [r for r in rows if r["steps"] >= 100], "ns_per_step")

    for name, make in (("tasks-locks", loop_scenario), ("tasks-timers", timer_scenario)):
        rows = []
        for tasks in (2, 10, 100, 1000):
            reps = max(1, 25_000 // tasks)
            steps, per_run = measure(make(tasks, reps), args.budget, args.rounds)
            row = dict(bench="scaling", series=name, tasks=tasks, steps=steps,
                       ns_per_step=per_run * 1e9 / steps)
            emit(**row)
            rows.append(row)
        series(name, rows, "ns_per_step")


if __name__ == "__main__":
    main()
