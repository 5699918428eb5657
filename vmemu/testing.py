"""Hypothesis integration: schedules of a scenario as a Hypothesis strategy.

Write properties over schedules and let Hypothesis search and shrink them::

    from hypothesis import given, settings
    import vmemu, vmemu.testing

    sc = vmemu.load("abba.yaml")

    @settings(max_examples=200, deadline=None)
    @given(vmemu.testing.schedules(sc))
    def test_never_deadlocks(sched):
        r = sched.run()
        assert r.verdict == "ok", r.report()

Drawing a :class:`Schedule` *runs* the scenario once, with every scheduling and fault
decision drawn from Hypothesis (see :mod:`vmemu._strategies.hypothesis_strategy`). The
draws are laid out so that Hypothesis's simplest answer is "no preemption, no fault", so a
failing schedule shrinks to the one with the fewest preemptions: the ABBA deadlock shrinks
to a single preemption. Running inside the draw (rather than drawing a tape first and
running it afterwards) means each draw is asked exactly when the kernel needs it, with the
real set of runnable tasks, so every value Hypothesis tries is a valid schedule and
shrinking never wastes a run on an impossible one.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import strategies as st

from ._kernel.drivers.direct import kill, run_direct
from ._result import Result
from ._run import _as_scenario, _load_faults, _result, new_kernel, run
from ._scenario.model import Scenario
from ._strategies.hypothesis_strategy import HypothesisStrategy
from ._strategies.replay import ReplayStrategy

__all__ = ["schedules", "Schedule"]


class Schedule:
    """One schedule drawn by :func:`schedules`: the run it produced and how to rerun it.

    Attributes:
        result: the :class:`vmemu.Result` of the run made while drawing.
        preemptions: switches away from a task that could have kept running.
        faults_fired: fault decisions that fired.
    """

    def __init__(self, result: Result, preemptions: int, faults_fired: int,
                 plan: Any) -> None:
        self.result = result
        self.preemptions = preemptions
        self.faults_fired = faults_fired
        self._plan = plan

    @property
    def verdict(self) -> str:
        """The run's verdict (``ok``, ``deadlock`` ...)."""
        return self.result.verdict

    @property
    def tape(self) -> list[int]:
        """The decision tape (task ids and 0/1 fault answers), as saved in traces."""
        return list(self.result.trace.tape)

    def run(self, *, driver: str | None = None) -> Result:
        """The :class:`vmemu.Result` of this schedule.

        Args:
            driver: None returns the run made while drawing (on the ``direct`` driver);
                ``trio``/``direct``/... replays the decision tape on that driver, which
                gives the same ``trace_hash``.
        """
        if driver is None:
            return self.result
        strat = ReplayStrategy(self.tape, recorded="hypothesis")
        return run(self.result.scenario, strategy=strat, faults=self._plan, driver=driver)

    def save(self, path: str | os.PathLike) -> str:
        """Save the trace, for ``vmemu replay PATH``; returns the path."""
        self.result.trace_path = self.result.trace.save(path)
        return self.result.trace_path

    def __repr__(self) -> str:
        p = self.preemptions
        return (f"Schedule({self.result.scenario.name}: {self.verdict}, {p} preemption"
                f"{'' if p == 1 else 's'}, {self.faults_fired} fault(s) fired, "
                f"tape={self.tape})")


class _Draw:
    """Adapts an ``st.composite`` ``draw`` function to the ``data.draw`` shape."""

    __slots__ = ("draw",)

    def __init__(self, draw: Any) -> None:
        self.draw = draw


def _run_drawn(sc: Scenario, strat: HypothesisStrategy, plan: Any) -> Result:
    k = new_kernel(sc, strat, faults=plan)
    try:
        run_direct(k)
    except BaseException:
        # Hypothesis stops a draw by raising from inside it (e.g. the run asked for more
        # choices than it allows): unwind the emulated tasks so no coroutine is left
        # suspended, then let Hypothesis have its exception.
        k.stopping = True
        for t in k.live_tasks():
            kill(k, t)
        raise
    return _result(k, sc, strat, plan, "direct")


def schedules(scenario: Scenario | str | os.PathLike, *,
              faults: Any = None) -> st.SearchStrategy[Schedule]:
    """A Hypothesis strategy whose values are :class:`Schedule` s of ``scenario``.

    Args:
        scenario: a loaded :class:`vmemu.Scenario` or a path to a scenario file.
        faults: a fault plan path or object; its fault decisions are drawn (and shrunk)
            too, simplest first: not firing.

    Raises:
        vmemu.UserError: the scenario or fault plan is invalid (at call time, not when
            Hypothesis first draws).
    """
    sc = _as_scenario(scenario)
    plan = _load_faults(faults)

    @st.composite
    def _schedules(draw: Any) -> Schedule:
        strat = HypothesisStrategy(None, data=_Draw(draw))
        r = _run_drawn(sc, strat, plan)
        return Schedule(r, strat.preemptions, strat.fired, plan)

    return _schedules()
