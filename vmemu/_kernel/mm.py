"""The memory manager: a page pool with watermarks, direct reclaim, writeback and kswapd.

The model (DESIGN §2, docs/tutorial.md) in one paragraph: the pool has ``pages`` pages
and watermarks ``min < low < high``. An allocation of ``n`` pages succeeds at once while
``free - n >= low``; below that it wakes kswapd and still succeeds while
``free - n >= floor``, where the floor is ``min`` (``min - min // 2`` with ``__GFP_HIGH``,
``0`` for a ``PF_MEMALLOC`` task: the reserve). Past the floor, an allocation that may
sleep enters **direct reclaim** with ``PF_MEMALLOC`` set (so it never recurses), which
frees pages until ``free >= low + n``. If that is not enough, a sleeping allocation is
"too small to fail": it **waits for memory** and retries whenever pages are freed. Only a
non-sleeping allocation (``GFP_ATOMIC``, ``GFP_NOWAIT``) or one with ``may_fail`` fails.

Reclaim walks the page classes in the order ``memory.classes`` lists them, oldest page
first within a class (LRU). A clean class is freed at once; a dirty class (one with a
``writeback`` routine) is freed by running that routine **in the reclaiming task's
context**, and only when the effective GFP mask has what the class ``needs`` (``io`` ->
``__GFP_IO``, ``fs`` -> ``__GFP_FS``). The routine may take locks and allocate: that is how
the 1999 superblock deadlock happens.

Every page has exactly one state at any time (free, allocated, cached in a class, under
writeback, or taken by an ``exhaust`` fault), so ``free + allocated + cached + writeback +
hogged == pages`` always holds; :meth:`MemoryManager.check` verifies it.

Pages are numbered, and every list of them is kept as runs of page numbers (``_pages``):
memory costs per run, not per page, so a pool of 10^8 pages is as cheap as one of 8, and
a ``fill`` takes all the pages it can without reclaim in one go. Reclaim still writes back
one page at a time, and knows which page it is.
"""

from __future__ import annotations

from itertools import count
from typing import Any, TYPE_CHECKING

from .._errors import did_you_mean
from .._scenario.model import Memory, PageClass
from ._anon import Vm
from ._gfp import DIRECT_RECLAIM, GFP_MASKS, HIGH, current_gfp_context, may_sleep, show_mask
from ._kswapd import KswapdIdle, kswapd_body
from ._pages import FreeStack, Lru, Run, pages_of
from ._reclaim import FrameNote, Reclaim
from .sync import Resource, might_sleep
from .task import BLOCKED, DONE, RUNNABLE, Frame, Task, VerdictSignal

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel

#: The mask user pages get (``fill``): GFP_HIGHUSER behaves like GFP_KERNEL here.
FILL_GFP = "GFP_KERNEL"


class Pages:
    """The handle an allocation returns: which pages (as runs), and who allocated them."""

    __slots__ = ("runs", "n", "owner", "gfp", "freed", "serial")

    def __init__(self, runs: list[Run], n: int, owner: Task, gfp: str, serial: int) -> None:
        self.runs = runs
        self.n = n
        self.owner = owner
        self.gfp = gfp
        self.freed = False
        self.serial = serial

    def __len__(self) -> int:
        return self.n

    @property
    def pages(self) -> list[int]:
        """The page numbers, in the order they were taken (lists every page: small
        allocations only)."""
        return list(pages_of(self.runs))

    def __repr__(self) -> str:
        return f"<Pages {self.n} ({self.gfp}) of {self.owner.name}>"


class MemoryWait(Resource):
    """What a "too small to fail" allocation waits on when reclaim cannot help.

    Its holders are the tasks that could still free memory: kswapd while it is reclaiming
    (or about to), tasks inside a writeback routine, then tasks holding allocated pages.
    The watchdog follows the first blocked one, so a chain like ``ext2_new_block ->
    memory -> kswapd -> superblock -> ext2_new_block`` is reported as one cycle.
    """

    kind = "memory"
    holders_verb = "could be freed by"

    def __init__(self, k: "Kernel", mm: "MemoryManager") -> None:
        super().__init__(k, "memory")
        self.mm = mm

    def holders(self) -> list[Task]:
        mm, out = self.mm, []
        ks = mm.kswapd
        if ks is not None and ks.state is not DONE and (ks.reclaiming or ks.state is RUNNABLE):
            out.append(ks)
        for t in self.k.tasks:
            if t.state is not DONE and t.reclaiming and t is not ks:
                out.append(t)
        for t in self.k.tasks:
            if t.state is not DONE and mm.held.get(t.tid) and t not in out:
                out.append(t)
        vm = mm.vm
        if vm is not None and vm.dev is not None and vm.dev.daemon is not None \
                and vm.dev.in_flight():
            out.append(vm.dev.daemon)      # swap IO in flight frees frames (or makes them
                                           # reclaimable) when it completes
        return out

    def blockers(self, t: Task) -> list[Task]:
        """The freers, with the waiter itself last: a task that could free pages but is
        stuck waiting is a cycle of one only when nobody else is in the chain."""
        out = self.holders()
        if t in out:
            out.remove(t)
            out.append(t)
        return out

    def describe(self) -> str:
        mm = self.mm
        return f"memory ({mm.free_list.n} of {mm.total} pages free, min {mm.min})"

    def cycle_text(self, t: Task, nxt: Task) -> str:
        return f"{t.name} waits for {self.describe()}, which {nxt.name} could free"

    def nobody_text(self) -> str:
        return "no task can free any: nothing reclaimable under its GFP mask"


class MemoryManager(Reclaim):
    """The page pool of one run (``Kernel.mm``). See the module docstring for the model.

    Attributes:
        total, min, low, high: pool size and watermarks.
        free_list: free pages (a stack: the most recently freed page is reused first);
            ``free_list.n`` is how many.
        lru: class name -> its cached pages, oldest first.
        held: task id -> pages that task allocated and has not freed.
        live: every allocation not yet freed, by serial number (for :meth:`check`).
        hog: pages an ``exhaust`` fault took (never given back: memory stays low).
        under_writeback: pages whose class's writeback routine is running.
        kswapd: the kswapd task, if ``memory.kswapd`` is set (after :meth:`start`).
    """

    def __init__(self, k: "Kernel", model: Memory) -> None:
        self.k = k
        self.model = model
        self.total = model.pages
        self.min, self.low, self.high = model.min, model.low, model.high
        self.classes: dict[str, PageClass] = {c.name: c for c in model.classes}
        self.lru: dict[str, Lru] = {c.name: Lru() for c in model.classes}
        self.free_list = FreeStack(self.total)
        self.held: dict[int, int] = {}
        self.live: dict[int, Pages] = {}
        self._serial = count()
        self.hog: list[Run] = []
        self.hogged = 0
        self.under_writeback: list[int] = []
        self.wait = MemoryWait(k, self)
        self.kswapd: Task | None = None
        self.kswapd_idle = KswapdIdle(k, self)
        self.kswapd_pending = False
        # Address spaces and swap (``_anon.py``): made with the pool when there is a swap
        # device, else by the first ``mmap``; None in scenarios that never map anything.
        self.vm: Vm | None = Vm(self) if model.swap is not None else None
        # Allocations that had to reclaim or wait: how many, ticks in all, the longest.
        self.waited = [0, 0, 0]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Create kswapd (a daemon, after the scenario's tasks), asleep on its waitqueue,
        and with a swap device the daemon that completes its IO (``swap_io``)."""
        if self.model.kswapd:
            # kswapd starts asleep: its coroutine first runs when an allocation wakes it.
            t = self.k.add_task("kswapd", lambda t: kswapd_body(self, t), daemon=True,
                                asleep_on=self.kswapd_idle)
            self.kswapd_idle.waiters.append((t, "wait"))
            self.kswapd = t
        if self.vm is not None and self.vm.dev is not None:
            self.start_swap()

    def detach(self) -> None:
        """The run is over and its kernel is being reset: cut the links back to this
        manager (its two waitqueues point at it), so that the run's memory state is
        freed by refcounts, not left to the cyclic GC. (Swap's address space still
        holds cycles of its own: pages and regions; ~3 % of a swap exploration.)"""
        self.wait = self.kswapd_idle = None      # type: ignore[assignment]

    def start_swap(self) -> None:
        """Create ``swap_io`` (a daemon, after kswapd), idle until a request is queued."""
        from ._swapdev import swap_io_body
        dev = self.vm.dev
        t = self.k.add_task("swap_io", lambda t: swap_io_body(dev, t), daemon=True,
                            asleep_on=dev.idle)
        dev.idle.waiters.append((t, "wait"))
        dev.daemon = t

    def address_space(self) -> Vm:
        """The run's :class:`~._anon.Vm`, made by the first ``mmap`` when there is no swap."""
        if self.vm is None:
            self.vm = Vm(self)
        return self.vm

    # ------------------------------------------------------------------ public API
    async def alloc(self, t: Task, pages: int, gfp: str = "GFP_KERNEL",
                    may_fail: bool = False) -> Pages | None:
        """Allocate ``pages`` pages for ``t``; None only when a failure is allowed.

        An unhandled failure (no ``may_fail``) ends the run with verdict ``oom``.
        """
        k = self.k
        mask = self._mask(gfp)
        if isinstance(pages, bool) or not isinstance(pages, int) or pages < 1:
            raise VerdictSignal("bug", f"BUG: {t.name}: alloc of {pages!r} pages")
        eff = self._enter(t, mask, f"alloc {pages} ({gfp})")
        await k.checkpoint(t)
        fail = await self._fault(t, gfp, pages, None)
        got = None if fail else await self._get(t, pages, eff, may_fail, _label(t, gfp, eff))
        if got is None:
            return self._failed(t, pages, gfp, may_fail,
                                "a fault plan failed it" if fail else self._why(t, pages, eff))
        h = Pages(got, pages, t, gfp, next(self._serial))
        self.live[h.serial] = h
        self.held[t.tid] = self.held.get(t.tid, 0) + pages
        k.emit(t, "alloc", f"{pages} {gfp}: {self.free_list.n} free")
        if may_fail:
            t.ok = 1
        return h

    async def free(self, t: Task, handle: Pages | None) -> None:
        """Free an allocation (None is ignored, like ``kfree(NULL)``); wakes memory waiters."""
        k = self.k
        await k.checkpoint(t)
        if handle is None:
            return
        if not isinstance(handle, Pages):
            raise VerdictSignal("bug", f"BUG: {t.name}: free of {handle!r}, which is not "
                                "a page handle")
        if handle.freed:
            raise VerdictSignal("bug", f"BUG: {t.name}: double free of {len(handle)} page(s) "
                                f"allocated by {handle.owner.name}")
        handle.freed = True
        del self.live[handle.serial]
        self.free_list.give(handle.runs)
        self.held[handle.owner.tid] -= handle.n
        k.emit(t, "free", f"{handle.n}: {self.free_list.n} free")
        self._wake_waiters(t)

    async def fill(self, t: Task, cls: str, pages: int) -> None:
        """Allocate ``pages`` user pages (GFP_KERNEL, one at a time) into class ``cls``."""
        k = self.k
        if cls not in self.classes:
            raise VerdictSignal("bug", f"unknown page class {cls!r} at run time"
                                + did_you_mean(cls, self.classes))
        if isinstance(pages, bool) or not isinstance(pages, int) or pages < 1:
            raise VerdictSignal("bug", f"BUG: {t.name}: fill of {pages!r} pages")
        eff = self._enter(t, GFP_MASKS[FILL_GFP], f"fill {pages} pages of {cls}")
        await k.checkpoint(t)
        if await self._fault(t, FILL_GFP, pages, cls):
            self._failed(t, pages, FILL_GFP, False, "a fault plan failed it")
        lru = self.lru[cls]
        # Page by page, as user pages are faulted in: reclaim may take this class's own
        # older pages to make room for newer ones, which is what an LRU does. Every page
        # that needs no reclaim is taken in one go (what the page-by-page loop would do:
        # take from the top of the free list, waking kswapd once below low); only the
        # pages that reclaim makes room for go one by one, each reclaim charged a step.
        left = pages
        floor = self._floor(t, eff)
        while left:
            fast = min(left, self.free_list.n - floor)
            if fast > 0:
                if self.free_list.n - fast < self.low:
                    self.wake_kswapd(t)
                lru.append(self.free_list.take(fast))
                left -= fast
                continue
            got = await self._get(t, 1, eff, False, _label(t, FILL_GFP, eff))
            if got is None:
                self._failed(t, 1, FILL_GFP, False, self._why(t, 1, eff))
            lru.append(got)
            left -= 1
        k.emit(t, "fill", f"{pages} {cls}: {self.free_list.n} free")

    # ------------------------------------------------------------------ accounting
    def accounting(self) -> dict[str, int]:
        """Pages by state; the values always add up to ``total``."""
        acc = {"free": self.free_list.n, "allocated": sum(self.held.values()),
               "cached": sum(q.n for q in self.lru.values()),
               "writeback": len(self.under_writeback), "hogged": self.hogged}
        if self.vm is not None:
            io = self.vm.under_io()
            acc["anon"] = self.vm.resident() - io
            acc["swapio"] = io
        return acc

    def check(self) -> None:
        """Assert the pool's invariants: the counts add up to the pool, every list's count
        is its runs', and the runs of all lists cover every page exactly once."""
        acc = self.accounting()
        assert sum(acc.values()) == self.total, acc
        live = [r for h in self.live.values() for r in h.runs]
        assert sum(r[1] for r in live) == acc["allocated"], acc
        assert sum(r[1] for r in self.free_list.runs) == acc["free"], acc
        assert sum(r[1] for r in self.hog) == acc["hogged"], acc
        assert all(q.n == sum(r[1] for r in q.runs) for q in self.lru.values())
        spans = []
        runs = [*self.free_list.runs, *self.hog, *live, *(r for q in self.lru.values()
                                                      for r in q.runs),
                *([p, 1, 1] for p in self.under_writeback),
                *([f, 1, 1] for f in (self.vm.frames if self.vm is not None else ()))]
        for first, n, step in runs:
            assert n > 0 and step != 0, (first, n, step)
            if step in (1, -1):
                lo = min(first, first + (n - 1) * step)
                spans.append((lo, lo + n))
            else:
                spans.extend((p, p + 1) for p in range(first, first + n * step, step))
        spans.sort()
        end = 0
        for lo, hi in spans:
            assert lo == end, f"page {min(lo, end)} is in two states or in none"
            end = hi
        assert end == self.total, (end, self.total)

    def snapshot(self) -> dict[str, Any]:
        """The pool for reports and JSON: watermarks, pages by state, pages per class."""
        snap = {"pages": self.total, "min": self.min, "low": self.low, "high": self.high,
                **self.accounting(), "classes": {c: len(q) for c, q in self.lru.items()}}
        dev = self.vm.dev if self.vm is not None else None
        if dev is not None:
            snap["swap"] = {"slots": dev.slots, "used": dev.used,
                            "policy": self.model.swapout}
        return snap

    # ------------------------------------------------------------------ the slow path
    def _mask(self, gfp: str) -> frozenset[str]:
        mask = GFP_MASKS.get(gfp)
        if mask is None:
            raise VerdictSignal("bug", f"unknown GFP mask {gfp!r} at run time"
                                + did_you_mean(str(gfp), GFP_MASKS))
        return mask

    def _enter(self, t: Task, mask: frozenset[str], what: str) -> frozenset[str]:
        """Checks every allocation makes before its scheduling point; returns the mask
        in effect (``current_gfp_context``)."""
        eff = current_gfp_context(t, mask)
        if may_sleep(eff):
            # might_sleep() fires whatever the free memory: the bug is the context.
            might_sleep(t, what)
            if not t.has_flag("PF_MEMALLOC"):
                for o in self.k.observers:
                    o.reclaim_point(t, eff)
        return eff

    async def _fault(self, t: Task, gfp: str, pages: int, cls: str | None) -> bool:
        """Consult the fault plan at an allocation; True when it must fail."""
        k = self.k
        if k.faults is None:
            return False
        action = k.faults.at("alloc", t, name=cls, gfp=gfp, size=pages)
        if action is None:
            return False
        if action.do == "fail":
            return True
        if action.do == "exhaust":
            # An invisible hog takes pages until free == min; it never gives them back,
            # so conservation holds (they count as "hogged") and memory stays low.
            n = max(0, self.free_list.n - self.min)
            self.hog.extend(self.free_list.take(n))
            self.hogged += n
            k.emit(t, "exhaust", f"took {n}: {self.free_list.n} free")
        else:
            await k.apply_action(t, action)
        return False

    def _floor(self, t: Task, eff: frozenset[str]) -> int:
        """How low free memory may go for this allocation (the reserve rules)."""
        if t.has_flag("PF_MEMALLOC"):
            return 0                       # ALLOC_NO_WATERMARKS: the whole reserve
        if HIGH in eff:
            return self.min - self.min // 2   # ALLOC_HIGH, as __zone_watermark_ok()
        return self.min

    async def _get(self, t: Task, n: int, eff: frozenset[str], may_fail: bool,
                   label: str) -> list[Run] | None:
        """Take ``n`` pages, reclaiming or waiting as the mask allows; None = failure."""
        k = self.k
        if n > self.total:
            return None                    # can never succeed: do not wait forever
        floor = self._floor(t, eff)
        first = True
        since = -1                         # when it first had to reclaim or wait
        while True:
            if not first:
                k.count_step(t)            # every retry is charged: no unbounded loops
            first = False
            free = self.free_list.n
            if free - n < self.low:
                self.wake_kswapd(t)
            if free - n >= floor:
                if since >= 0:
                    self._got_memory(since)
                return self.free_list.take(n)
            if DIRECT_RECLAIM not in eff:
                return None
            if since < 0:
                since = k.now
            if not t.has_flag("PF_MEMALLOC"):
                freed = await self.direct_reclaim(t, eff, n, label)
                if freed:
                    continue
            if self.vm is not None and self.vm.exhausted(eff):
                return None                # swap is full: the OOM killer's case
            if may_fail:
                return None
            await self._wait_for_memory(t, n, eff, label)

    def _got_memory(self, since: int) -> None:
        w = self.waited
        ticks = self.k.now - since
        w[0] += 1
        w[1] += ticks
        w[2] = max(w[2], ticks)

    def _failed(self, t: Task, pages: int, gfp: str, may_fail: bool, why: str) -> None:
        k = self.k
        k.emit(t, "alloc_fail", f"{pages} {gfp}: {why}")
        if may_fail:
            t.ok = 0
            return None
        loc = t.stack[-1].loc
        k.emit(t, "oom", f"{pages} {gfp}")
        raise VerdictSignal("oom", f"{t.name}: allocation of {pages} page(s) ({gfp}) failed"
                            + (f" at {loc}" if loc else "") + f": {why}; nothing handles "
                            "the failure (add may_fail: true to handle it)")

    def _why(self, t: Task, n: int, eff: frozenset[str]) -> str:
        free = self.free_list.n
        if n > self.total:
            return f"the pool has only {self.total} pages"
        if DIRECT_RECLAIM not in eff:
            return (f"{n} of {free} free pages would leave {free - n}, below the watermark "
                    f"it may use ({self._floor(t, eff)}), and it may not sleep to reclaim")
        if self.vm is not None and self.vm.exhausted(eff):
            return (f"out of memory and swap: {free} free, reclaim freed nothing, and "
                    f"{self.vm.describe_swap()}")
        return f"{free} free and reclaim freed nothing"

    async def _wait_for_memory(self, t: Task, n: int, eff: frozenset[str], label: str) -> None:
        """Sleep until someone frees pages ("too small to fail": the caller retries).

        A frame on the task's stack says why, so a report shows it beside the allocation.
        """
        k = self.k
        k.emit(t, "memwait", f"{n}: {self.free_list.n} free")
        if t.has_flag("PF_MEMALLOC"):
            why = "PF_MEMALLOC may not enter reclaim, and the reserve is used up"
        else:
            barred = [f"{pc.name} (needs {'+'.join(pc.needs)})" for pc in self.model.classes
                      if self.lru[pc.name] and not self.allowed(pc, eff)]
            if self.vm is not None:
                barred += self.vm.barred(eff)
            why = "reclaim found nothing it may free" + (
                f"; may not write back {', '.join(barred)}" if barred else "")
        note = FrameNote(f"{label}: {why}")
        t.stack.append(Frame("wait for memory", t.stack[-1].loc, note))
        self.wait.waiters.append((t, "alloc"))
        await k.block(t, self.wait, "alloc")
        t.stack.pop()

    def _wake_waiters(self, by: Task) -> None:
        """Pages were freed: every memory waiter retries (in FIFO order)."""
        waiters = self.wait.waiters
        while waiters:
            w, _ = waiters.popleft()
            self.k.wake(w, by=by)

    def wake_kswapd(self, by: Task) -> None:
        """``wakeup_kswapd()``: free memory fell below ``low``."""
        ks = self.kswapd
        if ks is None or ks is by:
            return
        self.kswapd_pending = True
        if ks.state is BLOCKED and ks.waiting_for is self.kswapd_idle:
            self.kswapd_idle.waiters.clear()
            self.k.wake(ks, by=by)


def _label(t: Task, gfp: str, eff: frozenset[str]) -> str:
    """How an allocation's mask reads in reports: ``GFP_KERNEL``, or what a scope left of it."""
    if eff == GFP_MASKS[gfp]:
        return gfp
    scope = "PF_MEMALLOC_NOIO" if t.has_flag("PF_MEMALLOC_NOIO") else "PF_MEMALLOC_NOFS"
    return f"{gfp} in a {scope} scope ({show_mask(eff)})"
