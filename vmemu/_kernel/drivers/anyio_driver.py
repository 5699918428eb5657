"""The anyio driver: every emulated task is a task of whichever event loop hosts the run.

It runs on any anyio backend (asyncio, trio); the CLI calls it the ``asyncio`` driver
because that is where it is needed — on trio the trio driver is faster.

Determinism never depends on the host loop's ordering because at any moment at most one
of our tasks can run: every other one waits on its own one-shot *baton* (an
``asyncio.Future`` on asyncio, an ``anyio.Event`` elsewhere) that only the kernel's
choice sets.

Unlike the trio driver, the handoff is *one* hop, not a round trip through a loop task:
at a scheduling point the parking task itself asks the kernel who runs next
(``k.next_task()``), sets that task's baton and waits on its own. When the kernel picks
the parking task again no handoff happens at all. The kernel sees exactly the same
sequence of calls as with the other drivers (``next_task`` right after a task parks or
ends), so the trace is the same. The driver's own coroutine only starts the run, waits
for the verdict, and throws :class:`Killed` into every parked task to unwind it.

Cancellation of the host scope (a timeout around ``arun``) reaches every parked task as
the backend's cancellation exception; the driver then stops handing off, lets it unwind
every task, and re-raises it: a cancelled run ends, it never hangs.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable

import anyio
import sniffio

from .. import lockup
from ..task import Abandoned, Killed, Task, drop_refused

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

# A task the kernel picks again and again never has to wait for anyone; it still lets
# the host loop in now and then, so host timeouts and other host tasks are not starved.
_HOST_YIELD_EVERY = 256


class _Baton:
    """A one-shot handoff for backends without cheap futures (anyio.Event + payload)."""

    __slots__ = ("event", "exc")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.exc: BaseException | None = None

    def set_result(self, _value: None) -> None:
        self.event.set()

    def set_exception(self, exc: BaseException) -> None:
        self.exc = exc
        self.event.set()

    def done(self) -> bool:
        return self.event.is_set()

    def __await__(self) -> Any:
        yield from self.event.wait().__await__()
        if self.exc is not None:
            raise self.exc


def _baton_factory() -> Callable[[], Any]:
    if sniffio.current_async_library() == "asyncio":
        # Plain futures: one loop iteration per handoff, the cheapest thing asyncio has.
        return asyncio.get_running_loop().create_future
    return _Baton


async def run_anyio(k: "Kernel") -> None:
    """Run ``k`` to its verdict inside the current anyio-compatible event loop.

    Raises:
        the host's cancellation exception if the surrounding scope is cancelled, and any
        internal error of vmemu itself (never a user error: those end the run as verdicts).
    """
    with lockup.watching(k):
        await _run(k)


async def _run(k: "Kernel") -> None:
    new = _baton_factory()
    checkpoint = anyio.lowlevel.checkpoint
    cancel_exc = anyio.get_cancelled_exc_class()
    done = new()              # set by whoever sees the run end
    internal: list[BaseException] = []
    cancelled = False         # the host cancelled us: stop handing off, just unwind
    spins = 0
    tg: Any = None

    def abandon() -> None:
        # Cancelling our own task group too makes sure *every* task unwinds, even when
        # the cancellation reached only one of them (asyncio's Task.cancel() on it).
        nonlocal cancelled
        cancelled = True
        # ... and from now on every scheduling point raises Killed (Kernel.stopped), as
        # the trio driver does: a task whose bare except swallows the host's cancellation
        # (which anyio delivers again and again) would otherwise never end.
        k.stopping = True
        tg.cancel_scope.cancel()

    def hand_off(t: Task | None) -> bool:
        """Wake the kernel's next choice; True if that is ``t`` itself (no wait needed)."""
        try:
            nxt = k.next_task()
        except BaseException as e:  # a vmemu bug, not the emulated program's: surface it
            internal.append(e)      # (or Ctrl-C at a safe point: interrupt_running)
            k.stopping = True       # every task unwinds now, a bare except or not
            nxt = None
        if nxt is None:
            if not done.done():
                done.set_result(None)
            return False
        if nxt is t:
            return True
        baton = nxt.handle
        if baton.done():
            # Only a cancelled future is done before we set it: the host cancelled the
            # run and that task has not unwound yet.
            abandon()
            return False
        baton.set_result(None)
        return False

    async def until_cancelled() -> None:
        # Our task group's scope is cancelled, so the next checkpoint raises; loop only
        # because asyncio delivers a cancel scope's cancellation by retrying.
        while True:
            await checkpoint()

    async def park(t: Task) -> None:
        nonlocal spins
        if not cancelled:
            if hand_off(t):
                spins += 1
                if spins % _HOST_YIELD_EVERY:
                    return
                try:
                    await checkpoint()
                except BaseException:
                    abandon()
                    raise
                return
            if not cancelled:
                baton = t.handle = new()
                try:
                    await baton
                except Killed:
                    k.current = t   # (unwinding: what a lock or waitqueue op charges)
                    raise
                except BaseException:
                    abandon()
                    raise
                return
        await until_cancelled()

    async def main(t: Task) -> None:
        exc: BaseException | None = None
        started = False
        try:
            await t.handle
            started = True
            await drop_refused(t.coro)
        except (Killed, Abandoned) as e:
            exc = e
        except BaseException as e:
            if isinstance(e, cancel_exc):
                abandon()
                raise
            if cancelled:
                return            # whatever unwinding a cancelled task raised: moot
            if isinstance(e, KeyboardInterrupt):   # (sys.exit() in a task: a verdict)
                raise
            exc = e
        finally:
            if not started:
                t.coro.close()
        k.task_finished(t, exc)
        if not isinstance(exc, Killed) and not cancelled:
            hand_off(None)

    async def start_task(t: Task) -> None:
        # As for the tasks the run started with: the baton exists before the host task
        # does, so the kernel may pick the new task before the host loop started it.
        t.handle = new()
        tg.start_soon(main, t, name=f"vmemu:{t.name}")

    k.park = park
    k.start_task = start_task
    if not k.tasks:
        k.next_task()
        return
    async with anyio.create_task_group() as tg:
        # Batons exist before the tasks start, so the first choice can be handed to a
        # task the host loop has not started yet: its first await just returns.
        for t in k.tasks:
            t.handle = new()
        for t in k.tasks:
            tg.start_soon(main, t, name=f"vmemu:{t.name}")
        hand_off(None)
        await done
        for t in k.live_tasks():
            if not t.handle.done():
                t.handle.set_exception(Killed())
    if internal:
        raise internal[0]
    if k.outcome is None:
        # Only our own scope was cancelled: someone cancelled an emulated task directly.
        raise RuntimeError("an emulated task was cancelled from outside the run; cancel "
                           "the scope around arun() instead")
