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


def make_resources(k: "Kernel", scenario: "Scenario") -> dict[str, Resource]:
    """Instantiate the scenario's locks and events for one run."""
    out: dict[str, Resource] = {}
    for name, kind in scenario.locks.items():
        if kind == "semaphore":
            out[name] = lock = Semaphore(k, name, *scenario.semaphores.get(name, (1, 1)))
        else:
            out[name] = lock = LOCK_CLASSES[kind](k, name)
        lock.lock_class = scenario.lock_classes.get(name, name)
    for name, kind in scenario.events.items():
        out[name] = EVENT_CLASSES[kind](k, name)
    return out
