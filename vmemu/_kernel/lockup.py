"""The soft-lockup watchdog: the one safety net that looks at a clock.

Every emulated step ends at a scheduling point, and the step and tick budgets turn any
endless emulated activity into a ``livelock`` verdict. What they cannot see is Python
code in a task that never reaches a scheduling point (``while not ctx.vars["go"]: pass``,
a busy-wait): the kernel never gets control back to count anything, and the tool would
hang. Linux has the same blind spot and the same answer, the soft-lockup detector
(``watchdog_thresh``): "BUG: soft lockup - CPU#0 stuck for 22s!".

A daemon thread, started on first use and shared by every run of the process, looks at
the runs in progress a few times a second. When a run's step count has not moved while
its thread spent :data:`SOFT_LOCKUP_SECONDS` of *CPU time* (not wall time: a loaded
machine that deschedules the process is not a lockup) inside the task that is running,
it raises :class:`SoftLockup` asynchronously in that thread
(``PyThreadState_SetAsyncExc``), inside the spinning task. SoftLockup is a
:class:`VerdictSignal`, so every driver ends the run with verdict ``livelock`` as it does
for any other verdict raised by a task.

Determinism: the events up to the lockup and the verdict are the same on every run (a
spinning task emits nothing), so the trace hash is too, and the message names no
duration. A task that spins while emitting events
(without ever awaiting) would make the trace depend on the clock; that is a scenario bug
the report names. Each soft-locked run costs the threshold in CPU time, so minimization
leaves such findings as they are.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from .task import VerdictSignal

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel

ENV = "VMEMU_SOFT_LOCKUP_SECONDS"
DEFAULT_SECONDS = 5.0


def env_error() -> str | None:
    """What is wrong with ``$VMEMU_SOFT_LOCKUP_SECONDS``, if anything (the CLI refuses
    to start on it; the API keeps the default)."""
    text = os.environ.get(ENV)
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not v > 0 or v == float("inf"):
        return (f"expected a positive number of seconds like {DEFAULT_SECONDS:g}, "
                f"got {text!r}")
    return None


#: CPU seconds a task may run without reaching a scheduling point (env override, for
#: tests and slow machines: ``VMEMU_SOFT_LOCKUP_SECONDS``).
SOFT_LOCKUP_SECONDS = (DEFAULT_SECONDS if env_error() or ENV not in os.environ
                       else float(os.environ[ENV]))
#: How a soft-lockup verdict's message starts (minimize recognises it).
PREFIX = "BUG: soft lockup"

#: Once a lockup has fired inside :func:`shorter_after_first`, later ones in the same
#: exploration are called after this many CPU seconds (or the threshold, if smaller).
REPEAT_SECONDS = 0.2

_active: dict[int, "Kernel"] = {}     # thread ident -> the kernel it is running
_messages: dict[int, str] = {}        # thread ident -> the verdict message to raise
_lock = threading.Lock()
_thread: threading.Thread | None = None
_shorten = 0          # > 0 inside shorter_after_first()
_fired = False        # a lockup fired since shorter_after_first() began


def _threshold() -> float:
    if _shorten and _fired:
        return min(SOFT_LOCKUP_SECONDS, REPEAT_SECONDS)
    return SOFT_LOCKUP_SECONDS


@contextmanager
def shorter_after_first() -> Iterator[None]:
    """An exploration: after its first soft lockup, detect the next ones sooner.

    A busy-wait that depends on the schedule locks up in many schedules, and each would
    cost the full threshold (``explore --all`` of such a scenario took minutes). The
    first one proved the scenario can spin; from then on a step that runs
    :data:`REPEAT_SECONDS` of CPU is taken for the same lockup. The threshold decides
    only when a spinning task is stopped, never what any run did or reports.
    """
    global _shorten, _fired
    _shorten += 1
    if _shorten == 1:
        _fired = False
    try:
        yield
    finally:
        _shorten -= 1


class SoftLockup(VerdictSignal):
    """Raised inside a task that ran too long without a scheduling point.

    Built without arguments by the interpreter (an asynchronous exception is raised by
    type), in the spinning thread: the watchdog left the message for that thread.
    """

    def __init__(self) -> None:
        msg = _messages.pop(threading.get_ident(), f"{PREFIX} - a task never reached a "
                            "scheduling point")
        super().__init__("livelock", msg)


#: A signal that stops every run of this process from now on, at its first step (set by
#: ``interrupt_running(..., later_runs=True)``: a command's Ctrl-C that came as one run
#: ended must still stop the next).
STOP = [0]


def watch(k: "Kernel") -> tuple[int, "Kernel | None"]:
    """Put the run of ``k`` (in this thread) under the watchdog; returns what
    :func:`unwatch` needs. Cheap: two dict operations, once per run."""
    if STOP[0]:
        k.interrupted = STOP[0]
        k.detour = True
    ident = threading.get_ident()
    prev = _active.get(ident)
    _active[ident] = k
    if _thread is None:
        _start()
    return ident, prev


def running() -> "Kernel | None":
    """The kernel this thread is running right now, if any."""
    return _active.get(threading.get_ident())


@contextmanager
def watching(k: "Kernel") -> Iterator[None]:
    """:func:`watch` for the span of a ``with`` block (the event-loop drivers; the
    direct driver calls watch/unwatch itself, as a ``with`` costs a microsecond)."""
    token = watch(k)
    try:
        yield
    finally:
        unwatch(token)


def unwatch(token: tuple[int, "Kernel | None"]) -> None:
    """The run is over (a nested run restores the outer one)."""
    ident, prev = token
    if prev is None:
        _active.pop(ident, None)
    else:
        _active[ident] = prev
    _messages.pop(ident, None)


def _forget_after_fork() -> None:
    # A forked child has no watchdog thread (threads do not survive fork) and none of
    # the parent's runs: start afresh on its first run.
    global _thread, _shorten, _fired
    _thread = None
    _shorten, _fired = 0, False
    _active.clear()
    _messages.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _start() -> None:
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_loop, name="vmemu-soft-lockup", daemon=True)
            _thread.start()


def _cpu_clock(ident: int) -> Any:
    """A function returning the CPU time of thread ``ident`` (wall time where the
    platform cannot tell one thread's CPU time)."""
    try:
        clock = time.pthread_getcpuclockid(ident)
        time.clock_gettime(clock)
        return lambda: time.clock_gettime(clock)
    except (AttributeError, OSError):  # pragma: no cover - not Linux/BSD/macOS
        return time.monotonic


def _loop() -> None:
    seen: dict[int, tuple[Any, int, float, Any]] = {}   # ident -> (kernel, steps, t0, clock)
    while True:
        time.sleep(min(0.25, _threshold() / 4))
        try:
            _check(seen)
        except Exception:  # pragma: no cover - a thread that ended under our feet
            # The safety net must outlive any one oddity: forget and look again.
            seen.clear()


def _check(seen: dict[int, tuple[Any, int, float, Any]]) -> None:
    """One look at every run in progress (see the module docstring)."""
    global _fired
    limit = _threshold()
    for ident, k in list(_active.items()):
        old = seen.get(ident)
        if old is None or old[0] is not k or old[1] != k.steps:
            clock = old[3] if old is not None else _cpu_clock(ident)
            seen[ident] = (k, k.steps, clock(), clock)
            continue
        _, _, t0, clock = old
        if clock() - t0 >= limit and _spinning_in_task(ident, k):
            t = k.current
            # No number of seconds in the message: the threshold (shortened or not) must
            # not show in what a run reports.
            _messages[ident] = (
                f"{PREFIX} - task {t.name} never reached a scheduling point (Python code "
                "that never awaits vmemu, e.g. a busy-wait: add `await ctx.yield_()` to "
                "the loop)")
            _fired = True
            import ctypes   # (here: a command that never locks up never loads ctypes)
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                       ctypes.py_object(SoftLockup))
            seen[ident] = (k, -1, 0.0, clock)   # once per stuck step
    for ident in [i for i in seen if i not in _active]:
        del seen[ident]


def _spinning_in_task(ident: int, k: "Kernel") -> bool:
    """Is thread ``ident`` executing inside ``k``'s current task right now? (Never raise
    into a host program's own code, or into the kernel between two steps.)"""
    t = k.current
    if k.outcome is not None or t is None or t.coro is None:
        return False
    task_frame = getattr(t.coro, "cr_frame", None) or getattr(t.coro, "gi_frame", None)
    frame = sys._current_frames().get(ident)
    while frame is not None:
        if frame is task_frame:
            return True
        frame = frame.f_back
    return False
