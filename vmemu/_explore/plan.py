"""How an exploration's work is cut up, and when it stops: the helpers of the coordinator.

- :class:`Pending`: an epoch's blocks still to run (lost ones first, after a worker died);
- :func:`take` and :func:`coalesce`: index ranges, as the store keeps them;
- :class:`SafePoints`: Ctrl-C and SIGTERM noted by a handler and acted on at safe points
  (:func:`check_signals`), never inside a Dask call or a pool's bookkeeping;
- :func:`prompt_helpers`: the GIL handed to the executor's threads without delay;
- :func:`shipped_run_block` and :func:`shutdown`: what executors are given and how they end.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections import deque
from typing import Any, Iterator

from . import work


class SafePoints:
    """Ctrl-C and SIGTERM during an exploration take effect at safe points: at the next
    step of a schedule running here, between two schedules of a block, and between two
    looks at the executor. A KeyboardInterrupt inside a Dask call or a pool's
    bookkeeping could leave its locks held, and the shutdown that must follow would then
    hang."""

    def __enter__(self) -> "SafePoints":
        import signal
        self.old: dict[int, Any] = {}
        work.STOP[0] = 0
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old = signal.getsignal(sig)
                if sig == signal.SIGTERM and old in (signal.SIG_DFL, None):
                    continue      # (the API in a host that lets SIGTERM kill it)
                self.old[sig] = signal.signal(sig, _note_signal)
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal
        for sig, old in self.old.items():
            signal.signal(sig, old)
        work.STOP[0] = 0


#: The GIL switch interval while an executor's threads serve workers (CPython's is 5 ms).
HELPER_SWITCH_INTERVAL = 0.0005


#: Explorations with helpers running now, and the interval the first of them found.
_HELPED: list[Any] = [0, None]
_HELPED_LOCK = threading.Lock()


@contextlib.contextmanager
def prompt_helpers(parallel: bool) -> Iterator[None]:
    """While blocks run elsewhere, this process's main thread runs blocks too and holds
    the GIL; the threads that feed the workers (a process pool's manager and feeder, or
    Dask's event loop) wait for it up to a switch interval at each step, and a worker
    whose queue ran dry waits with them. A short interval (for the exploration only,
    then restored) keeps the workers fed: ``--jobs 2`` at 200,000 schedules took 2.6-2.8 s
    instead of 3.1-3.2 s (the small blocks at each epoch's end suffered most).

    Explorations may overlap (threads of one host): the host's own interval comes back
    when the last of them ends, not when the first does.
    """
    if not parallel:
        yield
        return
    with _HELPED_LOCK:
        if _HELPED[0] == 0:
            _HELPED[1] = sys.getswitchinterval()
            sys.setswitchinterval(min(_HELPED[1], HELPER_SWITCH_INTERVAL))
        _HELPED[0] += 1
    try:
        yield
    finally:
        with _HELPED_LOCK:
            _HELPED[0] -= 1
            if _HELPED[0] == 0:
                sys.setswitchinterval(_HELPED[1])


def _note_signal(signum: int, frame: Any) -> None:
    if work.STOP[0]:                      # a second Ctrl-C: the user means it, now
        raise _interrupt(signum)
    work.STOP[0] = signum
    # A schedule running here (inline, or a minimization) stops at its next step: a long
    # schedule would otherwise keep Ctrl-C waiting for its end.
    from .._kernel.kernel import interrupt_running
    interrupt_running(signum)


def _interrupt(signum: int) -> KeyboardInterrupt:
    e = KeyboardInterrupt()
    e.signum = signum  # type: ignore[attr-defined]
    return e


def check_signals() -> None:
    if work.STOP[0]:
        raise _interrupt(work.STOP[0])


def shipped_run_block() -> Any:
    """``work.run_block`` as pickle finds it by name (a host that dropped and re-imported
    vmemu's modules, as pytester does, has a new module object under that name)."""
    import importlib
    return importlib.import_module(work.__name__).run_block


def shutdown(owned: list[Any]) -> None:
    while owned:
        owned.pop().shutdown()


class Pending:
    """The blocks of an epoch still to run: lost ones (a worker died) first, in order,
    then the epoch's next ones, made as they are needed."""

    def __init__(self, blocks: Iterator[tuple[int, int]]) -> None:
        self.back: deque[tuple[int, int]] = deque()
        self.blocks = blocks
        self.next = next(blocks, None)

    def __bool__(self) -> bool:
        return bool(self.back) or self.next is not None

    def pop(self) -> tuple[int, int]:
        if self.back:
            return self.back.popleft()
        got, self.next = self.next, next(self.blocks, None)
        assert got is not None
        return got

    def push_back(self, lost: list[tuple[int, int]]) -> None:
        self.back.extend(sorted(lost))
        self.back = deque(sorted(self.back))

    def clear(self) -> None:
        self.back.clear()
        self.next = None


def take(ranges: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """The first ``n`` indices of ``ranges``, as ranges."""
    out = []
    for a, b in ranges:
        if n <= 0:
            break
        take = min(b - a, n)
        out.append((a, a + take))
        n -= take
    return out


def coalesce(ranges: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Adjacent ranges merged (their longest runs too), fewer rows to store.

    Merging loses nothing the hint needs: a hint reads only ranges that end at an
    epoch's start, and no block crosses an epoch's start.
    """
    out: list[tuple[int, int, int]] = []
    for a, b, n in sorted(ranges):
        if out and out[-1][1] == a and not _crosses_power_of_two(out[-1][0], b):
            pa, _, pn = out[-1]
            out[-1] = (pa, b, max(pn, n))
        else:
            out.append((a, b, n))
    return out


def _crosses_power_of_two(a: int, b: int) -> bool:
    """Does ``(a, b]`` contain an epoch boundary strictly inside ``[a, b)``?"""
    p = 2
    while p < b:
        if a < p < b:
            return True
        p *= 2
    return False

