"""``random(seed)``: every choice uniform from a private, seeded generator."""

from __future__ import annotations

import functools
import hashlib
import itertools
import random as _random
from typing import Any, Iterator, Sequence

from .base import Strategy

#: Coin flips drawn from the seed's hash before the Mersenne Twister is needed.
POOL_BITS = 512
_TO_01 = bytes.maketrans(b"01", b"\x00\x01")


#: BLAKE2b with vmemu's personalisation, copied per seed: a copy costs half of what
#: building a hasher with keyword arguments does.
_HASHER = hashlib.blake2b(digest_size=POOL_BITS // 8, person=b"vmemu-random")
#: Where each 64-bit chunk of the digest starts, most significant chunk first.
_CHUNKS = tuple(range(POOL_BITS // 8 - 8, -8, -8))
_TOP64 = 1 << 64


def _pool(seed: int) -> Iterator[int]:
    """POOL_BITS coin flips (ints 0 or 1) from a BLAKE2b hash of ``seed``: the hash as
    a little-endian int, most significant bit first.

    Spelled out 64 flips at a time, as a run reaches them: most runs flip a few coins,
    and spelling all 512 costs more than hashing. Each chunk is a C-level iterator.
    """
    h = _HASHER.copy()
    h.update(b"%d" % seed)
    return itertools.chain.from_iterable(
        map(_spell, itertools.repeat(h.digest(), POOL_BITS // 64), _CHUNKS))


def _spell(digest: bytes, at: int) -> bytes:
    """The 64 bits of ``digest[at:at+8]`` (little-endian) as bytes 0/1, most significant
    first: bin() of the int with a bit set above them spells all 64, leading zeros
    included, after "0b1" (cheaper than format's zero padding)."""
    return bin(int.from_bytes(digest[at:at + 8], "little") | _TOP64).encode()[3:] \
        .translate(_TO_01)


class RandomStrategy(Strategy):
    """Uniformly random scheduling, reproducible from ``seed``.

    Cheap to build, as an exploration builds one per schedule: the first
    :data:`POOL_BITS` two-way choices (the commonest decision: two runnable tasks) are
    the bits of a BLAKE2b hash of the seed, about a microsecond, where seeding a
    Mersenne Twister costs three or more. The Twister (a private :class:`random.Random`
    seeded with the int, never the global one) is seeded only when a run needs more:
    more coin flips, a pick among three or more tasks, a fault's probability. Every draw
    is a pure function of the seed, the same in every process and under every
    ``PYTHONHASHSEED``.

    A coin flip is a C-level iterator step (``pick_coin``); a pick among ``n > 2`` takes 30
    bits scaled by multiplication (Lemire's method), whose bias of at most n/2**30 is far
    below anything a schedule search could notice.
    """

    name = "random"
    #: Offer pick_index/pick_coin: only while pick_task is this class's own (a subclass
    #: may override it); decided per class, not per instance.
    _by_index = True

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls._by_index = cls.pick_task is RandomStrategy.pick_task
        # pick_index is index (a subclass's own, if it has one), or none at all.
        cls.pick_index = cls.index if cls._by_index else None   # type: ignore[assignment]

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed          # (Strategy.__init__, inlined: one per schedule)
        # The Twister, once seeded, in a box the coin stream shares: a strategy that
        # nothing of its own refers back to is freed by its refcount when its run ends,
        # not left for the cyclic GC (whose collections cost an exploration ~10 %).
        self._box: list[_random.Random | None] = [None, seed]
        # The pool's flips, then (only after POOL_BITS of them: a long run) the Twister's.
        self._coin = itertools.chain(_pool(int(seed)), _Twister(self._box)).__next__
        if self._by_index:
            self.pick_coin = self._coin    # C-level: index(2)

    @property
    def rng(self) -> _random.Random:
        """The Mersenne Twister behind every draw but the first coin flips."""
        return _rng(self._box)

    def index(self, n: int) -> int:
        """The index of the candidate to run among ``n`` (n >= 2): the one mapping used."""
        if n == 2:
            return self._coin()
        return (self.rng.getrandbits(30) * n) >> 30

    #: The kernel's fast path (a class attribute: a bound method stored on the instance
    #: would be a reference cycle); a subclass that overrides pick_task has none.
    pick_index = index

    def pick_task(self, runnable: Sequence[Any], current: Any) -> Any:
        return runnable[self.index(len(runnable))]

    def pick_bool(self, p: float, site: str) -> bool:
        return self.rng.random() < p


def _rng(box: list) -> _random.Random:
    """The Twister in ``box`` (``[rng or None, seed]``), seeded on first use."""
    rng = box[0]
    if rng is None:
        rng = box[0] = _random.Random(int(box[1]))
    return rng


class _Twister:
    """The coin flips after the pool's: ``chain`` asks for this iterator only when the
    pool runs out, so the Twister is seeded only then, and each flip is still a C call."""

    __slots__ = ("box",)

    def __init__(self, box: list) -> None:
        self.box = box

    def __iter__(self) -> Any:
        return iter(functools.partial(_rng(self.box).getrandbits, 1), 2)
