"""The result of one run: verdict, wait-for report, trace, and how to replay it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from ._scenario.model import Scenario
from ._trace import LazyField, Trace

FAILURES = ("deadlock", "hang", "livelock", "oom", "assertion", "bug")
#: Strategies whose schedules only a saved trace reproduces (no `vmemu run` form).
TAPE_ONLY = ("minimized",)


@dataclass
class Result:
    """What a run found.

    Attributes:
        verdict: one of ``ok deadlock hang livelock oom assertion bug``.
        message: one line explaining the verdict (empty for ``ok``).
        scenario: the scenario that ran.
        strategy: strategy name; ``seed`` its seed.
        steps, ticks: scheduling points executed and virtual time at the verdict.
        trace_hash: sha256 of the canonical event list.
        tasks: every task: name, state, waiting_for, holding, stack (at the verdict).
        cycle: the wait-for cycle, ``[{task, waits_for, held_by}]``, or ``[]``.
        trace: the full :class:`Trace` (decision tape and events).
        trace_path: where the trace was saved, if it was.
        culprit: the task the verdict is about (assertion, bug, hang), if any.
    """

    verdict: str
    message: str
    scenario: Scenario
    strategy: str
    seed: int | None
    steps: int
    ticks: int
    #: None at construction: the trace's, read when first needed (see LazyField).
    trace_hash: str = LazyField(lambda r: r.trace.trace_hash)  # type: ignore[assignment]
    tasks: list[dict[str, Any]]
    cycle: list[dict[str, str]]
    trace: Trace
    trace_path: str | None = None
    culprit: str | None = None
    faults: str | None = None
    driver: str = "trio"
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Not the dataclass's: that would print the whole scenario and trace.
        return (f"<Result {self.verdict} in {self.scenario.name} ({self.scenario.path}): "
                f"strategy {self.strategy}, seed {self.seed}, {self.steps} steps, tick "
                f"{self.ticks}>")

    @property
    def failed(self) -> bool:
        """True for every verdict but ``ok``."""
        return self.verdict != "ok"

    def replay_command(self) -> str:
        """The exact command that reproduces this run."""
        if self.trace_path:
            return f"vmemu replay {shlex.quote(self.trace_path)}"
        if self.strategy in TAPE_ONLY or self.seed is None:
            # Minimized or Hypothesis-drawn: no seed rebuilds it, only the saved tape does.
            return "vmemu replay TRACE.json (save it first: result.trace.save('TRACE.json'))"
        cmd = ["vmemu", "run", self.scenario.path]
        if self.faults:
            cmd += ["--faults", self.faults]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        cmd += ["--strategy", self.strategy]
        cmd += [f"--{k}={v}" for k, v in sorted(self.trace.params.items())]
        return " ".join(shlex.quote(c) for c in cmd)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object of DESIGN §5."""
        d = {
            "verdict": self.verdict,
            "message": self.message,
            "scenario": self.scenario.name,
            "scenario_path": self.scenario.path,
            "expect": self.scenario.expect,
            "seed": self.seed,
            "strategy": self.strategy,
            "steps": self.steps,
            "ticks": self.ticks,
            "trace_hash": self.trace_hash,
            "tasks": self.tasks,
            "cycle": self.cycle,
            "trace": self.trace_path,
            "decisions": len(self.trace.tape),
            "replay": self.replay_command(),
        }
        d.update(self.extra)
        return d

    def report(self) -> str:
        """The human report: verdict, cycle, every task, and the replay command last."""
        from ._report import render_text
        return render_text(self)
