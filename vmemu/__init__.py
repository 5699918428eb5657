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

from ._errors import DivergenceError, ScenarioError, TraceError, UserError
from ._explore import ExploreResult, explore
from ._kernel.context import TaskContext
from ._result import Result
from ._run import arun, replay, run
from ._scenario import load_scenario as load
from ._scenario.model import VERDICTS, Scenario
from ._strategies.base import Strategy
from ._trace import Trace

__version__ = "0.1.0"

__all__ = [
    "load", "run", "arun", "explore", "replay",
    "Scenario", "Result", "ExploreResult", "Trace", "TaskContext", "Strategy", "VERDICTS",
    "UserError", "ScenarioError", "TraceError", "DivergenceError",
]
