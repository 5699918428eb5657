"""Waitqueues and completions: the events tasks sleep on.

A waitqueue is not sticky: ``signal`` wakes one waiter, ``broadcast`` all, and a wakeup
nobody waits for is lost (the classic lost-wakeup bug). A completion is sticky: once
completed, every present and future ``wait`` passes. ``wait(with_lock=M)`` is a condition
variable wait: M is released while asleep and taken again before returning.

A wait sleeps ``uninterruptible`` (``wait_event``: may be a hung task), ``killable``
(the same, for the watchdog) or ``interruptible`` (``wait_event_interruptible``: never
hung, and ``stop`` wakes it), and with a ``timeout`` it also ends when that many ticks
pass (``wait_event_timeout``). The task's ``ok`` is then 1 when an event woke it and 0
when it timed out or was interrupted.

A waiter waits for every live task that can still signal the event (``_reach.py``):
that is its edge in the wait-for graph, and lockdep (observers' ``waiting`` and
``signalling`` hooks) learns the same dependencies across runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import did_you_mean, safe_str
from .._scenario.model import WAIT_STATES
from .sync import Lock, LockStatistics, Resource, might_sleep
from .task import Task, VerdictSignal, check_ticks

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

    #: How a signaller's act reads in reports ("which only T can signal it").
    verb = "signal"

    def nobody_text(self) -> str:
        return f"nobody can {self.verb} it"

    def holders(self) -> list[Task]:
        return []

    def blockers(self, t: Task) -> list[Task]:
        from ._reach import signallers   # late: only reports need it
        return signallers(self.k, self.name, t)

    def edge(self, t: Task) -> tuple[str, list[Task]]:
        from ._reach import names
        blockers = self.blockers(t)
        if not blockers:
            return f"{self.describe()} ({self.nobody_text()})", blockers
        return f"{self.describe()} (only {names(blockers)} can {self.verb} it)", blockers

    def cycle_text(self, t: Task, nxt: Task) -> str:
        from ._reach import names
        who = names(self.blockers(t), also=nxt)
        return f"{t.name} waits for {self.describe()}, which only {who} can {self.verb}"

    async def wait(self, with_lock: Lock | None = None, *, state: str = "uninterruptible",
                   timeout: int | None = None) -> bool:
        """Sleep until signalled; True if an event woke the task (False: timed out or
        interrupted). With ``with_lock``, release it while asleep (a condition variable)
        and take it again before returning."""
        k = self.k
        t = k.current
        if state not in WAIT_STATES:    # (a scenario file's are checked at load)
            text = safe_str(state)
            raise VerdictSignal("bug", f"BUG: {t.name}: unknown wait state {text!r}"
                                + did_you_mean(text, WAIT_STATES)
                                + f"; one of {', '.join(WAIT_STATES)}")
        if timeout is not None:
            timeout = check_ticks(t, "a wait's timeout", timeout)
        might_sleep(t, f"wait {self.name}", with_lock)
        await k.checkpoint(t)
        if with_lock is not None:
            with_lock._check_release(t)
            with_lock._drop(t)
            k.emit(t, "unlock", with_lock.name)
            with_lock._notify("released", t, "lock")
            with_lock._grant()
        if k.observers:
            # After a condition wait released its mutex: the waiter no longer holds it.
            # A timed wait says so (its timeout ends it even if nobody ever signals).
            self._notify("waiting", t, state if timeout is None else "timed")
        woken = True
        if not (self.sticky and self.done):
            self.waiters.append((t, "wait"))
            why = await k.block(t, self, "wait", interruptible=state == "interruptible",
                                timeout=timeout)
            woken = why not in ("timeout", "interrupted")
            if why == "interrupted":
                k.emit(t, "interrupted", self.name)
        if woken:
            k.emit(t, "woken", self.name)
        t.ok = int(woken)
        if with_lock is not None:
            await with_lock._lock("lock")
        return woken

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
        if k.observers:
            self._notify("signalling", t, op)
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
    verb = "complete"
