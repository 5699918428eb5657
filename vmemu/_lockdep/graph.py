"""The lock dependency graph and the observer that builds it from runs.

A :class:`Recorder` is attached to one run (``k.observers``); every run of a lockdep
session feeds the same :class:`DepGraph`, which keeps only the *first occurrence* of each
dependency, recursion and bad unlock (in the order they were first seen, so reports are
deterministic). Nodes are lock names; counted locks (``fork0``, ``fork1`` ...) are
separate locks because the scenario format has no lock classes.

The rules are lockdep's (``Documentation/locking/lockdep-design.rst``):

- taking ``B`` while the most recent held lock is ``A`` records ``A -> B``; if ``A`` was
  taken by a trylock, the lock below it gets an edge too (a trylock itself never waits,
  so it records no edge, but what is taken while it is held can);
- re-taking a held lock is *recursive locking*, except on a ``recursive`` lock; rwsem
  readers are non-recursive (a writer may queue in between), so read-after-read counts;
- an allocation that may enter reclaim "takes" the reclaim pseudo-lock of every kind of
  writeback its GFP context allows (``fs_reclaim`` needs ``__GFP_FS``, ``io_reclaim``
  ``__GFP_IO``, ``reclaim`` only ``__GFP_DIRECT_RECLAIM``), and a writeback routine runs
  while holding its class's pseudo-lock.

Events (waitqueues and completions) are nodes too, as crossrelease and DEPT make them:

- waiting for event ``E`` while holding ``L`` records ``L -> E`` (mode ``wait``); a
  timed wait records nothing (its timeout ends it whether or not ``E`` comes);
- signalling (or completing) ``E`` records ``E -> M`` for everything the signalling
  task had to get through first: every lock it acquired, every event it waited for and
  every reclaim point it passed since it started (mode ``signal``). Whoever waits for
  ``E`` waits for all of those too. Being inside reclaim or a writeback routine is not
  such a step: a signal from inside reclaim is part of the allocation that entered it,
  which has not got through its reclaim point yet, so it adds no ``E -> pseudo-lock``
  edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._kernel._gfp import FS, IO
from .._scenario.model import PageClass, Scenario

#: Reclaim pseudo-locks, by what the writeback needs.
FS_RECLAIM, IO_RECLAIM, RECLAIM = "fs_reclaim", "io_reclaim", "reclaim"
PSEUDO_LOCKS = (FS_RECLAIM, IO_RECLAIM, RECLAIM)
#: Elementary cycles listed at most (a dense graph has exponentially many).
MAX_CYCLES = 64
#: Edge visits the cycle search may spend before it stops (the tool never hangs).
SEARCH_BUDGET = 200_000


def pseudo_lock(pc: PageClass) -> str:
    """The pseudo-lock a writeback of class ``pc`` runs under."""
    if "fs" in pc.needs:
        return FS_RECLAIM
    if "io" in pc.needs:
        return IO_RECLAIM
    return RECLAIM


@dataclass(frozen=True, slots=True)
class Held:
    """A lock held by a task: which, in which mode, and where it was taken."""

    lock: str
    mode: str               # "write" (exclusive) or "read"
    frame: str
    at: str                 # "file:line", or "" when unknown
    step: str
    trylock: bool = False

    def where(self) -> str:
        return _where(self.frame, self.at, self.step)

    def to_json(self) -> dict[str, Any]:
        return {"lock": self.lock, "mode": self.mode, "frame": self.frame, "at": self.at,
                "step": self.step}


@dataclass(slots=True)
class Occurrence:
    """The first time something was seen: task, run, emulated stack, locks held."""

    task: str
    run: str                # "schedule seed 3 (random)" or "synthetic writeback of shm"
    seed: int | None        # the schedule's seed (None for a synthetic run)
    stack: tuple[tuple[str, str, str], ...]   # (frame, at, step), outermost first
    held: tuple[Held, ...]
    replay: str | None = None   # the command re-running that schedule (set after it ends)

    @property
    def at(self) -> str:
        return self.stack[-1][1] if self.stack else ""

    def where(self) -> str:
        return _where(*self.stack[-1]) if self.stack else self.task

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "run": self.run, "seed": self.seed, "replay": self.replay,
                "at": self.at,
                "stack": [{"frame": f, "at": a, "step": s} for f, a, s in self.stack],
                "held": [h.to_json() for h in self.held]}


@dataclass(slots=True)
class Edge:
    """A dependency ``src -> dst``: ``dst`` was taken (in ``dst_mode``; ``wait`` for an
    event waited for) while ``src`` was held (in ``src_mode``), or — ``src_mode`` is
    ``signal`` — event ``src`` was signalled after ``dst`` had been taken or waited for
    (``via``: where). ``order`` ranks first occurrences over the whole session."""

    src: str
    dst: str
    src_mode: str
    dst_mode: str
    first: Occurrence
    order: int
    via: Held | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"from": self.src, "to": self.dst, "from_mode": self.src_mode,
               "to_mode": self.dst_mode, **self.first.to_json()}
        if self.via is not None:
            out["to_at"] = self.via.at
        return out


@dataclass(slots=True)
class Recursion:
    """A task took ``lock`` (in ``mode``) while already holding it (``held``)."""

    lock: str
    mode: str
    held: Held
    first: Occurrence
    order: int
    replay: str | None = None     # a schedule where it deadlocked for real, if any
    confirmed_by: str | None = None   # "learning" or "targeted" (which search found it)

    def to_json(self) -> dict[str, Any]:
        return {"lock": self.lock, "mode": self.mode, "held_mode": self.held.mode,
                "held_at": self.held.at, "replay": self.replay,
                "confirmed_by": self.confirmed_by, **self.first.to_json()}


@dataclass(slots=True)
class BadUnlock:
    """A release of a lock the task did not hold (double unlock, unlock not held)."""

    lock: str
    message: str
    first: Occurrence
    order: int
    replay: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"lock": self.lock, "message": self.message, "replay": self.replay,
                **self.first.to_json()}


class DepGraph:
    """The dependency graph merged over every run of a lockdep session.

    Attributes:
        edges: ``(src, dst) -> Edge``, first occurrence only.
        recursions: lock name -> first :class:`Recursion`.
        bad_unlocks: ``(lock, file:line) -> BadUnlock``.
        kinds: lock name -> kind (``pseudo`` for the reclaim pseudo-locks).
        written: rwsems some task took (or tried to take) for write.
        pseudo: the pseudo-locks this scenario's writeback routines run under.
    """

    def __init__(self, scenario: Scenario) -> None:
        classes = scenario.memory.classes if scenario.memory is not None else ()
        self.classes: dict[str, PageClass] = {c.name: c for c in classes}
        # Only pseudo-locks with a writeback behind them can close a cycle; recording
        # edges into the others would only add noise to the graph.
        self.pseudo = {pseudo_lock(c) for c in classes if c.writeback is not None}
        self.edges: dict[tuple[str, str], Edge] = {}
        self.recursions: dict[str, Recursion] = {}
        self.bad_unlocks: dict[tuple[str, str], BadUnlock] = {}
        self.kinds: dict[str, str] = {}
        self.written: set[str] = set()
        self._order = 0

    def recorder(self, run: str, seed: int | None, *, synthetic: bool = False) -> "Recorder":
        """A fresh observer for one run that feeds this graph."""
        return Recorder(self, run, seed, synthetic)

    def _next(self) -> int:
        self._order += 1
        return self._order

    @property
    def locks(self) -> list[str]:
        """Every lock that appears in a dependency, sorted."""
        return sorted({n for e in self.edges for n in e})

    def cycles(self) -> tuple[list[list[Edge]], bool]:
        """Every elementary cycle (up to :data:`MAX_CYCLES`), and whether the list is cut.

        Each cycle is a list of edges ``X0 -> X1 -> ... -> X0`` rotated so that its last
        edge is the newest one learned from a schedule: the dependency whose addition
        closed the cycle, which is what lockdep reports as "trying to acquire".
        """
        succ: dict[str, list[str]] = {}
        for src, dst in self.edges:
            succ.setdefault(src, []).append(dst)
        for v in succ.values():
            v.sort()
        nodes = sorted(set(succ) | {d for v in succ.values() for d in v})
        rank = {n: i for i, n in enumerate(nodes)}
        found: list[list[str]] = []
        work = 0
        cut = False
        for s in nodes:
            # Cycles whose smallest node is s: a DFS over larger nodes only (Johnson's
            # decomposition, without the blocking sets: graphs here are small).
            path, on_path = [s], {s}
            stack = [iter(succ.get(s, ()))]
            while stack and not cut:
                nxt = next(stack[-1], None)
                if nxt is None:
                    stack.pop()
                    on_path.discard(path.pop())
                    continue
                work += 1
                if work > SEARCH_BUDGET:
                    cut = True
                elif nxt == s:
                    found.append(list(path))
                    cut = len(found) >= MAX_CYCLES
                elif rank[nxt] > rank[s] and nxt not in on_path:
                    path.append(nxt)
                    on_path.add(nxt)
                    stack.append(iter(succ.get(nxt, ())))
            if cut:
                break
        out = []
        for nodes_ in found:
            edges = [self.edges[(nodes_[i], nodes_[(i + 1) % len(nodes_)])]
                     for i in range(len(nodes_))]
            # A schedule's edge rather than a synthetic writeback's, when there is one:
            # the report then starts from the user's task, as a real lockdep splat would.
            newest = max(range(len(edges)),
                         key=lambda i: (edges[i].first.seed is not None, edges[i].order))
            edges = edges[newest + 1:] + edges[:newest + 1]
            out.append(edges)
        out.sort(key=lambda es: (es[-1].order, len(es), [e.src for e in es]))
        return out, cut


class Recorder:
    """The observer of one run (see ``Observers`` in docs/internals.md).

    It keeps its own per-task stack of :class:`Held` locks (modes, trylock marks and
    where each was taken, which the kernel's ``t.held`` does not know) plus the reclaim
    pseudo-locks, and reconciles it with ``t.held`` on every release, because a semaphore
    may be released by a task other than the one that took it.
    """

    def __init__(self, graph: DepGraph, run: str, seed: int | None, synthetic: bool) -> None:
        self.g = graph
        self.run = run
        self.seed = seed
        self.synthetic = synthetic
        self.held: dict[int, list[Held]] = {}
        # What each task got through so far (acquired, waited for, reclaim points), in
        # order: what a signal of an event by that task depends on.
        self.history: dict[int, dict[str, Held]] = {}
        self.tasks: dict[int, Any] = {}
        self.pending: dict[int, str] = {}
        self.created: list[Occurrence] = []   # to stamp with the replay command later

    def ran(self, replay: str) -> None:
        """The run is over: every first occurrence it found can be re-run with ``replay``."""
        for occ in self.created:
            occ.replay = replay

    # ------------------------------------------------------------ lock hooks
    def acquiring(self, t: Any, lock: Any, mode: str) -> None:
        """Before ``t`` tries to take ``lock``: check recursion and record dependencies."""
        self.pending[t.tid] = mode
        self.g.kinds.setdefault(_cls(lock), lock.kind)
        if lock.kind == "rwsem" and mode != "read_lock":
            self.g.written.add(_cls(lock))
        if mode == "trylock":
            return          # a trylock never waits: it cannot close a cycle
        read = mode == "read_lock"
        # rwlock_t readers recurse (lockdep's recursive read): never a recursion.
        self._acquire(t, _cls(lock), "read" if read else "write",
                      reentrant=lock.kind == "recursive" or (read and lock.kind == "rwlock"))

    def acquired(self, t: Any, lock: Any, mode: str) -> None:
        """``t`` now holds ``lock``."""
        tried = self.pending.pop(t.tid, mode) == "trylock"
        self._push(t, _cls(lock), "read" if mode == "read_lock" else "write", tried)
        self._passed(t, self._held(t)[-1])

    def released(self, t: Any, lock: Any, mode: str) -> None:
        """A release: drop our entries the kernel no longer holds (any task's)."""
        name = _cls(lock)
        for tid in sorted(self.held):
            mine = self.held[tid]
            have = sum(1 for r in self.tasks[tid].held if _cls(r) == name)
            extra = sum(1 for h in mine if h.lock == name) - have
            for i in reversed(range(len(mine))):
                if extra <= 0:
                    break
                if mine[i].lock == name:
                    del mine[i]
                    extra -= 1

    def bad_unlock(self, t: Any, lock: Any, text: str) -> None:
        """A release of a lock ``t`` may not release (the run ends with ``bug``)."""
        if self.synthetic:
            return          # a writeback run out of its real context proves nothing
        occ = self._occurrence(t)
        key = (_cls(lock), occ.at)
        if key not in self.g.bad_unlocks:
            self.g.bad_unlocks[key] = BadUnlock(_cls(lock), text, occ, self.g._next())

    # ------------------------------------------------------------ event hooks
    def waiting(self, t: Any, event: Any, state: str) -> None:
        """``t`` waits for ``event``: what it holds now depends on the event.

        A timed wait (``state`` is ``timed``) records nothing, as DEPT does: its timeout
        ends it even if the event never comes, so neither what ``t`` holds nor what it
        signals later depends on the event."""
        if state == "timed":
            return
        name = event.name
        self.g.kinds.setdefault(name, event.kind)
        self._acquire(t, name, "wait", reentrant=True)
        self._passed(t, Held(name, "wait", *_site(t.stack[-1])))

    def signalling(self, t: Any, event: Any, op: str) -> None:
        """``t`` signals ``event``: the event depends on all ``t`` got through first."""
        name = event.name
        g = self.g
        g.kinds.setdefault(name, event.kind)
        occ: Occurrence | None = None
        for h in self.history.get(t.tid, {}).values():
            key = (name, h.lock)
            if h.lock in PSEUDO_LOCKS and t.reclaiming:
                # Signalled from inside reclaim: the allocation that passed the reclaim
                # point has not got through it yet (the signal is part of its reclaim).
                continue
            if h.lock != name and key not in g.edges:
                if occ is None:
                    occ = self._occurrence(t)
                g.edges[key] = Edge(name, h.lock, "signal", h.mode, occ, g._next(), via=h)

    def _passed(self, t: Any, h: Held) -> None:
        self.history.setdefault(t.tid, {}).setdefault(h.lock, h)

    # ------------------------------------------------------------ memory hooks
    def reclaim_point(self, t: Any, gfp: frozenset[str]) -> None:
        """An allocation that may enter reclaim under the effective mask ``gfp`` (the
        memory manager calls this only for a mask with ``__GFP_DIRECT_RECLAIM``, from a
        task without ``PF_MEMALLOC``)."""
        may = [FS_RECLAIM] if FS in gfp else []
        may += [IO_RECLAIM] if IO in gfp else []
        may.append(RECLAIM)
        here = _site(t.stack[-1])
        for p in may:
            if p in self.g.pseudo:
                self.g.kinds.setdefault(p, "pseudo")
                # Like lockdep's fs_reclaim_acquire()+release(): a dependency, no hold.
                self._acquire(t, p, "write", reentrant=False)
                self._passed(t, Held(p, "write", *here))

    def writeback_begin(self, t: Any, cls: Any) -> None:
        """``t`` starts a writeback routine: it now holds the class's pseudo-lock."""
        p = self._pseudo_of(cls)
        self.g.kinds.setdefault(p, "pseudo")
        # No dependencies to record: a writeback runs inside the reclaim of an allocation
        # whose reclaim point recorded (held lock -> p) with these very holds, or in
        # kswapd or lockdep's synthetic context, which hold nothing.
        self._push(t, p, "write", False)

    def writeback_end(self, t: Any, cls: Any) -> None:
        p = self._pseudo_of(cls)
        mine = self._held(t)
        for i in reversed(range(len(mine))):
            if mine[i].lock == p:
                del mine[i]
                return

    # ------------------------------------------------------------ internals
    def _pseudo_of(self, cls: Any) -> str:
        pc = cls if isinstance(cls, PageClass) else self.g.classes.get(str(cls))
        return pseudo_lock(pc) if pc is not None else FS_RECLAIM

    def _held(self, t: Any) -> list[Held]:
        if t.tid not in self.held:
            self.held[t.tid] = []
            self.tasks[t.tid] = t
        return self.held[t.tid]

    def _push(self, t: Any, name: str, mode: str, tried: bool) -> None:
        self._held(t).append(Held(name, mode, *_site(t.stack[-1]), tried))

    def _acquire(self, t: Any, name: str, mode: str, *, reentrant: bool) -> None:
        g = self.g
        held = self._held(t)
        occ: Occurrence | None = None
        for h in held:
            if h.lock == name:
                if not reentrant and name not in g.recursions:
                    occ = self._occurrence(t)
                    g.recursions[name] = Recursion(name, mode, h, occ, g._next())
                return      # lockdep stops at a recursion: no edges from it
        for h in reversed(held):
            key = (h.lock, name)
            if key not in g.edges:
                occ = occ or self._occurrence(t)
                g.edges[key] = Edge(h.lock, name, h.mode, mode, occ, g._next())
            if not h.trylock:
                break

    def _occurrence(self, t: Any) -> Occurrence:
        stack = tuple(_site(f) for f in t.stack)
        occ = Occurrence(t.name, self.run, self.seed, stack, tuple(self._held(t)))
        self.created.append(occ)
        return occ


def _site(f: Any) -> tuple[str, str, str]:
    """Where a stack frame is: ``(frame name, "file:line" or "", the step's text)``."""
    return f.name, str(f.loc) if f.loc else "", f.what


def _where(frame: str, at: str, step: str) -> str:
    """``bread (s.yaml:12): alloc 1 (GFP_KERNEL)``."""
    return frame + (f" ({at})" if at else "") + (f": {step}" if step else "")


def _cls(lock: Any) -> str:
    """The graph node of a lock: its lockdep class (its own name unless grouped)."""
    return getattr(lock, "lock_class", None) or lock.name
