"""The strategy interface (like shuttle's ``Scheduler`` trait).

The kernel asks a strategy two kinds of question and records every answer on the
decision tape: which runnable task runs next, and whether a probabilistic event (a fault)
happens. A strategy must answer from its own state only: never from wall-clock time,
``id()`` or global ``random``; that is what makes a (strategy, seed) pair a schedule.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence


class Strategy(ABC):
    """Answers the kernel's nondeterministic choices for one run.

    Attributes:
        name: the registry name (``random``, ``pct`` ...), recorded on the trace.
        seed: the seed this run was built with (None where it has no meaning).
    """

    name = "strategy"
    #: Optional fast path: ``pick_index(n) -> i`` such that ``pick_task(runnable, current)``
    #: would return ``runnable[i]`` (n = len(runnable) >= 2). The kernel and the direct
    #: driver then skip the pick_task call; leave it None when the answer depends on
    #: ``current`` or on which tasks are runnable.
    pick_index: Callable[[int], int] | None = None
    #: Optional, with ``pick_index``: ``pick_coin() -> 0 | 1``, equal to ``pick_index(2)``
    #: (two runnable tasks is the commonest decision; a C-level callable here saves a
    #: Python frame on it).
    pick_coin: Callable[[], int] | None = None

    def __init__(self, seed: int | None = 0) -> None:
        self.seed = seed

    @abstractmethod
    def pick_task(self, runnable: Sequence[Any], current: Any) -> Any:
        """Return one of ``runnable`` (at least two tasks, in task-id order).

        Args:
            runnable: the candidate tasks; each has ``tid`` and ``name``.
            current: the task that ran last (None at the start); picking it means no
                preemption.
        """

    @abstractmethod
    def pick_bool(self, p: float, site: str) -> bool:
        """Return True with probability ``p`` (0 < p < 1): does the fault at ``site`` fire?"""

    def ran(self, tape_length: int) -> None:
        """Told once a run is over, with the length of its decision tape (for strategies
        that learn from run lengths: the portfolio's random half). Default: nothing."""

    def params(self) -> dict[str, Any]:
        """What the trace must record to rebuild this strategy (besides name and seed)."""
        return {}
