"""The direct driver: steps task coroutines with ``send()``; no event loop at all.

This is the fast path for exploration. The kernel's parking awaitables (``checkpoint``,
``block``, ``sleep``) are generator-based coroutines; with ``k.bare_yield`` set, the bare
``yield`` inside them hands control straight back to the ``send()`` here, so a scheduling
point costs one generator frame, and the kernel's decision is inlined below (with the
same effects as ``next_task()``) when it is forced or the strategy has a ``pick_index``.
The kernel decides who runs; this loop only resumes the chosen coroutine, so traces
equal the trio driver's (``tests/test_drivers_equal.py``).
"""

from __future__ import annotations

import functools
import types
from typing import TYPE_CHECKING

from .. import lockup
from ..task import Killed, Outcome, Task, refused

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel


@types.coroutine
def _park(t: Task):
    # Kept for code that awaits ``k.park(t)`` itself: a bare yield returns to send().
    yield


@types.coroutine
def _checkpoint(k: "Kernel", t: Task):
    """``Kernel.checkpoint`` for this driver: the bare ``yield`` is the park.

    No check after the yield: this driver never resumes a task once the run is stopping
    (it throws Killed into it instead, see :func:`kill`).
    """
    if k.stopping:
        yield from k.stopped(t)
    yield


def run_direct(k: "Kernel") -> None:
    """Run ``k`` to its verdict, then unwind every task that is still alive."""
    k.park = _park
    k.bare_yield = True
    # An instance attribute shadows the method: every `k.checkpoint(t)` of this run finds
    # the bound specialisation at once (no bound method built per call, no mode test).
    k.checkpoint = types.MethodType(_checkpoint, k)  # type: ignore[method-assign]
    next_task = k.next_task
    task_finished = k.task_finished
    runnable = k.runnable          # the kernel only ever mutates this list in place
    tape_append = k.tape.append    # ... and this one (it is never replaced)
    pick_index = k.pick_index      # the strategy's fast path, if it has one
    fast = pick_index is not None
    # ... and its C-level answer for two candidates, the commonest decision of all.
    coin = (getattr(k.strategy, "pick_coin", None) or functools.partial(pick_index, 2)
            if fast else None)
    budget = k._step_budget
    token = lockup.watch(k)
    try:
        while True:
            # The kernel's next_task(), inlined for its common cases (same effects): no
            # verdict or forced preemption pending (`detour`), budget left, and one
            # runnable task (a forced decision) or several and a strategy with a
            # pick_index. A method call is a good part of what a step costs.
            if not k.detour and k.steps < budget and (n := len(runnable)) \
                    and (n == 1 or fast):
                k.steps += 1
                if n == 1:
                    t = runnable[0]
                else:
                    t = runnable[coin() if n == 2 else pick_index(n)]
                    tape_append(t.tid)
                k.current = t
            elif (t := next_task()) is None:
                break
            try:
                t.coro.send(None)
            except StopIteration:
                task_finished(t, None)
            except KeyboardInterrupt:   # (sys.exit() in a task is a verdict, as any raise)
                raise
            except BaseException as e:  # VerdictSignal, user errors: all become verdicts
                task_finished(t, e)
    except lockup.SoftLockup as e:
        # The watchdog's exception landed here rather than in the task, which reached its
        # scheduling point just then: the verdict stands all the same.
        cur = k.current
        k.finish(Outcome(e.verdict, e.message, cur.name if cur is not None else None))
    except BaseException:
        # Ctrl-C (or a vmemu bug) mid-run: close every coroutine now, so none is left to
        # the garbage collector half-run or never started.
        k.stopping = True
        for t in k.tasks:
            k.current = t
            try:
                t.coro.close()
            except BaseException:
                refused(t.coro)   # (its bare except would not let go: left as it is)
        raise
    finally:
        lockup.unwatch(token)
    if k._done != len(k.tasks):   # (most runs end with every task done)
        for t in k.live_tasks():
            kill(k, t)


def kill(k: "Kernel", t: Task) -> None:
    """Unwind a parked coroutine: scheduling points raise Killed while the kernel stops.

    What the task does with it is reported as the event-loop drivers report it: it
    unwinds (nothing to say), it swallows Killed and returns (it ended: ``exit``, and its
    joiners are woken), or it swallows it again and again, until a scheduling point
    parks it for good (``Kernel.stopped``): it is never resumed again.
    """
    k.current = t     # (what a lock or waitqueue op on its way out charges)
    try:
        t.coro.throw(Killed())
    except StopIteration:
        k.task_finished(t, None)
    except BaseException as e:
        k.task_finished(t, e)     # (ignored while the run stops: Killed, or what unwinding raised)
    else:
        refused(t.coro)           # it yielded REFUSED: never resumed
