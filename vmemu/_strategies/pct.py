"""``pct(seed, depth)``: probabilistic concurrency testing (Burckhardt, Kothari,
Musuvathi, Nagarakatte, ASPLOS 2010).

Every task gets a random, distinct priority; the highest-priority runnable task always
runs. ``depth - 1`` *priority change points* are chosen uniformly among the first
``steps_hint`` scheduling decisions; at the i-th one the running task drops to priority
``i``, below every initial priority. A bug that needs ``d`` ordering constraints among
``n`` tasks in runs of ``k`` decisions is then found with probability at least
``1 / (n * k**(d-1))`` per run.

``steps_hint`` is the estimate of ``k``. Alone, a PCT run uses :data:`DEFAULT_STEPS_HINT`;
inside an exploration (``schedules("pct", ...)``) every run after the first uses the
longest run seen so far, as Coyote's PCT does, so change points land inside the run
instead of beyond its end. The hint is recorded in ``params()``, so each schedule can
still be re-run alone.
"""

from __future__ import annotations

import random as _random
from typing import Any, Sequence

from .._bounds import MAX_DEPTH, MAX_TICKS
from .._errors import UserError
from . import PARAMS, REGISTRY
from .base import Strategy

#: Default bug depth d (SCTBench found d=3 enough for most known bugs).
DEFAULT_DEPTH = 3
#: Default estimate of the number of scheduling decisions in one run.
DEFAULT_STEPS_HINT = 64


class PCTStrategy(Strategy):
    """PCT scheduling, reproducible from ``(seed, depth, steps_hint)``.

    Args:
        seed: seeds a private :class:`random.Random` (never the global one).
        depth: the bug depth ``d``; ``d - 1`` change points are drawn.
        steps_hint: ``k``, the estimated number of scheduling decisions per run.

    Attributes:
        decisions: scheduling decisions answered so far in this run (read by
            :func:`~vmemu._strategies.schedules` to adapt the next run's ``steps_hint``).
    """

    name = "pct"

    def __init__(self, seed: int = 0, depth: int = DEFAULT_DEPTH,
                 steps_hint: int = DEFAULT_STEPS_HINT) -> None:
        super().__init__(seed)
        depth, steps_hint = _check_int("depth", depth), _check_int("steps_hint", steps_hint)
        self.depth = depth
        self.steps_hint = steps_hint
        self.rng = _random.Random(int(seed))
        # Change points are drawn first, so a task's priority does not depend on them.
        # `sample` keeps them distinct: two change points at one decision would waste one.
        k = max(steps_hint, depth - 1)
        points = sorted(self.rng.sample(range(1, k + 1), depth - 1))
        self.change_at = {step: i + 1 for i, step in enumerate(points)}
        self.priority: dict[int, float] = {}
        self.decisions = 0

    def pick_task(self, runnable: Sequence[Any], current: Any) -> Any:
        self.decisions += 1
        prio = self.priority
        # Priorities are handed out on first sight (tasks that start later appear later),
        # in run-queue (tid) order. A uniform float above `depth` gives every task a
        # uniformly random rank among the initial priorities and keeps all of them above
        # the change-point priorities 1..d-1.
        for t in runnable:
            if t.tid not in prio:
                prio[t.tid] = self.depth + self.rng.random()
        i = self.change_at.get(self.decisions)
        if i is not None and current is not None:
            prio[current.tid] = i
        # The highest priority wins. Ties are impossible between initial priorities
        # (floats) and between change points (distinct i); were one to happen, the lowest
        # tid (the first in the run queue) would win. Two candidates, the commonest
        # decision, are compared without max()'s key calls.
        if len(runnable) == 2:
            a, b = runnable
            return a if prio[a.tid] >= prio[b.tid] else b
        return max(runnable, key=lambda t: (prio[t.tid], -t.tid))

    def pick_bool(self, p: float, site: str) -> bool:
        return self.rng.random() < p

    def params(self) -> dict[str, Any]:
        return {"depth": self.depth, "steps_hint": self.steps_hint}


def _check_int(key: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise UserError(f"pct needs a positive whole number, got {v!r}",
                        key="--" + key.replace("_", "-"))
    top = MAX_DEPTH if key == "depth" else MAX_TICKS
    if v > top:   # d - 1 change points are drawn among k decisions: both must be sane
        raise UserError(f"pct needs a whole number from 1 to {top:_}, got {v}",
                        key="--" + key.replace("_", "-"))
    return v


def _make(seed: int = 0, depth: int | None = None,
          steps_hint: int | None = None) -> PCTStrategy:
    return PCTStrategy(seed, DEFAULT_DEPTH if depth is None else depth,
                       DEFAULT_STEPS_HINT if steps_hint is None else steps_hint)


REGISTRY["pct"] = _make
PARAMS["pct"] = ("depth", "steps_hint")
