"""A lockdep session: learn the graph from many schedules, then confirm what it predicts.

1. Run ``runs`` schedules of ``explore``'s default portfolio (random and PCT alternating,
   seeds ``seed .. seed+runs-1``) with a :class:`~.graph.Recorder` attached, merging one
   graph; every first occurrence remembers the command that re-runs its schedule.
2. Run every dirty page class's writeback routine once in a synthetic reclaim context
   (``MemoryManager.synthetic_writeback``), so ``fs_reclaim -> lock`` edges are known even
   when no schedule ever ran short of memory.
3. Report every cycle and recursion; one that some schedule really deadlocked on (its
   wait-for cycle is on exactly the cycle's locks) carries that schedule's replay command.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from .._explore import DEFAULT_STRATEGY
from .._result import Result
from .._run import _as_scenario, _load_faults, run
from .._scenario.model import Scenario, TaskSpec
from .._strategies import schedules
from .graph import PSEUDO_LOCKS, DepGraph, Edge

#: Schedules learned from when the user gives no ``--runs``.
DEFAULT_RUNS = 100


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
                "replay": self.replay, "needs_writer": self.needs_writer}


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
    """

    scenario: Scenario
    graph: DepGraph
    runs: int
    seed: int
    synthetic: list[str]
    cycles: list[Cycle]
    cut: bool
    verdicts: dict[str, int]

    @property
    def found(self) -> bool:
        """True when anything is reported (the CLI then exits 1)."""
        g = self.graph
        return bool(self.cycles or g.recursions or g.bad_unlocks)

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
            "locks": g.locks,
            "dependencies": [e.to_json() for e in sorted(g.edges.values(),
                                                          key=lambda e: e.order)],
            "cycles": [c.to_json() for c in self.cycles],
            "cycles_cut": self.cut,
            "recursive": [r.to_json() for r in g.recursions.values()],
            "bad_unlocks": [b.to_json() for b in g.bad_unlocks.values()],
        }


def lockdep(scenario: Scenario | str | os.PathLike, *, runs: int = DEFAULT_RUNS,
            seed: int = 0, faults: Any = None, driver: str = "trio") -> LockdepResult:
    """Learn a scenario's lock dependencies over ``runs`` schedules and find the cycles.

    Args:
        scenario: a loaded scenario or a path.
        runs: schedules to run (seeds ``seed`` to ``seed + runs - 1``, as ``explore``).
        seed: the first schedule's seed.
        faults: a fault plan (path or object) applied to every schedule.
        driver: how tasks are resumed; graphs are the same with every driver.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    sc = _as_scenario(scenario)
    plan = _load_faults(faults)
    g = DepGraph(sc)
    describe = {f"{kind} {name}": name for name, kind in sc.locks.items()}
    deadlocks: dict[frozenset[str], Result] = {}
    verdicts: dict[str, int] = {}
    for strat, _ in zip(schedules(DEFAULT_STRATEGY, seed), range(runs)):
        rec = g.recorder(f"schedule seed {strat.seed} ({strat.name})", strat.seed)
        known = set(g.bad_unlocks)
        r = run(sc, strategy=strat, faults=plan, driver=driver, observers=[rec])
        rec.ran(r.replay_command())
        verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
        for key in set(g.bad_unlocks) - known:
            g.bad_unlocks[key].replay = r.replay_command()
        if r.verdict in ("deadlock", "hang") and r.cycle:
            locks = frozenset(describe[c["waits_for"]] for c in r.cycle
                              if c["waits_for"] in describe)
            if locks and locks not in deadlocks:
                deadlocks[locks] = r
    synthetic = _synthetic_writeback(sc, g, driver)
    cycles_edges, cut = g.cycles()
    cycles = []
    for edges in cycles_edges:
        c = Cycle(edges)
        real = deadlocks.get(c.real_locks)
        c.replay = real.replay_command() if real is not None else None
        c.needs_writer = sorted({e.dst for e in edges if e.dst_mode == "read"
                                 and e.dst not in g.written})
        cycles.append(c)
    for rc in g.recursions.values():
        real = deadlocks.get(frozenset({rc.lock}))
        rc.replay = real.replay_command() if real is not None else None
    return LockdepResult(sc, g, runs, seed, synthetic, cycles, cut, dict(sorted(
        verdicts.items())))


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
