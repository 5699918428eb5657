"""The ``metrics`` of every run: swap IO, faults, readahead, scanning and reclaim waits.

Counted in virtual time as the run goes (``Vm.stats`` and ``MemoryManager.waited``), so
they are as deterministic as the trace: the same on every driver and every run. A run
without swap reports zeros. docs/swapout.md says what each one means.
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .mm import MemoryManager

__all__ = ["COUNTERS", "METRICS", "run_metrics"]

#: The counters of ``Vm.stats`` (all start at 0), from which the metrics are made.
COUNTERS = ("write_requests", "pages_written", "read_requests", "pages_read", "seeks",
            "device_busy_ticks", "swapin_faults", "readahead_pages", "readahead_used",
            "pages_scanned", "pages_freed", "swap_slots_peak")


#: The ``metrics`` of a run, in report order (docs/swapout.md explains each).
METRICS = ("write_requests", "pages_written", "pages_per_write", "read_requests",
           "pages_read", "pages_per_read", "seeks", "device_busy_ticks", "swapin_faults",
           "readahead_pages", "readahead_used", "readahead_wasted", "pages_scanned",
           "pages_freed", "scanned_per_freed", "reclaim_waits", "reclaim_wait_ticks_mean",
           "reclaim_wait_ticks_max", "swap_slots_peak")


def _ratio(a: int, b: int) -> float:
    return round(a / b, 2) if b else 0.0


def run_metrics(mm: "MemoryManager | None") -> dict[str, Any]:
    """Every run's ``metrics`` (virtual time, deterministic; zeros without swap)."""
    if mm is None or (mm.vm is None and not mm.waited[0]):
        return dict(_ZERO)            # (most runs: a copy, not a computation)
    st = dict.fromkeys(COUNTERS, 0)
    waited = mm.waited
    if mm.vm is not None:
        st.update(mm.vm.stats)
    return _metrics(st, waited)


def _metrics(st: dict[str, int], waited: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "swapped": bool(st["pages_written"] or st["pages_read"]),
        "write_requests": st["write_requests"], "pages_written": st["pages_written"],
        "pages_per_write": _ratio(st["pages_written"], st["write_requests"]),
        "read_requests": st["read_requests"], "pages_read": st["pages_read"],
        "pages_per_read": _ratio(st["pages_read"], st["read_requests"]),
        "seeks": st["seeks"], "device_busy_ticks": st["device_busy_ticks"],
        "swapin_faults": st["swapin_faults"], "readahead_pages": st["readahead_pages"],
        "readahead_used": st["readahead_used"],
        "readahead_wasted": st["readahead_pages"] - st["readahead_used"],
        "pages_scanned": st["pages_scanned"], "pages_freed": st["pages_freed"],
        "scanned_per_freed": _ratio(st["pages_scanned"], st["pages_freed"]),
        "reclaim_waits": waited[0],
        "reclaim_wait_ticks_mean": _ratio(waited[1], waited[0]),
        "reclaim_wait_ticks_max": waited[2],
        "swap_slots_peak": st["swap_slots_peak"],
    }
    return out


_ZERO = _metrics(dict.fromkeys(COUNTERS, 0), [0, 0, 0])
