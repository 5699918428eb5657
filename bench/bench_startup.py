"""What a command costs to start: ``vmemu run TINY --driver direct`` against
``python -c pass``, both as fresh processes, alternated, median of ``--rounds``.

TINY is the smallest useful scenario (one task, one lock). "Cold" means a new process
each time, as a user's command is; Python's bytecode cache is on, as it is for a user
(a first run writes it; ``PYTHONDONTWRITEBYTECODE`` is dropped for the measured
commands). The ratio is the target (<= 2.5); the absolute milliseconds swing with the
machine's load, the ratio much less.
Also prints the modules ``import vmemu`` loads that it must not (multiprocessing,
hypothesis, trio, yaml and its dumper, sqlite3, rich): none, when it is right.

Usage: ``.venv/bin/python bench/bench_startup.py [--rounds R] [--python PATH]``

The checkout's ``.venv`` is an editable install: every Python process there, even
``python -c pass``, imports pip's editable-install finder at start-up (about 13 ms), which
inflates the baseline and flatters the ratio. To measure as a ``pip install vmemu`` user
would, point ``--python`` at a venv with a regular install
(``python3 -m venv /tmp/v && /tmp/v/bin/pip install .``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import _util  # noqa: F401  (puts the repo on sys.path)
from _util import emit, write_yaml

TINY = """\
name: tiny
locks: {L: mutex}
tasks:
  t: [{lock: L}, {unlock: L}]
"""

HEAVY = ("multiprocessing", "hypothesis", "trio", "yaml", "yaml.dumper", "sqlite3", "rich",
         "concurrent.futures.process", "distributed")


# As a user runs it: with the bytecode cache (this environment may turn it off).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(cmd: list[str], cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False, env=ENV)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter of the install to measure (default: this one)")
    args = ap.parse_args()
    tiny = write_yaml("tiny", TINY)
    # Not from the checkout: `-m vmemu` there would import ./vmemu, not the install.
    cwd = os.path.dirname(tiny)
    bare = [args.python, "-c", "pass"]
    run = [args.python, "-m", "vmemu", "run", tiny, "--driver", "direct"]
    t_bare, t_run = [], []
    _time(run, cwd)     # writes the bytecode cache once, as a first run does
    for _ in range(args.rounds):
        t_bare.append(_time(bare, cwd))
        t_run.append(_time(run, cwd))
    probe = subprocess.run(
        [args.python, "-c", "import sys, vmemu; print(' '.join(m for m in "
         f"{HEAVY!r} if m in sys.modules))"], cwd=cwd, capture_output=True, text=True,
        env=ENV)
    b, r = statistics.median(t_bare), statistics.median(t_run)
    emit(bench="startup", python=args.python, rounds=args.rounds, python_c_pass_ms=round(b * 1000, 1),
         vmemu_run_tiny_ms=round(r * 1000, 1), ratio=r / b,
         ratio_range=[round(min(t_run) / max(t_bare), 2), round(max(t_run) / min(t_bare), 2)],
         target=2.5, meets_target=r / b <= 2.5,
         import_vmemu_loads=probe.stdout.split() or None)


if __name__ == "__main__":
    main()
