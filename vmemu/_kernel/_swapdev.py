"""The swap device: its slots, its block queue (the elevator) and IO completion.

**Slots** are allocated as 2.2's ``get_swap_page()`` / ``scan_swap_map()`` does:
sequentially from a cursor (``cluster_next``) for up to ``SWAPFILE_CLUSTER`` (256) pages,
then first-free from the lowest free slot, which starts a new cluster there. So pages
swapped out one after another get adjacent slots.

**Requests.** Every page read or written is a one-page bio handed to :meth:`submit`.
While it waits in the queue a request grows by merging adjacent bios of its direction
(at its end or at its start) up to ``max_request`` pages, as the elevator merges buffer
heads. At most ``queue`` requests wait; a task that finds the queue full (and its bio
mergeable with none) waits for room, as 2.2's ``__get_request_wait()`` makes it. The
submitter of a batch (a fault with its readahead, one reclaim pass) calls :meth:`kick`
when the batch is complete or before it waits: that is 2.2's unplug (``tq_disk``), so a
batch's bios merge before the first of them starts. The device serves one request at a
time, C-LOOK: the waiting request with the lowest slot at or after the head, else the
lowest. A request of n pages costs ``seek + n * per_page`` ticks.

**Completion** is the job of the daemon task ``swap_io`` (the disk interrupt), created
with the pool when ``memory.swap`` is set: it sleeps until the request in service is
done, completes it (a written page's frame is freed, a read page enters the swap cache),
starts the next one, and wakes every task waiting on the device. Tasks wait on the
device as ``blocked`` (the D state: khungtaskd's timeout applies), on a resource whose
wait-for edge leads to ``swap_io``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, TYPE_CHECKING

from .sync import Resource

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel
    from .task import Task

#: 2.2's SWAPFILE_CLUSTER: pages allocated sequentially before a first-free search.
SWAPFILE_CLUSTER = 256


class Request:
    """A block request: ``n`` contiguous slots from ``first``, and their pages."""

    __slots__ = ("write", "first", "n", "pages", "done")

    def __init__(self, write: bool, slot: int, page: Any) -> None:
        self.write = write
        self.first = slot
        self.n = 1
        self.pages = deque([page])
        self.done = 0


class SwapIO(Resource):
    """What a task waiting on the swap device waits on; ``swap_io`` completes it."""

    kind = "swap IO"
    holders_verb = "completed by"

    def __init__(self, k: "Kernel", dev: "SwapDevice") -> None:
        super().__init__(k, "swap IO")
        self.dev = dev

    def holders(self) -> list["Task"]:
        d = self.dev.daemon
        return [d] if d is not None else []

    def describe(self) -> str:
        d = self.dev
        cur = d.cur
        busy = (f"serving a {'write' if cur.write else 'read'} of slots {cur.first}.."
                f"{cur.first + cur.n - 1} until tick {cur.done}" if cur else "idle")
        return (f"swap IO (device {busy}, {len(d.pending)} queued; "
                f"{d.used} of {d.slots} slots used)")

    def cycle_text(self, t: "Task", nxt: "Task") -> str:
        return f"{t.name} waits for {self.describe()}, which {nxt.name} completes"

    def nobody_text(self) -> str:
        return "no IO is in flight"


class SwapIdle(Resource):
    """``swap_io``'s idle wait: interruptible (an idle disk is not a hung task)."""

    kind = "waitqueue"
    interruptible = True

    def __init__(self, k: "Kernel") -> None:
        super().__init__(k, "swap_io_idle")

    def nobody_text(self) -> str:
        return "idle until a request is submitted"


class SwapDevice:
    """Slots, queue and device of one run (see the module docstring)."""

    def __init__(self, k: "Kernel", vm: Any, cfg: Any) -> None:
        self.k = k
        self.vm = vm
        self.slots = cfg.slots
        dev = cfg.device
        self.seek, self.per_page = dev.seek, dev.per_page
        self.max_request, self.queue = dev.max_request, dev.queue
        self.map = bytearray(cfg.slots)      # 1: slot in use
        self.owner: dict[int, Any] = {}      # slot -> the page it holds
        self.used = 0
        self.cluster_next = 0
        self.cluster_nr = SWAPFILE_CLUSTER
        self.lowest = 0
        self.pending: list[Request] = []
        self.cur: Request | None = None
        self.head = 0
        self.io = SwapIO(k, self)
        self.idle = SwapIdle(k)
        self.daemon: "Task | None" = None
        self.full = False                    # a get_slot found no free slot

    # ------------------------------------------------------------------ slots
    def get_slot(self, page: Any) -> int | None:
        """``get_swap_page()``: the next slot of the cluster, else the first free one."""
        m = self.map
        if self.used >= self.slots:
            self.full = True
            return None
        slot = -1
        if self.cluster_nr:
            s = m.find(0, self.cluster_next)
            if s >= 0:
                slot = s
                self.cluster_nr -= 1
        if slot < 0:
            self.cluster_nr = SWAPFILE_CLUSTER
            slot = m.find(0, self.lowest)
            self.lowest = slot
        m[slot] = 1
        self.used += 1
        self.owner[slot] = page
        self.cluster_next = slot + 1
        st = self.vm.stats
        st["swap_slots_peak"] = max(st["swap_slots_peak"], self.used)
        return slot

    def free_slot(self, slot: int) -> None:
        """``swap_free()``: the page's copy in swap is no longer needed."""
        self.map[slot] = 0
        self.used -= 1
        del self.owner[slot]
        if slot < self.lowest:
            self.lowest = slot
        self.full = False

    # ------------------------------------------------------------------ the queue
    def submit(self, write: bool, slot: int, page: Any) -> bool:
        """Queue a one-page bio; False when the queue is full (kick, wait, try again)."""
        limit = self.max_request
        for r in self.pending:
            if r.write is write and r.n < limit:
                if slot == r.first + r.n:
                    r.pages.append(page)
                    r.n += 1
                    return True
                if slot == r.first - 1:
                    r.pages.appendleft(page)
                    r.first = slot
                    r.n += 1
                    return True
        if len(self.pending) >= self.queue:
            return False
        self.pending.append(Request(write, slot, page))
        return True

    async def queue_bio(self, t: "Task", write: bool, page: Any) -> None:
        """Queue the bio of ``page``'s slot; when the queue is full, unplug (which may
        start a request and make room) and, if that is not enough, wait for room."""
        while not self.submit(write, page.slot, page):
            self.kick(t)
            if len(self.pending) < self.queue:
                continue
            await self.wait(t, "a free request slot")

    def kick(self, by: "Task") -> None:
        """Unplug: start the next request if the device is idle."""
        if self.cur is None and self.pending:
            self._start(by)

    def _start(self, by: "Task") -> None:
        pend = self.pending
        after = [r for r in pend if r.first >= self.head]
        r = min(after or pend, key=lambda q: q.first)
        pend.remove(r)
        k = self.k
        r.done = k.now + self.seek + r.n * self.per_page
        st = self.vm.stats
        st["device_busy_ticks"] += r.done - k.now
        if r.first != self.head:
            st["seeks"] += 1
        # Pages count when the device starts on them, with their request: a run may end
        # with IO still queued or in flight, and a page must never count as read ahead
        # (or used) without counting as read.
        if r.write:
            st["write_requests"] += 1
            st["pages_written"] += r.n
        else:
            st["read_requests"] += 1
            st["pages_read"] += r.n
            st["readahead_pages"] += sum(1 for q in r.pages if q.ahead)
        self.head = r.first + r.n
        self.cur = r
        k.emit(by, "swap_" + ("write" if r.write else "read"),
               f"slots {r.first}..{r.first + r.n - 1} ({r.n}): done at tick {r.done}")
        d = self.daemon
        if d is not None and d.waiting_for is self.idle:
            self.idle.waiters.clear()
            k.wake(d, by=by)

    # ------------------------------------------------------------------ waiting
    async def wait(self, t: "Task", what: str) -> None:
        """Block ``t`` until the device next changes (a request done or started)."""
        self.kick(t)
        if self.cur is None:
            return                # nothing in flight: nothing would ever wake it
        self.io.waiters.append((t, what))
        await self.k.block(t, self.io, what)

    def in_flight(self) -> bool:
        return self.cur is not None or bool(self.pending)


async def swap_io_body(dev: SwapDevice, t: "Task") -> None:
    """The ``swap_io`` daemon: complete the request in service when it is done."""
    k = dev.k
    while True:
        r = dev.cur
        if r is None:
            dev.idle.waiters.append((t, "wait"))
            await k.block(t, dev.idle, "wait")
            continue
        if k.now < r.done:
            await k.sleep(t, r.done - k.now, "io")
            continue
        dev.cur = None
        dev.vm.complete(t, r)
        if dev.pending:
            dev._start(t)
        waiters = dev.io.waiters
        while waiters:
            k.wake(waiters.popleft()[0], by=t)
