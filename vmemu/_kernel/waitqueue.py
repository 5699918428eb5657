"""Waitqueues and completions: the events tasks sleep on.

A waitqueue is not sticky: ``signal`` wakes one waiter, ``broadcast`` all, and a wakeup
nobody waits for is lost (the classic lost-wakeup bug). A completion is sticky: once
completed, every present and future ``wait`` passes. ``wait(with_lock=M)`` is a condition
variable wait: M is released while asleep and taken again before returning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .sync import Lock, LockStatistics, Resource, might_sleep

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel


class WaitQueue(Resource):
    """A waitqueue: ``signal`` wakes one waiter, ``broadcast`` all; a wakeup nobody waits
    for is lost (the classic lost-wakeup bug)."""

    kind = "waitqueue"
    sticky = False

    def __init__(self, k: "Kernel", name: str) -> None:
        super().__init__(k, name)
        self.done = False

    def nobody_text(self) -> str:
        return "nobody will signal it"

    async def wait(self, with_lock: Lock | None = None) -> None:
        """Sleep until signalled; with ``with_lock``, release it while asleep (a condition
        variable) and take it again before returning."""
        k = self.k
        t = k.current
        might_sleep(k, t, f"wait {self.name}")
        await k.checkpoint(t)
        if with_lock is not None:
            with_lock._check_release(t, "lock")
            with_lock._drop(t)
            k.emit(t, "unlock", with_lock.name)
            with_lock._notify("released", t, "lock")
            with_lock._grant()
        if not (self.sticky and self.done):
            self.waiters.append((t, "wait"))
            await k.block(t, self, "wait")
        k.emit(t, "woken", self.name)
        if with_lock is not None:
            await with_lock._lock("lock")

    async def signal(self) -> None:
        """Wake the first waiter, if any."""
        await self._wake("signal", 1)

    async def broadcast(self) -> None:
        """Wake every waiter."""
        await self._wake("broadcast", len(self.waiters))

    async def complete(self) -> None:
        """For a completion: done forever, wake everyone. For a waitqueue: ``broadcast``."""
        await self._wake("complete", len(self.waiters))

    async def _wake(self, op: str, n: int) -> None:
        k = self.k
        t = k.current
        await k.checkpoint(t)
        if self.sticky:
            # A completion remembers: every waiter, present and future, gets through.
            self.done = True
            n = len(self.waiters)
        if not self.waiters and not self.sticky:
            k.emit(t, op, f"{self.name} (lost: nobody waiting)")
            return
        k.emit(t, op, self.name)
        for _ in range(n if self.waiters else 0):
            w, _ = self.waiters.popleft()
            k.wake(w, by=t)
            if not self.waiters:
                break

    def locked(self) -> bool:  # for statistics-shaped symmetry
        return False

    def statistics(self) -> LockStatistics:
        return LockStatistics(False, None, len(self.waiters))


class Completion(WaitQueue):
    """A sticky event: once completed, every present and future ``wait`` returns."""

    kind = "completion"
    sticky = True

    def nobody_text(self) -> str:
        return "nobody will complete it"
