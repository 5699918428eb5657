"""Address spaces: anonymous and shared regions, page faults, swap-in with readahead.

A task maps a region (``mmap``) and touches its pages (``touch``). The first write to a
page allocates a frame through the normal allocator (GFP masks, watermarks, reclaim and
"too small to fail" waits all apply, with ``GFP_HIGHUSER``, which is ``GFP_KERNEL``
here); a first read maps the zero page, as 2.2's ``do_anonymous_page()`` does, and costs
no frame. Frames come off the free list in allocation order, so two tasks faulting at
the same time interleave in physical memory.

Touched pages keep their state one by one (an untouched page has none, and every touch
costs a step of ``limits.steps``, so what a run keeps is bounded by its step budget and
the pool's size costs nothing). A resident page is *mapped* (its pte is
present), or unmapped in the *swap cache* (read ahead, or marked for a deferred write).
It is *dirty* when its contents are newer than its swap copy, *young* when touched since
a scanner last looked, and may be under IO. Touching a page that is swapped out is a
major fault: a frame, a read of its slot, and readahead of the other slots of its
aligned window of ``readahead`` slots (2.2's ``swapin_readahead()``), each read-ahead
page given a frame as the faulting one is, except that it never waits for memory: when
none can be had, readahead stops. A fault on a page in the swap cache maps it (a
readahead hit counts as used); a write to a page with a swap copy frees the copy (2.2's
``delete_from_swap_cache()`` on a write fault).

Mappings live until the run ends, like allocations (no ``munmap``, no exit teardown). A
shared region, once any task maps it, is one mapping every task may touch (like shm).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any, Iterator, TYPE_CHECKING

from ._gfp import GFP_MASKS
from ._metrics import COUNTERS
from ._swapdev import SwapDevice
from .task import Task, VerdictSignal

if TYPE_CHECKING:  # pragma: no cover
    from .mm import MemoryManager

#: The mask of user page faults (GFP_HIGHUSER, which is GFP_KERNEL without zones).
FAULT_GFP = "GFP_KERNEL"


class AnonPage:
    """One touched page of a region (see the module docstring for the states)."""

    __slots__ = ("region", "index", "frame", "slot", "mapped", "dirty", "young", "io",
                 "ahead", "wanted")

    def __init__(self, region: "Region", index: int) -> None:
        self.region = region
        self.index = index
        self.frame: int | None = None
        self.slot: int | None = None
        self.mapped = False
        self.dirty = False
        self.young = False
        self.io: str | None = None       # "read" or "write" while a request holds it
        self.ahead = False               # read ahead and not used yet
        self.wanted = False              # a fault waits for its IO: keep the frame

    def where(self) -> str:
        return f"{self.region.name} page {self.index}"


class Region:
    """A mapping: ``size`` pages, its touched pages by index (and their sorted indices)."""

    __slots__ = ("name", "size", "shared", "mm", "pages", "idx", "passes")

    def __init__(self, name: str, size: int, shared: bool, mm: "Mm") -> None:
        self.name = name
        self.size = size
        self.shared = shared
        self.mm = mm
        self.pages: dict[int, AnonPage] = {}
        self.idx: list[int] = []
        self.passes = 0                  # touches so far: the seed of order ``random``


class Mm:
    """An address space (a task's, or ``shm``'s for shared regions): its regions in
    mapping order, resident pages (``rss``), and vmscan's ``swap_cnt`` and resume point
    ``swap_address`` (region index, page index), as 2.2's ``mm_struct`` has them."""

    __slots__ = ("name", "regions", "rss", "swap_cnt", "ri", "pi")

    def __init__(self, name: str) -> None:
        self.name = name
        self.regions: list[Region] = []
        self.rss = 0
        self.swap_cnt = 0
        self.ri = 0
        self.pi = 0


def touch_order(lo: int, hi: int, order: str, k: int) -> Iterator[int]:
    """The pages ``lo..hi`` in ``order``: ``random`` is the pseudo-random permutation of
    seed ``k`` (splitmix64 and Fisher-Yates: workload, not scheduling, so the same in
    every run and on every platform), ``stride`` visits ``lo, lo+k, ...`` then
    ``lo+1, lo+1+k, ...``."""
    if order == "sequential":
        return iter(range(lo, hi + 1))
    if order == "reverse":
        return iter(range(hi, lo - 1, -1))
    if order == "stride":
        return (i for start in range(lo, min(lo + k, hi + 1))
                for i in range(start, hi + 1, k))
    pages = list(range(lo, hi + 1))
    state = (k * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) & (2**64 - 1)
    for i in range(len(pages) - 1, 0, -1):      # Fisher-Yates on splitmix64
        state = (state + 0x9E3779B97F4A7C15) & (2**64 - 1)
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
        j = (z ^ (z >> 31)) % (i + 1)
        pages[i], pages[j] = pages[j], pages[i]
    return iter(pages)


class Vm:
    """The run's address spaces and anonymous frames (``MemoryManager.vm``)."""

    def __init__(self, mm: "MemoryManager") -> None:
        self.mm = mm
        self.k = mm.k
        self.mms: list[Mm] = []
        self.by_task: dict[int, Mm] = {}
        self.shm: Mm | None = None
        self.shared: dict[str, Region] = {}
        self.frames: dict[int, AnonPage] = {}
        self.order: list[int] = []       # resident frames, sorted: the physical clock's
        self.cache: list[int] = []       # the unmapped ones (the swap cache), sorted
        self.hand = 0
        self.writing = 0                 # pages under write IO (their frames will free)
        self.marked = 0                  # unmapped dirty pages waiting for a write
        self.stats = dict.fromkeys(COUNTERS, 0)
        swap = mm.model.swap
        self.policy = mm.model.swapout
        self.readahead = swap.readahead if swap is not None else 1
        self.dev = SwapDevice(mm.k, self, swap) if swap is not None else None

    # ------------------------------------------------------------------ mapping
    def mmap(self, t: Task, name: str, pages: int, shared: bool) -> None:
        if isinstance(pages, bool) or not isinstance(pages, int) or pages < 1:
            raise VerdictSignal("bug", f"BUG: {t.name}: mmap of {pages!r} pages")
        if shared:
            if self.shm is None:
                self.shm = Mm("shm")
                self.mms.append(self.shm)
            old = self.shared.get(name)
            if old is not None:
                if old.size != pages:
                    raise VerdictSignal("bug", f"BUG: {t.name}: shared region {name!r} is "
                                        f"mapped with {old.size} pages, not {pages}")
            else:
                self.shared[name] = r = Region(name, pages, True, self.shm)
                self.shm.regions.append(r)
            mine = self.by_task.get(t.tid)
            if mine is not None and any(r.name == name for r in mine.regions):
                raise VerdictSignal("bug", f"BUG: {t.name}: region {name!r} is already "
                                    "mapped privately")
        else:
            mm = self.by_task.get(t.tid)
            if mm is None:
                mm = self.by_task[t.tid] = Mm(t.name)
                self.mms.insert(len(self.mms) - (self.shm is not None), mm)
            if any(r.name == name for r in mm.regions) or name in self.shared:
                raise VerdictSignal("bug", f"BUG: {t.name}: region {name!r} is already "
                                    "mapped")
            mm.regions.append(Region(name, pages, False, mm))
        self.k.emit(t, "mmap", f"{name} {pages}" + (" shared" if shared else ""))

    def region(self, t: Task, name: str) -> Region:
        mm = self.by_task.get(t.tid)
        if mm is not None:
            for r in mm.regions:
                if r.name == name:
                    return r
        r = self.shared.get(name)
        if r is not None:
            return r
        raise VerdictSignal("bug", f"BUG: unable to handle page fault: {t.name} touched "
                            f"region {name!r}, which it has not mapped (SIGSEGV)")

    # ------------------------------------------------------------------ touching
    async def touch(self, t: Task, name: str, lo: int | None, hi: int | None, order: str,
                    k_: int | None, write: bool, think: int) -> None:
        """Touch pages ``lo..hi`` of region ``name`` (None: all of it) in ``order``
        (``random`` with ``k_`` None: seeded by how many touches the region had)."""
        k = self.k
        region = self.region(t, name)
        if lo is None:
            lo, hi = 0, region.size - 1
        if not 0 <= lo <= hi < region.size or think < 0:
            what = (f"think time {think}" if think < 0 else
                    f"pages {lo}..{hi} of region {name!r} ({region.size} pages)")
            raise VerdictSignal("bug", f"BUG: {t.name}: touch of {what}: out of bounds")
        await k.checkpoint(t)
        before = self.stats["swapin_faults"]
        seed = region.passes if k_ is None else k_
        region.passes += 1
        pages, free, mm = region.pages, self.mm.free_list, self.mm
        for i in touch_order(lo, hi, order, seed):
            p = pages.get(i)
            if p is not None and p.mapped and p.io is None and (
                    p.frame is not None or not write):
                k.count_step(t)           # a memory access: no scheduling point
                if p.frame is not None:
                    p.young = True
                    if write and not p.dirty:
                        self.dirty(p)
                continue
            await k.checkpoint(t)         # a page fault is a scheduling point
            if write and pages.get(i) is None and free.n > mm.low and not t.pf \
                    and not t.held and k.faults is None and not k.observers:
                # The first write to a page with memory to spare: fault() and the
                # allocator's fast path, inlined (the common case of a write pass).
                p = pages[i] = AnonPage(region, i)
                insort(region.idx, i)
                self.attach(p, free.take(1)[0][0])
                self.map(p)
                p.dirty = p.young = True
            else:
                await self.fault(t, region, i, write)
            if think:
                await k.sleep(t, think)
        k.emit(t, "touch", f"{name} {lo}..{hi} ({'write' if write else 'read'}): "
               f"{self.stats['swapin_faults'] - before} swap-ins, "
               f"{self.mm.free_list.n} free")

    def dirty(self, p: AnonPage) -> None:
        """A write to a resident page: its swap copy, if any, is stale now."""
        p.dirty = True
        if p.slot is not None:
            self.dev.free_slot(p.slot)
            p.slot = None

    async def fault(self, t: Task, region: Region, i: int, write: bool) -> None:
        """A page fault on page ``i`` (after its scheduling point); the page is mapped
        after it."""
        pages = region.pages
        while True:
            p = pages.get(i)
            if p is None or (p.frame is None and p.slot is None):
                if p is None:
                    p = pages[i] = AnonPage(region, i)
                    insort(region.idx, i)
                if not write:
                    p.mapped = True               # the zero page: no frame
                    return
                frame = await self.frame(t, False)
                if p.frame is not None or p.slot is not None:
                    self.mm.free_list.give(([frame, 1, 1],))   # someone beat us to it
                    continue
                self.attach(p, frame)
                self.map(p)
                p.dirty = p.young = True
                return
            if p.io is not None:
                p.wanted = True
                await self.dev.wait(t, f"swap IO of {p.where()}")
                continue
            if p.frame is not None:               # in the swap cache (or mapped: shared)
                p.wanted = False
                if not p.mapped:
                    self.map(p)
                    if p.dirty:                   # marked for a deferred write: keep it
                        self.marked -= 1
                        self.dev.free_slot(p.slot)
                        p.slot = None
                if p.ahead:
                    p.ahead = False
                    self.stats["readahead_used"] += 1
                p.young = True
                if write and not p.dirty:
                    self.dirty(p)
                return
            await self.swap_in(t, p)

    async def swap_in(self, t: Task, p: AnonPage) -> None:
        """A major fault: a frame, the read of ``p``'s slot and its readahead window."""
        frame = await self.frame(t, False)
        if p.frame is not None or p.slot is None:
            self.mm.free_list.give(([frame, 1, 1],))  # read in by someone else meanwhile
            return
        dev, st = self.dev, self.stats
        st["swapin_faults"] += 1
        self.attach(p, frame)
        p.io, p.wanted = "read", True
        self.k.emit(t, "swapin", f"{p.where()} (slot {p.slot})")
        await self.read(t, p)
        ra = self.readahead
        start = p.slot - p.slot % ra
        for s in range(start, min(start + ra, dev.slots)):
            q = dev.owner.get(s)
            if q is None or q.frame is not None or q.io is not None:
                continue
            f = await self.frame(t, True)
            if f is None:
                break                            # no memory for readahead: stop
            if q.frame is not None or q.slot != s:
                self.mm.free_list.give(([f, 1, 1],))
                continue
            self.attach(q, f)
            q.io, q.ahead = "read", True
            await self.read(t, q)
        while p.io is not None:
            await dev.wait(t, f"swap-in of {p.where()}")

    async def frame(self, t: Task, may_fail: bool) -> int | None:
        """One frame for a fault, through the allocator (None: readahead gave up)."""
        mm = self.mm
        free = mm.free_list
        k = self.k
        if free.n > mm.low and not t.pf and not t.held and k.faults is None \
                and not k.observers:
            return free.take(1)[0][0]     # the allocator's fast path, inlined
        eff = mm._enter(t, GFP_MASKS[FAULT_GFP], "page fault")
        if await mm._fault(t, FAULT_GFP, 1, None):
            if may_fail:
                return None
            self._oom(t, "a fault plan failed its allocation")
        from .mm import _label   # late: mm imports this module
        runs = await mm._get(t, 1, eff, may_fail, "page fault, " + _label(t, FAULT_GFP, eff))
        if runs is None:
            if may_fail:
                return None
            self._oom(t, mm._why(t, 1, eff))
        return runs[0][0]

    def _oom(self, t: Task, why: str) -> None:
        """A page fault that gets no frame: 2.2's ``oom()`` kills the task (verdict oom)."""
        self.k.emit(t, "oom", f"page fault: {why}")
        loc = t.stack[-1].loc
        raise VerdictSignal("oom", f"{t.name}: page fault" + (f" at {loc}" if loc else "")
                            + f": {why}; the OOM killer would kill {t.name}")

    # ------------------------------------------------------------------ frames and IO
    def attach(self, p: AnonPage, frame: int) -> None:
        """Give the unmapped page ``p`` the frame ``frame`` (it joins the swap cache)."""
        p.frame = frame
        self.frames[frame] = p
        insort(self.order, frame)
        insort(self.cache, frame)

    def map(self, p: AnonPage) -> None:
        """Map the resident page ``p`` (its pte is present: it leaves the swap cache)."""
        p.mapped = True
        p.region.mm.rss += 1
        del self.cache[bisect_left(self.cache, p.frame)]

    def unmap(self, p: AnonPage) -> None:
        p.mapped = False
        p.region.mm.rss -= 1
        insort(self.cache, p.frame)

    def release(self, p: AnonPage) -> None:
        """Give the unmapped page ``p``'s frame back to the free list (freed by reclaim)."""
        f = p.frame
        del self.frames[f]
        del self.order[bisect_left(self.order, f)]
        del self.cache[bisect_left(self.cache, f)]
        p.frame = None
        p.young = p.ahead = False
        self.mm.free_list.give(([f, 1, 1],))
        self.stats["pages_freed"] += 1

    async def read(self, t: Task, p: AnonPage) -> None:
        await self.dev.queue_bio(t, False, p)

    async def write(self, t: Task, p: AnonPage) -> None:
        """Start the write of ``p`` (unmapped, with its slot) to swap."""
        p.io = "write"
        p.dirty = False
        self.writing += 1
        await self.dev.queue_bio(t, True, p)

    def complete(self, t: Task, r: Any) -> None:
        """``swap_io`` finished request ``r``: written frames are freed (unless a fault
        waits for the page: it stays in the swap cache), read pages enter the swap cache
        (a page a fault waits for stays ``wanted`` until the fault maps it, so reclaim
        leaves it alone). Memory waiters retry: pages were freed, or can be now."""
        for p in r.pages:
            p.io = None
            if r.write:
                self.writing -= 1
                if not p.wanted:
                    self.release(p)
        self.mm._wake_waiters(t)

    # ------------------------------------------------------------------ reports
    def resident(self) -> int:
        return len(self.frames)

    def under_io(self) -> int:
        return sum(1 for p in self.frames.values() if p.io is not None)

    def exhausted(self, eff: frozenset[str]) -> bool:
        """Swap is full, and that is all that keeps reclaim from freeing memory."""
        from ._gfp import IO
        dev = self.dev
        return (dev is not None and dev.full and IO in eff and not dev.in_flight()
                and self.writing == 0)

    def barred(self, eff: frozenset[str]) -> list[str]:
        """What reclaim under ``eff`` may not swap out (for a memory wait's report)."""
        from ._gfp import IO
        dirty = sum(1 for p in self.frames.values() if p.dirty and p.io is None)
        if not dirty:
            return []
        if self.dev is None:
            return [f"{dirty} dirty anonymous pages (there is no swap)"]
        if IO not in eff:
            return [f"{dirty} dirty anonymous pages to swap (needs io)"]
        return []

    def describe_swap(self) -> str:
        dev = self.dev
        if dev is None:
            return f"no swap; {self.resident()} anonymous pages resident"
        return (f"swap {dev.used} of {dev.slots} slots used ({self.policy}); "
                f"{self.resident()} anonymous pages resident")
