"""kswapd: the background reclaimer, an emulated daemon task like any other.

It sleeps on its own waitqueue until an allocation leaves free memory below ``low``
(``wakeup_kswapd()``), then reclaims toward ``high`` exactly as direct reclaim does: the
same class order, the same writeback routines, run in kswapd's own context. So kswapd can
block on a lock like any task — which is why, in 1999, it could not rescue a task that
deadlocked in direct reclaim: it blocked on the same superblock lock.

kswapd runs with ``PF_MEMALLOC`` set for its whole life (as in Linux): allocations inside
its writeback routines may use the reserve and never recurse into reclaim. It is a daemon:
the run is ``ok`` once every other task is done, whatever kswapd is doing.
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

from ._gfp import GFP_MASKS
from .sync import Resource

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel
    from .task import Task

#: kswapd reclaims as a GFP_KERNEL allocation would (it may do IO and call the fs).
KSWAPD_MASK = GFP_MASKS["GFP_KERNEL"]


class KswapdIdle(Resource):
    """kswapd's waitqueue. An idle kswapd is not hung (khungtaskd skips it)."""

    kind = "waitqueue"
    #: Interruptible sleep: the hung-task watchdog ignores tasks waiting here.
    interruptible = True

    def __init__(self, k: "Kernel", mm: Any) -> None:
        super().__init__(k, "kswapd_wait")
        self.mm = mm

    def nobody_text(self) -> str:
        return "idle until free memory falls below low"


async def kswapd_body(mm: Any, t: "Task") -> None:
    """The kswapd loop: reclaim toward ``high`` while woken, then sleep again."""
    k = mm.k
    t.pf["PF_MEMALLOC"] = 1
    while True:
        mm.kswapd_pending = False
        k.emit(t, "kswapd", f"woken: {mm.free_list.n} free")
        freed = 0
        if mm.free_list.n < mm.high:
            with mm.reclaim_scope(t, "balance_pgdat", "reclaim toward high") as note:
                freed = await mm.shrink(t, KSWAPD_MASK, mm.high, note, "kswapd (GFP_KERNEL)")
        k.emit(t, "kswapd_done", f"freed {freed}: {mm.free_list.n} free")
        if mm.kswapd_pending and freed and mm.free_list.n < mm.high:
            # Woken again while it worked and it is still making progress: another pass.
            k.count_step(t)
            await k.checkpoint(t)
            continue
        mm.kswapd_pending = False
        mm.kswapd_idle.waiters.append((t, "wait"))
        await k.block(t, mm.kswapd_idle, "wait")
