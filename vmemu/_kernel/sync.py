"""Sync primitives: mutex, semaphore, recursive, rwsem and spinlock (events: waitqueue.py).

Each primitive is an async context manager with the trio/anyio shape (``async with lock``,
``acquire``, ``release``, ``locked()``, ``statistics()``) and is bound to one kernel.
Every acquire and release is a scheduling point. Contended locks hand ownership directly
to the first waiter (FIFO), which keeps the wait-for graph exact: a blocked task always
knows who holds what it needs.

Misuse is a ``bug`` verdict, as a kernel would oops: unlock of a lock not held, double
unlock, and anything that might sleep while a spinlock or rwlock is held
(``might_sleep()``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, TYPE_CHECKING

from .task import Task, VerdictSignal

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel


def might_sleep(t: Task, what: str, released: "Resource | None" = None) -> None:
    """Linux's ``might_sleep()``: sleeping while holding a spinning lock (spinlock,
    rwlock) is a bug, even if no sleep would actually happen this time. (Hot callers test
    ``t.held`` first.) ``released`` is dropped before the sleep, so it does not count:
    ``wait_event_lock_irq(wq, cond, lock)`` sleeps with its spinlock released."""
    for r in t.held:
        if not r.sleeps and r is not released:
            raise VerdictSignal("bug", f"BUG: sleeping function called from invalid context: "
                                f"{t.name} does '{what}' while holding {r.kind} {r.name}")


@dataclass(frozen=True, slots=True)
class LockStatistics:
    """What ``statistics()`` returns, like trio's ``LockStatistics``."""

    locked: bool
    owner: str | None
    tasks_waiting: int


class Resource:
    """Something a task can wait for. Subclasses define who holds it."""

    kind = "resource"
    #: True for a wait the hung-task watchdog ignores (an ``S``-state sleep, see _kswapd).
    interruptible = False
    #: Holding it allows sleeping (False for spinning locks: see :func:`might_sleep`).
    sleeps = True

    def __init__(self, k: "Kernel", name: str) -> None:
        self.k = k
        self.name = name
        self.waiters: deque[tuple[Task, str]] = deque()

    def holders(self) -> list[Task]:
        return []

    def blockers(self, t: Task) -> list[Task]:
        """Whom ``t`` (a waiter) is really waiting for: the wait-for graph's edges."""
        return self.holders()

    def describe(self) -> str:
        return f"{self.kind} {self.name}"

    def nobody_text(self) -> str:
        return "held by nobody"

    def cycle_text(self, t: Task, nxt: Task) -> str:
        """One line of a wait-for cycle: how ``t``'s wait leads to ``nxt``."""
        if nxt in self.holders():   # (resources with a holders_verb word their own)
            return f"{t.name} waits for {self.describe()} held by {nxt.name}"
        return f"{t.name} waits for {self.describe()}, queued behind {self._queued(nxt)}"

    def _queued(self, b: Task) -> str:
        return b.name

    def _notify(self, hook: str, t: Task, mode: str) -> None:
        # Hot callers test `k.observers` first: most runs have none. Hooks other than
        # the lock ones are optional (an observer defines those it cares about).
        for o in self.k.observers:
            fn = getattr(o, hook, None)
            if fn is not None:
                fn(t, self, mode)

    def edge(self, t: Task) -> tuple[str, list[Task]]:
        """How the waiter ``t``'s wait reads, and whom it waits for (the wait-for edges).

        Returns ``(text, blockers)``: ``text`` completes "t waits for ..." in a report,
        e.g. ``mutex B (held by t2)`` or ``completion done (only t3 can complete it)``.
        """
        blockers = self.blockers(t)
        holders = [h for h in self.holders() if h in blockers]
        queued = [self._queued(b) for b in blockers if b not in holders]
        what = self.describe()
        if t.wait_what == "read_lock":
            what += " (for read)"
        if queued and holders:
            what += f" (queued behind {', '.join(queued)})"
        elif queued:
            return f"{what} (queued behind {', '.join(queued)})", blockers
        if holders:
            verb = getattr(self, "holders_verb", "held by")
            return f"{what} ({verb} {', '.join(h.name for h in holders)})", blockers
        return f"{what} ({self.nobody_text()})", blockers


class Lock(Resource):
    """Common code of the locks: ownership bookkeeping, blocking, handoff."""

    sleeps = True           # acquiring may sleep (not a spinlock)
    #: A plain mutex (not a subclass with its own rules): ``_lock`` and ``release`` take
    #: the uncontended case inline (four and three calls fewer a step).
    _plain = False

    async def acquire(self) -> None:
        """Take the lock (write side for an rwsem), blocking while it is unavailable."""
        await self._lock("lock")

    async def release(self) -> None:
        """Release the lock; a ``bug`` if the current task may not release it."""
        k = self.k
        t = k.current
        await k.checkpoint(t)
        if self._plain and self.owner is t:   # type: ignore[attr-defined]
            self.owner = None                 # type: ignore[attr-defined]
            held = t.held
            if held[-1] is self:
                held.pop()
            else:
                Lock._drop(self, t)
        else:
            self._check_release(t)
            self._drop(t)
        k.emit(t, "unlock", self.name)
        if k.observers:
            self._notify("released", t, "lock")
        if self.waiters:
            self._grant()

    async def __aenter__(self) -> "Lock":
        await self.acquire()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.release()

    def locked(self) -> bool:
        return bool(self.holders())

    def statistics(self) -> LockStatistics:
        h = self.holders()
        return LockStatistics(bool(h), h[0].name if h else None, len(self.waiters))

    def try_acquire(self) -> bool:
        """Take the lock if it is free right now (no scheduling point of its own)."""
        t = self.k.current
        self._notify("acquiring", t, "trylock")
        if not self.waiters and self._can_take(t, "lock"):
            self._take(t, "lock")
            self.k.emit(t, "trylock", f"{self.name}=1")
            return True
        self.k.emit(t, "trylock", f"{self.name}=0")
        return False

    async def _lock(self, mode: str) -> None:
        k = self.k
        t = k.current
        if self.sleeps and t.held:   # (might_sleep can only object when something is held)
            might_sleep(t, f"{mode} {self.name}")
        await k.checkpoint(t)
        if k.faults is not None:
            action = k.faults.at("lock", t, name=self.name)
            if action is not None:
                await k.apply_action(t, action)
        if k.observers:
            self._notify("acquiring", t, mode)
        elif self._plain and self.owner is None and not self.waiters:  # type: ignore
            self.owner = t                    # type: ignore[attr-defined]
            t.held.append(self)
            k.emit(t, mode, self.name)
            return
        if not self._must_queue(t, mode) and self._can_take(t, mode):
            self._take(t, mode)
            k.emit(t, mode, self.name)
            return
        self.waiters.append((t, mode))
        await k.block(t, self, mode)
        # Ownership was handed over by the releaser (see _grant).
        k.emit(t, mode, self.name)

    def _must_queue(self, t: Task, mode: str) -> bool:
        """Fairness: a newcomer queues behind existing waiters."""
        return bool(self.waiters)

    def _take(self, t: Task, mode: str) -> None:
        t.held.append(self)
        if self.k.observers:
            self._notify("acquired", t, mode)

    def _drop(self, t: Task) -> None:
        # Remove the most recent hold (re-entrant locks appear once per level).
        held = t.held
        for i in reversed(range(len(held))):
            if held[i] is self:
                del held[i]
                return

    def _grant(self) -> None:
        """Hand the lock to queued waiters that can now have it, in FIFO order."""
        while self.waiters:
            w, mode = self.waiters[0]
            if not self._can_take(w, mode):
                return
            self.waiters.popleft()
            self._take(w, mode)
            self.k.wake(w)

    def _bug(self, t: Task, text: str) -> VerdictSignal:
        """A bad release by ``t``. Observers that define ``bad_unlock(t, lock, text)``
        hear of it first (lockdep's "bad unlock balance"), since the run ends here."""
        for o in self.k.observers:
            hook = getattr(o, "bad_unlock", None)
            if hook is not None:
                hook(t, self, text)
        return VerdictSignal("bug", f"BUG: {t.name}: {text}")


class Mutex(Lock):
    """An owner-checked, non-recursive sleeping lock. Re-locking by the owner deadlocks."""

    kind = "mutex"
    _plain = True

    def __init__(self, k: "Kernel", name: str) -> None:
        # Resource.__init__, inlined: every run of an exploration builds its mutexes anew.
        self.k = k
        self.name = name
        self.waiters: deque[tuple[Task, str]] = deque()
        self.owner: Task | None = None

    def holders(self) -> list[Task]:
        return [self.owner] if self.owner is not None else []

    def _can_take(self, t: Task, mode: str) -> bool:
        return self.owner is None

    def _take(self, t: Task, mode: str) -> None:
        self.owner = t
        Lock._take(self, t, mode)   # (not super(): this runs at every lock)

    def _check_release(self, t: Task) -> None:
        if self.owner is not t:
            who = self.owner.name if self.owner else "nobody (double unlock?)"
            raise self._bug(t, f"unlock of {self.kind} {self.name} not held by it "
                               f"(held by {who})")

    def _drop(self, t: Task) -> None:
        self.owner = None
        Lock._drop(self, t)


class Spinlock(Mutex):
    """A spinlock: like a mutex, but its holder must not sleep (see :func:`might_sleep`)."""

    kind = "spinlock"
    sleeps = False
    _plain = False


class Recursive(Mutex):
    """A recursive lock: the owner may take it again; it is free after as many releases."""

    kind = "recursive"
    _plain = False

    def __init__(self, k: "Kernel", name: str) -> None:
        super().__init__(k, name)
        self.depth = 0

    def _can_take(self, t: Task, mode: str) -> bool:
        return self.owner is None or self.owner is t

    def _must_queue(self, t: Task, mode: str) -> bool:
        return self.owner is not t and bool(self.waiters)

    def _take(self, t: Task, mode: str) -> None:
        self.depth += 1
        super()._take(t, mode)

    def _drop(self, t: Task) -> None:
        self.depth -= 1
        Lock._drop(self, t)
        if self.depth == 0:
            self.owner = None


class Semaphore(Lock):
    """A counting semaphore with no owner (1999's ``lock_super`` was one).

    ``holders()`` are the tasks that took a unit and have not given it back; any task may
    ``up()`` it, but ``up()`` beyond ``max`` is a bug (a double unlock when ``max`` is the
    initial count, its default). With ``count: 0`` it is a signal (``sema_init(&s, 0)``):
    a waiter waits for whoever can still ``up`` it.
    """

    kind = "semaphore"

    def __init__(self, k: "Kernel", name: str, count: int, top: int | None) -> None:
        super().__init__(k, name)
        self.initial = count
        self.max = top
        self.count = count
        self.takers: list[Task] = []

    def holders(self) -> list[Task]:
        return list(self.takers)

    def blockers(self, t: Task) -> list[Task]:
        return self._uppers()   # whoever waits, the same tasks can up it

    def _uppers(self) -> list[Task]:
        from ._reach import uppers   # late: only reports need it
        return uppers(self.k, self.name, self.takers)

    def nobody_text(self) -> str:
        return "nobody can up it"

    def edge(self, t: Task) -> tuple[str, list[Task]]:
        from ._reach import names
        blockers = self._uppers()
        taking = {b.tid for b in self.takers}
        held = [b for b in blockers if b.tid in taking]
        others = [b for b in blockers if b.tid not in taking]
        parts = [f"held by {names(held, joiner=', ')}"] if held else []
        if others:
            parts.append(f"{'only ' if not held else ''}{names(others)} can up it")
        return f"{self.describe()} ({'; '.join(parts) or self.nobody_text()})", blockers

    def cycle_text(self, t: Task, nxt: Task) -> str:
        from ._reach import names
        if nxt in self.takers:
            return f"{t.name} waits for {self.describe()} held by {nxt.name}"
        taking = {b.tid for b in self.takers}
        ups = names([b for b in self._uppers() if b.tid not in taking], also=nxt)
        return f"{t.name} waits for {self.describe()}, which only {ups} can up"

    def _can_take(self, t: Task, mode: str) -> bool:
        return self.count > 0

    def _take(self, t: Task, mode: str) -> None:
        self.count -= 1
        self.takers.append(t)
        super()._take(t, mode)

    def _check_release(self, t: Task) -> None:
        if self.max is not None and self.count >= self.max:
            if self.max == self.initial:
                raise self._bug(t, f"up() of semaphore {self.name} that nobody holds "
                                   "(double unlock?)")
            raise self._bug(t, f"up() of semaphore {self.name} beyond its max of "
                               f"{self.max}")

    def _drop(self, t: Task) -> None:
        self.count += 1
        # No owner: the releaser gives back its own unit if it has one, else the oldest.
        if self.takers:
            holder = t if t in self.takers else self.takers[0]
            self.takers.remove(holder)
            Lock._drop(self, holder)


class RWSem(Lock):
    """A reader/writer semaphore. ``lock`` is the write side.

    Writer-fair, as Linux rwsems: a new reader queues behind a waiting writer, so a task
    re-taking a read lock it holds can deadlock against a queued writer.
    """

    kind = "rwsem"

    def __init__(self, k: "Kernel", name: str) -> None:
        super().__init__(k, name)
        self.writer: Task | None = None
        self.readers: list[Task] = []

    def holders(self) -> list[Task]:
        return [self.writer] if self.writer is not None else list(dict.fromkeys(self.readers))

    def blockers(self, t: Task) -> list[Task]:
        """Conflicting holders, then conflicting waiters queued ahead of ``t`` (fairness:
        a reader behind a queued writer waits for that writer, not for the readers)."""
        mode = t.wait_what
        out = [h for h in self.holders() if mode != "read_lock" or h is self.writer]
        for w, m in self.waiters:
            if w is t:
                break
            if (m != "read_lock" or mode != "read_lock") and w not in out:
                out.append(w)
        return out

    def _queued(self, b: Task) -> str:
        return f"writer {b.name}" if b.wait_what == "lock" else b.name

    async def acquire_read(self) -> None:
        """Take the read side."""
        await self._lock("read_lock")

    async def release_read(self) -> None:
        """Release the read side."""
        k = self.k
        t = k.current
        await k.checkpoint(t)
        if t not in self.readers:
            raise self._bug(t, f"read_unlock of {self.kind} {self.name} not read-held by it")
        self.readers.remove(t)
        Lock._drop(self, t)
        k.emit(t, "read_unlock", self.name)
        self._notify("released", t, "read_lock")
        self._grant()

    def _must_queue(self, t: Task, mode: str) -> bool:
        return bool(self.waiters)

    def _can_take(self, t: Task, mode: str) -> bool:
        if mode == "read_lock":
            return self.writer is None
        return self.writer is None and not self.readers

    def _take(self, t: Task, mode: str) -> None:
        if mode == "read_lock":
            self.readers.append(t)
        else:
            self.writer = t
        super()._take(t, mode)

    def _check_release(self, t: Task) -> None:
        if self.writer is not t:
            raise self._bug(t, f"unlock of {self.kind} {self.name} not write-held by it")

    def _drop(self, t: Task) -> None:
        self.writer = None
        Lock._drop(self, t)


class RWLock(RWSem):
    """``rwlock_t``: a spinning reader/writer lock (its holders must not sleep).

    Unlike an rwsem it is not writer-fair: a reader never queues behind a waiting writer
    while only readers hold it (so a reader may re-take it recursively), and a writer
    waits until every reader is gone. lockdep treats its read side as a recursive read.
    """

    kind = "rwlock"
    sleeps = False

    def _must_queue(self, t: Task, mode: str) -> bool:
        return mode != "read_lock" and bool(self.waiters)

    def blockers(self, t: Task) -> list[Task]:
        if t.wait_what == "read_lock":
            return [self.writer] if self.writer is not None else []
        return super().blockers(t)

    def _grant(self) -> None:
        super()._grant()
        # Readers queued behind a waiting writer go in whenever no writer holds it.
        if self.writer is None and self.waiters:
            for w, mode in list(self.waiters):
                if mode == "read_lock":
                    self.waiters.remove((w, mode))
                    self._take(w, mode)
                    self.k.wake(w)
