"""Step parsing for values: assignments, loads, atomics, loops with an index, routine
calls with arguments and results (a mixin of :class:`.steps.StepParser`).

Which steps are scheduling points is decided here, at load time, and recorded in
``Step.shared``: a step that stores to (or ``load``s from) a shared variable is one; a
step that only touches locals is not, exactly as a C compiler keeps locals in registers
while every access to shared memory is a point where another CPU may interleave.
"""

from __future__ import annotations

import re
from typing import Any

from .._errors import did_you_mean
from .expr import KEYWORDS, compile_place, expand_template
from .model import TASK_NAMES, Loc, Place, Step
from ._text import describe, line_of, shown

__all__ = ["ValueOps"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class ValueOps:
    """``set add load cmpxchg xchg fetch_add assert repeat call return`` (see the module
    docstring); relies on the helpers of :class:`.steps.StepParser`."""

    # -- helpers --------------------------------------------------------------------
    def place(self, text: Any, line: int, key: str, *, need: str | None = None) -> Place:
        """Compile a place written as a key or value (``x``, ``buf[i]``); ``need`` is
        ``local`` or ``shared`` when only one scope makes sense for this operand."""
        if not isinstance(text, str) or not text.strip():
            raise self.error(f"expected a variable name like x or buf[i], got "
                             f"{describe(text)}", line, key)
        if self.template is not None and "{" in text:
            text = expand_template(text, *self.template, file=self.file, line=line, key=key)
        p = compile_place(text, self.scope, file=self.file, line=line, key=key)
        if need == "local" and p.shared:
            raise self.error(f"{p.name!r} is a shared variable, but this must be a local "
                             "(declare it under locals: of the task or routine)", line, key)
        if need == "shared" and not p.shared:
            raise self.error(f"{p.name!r} is a local; this operation works on shared "
                             "memory (a variable under vars:)", line, key)
        return p

    def operands(self, item: dict, op: str, key: str, loc: Loc, required: tuple[str, ...],
                 optional: tuple[str, ...] = (), *, example: str = "", noun: str = "key"
                 ) -> tuple[dict, int, str]:
        """The mapping argument of ``op`` checked for exactly these keys. Errors show
        ``example`` (by default the required keys) and call a stray key a ``noun``."""
        line, k = line_of(item, op, loc.line), f"{key}.{op}"
        value = item[op]
        allowed = required + optional
        example = example or "{" + ", ".join(f"{r}: ..." for r in required) + "}"
        if not isinstance(value, dict):
            raise self.error(f"expected a mapping like {example}, got {describe(value)}",
                             line, k)
        for extra in value:
            if extra not in allowed:
                raise self.error(f"unknown {noun} {shown(extra)} in {op}"
                                 f"{did_you_mean(str(extra), allowed)} ({op} takes "
                                 + ", ".join(f"{a}:" for a in allowed) + ")",
                                 line_of(value, extra, line), f"{k}.{extra}")
        for need in required:
            if need not in value:
                raise self.error(f"{op} needs {need}: (write {example})", line, k)
        return value, line, k

    # -- assignments ----------------------------------------------------------------
    def _assign(self, item: dict, key: str, loc: Loc, op: str) -> Step:
        line, k = line_of(item, op, loc.line), f"{key}.{op}"
        value = item[op]
        if not isinstance(value, dict) or not value:
            raise self.error(f"expected a mapping like {{VAR: VALUE}}, got {shown(value)}",
                             line, k)
        assign = []
        for target, number in value.items():
            vline = line_of(value, target, line)
            p = self.place(target, vline, f"{k}.{target}")
            assign.append((p, self.value(number, vline, f"{k}.{target}")))
        return Step(op, loc, assign=tuple(assign), shared=any(p.shared for p, _ in assign))

    def _op_set(self, item: dict, key: str, loc: Loc) -> Step:
        return self._assign(item, key, loc, "set")

    def _op_add(self, item: dict, key: str, loc: Loc) -> Step:
        return self._assign(item, key, loc, "add")

    def _op_load(self, item: dict, key: str, loc: Loc) -> Step:
        line, k = line_of(item, "load", loc.line), f"{key}.load"
        value = item["load"]
        if not isinstance(value, dict) or not value:
            raise self.error(f"expected a mapping like {{LOCAL: SHARED}} (e.g. {{tmp: x}}), "
                             f"got {shown(value)}", line, k)
        pairs = []
        for target, source in value.items():
            vline = line_of(value, target, line)
            dst = self.place(target, vline, f"{k}.{target}", need="local")
            src = self.place(source, vline, f"{k}.{target}", need="shared")
            pairs.append((dst, src))
        return Step("load", loc, assign=tuple(pairs), shared=True)

    # -- atomics --------------------------------------------------------------------
    def _atomic(self, item: dict, key: str, loc: Loc, op: str, operands: tuple[str, ...]
                ) -> Step:
        value, line, k = self.operands(item, op, key, loc, ("var",) + operands, ("as",))
        var = self.place(value["var"], line_of(value, "var", line), f"{k}.var",
                         need="shared")
        exprs = [self.expr(value[o], line_of(value, o, line), f"{k}.{o}") for o in operands]
        as_place = None
        if "as" in value:
            as_place = self.place(value["as"], line_of(value, "as", line), f"{k}.as",
                                  need="local")
        return Step(op, loc, place=var, expr=exprs[0],
                    expr2=exprs[1] if len(exprs) > 1 else None, as_place=as_place,
                    shared=True)

    def _op_cmpxchg(self, item: dict, key: str, loc: Loc) -> Step:
        return self._atomic(item, key, loc, "cmpxchg", ("old", "new"))

    def _op_xchg(self, item: dict, key: str, loc: Loc) -> Step:
        return self._atomic(item, key, loc, "xchg", ("value",))

    def _op_fetch_add(self, item: dict, key: str, loc: Loc) -> Step:
        return self._atomic(item, key, loc, "fetch_add", ("value",))

    # -- control flow with values ---------------------------------------------------
    def _op_repeat(self, item: dict, key: str, loc: Loc) -> Step:
        line = line_of(item, "repeat", loc.line)
        n, expr = self.count(item["repeat"], 0, " count", line, f"{key}.repeat")
        index = None
        if "as" in item:
            aline, akey = line_of(item, "as", line), f"{key}.as"
            name = item["as"]
            if not isinstance(name, str) or not _IDENT.match(name):
                raise self.error(f"as: names the loop index, a local like k; got "
                                 f"{shown(name)}", aline, akey)
            if name in KEYWORDS or name in TASK_NAMES:
                # (a loop index named should_stop would hide kthread_should_stop())
                raise self.error(f"{name!r} is a name every expression reads (ok, "
                                 "should_stop, and, or, not, true, false); name the loop "
                                 "index something else, like k", aline, akey)
            if name in self.scope.shared and name not in self.scope.local:
                raise self.error(f"{name!r} is a shared variable; a loop index is a local "
                                 "(pick another name)", aline, akey)
            if self.scope.local.get(name) is not None:
                raise self.error(f"{name!r} is a local array; a loop index is a scalar",
                                 aline, akey)
            self.scope.local[name] = None
            index = self.place(name, aline, akey, need="local")
        return Step("repeat", loc, n=n, n_expr=expr, as_place=index,
                    body=self.body(item, "do", "repeat", key, loc))

    def _op_call(self, item: dict, key: str, loc: Loc) -> Step:
        line = line_of(item, "call", loc.line)
        name = self.known(item["call"], "routine", self.names.routines, line, f"{key}.call")
        params = self.names.routines[name]
        args_raw = item.get("args") or {}
        aline = line_of(item, "args", line)
        if not isinstance(args_raw, dict):
            raise self.error(f"args: is a mapping like {{param: VALUE}}, got "
                             f"{describe(args_raw)}", aline, f"{key}.args")
        takes = (f"{name} takes " + ", ".join(params)) if params else f"{name} takes none"
        args = []
        for param, value in args_raw.items():
            pline = line_of(args_raw, param, aline)
            if param not in params:
                raise self.error(f"{name} has no parameter {shown(param)}"
                                 f"{did_you_mean(str(param), params)} ({takes})", pline,
                                 f"{key}.args.{param}")
            args.append((param, self.value(value, pline, f"{key}.args.{param}")))
        missing = [p for p in params if p not in args_raw]
        if missing:
            raise self.error(f"call of {name} is missing argument {missing[0]!r} ({takes}; "
                             f"write args: {{{missing[0]}: VALUE}})", line, f"{key}.args")
        as_place = None
        if "as" in item:
            as_place = self.place(item["as"], line_of(item, "as", line), f"{key}.as")
        return Step("call", loc, target=name, args=tuple(args), as_place=as_place,
                    shared=as_place is not None and as_place.shared)

    def _op_return(self, item: dict, key: str, loc: Loc) -> Step:
        line = line_of(item, "return", loc.line)
        if self.scope.routine is None:
            raise self.error("return outside a routine: a task ends when its steps do "
                             "(return: belongs in a routine under routines:)", line,
                             f"{key}.return")
        value = item["return"]
        expr = None if value is None else self.expr(value, line, f"{key}.return")
        return Step("return", loc, expr=expr)
