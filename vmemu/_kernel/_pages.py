"""Page numbers kept as runs, so that the size of the pool costs nothing.

A pool of 10^8 pages used to be a list of 10^8 page numbers and a state table as long;
here every ordered list of pages (the free list, each class's LRU, an allocation) is a
list of *runs* ``[first, count, step]``: the pages ``first, first + step, ...`` in the
order they are taken. Taking or giving back n pages touches only the runs involved, and
neighbouring runs are joined whenever the pages still follow one step, so a pool that is
filled and reclaimed in order stays a handful of runs.

The page numbers themselves, and the order in which pages are taken, are exactly those
of the per-page lists this replaces (a stack of free pages, the most recently freed
reused first; an LRU per class, oldest first): reports and traces name page numbers.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Iterator

__all__ = ["Run", "FreeStack", "Lru", "total", "pages_of"]

#: ``[first, count, step]``: the pages first, first + step, ..., in order.
Run = list


def _join(a: Run, b: Run) -> Run | None:
    """The run ``a`` followed by ``b``, if the pages still follow one step (else None)."""
    last = a[0] + (a[1] - 1) * a[2]
    d = b[0] - last
    if d != 0 and (a[1] == 1 or a[2] == d) and (b[1] == 1 or b[2] == d):
        return [a[0], a[1] + b[1], d]
    return None


def total(runs: Iterable[Run]) -> int:
    """How many pages ``runs`` hold."""
    return sum(r[1] for r in runs)


def pages_of(runs: Iterable[Run]) -> Iterator[int]:
    """Every page of ``runs`` in order (for tests and small pools only)."""
    for first, count, step in runs:
        yield from range(first, first + count * step, step)


class FreeStack:
    """The free list: a stack of pages, the most recently freed on top (taken first).

    ``runs[-1]`` is the top run; its ``first`` is the next page :meth:`take` returns.
    """

    __slots__ = ("runs", "n")

    def __init__(self, pages: int) -> None:
        # Page 0 on top, as the list ``[pages-1, ..., 1, 0]`` had it.
        self.runs: list[Run] = [[0, pages, 1]] if pages else []
        self.n = pages

    def __len__(self) -> int:
        return self.n

    def take(self, n: int) -> list[Run]:
        """Pop ``n`` pages (n <= self.n), in the order they come off the stack."""
        out: list[Run] = []
        runs = self.runs
        self.n -= n
        while n:
            top = runs[-1]
            first, count, step = top
            k = count if count < n else n
            out.append([first, k, step])
            if k == count:
                runs.pop()
            else:
                top[0] = first + k * step
                top[1] = count - k
            n -= k
        return out

    def give(self, runs: Iterable[Run]) -> None:
        """Push pages back, one run after another, each in its own order (so the last
        page pushed is the first taken again)."""
        stack = self.runs
        for first, count, step in runs:
            # Pushed first..last, they come off last..first.
            new = [first + (count - 1) * step, count, -step]
            if stack:
                joined = _join(new, stack[-1])
                if joined is not None:
                    stack[-1] = joined
                    self.n += count
                    continue
            stack.append(new)
            self.n += count


class Lru:
    """A class's cached pages, oldest first (reclaim takes from the left)."""

    __slots__ = ("runs", "n")

    def __init__(self) -> None:
        self.runs: deque[Run] = deque()
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def append(self, runs: Iterable[Run]) -> None:
        """Add pages as the newest, in order."""
        q = self.runs
        for run in runs:
            if q:
                joined = _join(q[-1], run)
                if joined is not None:
                    q[-1] = joined
                    self.n += run[1]
                    continue
            q.append(list(run))
            self.n += run[1]

    def take(self, n: int) -> list[Run]:
        """Remove the ``n`` oldest pages (n <= len), oldest first."""
        out: list[Run] = []
        q = self.runs
        self.n -= n
        while n:
            head = q[0]
            first, count, step = head
            k = count if count < n else n
            out.append([first, k, step])
            if k == count:
                q.popleft()
            else:
                head[0] = first + k * step
                head[1] = count - k
            n -= k
        return out

    def take_one(self) -> int:
        """Remove the oldest page and return its number."""
        return self.take(1)[0][0]
