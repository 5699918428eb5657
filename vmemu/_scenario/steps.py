"""Parsing and validation of step lists (task and routine bodies) from YAML.

A step is a one-key mapping (``lock: A``), a mapping with the op key and its options beside
it (``alloc: 1`` + ``gfp:`` + ``as:``), or a bare word (``yield``). Every name a step uses is
checked against the scenario's declarations here, at load time, so that a typo is a
one-line error naming file, line and key rather than a run-time surprise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .._bounds import MAX_TICKS
from .._errors import ScenarioError, did_you_mean
from ._text import describe, line_of, shown
from ._yaml import LineSeq
from ._lifecycle import LifecycleOps
from ._mapping import MappingOps
from ._values import ValueOps
from .expr import Scope, compile_expr, expand_template
from .model import GFP_NAMES, INT_MAX, INT_MIN, TASK_FLAGS, Expr, Loc, Step

__all__ = ["OPS", "OPTIONS", "Names", "StepParser", "shown", "describe", "check_flags"]

#: Every step keyword, in the order DESIGN §4 (and its extensions) list them.
OPS = ("lock", "unlock", "read_lock", "read_unlock", "trylock", "alloc", "free", "fill",
       "mmap", "touch", "io", "sleep", "yield", "call", "return", "flags", "wait", "signal", "broadcast",
       "complete", "set", "add", "load", "cmpxchg", "xchg", "fetch_add", "assert", "if",
       "repeat", "while", "point", "spawn", "join", "stop")
#: Options that may stand beside an op key in the same step mapping.
OPTIONS: dict[str, tuple[str, ...]] = {
    "alloc": ("gfp", "as", "may_fail"), "wait": ("with_lock", "state", "timeout"),
    "if": ("then", "else"), "repeat": ("do", "as"), "while": ("do",), "flags": ("do",),
    "call": ("args", "as"),
}
#: Steps that may be written as a bare word.
_BARE = ("yield", "return")
_LOCK_OPS = ("lock", "unlock", "trylock", "read_lock", "read_unlock")
_EVENT_OPS = ("wait", "signal", "broadcast", "complete")
_MEMORY_OPS = ("alloc", "free", "fill", "mmap", "touch")
# A YAML anchor can repeat a step list exponentially ("billion laughs"); bound the total.
MAX_STEPS = 200_000


def check_flags(value: Any, *, file: str, line: int, key: str) -> tuple[str, ...]:
    """Validate a list of task flags (``[PF_MEMALLOC_NOIO, ...]``)."""
    if not isinstance(value, list) or not value:
        raise ScenarioError(f"expected a list of task flags like [PF_MEMALLOC_NOIO], "
                            f"got {shown(value)}", file=file, line=line, key=key)
    for flag in value:
        if flag not in TASK_FLAGS:
            raise ScenarioError(f"unknown task flag {shown(flag)}"
                                f"{did_you_mean(str(flag), TASK_FLAGS)}; known flags: "
                                + ", ".join(TASK_FLAGS), file=file, line=line, key=key)
    return tuple(value)


@dataclass
class Names:
    """What a scenario declares; steps are checked against it.

    Attributes:
        file: the scenario file as the user named it.
        locks: lock name -> kind (counted locks expanded).
        events: event name -> kind.
        vars: shared variable name -> array length, or None for a scalar.
        routines: routine name -> its parameters.
        classes: page class names.
        tasks: task instance name -> True when it is ``start: spawned``.
        has_memory: whether the scenario has a ``memory:`` section.
        uses_memory: set when an ``alloc``/``free``/``fill``/``mmap``/``touch`` step was
            parsed.
        budget: steps that may still be created (guards against alias blow-ups).
        regions: region name -> the size of each ``mmap`` of it (None: an expression).
        touches: ``(region, lo, hi, line, key)`` of each ``touch``, checked against
            ``regions`` once the file is parsed (``_mapping.check_touches``).
    """

    file: str
    locks: dict[str, str]
    events: dict[str, str]
    vars: dict[str, int | None]
    routines: dict[str, tuple[str, ...]]
    classes: frozenset[str]
    has_memory: bool
    tasks: dict[str, bool] = field(default_factory=dict)
    uses_memory: bool = False
    budget: int = MAX_STEPS
    regions: dict[str, list] = field(default_factory=dict)
    touches: list[tuple] = field(default_factory=list)


class StepParser(ValueOps, LifecycleOps, MappingOps):
    """Turns YAML step lists into :class:`Step` tuples.

    Args:
        names: the declarations to check against (shared, so the step budget is global).
        template: ``(i, n)`` of a counted task instance, whose names expand ``{...}``;
            None for routines and uncounted tasks, where ``{`` in a name is an error.
        scope: the names the steps may read and store (the task's or routine's locals
            and parameters, then the shared variables); ``repeat ... as:`` adds to it.
    """

    def __init__(self, names: Names, template: tuple[int, int] | None = None,
                 scope: Scope | None = None) -> None:
        self.names = names
        self.file = names.file
        self.template = template
        self.scope = scope if scope is not None else Scope(names.vars)

    def error(self, message: str, line: int, key: str) -> ScenarioError:
        return ScenarioError(message, file=self.file, line=line, key=key)

    # -- lists and single steps ---------------------------------------------------------
    def steps(self, seq: Any, key: str, line: int) -> tuple[Step, ...]:
        """Parse a list of steps written at ``line`` under dotted ``key``."""
        if not isinstance(seq, list):
            raise self.error(f"expected a list of steps, got {describe(seq)}",
                             line, key)
        lines = seq.lines if isinstance(seq, LineSeq) else [line] * len(seq)
        return tuple(self.step(item, f"{key}[{index}]", lines[index])
                     for index, item in enumerate(seq))

    def step(self, item: Any, key: str, line: int) -> Step:
        """Parse one step item (mapping or bare word)."""
        self.names.budget -= 1
        if self.names.budget < 0:
            raise self.error(f"scenario too large: more than {MAX_STEPS} steps", line, key)
        loc = Loc(self.file, line)
        if isinstance(item, str):
            if item in _BARE:
                item = {item: None}
            elif item in OPS:
                raise self.error(f"step {item!r} needs an argument: write '{item}: ...'",
                                 line, key)
            else:
                raise self.error(f"unknown step {item!r}{did_you_mean(item, OPS)}", line,
                                 key)
        if not isinstance(item, dict) or not item:
            raise self.error(f"a step is 'OP: ARG' or 'yield', got {describe(item)}", line, key)
        ops = [k for k in item if k in OPS]
        if not ops:
            options = {opt for opts in OPTIONS.values() for opt in opts}
            bad = next((k for k in item if k not in options), next(iter(item)))
            raise self.error(f"unknown step {shown(bad)}{did_you_mean(str(bad), OPS)}",
                             line, key)
        if len(ops) > 1:
            raise self.error(f"one step has one operation, found {ops[0]!r} and {ops[1]!r} "
                             "(start a new '- ' item for each)", line, key)
        op = ops[0]
        allowed = OPTIONS.get(op, ())
        for opt in item:
            if opt != op and opt not in allowed:
                hint = did_you_mean(str(opt), allowed) if allowed else ""
                takes = ("takes " + ", ".join(f"{o}:" for o in allowed) if allowed
                         else "takes no options")
                raise self.error(f"unknown option {shown(opt)} beside {op!r}{hint} "
                                 f"({op} {takes})", line_of(item, opt, line), f"{key}.{opt}")
        if op == "fill" and not self.names.has_memory:
            raise self.error("fill needs a memory pool with page classes: add a top-level "
                             "section like 'memory: {pages: 64, classes: {shm: {}}}'",
                             line, f"{key}.{op}")
        if op in _MEMORY_OPS:
            self.names.uses_memory = True
        handler: Callable[[Any, str, Loc], Step] = getattr(self, "_op_" + op)
        step = handler(item, key, loc)
        # What the watchdog's "who can still signal it" analysis needs, computed once here
        # (spawn and stop handlers preset theirs: the task names the step can mean).
        reach = set(step.reach) | _own_reach(step, self.names)
        for sub in step.body + step.orelse:
            reach |= sub.reach
        object.__setattr__(step, "reach", frozenset(reach))
        return step

    # -- argument helpers -----------------------------------------------------------------
    def name(self, value: Any, what: str, line: int, key: str) -> str:
        """A name argument, template-expanded in a counted task."""
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"expected {what} name, got {describe(value)}",
                             line, key)
        if "{" in value or "}" in value:
            if self.template is None:
                raise self.error(f"{value!r}: templates like {{i}} only expand in a task "
                                 "with count:", line, key)
            value = expand_template(value, *self.template, file=self.file, line=line,
                                    key=key)
        return value

    def known(self, value: Any, what: str, table: Any, line: int, key: str) -> str:
        """A name that must be declared in ``table`` (``what`` is e.g. ``lock``)."""
        name = self.name(value, f"a {what}", line, key)
        if name not in table:
            raise self.error(f"unknown {what} {name!r}{did_you_mean(name, table)}", line, key)
        return name

    def integer(self, value: Any, minimum: int, what: str, line: int, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            sign = "a non-negative" if minimum == 0 else "a positive"
            raise self.error(f"expected {sign} integer{what}, got {shown(value)}", line, key)
        if value > MAX_TICKS:
            raise self.error(f"expected at most {MAX_TICKS:_}{what} (the range is {minimum} "
                             f"to {MAX_TICKS:_}), got {shown(value)}", line, key)
        return value

    def expr(self, value: Any, line: int, key: str) -> Expr:
        # ``if: true`` / ``assert: 0`` arrive as YAML booleans / integers.
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int):
            value = str(value)
        if isinstance(value, str) and self.template is not None and "{" in value:
            value = expand_template(value, *self.template, file=self.file, line=line,
                                    key=key)
        return compile_expr(value, file=self.file, line=line, key=key, scope=self.scope)

    def value(self, value: Any, line: int, key: str) -> int | Expr:
        """A number a step takes: an int is an int, a string an expression."""
        if isinstance(value, str):
            return self.expr(value, line, key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected an integer or an expression in quotes, got "
                             f"{describe(value)}", line, key)
        if not INT_MIN <= value <= INT_MAX:
            raise self.error(f"{value} does not fit in 64 bits (values are s64: "
                             f"{INT_MIN} .. {INT_MAX})", line, key)
        return value

    def count(self, value: Any, minimum: int, what: str, line: int, key: str
              ) -> tuple[int, Expr | None]:
        """``(n, None)`` for a constant checked against ``minimum``, ``(0, expr)`` for an
        expression (checked when the step runs)."""
        if isinstance(value, str):
            return 0, self.expr(value, line, key)
        return self.integer(value, minimum, what, line, key), None

    def body(self, item: dict, opt: str, op: str, key: str, loc: Loc,
             required: bool = True) -> tuple[Step, ...]:
        if opt not in item:
            if required:
                raise self.error(f"{op} needs '{opt}:' with a list of steps", loc.line,
                                 f"{key}.{opt}")
            return ()
        return self.steps(item[opt], f"{key}.{opt}", line_of(item, opt, loc.line))

    # -- ops (one method per keyword; each returns a Step) ------------------------------
    def _lockish(self, item: dict, key: str, loc: Loc, op: str) -> Step:
        line = line_of(item, op, loc.line)
        name = self.known(item[op], "lock", self.names.locks, line, f"{key}.{op}")
        kind = self.names.locks[name]
        if op.startswith("read_") and kind not in ("rwsem", "rwlock"):
            raise self.error(f"{op} needs an rwsem or rwlock, but {name!r} is a {kind}",
                             line, f"{key}.{op}")
        return Step(op, loc, target=name)

    def _op_lock(self, item: dict, key: str, loc: Loc) -> Step:
        return self._lockish(item, key, loc, "lock")

    def _op_unlock(self, item: dict, key: str, loc: Loc) -> Step:
        return self._lockish(item, key, loc, "unlock")

    def _op_trylock(self, item: dict, key: str, loc: Loc) -> Step:
        return self._lockish(item, key, loc, "trylock")

    def _op_read_lock(self, item: dict, key: str, loc: Loc) -> Step:
        return self._lockish(item, key, loc, "read_lock")

    def _op_read_unlock(self, item: dict, key: str, loc: Loc) -> Step:
        return self._lockish(item, key, loc, "read_unlock")

    def event_name(self, item: dict, key: str, loc: Loc, op: str) -> str:
        line = line_of(item, op, loc.line)
        name = self.name(item[op], "an event", line, f"{key}.{op}")
        if name in self.names.locks and name not in self.names.events:
            raise self.error(f"{name!r} is a {self.names.locks[name]}, not an event: {op} "
                             "takes a waitqueue or completion (a lock is taken with lock:, "
                             "or polled with trylock:)", line, f"{key}.{op}")
        return self.known(name, "event", self.names.events, line, f"{key}.{op}")

    def _event(self, item: dict, key: str, loc: Loc, op: str) -> Step:
        return Step(op, loc, target=self.event_name(item, key, loc, op))

    def _op_signal(self, item: dict, key: str, loc: Loc) -> Step:
        return self._event(item, key, loc, "signal")

    def _op_broadcast(self, item: dict, key: str, loc: Loc) -> Step:
        return self._event(item, key, loc, "broadcast")

    def _op_complete(self, item: dict, key: str, loc: Loc) -> Step:
        return self._event(item, key, loc, "complete")

    def _op_point(self, item: dict, key: str, loc: Loc) -> Step:
        line = line_of(item, "point", loc.line)
        return Step("point", loc, target=self.name(item["point"], "a fault point", line,
                                                   f"{key}.point"))

    def _op_free(self, item: dict, key: str, loc: Loc) -> Step:
        line = line_of(item, "free", loc.line)
        return Step("free", loc, target=self.name(item["free"], "a page handle", line,
                                                  f"{key}.free"))

    def _op_alloc(self, item: dict, key: str, loc: Loc) -> Step:
        line = line_of(item, "alloc", loc.line)
        pages, pages_expr = self.count(item["alloc"], 1, " of pages", line, f"{key}.alloc")
        gfp = item.get("gfp", "GFP_KERNEL")
        if gfp not in GFP_NAMES:
            raise self.error(f"unknown GFP mask {shown(gfp)}{did_you_mean(str(gfp), GFP_NAMES)}"
                             "; known masks: " + ", ".join(GFP_NAMES),
                             line_of(item, "gfp", line), f"{key}.gfp")
        as_ = None
        if "as" in item:
            as_ = self.name(item["as"], "a page handle", line_of(item, "as", line),
                            f"{key}.as")
        may_fail = item.get("may_fail", False)
        if not isinstance(may_fail, bool):
            raise self.error(f"expected true or false, got {shown(may_fail)}",
                             line_of(item, "may_fail", line), f"{key}.may_fail")
        return Step("alloc", loc, n=pages, n_expr=pages_expr, gfp=gfp, as_=as_,
                    may_fail=may_fail)

    def _op_fill(self, item: dict, key: str, loc: Loc) -> Step:
        line = line_of(item, "fill", loc.line)
        value, k = item["fill"], f"{key}.fill"
        if not isinstance(value, dict):
            raise self.error(f"expected a mapping like {{class: C, pages: N}}, got "
                             f"{shown(value)}", line, k)
        for extra in value:
            if extra not in ("class", "pages"):
                raise self.error(f"unknown option {shown(extra)} in fill"
                                 f"{did_you_mean(str(extra), ('class', 'pages'))} "
                                 "(fill takes class: and pages:)",
                                 line_of(value, extra, line), f"{k}.{extra}")
        for need in ("class", "pages"):
            if need not in value:
                raise self.error(f"fill needs {need}: (write {{class: C, pages: N}})", line, k)
        cls = self.known(value["class"], "class", self.names.classes,
                         line_of(value, "class", line), f"{k}.class")
        pages, expr = self.count(value["pages"], 1, " of pages",
                                 line_of(value, "pages", line), f"{k}.pages")
        return Step("fill", loc, target=cls, n=pages, n_expr=expr)

    def _op_io(self, item: dict, key: str, loc: Loc) -> Step:
        n, expr = self.count(item["io"], 0, " of ticks", line_of(item, "io", loc.line),
                             f"{key}.io")
        return Step("io", loc, n=n, n_expr=expr)

    def _op_sleep(self, item: dict, key: str, loc: Loc) -> Step:
        n, expr = self.count(item["sleep"], 0, " of ticks",
                             line_of(item, "sleep", loc.line), f"{key}.sleep")
        return Step("sleep", loc, n=n, n_expr=expr)

    def _op_yield(self, item: dict, key: str, loc: Loc) -> Step:
        if item["yield"] is not None:
            raise self.error(f"yield takes no argument, got {shown(item['yield'])} "
                             "(write '- yield')", loc.line, f"{key}.yield")
        return Step("yield", loc)

    def _op_flags(self, item: dict, key: str, loc: Loc) -> Step:
        line = line_of(item, "flags", loc.line)
        flags = check_flags(item["flags"], file=self.file, line=line, key=f"{key}.flags")
        return Step("flags", loc, flags=flags, body=self.body(item, "do", "flags", key, loc))

    def _op_assert(self, item: dict, key: str, loc: Loc) -> Step:
        return Step("assert", loc, expr=self.expr(item["assert"], line_of(item, "assert",
                                                                          loc.line),
                                                  f"{key}.assert"))

    def _op_if(self, item: dict, key: str, loc: Loc) -> Step:
        expr = self.expr(item["if"], line_of(item, "if", loc.line), f"{key}.if")
        return Step("if", loc, expr=expr, body=self.body(item, "then", "if", key, loc),
                    orelse=self.body(item, "else", "if", key, loc, required=False))

    def _op_while(self, item: dict, key: str, loc: Loc) -> Step:
        expr = self.expr(item["while"], line_of(item, "while", loc.line), f"{key}.while")
        return Step("while", loc, expr=expr, body=self.body(item, "do", "while", key, loc))


_SIGNALS = ("signal", "broadcast", "complete")


def _own_reach(step: Step, names: Names) -> set[tuple[str, str]]:
    """What ``step`` itself (not its bodies) can do that the watchdog asks about: signal
    an event, up or down a semaphore, call a routine, allocate (and so run writeback)."""
    op = step.op
    if op in _SIGNALS:
        return {("signal", step.target)}
    if op in ("unlock", "lock", "trylock") and names.locks.get(step.target) == "semaphore":
        return {("up" if op == "unlock" else "down", step.target)}
    if op == "call":
        return {("call", step.target)}
    if op in ("alloc", "fill", "touch"):     # (a touch may fault pages in: allocate)
        return {("alloc", "")}
    return set()
