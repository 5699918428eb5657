"""A lockdep session: learn the graph from many schedules, then confirm what it predicts.

1. Run ``runs`` schedules of ``explore``'s default portfolio (random and PCT alternating,
   seeds ``seed .. seed+runs-1``) with a :class:`~.graph.Recorder` attached, merging one
   graph; every first occurrence remembers the command that re-runs its schedule.
2. Run every dirty page class's writeback routine once in a synthetic reclaim context
   (``MemoryManager.synthetic_writeback``), so ``fs_reclaim -> lock`` edges are known even
   when no schedule ever ran short of memory.
3. Report every cycle and recursion; one that some schedule really deadlocked on (its
   wait-for cycle is on exactly the cycle's locks) carries that schedule's replay command.
4. For every prediction no schedule confirmed, a *targeted search*: ``confirm`` more
   schedules (seeds after the learning ones) under a fault plan that preempts lock
   acquisitions and exhausts memory at allocations (``confirm_faults.yaml``; the user's
   own plan instead when one is given), looking for a deadlock on exactly those locks.
   A prediction lockdep makes from the lock order alone is often one bad moment away
   from real: a preemption between the two acquisitions, or an allocation that finds
   memory short. What it finds is minimized and, with a findings folder, saved.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._explore import DEFAULT_STRATEGY, explore, finding_path, signature
from .._kernel import lockup
from .._result import Result
from .._run import _as_scenario, _load_faults, run
from .._scenario.model import Scenario, TaskSpec
from .._strategies import schedules
from .graph import PSEUDO_LOCKS, DepGraph, Edge

#: Schedules learned from when the user gives no ``--runs``.
DEFAULT_RUNS = 100
#: Schedules of the targeted search when the user gives no ``--confirm``.
DEFAULT_CONFIRM = 200
#: The targeted search's fault plan (a file, so that its findings replay).
CONFIRM_FAULTS = Path(__file__).with_name("confirm_faults.yaml")


@dataclass
class Cycle:
    """A predicted circular dependency.

    Attributes:
        edges: ``X0 -> X1 -> ... -> X0``; the last edge is the one that closed the cycle.
        replay: the command replaying a schedule that deadlocked on these locks, if any.
        needs_writer: rwsems in the cycle taken for read that no task ever takes for write
            (such a cycle blocks only if a writer queues, as lockdep assumes one may).
    """

    edges: list[Edge]
    replay: str | None = None
    needs_writer: list[str] = field(default_factory=list)
    confirmed_by: str | None = None   # "learning" or "targeted" (which search found it)

    @property
    def chain(self) -> list[Edge]:
        """The edges starting with the one that closed the cycle: the held lock first."""
        return [self.edges[-1]] + self.edges[:-1]

    @property
    def locks(self) -> list[str]:
        """The cycle's locks, the closing task's held lock first."""
        return [e.src for e in self.chain]

    @property
    def real_locks(self) -> frozenset[str]:
        return frozenset(n for n in self.locks if n not in PSEUDO_LOCKS)

    def to_json(self) -> dict[str, Any]:
        return {"locks": self.locks, "chain": " -> ".join(self.locks + [self.locks[0]]),
                "edges": [e.to_json() for e in self.chain], "confirmed": bool(self.replay),
                "confirmed_by": self.confirmed_by, "replay": self.replay,
                "needs_writer": self.needs_writer}


@dataclass
class LockdepResult:
    """What a lockdep session found.

    Attributes:
        scenario: the scenario.
        graph: the merged dependency graph.
        runs: schedules learned from; ``seed`` the first one's seed.
        synthetic: page classes whose writeback ran in a synthetic reclaim context.
        cycles: every predicted cycle; ``cut`` when there were too many to list.
        verdicts: how many schedules ended with each verdict.
        confirm: schedules the targeted search ran (0: it did not run).
        confirm_faults: the fault plan it ran under (a path), if it ran.
        observed: learning schedules that deadlocked or hung in a way no predicted
            cycle or recursion explains (the first of each kind): reported too, since a
            deadlock seen is more than a prediction.
    """

    scenario: Scenario
    graph: DepGraph
    runs: int
    seed: int
    synthetic: list[str]
    cycles: list[Cycle]
    cut: bool
    verdicts: dict[str, int]
    confirm: int = 0
    confirm_faults: str | None = None
    observed: list[Result] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """True when anything is reported (the CLI then exits 1)."""
        g = self.graph
        return bool(self.cycles or g.recursions or g.bad_unlocks or self.observed)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: the cycles (and the rest of the findings) as data."""
        g = self.graph
        return {
            "scenario": self.scenario.name,
            "scenario_path": self.scenario.path,
            "found": self.found,
            "runs": self.runs,
            "seed": self.seed,
            "synthetic_writeback": self.synthetic,
            "verdicts": self.verdicts,
            "confirm": self.confirm,
            "confirm_faults": self.confirm_faults,
            "locks": g.locks,
            "dependencies": [e.to_json() for e in sorted(g.edges.values(),
                                                          key=lambda e: e.order)],
            "cycles": [c.to_json() for c in self.cycles],
            "cycles_cut": self.cut,
            "recursive": [r.to_json() for r in g.recursions.values()],
            "bad_unlocks": [b.to_json() for b in g.bad_unlocks.values()],
            "observed": [{"verdict": r.verdict, "message": r.message, "cycle": r.cycle,
                          "replay": r.replay_command()} for r in self.observed],
        }


def lockdep(scenario: Scenario | str | os.PathLike, *, runs: int = DEFAULT_RUNS,
            seed: int = 0, faults: Any = None, driver: str = "trio",
            confirm: int = DEFAULT_CONFIRM,
            findings_dir: str | os.PathLike | None = None) -> LockdepResult:
    """Learn a scenario's lock dependencies over ``runs`` schedules and find the cycles.

    Args:
        scenario: a loaded scenario or a path.
        runs: schedules to run (schedules ``0 .. runs-1`` of seed ``seed``, as ``explore``).
        seed: the exploration seed (schedule ``i`` uses ``schedule_seed(seed, i)``).
        faults: a fault plan (path or object) applied to every schedule.
        driver: how tasks are resumed; graphs are the same with every driver.
        confirm: schedules of the targeted search for predictions no learning schedule
            deadlocked on (0: none).
        findings_dir: where the targeted search saves what it confirms (its replay is
            then ``vmemu replay PATH``); without one, the replay command re-runs the
            schedule as found.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    if confirm < 0:
        raise ValueError("confirm must not be negative")
    sc = _as_scenario(scenario)
    plan = _load_faults(faults)
    g = DepGraph(sc)
    # How a wait-for cycle names a lock or an event ("mutex A", "completion done").
    describe = {f"{kind} {name}": name for name, kind in {**sc.locks, **sc.events}.items()}
    deadlocks: dict[frozenset[str], Result] = {}
    stuck: dict[tuple, Result] = {}       # every kind of deadlock or hang seen
    verdicts: dict[str, int] = {}
    with lockup.shorter_after_first():   # (a busy-waiting scenario locks up often)
        for strat, _ in zip(schedules(DEFAULT_STRATEGY, seed), range(runs)):
            rec = g.recorder(f"schedule seed {strat.seed} ({strat.name})", strat.seed)
            known = set(g.bad_unlocks)
            r = run(sc, strategy=strat, faults=plan, driver=driver, observers=[rec])
            rec.ran(r.replay_command())
            verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
            for key in set(g.bad_unlocks) - known:
                g.bad_unlocks[key].replay = r.replay_command()
            locks = _deadlock_locks(r, describe)
            if locks and locks not in deadlocks:
                deadlocks[locks] = r
            if r.verdict in ("deadlock", "hang"):
                stuck.setdefault(signature(r), r)
    synthetic = _synthetic_writeback(sc, g, driver)
    cycles_edges, cut = g.cycles()
    cycles = []
    for edges in cycles_edges:
        c = Cycle(edges)
        c.needs_writer = sorted({e.dst for e in edges if e.dst_mode == "read"
                                 and e.dst not in g.written})
        cycles.append(c)
    # What each prediction needs to be real: a deadlock on exactly these locks.
    wanted: list[tuple[frozenset[str], Any]] = [(c.real_locks, c) for c in cycles]
    wanted += [(frozenset({rc.lock}), rc) for rc in g.recursions.values()]
    for locks, item in wanted:
        real = deadlocks.get(locks)
        if real is not None:
            item.replay, item.confirmed_by = real.replay_command(), "learning"
    explained = {locks for locks, _ in wanted}
    observed = [r for r in stuck.values()
                if _deadlock_locks(r, describe) not in explained]
    res = LockdepResult(sc, g, runs, seed, synthetic, cycles, cut,
                        dict(sorted(verdicts.items())), observed=observed)
    pending = [(locks, item) for locks, item in wanted if item.replay is None and locks]
    if confirm and pending:
        res.confirm = confirm
        res.confirm_faults = _confirm(sc, plan, pending, seed + runs, confirm, describe,
                                      findings_dir)
    return res


def _deadlock_locks(r: Result, describe: dict[str, str]) -> frozenset[str]:
    """The locks and events a deadlocked (or hung) run's wait-for cycle waits on; empty
    otherwise."""
    if r.verdict not in ("deadlock", "hang") or not r.cycle:
        return frozenset()
    return frozenset(describe[c["waits_for"]] for c in r.cycle if c["waits_for"] in describe)


def _confirm(sc: Scenario, plan: Any, pending: list[tuple[frozenset[str], Any]],
             seed: int, runs: int, describe: dict[str, str],
             findings_dir: str | os.PathLike | None) -> str | None:
    """The targeted search (step 4 of the module docstring); returns its plan's path.

    It runs on the direct driver whatever the session's: traces are the same on every
    driver, and this is a search of many schedules.
    """
    if plan is None:
        plan = _load_faults(str(CONFIRM_FAULTS))
    x = explore(sc, runs=runs, seed=seed, faults=plan, driver="direct", keep_going=True)
    for r in x.findings:
        locks = _deadlock_locks(r, describe)
        for want, item in pending:
            if want != locks or item.replay is not None:
                continue
            if findings_dir is not None:
                r.trace_path = r.trace.save(finding_path(findings_dir, sc.name, r.trace))
                item.replay = r.replay_command()
            else:   # the schedule as found, which `vmemu run` rebuilds from its seed
                item.replay = r.extra.get("found_by") or r.replay_command()
            item.confirmed_by = "targeted"
    return getattr(plan, "path", None)


def _synthetic_writeback(sc: Scenario, g: DepGraph, driver: str) -> list[str]:
    """Run each dirty class's writeback once, alone, in a synthetic reclaim context."""
    if sc.memory is None:
        return []
    done = []
    for pc in sc.memory.classes:
        if pc.writeback is None:
            continue
        rec = g.recorder(f"synthetic writeback of {pc.name}", None, synthetic=True)

        async def body(ctx: Any, cls: str = pc.name) -> None:
            await ctx.k.mm.synthetic_writeback(ctx.task, cls)

        # The scenario's own tasks are left out: the routine runs alone, as if reclaim
        # had picked a dirty page of its class with every lock free.
        alone = dataclasses.replace(sc, tasks=(TaskSpec(f"reclaim:{pc.name}", fn=body),))
        run(alone, seed=0, strategy="random", driver=driver, observers=[rec])
        done.append(pc.name)
    return done
