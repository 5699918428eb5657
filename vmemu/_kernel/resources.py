"""The scenario's named locks and events, instantiated for one run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .sync import Mutex, Recursive, Resource, RWLock, RWSem, Semaphore, Spinlock
from .waitqueue import Completion, WaitQueue

if TYPE_CHECKING:  # pragma: no cover
    from .._scenario.model import Scenario
    from .kernel import Kernel

LOCK_CLASSES = {"mutex": Mutex, "semaphore": Semaphore, "recursive": Recursive,
                "rwsem": RWSem, "spinlock": Spinlock, "rwlock": RWLock}
EVENT_CLASSES = {"waitqueue": WaitQueue, "completion": Completion}


def recipe(scenario: "Scenario") -> list[tuple[str, type, tuple, str | None]]:
    """How to build the scenario's resources: ``(name, class, extra arguments, lock
    class)`` each, in the scenario's order. It depends on the scenario only, so a kernel
    works it out once and builds every run's resources from it (an exploration builds
    them anew for each schedule)."""
    out: list[tuple[str, type, tuple, str | None]] = []
    for name, kind in scenario.locks.items():
        args = tuple(scenario.semaphores.get(name, (1, 1))) if kind == "semaphore" else ()
        out.append((name, LOCK_CLASSES[kind], args, scenario.lock_classes.get(name, name)))
    for name, kind in scenario.events.items():
        out.append((name, EVENT_CLASSES[kind], (), None))
    return out


def build(how: list[tuple[str, type, tuple, str | None]], k: "Kernel") -> dict[str, Resource]:
    """One run's resources, from a :func:`recipe`."""
    out: dict[str, Resource] = {}
    for name, cls, args, lock_class in how:
        out[name] = r = cls(k, name, *args)
        if lock_class is not None:
            r.lock_class = lock_class
    return out
