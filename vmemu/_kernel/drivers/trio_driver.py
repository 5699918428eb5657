"""The trio driver: every emulated task is a real trio task.

Trio randomizes the order in which it runs a batch of ready tasks, so we never let it
choose: at any moment exactly one of our tasks is ready. The kernel loop reschedules the
chosen task and parks itself; the task runs to its next scheduling point, reschedules the
loop and parks. That ping-pong is the whole protocol.

Cancellation (a host deadline, ``CancelScope.cancel()``, Ctrl-C delivered by trio) never
interrupts a parked task: whoever is parked is waiting for *us*, and waking it behind the
loop's back would break the ping-pong (two tasks running, or a task rescheduling a loop
that is not waiting). Only the loop takes note of it, when trio tries to abort the loop's
own wait. It cannot stop waiting at once either (the running task will hand the CPU back),
so it records the cancellation, and when the running task parks it stops handing off,
unwinds every task with :class:`Killed`, waits until all of them have ended, and only then
raises the cancellation, outside the nursery: the caller sees a plain ``Cancelled`` (or
``KeyboardInterrupt``), never an exception group, and no coroutine is left unawaited.
"""

from __future__ import annotations

from typing import Any, Callable, TYPE_CHECKING

import outcome
import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

from .. import lockup
from ..task import Killed, Task, drop_refused

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

#: What escapes emulated code without being a verdict: the host's own exceptions.
#: (Not SystemExit: a task that calls sys.exit() is a scenario bug, reported as one,
#: rather than an exit of vmemu with no report.)
_HOST_EXCEPTIONS = (trio.Cancelled, KeyboardInterrupt)


def _stay_parked(_raise_cancel: object) -> Abort:
    # A parked task is resumed only by the loop (see the module docstring).
    return Abort.FAILED


async def run_trio(k: "Kernel") -> None:
    """Run ``k`` to its verdict inside the current trio run.

    Raises:
        trio.Cancelled (or KeyboardInterrupt) when the surrounding scope is cancelled
        mid-run, after every emulated task has unwound.
    """
    with lockup.watching(k):
        await _run(k)


async def _run(k: "Kernel") -> None:
    loop = current_task()
    pending = len(k.tasks)     # tasks not yet parked at their start
    stop: list[Callable[[], Any]] = []   # raises the host's cancellation, latest last
    entered: set[int] = set()  # tids whose trio task has started

    def loop_abort(raise_cancel: Callable[[], Any]) -> Abort:
        # Trio wants to cancel the loop's wait (or deliver Ctrl-C to it): note it; the
        # task that runs (or the last one to start, or one that ends) wakes the loop.
        stop.append(raise_cancel)
        return Abort.FAILED

    async def park(t: Task) -> None:
        reschedule(loop)
        await wait_task_rescheduled(_stay_parked)

    async def main(t: Task, task_status: Any = None) -> None:
        nonlocal pending
        t.handle = current_task()
        entered.add(t.tid)
        if task_status is not None:
            task_status.started()   # a spawned task: its spawner goes on once it parks
        else:
            pending -= 1
            if pending == 0:
                reschedule(loop)   # every task is parked: the kernel may start
        exc: BaseException | None = None
        started = False
        try:
            await wait_task_rescheduled(_stay_parked)
            started = True
            await drop_refused(t.coro)
        except BaseException as e:
            exc = e
        finally:
            if not started:
                t.coro.close()
            t.handle = None
        try:
            if isinstance(exc, _HOST_EXCEPTIONS):
                # Ctrl-C or a cancellation raised inside emulated code: stop the run and
                # let the loop re-raise it once everything has unwound.
                stop.append(outcome.Error(exc).unwrap)
            else:
                k.task_finished(t, exc)
        finally:
            # Only the running task can end, or (once the run is over) the one being
            # unwound: either way the loop waits for it, even if the above failed (the
            # loop parks where no cancellation reaches it: it would wait for ever).
            reschedule(loop)

    async def start_task(t: Task) -> None:
        # Called by the spawning task, which runs: the new trio task parks before its
        # first turn, exactly like the tasks the run started with.
        try:
            await nursery.start(main, t, name=f"vmemu:{t.name}")
        except BaseException:
            if t.tid not in entered:   # cancelled before it ever ran: nothing ends it
                t.coro.close()
            raise

    k.park = park
    k.start_task = start_task
    if not k.tasks:
        k.next_task()
        return
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        for t in k.tasks:
            nursery.start_soon(main, t, name=f"vmemu:{t.name}")
        try:
            await wait_task_rescheduled(loop_abort)
            while not stop and (t := k.next_task()) is not None:
                reschedule(t.handle)
                await wait_task_rescheduled(loop_abort)
        except BaseException as e:   # a vmemu bug: raised below, not in a group
            error = e
        # Every task is parked now (or never started): unwind them all, and wait until
        # the last one has ended, so that the nursery has nothing left to wait for.
        if k.outcome is None:
            k.stopping = True          # no verdict: every scheduling point raises Killed
        # One at a time, in task order, each to its end: what a task does as it unwinds
        # (a bare except that returns: `exit`, joiners woken) lands on the trace in the
        # order the other drivers give it, not in the order trio happens to run them.
        for t in k.tasks:
            if t.handle is not None:
                k.current = t     # (what a lock or waitqueue op on its way out charges)
                reschedule(t.handle, outcome.Error(Killed()))
                await wait_task_rescheduled(loop_abort)
    if error is not None:
        raise error
    if stop:
        _raise_first(stop)


def _raise_first(stop: list[Callable[[], Any]]) -> None:
    """Raise the host's cancellation: Ctrl-C if there was one, else the first."""
    excs = [outcome.capture(f).error for f in stop]
    raise next((e for e in excs if isinstance(e, KeyboardInterrupt)), excs[0])
