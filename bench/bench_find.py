"""How many schedules each strategy needs to find each deadlocking scenario's bug.

For every scenario whose ``expect`` is ``deadlock`` (``--expect`` to change) in
``../shared/contract`` and ``scenarios/`` (recursively), and every strategy, run
``schedules(strategy, seed)`` for 20 base seeds and count schedules until the first
failure with the expected verdict. Prints one JSON line per (strategy, scenario) with the
median (and max) over the seeds; a search that found nothing within ``--budget`` counts as
``budget + 1``. dfs does not depend on the seed, so it runs once; hypothesis is counted
as ``explore --strategy hypothesis`` runs it (Hypothesis's engine).

Usage: ``.venv/bin/python bench/bench_find.py [--budget N] [--seeds N] [--strategies ...]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vmemu._explore import explore  # noqa: E402
from vmemu._run import run  # noqa: E402
from vmemu._scenario import load_scenario  # noqa: E402
from vmemu._strategies import schedules  # noqa: E402


def scenario_paths() -> list[Path]:
    dirs = [ROOT.parent / "shared" / "contract", ROOT / "scenarios"]
    out: list[Path] = []
    for d in dirs:
        for pat in ("*.yaml", "*.yml", "*.py"):
            out.extend(p for p in d.rglob(pat) if "bad" not in p.parts
                       and not p.name.startswith(("_", ".")))
    return sorted(out)


def schedules_to_find(sc, strategy: str, seed: int, budget: int) -> int:
    """1-based index of the first schedule reaching ``sc.expect``, or budget + 1."""
    if strategy == "hypothesis":
        # Hypothesis's engine picks each schedule from the ones before: what `explore`
        # runs, not a stream of independent strategies.
        x = explore(sc, strategy="hypothesis", seed=seed, runs=budget)
        return x.schedules if x.verdict == sc.expect else budget + 1
    it = schedules(strategy, seed)
    for i, strat in zip(range(1, budget + 1), it):
        if run(sc, strategy=strat, driver="direct").verdict == sc.expect:
            return i
    return budget + 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--strategies", nargs="+",
                    default=["random", "pct", "portfolio", "dfs", "hypothesis"])
    ap.add_argument("--expect", nargs="+", default=["deadlock"])
    args = ap.parse_args()
    scenarios = []
    for p in scenario_paths():
        try:
            sc = load_scenario(str(p))
        except Exception as e:  # UserError or a scenario under construction: say so, go on
            print(f"# skipped {p}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                  file=sys.stderr)
            continue
        if sc.expect in args.expect:
            scenarios.append((p, sc))
    for strategy in args.strategies:
        for p, sc in scenarios:
            # Base seeds far apart, so that the 20 searches never share a schedule.
            seeds = [0] if strategy == "dfs" else [j * 100_000 for j in range(args.seeds)]
            counts = [schedules_to_find(sc, strategy, s, args.budget) for s in seeds]
            print(json.dumps({
                "strategy": strategy, "scenario": sc.name,
                "path": str(p.relative_to(ROOT.parent)),
                "median_schedules_to_first_failure": statistics.median(counts),
                "max": max(counts), "seeds": len(seeds), "budget": args.budget,
                "not_found": sum(c > args.budget for c in counts),
            }), flush=True)


if __name__ == "__main__":
    main()
