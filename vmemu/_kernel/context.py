"""The task's view of the emulated system: what an ``async def task(ctx)`` can do.

Python scenarios receive a :class:`TaskContext`; scenario files are interpreted by
``interp.py`` through the very same object, so both kinds of scenario exercise one code path.
"""

from __future__ import annotations

import types
from contextlib import contextmanager
from typing import Any, Iterator, TYPE_CHECKING

from .._errors import did_you_mean
from .._scenario.model import TASK_FLAGS
from ._values import wrap
from .sync import Lock, RWSem, might_sleep
from .waitqueue import WaitQueue
from .task import BLOCKED, Task, VerdictSignal, check_ticks

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel


class TaskContext:
    """Handed to every emulated task. All awaitables are scheduling points.

    Attributes:
        name: the task's name.
        vars: the scenario's shared integer variables (a plain dict).
    """

    __slots__ = ("k", "task", "name", "vars")

    def __init__(self, k: "Kernel", task: Task) -> None:
        self.k = k
        self.task = task
        self.name = task.name
        self.vars = k.vars

    # ------------------------------------------------------------ named objects
    def lock(self, name: str) -> Lock:
        """The lock called ``name`` (use it as ``async with ctx.lock("A"):``)."""
        return self._resource(name, Lock, "lock")

    def rwsem(self, name: str) -> RWSem:
        """The rwsem called ``name`` (``acquire_read``/``release_read`` for the read side)."""
        return self._resource(name, RWSem, "rwsem")

    def event(self, name: str) -> WaitQueue:
        """The waitqueue or completion called ``name``."""
        return self._resource(name, WaitQueue, "event")

    def _resource(self, name: str, cls: type, what: str) -> Any:
        r = self.k.resources.get(name)
        if not isinstance(r, cls):
            names = [n for n, v in self.k.resources.items() if isinstance(v, cls)]
            raise VerdictSignal("bug", f"unknown {what} {name!r} at run time"
                                + did_you_mean(name, names))
        return r

    # ------------------------------------------------------------ time
    @types.coroutine
    def yield_(self) -> Any:
        """A bare scheduling point (``cond_resched()``): ``await ctx.yield_()``."""
        # Kernel.checkpoint, inlined: this is the hottest operation a Python scenario has,
        # and a generator of its own saves a call and a frame on every one of them.
        k = self.k
        if k.stopping:
            yield from k.stopped(self.task)
        if k.bare_yield:
            yield               # the direct driver: this yield is the park
        else:
            yield from k.park(self.task)
            if k.stopping:
                yield from k.stopped(self.task)

    async def sleep(self, ticks: int) -> None:
        """Sleep ``ticks`` of virtual time."""
        k, t = self.k, self.task
        ticks = check_ticks(t, "sleep", ticks)
        might_sleep(t, f"sleep {ticks}")
        await k.checkpoint(t)
        await k.sleep(t, ticks)

    async def io(self, ticks: int) -> bool:
        """Block on IO for ``ticks``; False (and var ``ok`` = 0) when an IO fault fails it."""
        k, t = self.k, self.task
        ticks = check_ticks(t, "io", ticks)
        might_sleep(t, f"io {ticks}")
        await k.checkpoint(t)
        ok = True
        if k.faults is not None:
            action = k.faults.at("io", t)
            if action is not None:
                if action.do == "delay":
                    ticks += action.n
                elif action.do == "io_error":
                    ok = False
                elif action.do == "preempt":
                    await k.preempt(t)
        k.emit(t, "io", f"{ticks}" + ("" if ok else " error"))
        await k.sleep(t, ticks, "io")
        t.ok = int(ok)
        return ok

    async def point(self, name: str) -> None:
        """A named fault-injection site (BUGGIFY): a plan may delay or preempt here."""
        k, t = self.k, self.task
        if not isinstance(name, str):
            raise VerdictSignal("bug", f"BUG: {t.name}: point names a fault site with a "
                                f"string, got {type(name).__name__}")
        await k.checkpoint(t)
        k.emit(t, "point", name)
        if k.faults is not None:
            action = k.faults.at("point", t, name=name)
            if action is not None:
                await k.apply_action(t, action)

    # ------------------------------------------------------------ shared memory
    @property
    def ok(self) -> int:
        """The task's result register: set by trylock, io, timed waits, cmpxchg..."""
        return self.task.ok

    def _cell(self, var: str, index: int | None) -> tuple[Any, Any, str]:
        """``(container, key, label)`` of ``var`` or ``var[index]``; ``bug`` if bad."""
        k, t = self.k, self.task
        if var not in k.vars:
            raise VerdictSignal("bug", f"unknown variable {var!r} at run time"
                                + did_you_mean(var, k.vars))
        value = k.vars[var]
        if index is None:
            if isinstance(value, list):
                raise VerdictSignal("bug", f"{var!r} is an array: pass an index")
            return k.vars, var, var
        if not isinstance(value, list):
            raise VerdictSignal("bug", f"{var!r} is not an array")
        if not 0 <= index < len(value):
            raise VerdictSignal("bug", f"BUG: KASAN: out-of-bounds access in {t.name}: "
                                f"{var}[{index}] of an array of length {len(value)}")
        return value, index, f"{var}[{index}]"

    async def load(self, var: str, index: int | None = None) -> int:
        """Read shared ``var`` (or ``var[index]``): a scheduling point, like ``load:``."""
        await self.k.checkpoint(self.task)
        box, key, name = self._cell(var, index)
        self.k.emit(self.task, "load", f"{name} -> {box[key]}")
        return box[key]

    async def store(self, var: str, value: int, index: int | None = None) -> None:
        """Write shared ``var`` (or ``var[index]``): a scheduling point, like ``set:``."""
        await self.k.checkpoint(self.task)
        box, key, name = self._cell(var, index)
        box[key] = wrap(value)
        self.k.emit(self.task, "set", f"{name}={box[key]}")

    async def cmpxchg(self, var: str, old: int, new: int, index: int | None = None) -> int:
        """Atomic compare-and-exchange; returns the value seen (``ok`` is 1 if it swapped)."""
        await self.k.checkpoint(self.task)
        box, key, name = self._cell(var, index)
        seen = box[key]
        self.task.ok = int(seen == old)
        if self.task.ok:
            box[key] = wrap(new)
        self.k.emit(self.task, "cmpxchg", f"{name} {old}->{wrap(new)} "
                    + ("ok" if self.task.ok else f"failed (saw {seen})"))
        return seen

    async def xchg(self, var: str, value: int, index: int | None = None) -> int:
        """Atomic exchange; returns the old value."""
        return await self._rmw("xchg", var, index, lambda seen: value)

    async def fetch_add(self, var: str, value: int, index: int | None = None) -> int:
        """Atomic add; returns the old value."""
        return await self._rmw("fetch_add", var, index, lambda seen: seen + value)

    async def _rmw(self, op: str, var: str, index: int | None, fn: Any) -> int:
        await self.k.checkpoint(self.task)
        box, key, name = self._cell(var, index)
        seen = box[key]
        box[key] = wrap(fn(seen))
        self.k.emit(self.task, op, f"{name} {seen}->{box[key]}")
        return seen

    # ------------------------------------------------------------ kthreads
    @property
    def should_stop(self) -> bool:
        """``kthread_should_stop()``: True once another task called ``stop`` on this one."""
        return bool(self.task.should_stop)

    async def spawn(self, name: str) -> None:
        """``kthread_run()``: start the ``start: spawned`` task ``name`` (a scheduling point)."""
        await self.k.checkpoint(self.task)
        await self.k.spawn(self.task, name)

    async def join(self, name: str) -> None:
        """Wait until task ``name`` has exited (a scheduling point)."""
        k, t = self.k, self.task
        might_sleep(t, f"join {name}")
        await k.checkpoint(t)
        target = k.task_named(t, name, "join")
        k.emit(t, "join", name)
        await k.join(t, target)

    async def stop(self, name: str) -> None:
        """``kthread_stop()``: set the task's ``should_stop``, wake it from an
        interruptible wait, then wait until it has exited."""
        k, t = self.k, self.task
        might_sleep(t, f"stop {name}")
        await k.checkpoint(t)
        target = k.task_named(t, name, "stop")
        target.should_stop = 1
        k.emit(t, "stop", name)
        if target.state is BLOCKED and target.interruptible:
            k.interrupt(target, t)
        await k.join(t, target)

    # ------------------------------------------------------------ memory
    async def alloc(self, pages: int, gfp: str = "GFP_KERNEL", *, may_fail: bool = False) -> Any:
        """Allocate ``pages``; returns a handle, or None when an allowed failure happened."""
        return await self._mm().alloc(self.task, pages, gfp, may_fail)

    async def free(self, handle: Any) -> None:
        """Free what :meth:`alloc` returned (None is ignored, like ``kfree(NULL)``)."""
        await self._mm().free(self.task, handle)

    async def fill(self, cls: str, pages: int) -> None:
        """Allocate ``pages`` into page class ``cls`` (dirty if the class has writeback)."""
        await self._mm().fill(self.task, cls, pages)

    async def mmap(self, region: str, pages: int, *, shared: bool = False) -> None:
        """Map ``pages`` pages of anonymous memory as ``region`` (``shared``: one mapping
        for every task, like shm). No memory is used until pages are touched."""
        mm = self._mm()
        await self.k.checkpoint(self.task)
        mm.address_space().mmap(self.task, region, pages, shared)

    async def touch(self, region: str, pages: Any = None, *, order: str = "sequential",
                    write: bool = False, think: int = 0) -> None:
        """Touch pages of ``region``: ``pages`` is a page, a ``range`` or ``(first, last)``
        (both included), or None for all of it; ``order`` is ``sequential``, ``reverse``,
        ``random`` (a new permutation each touch of the region; ``random:SEED`` pins
        one) or ``stride:K``; ``think`` ticks are slept after each
        page. A page not present is faulted in (a scheduling point; a swapped-out page is
        read back from swap)."""
        from .._scenario.model import TOUCH_ORDERS
        mm = self._mm()
        lo = hi = None
        if isinstance(pages, range) and pages.step == 1 and len(pages):
            lo, hi = pages.start, pages.stop - 1
        elif isinstance(pages, tuple) and len(pages) == 2:
            lo, hi = pages
        elif pages is not None:
            lo = hi = pages
        name, _, num = str(order).partition(":")
        if name not in TOUCH_ORDERS or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in
                ((lo, hi, think) if lo is not None else (think,))) or (
                num and not num.isdigit()) or (name == "stride" and not (num.isdigit()
                                                                         and int(num))):
            raise VerdictSignal("bug", f"BUG: {self.name}: touch({region!r}, {pages!r}, "
                                f"order={order!r}, think={think!r}): expected pages as an "
                                "int, a range or (first, last), an order of "
                                + ", ".join(TOUCH_ORDERS) + " (stride:K, random:SEED)")
        vm = mm.address_space()
        seed = int(num) if num else (None if name == "random" else 0)
        await vm.touch(self.task, region, lo, hi, name, seed, bool(write), think)

    def _mm(self) -> Any:
        if self.k.mm is None:
            raise VerdictSignal("bug", "memory operation in a scenario without memory:")
        return self.k.mm

    # ------------------------------------------------------------ flags and checks
    @contextmanager
    def flags(self, *names: str) -> Iterator[None]:
        """Scoped task flags (``memalloc_noio_save()``/``restore()``); scopes nest."""
        pf = self.task.pf
        for n in names:
            if n not in TASK_FLAGS:
                raise VerdictSignal("bug", f"unknown task flag {n!r}" + did_you_mean(n, TASK_FLAGS))
        for n in names:
            pf[n] = pf.get(n, 0) + 1
        try:
            yield
        finally:
            for n in names:
                pf[n] -= 1

    def check(self, condition: Any, message: str = "assertion failed") -> None:
        """End the run with verdict ``assertion`` unless ``condition`` holds."""
        if not condition:
            raise VerdictSignal("assertion", f"{self.name}: {message}")
