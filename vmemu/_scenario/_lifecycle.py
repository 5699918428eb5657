"""Step parsing for task lifecycle and waits: ``spawn join stop`` and ``wait`` with its
``with_lock:``, ``state:`` and ``timeout:`` options (a mixin of :class:`.steps.StepParser`).

A task name in ``spawn``/``join``/``stop`` may be computed at run time
(``spawn: "worker{j}"`` with a loop index ``j``): the parts in braces that use only a
counted task's ``i``/``n`` are expanded at load time, the others are compiled as
expressions. Every task such a template can name is known at load time, which is what the
watchdog needs to tell who can still spawn (and so signal through) whom.
"""

from __future__ import annotations

import re
from typing import Any

from .._errors import did_you_mean
from .expr import compile_expr
from .model import WAIT_STATES, Loc, Step
from ._text import line_of, shown

__all__ = ["LifecycleOps"]


class LifecycleOps:
    """``spawn join stop wait`` (see the module docstring)."""

    def task_ref(self, item: dict, key: str, loc: Loc, op: str
                 ) -> tuple[str | None, tuple[Any, ...], tuple[str, ...]]:
        """``(static name or None, run-time name parts, every task it can name)``."""
        line, k = line_of(item, op, loc.line), f"{key}.{op}"
        raw = item[op]
        text = raw if isinstance(raw, str) and "{" in raw else \
            self.name(raw, "a task", line, k)
        tasks = self.names.tasks
        if not isinstance(text, str) or "{" not in text:
            if text not in tasks:
                raise self.error(f"unknown task {text!r}{did_you_mean(text, tasks)}: {op} "
                                 "names a task under tasks:", line, k)
            return text, (), (text,)
        parts = self._name_parts(text, line, k)
        if all(isinstance(p, str) for p in parts):
            return self.task_ref({op: "".join(parts)}, key, Loc(loc.file, line), op)
        pattern = "".join(re.escape(p) if isinstance(p, str) else "-?[0-9]+" for p in parts)
        can = tuple(n for n in tasks if re.fullmatch(pattern, n))
        if not can:
            raise self.error(f"no task under tasks: can be {text!r} (the parts in braces "
                             "are numbers at run time)", line, k)
        return None, parts, can

    def _name_parts(self, text: str, line: int, key: str) -> tuple[Any, ...]:
        parts: list[Any] = []
        pos = 0
        for m in re.finditer(r"\{([^{}]*)\}", text):
            parts.append(text[pos:m.start()])
            inner = m.group(1)
            bare = compile_expr(inner, file=self.file, line=line, key=key)
            if self.template is not None and set(bare.names) <= {"i", "n"}:
                i, n = self.template
                parts.append(str(bare({"i": i, "n": n})))
            else:
                parts.append(self.expr(inner, line, key))
            pos = m.end()
        parts.append(text[pos:])
        if "{" in "".join(p for p in parts if isinstance(p, str)) or "}" in "".join(
                p for p in parts if isinstance(p, str)):
            raise self.error(f"bad template {text!r}: unbalanced braces", line, key)
        merged: list[Any] = []
        for p in parts:
            if isinstance(p, str) and merged and isinstance(merged[-1], str):
                merged[-1] += p
            elif p != "":
                merged.append(p)
        return tuple(merged)

    def _op_spawn(self, item: dict, key: str, loc: Loc) -> Step:
        target, parts, can = self.task_ref(item, key, loc, "spawn")
        spawnable = tuple(n for n in can if self.names.tasks[n])
        if not spawnable:
            name = target or can[0]
            raise self.error(f"task {name!r} is not start: spawned, so spawn cannot create "
                             "it (it starts on its own); give it start: spawned",
                             line_of(item, "spawn", loc.line), f"{key}.spawn")
        return Step("spawn", loc, target=target, name_parts=parts,
                    reach=frozenset(("spawn", n) for n in spawnable))

    def _op_join(self, item: dict, key: str, loc: Loc) -> Step:
        target, parts, _ = self.task_ref(item, key, loc, "join")
        return Step("join", loc, target=target, name_parts=parts)

    def _op_stop(self, item: dict, key: str, loc: Loc) -> Step:
        target, parts, can = self.task_ref(item, key, loc, "stop")
        return Step("stop", loc, target=target, name_parts=parts,
                    reach=frozenset(("stop", n) for n in can))

    def _op_wait(self, item: dict, key: str, loc: Loc) -> Step:
        event = self.event_name(item, key, loc, "wait")
        line = line_of(item, "wait", loc.line)
        with_lock = None
        if "with_lock" in item:
            with_lock = self.known(item["with_lock"], "lock", self.names.locks,
                                   line_of(item, "with_lock", line), f"{key}.with_lock")
        state = item.get("state", "uninterruptible")
        if state not in WAIT_STATES:
            raise self.error(f"unknown wait state {shown(state)}"
                             f"{did_you_mean(str(state), WAIT_STATES)}; states: "
                             + ", ".join(WAIT_STATES), line_of(item, "state", line),
                             f"{key}.state")
        timeout = None
        if "timeout" in item:
            tline, tkey = line_of(item, "timeout", line), f"{key}.timeout"
            raw = item["timeout"]
            if isinstance(raw, int) and not isinstance(raw, bool) and raw < 0:
                raise self.error(f"timeout must be a non-negative number of ticks, got "
                                 f"{raw}", tline, tkey)
            value = self.value(raw, tline, tkey)
            timeout = value if not isinstance(value, int) else self.expr(str(value), tline,
                                                                         tkey)
        return Step("wait", loc, target=event, with_lock=with_lock, state=state,
                    timeout=timeout)
