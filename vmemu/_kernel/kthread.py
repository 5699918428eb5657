"""Kthreads: ``spawn`` (``kthread_run()``), ``join``, ``stop`` (``kthread_stop()``).

A ``start: spawned`` task does not exist until a ``spawn`` step creates it (a new task
id, runnable at once; the driver starts its host task through ``Kernel.start_task``).
``join`` waits for a task's exit: a wait-for edge "joins T". ``stop`` sets the task's
``should_stop``, wakes it out of an interruptible wait and joins it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import did_you_mean
from .sync import Resource
from .task import DONE, Task, VerdictSignal

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel


class Kthreads:
    """The kthread half of :class:`~.kernel.Kernel` (a mixin, kept apart for size)."""

    async def spawn(self, parent: Task, name: str) -> Task:
        """``kthread_run()``: create the ``start: spawned`` task ``name``, runnable now.

        A task that is still alive cannot be spawned again (``bug``); one that exited can
        (a new incarnation, with a new task id, under the same name).
        """
        spec = self.spawnable.get(name)
        if spec is None:
            raise VerdictSignal("bug", f"BUG: {parent.name}: spawn of {name!r}, which is not "
                                "a start: spawned task" + did_you_mean(name, self.spawnable))
        old = self.by_name.get(name)
        if old is not None and old.state is not DONE:
            raise VerdictSignal("bug", f"BUG: {parent.name}: spawn of {name}, which is "
                                "already running (spawned twice while alive)")
        t = self.add_task(name, self.body_of(spec), spec=spec, daemon=spec.daemon)
        t.parent = parent
        self.emit(parent, "spawn", name)
        if self.start_task is not None:
            await self.start_task(t)
        return t

    def task_named(self, t: Task, name: str, op: str) -> Task:
        """The task a ``join``/``stop`` names: a NULL task_struct if never created."""
        target = self.by_name.get(name)
        if target is None:
            raise VerdictSignal("bug", f"BUG: {t.name}: {op} of {name}, which was never "
                                "spawned (a NULL task_struct)")
        return target

    async def join(self, t: Task, target: Task) -> None:
        """Block ``t`` until ``target`` has exited (a wait-for edge: ``joins target``)."""
        if target.state is DONE:
            return
        if target.exited is None:
            target.exited = TaskExit(self, target)
        target.exited.waiters.append((t, "join"))
        await self.block(t, target.exited, "join")

    def interrupt(self, t: Task, by: Task) -> None:
        """Wake ``t`` out of an interruptible wait (its value is then ``"interrupted"``)."""
        r = t.waiting_for
        r.waiters = type(r.waiters)(w for w in r.waiters if w[0] is not t)
        self.wake(t, "interrupted", by=by)



class TaskExit(Resource):
    """What ``join`` waits for: a task's exit. Held by that task until it ends."""

    kind = "task"

    def __init__(self, k: "Kernel", task: Task) -> None:
        super().__init__(k, task.name)
        self.task = task

    def holders(self) -> list[Task]:
        return [self.task] if self.task.state is not DONE else []

    def describe(self) -> str:
        return f"exit of task {self.name}"

    def edge(self, t: Task) -> tuple[str, list[Task]]:
        return f"{self.describe()} (joins it)", self.holders()

    def cycle_text(self, t: Task, nxt: Task) -> str:
        return f"{t.name} joins {nxt.name}"
