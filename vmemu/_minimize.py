"""Minimization: shorten a failing schedule while keeping the same bug.

A schedule is described by its *deviations*: the decisions where it did something other
than the deterministic default (keep the current task while it can run, else the lowest
task id; never fire a fault). Preemptions, fired faults and unforced switches are all
deviations. :func:`minimize` removes deviations -- first in large chunks, then one at a
time, delta-debugging style -- and keeps a candidate only when it reaches the same verdict
with the same :func:`~vmemu._explore.signature` (cycle shape) and is strictly simpler:
fewer preemptions, then fewer fired faults, then fewer deviations, then a shorter tape.

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

from ._explore import signature
from ._result import Result
from ._run import run
from ._strategies.base import Strategy

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


def _attempt(result: Result, tape: Sequence[int], driver: str, faults: Any) -> _Attempt:
    strat = TolerantReplay(tape, seed=result.seed)
    r = run(result.scenario, strategy=strat, faults=faults, driver=driver)
    log = strat.log
    devs = [(i, chosen) for i, (_, chosen, default, _) in enumerate(log) if chosen != default]
    cost = (sum(1 for e in log if e[3]), sum(1 for e in log if e[0] == "bool" and e[1]),
            len(devs), len(log))
    return _Attempt(r, devs, cost)


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


def minimize(result: Result, *, driver: str = "direct", max_runs: int = 200,
             faults: Any = None) -> Result:
    """A simpler schedule with the same verdict and cycle shape as ``result``.

    Args:
        result: a failing run (an ``ok`` result is returned unchanged).
        driver: how candidates run (``direct`` is fastest; traces are the same).
        max_runs: the most candidate runs to try; the best found so far is returned.
        faults: the fault plan object, when ``result`` was run with one that has no path.

    Returns:
        The simplest run found (possibly ``result``'s own schedule, re-recorded with
        strategy ``minimized``), never more preemptions than ``result``.
    """
    if not result.failed:
        return result
    plan = _faults(result, faults)
    want = signature(result)
    best = _attempt(result, result.trace.tape, driver, plan)
    runs = 1
    if signature(best.result) != want:  # pragma: no cover - the tape replays exactly
        return result
    progress = True
    while progress and runs < max_runs:
        progress = False
        devs = best.deviations
        chunk = max(1, len(devs) // 2)
        while chunk >= 1 and not progress and runs < max_runs:
            for start in range(0, len(devs), chunk):
                if runs >= max_runs:
                    break
                cand = _attempt(result, _tape(devs[:start] + devs[start + chunk:]), driver, plan)
                runs += 1
                if cand.cost < best.cost and signature(cand.result) == want:
                    best, progress = cand, True
                    break
            chunk //= 2
    return best.result
