"""The kill rate per module of the last mutmut run (``bench/mutation.sh`` prints it).

A mutant is *killed* when a test failed or timed out with it. Mutants listed in
``bench/mutation_equivalent.md`` (their names in backticks, with the reason beside them)
are set aside: no test can tell them from the original. Every other mutant counts, and
the rate is killed / (all - equivalent). Target: >= 90 % per module.

Usage: ``.venv/bin/python bench/mutation_report.py [MODULE...]`` (exit 1 below target)
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = ROOT / "bench" / "mutation_equivalent.md"
MODULES = {
    "watchdog": "vmemu._kernel.watchdog", "sync": "vmemu._kernel.sync",
    "gfp": "vmemu._kernel._gfp", "reclaim": "vmemu._kernel._reclaim",
    "graph": "vmemu._lockdep.graph", "pct": "vmemu._strategies.pct",
    "dfs": "vmemu._strategies.dfs", "kernel": "vmemu._kernel.kernel",
    "task": "vmemu._kernel.task", "waitqueue": "vmemu._kernel.waitqueue",
    "values": "vmemu._kernel._values", "kthread": "vmemu._kernel.kthread",
    "direct": "vmemu._kernel.drivers.direct",
}
TARGET = 0.90
KILLED = {"killed", "timeout"}


def equivalent_names() -> set[str]:
    """Every `vmemu....__mutmut_N` named in the equivalents file."""
    if not EQUIVALENT.exists():
        return set()
    return set(re.findall(r"`(vmemu\.[^`\s]+__mutmut_\d+)`", EQUIVALENT.read_text()))


def results() -> dict[str, str]:
    """mutant name -> status, from ``mutmut results --all true``."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    status = {}
    for line in out.splitlines():
        name, sep, what = line.strip().rpartition(": ")
        if sep and name.startswith("vmemu."):
            status[name] = what
    return status


def main(names: list[str]) -> int:
    status = results()
    equivalent = equivalent_names()
    by_module: dict[str, Counter] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    killed_equivalent: list[str] = []
    for mutant, what in status.items():
        module = next((n for n, m in MODULES.items() if mutant.startswith(m + ".")), None)
        if module is None:
            continue
        c = by_module[module]
        c["all"] += 1
        if mutant in equivalent and what in KILLED:
            c["killed"] += 1            # a test kills it after all: not equivalent
            killed_equivalent.append(mutant)
        elif mutant in equivalent:
            c["equivalent"] += 1
        elif what in KILLED:
            c["killed"] += 1
        elif what == "not checked":
            c["not checked"] += 1
        else:
            survivors[module].append(f"{mutant} ({what})")
    stale = sorted(equivalent - set(status))
    ok = True
    print(f"{'module':10} {'mutants':>7} {'equiv':>6} {'killed':>7} {'rate':>7}  survivors")
    for module in names or list(MODULES):
        c = by_module[module]
        if c["not checked"]:
            print(f"{module:10} {c['all']:7} {'':>6} {'':>7} {'':>7}  "
                  f"{c['not checked']} not checked yet: bench/mutation.sh {module}")
            ok = False
            continue
        counted = c["all"] - c["equivalent"]
        rate = c["killed"] / counted if counted else 1.0
        ok &= rate >= TARGET
        print(f"{module:10} {c['all']:7} {c['equivalent']:6} {c['killed']:7} {rate:7.1%}  "
              f"{len(survivors[module])}")
        for s in sorted(survivors[module]):
            print(f"    {s}")
    if killed_equivalent:
        print(f"\n{len(killed_equivalent)} mutant(s) in {EQUIVALENT.name} are killed by a test "
              "(counted as killed): remove them from that file:\n    "
              + "\n    ".join(sorted(killed_equivalent)))
    if stale:
        print(f"\n{len(stale)} mutant(s) in {EQUIVALENT.name} no longer exist (the code "
              "changed): re-check that file:\n    " + "\n    ".join(stale))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
