"""The ranges of numbers vmemu accepts, in one place.

A number outside its range is refused when the file or option is read, with one line
that states the range, instead of a MemoryError, an OverflowError or a run that cannot
end in a human lifetime. The ranges are far beyond any real scenario's needs.
"""

from __future__ import annotations

#: Pages of a pool (and of one ``alloc``/``fill``): 10^12 pages of 4 KiB is 4 PiB. Memory
#: is accounted in runs of pages, so the size itself costs nothing.
MAX_PAGES = 10**12
#: ``limits.steps``: a run keeps its events in memory, about 0.5 KB a step, so 10^7
#: steps is already several GB.
MAX_STEPS = 10**7
#: Ticks (``limits.ticks``, ``hung_task_timeout``, ``start``, ``io``, ``sleep``, delays)
#: and other counts (``repeat``, fault ``interval``/``times``/``space``): the virtual
#: clock jumps, so any of these is cheap up to here.
MAX_TICKS = 10**15
#: Seeds: exploration adds schedule numbers to them, and JSON readers want 64-bit ints.
MAX_SEED = 2**62
#: PCT's bug depth d (d - 1 priority change points are drawn per run).
MAX_DEPTH = 1000
#: ``explore --jobs`` and ``--cluster local:N``: worker processes.
MAX_JOBS = 256


def too_big(value: object, maximum: int) -> bool:
    """True if ``value`` is an int (not a bool) above ``maximum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value > maximum
#: ``memory.swap.slots``: the swap map keeps a byte per slot (10 MB at most per run), and
#: swapped pages keep their state page by page.
MAX_SWAP_SLOTS = 10**7
#: ``memory.swap.device.queue``: requests waiting in the block queue (2.2 had 64 slots).
MAX_SWAP_QUEUE = 10**4
