"""Exploration: run many schedules of one scenario and keep what fails.

Run ``i`` of an exploration seeded with ``S`` uses seed ``S + i``, so every schedule an
exploration tries can be re-run alone with ``vmemu run SCENARIO --seed S+i``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ._result import Result
from ._run import _as_scenario, _load_faults, run
from ._scenario.model import Scenario

#: Schedules `explore` and `check` try when the user gives no budget.
DEFAULT_RUNS = 1000


@dataclass
class ExploreResult:
    """What an exploration found.

    Attributes:
        result: the first failure found (lowest schedule index), else the last run.
        schedules: schedules run (until the first failure, or in all with ``all``).
        findings: every failing result kept (one per signature with ``all``).
        exhausted: True when a systematic strategy explored the whole space.
    """

    result: Result
    schedules: int
    findings: list[Result] = field(default_factory=list)
    exhausted: bool = False

    @property
    def verdict(self) -> str:
        return self.result.verdict


def signature(r: Result) -> tuple:
    """What makes two findings the same bug: verdict plus the cycle's task/lock shape."""
    return (r.verdict, tuple((c["task"], c["waits_for"]) for c in r.cycle),
            r.culprit if not r.cycle else None)


def explore(scenario: Scenario | str | os.PathLike, *, runs: int = DEFAULT_RUNS, seed: int = 0,
            strategy: str = "random", faults: Any = None, driver: str = "trio",
            time_budget: float | None = None, keep_going: bool = False,
            progress: Callable[[int, int], None] | None = None,
            **params: Any) -> ExploreResult:
    """Try up to ``runs`` schedules; stop at the first failure unless ``keep_going``.

    ``time_budget`` (seconds of wall-clock time) only decides when to stop trying more
    schedules; it never influences what a schedule does.
    """
    sc = _as_scenario(scenario)
    plan = _load_faults(faults)
    deadline = None if time_budget is None else time.monotonic() + time_budget
    findings: list[Result] = []
    seen: set[tuple] = set()
    last: Result | None = None
    done = 0
    for i in range(runs):
        if deadline is not None and i > 0 and time.monotonic() > deadline:
            break
        r = run(sc, seed=seed + i, strategy=strategy, faults=plan, driver=driver, **params)
        done += 1
        last = r
        if r.failed:
            sig = signature(r)
            if sig not in seen:
                seen.add(sig)
                findings.append(r)
            if not keep_going:
                break
        if progress is not None:
            progress(done, len(findings))
    assert last is not None or runs <= 0
    if last is None:
        raise ValueError("runs must be at least 1")
    return ExploreResult(findings[0] if findings else last, done, findings)
