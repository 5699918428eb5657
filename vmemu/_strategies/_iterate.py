"""Schedule iteration: the sequence of strategies an exploration runs, one per schedule.

``schedules(name, seed, **params)`` (re-exported by the package) yields one fresh
:class:`Strategy` per schedule; the consumer runs each to completion before asking for the
next, which lets stateful searches (DFS, PCT's run-length estimate) learn from the run
that just ended. Seeded strategies give schedule ``i`` the seed
:func:`schedule_seed(seed, i) <schedule_seed>`, a splitmix64 mix of both: explorations
with different seeds are independent samples (with ``seed + i``, seed 2 re-ran seed 1's
schedules shifted by one). Every yielded strategy records in ``params()`` whatever else it
needs, so any schedule can be re-run alone with
``vmemu run S --seed SEED --strategy NAME --PARAM=VALUE`` (one printed integer).
"""

from __future__ import annotations

import itertools
from typing import Any, Iterator

from .._errors import UserError
from .base import Strategy
from .random import RandomStrategy

#: Strategies that enumerate a finite space and can report it explored in full.
EXHAUSTIVE = ("dfs",)

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _mix64(z: int) -> int:
    """splitmix64's finaliser (Steele, Lea, Flood 2014): a bijection of 64-bit ints."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _stream(seed: int) -> int:
    return _mix64((int(seed) + _GOLDEN) & _MASK)


def schedule_seed(seed: int, i: int) -> int:
    """The seed of schedule ``i`` of an exploration seeded ``seed``: the ``i``-th output of
    a splitmix64 generator whose state starts at a mix of ``seed``, less its two low bits
    (a seed is at most 2**62: ``vmemu run --seed`` and JSON readers take it). Nearby seeds
    give unrelated streams, and the schedule re-runs alone from this one integer."""
    return _mix64((_stream(seed) + (i + 1) * _GOLDEN) & _MASK) >> 2


class _CountingRandom(RandomStrategy):
    """``random``, counting its task decisions so that PCT can estimate the run length.

    Counted after the run (the tape's length less the fault decisions) rather than per
    pick: overriding ``pick_task`` would turn off ``random``'s fast path (``pick_index``)
    on every step of every random schedule an exploration runs.
    """

    decisions = 0
    _faults = 0

    def pick_bool(self, p: float, site: str) -> bool:
        self._faults += 1
        return super().pick_bool(p, site)

    def ran(self, tape_length: int) -> None:
        self.decisions = tape_length - self._faults


class ScheduleIterator:
    """An iterator of strategies that also says whether the space was exhausted.

    Attributes:
        exhausted: True once a systematic strategy (dfs) has no schedule left; the
            exploration then covered every schedule within its bound.
        count: strategies handed out so far.
    """

    def __init__(self, gen: Iterator[Strategy], search: Any = None) -> None:
        self._gen = gen
        self.exhausted = False
        self.count = 0
        #: The :class:`~vmemu._strategies.dfs.DFSSearch` behind a dfs stream (its
        #: ``coverage()`` says which bounds were explored in full), else None.
        self.search = search

    def __iter__(self) -> "ScheduleIterator":
        return self

    @property
    def bare(self) -> Iterator[Strategy]:
        """The same strategies without this wrapper's bookkeeping, for a loop that steps
        them itself and sees the end as StopIteration (an exploration's block: a Python
        ``__next__`` per schedule costs a tenth of a microsecond or more): ``count`` and
        ``exhausted`` then leave its steps out."""
        return self._gen

    def __next__(self) -> Strategy:
        try:
            s = next(self._gen)
        except StopIteration:
            self.exhausted = True
            raise
        self.count += 1
        return s


def schedules(name: str, seed: int = 0, start: int = 0, **params: Any) -> ScheduleIterator:
    """One fresh strategy per schedule to try (see the module docstring).

    Args:
        name: ``random``, ``pct``, ``dfs``, ``hypothesis`` or ``portfolio`` (even
            schedules random, odd ones pct; each keeps its real name for replay).
        seed: schedule ``i`` uses seed :func:`schedule_seed(seed, i) <schedule_seed>`.
        start: the index of the first schedule (workers start where their block does;
            dfs computes each schedule from the last, so it always starts at 0).
        **params: strategy parameters (None values are ignored): ``depth``,
            ``steps_hint`` (pct and portfolio), ``bound``, ``max_bound`` (dfs).

    Raises:
        UserError: unknown strategy or a parameter it does not take.
    """
    from . import PARAMS, _load_optional, make_strategy
    _load_optional()
    params = {k: v for k, v in params.items() if v is not None}
    if name == "portfolio":
        _reject(name, params, PARAMS["pct"])
        make_strategy("pct", seed, **params)         # validates the parameters up front
        return ScheduleIterator(_portfolio(seed, start, params))
    if name == "pct":
        make_strategy(name, seed, **params)          # validates the parameters up front
        return ScheduleIterator(_pct_stream(seed, start, params, lambda i, s: None))
    if name == "dfs":
        from .dfs import DFSSearch
        _reject(name, params, ("bound", "max_bound"))
        if start:
            raise ValueError("a dfs stream always starts at schedule 0")
        search = DFSSearch(params.get("bound"), params.get("max_bound"))
        return ScheduleIterator(search.runs(seed), search)
    base = _stream(seed)
    if name == "random":
        _reject(name, params, ())
        return ScheduleIterator(
            _CountingRandom(_mix64((base + (i + 1) * _GOLDEN) & _MASK) >> 2)
            for i in itertools.count(start))
    make_strategy(name, seed, **params)              # unknown names raise here
    return ScheduleIterator(make_strategy(name, schedule_seed(seed, i), **params)
                            for i in itertools.count(start))


def _reject(name: str, params: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for k in sorted(params):
        if k not in allowed:
            takes = ", ".join("--" + a.replace("_", "-") for a in allowed) or "no parameters"
            raise UserError(f"strategy {name} does not take --{k.replace('_', '-')} "
                            f"(it takes {takes})", key="--strategy")


def _pct_stream(seed: int, start: int, params: dict[str, Any],
                pick: Any) -> Iterator[Strategy]:
    """Schedules where PCT's ``steps_hint`` follows the longest run seen so far.

    ``pick(i, seed_i)`` returns None for a PCT schedule or a non-PCT strategy to run
    instead.
    """
    from .pct import DEFAULT_STEPS_HINT, PCTStrategy, _make
    fixed = params.get("steps_hint")
    depth = params.get("depth")
    longest = 0
    base = _stream(seed)
    for i in itertools.count(start):
        seed_i = _mix64((base + (i + 1) * _GOLDEN) & _MASK) >> 2
        s = pick(i, seed_i)
        if s is None:
            hint = fixed or (longest if longest else DEFAULT_STEPS_HINT)
            s = _make(seed_i, depth, hint)
        yield s
        # The consumer ran `s` to completion before asking for the next one.
        longest = max(longest, getattr(s, "decisions", 0))
        assert isinstance(s, (PCTStrategy, RandomStrategy))


def _portfolio(seed: int, start: int, params: dict[str, Any]) -> Iterator[Strategy]:
    return _pct_stream(seed, start, params,
                       lambda i, s: _CountingRandom(s) if i % 2 == 0 else None)


def is_exhaustive(name: str) -> bool:
    """True when ``schedules(name, ...)`` can end because it explored everything."""
    return name in EXHAUSTIVE
