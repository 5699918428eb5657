"""``dfs``: systematic search, bounded by delays (default) or by preemptions.

Stateless DFS over decision prefixes. Every decision has its alternatives in a fixed
order; alternative 0 is what a deterministic base scheduler would do, and alternative
``j`` costs something against the bound:

- ``bound="delays"`` (Emmi, Qadeer, Rakamaric, POPL 2011): the base scheduler is
  non-preemptive round-robin (keep the current task while it can run, else the next task
  by id after it, cyclically); alternative ``j`` is the ``j``-th task in that round-robin
  order and costs ``j`` delays (each delay skips one task).
- ``bound="preemptions"``: alternative 0 keeps the current task if it can run; choosing
  any other task then costs one preemption; when the current task cannot run, every
  choice is free.

A fault decision (``pick_bool``) is a branch point too: alternative 0 does not fire, 1
fires and costs one unit of the bound (faults and delays are both deviations from the
default, and an unbounded number of free faults would make the space explode).

A run follows a *prefix* of alternative indices and takes alternative 0 after it; it
records every decision it saw. :class:`DFSSearch` computes the next prefix from the last
run: the deepest decision with an untried alternative within the bound. When none is left
the bounded space is exhausted. ``DFSSearch.runs`` deepens the bound one unit at a time,
so schedules come cheapest first and none runs twice. Thomson, Donaldson and Betts (SCTBench) found delay
bounding the stronger of the two. Each run is rebuilt alone from its ``prefix``
parameter (zeros elided: ``"3:1,7:2"`` means decision 3 took alternative 1 ...).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from .._bounds import MAX_STEPS
from .._errors import UserError
from . import PARAMS, REGISTRY
from .base import Strategy

BOUNDS = ("delays", "preemptions")
DEFAULT_BOUND = "delays"
#: No limit: deepen until the exploration's budget ends (or the whole space is explored).
DEFAULT_MAX_BOUND = None


def rr_order(runnable: Sequence[Any], current: Any) -> list[Any]:
    """``runnable`` in round-robin order: the current task first if it can run, then the
    tasks after it by id, wrapping around."""
    if current is None:
        return list(runnable)
    after = [t for t in runnable if t.tid > current.tid]
    before = [t for t in runnable if t.tid < current.tid]
    cur = [current] if current in runnable else []
    return cur + after + before


class DFSStrategy(Strategy):
    """One run of the bounded DFS: follows ``prefix``, then the base scheduler.

    Attributes:
        trail: per decision ``(chosen, n_alternatives, cost_before, free)`` where
            ``free`` is True when every alternative costs nothing (preemption bounding with
            the current task blocked).
    """

    name = "dfs"

    def __init__(self, seed: int | None = 0, bound: str = DEFAULT_BOUND,
                 max_bound: int | None = DEFAULT_MAX_BOUND, prefix: Sequence[int] = ()) -> None:
        super().__init__(seed)
        self.bound = bound
        self.max_bound = max_bound
        self.prefix = list(prefix)
        self.trail: list[tuple[int, int, int, bool]] = []
        self.cost = 0
        #: What the prefix costs against the bound (the run adds nothing after it).
        self.prefix_cost = 0

    def _choose(self, n: int, free: bool = False) -> int:
        pos = len(self.trail)
        j = self.prefix[pos] if pos < len(self.prefix) else 0
        if j >= n:
            raise UserError(f"dfs prefix asks for alternative {j} at decision {pos + 1}, "
                            f"which has only {n}; the scenario changed since the prefix was "
                            "recorded", key="--prefix")
        self.trail.append((j, n, self.cost, free))
        self.cost += cost_of(self.bound, free, j)
        return j

    def pick_task(self, runnable: Sequence[Any], current: Any) -> Any:
        order = rr_order(runnable, current)
        free = self.bound == "preemptions" and (current is None or current not in runnable)
        return order[self._choose(len(order), free)]

    def pick_bool(self, p: float, site: str) -> bool:
        return bool(self._choose(2))   # (a fault decision is never free)

    def params(self) -> dict[str, Any]:
        d: dict[str, Any] = {"bound": self.bound}
        if self.max_bound is not None:
            d["max_bound"] = self.max_bound
        if any(self.prefix):
            d["prefix"] = encode_prefix(self.prefix)
        return d


def cost_of(bound: str, free: bool, j: int) -> int:
    """What taking alternative ``j`` costs against the bound (non-decreasing in ``j``):
    ``j`` delays, or one preemption. (A fault decision's one alternative, firing, is
    ``j = 1``: one unit under either bound.)"""
    if j == 0 or free:
        return 0
    return 1 if bound == "preemptions" else j


class DFSSearch:
    """The state of one bounded DFS across runs.

    Usage: ``for s in search.runs(seed)``: run ``s`` before asking for the next one (the
    next schedule follows from the decisions this one saw); ``coverage()`` then says
    what was covered. One pass with no deepening: ``s = search.first()``; run it;
    ``s = search.next(s)`` ... until ``next`` returns None.
    """

    def __init__(self, bound: str = DEFAULT_BOUND,
                 max_bound: int | None = DEFAULT_MAX_BOUND) -> None:
        self.bound, self.max_bound = _check(bound, max_bound)
        #: The highest bound whose every schedule was run (-1: not even bound 0 yet).
        self.complete = -1
        #: True once a level pruned nothing: every schedule of the scenario was run.
        self.whole = False
        self._pruned = False

    def coverage(self, schedules: int, failed: bool = False) -> dict[str, Any]:
        """What the search covered after ``schedules`` runs, for reports and JSON:
        ``bound``, ``max_bound``, ``complete`` (every schedule with at most that many
        delays or preemptions ran), ``whole`` (every schedule there is ran) and
        ``summary``, one line that says so (``failed``: the search stopped at a
        failure, which the line then says instead of "no failure")."""
        unit = self.bound
        one = unit[:-1]
        k = self.complete

        def n_units(n: int) -> str:
            return f"{n} {one if n == 1 else unit}"
        if failed:
            done = (f"all with \u2264 {n_units(k)} and some with {k + 1}" if k >= 0
                    else f"with 0 {unit}")
            text = (f"the search stopped at a failure after {schedules} schedules "
                    f"({done})")
        elif self.whole:
            text = (f"all {schedules} schedules explored: that is every schedule of the "
                    "scenario, the whole space is exhausted")
        elif k >= 0 and k == self.max_bound:
            text = (f"no failure in all {schedules} schedules with \u2264 {n_units(k)}; "
                    f"more {unit} not explored")
        elif k >= 0:
            text = (f"no failure in {schedules} schedules: all with \u2264 {n_units(k)} and "
                    f"some with {k + 1}; the budget ran out, more {unit} not explored")
        else:
            text = (f"no failure in the first {schedules} schedules with 0 {unit}; "
                    f"the budget ran out, more {unit} not explored")
        return {"bound": unit, "max_bound": self.max_bound, "complete": k,
                "whole": self.whole, "summary": text}

    def first(self) -> DFSStrategy:
        """The first run's strategy: the base scheduler's schedule (seed 0, a label only:
        :meth:`runs` numbers the schedules)."""
        return DFSStrategy(bound=self.bound, max_bound=self.max_bound)

    def next(self, done: DFSStrategy, limit: int | None = None) -> DFSStrategy | None:
        """The strategy for the next run after ``done`` ran to completion, or None when
        the space of schedules costing at most ``limit`` (default: the search's
        ``max_bound``) is exhausted."""
        limit = self.max_bound if limit is None else limit
        trail = done.trail
        for i in reversed(range(len(trail))):
            j, n, before, free = trail[i]
            for alt in range(j + 1, n):
                cost = before + cost_of(self.bound, free, alt)
                if limit is None or cost <= limit:
                    prefix = [c[0] for c in trail[:i]] + [alt]
                    s = DFSStrategy(bound=self.bound, max_bound=self.max_bound, prefix=prefix)
                    s.prefix_cost = cost
                    return s
                self._pruned = True
                break  # costs only grow with the index: no later alternative fits either
        return None

    def runs(self, seed: int) -> Iterator[DFSStrategy]:
        """Every schedule of the bounded space, cheapest first; schedule ``i`` is labelled
        seed ``seed+i``.

        Iterative deepening (as CHESS does with its preemption bound): the space of cost
        0, then every schedule of cost 1, ... up to ``max_bound``, so a bug is found with
        the fewest delays or preemptions there are, and a small bound's answer comes
        before a big bound's space is entered. Level ``b`` walks the whole tree of cost
        <= b but runs only the schedules of cost exactly ``b``: a cheaper one ran at an
        earlier level, and its recorded trail (a run is a pure function of its prefix)
        stands in for a re-run. So no schedule runs twice, and the set run is the same
        as one pass at ``max_bound`` would run.
        """
        seen: dict[tuple[int, ...], list[tuple[int, int, int, bool]]] = {}
        i = 0
        level = 0
        while self.max_bound is None or level <= self.max_bound:
            self._pruned = False
            s: DFSStrategy | None = self.first()
            while s is not None:
                key = _key(s.prefix)
                if s.prefix_cost < level:        # ran at an earlier level: walk past it
                    s.trail = seen[key]
                else:
                    s.seed = seed + i
                    yield s
                    i += 1
                    if level != self.max_bound:  # the last level is never walked again
                        seen[key] = s.trail
                s = self.next(s, level)
            self.complete = level
            if not self._pruned:                 # nothing costs more: that was everything
                self.whole = True
                return
            level += 1


def _key(prefix: Sequence[int]) -> tuple[int, ...]:
    """A prefix without its trailing zeros (alternative 0 is what happens after it)."""
    n = len(prefix)
    while n and not prefix[n - 1]:
        n -= 1
    return tuple(prefix[:n])


def encode_prefix(prefix: Sequence[int]) -> str:
    """``[0, 0, 1, 0, 2]`` -> ``"3:1,5:2"`` (1-based decision: alternative; zeros elided)."""
    return ",".join(f"{i + 1}:{j}" for i, j in enumerate(prefix) if j)


def decode_prefix(text: Any) -> list[int]:
    """The inverse of :func:`encode_prefix`; a malformed string is a one-line UserError."""
    if isinstance(text, (list, tuple)):
        return [int(x) for x in text]
    text = str(text or "").strip()
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            pos, _, alt = part.partition(":")
            i, j = int(pos), int(alt)
        except ValueError:
            i = j = -1
        if i < 1 or j < 0 or i <= len(out) or i > MAX_STEPS or j > MAX_STEPS:
            raise UserError(f"bad dfs prefix item {part[:40]!r}: expected increasing "
                            "DECISION:ALTERNATIVE pairs like 3:1,7:2 (decisions up to "
                            f"{MAX_STEPS:_})", key="--prefix")
        out.extend([0] * (i - 1 - len(out)))
        out.append(j)
    return out


def _check(bound: Any, max_bound: Any) -> tuple[str, int | None]:
    bound = DEFAULT_BOUND if bound is None else bound
    if bound not in BOUNDS:
        raise UserError(f"unknown dfs bound {bound!r}; choose one of {', '.join(BOUNDS)}",
                        key="--bound")
    if max_bound is None:
        return bound, None
    if isinstance(max_bound, bool) or not isinstance(max_bound, int) or max_bound < 0:
        raise UserError(f"dfs needs a non-negative whole number, got {max_bound!r}",
                        key="--max-bound")
    return bound, max_bound


def _make(seed: int = 0, bound: str | None = None, max_bound: int | None = None,
          prefix: Any = None) -> DFSStrategy:
    b, m = _check(bound, max_bound)
    return DFSStrategy(seed, b, m, decode_prefix(prefix))


REGISTRY["dfs"] = _make
PARAMS["dfs"] = ("bound", "max_bound", "prefix")
