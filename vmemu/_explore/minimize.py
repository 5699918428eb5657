"""Minimization: shorten a failing schedule while keeping the same bug.

A schedule is described by its *deviations*: the decisions where it did something other
than the deterministic default (keep the current task while it can run, else the lowest
task id; never fire a fault). Preemptions, fired faults and unforced switches are all
deviations. :func:`minimize` removes deviations -- first in large chunks, then one at a
time, delta-debugging style -- then tries moving a deviation a decision or two, making it
pick another task, or choosing the first task to run, and keeps a candidate only when it
reaches the same verdict with the same :func:`~vmemu._explore.base.signature` (cycle shape) and
is strictly simpler: fewer preemptions, then fewer fired faults, then fewer deviations,
then a shorter tape. Costs only ever fall, so the search ends.

Candidates are replayed by :class:`TolerantReplay`, which never diverges: a tape entry that
names a task that cannot run, or a tape that runs out, falls back to the default. Every
candidate is therefore a valid schedule, and the minimized :class:`Result` records the full
tape it actually used, so ``vmemu replay`` reproduces it exactly once it is saved
(``result.trace.save(path)``); its strategy is recorded as ``minimized``, which has no
``vmemu run`` form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .._kernel.lockup import PREFIX as SOFT_LOCKUP
from .._result import Result
from .._run import run
from .._strategies.base import Strategy
from .base import signature

#: A tape entry meaning "take the default here" (real entries are task ids or 0/1).
DEFAULT = -1


class TolerantReplay(Strategy):
    """Replays a tape where it fits and falls back to the default where it does not.

    Attributes:
        log: per decision ``(kind, chosen, default, preempted)``; ``kind`` is ``task`` (chosen
            and default are tids) or ``bool`` (0/1).
    """

    name = "minimized"

    def __init__(self, tape: Sequence[int], seed: int | None = None) -> None:
        super().__init__(seed)
        self.tape = list(tape)
        self.pos = 0
        self.log: list[tuple[str, int, int, bool]] = []

    def _next(self) -> int:
        v = self.tape[self.pos] if self.pos < len(self.tape) else DEFAULT
        self.pos += 1
        return v

    def pick_task(self, runnable: Sequence[Any], current: Any) -> Any:
        v = self._next()
        cur_ok = current is not None and current in runnable
        default = current if cur_ok else runnable[0]
        chosen = next((t for t in runnable if t.tid == v), default)
        self.log.append(("task", chosen.tid, default.tid, cur_ok and chosen is not current))
        return chosen

    def pick_bool(self, p: float, site: str) -> bool:
        fire = self._next() == 1
        self.log.append(("bool", int(fire), 0, False))
        return fire


@dataclass
class _Attempt:
    """One replayed candidate: its result and how simple it is."""

    result: Result
    deviations: list[tuple[int, int]]      # (decision index, value)
    cost: tuple[int, int, int, int]        # preemptions, faults fired, deviations, tape length
    log: list[tuple[str, int, int, bool]]  # TolerantReplay.log of the run


def _attempt(result: Result, tape: Sequence[int], driver: str, faults: Any) -> _Attempt:
    strat = TolerantReplay(tape, seed=result.seed)
    r = run(result.scenario, strategy=strat, faults=faults, driver=driver)
    log = strat.log
    devs = [(i, chosen) for i, (_, chosen, default, _) in enumerate(log) if chosen != default]
    cost = (sum(1 for e in log if e[3]), sum(1 for e in log if e[0] == "bool" and e[1]),
            len(devs), len(log))
    return _Attempt(r, devs, cost, log)


def _tape(devs: Sequence[tuple[int, int]]) -> list[int]:
    if not devs:
        return []
    tape = [DEFAULT] * (devs[-1][0] + 1)
    for i, v in devs:
        tape[i] = v
    return tape


def preemptions(result: Result, *, faults: Any = None, driver: str = "direct") -> int:
    """How many preemptions ``result``'s schedule has (switches away from a runnable
    current task), found by replaying its decision tape."""
    return _attempt(result, result.trace.tape, driver, _faults(result, faults)).cost[0]


def _faults(result: Result, faults: Any) -> Any:
    return faults if faults is not None else result.faults


#: Candidate runs of the local search (removing and moving deviations).
LOCAL_RUNS = 200
#: Candidate runs in all, the preemption-bounded search for a cheaper schedule included.
MAX_RUNS = 3000


def minimize(result: Result, *, driver: str = "direct", max_runs: int = MAX_RUNS,
             faults: Any = None) -> Result:
    """A simpler schedule with the same verdict and cycle shape as ``result``.

    Two searches, both keeping only strictly simpler schedules with the same signature:

    1. a local one (:data:`LOCAL_RUNS` candidates at most): remove, move and retarget
       deviations (see :func:`_candidates`);
    2. if preemptions are left, a systematic one: dfs bounded by preemptions, deepened
       0, 1, ... up to one fewer than the best so far. Its first schedule with the same
       signature has the fewest preemptions any schedule needs for this bug (the
       deepening runs every cheaper schedule first); the local search then tidies it.
       When the budget runs out first, the best found so far is kept.

    Args:
        result: a failing run (an ``ok`` result is returned unchanged).
        driver: how candidates run (``direct`` is fastest; traces are the same).
        max_runs: the most candidate runs to try; the best found so far is returned.
        faults: the fault plan object, when ``result`` was run with one that has no path.

    Returns:
        The simplest run found (possibly ``result``'s own schedule, re-recorded with
        strategy ``minimized``), never more preemptions than ``result``.
    """
    if not result.failed or result.message.startswith(SOFT_LOCKUP):
        # (A soft lockup costs its threshold in CPU time per run: no candidates.)
        return result
    plan = _faults(result, faults)
    want = signature(result)
    best = _attempt(result, result.trace.tape, driver, plan)
    if signature(best.result) != want:  # pragma: no cover - the tape replays exactly
        return result
    budget = [max_runs - 1]
    best = _local(result, best, want, driver, plan, budget)
    if best.cost[0] and budget[0] > 0:
        cheaper = _fewer_preemptions(result, want, best.cost[0], driver, plan, budget)
        if cheaper is not None:
            cand = _attempt(result, cheaper.trace.tape, driver, plan)
            if cand.cost < best.cost and signature(cand.result) == want:
                best = _local(result, cand, want, driver, plan, budget)
    return best.result


def _local(result: Result, best: _Attempt, want: tuple, driver: str, plan: Any,
           budget: list[int]) -> _Attempt:
    tids = sorted({e[1] for e in best.log if e[0] == "task"}
                  | {e[2] for e in best.log if e[0] == "task"})
    runs = 0
    limit = min(LOCAL_RUNS, budget[0])
    while runs < limit:
        # Removals first (cheap, and they never add anything), then moves; any strictly
        # simpler candidate restarts the search from it.
        for devs in _candidates(best.deviations, tids, best.cost[0], len(best.log)):
            if runs >= limit:
                break
            cand = _attempt(result, _tape(devs), driver, plan)
            runs += 1
            if cand.cost < best.cost and signature(cand.result) == want:
                best = cand
                break
        else:
            break
    budget[0] -= runs
    return best


def _fewer_preemptions(result: Result, want: tuple, preempts: int, driver: str, plan: Any,
                       budget: list[int]) -> Result | None:
    """The first schedule of a preemption-bounded dfs (bound ``preempts - 1``) that
    fails with signature ``want``, or None within the budget."""
    from .._strategies import schedules
    for s in schedules("dfs", 0, bound="preemptions", max_bound=preempts - 1):
        if budget[0] <= 0:
            return None
        budget[0] -= 1
        r = run(result.scenario, strategy=s, faults=plan, driver=driver)
        if r.failed and signature(r) == want:
            return r
    return None


def _candidates(devs: list[tuple[int, int]], tids: list[int], preempts: int,
                length: int) -> Any:
    """Simpler-looking variants of a schedule's deviations, most promising first.

    1. Remove chunks of deviations, halving the chunk (delta debugging).
    2. Move one deviation a decision or two earlier or later: the same switch at another
       moment may make a later preemption unnecessary.
    3. Make one deviation pick another task.
    4. Choose the first task to run (a free choice, never a preemption), alone or
       instead of one deviation, which lets a schedule start where its bug needs it
       instead of preempting its way there.
    5. With two or more preemptions left, every schedule of a start choice and one
       switch.
    """
    chunk = max(1, len(devs) // 2)
    while chunk >= 1:
        for start in range(0, len(devs), chunk):
            yield devs[:start] + devs[start + chunk:]
        chunk //= 2
    taken = {i for i, _ in devs}
    for n, (i, v) in enumerate(devs):
        rest = devs[:n] + devs[n + 1:]
        for j in (i - 1, i + 1, i - 2, i + 2):
            if j >= 0 and j not in taken:
                yield sorted(rest + [(j, v)])
        for w in tids:
            if w != v:
                yield sorted(rest + [(i, w)])
    if 0 not in taken:
        # Alone it adds a deviation (so it only helps where it also removes preemptions);
        # with one deviation dropped it can trade a preemption for a free choice.
        for w in tids:
            yield [(0, w)] + devs
            for n in range(len(devs)):
                yield [(0, w)] + devs[:n] + devs[n + 1:]
    if preempts >= 2:
        # Local moves can stall between two-preemption schedules; sweep every schedule
        # of one free start choice and one switch (CHESS's preemption bound 1) before
        # giving up: it is |tasks|^2 x decisions runs, and max_runs caps it.
        for w in tids:
            for i in range(1, length):
                for v in tids:
                    yield [(0, w), (i, v)]
