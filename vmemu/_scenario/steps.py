"""Parsing and validation of step lists (task and routine bodies) from YAML.

A step is a one-key mapping (``lock: A``), a mapping with the op key and its options beside
it (``alloc: 1`` + ``gfp:`` + ``as:``), or a bare word (``yield``). Every name a step uses is
checked against the scenario's declarations here, at load time, so that a typo is a
one-line error naming file, line and key rather than a run-time surprise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .._bounds import MAX_TICKS
from .._errors import ScenarioError, did_you_mean
from ._yaml import LineMap, LineSeq, type_name
from .expr import compile_expr, expand_template
from .model import GFP_NAMES, TASK_FLAGS, Expr, Loc, Step

__all__ = ["OPS", "OPTIONS", "Names", "StepParser", "shown", "describe", "check_flags"]

#: Every step keyword, in the order DESIGN §4 lists them.
OPS = ("lock", "unlock", "read_lock", "read_unlock", "trylock", "alloc", "free", "fill",
       "io", "sleep", "yield", "call", "flags", "wait", "signal", "broadcast", "complete",
       "set", "add", "assert", "if", "repeat", "while", "point")
#: Options that may stand beside an op key in the same step mapping.
OPTIONS: dict[str, tuple[str, ...]] = {
    "alloc": ("gfp", "as", "may_fail"), "wait": ("with_lock",), "if": ("then", "else"),
    "repeat": ("do",), "while": ("do",), "flags": ("do",),
}
_LOCK_OPS = ("lock", "unlock", "trylock", "read_lock", "read_unlock")
_EVENT_OPS = ("wait", "signal", "broadcast", "complete")
_MEMORY_OPS = ("alloc", "free", "fill")
# A YAML anchor can repeat a step list exponentially ("billion laughs"); bound the total.
MAX_STEPS = 200_000


def shown(value: Any, limit: int = 40) -> str:
    """``repr`` of a user value, shortened so that an error stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(value: Any) -> str:
    """``a string 'abc'``, ``a list [1, 2]``, ``nothing``: a user value for messages."""
    return "nothing" if value is None else f"{type_name(value)} {shown(value)}"


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
        vars: variable names expressions and ``set``/``add`` may use (includes ``ok``).
        routines: routine names.
        classes: page class names.
        has_memory: whether the scenario has a ``memory:`` section.
        uses_memory: set when an ``alloc``/``free``/``fill`` step was parsed.
        budget: steps that may still be created (guards against alias blow-ups).
    """

    file: str
    locks: dict[str, str]
    events: dict[str, str]
    vars: frozenset[str]
    routines: frozenset[str]
    classes: frozenset[str]
    has_memory: bool
    uses_memory: bool = False
    budget: int = MAX_STEPS


class StepParser:
    """Turns YAML step lists into :class:`Step` tuples.

    Args:
        names: the declarations to check against (shared, so the step budget is global).
        template: ``(i, n)`` of a counted task instance, whose names expand ``{...}``;
            None for routines and uncounted tasks, where ``{`` in a name is an error.
    """

    def __init__(self, names: Names, template: tuple[int, int] | None = None) -> None:
        self.names = names
        self.file = names.file
        self.template = template

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
            if item == "yield":
                return Step("yield", loc)
            if item in OPS:
                raise self.error(f"step {item!r} needs an argument: write '{item}: ...'",
                                 line, key)
            raise self.error(f"unknown step {item!r}{did_you_mean(item, OPS)}", line, key)
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
                                 f"({op} {takes})", _line_of(item, opt, line), f"{key}.{opt}")
        if op == "fill" and not self.names.has_memory:
            raise self.error("fill needs a memory pool with page classes: add a top-level "
                             "section like 'memory: {pages: 64, classes: {shm: {}}}'",
                             line, f"{key}.{op}")
        if op in _MEMORY_OPS:
            self.names.uses_memory = True
        handler: Callable[[Any, str, Loc], Step] = getattr(self, "_op_" + op)
        return handler(item, key, loc)

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
        return compile_expr(value, file=self.file, line=line, key=key,
                            known_vars=self.names.vars)

    def body(self, item: dict, opt: str, op: str, key: str, loc: Loc,
             required: bool = True) -> tuple[Step, ...]:
        if opt not in item:
            if required:
                raise self.error(f"{op} needs '{opt}:' with a list of steps", loc.line,
                                 f"{key}.{opt}")
            return ()
        return self.steps(item[opt], f"{key}.{opt}", _line_of(item, opt, loc.line))

    # -- ops (one method per keyword; each returns a Step) ------------------------------
    def _lockish(self, item: dict, key: str, loc: Loc, op: str) -> Step:
        line = _line_of(item, op, loc.line)
        name = self.known(item[op], "lock", self.names.locks, line, f"{key}.{op}")
        kind = self.names.locks[name]
        if op.startswith("read_") and kind != "rwsem":
            raise self.error(f"{op} needs an rwsem, but {name!r} is a {kind}", line,
                             f"{key}.{op}")
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

    def _event(self, item: dict, key: str, loc: Loc, op: str) -> Step:
        line = _line_of(item, op, loc.line)
        name = self.known(item[op], "event", self.names.events, line, f"{key}.{op}")
        with_lock = None
        if "with_lock" in item:
            with_lock = self.known(item["with_lock"], "lock", self.names.locks,
                                   _line_of(item, "with_lock", line), f"{key}.with_lock")
        return Step(op, loc, target=name, with_lock=with_lock)

    def _op_wait(self, item: dict, key: str, loc: Loc) -> Step:
        return self._event(item, key, loc, "wait")

    def _op_signal(self, item: dict, key: str, loc: Loc) -> Step:
        return self._event(item, key, loc, "signal")

    def _op_broadcast(self, item: dict, key: str, loc: Loc) -> Step:
        return self._event(item, key, loc, "broadcast")

    def _op_complete(self, item: dict, key: str, loc: Loc) -> Step:
        return self._event(item, key, loc, "complete")

    def _op_call(self, item: dict, key: str, loc: Loc) -> Step:
        line = _line_of(item, "call", loc.line)
        return Step("call", loc, target=self.known(item["call"], "routine",
                                                   self.names.routines, line, f"{key}.call"))

    def _op_point(self, item: dict, key: str, loc: Loc) -> Step:
        line = _line_of(item, "point", loc.line)
        return Step("point", loc, target=self.name(item["point"], "a fault point", line,
                                                   f"{key}.point"))

    def _op_free(self, item: dict, key: str, loc: Loc) -> Step:
        line = _line_of(item, "free", loc.line)
        return Step("free", loc, target=self.name(item["free"], "a page handle", line,
                                                  f"{key}.free"))

    def _op_alloc(self, item: dict, key: str, loc: Loc) -> Step:
        line = _line_of(item, "alloc", loc.line)
        pages = self.integer(item["alloc"], 1, " of pages", line, f"{key}.alloc")
        gfp = item.get("gfp", "GFP_KERNEL")
        if gfp not in GFP_NAMES:
            raise self.error(f"unknown GFP mask {shown(gfp)}{did_you_mean(str(gfp), GFP_NAMES)}"
                             "; known masks: " + ", ".join(GFP_NAMES),
                             _line_of(item, "gfp", line), f"{key}.gfp")
        as_ = None
        if "as" in item:
            as_ = self.name(item["as"], "a page handle", _line_of(item, "as", line),
                            f"{key}.as")
        may_fail = item.get("may_fail", False)
        if not isinstance(may_fail, bool):
            raise self.error(f"expected true or false, got {shown(may_fail)}",
                             _line_of(item, "may_fail", line), f"{key}.may_fail")
        return Step("alloc", loc, n=pages, gfp=gfp, as_=as_, may_fail=may_fail)

    def _op_fill(self, item: dict, key: str, loc: Loc) -> Step:
        line = _line_of(item, "fill", loc.line)
        value, k = item["fill"], f"{key}.fill"
        if not isinstance(value, dict):
            raise self.error(f"expected a mapping like {{class: C, pages: N}}, got "
                             f"{shown(value)}", line, k)
        for extra in value:
            if extra not in ("class", "pages"):
                raise self.error(f"unknown option {shown(extra)} in fill"
                                 f"{did_you_mean(str(extra), ('class', 'pages'))} "
                                 "(fill takes class: and pages:)",
                                 _line_of(value, extra, line), f"{k}.{extra}")
        for need in ("class", "pages"):
            if need not in value:
                raise self.error(f"fill needs {need}: (write {{class: C, pages: N}})", line, k)
        cls = self.known(value["class"], "class", self.names.classes,
                         _line_of(value, "class", line), f"{k}.class")
        pages = self.integer(value["pages"], 1, " of pages", _line_of(value, "pages", line),
                             f"{k}.pages")
        return Step("fill", loc, target=cls, n=pages)

    def _op_io(self, item: dict, key: str, loc: Loc) -> Step:
        return Step("io", loc, n=self.integer(item["io"], 0, " of ticks",
                                              _line_of(item, "io", loc.line), f"{key}.io"))

    def _op_sleep(self, item: dict, key: str, loc: Loc) -> Step:
        return Step("sleep", loc, n=self.integer(item["sleep"], 0, " of ticks",
                                                 _line_of(item, "sleep", loc.line),
                                                 f"{key}.sleep"))

    def _op_yield(self, item: dict, key: str, loc: Loc) -> Step:
        if item["yield"] is not None:
            raise self.error(f"yield takes no argument, got {shown(item['yield'])} "
                             "(write '- yield')", loc.line, f"{key}.yield")
        return Step("yield", loc)

    def _op_flags(self, item: dict, key: str, loc: Loc) -> Step:
        line = _line_of(item, "flags", loc.line)
        flags = check_flags(item["flags"], file=self.file, line=line, key=f"{key}.flags")
        return Step("flags", loc, flags=flags, body=self.body(item, "do", "flags", key, loc))

    def _assign(self, item: dict, key: str, loc: Loc, op: str) -> Step:
        line, k = _line_of(item, op, loc.line), f"{key}.{op}"
        value = item[op]
        if not isinstance(value, dict) or not value:
            raise self.error(f"expected a mapping like {{VAR: INT}}, got {shown(value)}",
                             line, k)
        assign = []
        for var, number in value.items():
            vline = _line_of(value, var, line)
            name = self.known(var, "variable", self.names.vars, vline, f"{k}.{var}")
            if isinstance(number, bool) or not isinstance(number, int):
                raise self.error(f"expected an integer, got {shown(number)}", vline,
                                 f"{k}.{var}")
            assign.append((name, number))
        return Step(op, loc, assign=tuple(assign))

    def _op_set(self, item: dict, key: str, loc: Loc) -> Step:
        return self._assign(item, key, loc, "set")

    def _op_add(self, item: dict, key: str, loc: Loc) -> Step:
        return self._assign(item, key, loc, "add")

    def _op_assert(self, item: dict, key: str, loc: Loc) -> Step:
        return Step("assert", loc, expr=self.expr(item["assert"], _line_of(item, "assert",
                                                                          loc.line),
                                                  f"{key}.assert"))

    def _op_if(self, item: dict, key: str, loc: Loc) -> Step:
        expr = self.expr(item["if"], _line_of(item, "if", loc.line), f"{key}.if")
        return Step("if", loc, expr=expr, body=self.body(item, "then", "if", key, loc),
                    orelse=self.body(item, "else", "if", key, loc, required=False))

    def _op_while(self, item: dict, key: str, loc: Loc) -> Step:
        expr = self.expr(item["while"], _line_of(item, "while", loc.line), f"{key}.while")
        return Step("while", loc, expr=expr, body=self.body(item, "do", "while", key, loc))

    def _op_repeat(self, item: dict, key: str, loc: Loc) -> Step:
        n = self.integer(item["repeat"], 0, " count", _line_of(item, "repeat", loc.line),
                         f"{key}.repeat")
        return Step("repeat", loc, n=n, body=self.body(item, "do", "repeat", key, loc))


def _line_of(container: Any, key: Any, default: int) -> int:
    """Line of ``key`` in a YAML mapping, or ``default`` when unknown."""
    if isinstance(container, LineMap):
        return container.lines.get(key, default)
    return default
