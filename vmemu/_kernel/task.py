"""Emulated tasks and the control-flow signals the kernel uses internally."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any, TYPE_CHECKING

from .._errors import safe_str

if TYPE_CHECKING:  # pragma: no cover
    from .._scenario.model import Loc, TaskSpec

# Task states. Strings, not an Enum, because reports and JSON print them as they are.
RUNNABLE = "runnable"
BLOCKED = "blocked"      # waiting on a resource (lock, event, memory): may wait forever
SLEEPING = "sleeping"    # waiting on a timer (sleep, io, delayed start): always wakes
DONE = "done"


@dataclass(slots=True)
class Frame:
    """One level of a task's emulated stack: the task or routine, and the step it is at.

    A frame is also what expressions read (``env`` of :mod:`vmemu._scenario.expr`): its
    ``locals`` (locals, parameters, loop indices), the run's ``shared`` variables, and
    its ``task`` (for ``ok`` and ``should_stop``). ``body`` is the step list the frame
    runs (the watchdog reads what is left of it).
    """

    name: str
    loc: "Loc | None" = None
    step: Any = None
    locals: dict = field(default_factory=dict)
    shared: Any = None
    task: Any = None
    body: Any = None

    @property
    def what(self) -> str:
        return self.step.describe() if self.step is not None else ""


class Task:
    """The kernel's view of one emulated task (its task_struct)."""

    __slots__ = ("tid", "name", "spec", "state", "waiting_for", "wait_what", "blocked_since",
                 "held", "stack", "pf", "coro", "handle", "wake_value", "daemon", "killed",
                 "exc", "reclaiming", "handles", "ok", "should_stop", "interruptible",
                 "timer_seq", "exited", "parent", "nest")

    def __init__(self, tid: int, name: str, spec: "TaskSpec | None", daemon: bool = False,
                 shared: Any = None):
        """``shared``: the run's shared variables, which the root frame's expressions read."""
        self.tid = tid
        self.name = name
        self.spec = spec
        self.state = RUNNABLE
        self.waiting_for: Any = None       # the Resource a BLOCKED task waits on
        self.wait_what = ""                # e.g. "lock", "read_lock", "wait", "memory"
        self.blocked_since = 0
        self.held: list[Any] = []          # locks in acquisition order (duplicates for re-entry)
        # The root frame runs the task's own steps (positional: one call the cheaper).
        self.stack: list[Frame] = [
            Frame(name, spec.loc, None, {}, shared, self, spec.steps) if spec is not None
            else Frame(name, None, None, {}, shared, self)]
        self.pf: dict[str, int] = {}       # task flag -> nesting count (scopes nest)
        self.coro: Any = None
        self.handle: Any = None            # the driver's handle (a trio Task)
        self.wake_value: Any = None        # what the waker handed over (e.g. io result)
        self.daemon = daemon               # kswapd: not required to finish for `ok`
        self.killed = 0                    # Killed raised in it while the run stops
        self.exc: BaseException | None = None
        self.reclaiming = 0                # >0 while inside direct reclaim / writeback
        self.handles: dict[str, Any] = {}  # alloc `as:` name -> pages, per task
        self.ok = 0                        # the per-task result register (`ok`)
        self.should_stop = 0               # kthread_should_stop(): set by `stop`
        self.interruptible = False         # blocked in an interruptible wait (not hung)
        self.timer_seq = 0                 # the live timer of a sleep or timed wait
        self.nest = 0                      # routine calls and if/while/repeat bodies open
        self.exited: Any = None            # the resource `join`ers wait on (lazily made)
        self.parent: "Task | None" = None  # who spawned it (None: started with the run)

    def has_flag(self, flag: str) -> bool:
        """True while the task is inside a scope that set ``flag``."""
        return self.pf.get(flag, 0) > 0

    @property
    def line(self) -> int:
        loc = self.stack[-1].loc
        return loc.line if loc is not None else 0

    def __repr__(self) -> str:
        return f"<Task {self.name} {self.state}>"


class Killed(BaseException):
    """Thrown into parked tasks when a run ends, to unwind them without side effects."""


#: Yielded at a scheduling point, while the run stops, by a task that swallowed the
#: Killed meant to unwind it (a bare ``except:`` around its waits) again and again:
#: its driver stops resuming it. Raising Killed for ever would spin inside the task's
#: loop, never giving control back (see ``Kernel.stopped``).
REFUSED = "vmemu: task refused to die"
#: Killed raised in one task while a run stops, before it counts as refusing to die. A
#: task that unwinds meets a few scheduling points on its way out (an ``async with``'s
#: release, an ``await`` in a ``finally``); each raises Killed again, as it always did.
REFUSE_AFTER = 100


class Abandoned(BaseException):
    """Ends the host task of an emulated task that refused to die (:data:`REFUSED`): its
    coroutine is dropped where it parked, never resumed."""


#: ids of coroutines left parked for good (see refused); bounded.
_REFUSED: set[int] = set()
_HOOKED = [False]


def refused(coro: Any) -> None:
    """``coro`` is left parked for good. Python closes it when it is collected, and its
    bare ``except:`` then runs once more: whatever that raises (or "coroutine ignored
    GeneratorExit") is not printed, once per run of an exploration. The task was left
    on purpose, and the run it belonged to is over (its trace is its own: see
    ``_run._result``)."""
    if not _HOOKED[0]:
        _HOOKED[0] = True
        previous = sys.unraisablehook

        def hook(u: Any) -> None:
            if id(u.object) in _REFUSED:
                _REFUSED.discard(id(u.object))
            else:
                previous(u)

        sys.unraisablehook = hook
    if len(_REFUSED) < 100_000:
        _REFUSED.add(id(coro))


@types.coroutine
def drop_refused(coro: Any) -> Any:
    """``await coro``, except that a coroutine that yields :data:`REFUSED` is dropped
    there (raises :class:`Abandoned`). The event-loop drivers await each task's coroutine
    through this; the direct driver sees REFUSED itself."""
    send, throw = coro.send, coro.throw
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            got = send(value) if error is None else throw(error)
        except StopIteration as e:
            return e.value
        if got is REFUSED:
            refused(coro)
            raise Abandoned()
        try:
            value, error = (yield got), None
        except BaseException as e:      # (the host loop's own: forwarded, as await does)
            value, error = None, e


class VerdictSignal(BaseException):
    """Raised inside a task to end the run with a verdict (assertion, bug, oom, livelock).

    A BaseException so that emulated Python code using ``except Exception`` cannot swallow it.
    """

    def __init__(self, verdict: str, message: str) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.message = message


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of a run as the watchdog decided it."""

    verdict: str
    message: str = ""
    task: str | None = None            # the task the verdict is about (bug, assertion, hang)


def check_ticks(t: Task, what: str, value: object) -> int:
    """``value`` as a tick count for ``what``, or a ``bug`` verdict: a Python task's NaN hung
    the clock, and a float or a negative count was taken (and crashed saving the trace)."""
    from .._bounds import MAX_TICKS
    if type(value) is not int or not 0 <= value <= MAX_TICKS:
        raise VerdictSignal("bug", f"BUG: {t.name}: {what} of {safe_str(value)} ticks (a whole "
                            f"number from 0 to {MAX_TICKS} is expected)")
    return value
