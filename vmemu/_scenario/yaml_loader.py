"""Loading a YAML scenario file (DESIGN §4) into the immutable :mod:`model`.

Every error is a one-line :class:`ScenarioError` naming the file, the line, the dotted key
(``tasks.t.steps[2].lock``) and, for names, the closest valid one. The document is parsed
with a line-tracking subclass of PyYAML's SafeLoader (:mod:`._yaml`); steps are parsed in
:mod:`.steps`.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from .._bounds import MAX_PAGES, MAX_STEPS, MAX_TICKS
from .._errors import ScenarioError, did_you_mean
from .._files import read_user_file
from ._yaml import LineMap, parse_yaml, type_name
from .expr import KEYWORDS, expand_template
from .model import (EVENT_KINDS, LOCK_KINDS, VERDICTS, Limits, Memory, PageClass, Scenario,
                    Step, TaskSpec, Loc)
from .steps import Names, StepParser, check_flags, describe, shown

__all__ = ["load_yaml_scenario", "TOP_KEYS", "DEFAULT_POOL_PAGES", "default_watermarks"]

#: Keys allowed at the top level of a scenario file, in DESIGN §4 order.
TOP_KEYS = ("name", "description", "source", "expect", "limits", "memory", "locks",
            "events", "vars", "routines", "tasks")
_LIMIT_KEYS = ("steps", "ticks", "hung_task_timeout")
_MEMORY_KEYS = ("pages", "watermarks", "kswapd", "classes")
_CLASS_KEYS = ("writeback", "needs")
_NEEDS = ("io", "fs")
_TASK_KEYS = ("steps", "count", "flags", "start")
#: Size of the pool a scenario gets when it allocates but has no ``memory:`` section
#: (e.g. sleep_under_spinlock.yaml): big enough that such scenarios are not about
#: memory pressure, so kernel code can rely on ``memory`` whenever steps allocate.
DEFAULT_POOL_PAGES = 1024
# Upper bound for ``count:`` of locks, events and tasks: a typo like 100000000 should be an
# error, not an out-of-memory.
MAX_COUNT = 10_000
_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def default_watermarks(pages: int) -> tuple[int, int, int]:
    """Watermarks used when ``memory:`` gives none: ``min = max(1, pages // 32)``,
    ``low = 2 * min``, ``high = 3 * min`` (so they need ``pages >= 3``)."""
    wmin = max(1, pages // 32)
    return wmin, 2 * wmin, 3 * wmin


class _Loader:
    """One load of one file: holds the file name so that helpers can raise located errors."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lock_classes: dict[str, str] = {}

    def error(self, message: str, line: int | None, key: str | None) -> ScenarioError:
        return ScenarioError(message, file=self.file, line=line, key=key)

    # -- small typed readers ------------------------------------------------------------
    def mapping(self, value: Any, line: int, key: str, example: str, *,
                allow_none: bool = True) -> dict:
        if value is None and allow_none:
            return {}
        if not isinstance(value, dict):
            raise self.error(f"expected a mapping like {example}, got {describe(value)}", line, key)
        return value

    def check_keys(self, value: dict, allowed: tuple[str, ...], key: str, what: str) -> None:
        for k in value:
            if k not in allowed:
                raise self.error(f"unknown key {shown(k)} in {what}"
                                 f"{did_you_mean(str(k), allowed)}; allowed: "
                                 + ", ".join(allowed), _line(value, k), f"{key}.{k}")

    def integer(self, value: Any, minimum: int, line: int, key: str, what: str,
                maximum: int = MAX_TICKS) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            sign = "a positive" if minimum > 0 else "a non-negative"
            raise self.error(f"{what} must be {sign} integer, got {shown(value)}", line, key)
        if value > maximum:
            raise self.error(f"{what} must be at most {maximum:_} (the range is {minimum} to "
                             f"{maximum:_}), got {shown(value)}", line, key)
        return value

    def count(self, spec: dict, key: str) -> int:
        """``count:`` of counted locks, events and tasks: 1..MAX_COUNT."""
        line = _line(spec, "count")
        count = self.integer(spec["count"], 1, line, f"{key}.count", "count")
        if count > MAX_COUNT:
            raise self.error(f"count must be at most {MAX_COUNT}, got {count}", line,
                             f"{key}.count")
        return count

    def text(self, doc: dict, key: str, default: str) -> str:
        value = doc.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(f"expected a string, got {describe(value)}",
                             _line(doc, key), key)
        return value.strip()

    def name(self, value: Any, what: str, line: int, key: str, braces: bool = False) -> str:
        """A declared name: a non-empty string without spaces (and without ``{}``)."""
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise self.error(f"{what} name must be a non-empty string without spaces, got "
                             f"{shown(value)}", line, key)
        if not braces and ("{" in value or "}" in value):
            raise self.error(f"{what} name {value!r}: templates like {{i}} only expand in a "
                             "task with count:", line, key)
        return value

    # -- sections -------------------------------------------------------------------------
    def limits(self, doc: dict) -> Limits:
        raw = self.mapping(doc.get("limits"), _line(doc, "limits"), "limits",
                           "{steps: 20000, ticks: 1000000, hung_task_timeout: 1000}")
        self.check_keys(raw, _LIMIT_KEYS, "limits", "limits")
        values = {k: self.integer(raw[k], 1, _line(raw, k), f"limits.{k}", k,
                                  MAX_STEPS if k == "steps" else MAX_TICKS)
                  for k in _LIMIT_KEYS if k in raw}
        return Limits(**values)

    def kinds(self, doc: dict, section: str, kinds: tuple[str, ...], what: str) -> dict[str, str]:
        """``locks:`` / ``events:``: ``{NAME: KIND}`` or ``{NAME: {kind: KIND, count: N}}``."""
        raw = self.mapping(doc.get(section), _line(doc, section), section,
                           f"{{NAME: {kinds[0]}}}")
        out: dict[str, str] = {}
        for raw_name, spec in raw.items():
            line, key = _line(raw, raw_name), f"{section}.{raw_name}"
            name = self.name(raw_name, what, line, key)
            count = None
            lock_class = None
            if isinstance(spec, dict):
                allowed = ("kind", "count", "class") if section == "locks" else ("kind", "count")
                self.check_keys(spec, allowed, key, f"a {what}")
                if "class" in spec:
                    # lockdep's lock class: locks of one class are one node of its graph.
                    lock_class = self.name(spec["class"], "lock class", _line(spec, "class"),
                                           f"{key}.class")
                if "kind" not in spec:
                    raise self.error(f"{what} {name!r} needs kind: (one of "
                                     + ", ".join(kinds) + ")", line, key)
                if "count" in spec:
                    count = self.count(spec, key)
                line, kind_key, spec = _line(spec, "kind"), f"{key}.kind", spec["kind"]
            else:
                kind_key = key
            if spec not in kinds:
                raise self.error(f"unknown {what} kind {shown(spec)}"
                                 f"{did_you_mean(str(spec), kinds)}; known kinds: "
                                 + ", ".join(kinds), line, kind_key)
            for full in [name] if count is None else [f"{name}{i}" for i in range(count)]:
                if full in out:
                    raise self.error(f"duplicate {what} {full!r}", line, key)
                out[full] = spec
                if lock_class is not None:
                    self.lock_classes[full] = lock_class
        return out

    def variables(self, doc: dict) -> dict[str, int]:
        raw = self.mapping(doc.get("vars"), _line(doc, "vars"), "vars", "{ready: 0}")
        out: dict[str, int] = {}
        for name, value in raw.items():
            line, key = _line(raw, name), f"vars.{name}"
            if not isinstance(name, str) or not _VAR_RE.match(name) or name in KEYWORDS:
                raise self.error(f"variable name must be an identifier (letters, digits, _) "
                                 f"and not one of {', '.join(sorted(KEYWORDS))}, got "
                                 f"{shown(name)}", line, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.error(f"initial value must be an integer, got {shown(value)}",
                                 line, key)
            out[name] = value
        # ``trylock`` and io results set ``ok``; it always exists (0 unless declared).
        out.setdefault("ok", 0)
        return out

    def memory(self, doc: dict, routines: frozenset[str]) -> Memory | None:
        if "memory" not in doc:
            return None
        mline = _line(doc, "memory")
        raw = self.mapping(doc["memory"], mline, "memory", "{pages: 64}", allow_none=False)
        self.check_keys(raw, _MEMORY_KEYS, "memory", "memory")
        if "pages" not in raw:
            raise self.error("memory needs pages: (the size of the page pool)", mline,
                             "memory.pages")
        pages = self.integer(raw["pages"], 1, _line(raw, "pages"), "memory.pages", "pages",
                             MAX_PAGES)
        wkey = "memory.watermarks"
        if "watermarks" in raw:
            wline = _line(raw, "watermarks")
            marks = self.mapping(raw["watermarks"], wline, wkey, "{min: 2, low: 4, high: 8}",
                                 allow_none=False)
            self.check_keys(marks, ("min", "low", "high"), wkey, "watermarks")
            for need in ("min", "low", "high"):
                if need not in marks:
                    raise self.error(f"watermarks need min, low and high; {need} is missing",
                                     wline, wkey)
            wmin, low, high = (self.integer(marks[k], 0, _line(marks, k), f"{wkey}.{k}",
                                            f"watermark {k}", MAX_PAGES)
                               for k in ("min", "low", "high"))
        else:
            wline = _line(raw, "pages")
            wmin, low, high = default_watermarks(pages)
        if not 0 <= wmin < low < high <= pages:
            raise self.error(f"watermarks must satisfy 0 <= min < low < high <= pages, got "
                             f"min={wmin} low={low} high={high} pages={pages}"
                             + ("" if "watermarks" in raw else
                                " (defaults; give watermarks: explicitly)"), wline, wkey)
        kswapd = raw.get("kswapd", False)
        if not isinstance(kswapd, bool):
            raise self.error(f"kswapd must be true or false, got {shown(kswapd)}",
                             _line(raw, "kswapd"), "memory.kswapd")
        classes = self.classes(raw, routines)
        return Memory(pages=pages, min=wmin, low=low, high=high, kswapd=kswapd,
                      classes=classes)

    def classes(self, memory: dict, routines: frozenset[str]) -> tuple[PageClass, ...]:
        raw = self.mapping(memory.get("classes"), _line(memory, "classes"), "memory.classes",
                           "{shm: {writeback: ROUTINE, needs: [io, fs]}}")
        out = []
        for raw_name, spec in raw.items():
            line, key = _line(raw, raw_name), f"memory.classes.{raw_name}"
            name = self.name(raw_name, "class", line, key)
            spec = self.mapping(spec, line, key, "{writeback: ROUTINE, needs: [io, fs]}")
            self.check_keys(spec, _CLASS_KEYS, key, "a page class")
            writeback = None
            if spec.get("writeback") is not None:
                wline = _line(spec, "writeback")
                writeback = self.name(spec["writeback"], "routine", wline, f"{key}.writeback")
                if writeback not in routines:
                    raise self.error(f"unknown routine {writeback!r}"
                                     f"{did_you_mean(writeback, routines)}", wline,
                                     f"{key}.writeback")
            needs = spec.get("needs") or []
            if not isinstance(needs, list) or any(n not in _NEEDS for n in needs) \
                    or len(set(needs)) != len(needs):
                raise self.error(f"needs must be a list of distinct items from [io, fs], got "
                                 f"{shown(needs)}", _line(spec, "needs"), f"{key}.needs")
            out.append(PageClass(name=name, writeback=writeback, needs=tuple(needs)))
        return tuple(out)

    def routine_names(self, doc: dict) -> LineMap | dict:
        raw = self.mapping(doc.get("routines"), _line(doc, "routines"), "routines",
                           "{NAME: [steps]}")
        for name in raw:
            self.name(name, "routine", _line(raw, name), f"routines.{name}")
        return raw

    def tasks(self, doc: dict, names: Names) -> tuple[TaskSpec, ...]:
        tline = _line(doc, "tasks")
        raw = self.mapping(doc.get("tasks"), tline, "tasks", "{t: [steps]}")
        if not raw:
            raise self.error("a scenario needs at least one task under tasks:", tline, "tasks")
        out: dict[str, TaskSpec] = {}
        for raw_name, spec in raw.items():
            line, key = _line(raw, raw_name), f"tasks.{raw_name}"
            name = self.name(raw_name, "task", line, key, braces=True)
            count, flags, start = None, (), 0
            steps_raw, steps_line = spec, line
            if isinstance(spec, dict):
                self.check_keys(spec, _TASK_KEYS, key, "a task")
                if "steps" not in spec:
                    raise self.error(f"task {name!r} needs steps: [...]", line, f"{key}.steps")
                steps_raw, steps_line = spec["steps"], _line(spec, "steps")
                if "count" in spec:
                    count = self.count(spec, key)
                if spec.get("flags") not in (None, []):
                    flags = check_flags(spec["flags"], file=self.file,
                                        line=_line(spec, "flags"), key=f"{key}.flags")
                if "start" in spec:
                    start = self.integer(spec["start"], 0, _line(spec, "start"),
                                         f"{key}.start", "start")
            loc = Loc(self.file, line)
            if count is None:
                if "{" in name or "}" in name:
                    raise self.error(f"task name {name!r}: templates like {{i}} only expand "
                                     "in a task with count:", line, key)
                instances = [(name, None)]
            else:
                instances = [(expand_template(name, i, count, file=self.file, line=line,
                                              key=key) if "{" in name else f"{name}{i}",
                              (i, count)) for i in range(count)]
            for inst, template in instances:
                if inst in out:
                    raise self.error(f"duplicate task {inst!r}", line, key)
                steps: tuple[Step, ...] = StepParser(names, template).steps(
                    steps_raw, f"{key}.steps", steps_line)
                out[inst] = TaskSpec(name=inst, steps=steps, flags=flags, start=start,
                                     loc=loc)
        return tuple(out.values())

    # -- the whole file -------------------------------------------------------------------
    def scenario(self, data: bytes) -> Scenario:
        doc = parse_yaml(data, self.file)
        if doc is None:
            raise self.error("the file is empty; a scenario is a mapping with at least "
                             "tasks:", None, None)
        if not isinstance(doc, dict):
            raise self.error(f"the top level must be a mapping (name:, tasks:, ...), got "
                             f"{type_name(doc)}", getattr(doc, "line", 1), None)
        for k in doc:
            if k not in TOP_KEYS:
                raise self.error(f"unknown top-level key {shown(k)}"
                                 f"{did_you_mean(str(k), TOP_KEYS)}; allowed: "
                                 + ", ".join(TOP_KEYS), _line(doc, k), str(k))
        expect = doc.get("expect", "ok")
        if expect not in VERDICTS:
            raise self.error(f"unknown verdict {shown(expect)}"
                             f"{did_you_mean(str(expect), VERDICTS)}; known verdicts: "
                             + ", ".join(VERDICTS), _line(doc, "expect"), "expect")
        limits = self.limits(doc)
        locks = self.kinds(doc, "locks", LOCK_KINDS, "lock")
        events = self.kinds(doc, "events", EVENT_KINDS, "event")
        for name in events:
            if name in locks:
                raise self.error(f"{name!r} is both a lock and an event; use distinct names",
                                 _line(doc, "events"), "events")
        variables = self.variables(doc)
        routines_raw = self.routine_names(doc)
        memory = self.memory(doc, frozenset(routines_raw))
        names = Names(file=self.file, locks=locks, events=events,
                      vars=frozenset(variables), routines=frozenset(routines_raw),
                      classes=frozenset(c.name for c in memory.classes) if memory else
                      frozenset(), has_memory=memory is not None)
        routines = {name: StepParser(names).steps(body, f"routines.{name}",
                                                  _line(routines_raw, name))
                    for name, body in routines_raw.items()}
        tasks = self.tasks(doc, names)
        if memory is None and names.uses_memory:
            memory = Memory(DEFAULT_POOL_PAGES, *default_watermarks(DEFAULT_POOL_PAGES))
        return Scenario(
            name=self.text(doc, "name", Path(self.file).stem) or Path(self.file).stem,
            path=self.file, content_hash=hashlib.sha256(data).hexdigest(),
            description=self.text(doc, "description", ""),
            source=self.text(doc, "source", ""), expect=expect, limits=limits,
            memory=memory, locks=locks, events=events, vars=variables, routines=routines,
            tasks=tasks, lock_classes=dict(self.lock_classes),
            abspath=os.path.abspath(self.file))


def _line(container: Any, key: Any) -> int:
    """Line of ``key`` in a YAML mapping (or of the mapping itself), defaulting to 1."""
    if isinstance(container, LineMap):
        return container.key_line(key)
    return getattr(container, "line", 1)


def load_yaml_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate a YAML scenario file.

    Args:
        path: the file; kept as given in :attr:`Scenario.path` and every :class:`Loc`.

    Returns:
        The validated :class:`Scenario` (counted locks and tasks expanded, file order kept,
        ``vars`` always containing ``ok``, ``memory`` a default pool of
        :data:`DEFAULT_POOL_PAGES` pages when steps allocate but the file has no
        ``memory:`` section, else None when there is none).

    Raises:
        ScenarioError: unreadable file, invalid YAML, or an invalid scenario; the message is
            one line naming the file, line and key.
    """
    file = os.fspath(path)
    data = read_user_file(file, what="scenario file", error=ScenarioError)
    return _Loader(file).scenario(data)
