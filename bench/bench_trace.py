"""Bytes per decision of a saved 100,000-step trace (target: <= 16, before compression).

A trace stores the decision tape and the event list (see ``vmemu/_trace.py``). The
scenario is 4 tasks looping ``lock m / yield / unlock m / sleep 1``, so the events carry
lock, block, wake and tick changes. Also printed: bytes per event, the size the plain
JSON lists of version 1 would take (``ratio_vs_v1``), and save/load times.

Usage: ``.venv/bin/python bench/bench_trace.py [--steps N]``
"""

from __future__ import annotations

import argparse
import json
import os
import time

import _util  # noqa: F401  (puts the repo on sys.path)
from _util import emit, write_yaml

from vmemu._run import run
from vmemu._trace import Trace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000)
    args = ap.parse_args()
    reps = max(1, args.steps // 27)   # ~6.7 steps per iteration and task, 4 tasks
    path = write_yaml("trace", (
        f"name: trace\nlimits: {{steps: {args.steps * 2}, ticks: 1000000000, "
        "hung_task_timeout: 1000000000}\nlocks: {m: mutex}\ntasks:\n  w:\n    count: 4\n"
        f"    steps:\n      - repeat: {reps}\n        do:\n          - lock: m\n"
        "          - yield\n          - unlock: m\n          - sleep: 1\n"))
    r = run(path, seed=1, driver="direct")
    assert r.verdict == "ok", r.message
    out = os.path.join(os.path.dirname(path), "t.json")
    t0 = time.perf_counter()
    r.trace.save(out)
    t1 = time.perf_counter()
    back = Trace.load(out)
    t2 = time.perf_counter()
    assert back == r.trace
    size = os.path.getsize(out)
    v1 = r.trace.to_dict()
    v1.update(version=1, tape=r.trace.tape, events=r.trace.events)
    v1_size = len(json.dumps(v1, separators=(",", ":"))) + 1
    decisions = len(r.trace.tape)
    emit(bench="trace", steps=r.steps, decisions=decisions, events=len(r.trace.events),
         bytes=size, bytes_per_decision=size / decisions,
         bytes_per_event=size / len(r.trace.events), v1_bytes=v1_size,
         ratio_vs_v1=size / v1_size, save_s=t1 - t0, load_s=t2 - t1, target=16,
         meets_target=size / decisions <= 16)


if __name__ == "__main__":
    main()
