"""Swap-out: the three policies of the 1999 argument (``memory.swapout``).

Reclaim (direct or kswapd's) comes here after the page classes, when free memory is
still short of its target, and only when a swap device exists. Every policy first lets
the **physical scan** (2.2's ``shrink_mmap()``, a clock hand over the frames in physical
order) drop clean swap-cache pages nobody maps (readahead not used yet; pages swapped in
and unmapped again). Then:

- ``vmscan`` (2.2's ``swap_out()``): pick the address space with the largest
  ``swap_cnt`` (a shadow rss, refreshed from the rss when every one is 0), walk its
  regions in virtual order from where the last walk stopped, and take the first page
  that is old (a young page is made old and passed over): a clean page with a swap copy
  is dropped, a dirty one gets a slot and its write starts at once (it needs
  ``__GFP_IO``). One page per call, and the next call goes on from there: virtually
  adjacent pages get adjacent slots and their writes queue back to back.
- ``shrink_mmap``: the physical scan does it all: it finds the dirty anonymous pages
  itself, in physical order, and allocates the slot and starts the write there.
- ``vmscan_alloc_deferred_io`` (Linus's proposal): vmscan allocates the slots, in virtual
  order, unmaps the pages and marks them dirty (no IO, so no ``__GFP_IO`` needed); it
  frees nothing, so like 2.2's ``try_to_swap_out()`` for a page it only unmapped it goes
  on scanning, until the marked pages cover the shortfall. The write happens when the
  physical scan reaches each page: in physical order.

A page under write IO is freed when the write completes (``swap_io``); reclaim counts
it against its target while it is in flight, and waits on the device until free memory
reaches the target or nothing more is in flight. Every page dropped, written or marked
costs a step of ``limits.steps``.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING

from ._gfp import IO

if TYPE_CHECKING:  # pragma: no cover
    from ._anon import Mm, Vm
    from .task import Task


#: 2.2's SWAP_CLUSTER_MAX: ``try_to_free_pages()`` frees this many pages per call.
SWAP_CLUSTER_MAX = 32


async def reclaim(vm: "Vm", t: "Task", eff: frozenset[str], target: int) -> int:
    """Free anonymous memory toward ``target`` free pages, and at least
    ``SWAP_CLUSTER_MAX`` pages (2.2 reclaimed in clusters); returns the pages freed."""
    free = vm.mm.free_list
    target = max(target, free.n + SWAP_CLUSTER_MAX)
    dev = vm.dev
    io = IO in eff
    st = vm.stats
    before = st["pages_freed"]
    policy = _POLICIES[vm.policy]
    while free.n < target:
        short = target - free.n - vm.writing
        progressed = False
        if short > 0:
            progressed = await policy(vm, t, io, short)
            dev.kick(t)
        if free.n >= target:
            break
        if vm.writing and dev.in_flight():
            await dev.wait(t, "swap-out IO to free memory")
            continue
        if not progressed:
            break
    return st["pages_freed"] - before


async def _vmscan(vm: "Vm", t: "Task", io: bool, short: int) -> bool:
    done = await physical(vm, t, io, short, "cache")
    if done < short:
        # 2.2 calls swap_out() once per page, and each call resumes the walk where the
        # last one stopped in the same address space (its swap_cnt is untouched): one
        # walk that goes on after each page is the same sequence of pages.
        done += await swap_out(vm, t, io, mark=False, want=short - done)
    return done > 0


async def _shrink_mmap(vm: "Vm", t: "Task", io: bool, short: int) -> bool:
    return await physical(vm, t, io, short, "all") > 0


async def _deferred(vm: "Vm", t: "Task", io: bool, short: int) -> bool:
    done = await physical(vm, t, io, short, "deferred")
    need = short - done - vm.marked
    if need > 0:
        done += await swap_out(vm, t, io, mark=True, want=need)
    return done > 0


async def physical(vm: "Vm", t: "Task", io: bool, short: int, mode: str) -> int:
    """The physical scan: the clock hand over resident frames in physical order, until
    ``short`` pages are freed or under write. ``mode``: ``cache`` drops clean unmapped
    pages (the swap cache); ``deferred`` also writes unmapped dirty (marked) ones;
    ``all`` scans mapped pages too and swaps them out (the ``shrink_mmap`` policy)."""
    order = vm.order if mode == "all" else vm.cache
    frames, st, k, dev = vm.frames, vm.stats, vm.k, vm.dev
    done = 0
    # Two revolutions at most: the first may only make young pages old (2.2 ran
    # shrink_mmap() at falling priorities, each scanning a larger share of memory).
    for _ in range(2 * len(order)):
        if done >= short or not order:
            break
        pos = bisect_left(order, vm.hand)
        if pos == len(order):
            pos = 0
        f = order[pos]
        vm.hand = f + 1
        p = frames[f]
        st["pages_scanned"] += 1
        if p.io is not None or p.wanted:
            continue
        if p.young:
            p.young = False
            continue
        if not p.dirty:                  # a clean page: its swap copy is good
            if p.mapped:
                vm.unmap(p)
            vm.release(p)
            k.count_step(t)
            done += 1
            continue
        if not io or mode == "cache":
            continue
        if p.mapped:
            slot = dev.get_slot(p)
            if slot is None:
                continue
            vm.unmap(p)
            p.slot = slot
        else:
            vm.marked -= 1
        k.count_step(t)
        done += 1
        await vm.write(t, p)
    return done


def select(vm: "Vm") -> "Mm | None":
    """2.2's choice: the address space with the largest ``swap_cnt`` (the first of
    equals), refreshing every ``swap_cnt`` from the rss when none is left."""
    for refresh in (False, True):
        best = None
        for m in vm.mms:
            if m.rss <= 0:
                continue
            if refresh:
                m.swap_cnt = m.rss
            if m.swap_cnt > (best.swap_cnt if best is not None else 0):
                best = m
        if best is not None:
            return best
    return None


async def swap_out(vm: "Vm", t: "Task", io: bool, *, mark: bool, want: int) -> int:
    """``swap_out()``: walk address spaces until ``want`` pages are dealt with (dropped,
    written or, with ``mark``, unmapped and marked for a deferred write)."""
    done = 0
    for _ in range(2 * len(vm.mms) + 1):
        m = select(vm)
        if m is None:
            break
        done += await _walk(vm, m, t, io, mark, want - done)
        if done >= want:
            break
    return done


async def _walk(vm: "Vm", m: "Mm", t: "Task", io: bool, mark: bool, want: int) -> int:
    """``swap_out_process()``: from ``m``'s resume point, in virtual order."""
    st, k, dev = vm.stats, vm.k, vm.dev
    done = 0
    for ri in range(m.ri, len(m.regions)):
        region = m.regions[ri]
        idx = region.idx
        j = bisect_left(idx, m.pi) if ri == m.ri else 0
        while j < len(idx):
            i = idx[j]
            j += 1
            p = region.pages[i]
            if not p.mapped or p.frame is None or p.io is not None:
                continue
            m.ri, m.pi = ri, i + 1
            st["pages_scanned"] += 1
            if p.young:
                p.young = False
                continue
            if not p.dirty:              # a clean page with a swap copy: just drop it
                vm.unmap(p)
                vm.release(p)
                k.count_step(t)
                done += 1
            elif mark:
                slot = dev.get_slot(p)
                if slot is None:
                    return done
                vm.unmap(p)
                p.slot = slot
                vm.marked += 1
                k.count_step(t)
                done += 1
            elif io:
                slot = dev.get_slot(p)
                if slot is None:
                    continue
                vm.unmap(p)
                p.slot = slot
                k.count_step(t)
                done += 1
                await vm.write(t, p)
                j = bisect_left(idx, m.pi)   # (others may have faulted pages in meanwhile)
            if done >= want:
                return done
        m.pi = 0
    # Nothing left in this address space: 2.2 clears swap_cnt and starts over next time.
    m.ri = m.pi = 0
    m.swap_cnt = 0
    return done


_POLICIES = {"vmscan": _vmscan, "shrink_mmap": _shrink_mmap,
             "vmscan_alloc_deferred_io": _deferred}
