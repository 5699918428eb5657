"""Per-step cost as runs get longer (10 to 100,000 steps) and wider (2 to 1,000 tasks).

A step must cost the same whatever the run's length or task count: no per-step work may
grow with either (a copied run queue, a scan of all tasks at every clock tick ...).
Generated YAML scenarios, direct driver, ``random`` strategy; each size runs enough times
for ~``--budget`` steps in all, best of ``--rounds``, the sizes of a series interleaved
(round 1 of every size, then round 2 ...). One JSON line per size, then one
summary line per series with ``max_over_min`` (target: <= 2).

Series:

- ``steps``: 2 tasks, each a ``yield`` then a loop of ``lock m / yield / unlock m`` on
  one mutex, 10 ... 100,000 steps per run. ``ns_per_step`` times the driving of the run
  (every step, the verdict and the unwinding), as ``bench_drivers.py`` does; building the
  kernel and packaging the Result are per-run costs, not per-step ones, and are reported
  beside it as ``run_fixed_us``, with ``ns_per_step_whole_run`` (everything ``vmemu.run``
  does, divided by the steps) so that short runs' full price is in plain view. The
  target's summary is over ``ns_per_step``; a second, informative summary is over the
  whole-run figure.
- ``tasks-locks``: N tasks, each pair sharing a mutex (``lock m{i//2} / yield / unlock``),
  about 100,000 steps per run: the same contention per task at every N, and up to N
  runnable tasks to choose from.
- ``tasks-timers``: N tasks sleeping 1..7 ticks in a loop: the clock advances all the time
  (the run queue empties, timers fire, the hung-task watchdog looks).

Usage: ``.venv/bin/python bench/bench_scaling.py [--budget STEPS] [--rounds R]``
"""

from __future__ import annotations

import argparse
import time

import _util  # noqa: F401  (puts the repo on sys.path)
from _util import emit, write_yaml

from vmemu._kernel.drivers.direct import run_direct
from vmemu._run import _result, new_kernel, run
from vmemu._scenario import load_scenario
from vmemu._bounds import MAX_STEPS
from vmemu._strategies import make_strategy

# Budgets no run reaches: the most limits.steps accepts (the loader refuses more).
BIG = MAX_STEPS
LIMITS = f"limits: {{steps: {BIG}, ticks: {BIG}, hung_task_timeout: {BIG}}}\n"


def loop_scenario(tasks: int, reps: int, *, lead: str = "") -> str:
    """``tasks`` tasks, each ``reps`` times: lock m{i//2}, yield, unlock (4-5 steps),
    after the steps in ``lead`` (YAML list items)."""
    body = lead + ("      - lock: \"m{i//2}\"\n      - yield\n      - unlock: \"m{i//2}\"\n"
            if reps == 1 else
            f"      - repeat: {reps}\n        do:\n          - lock: \"m{{i//2}}\"\n"
            "          - yield\n          - unlock: \"m{i//2}\"\n")
    return write_yaml(f"loop-{tasks}-{reps}{'-lead' if lead else ''}", (
        f"name: loop\n{LIMITS}locks: {{m: {{kind: mutex, count: {(tasks + 1) // 2}}}}}\n"
        f"tasks:\n  w:\n    count: {tasks}\n    steps:\n{body}"))


def timer_scenario(tasks: int, reps: int) -> str:
    lines = [f"name: timers\n{LIMITS}tasks:"]
    for i in range(tasks):
        lines.append(f"  w{i}:\n    - repeat: {reps}\n      do:\n        - sleep: {i % 7 + 1}\n"
                     "        - yield")
    return write_yaml(f"timers-{tasks}-{reps}", "\n".join(lines) + "\n")


class Size:
    """One size of a series: its scenario and how many runs make ~``budget`` steps."""

    def __init__(self, path: str, budget: int) -> None:
        self.sc = load_scenario(path)
        probe = run(self.sc, seed=0, driver="direct")
        assert probe.verdict == "ok", (path, probe.verdict, probe.message)
        self.n = max(1, budget // probe.steps)
        self.best: dict[str, float] = {}

    def round(self) -> None:
        """One measurement (runs with seeds 0 .. n-1); the best round is kept:
        ``steps`` (mean per run), ``ns_per_step`` (driving only),
        ``ns_per_step_whole_run`` and ``run_fixed_us`` (build + package)."""
        clock = time.perf_counter
        drive = whole = 0.0
        steps = 0
        for s in range(self.n):
            # What vmemu.run(sc, seed=s, driver="direct") does, with the driving timed
            # apart; the results are dropped at once (no memory growth to time).
            t0 = clock()
            strategy = make_strategy("random", s)
            k = new_kernel(self.sc, strategy)
            t1 = clock()
            run_direct(k)
            t2 = clock()
            _result(k, self.sc, strategy, None, "direct")
            t3 = clock()
            drive += t2 - t1
            whole += t3 - t0
            steps += k.steps
        row = {"steps": steps / self.n, "ns_per_step": drive * 1e9 / steps,
               "ns_per_step_whole_run": whole * 1e9 / steps,
               "run_fixed_us": (whole - drive) * 1e6 / self.n}
        if not self.best or row["ns_per_step"] < self.best["ns_per_step"]:
            self.best = row


def measure_interleaved(paths: list[str], budget: int, rounds: int) -> list[dict[str, float]]:
    """The best round of each size, the sizes measured in turn in every round (so a
    slow spell of the machine is spread over all sizes, not charged to one)."""
    sizes = [Size(p, budget) for p in paths]
    for _ in range(rounds):
        for size in sizes:
            size.round()
    return [size.best for size in sizes]


def series(name: str, rows: list[dict], key: str, target: float | None = 2.0) -> None:
    values = [r[key] for r in rows]
    ratio = max(values) / min(values)
    emit(bench="scaling", series=name, summary=True, metric=key,
         min=min(values), max=max(values), max_over_min=ratio, target=target,
         **({"meets_target": ratio <= target} if target is not None else
            {"note": "for information: the fixed per-run cost spread over few steps"}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=200_000, help="steps per size and round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    lead = "      - yield\n"
    reps_list = (1, 10, 103, 1030, 10300)
    best = measure_interleaved([loop_scenario(2, reps, lead=lead) for reps in reps_list],
                               args.budget, args.rounds)
    rows = []
    for m in best:
        row = dict(bench="scaling", series="steps", tasks=2, steps=round(m["steps"]),
                   ns_per_step=m["ns_per_step"],
                   ns_per_step_whole_run=m["ns_per_step_whole_run"],
                   run_fixed_us=m["run_fixed_us"])
        emit(**row)
        rows.append(row)
    series("steps", rows, "ns_per_step")
    series("steps", rows, "ns_per_step_whole_run", target=None)

    for name, make in (("tasks-locks", loop_scenario), ("tasks-timers", timer_scenario)):
        widths = (2, 10, 100, 1000)
        best = measure_interleaved([make(tasks, max(1, 25_000 // tasks)) for tasks in widths],
                                   args.budget, args.rounds)
        rows = []
        for tasks, m in zip(widths, best):
            row = dict(bench="scaling", series=name, tasks=tasks, steps=round(m["steps"]),
                       ns_per_step=m["ns_per_step"])
            emit(**row)
            rows.append(row)
        series(name, rows, "ns_per_step")


if __name__ == "__main__":
    main()
