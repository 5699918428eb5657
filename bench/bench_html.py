"""The HTML page and Perfetto trace of a 100,000-step run: size, build time, load time.

Targets (issue 16): the HTML under 5 MB, and open in under 2 s in headless Chromium.

The run is bench_trace's: 4 tasks looping ``lock m / yield / unlock m / sleep 1`` for
about 100,000 steps (about 50,000 events, lock hand-offs, wake-ups and preemptions on
every few steps). Printed, one JSON line each:

- ``build``: seconds to replay the tape with the recorder (``timeline``), to make the
  page (``html``) and the Perfetto JSON (``perfetto``), beside the plain run
  (``run_direct``) measured in the same process; and the sizes in bytes;
- ``load``: with Debian's chromium and chromium-driver installed, the seconds from
  asking a *cold* browser to start until the page's script reports it drew the
  timeline (``cold_s``: browser start included), the same for an empty page
  (``blank_cold_s``, the baseline measured in the same rounds), and the page loaded
  again in that browser (``warm_s``: parse, decode and first draw only). Best of
  ``--rounds``; the machine is shared, so expect noise.

Usage: ``.venv/bin/python bench/bench_html.py [--steps N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import _util  # noqa: F401  (puts the repo on sys.path)
from _util import ROOT, emit, write_yaml

from vmemu._run import run
from vmemu._viz import perfetto_json, run_html, timeline

LIMIT_BYTES = 5_000_000
LIMIT_LOAD_S = 2.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    reps = max(1, args.steps // 27)
    path = write_yaml("html", (
        f"name: html\nlimits: {{steps: {args.steps * 2}, ticks: 1000000000, "
        "hung_task_timeout: 1000000000}\nlocks: {m: mutex}\ntasks:\n  w:\n    count: 4\n"
        f"    steps:\n      - repeat: {reps}\n        do:\n          - lock: m\n"
        "          - yield\n          - unlock: m\n          - sleep: 1\n"))
    t0 = time.perf_counter()
    r = run(path, seed=1, driver="direct")
    t1 = time.perf_counter()
    tl = timeline(r)
    t2 = time.perf_counter()
    page = run_html(r, tl)
    t3 = time.perf_counter()
    perf = perfetto_json(r, tl)
    t4 = time.perf_counter()
    out = tempfile.mkdtemp(prefix="vmemu-bench-html-")
    html_path = os.path.join(out, "run.html")
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(page)
    size = len(page.encode())
    emit(bench="html_build", steps=r.steps, events=len(r.trace.events), tasks=len(r.tasks),
         run_direct_s=t1 - t0, timeline_s=t2 - t1, html_s=t3 - t2, perfetto_s=t4 - t3,
         html_bytes=size, html_bytes_per_step=size / r.steps, perfetto_bytes=len(perf.encode()),
         html_limit_bytes=LIMIT_BYTES, html_meets_limit=size < LIMIT_BYTES,
         timeline_vs_run=(t2 - t1) / (t1 - t0))
    sys.path.insert(0, str(ROOT / "tests"))
    import _browser
    problem = _browser.missing()
    if problem is not None:
        emit(bench="html_load", skipped=problem)
        return
    # The baseline, in the same rounds: a cold browser opening an empty page.
    blank_path = os.path.join(out, "blank.html")
    with open(blank_path, "w", encoding="utf-8") as f:
        f.write("<!DOCTYPE html><title>blank</title><script>window.vmemu={ready:true}</script>")
    cold = warm = blank = float("inf")
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        with _browser.chromium() as driver:
            _browser.open_page(driver, blank_path)
        blank = min(blank, time.perf_counter() - t0)
        t0 = time.perf_counter()
        with _browser.chromium() as driver:
            _browser.open_page(driver, html_path)
            cold = min(cold, time.perf_counter() - t0)
            t1 = time.perf_counter()
            _browser.open_page(driver, html_path)
            warm = min(warm, time.perf_counter() - t1)
            lanes = len(driver.execute_script("return window.vmemu.lanes()"))
    emit(bench="html_load", steps=r.steps, html_bytes=size, lanes=lanes, cold_s=cold,
         blank_cold_s=blank, page_over_blank_s=cold - blank, warm_s=warm,
         rounds=args.rounds, limit_s=LIMIT_LOAD_S, meets_limit=cold < LIMIT_LOAD_S,
         note="cold_s: start chromium and open the page until drawn (best of rounds); "
              "blank_cold_s: the same with an empty page; warm_s: the page reloaded")


if __name__ == "__main__":
    main()
