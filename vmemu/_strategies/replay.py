"""``replay(trace)``: answers every choice from a saved decision tape."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .._errors import DivergenceError
from .base import Strategy


class ReplayStrategy(Strategy):
    """Replays a decision tape; any mismatch is a :class:`DivergenceError`.

    Args:
        tape: the recorded answers (task ids for scheduling, 0/1 for faults).
        where: called to describe the current step for divergence messages.
        name: the strategy the tape was recorded with (kept for reports).
    """

    name = "replay"

    def __init__(self, tape: Sequence[int], where: Callable[[Any], str] | None = None,
                 recorded: str = "replay", seed: int | None = None) -> None:
        super().__init__(seed)
        self.tape = list(tape)
        self.pos = 0
        self.where = where or (lambda t: "")
        self.recorded = recorded

    def _next(self, what: str, current: Any) -> int:
        if self.pos >= len(self.tape):
            raise DivergenceError(
                f"replay diverged at decision {self.pos + 1}: the trace has only "
                f"{len(self.tape)} decisions but the run asks for another ({what})"
                + self.where(current) + "; the scenario or fault plan changed since it was saved")
        v = self.tape[self.pos]
        self.pos += 1
        return v

    def pick_task(self, runnable: Sequence[Any], current: Any) -> Any:
        tid = self._next("which task runs", current)
        for t in runnable:
            if t.tid == tid:
                return t
        names = ", ".join(t.name for t in runnable)
        raise DivergenceError(
            f"replay diverged at decision {self.pos}: the trace runs task #{tid} but only "
            f"{names} can run" + self.where(current)
            + "; the scenario or fault plan changed since it was saved")

    def pick_bool(self, p: float, site: str) -> bool:
        v = self._next(f"fault at {site}", None)
        if v not in (0, 1):
            raise DivergenceError(f"replay diverged at decision {self.pos}: the trace answers "
                                  f"{v} where a fault decision at {site} needs 0 or 1")
        return bool(v)

    def finished(self) -> bool:
        """True when every recorded decision was used."""
        return self.pos == len(self.tape)
