"""Values at run time: evaluating expressions, reading and storing places, calling
routines with arguments and a result.

Values are 64-bit signed integers that wrap on store, as C's ``s64`` does (so no
program can grow a number without bound). An array index outside the array is the
``bug`` verdict, worded as KASAN reports an out-of-bounds access.
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

from .._scenario.expr import OutOfBounds
from .._scenario.model import Expr, Loc, Place, Routine, Step, wrap
from .task import Frame, Task, VerdictSignal

if TYPE_CHECKING:  # pragma: no cover
    from .context import TaskContext

#: Deepest routine nesting before the run ends with a ``bug`` (a kernel stack overflow).
MAX_CALL_DEPTH = 32
#: Routine calls and ``if``/``while``/``repeat`` bodies open at once in one task, before
#: the run ends with a ``bug`` (a kernel stack overflow too). Each costs the interpreter
#: up to three Python frames: the bound keeps every run far from Python's recursion
#: limit, which would otherwise end it at a depth that differs by driver and host.
MAX_NESTING = 160


def nested(t: Task, loc: Loc | None) -> None:
    """Count one more call or body open in ``t`` (the caller undoes it: ``t.nest -= 1``)."""
    t.nest += 1
    if t.nest > MAX_NESTING:
        raise VerdictSignal("bug", f"BUG: {t.name}: routine calls and if/while/repeat "
                            f"bodies nested beyond {MAX_NESTING} (kernel stack overflow) "
                            f"at {loc}")


class Return(Exception):
    """A ``return`` step unwinding its routine (caught by :func:`call_routine`)."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value



def _kasan(frame: Frame, e: OutOfBounds, step: Step | None) -> VerdictSignal:
    at = f" at {step.loc}" if step is not None else ""
    return VerdictSignal("bug", f"BUG: KASAN: out-of-bounds access in {frame.task.name}: "
                         f"{e.array}[{e.index}] of an array of length {e.length}{at}")


def evaluate(frame: Frame, expr: Expr, step: Step | None) -> int:
    """``expr`` in ``frame``; division by zero and bad indices become ``bug``."""
    try:
        return expr.fn(frame)
    except ZeroDivisionError:
        at = f" at {step.loc}" if step is not None else ""
        raise VerdictSignal("bug", f"division by zero in {expr.source!r}{at}") from None
    except OutOfBounds as e:
        raise _kasan(frame, e, step) from None


def _container(frame: Frame, place: Place) -> Any:
    return frame.shared if place.scope == "shared" else frame.locals


def _index(frame: Frame, place: Place, step: Step | None, arr: list) -> int:
    i = evaluate(frame, place.index, step)
    if not 0 <= i < len(arr):
        raise _kasan(frame, OutOfBounds(place.name, i, len(arr)), step)
    return i


def read(frame: Frame, place: Place, step: Step | None) -> int:
    """The value at ``place``."""
    value = _container(frame, place)[place.name]
    if place.index is None:
        return value
    return value[_index(frame, place, step, value)]


def store(frame: Frame, place: Place, value: int, step: Step | None) -> None:
    """Store ``value`` (wrapped to s64) at ``place``."""
    box = _container(frame, place)
    if place.index is None:
        box[place.name] = wrap(value)
    else:
        arr = box[place.name]
        arr[_index(frame, place, step, arr)] = wrap(value)


def label(frame: Frame, place: Place, step: Step | None) -> str:
    """``x`` or ``buf[2]`` (the index evaluated): how events name a place."""
    if place.index is None:
        return place.name
    i = evaluate(frame, place.index, step)
    return f"{place.name}[{i}]"


def show(frame: Frame, names: tuple[str, ...]) -> str:
    """``a=1, buf=[0, 2]``: the values of ``names`` as an expression in ``frame`` sees them."""
    out = []
    for n in names:
        if n in frame.locals:
            v = frame.locals[n]
        elif frame.shared is not None and n in frame.shared:
            v = frame.shared[n]
        elif n in ("ok", "should_stop") and frame.task is not None:
            v = getattr(frame.task, n)
        else:
            continue
        out.append(f"{n}={v}")
    return ", ".join(out)


async def call_routine(ctx: "TaskContext", routine: Routine, args: dict[str, int],
                       loc: Loc | None) -> int:
    """Run ``routine`` in a new frame of ``ctx``'s task; its ``return`` value (0 if it
    falls off the end)."""
    from .interp import run_steps   # late: interp imports this module
    t = ctx.task
    if len(t.stack) > MAX_CALL_DEPTH:
        raise VerdictSignal("bug", f"BUG: {t.name}: call depth beyond {MAX_CALL_DEPTH} "
                            f"(kernel stack overflow) calling {routine.name} at {loc}")
    local = {n: list(v) if isinstance(v, tuple) else v for n, v in routine.locals}
    local.update(args)
    nested(t, loc)
    t.stack.append(Frame(routine.name, loc, None, local, ctx.k.vars, t, routine.steps))
    try:
        await run_steps(ctx, routine.steps)
        result = 0
    except Return as r:
        result = r.value
    finally:
        t.nest -= 1
    # No finally: when a verdict is raised inside the routine, its frame must stay on
    # the stack for the report.
    t.stack.pop()
    return result
