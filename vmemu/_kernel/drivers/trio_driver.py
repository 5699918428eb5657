"""The trio driver: every emulated task is a real trio task.

Trio randomizes the order in which it runs a batch of ready tasks, so we never let it
choose: at any moment exactly one of our tasks is ready. The kernel loop reschedules the
chosen task and parks itself; the task runs to its next scheduling point, reschedules the
loop and parks. That ping-pong is the whole protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import outcome
import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

from .. import lockup
from ..task import Killed, Task

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel


def _abort(_raise_cancel: object) -> Abort:
    # Cancellation of the host scope (a test timeout, Ctrl-C) may interrupt a parked task.
    return Abort.SUCCEEDED


async def run_trio(k: "Kernel") -> None:
    """Run ``k`` to its verdict inside the current trio run."""
    with lockup.watching(k):
        await _run(k)


async def _run(k: "Kernel") -> None:
    loop = current_task()
    pending = len(k.tasks)

    async def park(t: Task) -> None:
        reschedule(loop)
        await wait_task_rescheduled(_abort)

    async def main(t: Task, task_status: Any = None) -> None:
        nonlocal pending
        t.handle = current_task()
        if task_status is not None:
            task_status.started()   # a spawned task: its spawner goes on once it parks
        else:
            pending -= 1
            if pending == 0:
                reschedule(loop)   # every task is parked: the kernel may start
        exc: BaseException | None = None
        started = False
        try:
            await wait_task_rescheduled(_abort)
            started = True
            await t.coro
        except trio.Cancelled:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            exc = e
        finally:
            if not started:
                t.coro.close()
        k.task_finished(t, exc)
        if not isinstance(exc, Killed):
            reschedule(loop)

    async def start_task(t: Task) -> None:
        # Called by the spawning task, which runs: the new trio task parks before its
        # first turn, exactly like the tasks the run started with.
        await nursery.start(main, t, name=f"vmemu:{t.name}")

    k.park = park
    k.start_task = start_task
    if not k.tasks:
        k.next_task()
        return
    async with trio.open_nursery() as nursery:
        for t in k.tasks:
            nursery.start_soon(main, t, name=f"vmemu:{t.name}")
        await wait_task_rescheduled(_abort)
        while (t := k.next_task()) is not None:
            reschedule(t.handle)
            await wait_task_rescheduled(_abort)
        for t in k.live_tasks():
            reschedule(t.handle, outcome.Error(Killed()))
