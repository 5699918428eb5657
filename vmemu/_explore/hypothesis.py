"""``explore --strategy hypothesis``: Hypothesis's own engine searches, then shrinks.

Every schedule is drawn from Hypothesis data (:func:`vmemu.testing.schedules`: each
scheduling and fault decision is a Hypothesis draw, laid out so that shrinking deletes
preemptions). ``hypothesis.find`` generates schedules until one fails, then shrinks it
to the simplest schedule with the same verdict and cycle shape
(:func:`~vmemu._explore.base.signature`); that schedule is the finding, saved like any other.

What differs from the other strategies, and why:

- Hypothesis chooses each schedule from everything it tried before, so schedule ``i`` has
  no ``vmemu run --seed`` form: a finding replays from its saved trace (the report says
  so), exactly, on every driver.
- It runs in this process (``--jobs`` is ignored, as for ``dfs``), and stops at its first
  failure: ``--all`` is refused.
- Determinism: the engine is seeded (``random=Random(seed)``) and has no example
  database, so a command gives the same answer on the same installation. Hypothesis also
  mixes in integer constants it finds in the loaded local modules; another Hypothesis
  version or install layout may try other schedules (a saved trace still replays).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any, Callable

from .._errors import UserError
from .._result import Result
from .._scenario.model import Scenario
from .base import ExploreResult, finding_path, signature


class _OutOfTime(BaseException):
    """The time budget ran out while Hypothesis was still generating (a BaseException,
    which Hypothesis lets through instead of treating it as a failing test)."""


def explore_hypothesis(sc: Scenario, plan: Any, *, runs: int, seed: int,
                       time_budget: float | None, keep_going: bool,
                       findings_dir: str | os.PathLike | None,
                       progress: Callable[[int, int], None] | None,
                       on_finding: Callable[[Result], None] | None) -> Any:
    """The :class:`~vmemu._explore.ExploreResult` of a Hypothesis search of ``sc``."""
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample

    from ..testing import schedules as drawn

    if keep_going:
        raise UserError("hypothesis stops at its first failure and shrinks it; use a "
                        "strategy that enumerates schedules (portfolio, random, pct, dfs) "
                        "to keep going", key="--all")
    deadline = None if time_budget is None else time.monotonic() + time_budget
    seen: dict[str, Any] = {"tried": 0, "first": None, "sig": None, "last": None}

    def fails(s: Any) -> bool:
        r = s.result
        if seen["first"] is None:          # still generating (not yet shrinking)
            seen["tried"] += 1
            seen["last"] = r
            if progress is not None:
                progress(seen["tried"], 0)
            if not r.failed:
                # Time counts from the second schedule on, as for every strategy.
                if deadline is not None and seen["tried"] > 1 and time.monotonic() > deadline:
                    raise _OutOfTime
                return False
            seen["first"], seen["sig"] = r, signature(r)
            return True
        return r.failed and signature(r) == seen["sig"]

    cfg = settings(database=None, max_examples=runs, deadline=None,
                   suppress_health_check=list(HealthCheck),
                   phases=(Phase.generate, Phase.shrink))
    try:
        found = find(drawn(sc, faults=plan), fails, settings=cfg, random=random.Random(seed))
    except (NoSuchExample, _OutOfTime):
        return ExploreResult(seen["last"], seen["tried"], [], False)
    r, first = found.result, seen["first"]
    index = seen["tried"] - 1
    r.extra.update({"schedule": index, "minimized_from": len(first.trace.tape),
                    "found_by": f"a Hypothesis search seeded {seed}, shrunk by Hypothesis "
                                "(no `vmemu run` form: replay the saved trace)"})
    if findings_dir is not None:
        r.trace_path = r.trace.save(finding_path(findings_dir, sc.name, r.trace))
    if on_finding is not None:
        on_finding(r)
    return ExploreResult(r, seen["tried"], [r], False)

