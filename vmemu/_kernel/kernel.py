"""The deterministic kernel: task table, virtual clock, run queue and scheduling points.

Exactly one emulated task runs at a time. A task gives the CPU back only at a
*scheduling point* (``checkpoint``) or when it blocks; the driver then asks
:meth:`Kernel.next_task` who runs next, and that answer comes from the strategy whenever
there is more than one runnable task. Every answer is appended to the decision tape, so a
run is a pure function of (scenario, fault plan, tape).

The kernel is driver-agnostic: a driver (trio, direct) only knows how to resume a task
and how a task parks itself (``Kernel.park`` is installed by the driver).
"""

from __future__ import annotations

import heapq
import types
from bisect import bisect_left
from typing import Any, Callable, Iterable

from .._errors import UserError, safe_str
from .._scenario.model import Scenario
from . import watchdog
from .kthread import Kthreads
from .resources import build, recipe
from .task import (BLOCKED, DONE, REFUSE_AFTER, REFUSED, RUNNABLE, SLEEPING, Killed, Outcome,
                   Task, VerdictSignal)


class Kernel(Kthreads):
    """One run of one scenario under one strategy.

    Attributes:
        now: the virtual clock, in ticks.
        steps: scheduling points executed so far (bounded by ``limits.steps``).
        tape: the decision tape: every answer of the strategy, in order.
        events: the canonical event list ``[tick, task, op, arg, line]`` hashed by the trace.
        outcome: set once the run has a verdict.
    """

    def __init__(self, scenario: Scenario, strategy: Any, *, faults: Any = None,
                 log: Callable[[list], None] | None = None) -> None:
        self.scenario = scenario
        self.limits = scenario.limits
        self.log = log
        self._plan = faults
        self._arrays = any(isinstance(v, tuple) for v in scenario.vars.values())
        # `start: spawned` tasks by name.
        self.spawnable = {s.name: s for s in scenario.tasks if s.spawned}
        # How to make a task's coroutine (new_kernel sets it), and the scenario's initial
        # tasks with theirs: both depend on the scenario only, so every run keeps them.
        self.body_of: Callable[[Any], Callable[[Task], Any]] = _no_body
        self.initial: list[tuple[Any, Callable[[Task], Any]]] | None = None
        self._recipe = recipe(scenario)     # (how to build each run's locks and events)
        self._reset(strategy)

    def _reset(self, strategy: Any) -> None:
        """Every piece of per-run state, in one place: ``__init__`` calls it, and an
        exploration calls it to run the next schedule on the same kernel
        (``vmemu._run.reset_kernel``). New per-run fields belong here."""
        scenario = self.scenario
        self.strategy = strategy
        # The strategy's O(1) answer by index, when it has one (``Strategy.pick_index``):
        # next_task and the direct driver call it instead of pick_task.
        self.pick_index: Callable[[int], int] | None = getattr(strategy, "pick_index", None)
        self.now = 0
        self.steps = 0
        self.tape: list[int] = []
        self.events: list[list] = []
        self.outcome: Outcome | None = None
        self.error: UserError | None = None
        # The task reports at the verdict; None after an `ok` run until asked for
        # (every task is done then, so they cannot change: see `final_tasks`).
        self._final_tasks: list[dict] | None = []
        self.final_cycle: list[dict] = []
        self.stopping = False
        self._step_budget = scenario.limits.steps
        self._unfinished = 0      # non-daemon tasks not DONE: `ok` when it reaches 0
        self._done = 0            # tasks DONE (all of them: an `ok` run's reports can wait)
        # Tasks blocked by `block` (uninterruptibly) in the order they blocked, so oldest
        # first as the clock only grows: the hung-task check looks at one task, not all.
        self._blocked: dict[int, Task] = {}
        self.bare_yield = False   # set by the direct driver: a bare `yield` parks a task
        self.tasks: list[Task] = []
        self.by_name: dict[str, Task] = {}
        self.runnable: list[Task] = []   # sorted by tid: deterministic order
        self._runnable_tids: list[int] = []   # the same tids: bisecting ints is cheap
        self.timers: list[tuple[int, int, Task]] = []  # (deadline, seq, task) heap
        self._timer_seq = 0
        # Timers of timed waits that ended early (woken, interrupted): still in the heap,
        # skipped when they come up. A run with only stale timers left is a deadlock.
        self._stale_timers = 0
        # The driver's way to start a task created mid-run (`spawn`), when it needs one
        # (the trio and anyio drivers start a host task for it): an async callable.
        self.start_task: Callable[[Task], Any] | None = None
        self.current: Task | None = None
        self.avoid: Task | None = None
        # True while the next pick must go through next_task() (a verdict or a forced
        # preemption is pending): the direct driver's fast path tests this one flag.
        self.detour = False
        # A signal that must stop this run at its next step (see `interrupt_running`);
        # the signal's number.
        self.interrupted = 0
        # Shared variables, copied per run; arrays become lists (a run mutates them).
        self.vars: dict[str, Any] = ({n: list(v) if isinstance(v, tuple) else v
                                      for n, v in scenario.vars.items()}
                                     if self._arrays else dict(scenario.vars))
        self.park: Callable[[Task], Any] = _no_driver
        self.__dict__.pop("checkpoint", None)   # a driver's specialisation of the last run
        self.resources: dict[str, Any] = {}
        self.observers: list[Any] = []   # lockdep and friends: see sync.Lock._acquired
        self.faults = self._plan.bind(self) if self._plan is not None else None
        self.mm: Any = None
        self.resources = build(self._recipe, self)
        # The watchdog's "who can still signal it" answers, valid while `steps` stands.
        self._reach_cache: tuple[int, dict] | None = None
        if scenario.memory is not None:
            from .mm import MemoryManager
            self.mm = MemoryManager(self, scenario.memory)

    @property
    def final_tasks(self) -> list[dict]:
        """The task reports at the verdict (built when first read after an `ok` run)."""
        if self._final_tasks is None:
            self._final_tasks = watchdog.task_reports(self)
        return self._final_tasks

    # ---------------------------------------------------------------- task table
    def add_task(self, name: str, body: Callable[[Task], Any], spec: Any = None,
                 start: int = 0, daemon: bool = False, asleep_on: Any = None) -> Task:
        """Create a task whose coroutine is ``body(task)``; it starts at tick ``start``.

        With ``asleep_on`` (a resource) the task starts blocked on it instead, waiting
        for a :meth:`wake`, before its coroutine ever ran (kswapd on its waitqueue: an
        idle kswapd then costs no scheduling decisions). The caller queues the task
        among the resource's waiters.
        """
        t = Task(len(self.tasks), name, spec, daemon, self.vars)   # (positional: cheaper)
        if spec is not None and spec.locals:
            t.stack[0].locals = {n: list(v) if isinstance(v, tuple) else v
                                 for n, v in spec.locals}
        t.coro = body(t)
        self.tasks.append(t)
        self.by_name[name] = t
        if not daemon:
            self._unfinished += 1
        if asleep_on is not None:
            t.state = BLOCKED
            t.waiting_for = asleep_on
            t.wait_what = "wait"
            t.blocked_since = self.now
            t.interruptible = asleep_on.interruptible
            if not t.interruptible:
                self._blocked[t.tid] = t
        elif start > 0:
            t.state = SLEEPING
            self._add_timer(start, t)
        else:
            # A new task has the highest tid yet: it goes last in the run queue.
            self._runnable_tids.append(t.tid)
            self.runnable.append(t)
        return t

    def emit(self, task: Task | None, op: str, arg: Any = None) -> None:
        """Append one event to the canonical event list (and the structured log)."""
        if task is not None:
            loc = task.stack[-1].loc   # Task.line, inlined: about one event per step
            ev = [self.now, task.name, op, arg, loc.line if loc is not None else 0]
        else:
            ev = [self.now, "-", op, arg, 0]
        self.events.append(ev)
        if self.log is not None:
            self.log(ev)

    # ---------------------------------------------------------------- scheduling
    def next_task(self) -> Task | None:
        """Pick the task to resume, advancing the clock if nothing can run.

        Returns None when the run is over; ``self.outcome`` then holds the verdict.
        The direct driver inlines the case of one runnable task (``drivers/direct.py``):
        keep the two in step.
        """
        if self.outcome is not None:
            return None
        if self.interrupted:
            raise _interrupted(self.interrupted)
        runnable = self.runnable
        while not runnable:
            if not self._advance_clock():
                return None
        self.steps = steps = self.steps + 1
        if steps > self._step_budget:
            self.finish(Outcome("livelock", f"step budget of {self.limits.steps} exhausted "
                                f"with {len(runnable)} task(s) still runnable"))
            return None
        cands = runnable
        if self.avoid is not None:
            # A `preempt` fault: someone else must run now, if anyone can.
            if len(runnable) > 1 and self.avoid in runnable:
                cands = [c for c in runnable if c is not self.avoid]
            self.avoid = None
            self.detour = bool(self.interrupted)
        if len(cands) == 1:
            t = cands[0]
        elif self.pick_index is not None:
            t = cands[self.pick_index(len(cands))]
            self.tape.append(t.tid)
        else:
            # The live run queue is handed over without a copy (a copy per step would make
            # a step O(tasks)); strategies must not keep it.
            try:
                t = self.strategy.pick_task(cands, self.current)
            except UserError as e:  # a replay that no longer fits the scenario
                self.fail_input(e)
                return None
            self.tape.append(t.tid)
        self.current = t
        return t

    def choose_bool(self, p: float, site: str) -> bool:
        """A nondeterministic yes/no (does this fault fire?), answered by the strategy."""
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        v = bool(self.strategy.pick_bool(p, site))
        self.tape.append(int(v))
        return v

    def _advance_clock(self) -> bool:
        """Nothing is runnable: jump to the next timer, or end the run. False when over."""
        if not self._unfinished:
            self.finish(_OK)
            return False
        timers = self.timers
        while timers and timers[0][2].timer_seq != timers[0][1]:
            heapq.heappop(timers)                # a timed wait that ended early
            self._stale_timers -= 1
        if len(timers) == self._stale_timers:    # (only stale ones left, if any)
            self.finish(watchdog.deadlock_outcome(self))
            return False
        deadline = timers[0][0]
        if self._may_hang(deadline):
            hung = watchdog.hung_task(self, deadline)
            if hung is not None:
                self.finish(hung)
                return False
        if deadline > self.limits.ticks:
            self.finish(Outcome("livelock", f"tick budget of {self.limits.ticks} exhausted "
                                "with tasks still waiting on timers"))
            return False
        self.now = deadline
        while timers and timers[0][0] == deadline:
            _, seq, t = heapq.heappop(timers)
            if t.timer_seq != seq:
                self._stale_timers -= 1
                continue
            t.timer_seq = 0
            if t.state is SLEEPING:
                self.make_runnable(t)
            else:                                # a timed wait ran out
                self._time_out(t)
        return True

    def _time_out(self, t: Task) -> None:
        """``t``'s timed wait ran out: leave the resource's queue, wake with "timeout"."""
        r = t.waiting_for
        r.waiters = type(r.waiters)(w for w in r.waiters if w[0] is not t)
        t.wake_value = "timeout"
        self.make_runnable(t)
        self.emit(t, "timeout", r.name)

    def _may_hang(self, next_tick: int) -> bool:
        """Cheap pre-check for :func:`watchdog.hung_task`: is the longest-blocked task over
        the limit by ``next_tick``? (The watchdog's full scan then decides and reports.)"""
        blocked = self._blocked
        while blocked:
            oldest = next(iter(blocked.values()))
            if oldest.state is BLOCKED:
                return next_tick - oldest.blocked_since > self.limits.hung_task_timeout
            del blocked[oldest.tid]   # woken some other way than make_runnable
        return False

    def _add_timer(self, deadline: int, t: Task) -> None:
        self._timer_seq += 1
        t.timer_seq = self._timer_seq
        heapq.heappush(self.timers, (deadline, self._timer_seq, t))

    def _cancel_timer(self, t: Task) -> None:
        """A timed wait ended before its timer: the heap entry goes stale."""
        if t.timer_seq:
            t.timer_seq = 0
            self._stale_timers += 1

    def make_runnable(self, t: Task) -> None:
        """Wake ``t``: it may be picked at the next scheduling point."""
        if t.timer_seq and t.state is BLOCKED:
            self._cancel_timer(t)                # woken before its timed wait ran out
        t.state = RUNNABLE
        t.interruptible = False
        self._blocked.pop(t.tid, None)
        t.waiting_for = None
        t.wait_what = ""
        # Into the run queue, kept in tid order: an O(log n) search, then one memmove
        # per list (no per-task Python work).
        i = bisect_left(self._runnable_tids, t.tid)
        self._runnable_tids.insert(i, t.tid)
        self.runnable.insert(i, t)

    def _unrun(self, t: Task) -> None:
        runnable = self.runnable
        i = bisect_left(self._runnable_tids, t.tid)
        if i < len(runnable) and runnable[i] is t:
            del runnable[i]
            del self._runnable_tids[i]
        else:
            raise ValueError(f"{t!r} is not runnable")

    @types.coroutine
    def checkpoint(self, t: Task) -> Any:
        """A scheduling point: the strategy may let another task run before ``t`` goes on.

        A generator-based coroutine (``await k.checkpoint(t)``): this is the hottest path of
        the emulator, and with the direct driver the bare ``yield`` *is* the park, which
        saves two coroutine frames per scheduling point.
        """
        if self.stopping:
            yield from self.stopped(t)
        if self.bare_yield:
            yield
        else:
            yield from self.park(t)
        if self.stopping:
            yield from self.stopped(t)

    @types.coroutine
    def block(self, t: Task, resource: Any, what: str, *, interruptible: bool = False,
              timeout: int | None = None) -> Any:
        """Block ``t`` on ``resource`` until someone calls :meth:`wake`; returns the wake value.

        Awaited as ``await k.block(...)`` (a generator-based coroutine, like checkpoint).
        An ``interruptible`` sleep (``TASK_INTERRUPTIBLE``) is never a hung task and
        ``stop`` wakes it (the value is then ``"interrupted"``); with ``timeout`` ticks the
        wait also ends when they run out (the value is then ``"timeout"``).
        """
        if self.stopping:
            yield from self.stopped(t)
        self._unrun(t)
        t.state = BLOCKED
        t.waiting_for = resource
        t.wait_what = what
        t.blocked_since = self.now
        interruptible = interruptible or resource.interruptible   # (idle kswapd never hangs)
        t.interruptible = interruptible
        self._blocked.pop(t.tid, None)   # re-insert: the dict stays in blocking order
        if not interruptible:
            self._blocked[t.tid] = t
        t.wake_value = None
        if timeout is not None:
            self._add_timer(self.now + timeout, t)
        self.emit(t, "block", f"{what} {resource.name}")
        if self.bare_yield:
            yield
        else:
            yield from self.park(t)
        if self.stopping:
            yield from self.stopped(t)
        return t.wake_value

    def wake(self, t: Task, value: Any = None, by: Task | None = None) -> None:
        """Make a BLOCKED task runnable again, handing it ``value``."""
        t.wake_value = value
        self.make_runnable(t)
        self.emit(by or self.current, "wake", t.name)

    @types.coroutine
    def sleep(self, t: Task, ticks: int, what: str = "sleep") -> Any:
        """Sleep for ``ticks`` of virtual time (a timer wait: always ends)."""
        if self.stopping:
            yield from self.stopped(t)
        if ticks <= 0:
            yield from self.checkpoint(t)
            return
        self._unrun(t)
        t.state = SLEEPING
        t.wait_what = what
        self._add_timer(self.now + ticks, t)
        if self.bare_yield:
            yield
        else:
            yield from self.park(t)
        if self.stopping:
            yield from self.stopped(t)

    async def preempt(self, t: Task) -> None:
        """A forced preemption: another runnable task (if any) runs before ``t``."""
        self.avoid = t
        self.detour = True
        self.emit(t, "preempt")
        await self.checkpoint(t)

    async def apply_action(self, t: Task, action: Any) -> None:
        """Carry out a scheduling fault (``delay: N`` or ``preempt``) at a fault site."""
        if action.do == "delay":
            self.emit(t, "delay", action.n)
            await self.sleep(t, action.n, "delay")
        elif action.do == "preempt":
            await self.preempt(t)

    # ---------------------------------------------------------------- ending
    def count_step(self, t: Task) -> None:
        """Charge a step that is not a scheduling point (control flow) to the budget.

        Without this a ``while`` loop of pure computation would spin forever.
        """
        self.steps += 1
        if self.steps > self.limits.steps:
            raise VerdictSignal("livelock", f"step budget of {self.limits.steps} exhausted "
                                f"while {t.name} was still running")

    @types.coroutine
    def stopped(self, t: Task) -> Any:
        """A scheduling point ``t`` reached while the run stops: unwind it (Killed).

        A task that swallows that Killed (a bare ``except:``) and comes back, again and
        again (:data:`~.task.REFUSE_AFTER` times), is parked for good instead (it yields
        :data:`~.task.REFUSED`; its driver stops resuming it): raising for ever would
        spin inside its loop, the tool hung at 100 % CPU with no scheduling point left to
        stop it. (A task that only unwinds meets a few scheduling points on its way out,
        in ``finally`` blocks and ``async with`` exits: each raises Killed, as before.)
        """
        if t.killed >= REFUSE_AFTER:
            yield REFUSED
        t.killed += 1
        raise Killed()

    def task_finished(self, t: Task, exc: BaseException | None) -> None:
        """A task's coroutine ended (``exc`` is what escaped it, if anything)."""
        if exc is not None and (self.stopping or isinstance(exc, Killed)):
            return
        was_runnable = t.state is RUNNABLE
        t.state = DONE
        self._done += 1
        if not t.daemon:
            self._unfinished -= 1
        if was_runnable:
            self._unrun(t)
        if t.exited is not None:       # wake every `join` (and `stop`) waiting for it
            while t.exited.waiters:
                self.wake(t.exited.waiters.popleft()[0], by=t)
        if exc is None:
            self.emit(t, "exit")
            # Semaphores have no owner: another task may up() them later.
            owned = [r for r in t.held if r.kind != "semaphore"] if t.held else None
            if owned:
                names = ", ".join(r.name for r in owned)
                self.finish(Outcome("bug", f"task {t.name} exited holding {names}", t.name))
            return
        t.exc = exc
        if isinstance(exc, UserError):
            self.fail_input(exc)
        elif isinstance(exc, VerdictSignal):
            self.finish(Outcome(exc.verdict, exc.message, t.name))
        else:
            # An exception escaping emulated code is a kernel oops.
            self.finish(Outcome("bug", f"task {t.name} raised {type(exc).__name__}: "
                                f"{safe_str(exc)}", t.name))

    def fail_input(self, e: UserError) -> None:
        """Bad input discovered mid-run (replay divergence): stop; the runner re-raises it."""
        self.error = e
        self.finish(Outcome("error", str(e)))

    def finish(self, outcome: Outcome) -> None:
        """Record the verdict (first one wins) and start unwinding every task."""
        if self.outcome is None:
            self.outcome = outcome
            self.emit(None, "verdict", outcome.verdict)
            # Snapshot the wait-for graph now: unwinding the tasks changes nothing the
            # report shows, but the report must describe the moment of the verdict. An
            # `ok` run with every task done (no daemon left to unwind) cannot change:
            # its reports wait until someone asks (most runs of an exploration: never).
            if outcome is _OK and self._done == len(self.tasks):
                self._final_tasks = None
            else:
                self._final_tasks = watchdog.task_reports(self)
                if outcome.verdict in ("deadlock", "hang"):
                    hung = self.by_name.get(outcome.task or "") \
                        if outcome.verdict == "hang" else None
                    self.final_cycle = watchdog.find_cycle(self, hung)
        self.stopping = True
        self.detour = True

    def live_tasks(self) -> Iterable[Task]:
        """Tasks whose coroutine has not finished (to be killed at the end of a run)."""
        return [t for t in self.tasks if t.state is not DONE]


#: Outcomes are immutable, and a frozen dataclass costs to build: one `ok` for all runs.
_OK = Outcome("ok")


def interrupt_running(signum: int, *, later_runs: bool = False) -> bool:
    """Stop the run this thread is executing at its next step, with a KeyboardInterrupt
    (``e.signum`` is ``signum``). For signal handlers that may not raise at any bytecode
    (an exploration's, which guards its pool's bookkeeping; a command's, as emulated
    code's bare ``except`` would swallow it): a run is always safe to stop at a step,
    whichever driver runs it. With ``later_runs``, every run this process starts from
    now on stops at its first step too. False when no run is going on."""
    from . import lockup
    if later_runs:
        lockup.STOP[0] = signum
    k = lockup.running()
    if k is None or k.outcome is not None:
        return False
    k.interrupted = signum
    k.detour = True     # the direct driver's fast path then goes through next_task
    return True


def _interrupted(signum: int) -> KeyboardInterrupt:
    e = KeyboardInterrupt()
    e.signum = signum  # type: ignore[attr-defined]
    return e


async def _no_driver(t: Task) -> None:  # pragma: no cover - a wiring bug, not user input
    raise RuntimeError("kernel has no driver")


def _no_body(spec: Any) -> Callable[[Task], Any]:  # pragma: no cover - a wiring bug
    raise RuntimeError("kernel has no task bodies (build it with new_kernel)")
