"""``memory.swap`` and ``memory.swapout``: the swap device and the swap-out policy.

Called by the YAML loader's ``memory`` section (so Python scenarios, whose declarative
part goes through the same loader, get the same rules and one-line errors)::

    memory:
      pages: 136
      swapout: vmscan                  # vmscan | shrink_mmap | vmscan_alloc_deferred_io
      swap:
        slots: 256                     # pages of swap space (required)
        device: {seek: 10, per_page: 1, max_request: 16, queue: 64}
        readahead: 4                   # slots read around a faulting one

Where the issue that introduced swap is silent the defaults follow Linux 2.2: the block
queue holds 64 requests (``NR_REQUEST``), and readahead is ``1 << page_cluster`` slots
with ``page_cluster`` chosen by ``swap_setup()`` from the memory size (2 below 16 MB,
3 below 32 MB, else 4; pages are 4 KiB).
"""

from __future__ import annotations

from typing import Any

from .._bounds import MAX_SWAP_QUEUE, MAX_SWAP_SLOTS
from .._errors import did_you_mean
from ._text import describe, line_of, shown
from .model import SWAPOUT_POLICIES, Swap, SwapDevice

__all__ = ["swap_section", "default_readahead"]

_SWAP_KEYS = ("slots", "device", "readahead")
_DEVICE_KEYS = ("seek", "per_page", "max_request", "queue")


def default_readahead(pages: int) -> int:
    """2.2's ``swap_setup()``: ``1 << page_cluster`` by memory size (4 KiB pages)."""
    mb = pages * 4 // 1024
    return 1 << (2 if mb < 16 else 3 if mb < 32 else 4)


def swap_section(loader: Any, raw: dict, pages: int) -> tuple[Swap | None, str]:
    """``(swap, swapout)`` of the ``memory`` mapping ``raw`` (``swap`` None: no swap)."""
    policy = SWAPOUT_POLICIES[0]
    if "swapout" in raw:
        policy = raw["swapout"]
        if policy not in SWAPOUT_POLICIES:
            raise loader.error(f"unknown swap-out policy {shown(policy)}"
                               f"{did_you_mean(str(policy), SWAPOUT_POLICIES)}; policies: "
                               + ", ".join(SWAPOUT_POLICIES), line_of(raw, "swapout", 1),
                               "memory.swapout")
        if "swap" not in raw:
            raise loader.error("swapout chooses how pages go to swap, but there is no swap "
                               "device: add swap: {slots: N} beside it",
                               line_of(raw, "swapout", 1), "memory.swapout")
    if "swap" not in raw:
        return None, policy
    line = line_of(raw, "swap", 1)
    spec = loader.mapping(raw["swap"], line, "memory.swap", "{slots: 256}", allow_none=False)
    loader.check_keys(spec, _SWAP_KEYS, "memory.swap", "memory.swap")
    if "slots" not in spec:
        raise loader.error("swap needs slots: (how many pages of swap space, at least 1)",
                           line, "memory.swap.slots")
    slots = loader.integer(spec["slots"], 1, line_of(spec, "slots", line), "memory.swap.slots",
                           "slots", MAX_SWAP_SLOTS)
    device = SwapDevice()
    if "device" in spec:
        device = _device(loader, spec, line)
    readahead = default_readahead(pages)
    if "readahead" in spec:
        readahead = loader.integer(spec["readahead"], 1, line_of(spec, "readahead", line),
                                   "memory.swap.readahead", "readahead (slots read per "
                                   "swap-in, the faulting one included)", MAX_SWAP_SLOTS)
    return Swap(slots=slots, device=device, readahead=readahead), policy


def _device(loader: Any, spec: dict, line: int) -> SwapDevice:
    key = "memory.swap.device"
    dline = line_of(spec, "device", line)
    raw = spec["device"]
    if not isinstance(raw, dict):
        raise loader.error(f"expected a mapping like {{seek: 10, per_page: 1, max_request: "
                           f"16, queue: 64}}, got {describe(raw)}", dline, key)
    loader.check_keys(raw, _DEVICE_KEYS, key, "memory.swap.device")
    values: dict[str, int] = {}
    what = {"seek": ("seek (ticks each request costs)", 0, None),
            "per_page": ("per_page (ticks per page moved)", 1, None),
            "max_request": ("max_request (pages one request may carry)", 1, MAX_SWAP_SLOTS),
            "queue": ("queue (requests that may wait, sorted and merged)", 1, MAX_SWAP_QUEUE)}
    for name, (text, low, high) in what.items():
        if name in raw:
            args = (raw[name], low, line_of(raw, name, dline), f"{key}.{name}", text)
            values[name] = loader.integer(*args) if high is None else \
                loader.integer(*args, high)
    return SwapDevice(**values)
