"""``random(seed)``: every choice uniform from a private, seeded PRNG."""

from __future__ import annotations

import functools
import random as _random
from typing import Any, Sequence

from .base import Strategy


class RandomStrategy(Strategy):
    """Uniformly random scheduling, reproducible from ``seed``.

    A private :class:`random.Random` is used (never the global one), seeded with an int so
    that the sequence is the same in every process and under every ``PYTHONHASHSEED``.

    Which task runs is drawn straight from ``getrandbits`` rather than ``randrange``:
    ``randrange`` is Python code around a rejection loop and cost about as much as the
    rest of a scheduling step. Two candidates (the common case) take one bit; ``n`` take
    30 bits scaled by multiplication (Lemire's method), whose bias of at most n/2**30 is
    far below anything a schedule search could notice. The draws are a pure function of
    the seed, like everything else here.
    """

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.rng = _random.Random(int(seed))
        bits = self.pick_bits = self.rng.getrandbits
        if type(self).pick_task is RandomStrategy.pick_task:   # (subclasses may override)
            self.pick_index = self.index
            self.pick_coin = functools.partial(bits, 1)   # C-level: index(2)

    def index(self, n: int) -> int:
        """The index of the candidate to run among ``n`` (n >= 2): the one mapping used."""
        bits = self.pick_bits
        return bits(1) if n == 2 else (bits(30) * n) >> 30

    def pick_task(self, runnable: Sequence[Any], current: Any) -> Any:
        return runnable[self.index(len(runnable))]

    def pick_bool(self, p: float, site: str) -> bool:
        return self.rng.random() < p
