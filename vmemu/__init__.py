"""vmemu: find and replay concurrency hangs in emulated kernels.

The public API is small on purpose::

    import vmemu
    sc = vmemu.load("scenarios/ext2_bitmap_reclaim.yaml")
    r = vmemu.run(sc, seed=3)             # one schedule
    x = vmemu.explore(sc, runs=200)       # many schedules, first failure
    r2 = vmemu.replay("trace.json")       # a saved trace, byte for byte
    r = await vmemu.arun(sc)              # inside a trio program

Python scenarios are modules whose tasks are ``async def task(ctx: vmemu.TaskContext)``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import DivergenceError, ScenarioError, TraceError, UserError

__version__ = "0.1.0"

__all__ = [
    "load", "run", "arun", "explore", "replay",
    "Scenario", "Result", "ExploreResult", "Trace", "TaskContext", "Strategy", "VERDICTS",
    "UserError", "ScenarioError", "TraceError", "DivergenceError",
]

# Loaded on first use (PEP 562): `import vmemu` costs next to nothing, and a command
# pays only for what it uses (the YAML loader, the kernel, trio ...). It also keeps the
# CLI's imports inside its Ctrl-C handling.
_LAZY = {
    "load": ("._scenario", "load_scenario"), "run": ("._run", "run"),
    "arun": ("._run", "arun"), "replay": ("._run", "replay"),
    "explore": ("._explore", "explore"), "ExploreResult": ("._explore", "ExploreResult"),
    "Scenario": ("._scenario.model", "Scenario"), "VERDICTS": ("._scenario.model", "VERDICTS"),
    "Result": ("._result", "Result"), "Trace": ("._trace", "Trace"),
    "TaskContext": ("._kernel.context", "TaskContext"),
    "Strategy": ("._strategies.base", "Strategy"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'vmemu' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover
    from ._explore import ExploreResult, explore
    from ._kernel.context import TaskContext
    from ._result import Result
    from ._run import arun, replay, run
    from ._scenario import load_scenario as load
    from ._scenario.model import VERDICTS, Scenario
    from ._strategies.base import Strategy
    from ._trace import Trace
