"""The work of an exploration: run one block of schedule indices, wherever it runs.

:func:`run_block` is the one function every executor runs (in this process, in a
``--jobs`` worker process, on a Dask worker): schedules ``start .. stop-1`` of the
exploration described by a :class:`~vmemu._explore.base.Spec`, and a :class:`Block`
back, which says which prefix of the range ran, what failed (raw traces: the client
saves, dedups and minimizes them), and which interleavings were seen.

Schedule ``i`` depends only on ``i`` (and on PCT's steps hint, pinned per epoch by the
coordinator), so any worker can run any block, and the answer never depends on who ran
what. A block stops early at its first failure (unless ``keep_going``: the lower blocks
decide which failure is the first), or when the wall-clock ``deadline`` passes (never
before schedule 0: an exploration runs one schedule at least).

A worker loads a spec's scenario and fault plan once, from their content (a Dask worker
has no such files), and keeps them in :data:`_LOADED`; the coordinator puts its own
there first, so an in-process or forked worker loads nothing.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any

from .._run import _result, new_kernel, reset_kernel, run
from .._strategies import is_exhaustive, schedules
from .base import Spec, interleaving, signature

#: Loaded (scenario, fault plan) per spec key, newest last; a few at most.
_LOADED: dict[tuple, tuple[Any, Any]] = {}
#: Set to a signal number by the coordinator's handler (Ctrl-C, SIGTERM): a block run in
#: the coordinator's process ends after the schedule in progress.
STOP = [0]
#: The interleaving hash of each tape an `ok` run had, per spec key (see run_block);
#: dropped with the spec from _LOADED. Bounded: at most MEMO_TAPES tapes of at most
#: MEMO_LENGTH decisions each (a few MB), as the hash is worth saving on short runs
#: (~2 us against ~10 us a run), and long runs seldom repeat a tape.
_MEMO: dict[tuple, dict[tuple, int]] = {}
MEMO_TAPES = 1 << 14
MEMO_LENGTH = 64
#: A dfs stream per exploration, in the one process that runs it: (next index, iterator).
_STREAMS: dict[int, tuple[int, Any]] = {}


@dataclass
class Block:
    """What one block of schedules did.

    Attributes:
        start, stop: the range it was given; ``upto``: the last index it ran (the ones
            it ran are exactly ``start .. upto``).
        longest: the most scheduling decisions of one run (PCT's steps hint).
        exhausted: a systematic strategy ran out of schedules.
        found: ``(index, signature, trace)`` of each failure kept (the first of each
            signature in the block; only the first of all without ``keep_going``).
        again: the same for bugs a resumed campaign knew (``Spec.known``): they are
            not findings, and never end a block.
        hits: failing schedules per signature, every failure the block ran counted
            (a campaign's hit counts).
        cover: ``(hash, index)``: each distinct
            :func:`~vmemu._explore.base.interleaving` it saw, and where first.
        last: ``(index, strategy, seed, params)`` of its last run, to rebuild that run.
    """

    start: int
    stop: int
    upto: int = -1
    longest: int = 0
    exhausted: bool = False
    found: list[tuple[int, tuple, Any]] = field(default_factory=list)
    again: list[tuple[int, tuple, Any]] = field(default_factory=list)
    hits: dict[tuple, int] = field(default_factory=dict)
    cover: list[tuple[int, int]] = field(default_factory=list)
    last: tuple | None = None

    @property
    def done(self) -> int:
        return self.upto - self.start + 1


def remember(spec: Spec, scenario: Any, plan: Any) -> None:
    """Make ``spec``'s scenario and plan known to this process without loading them."""
    _LOADED.pop(spec.key, None)
    _LOADED[spec.key] = (scenario, plan)
    while len(_LOADED) > 4:
        _MEMO.pop(next(iter(_LOADED)), None)
        del _LOADED[next(iter(_LOADED))]


def loaded(spec: Spec) -> tuple[Any, Any]:
    """The scenario and fault plan of ``spec``, loaded from their content on first use."""
    got = _LOADED.get(spec.key)
    if got is None:
        got = _load(spec)
        remember(spec, *got)
    return got


def _load(spec: Spec) -> tuple[Any, Any]:
    import tempfile

    from .._faults import load_fault_plan
    from .._scenario import load_scenario
    # The loaders read files (line numbers, did-you-mean, Python modules by path): give
    # them one with the same name, then restore the user's path in what they return.
    with tempfile.TemporaryDirectory(prefix="vmemu-worker-") as tmp:
        path = os.path.join(tmp, os.path.basename(spec.scenario_path) or "scenario.yaml")
        with open(path, "wb") as f:
            f.write(spec.scenario_text)
        sc = load_scenario(path)
        sc = dataclasses.replace(sc, path=spec.scenario_path,
                                 abspath=os.path.abspath(spec.scenario_path))
        plan = None
        if spec.faults_text is not None:
            fpath = os.path.join(tmp, "faults-" + os.path.basename(spec.faults_path or "f.yaml"))
            with open(fpath, "wb") as f:
                f.write(spec.faults_text)
            plan = load_fault_plan(fpath)
            plan = dataclasses.replace(plan, path=spec.faults_path)
    return sc, plan


def stream(spec: Spec, start: int, hint: int | None) -> Any:
    """Schedules ``start, start+1, ...`` of the exploration, as fresh strategies."""
    params = dict(spec.params)
    if hint is not None:
        params["steps_hint"] = hint
    return schedules(spec.strategy, spec.seed, start=start, **params)


def _dfs_stream(spec: Spec, token: int, start: int) -> Any:
    """A dfs search computes each schedule from the last: one iterator per exploration
    (``token``), continued block after block in this process."""
    if start == 0:
        _STREAMS[token] = (0, stream(spec, 0, None))
    nxt, it = _STREAMS[token]
    if nxt != start:  # pragma: no cover - the coordinator runs dfs blocks in order
        raise RuntimeError(f"dfs block starts at {start}, expected {nxt}")
    return it


def forget(token: int) -> Any:
    """Drop exploration ``token``'s dfs stream; returns its iterator (or None)."""
    got = _STREAMS.pop(token, None)
    return got[1] if got else None


def run_block(spec: Spec, start: int, stop: int, hint: int | None = None,
              deadline: float | None = None, token: int = 0) -> Block:
    """Run schedules ``start .. stop-1`` of ``spec`` (see the module docstring).

    Args:
        hint: PCT's steps hint for this epoch (None: the strategy's own).
        deadline: a ``time.time()`` after which no schedule starts (but schedule 0).
        token: names the exploration, for a dfs stream that spans blocks.
    """
    sc, plan = loaded(spec)
    dfs = is_exhaustive(spec.strategy)
    it = _dfs_stream(spec, token, start) if dfs else stream(spec, start, hint)
    next_strategy = it.bare.__next__
    driver, keep_going, known = spec.driver, spec.keep_going, spec.known
    direct = driver == "direct"
    blk = Block(start, stop, upto=start - 1)
    cover: dict[int, int] = {}
    # A run is a pure function of (scenario, fault plan, tape): a tape seen before had
    # these very events, so its interleaving hash is looked up rather than recomputed
    # (a saturated exploration repeats tapes all the time). Only `ok` runs are memoized:
    # a soft lockup (wall-clock) may end a run whose tape another run shares.
    memo = _MEMO.setdefault(spec.key, {})
    seen: set[tuple] = set()
    longest = 0
    strat = None
    stop_flag = STOP
    k = None
    if direct:
        from .._kernel.drivers.direct import run_direct
    for i in range(start, stop):
        if i and (stop_flag[0] or deadline is not None and time.time() > deadline):
            break
        try:
            strat = next_strategy()
        except StopIteration:
            blk.exhausted = True
            strat = None
            break
        if direct:
            # One kernel for the block, reset for each schedule; a failing run's kernel
            # is handed to its Result (tape, events), so the next gets a new one.
            k = new_kernel(sc, strat, faults=plan) if k is None else reset_kernel(k, strat)
            run_direct(k)
            if k.error is not None:
                raise k.error
            verdict = k.outcome.verdict
            events, tape = k.events, k.tape
            strat.ran(len(tape))
        else:
            r = run(sc, strategy=strat, faults=plan, driver=driver)
            verdict, events, tape = r.verdict, r.trace.events, r.trace.tape
        blk.upto = i
        if verdict == "ok" and len(tape) <= MEMO_LENGTH:
            key = tuple(tape)
            h = memo.get(key)
            if h is None:
                h = interleaving(events)
                if len(memo) < MEMO_TAPES:
                    memo[key] = h
        else:
            h = interleaving(events)
        if h not in cover:
            cover[h] = i
        d = getattr(strat, "decisions", 0)
        if d > longest:
            longest = d
        if verdict != "ok":
            if direct:
                r = _result(k, sc, strat, plan, driver)
                k = None
            sig = signature(r)
            blk.hits[sig] = blk.hits.get(sig, 0) + 1
            if sig in seen:
                continue
            seen.add(sig)
            if sig in known:
                blk.again.append((i, sig, r.trace))
                continue
            blk.found.append((i, sig, r.trace))
            if not keep_going:
                break
    if dfs:
        _STREAMS[token] = (blk.upto + 1, it)   # the coordinator forgets it at the end
    blk.longest = longest
    blk.cover = list(cover.items())
    if strat is not None and blk.upto >= start:
        blk.last = (blk.upto, getattr(strat, "recorded", None) or strat.name, strat.seed,
                    strat.params())
    return blk


def rerun(spec: Spec, last: tuple) -> Any:
    """The Result of a block's ``last`` run, run again here (the report of an
    exploration that found nothing shows its last schedule)."""
    from .._strategies import make_strategy
    sc, plan = loaded(spec)
    _, name, seed, params = last
    return run(sc, strategy=make_strategy(name, seed, **params), faults=plan,
               driver=spec.driver)
