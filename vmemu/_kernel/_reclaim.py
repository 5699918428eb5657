"""Reclaim: direct reclaim, the shrinker walk over page classes, and writeback.

Mixed into :class:`mm.MemoryManager` (kept apart only to keep modules short). Reclaim walks
the page classes in the order ``memory.classes`` lists them, oldest page first within a
class. A clean class is dropped at once; a dirty class is written back by its routine, run
in the reclaiming task's own context, and only when the GFP mask in effect has what the
class ``needs``. The reclaiming task has ``PF_MEMALLOC`` set for the duration, so
allocations inside writeback use the reserve and never re-enter reclaim.
"""

from __future__ import annotations

from typing import Any

from .._scenario.model import PageClass
from ._gfp import FS, IO
from .task import Frame, Task

_NEEDS = {"io": IO, "fs": FS}


class FrameNote:
    """What a reclaim frame shows in a task's stack (``Frame.step`` needs ``describe()``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def describe(self) -> str:
        return self.text


class Reclaim:
    """The reclaim half of the memory manager (a mixin; see the module docstring)."""

    async def synthetic_writeback(self, t: Task, cls: str) -> None:
        """Run ``cls``'s writeback routine once in ``t``'s context, as reclaim would.

        No page is taken or freed: this is for lockdep, which learns the locks a writeback
        takes (between ``writeback_begin``/``writeback_end`` observer calls) without needing
        memory pressure. Frames, ``PF_MEMALLOC`` and observers are exactly as in a real
        direct reclaim. Must be awaited from a running task (e.g. the body of a task added
        with ``k.add_task``). Classes without a writeback routine do nothing.
        """
        pc = self.classes[cls]
        if pc.writeback is None:
            return
        with self.reclaim_scope(t, "synthetic reclaim", f"synthetic writeback of {cls}"):
            await self._writeback(t, pc, None)

    async def direct_reclaim(self, t: Task, eff: frozenset[str], n: int, gfp: str) -> int:
        """``try_to_free_pages()`` in ``t``'s context; returns the pages freed.

        It frees until ``free >= low + n``: enough for the allocation to succeed and leave
        the pool at ``low``, so the next allocation does not re-enter reclaim at once.
        ``gfp`` is how the mask reads in reports (a name, or the flags left by a scope).
        """
        target = self.low + n
        self.k.emit(t, "reclaim", f"for {n}: {self.free_list.n} free, {gfp}")
        with self.reclaim_scope(t, "direct reclaim", "try_to_free_pages") as note:
            freed = await self.shrink(t, eff, target, note, gfp)
        self.k.emit(t, "reclaim_done", f"freed {freed}: {self.free_list.n} free")
        return freed

    def reclaim_scope(self, t: Task, frame: str, text: str) -> "ReclaimScope":
        """A ``with`` block inside which ``t`` reclaims (see :class:`ReclaimScope`)."""
        return ReclaimScope(t, frame, text)

    def allowed(self, pc: PageClass, eff: frozenset[str]) -> bool:
        """May reclaim under mask ``eff`` free pages of class ``pc``?"""
        if pc.writeback is None:
            return True                    # clean: dropped without IO or fs calls
        return all(_NEEDS[need] in eff for need in pc.needs)

    async def shrink(self, t: Task, eff: frozenset[str], target: int, note: FrameNote,
                     gfp: str) -> int:
        """Free pages (classes in order, oldest first) until ``free >= target``."""
        k = self.k
        free = self.free_list
        freed = 0
        for pc in self.model.classes:
            lru = self.lru[pc.name]
            if free.n >= target:
                break
            if not lru.n or not self.allowed(pc, eff):
                continue
            if pc.writeback is None:
                m = min(lru.n, target - free.n)
                free.give(lru.take(m))      # oldest first, as page-by-page frees would
                freed += m
                k.emit(t, "reclaim_clean", f"{m} {pc.name}: {free.n} free")
                continue
            while lru.n and free.n < target:
                page = lru.take_one()
                self.under_writeback.append(page)
                need = "+".join(pc.needs) or "nothing"
                note.text = (f"write back dirty {pc.name} page {page} with {pc.writeback} "
                             f"(class needs {need}; {gfp} allows it)")
                await self._writeback(t, pc, page)
                self.under_writeback.remove(page)
                free.give(([page, 1, 1],))
                freed += 1
                # Writeback takes time: let memory waiters retry after every page.
                self._wake_waiters(t)
        vm = self.vm
        if vm is not None and vm.dev is not None and free.n < target:
            from ._swapout import reclaim
            note.text = f"swap out anonymous pages ({vm.policy}; {gfp})"
            freed += await reclaim(vm, t, eff, target)
        if freed:
            self._wake_waiters(t)
        return freed

    async def _writeback(self, t: Task, pc: PageClass, page: int | None) -> None:
        """Run ``pc``'s writeback routine in ``t``'s context (it may lock and allocate)."""
        from ._values import call_routine
        from .context import TaskContext   # late: context imports the kernel's pieces
        k = self.k
        k.emit(t, "writeback", f"{pc.name} by {pc.writeback}: "
               + (f"page {page}" if page is not None else "synthetic"))
        for o in k.observers:
            o.writeback_begin(t, pc.name)
        # The routine is its own call chain: its `as:` names must not clobber the
        # interrupted code's handles (like C locals in a different function).
        # No try/finally here or in ReclaimScope: when a verdict is raised inside the
        # routine, the frames must still be on the stack for the report (as for `call:`).
        saved, t.handles = t.handles, {}
        routine = k.scenario.routines[pc.writeback]
        # A writeback routine that declares them receives its class (by index in
        # memory.classes) and the page (its page frame number in the pool) as parameters.
        args = {}
        if "class" in routine.params:
            args["class"] = list(self.classes).index(pc.name)
        if "page" in routine.params:
            args["page"] = page if page is not None else 0
        before = k.steps
        await call_routine(TaskContext(k, t), routine, args, None)
        if k.steps == before:
            # A routine that took no step (an empty one) still costs one: reclaim of
            # millions of pages must meet the step budget, never the soft-lockup detector.
            k.count_step(t)
        t.handles = saved
        for o in k.observers:
            o.writeback_end(t, pc.name)


class ReclaimScope:
    """``PF_MEMALLOC`` + ``t.reclaiming`` + a stack frame for the length of a reclaim."""

    __slots__ = ("t", "frame", "note")

    def __init__(self, t: Task, frame: str, text: str) -> None:
        self.t = t
        self.note = FrameNote(text)
        # At the allocation's own line, so the stack reads alloc -> reclaim -> writeback.
        self.frame = Frame(frame, t.stack[-1].loc, self.note)

    def __enter__(self) -> FrameNote:
        t = self.t
        t.pf["PF_MEMALLOC"] = t.pf.get("PF_MEMALLOC", 0) + 1
        t.reclaiming += 1
        t.stack.append(self.frame)
        return self.note

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            return            # the run is ending: leave the frame for the report
        t = self.t
        t.stack.pop()
        t.reclaiming -= 1
        t.pf["PF_MEMALLOC"] -= 1
