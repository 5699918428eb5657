"""GFP masks and the task-flag scopes that restrict them (``current_gfp_context()``).

A mask is a frozenset of flag names, so reports, events and lockdep can print it as it is.
Only the four bits the 1999 bug needs are modelled:

=========================  ===================================================================
``__GFP_DIRECT_RECLAIM``   the caller may sleep and enter direct reclaim
``__GFP_IO``               reclaim may start IO (write back dirty pages)
``__GFP_FS``               reclaim may call into the filesystem
``__GFP_HIGH``             high priority: may dip halfway into the reserve below ``min``
=========================  ===================================================================

Every allocation also wakes kswapd when it leaves free memory below ``low`` (Linux's
``__GFP_KSWAPD_RECLAIM``, which every mask here has), so that bit is implicit.
"""

from __future__ import annotations

from .task import Task

__all__ = ["DIRECT_RECLAIM", "IO", "FS", "HIGH", "GFP_MASKS", "current_gfp_context",
           "may_sleep", "show_mask"]

DIRECT_RECLAIM = "__GFP_DIRECT_RECLAIM"
IO = "__GFP_IO"
FS = "__GFP_FS"
HIGH = "__GFP_HIGH"

#: The named masks, as in include/linux/gfp_types.h (minus the bits not modelled).
GFP_MASKS: dict[str, frozenset[str]] = {
    "GFP_KERNEL": frozenset({DIRECT_RECLAIM, IO, FS}),
    "GFP_NOFS": frozenset({DIRECT_RECLAIM, IO}),
    "GFP_NOIO": frozenset({DIRECT_RECLAIM}),
    "GFP_ATOMIC": frozenset({HIGH}),
    "GFP_NOWAIT": frozenset(),
}


def current_gfp_context(t: Task, mask: frozenset[str]) -> frozenset[str]:
    """The mask an allocation really gets inside the task's flag scopes.

    Like Linux's ``current_gfp_context()``: inside a ``PF_MEMALLOC_NOIO`` scope
    (``memalloc_noio_save()``) IO and FS are stripped; inside ``PF_MEMALLOC_NOFS`` FS is.
    ``PF_MEMALLOC`` does not change the mask: it changes which watermark applies and
    forbids re-entering reclaim (see ``mm.MemoryManager``).
    """
    if t.has_flag("PF_MEMALLOC_NOIO"):
        return mask - {IO, FS}
    if t.has_flag("PF_MEMALLOC_NOFS"):
        return mask - {FS}
    return mask


def may_sleep(mask: frozenset[str]) -> bool:
    """Whether an allocation with this (effective) mask may sleep and reclaim."""
    return DIRECT_RECLAIM in mask


def show_mask(mask: frozenset[str]) -> str:
    """``__GFP_DIRECT_RECLAIM|__GFP_IO|__GFP_FS`` in a fixed order (``0`` when empty)."""
    order = (DIRECT_RECLAIM, IO, FS, HIGH)
    return "|".join(f for f in order if f in mask) or "0"
