"""Shared helpers of the benchmarks: scenario files, best-of timing, JSON lines.

Timings are noisy on a shared machine, so every benchmark runs the measured thing and its
baseline alternately, several rounds, and keeps the best round of each: the ratio of two
best rounds is far steadier than either number alone.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT.parent / "shared" / "contract"
sys.path.insert(0, str(ROOT))

_TMP = tempfile.TemporaryDirectory(prefix="vmemu-bench-")


def write_yaml(name: str, text: str) -> str:
    """Write a generated scenario into this run's temp folder; returns its path."""
    p = Path(_TMP.name) / f"{name}.yaml"
    p.write_text(text)
    return str(p)


def timings(rounds: int, **fns: Any) -> dict[str, list[float]]:
    """Seconds of each of ``rounds`` calls of each function, calls interleaved (round 1 of
    every function, then round 2 ...). A value may be a ``(setup, run)`` pair: then only
    ``run(setup())`` is timed (what a run needs built, built outside the clock)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            setup, go = fn if isinstance(fn, tuple) else (None, fn)
            arg = setup() if setup is not None else None
            t0 = time.perf_counter()
            go(arg) if setup is not None else go()
            times[k].append(time.perf_counter() - t0)
    return times


def best_of(rounds: int, **fns: Any) -> dict[str, float]:
    """Seconds of the fastest of ``rounds`` calls of each function, calls interleaved
    (values as for :func:`timings`)."""
    return {k: min(v) for k, v in timings(rounds, **fns).items()}


def emit(**fields: Any) -> None:
    """Print one JSON line (floats rounded for reading)."""
    out = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in fields.items()}
    print(json.dumps(out), flush=True)
