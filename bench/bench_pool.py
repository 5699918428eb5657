"""What the size of the page pool costs: time and peak memory of one run, 32 to 10^10 pages.

Memory is accounted in runs of page numbers (``vmemu/_kernel/_pages.py``), so a run on a
pool of ten billion pages should cost what a run on 32 pages costs: ``ratio_time`` and
``ratio_peak`` are against the 32-page pool, measured in the same process (best of
``--rounds``, alternated; 50 seeds each). The scenario fills 90 % of the pool, then allocates past the
watermarks so that reclaim frees pages of the clean class, frees, and repeats.

Usage: ``.venv/bin/python bench/bench_pool.py [--rounds R]``
"""

from __future__ import annotations

import argparse
import tracemalloc

import _util  # noqa: F401  (puts the repo on sys.path)
from _util import best_of, emit, write_yaml

from vmemu._run import run
from vmemu._scenario import load_scenario

SCENARIO = """\
name: pool-{pages}
memory:
  pages: {pages}
  classes: {{clean: {{}}, shm: {{writeback: wb}}}}
routines:
  wb: [yield]
tasks:
  t:
    - fill: {{class: clean, pages: {fill}}}
    - fill: {{class: shm, pages: 5}}
    - repeat: 20
      do:
        - alloc: {chunk}
          as: p
        - yield
        - free: p
  u:
    - repeat: 20
      do: [yield]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sizes = (32, 10**6, 10**8, 10**10)
    scs = {n: load_scenario(write_yaml(f"pool{n}", SCENARIO.format(
        pages=n, fill=n * 9 // 10, chunk=max(1, n // 10)))) for n in sizes}
    def runs(n: int) -> None:
        for seed in range(50):
            run(scs[n], seed=seed, driver="direct")
    times = best_of(args.rounds, **{str(n): (lambda n=n: runs(n)) for n in sizes})
    peaks = {}
    for n in sizes:
        tracemalloc.start()
        r = run(scs[n], driver="direct")
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert r.verdict == "ok", r.message
    for n in sizes:
        emit(workload="pool", pages=n, ms_per_run=times[str(n)] * 1000 / 50,
             peak_kb=peaks[n] // 1024,
             ratio_time=times[str(n)] / times["32"], ratio_peak=peaks[n] / peaks[32])


if __name__ == "__main__":
    main()
