"""``hypothesis``: answers drawn from a Hypothesis ``data`` object, so that they shrink.

The draws are laid out so that Hypothesis's notion of "simpler" is the reader's.
Hypothesis shrinks a failing example towards the *shortlex-smallest* sequence of choices
(fewer choices first, then smaller values), and mostly by deleting or lowering a few
choices at a time. So the schedule is drawn as *preemptions*, not as one answer per
decision:

- whenever the current task could keep running and no preemption is pending, draw
  "another preemption?" (False, the simplest, means the current task is never preempted
  again unless it blocks); on True draw the gap ``g`` before it, log-uniformly (a bit
  width ``b`` in ``[0, 8]``, then ``g`` in ``[0, 2**b)``): the next ``g`` such decisions
  keep the current task and the one after switches to another task (an index into the
  others by tid; no draw when there is just one). Each preemption costs at least three
  choices and "no more" costs one, so shrinking deletes preemptions, and deleting one
  leaves the others where they were relative to each other. The ABBA deadlock shrinks to
  its one-preemption schedule.
- when the current task cannot run (it blocked, ended, or nothing ran yet) the switch is
  free: one index into the runnable tasks by tid (0, the simplest, is the lowest tid).
- a fault decision draws an integer in ``[0, 255]`` and fires only for the top
  ``round(p * 256)`` values, so the simplest answer means *no fault* and the fault
  probability is honoured approximately.

One answer per decision ("index into [current, others]", or a "preempt here?" boolean at
every decision) was tried first: the shrinker then has to change several dependent
positions at once to drop a preemption and stops at two or three.

:mod:`vmemu.testing` builds this strategy around a real Hypothesis draw, and so does
``vmemu explore --strategy hypothesis`` (:mod:`vmemu._explore.hypothesis`, which runs
Hypothesis's engine). Without one (``vmemu run --strategy hypothesis --seed N``, a single
schedule) the same encoding is drawn from a private ``random.Random(seed)`` (every draw
uniform; faults fire with their probability).
"""

from __future__ import annotations

import random as _random
from typing import Any, Sequence

from . import PARAMS, REGISTRY
from .base import Strategy

#: Resolution of fault draws: a fault fires for the top round(p * FAULT_STEPS) values.
FAULT_STEPS = 256
#: Gaps between preemptions are drawn below 2**b for a bit width b in [0, MAX_GAP_BITS].
MAX_GAP_BITS = 8


class HypothesisStrategy(Strategy):
    """Scheduling answers drawn from Hypothesis (or, without it, from a seeded PRNG).

    Args:
        seed: seeds the PRNG used when ``data`` is None; recorded on the trace.
        data: anything with ``draw(search_strategy)`` -- ``st.data()``'s value, or the
            ``draw`` argument of an ``st.composite`` wrapped in an object.

    Attributes:
        preemptions: decisions so far that switched away from a runnable current task.
        fired: fault decisions so far that fired.
    """

    name = "hypothesis"

    def __init__(self, seed: int | None = 0, data: Any = None) -> None:
        super().__init__(seed)
        self.data = data
        self.rng = _random.Random(int(seed or 0)) if data is None else None
        self.preemptions = 0
        self.fired = 0
        self.gap: int | None = None   # decisions to keep the current task; -1: for good
        if data is not None:
            from hypothesis import strategies as st
            self._st = st

    def _int(self, lo: int, hi: int) -> int:
        if self.rng is None:
            return self.data.draw(self._st.integers(lo, hi))
        return self.rng.randint(lo, hi)

    def _index(self, n: int) -> int:
        return 0 if n == 1 else self._int(0, n - 1)

    def pick_task(self, runnable: Sequence[Any], current: Any) -> Any:
        if current is None or current not in runnable:
            return runnable[self._index(len(runnable))]
        if self.gap is None:
            if self._int(0, 1):
                self.gap = self._int(0, (1 << self._int(0, MAX_GAP_BITS)) - 1)
            else:
                self.gap = -1    # no more preemptions
        if self.gap != 0:
            if self.gap > 0:
                self.gap -= 1
            return current
        self.gap = None
        self.preemptions += 1
        others = [t for t in runnable if t is not current]
        return others[self._index(len(others))]

    def pick_bool(self, p: float, site: str) -> bool:
        if self.rng is None:
            top = min(FAULT_STEPS - 1, max(1, round(p * FAULT_STEPS)))
            fire = self.data.draw(self._st.integers(0, FAULT_STEPS - 1)) >= FAULT_STEPS - top
        else:
            fire = self.rng.random() < p
        self.fired += fire
        return fire


def _make(seed: int = 0) -> HypothesisStrategy:
    return HypothesisStrategy(seed)


REGISTRY["hypothesis"] = _make
PARAMS["hypothesis"] = ()
