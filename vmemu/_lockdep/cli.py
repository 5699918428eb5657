"""``vmemu lockdep SCENARIO [--runs N] [--confirm N] [--seed S] [--faults F] [--json]``.

Exit codes as every command: 0 nothing found, 1 a cycle, recursion or bad unlock was
reported, 2 bad input (raised as :class:`~vmemu._errors.UserError` by the loaders).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .learn import DEFAULT_CONFIRM, DEFAULT_RUNS, lockdep
from .report import render


def cmd_lockdep(args: argparse.Namespace, log: Any) -> int:
    """Run a lockdep session for the parsed arguments; returns the exit code.

    ``log`` (the structured event log) is not used: a session runs many schedules, and
    their events are not what it reports.
    """
    from .._cli import findings_dir
    confirm = DEFAULT_CONFIRM if args.confirm is None else args.confirm
    args.findings = findings_dir(args.findings)
    res = lockdep(args.scenario, runs=args.runs or DEFAULT_RUNS, seed=args.seed,
                  faults=args.faults, driver=args.driver, confirm=confirm,
                  findings_dir=args.findings)
    from .._viz.cli import write_outputs
    write_outputs(args, lockdep=res)
    if args.json:
        print(json.dumps(res.to_json(), indent=2))
    else:
        print(render(res))
    return 1 if res.found else 0
