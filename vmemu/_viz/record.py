"""Re-run a finished run's decision tape with a recorder attached, step by step.

The canonical event list says what each task did, but not who ran at each step, who
was runnable meanwhile, when a sleeping task woke, or how many pages were free between
two memory events. A run is a pure function of its tape, so instead of widening the
hot path for every run we replay the tape once more, on the trio driver (which asks
``Kernel.next_task`` at every step; the direct driver decides forced steps itself), with:

- ``next_task`` wrapped: which task was picked, why the previous one stopped running
  (still runnable, blocked on what, sleeping, in IO, done), which tasks became runnable;
- the event log hook: the step of each event and the free pages after it;
- an observer (``docs/internals.md``, "Observers"): lock holds and writeback periods.

Everything is recorded as *items* in the order it happened, each with the step counter
at that moment; :mod:`.model` turns them into lanes and spans. The replay must give the
same events as the run (its ``trace_hash``), else the recording is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .._errors import DivergenceError, UserError
from .._kernel.task import BLOCKED, DONE, RUNNABLE, SLEEPING
from .._kernel.watchdog import describe_wait
from .._trace import events_hash

# Item kinds (the first field of every item tuple).
PICK, LEAVE, READY, NEW, EVENT, ACQ, REL, WB_BEGIN, WB_END, END = range(10)


@dataclass
class Recording:
    """What one replay observed.

    Attributes:
        items: ``(kind, step, ...)`` tuples in the order they happened (see the kinds above;
            the payload of each is documented where :class:`_Recorder` appends it).
        events: the replay's event list (equal to the run's).
        free: ``(item index, free pages)`` whenever the count changed (memory runs only).
        waits: the wait-for graph at the verdict: one dict per blocked task.
        tasks: ``(tid, name, daemon)`` of every task, in tid order.
        steps, ticks: where the run ended.
    """

    items: list[tuple] = field(default_factory=list)
    events: list[list] = field(default_factory=list)
    free: list[tuple[int, int]] = field(default_factory=list)
    waits: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[tuple[int, str, bool]] = field(default_factory=list)
    steps: int = 0
    ticks: int = 0


class _Observer:
    """The kernel observer: lock holds and writeback periods, as items."""

    def __init__(self, rec: "_Recorder") -> None:
        self.rec = rec

    def acquired(self, t: Any, lock: Any, mode: str) -> None:
        self.rec.add((ACQ, self.rec.k.steps, t.tid, lock.name, mode, _line(t)))

    def released(self, t: Any, lock: Any, mode: str) -> None:
        self.rec.add((REL, self.rec.k.steps, t.tid, lock.name, mode, _line(t)))

    def writeback_begin(self, t: Any, cls: str) -> None:
        self.rec.add((WB_BEGIN, self.rec.k.steps, t.tid, cls, _line(t)))

    def writeback_end(self, t: Any, cls: str) -> None:
        self.rec.add((WB_END, self.rec.k.steps, t.tid, cls, _line(t)))

    def __getattr__(self, name: str) -> Any:
        # Hooks this recorder does not draw (acquiring, reclaim_point, and whatever later
        # observers are told): accept and ignore them.
        if name.startswith("__"):
            raise AttributeError(name)
        return _ignore


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


def _line(t: Any) -> int:
    loc = t.stack[-1].loc if t.stack else None
    return loc.line if loc is not None else 0


class _Recorder:
    """Hooks one kernel; see the module docstring."""

    def __init__(self, k: Any) -> None:
        self.k = k
        self.rec = Recording()
        self.items = self.rec.items
        self.orig_next = k.next_task
        self.running: Any = None      # the task whose running span is open
        self.ready: set[int] = set()  # tids believed runnable
        self.last: tuple = ()         # the run queue's tids at the last pick
        self.known = 0                # tasks registered so far
        self.free = -1
        k.next_task = self.next_task
        k.log = self.log
        k.observers.append(_Observer(self))

    def add(self, item: tuple) -> None:
        self.items.append(item)
        mm = self.k.mm
        if mm is not None:
            n = len(mm.free_list)
            if n != self.free:
                self.free = n
                self.rec.free.append((len(self.items) - 1, n))

    def _register(self) -> None:
        """Tasks created since the last look (the scenario's, kswapd, spawned ones)."""
        k = self.k
        while self.known < len(k.tasks):
            t = k.tasks[self.known]
            self.known += 1
            self.add((NEW, k.steps, t.tid, t.name, bool(t.daemon)))
            if t.state is RUNNABLE:
                self.ready.add(t.tid)
                self.add((READY, k.steps, t.tid))
            else:
                self._leave(t)

    def _leave(self, t: Any) -> None:
        """``t`` is not runnable: record why (its state and what it waits for)."""
        state = t.state
        if state is BLOCKED:
            label = describe_wait(t)
            # An interruptible wait (idle kswapd, `state: interruptible`) never hangs:
            # drawn apart from the waits that can.
            idle = getattr(t, "interruptible", False) or \
                getattr(t.waiting_for, "interruptible", False)
            what = "idle" if idle else (t.wait_what or "wait")
        elif state is SLEEPING:
            what = t.wait_what or "start"
            label = what
        elif state is DONE:
            what = label = "exit"
        else:
            what, label = str(state), str(state)
        self.add((LEAVE, self.k.steps, t.tid, str(state), what, label, _line(t)))

    def next_task(self) -> Any:
        k = self.k
        cur = self.running
        left = False
        if cur is not None:
            self.running = None
            if cur.state is RUNNABLE:
                self.add((LEAVE, k.steps, cur.tid, RUNNABLE, "yield", "", _line(cur)))
            else:
                self.ready.discard(cur.tid)
                self._leave(cur)
                left = True
        t = self.orig_next()
        if len(k.tasks) != self.known:
            self._register()
        tids = tuple(k._runnable_tids)
        if left or tids != self.last:
            self.last = tids
            ready = self.ready
            now = set(tids)
            for tid in tids:
                if tid not in ready:
                    self.add((READY, k.steps, tid))
            for tid in sorted(ready - now):
                # Left the run queue without running (a task stopped from outside).
                other = k.tasks[tid]
                if other is not t:
                    self._leave(other)
            self.ready = now
        if t is None:
            return None
        # A switch away from a task that could have gone on is a preemption.
        prev = cur if cur is not None and cur.state is RUNNABLE and cur is not t else None
        self.add((PICK, k.steps, t.tid, prev.tid if prev is not None else -1, _line(t), k.now))
        self.running = t
        return t

    def log(self, ev: list) -> None:
        k = self.k
        self.add((EVENT, k.steps, len(k.events) - 1))
        if ev[2] == "verdict":
            self.rec.waits = wait_graph(k)


#: Blockers kept per waiting task in the recording (the rest are counted in ``more``).
BLOCKERS_KEPT = 50


def wait_graph(k: Any) -> list[dict[str, Any]]:
    """The wait-for graph at this moment: every blocked task, what it waits for, and the
    tasks its wait leads to, each with the name of that edge (held by, could be freed
    by, can signal, joins, queued behind)."""
    out = []
    for t in k.tasks:
        if t.state is not BLOCKED or t.waiting_for is None:
            continue
        r = t.waiting_for
        blockers = list(r.blockers(t))
        holders = set(h.tid for h in r.holders())
        kind = getattr(r, "kind", "")
        edges = []
        # (Thousands of tasks may wait on one event, each for the same thousands of
        # signallers: the page draws a few of each, and keeps a count of the rest.)
        more = max(0, len(blockers) - BLOCKERS_KEPT)
        for b in blockers[:BLOCKERS_KEPT]:
            if kind == "task":
                label = "joins"
            elif b.tid in holders:
                label = getattr(r, "holders_verb", "held by")
            elif getattr(r, "verb", None):
                label = f"can {r.verb}"
            else:
                label = "queued behind"
            edges.append([b.name, label])
        out.append({"task": t.name, "resource": r.describe(), "kind": kind,
                    "blockers": edges, "more": more, "text": describe_wait(t),
                    "nobody": "" if blockers else r.nobody_text()})
    return out


def record(result: Any, faults: Any = None) -> Recording:
    """Replay ``result``'s tape with the recorder; the recording of the same run.

    Args:
        result: a finished :class:`~vmemu._result.Result` (its scenario object and tape).
        faults: the fault plan object, when the run had one that has no path.

    Raises:
        UserError: the replay no longer gives the run's events (the scenario or fault
            plan changed on disk since).
    """
    import trio

    from .._kernel.drivers.trio_driver import run_trio
    from .._run import _load_faults, new_kernel
    from .._strategies import ReplayStrategy

    trace = result.trace
    plan = faults if faults is not None else _load_faults(result.faults)
    strat = ReplayStrategy(trace.tape, recorded=trace.strategy, seed=trace.seed)
    k = new_kernel(result.scenario, strat, faults=plan)
    rec = _Recorder(k)
    rec._register()
    try:
        trio.run(run_trio, k)
    except DivergenceError as e:   # pragma: no cover - run through ReplayStrategy
        raise UserError(f"cannot draw this run: {e}") from None
    if k.error is not None:
        raise UserError(f"cannot draw this run: {k.error}")
    if k.events != trace.events and events_hash(k.events) != trace.trace_hash:
        raise UserError("cannot draw this run: replaying its decisions gave other events; "
                        "the scenario or fault plan changed since it ran",
                        file=os.fspath(result.scenario.path))
    rec.add((END, k.steps))
    out = rec.rec
    out.events = k.events
    out.tasks = [(t.tid, t.name, bool(t.daemon)) for t in k.tasks]
    out.steps, out.ticks = k.steps, k.now
    return out
