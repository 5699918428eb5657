"""``random(seed)``: every choice uniform from a private, seeded PRNG."""

from __future__ import annotations

import random as _random
from typing import Any, Sequence

from .base import Strategy


class RandomStrategy(Strategy):
    """Uniformly random scheduling, reproducible from ``seed``.

    A private :class:`random.Random` is used (never the global one), seeded with an int so
    that the sequence is the same in every process and under every ``PYTHONHASHSEED``.
    """

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.rng = _random.Random(int(seed))
        if type(self).pick_task is RandomStrategy.pick_task:   # (subclasses may override)
            # randrange(n), minus its argument checks (n is a positive int here): it
            # returns `self._randbelow(n)`, so the numbers drawn are the very same.
            self.pick_index = self.rng._randbelow

    def pick_task(self, runnable: Sequence[Any], current: Any) -> Any:
        return runnable[self.rng.randrange(len(runnable))]

    def pick_bool(self, p: float, site: str) -> bool:
        return self.rng.random() < p
