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
from typing import Any, Callable

from .._bounds import MAX_PAGES, MAX_STEPS, MAX_TICKS
from .._errors import ScenarioError, did_you_mean
from .._files import read_user_file
from ._mapping import check_touches
from ._swapcfg import swap_section
from ._yaml import LineMap, parse_yaml, type_name
from .expr import KEYWORDS, Scope, expand_template
from .model import (EVENT_KINDS, INT_MAX, INT_MIN, LOCK_KINDS, TASK_NAMES, VERDICTS, Limits,
                    Loc, Memory, PageClass, Routine, Scenario, Step, TaskSpec)
from .steps import Names, StepParser, check_flags, describe, shown

__all__ = ["load_yaml_scenario", "TOP_KEYS", "DEFAULT_POOL_PAGES", "default_watermarks"]

#: Keys allowed at the top level of a scenario file, in DESIGN §4 order.
TOP_KEYS = ("name", "description", "source", "expect", "limits", "memory", "locks",
            "events", "vars", "routines", "tasks")
_LIMIT_KEYS = ("steps", "ticks", "hung_task_timeout")
_MEMORY_KEYS = ("pages", "watermarks", "kswapd", "classes", "swap", "swapout")
_CLASS_KEYS = ("writeback", "needs")
_NEEDS = ("io", "fs")
_TASK_KEYS = ("steps", "count", "flags", "start", "locals", "daemon")
_ROUTINE_KEYS = ("params", "locals", "steps")
#: Parameters a writeback routine may declare: what reclaim hands it.
WRITEBACK_PARAMS = ("class", "page")
#: Size of the pool a scenario gets when it allocates but has no ``memory:`` section
#: (e.g. sleep_under_spinlock.yaml): big enough that such scenarios are not about
#: memory pressure, so kernel code can rely on ``memory`` whenever steps allocate.
DEFAULT_POOL_PAGES = 1024
# Upper bound for ``count:`` of locks, events and tasks: a typo like 100000000 should be an
# error, not an out-of-memory.
MAX_COUNT = 10_000
#: Longest array a scenario may declare (shared or local).
MAX_ARRAY = 100_000
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
        self.semaphores: dict[str, tuple[int, int | None]] = {}

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
            units = None
            if isinstance(spec, dict):
                # sema_init(&s, count): for a semaphore, count is its units, not copies.
                sem = section == "locks" and spec.get("kind") == "semaphore"
                allowed = (("kind", "count", "max", "class") if sem else
                           ("kind", "count", "class") if section == "locks" else
                           ("kind", "count"))
                self.check_keys(spec, allowed, key, f"a {what}")
                if sem:
                    units = self.semaphore(spec, key)
                if "class" in spec:
                    # lockdep's lock class: locks of one class are one node of its graph.
                    lock_class = self.name(spec["class"], "lock class", _line(spec, "class"),
                                           f"{key}.class")
                if "kind" not in spec:
                    raise self.error(f"{what} {name!r} needs kind: (one of "
                                     + ", ".join(kinds) + ")", line, key)
                if "count" in spec and units is None:
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
                if spec == "semaphore":
                    self.semaphores[full] = units or (1, 1)
        return out

    def semaphore(self, spec: dict, key: str) -> tuple[int, int | None]:
        """``(count, max)`` of a semaphore: ``count`` units (0 for a semaphore used as a
        signal), ``max`` the most ``up`` may raise it to (default: count, or unbounded
        when count is 0)."""
        count = 1
        if "count" in spec:
            count = self.integer(spec["count"], 0, _line(spec, "count"), f"{key}.count",
                                 "count")
            if count > INT_MAX:
                raise self.error(f"count must be at most {INT_MAX}", _line(spec, "count"),
                                 f"{key}.count")
        top: int | None = count if count >= 1 else None
        if "max" in spec:
            top = self.integer(spec["max"], 1, _line(spec, "max"), f"{key}.max", "max")
            if top < count:
                raise self.error(f"max ({top}) is below count ({count}): a semaphore starts "
                                 f"with count units and up() may raise it to max; give "
                                 f"max >= {count}", _line(spec, "max"), f"{key}.max")
        return count, top

    def variables(self, raw: Any, line: int, section: str, example: str
                  ) -> dict[str, Any]:
        """``vars:`` or ``locals:``: names to integers or arrays of integers (tuples)."""
        raw = self.mapping(raw, line, section, example)
        out: dict[str, Any] = {}
        for name, value in raw.items():
            vline, key = _line(raw, name), f"{section}.{name}"
            if not isinstance(name, str) or not _VAR_RE.match(name) or name in KEYWORDS \
                    or name in TASK_NAMES:
                raise self.error(f"variable name must be an identifier (letters, digits, _) "
                                 f"and not one of {', '.join(sorted(KEYWORDS | set(TASK_NAMES)))}"
                                 f" (ok and should_stop are per-task names every expression "
                                 f"can read), got {shown(name)}", vline, key)
            out[name] = self.initial(value, vline, key)
        return out

    def initial(self, value: Any, line: int, key: str) -> Any:
        """An initial value: an s64 integer, or a non-empty list of them (an array)."""
        if isinstance(value, list):
            if not value or len(value) > MAX_ARRAY:
                raise self.error(f"an array needs 1 to {MAX_ARRAY} elements, got "
                                 f"{len(value)}", line, key)
            for i, v in enumerate(value):
                if isinstance(v, bool) or not isinstance(v, int) or not INT_MIN <= v <= INT_MAX:
                    raise self.error(f"array element {i} must be an integer, got {shown(v)}",
                                     line, key)
            return tuple(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"initial value must be an integer or a list of integers, got "
                             f"{shown(value)}", line, key)
        if not INT_MIN <= value <= INT_MAX:
            raise self.error(f"{value} does not fit in 64 bits (values are s64)", line, key)
        return value

    def memory(self, doc: dict, routines: dict[str, tuple[str, ...]]) -> Memory | None:
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
        swap, swapout = swap_section(self, raw, pages)
        return Memory(pages=pages, min=wmin, low=low, high=high, kswapd=kswapd,
                      classes=classes, swap=swap, swapout=swapout)

    def classes(self, memory: dict, routines: dict[str, tuple[str, ...]]
                ) -> tuple[PageClass, ...]:
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
                odd = [p for p in routines[writeback] if p not in WRITEBACK_PARAMS]
                if odd:
                    raise self.error(f"writeback routine {writeback!r} declares parameter "
                                     f"{odd[0]!r}; reclaim hands a writeback routine only "
                                     "class (the class's index in memory.classes) and page "
                                     "(the page frame number: the page's number in the pool)", wline,
                                     f"{key}.writeback")
            needs = spec.get("needs") or []
            if not isinstance(needs, list) or any(n not in _NEEDS for n in needs) \
                    or len(set(needs)) != len(needs):
                raise self.error(f"needs must be a list of distinct items from [io, fs], got "
                                 f"{shown(needs)}", _line(spec, "needs"), f"{key}.needs")
            out.append(PageClass(name=name, writeback=writeback, needs=tuple(needs)))
        return tuple(out)

    def routine_heads(self, doc: dict) -> dict[str, tuple[Any, tuple[str, ...], dict, int]]:
        """Each routine's ``(steps, params, locals, line)``, before any body is parsed
        (calls check their arguments against the parameters)."""
        raw = self.mapping(doc.get("routines"), _line(doc, "routines"), "routines",
                           "{NAME: [steps]}")
        out = {}
        for name, spec in raw.items():
            line, key = _line(raw, name), f"routines.{name}"
            self.name(name, "routine", line, key)
            params: tuple[str, ...] = ()
            local: dict[str, Any] = {}
            steps, sline = spec, line
            if isinstance(spec, dict):
                self.check_keys(spec, _ROUTINE_KEYS, key, "a routine")
                if "steps" not in spec:
                    raise self.error(f"routine {name!r} needs steps: [...]", line,
                                     f"{key}.steps")
                steps, sline = spec["steps"], _line(spec, "steps")
                params = self.params(spec, key)
                local = self.variables(spec.get("locals"), _line(spec, "locals"),
                                       f"{key}.locals", "{tmp: 0}")
                for p in params:
                    if p in local:
                        raise self.error(f"{p!r} is both a parameter and a local of "
                                         f"{name!r}", _line(spec, "locals"), f"{key}.locals")
            out[name] = (steps, params, local, sline)
        return out

    def params(self, spec: dict, key: str) -> tuple[str, ...]:
        raw = spec.get("params") or []
        line = _line(spec, "params")
        if not isinstance(raw, list):
            raise self.error(f"params: is a list of names like [group], got {describe(raw)}",
                             line, f"{key}.params")
        for p in raw:
            if not isinstance(p, str) or not _VAR_RE.match(p) or p in KEYWORDS \
                    or p in TASK_NAMES:
                raise self.error(f"a parameter is an identifier, got {shown(p)}", line,
                                 f"{key}.params")
        if len(set(raw)) != len(raw):
            raise self.error("a parameter is declared twice", line, f"{key}.params")
        return tuple(raw)

    def task_heads(self, doc: dict) -> list[dict[str, Any]]:
        """Every task instance (counted tasks expanded) with its options, before any
        steps are parsed: ``spawn``/``join``/``stop`` steps check names against them."""
        tline = _line(doc, "tasks")
        raw = self.mapping(doc.get("tasks"), tline, "tasks", "{t: [steps]}")
        if not raw:
            raise self.error("a scenario needs at least one task under tasks:", tline, "tasks")
        out: dict[str, dict[str, Any]] = {}
        for raw_name, spec in raw.items():
            line, key = _line(raw, raw_name), f"tasks.{raw_name}"
            name = self.name(raw_name, "task", line, key, braces=True)
            head: dict[str, Any] = {"flags": (), "start": 0, "spawned": False,
                                    "daemon": False, "locals": {}, "key": key,
                                    "loc": Loc(self.file, line), "steps": spec,
                                    "steps_line": line}
            count = None
            if isinstance(spec, dict):
                self.check_keys(spec, _TASK_KEYS, key, "a task")
                if "steps" not in spec:
                    raise self.error(f"task {name!r} needs steps: [...]", line, f"{key}.steps")
                head["steps"], head["steps_line"] = spec["steps"], _line(spec, "steps")
                if "count" in spec:
                    count = self.count(spec, key)
                if spec.get("flags") not in (None, []):
                    head["flags"] = check_flags(spec["flags"], file=self.file,
                                                line=_line(spec, "flags"), key=f"{key}.flags")
                if "start" in spec:
                    if spec["start"] == "spawned":
                        head["spawned"] = True
                    else:
                        head["start"] = self.integer(
                            spec["start"], 0, _line(spec, "start"), f"{key}.start",
                            "start (a tick, or 'spawned' for a task created by spawn:)")
                if "daemon" in spec:
                    if not isinstance(spec["daemon"], bool):
                        raise self.error(f"daemon must be true or false, got "
                                         f"{shown(spec['daemon'])}", _line(spec, "daemon"),
                                         f"{key}.daemon")
                    head["daemon"] = spec["daemon"]
                head["locals"] = self.variables(spec.get("locals"), _line(spec, "locals"),
                                                f"{key}.locals", "{tmp: 0}")
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
                out[inst] = {**head, "name": inst, "template": template}
        return list(out.values())

    def tasks(self, heads: list[dict[str, Any]], names: Names) -> tuple[TaskSpec, ...]:
        out = []
        for h in heads:
            scope = Scope(names.vars, _shapes(h["locals"]))
            steps: tuple[Step, ...] = StepParser(names, h["template"], scope).steps(
                h["steps"], f"{h['key']}.steps", h["steps_line"])
            out.append(TaskSpec(
                name=h["name"], steps=steps, flags=h["flags"], start=h["start"],
                loc=h["loc"], locals=_locals(h["locals"], scope), daemon=h["daemon"],
                spawned=h["spawned"], reach=_union(steps)))
        return tuple(out)

    # -- the whole file -------------------------------------------------------------------
    def scenario(self, data: bytes, edit: Callable[[Any], str] | None = None) -> Scenario:
        """Validate the file's bytes; ``edit`` (``vmemu measure --vary``) may change the
        parsed document first, and returns the text of its change (mixed into the hash)."""
        doc = parse_yaml(data, self.file)
        if edit is not None:
            data += b"\n# vary: " + edit(doc).encode()
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
        variables = self.variables(doc.get("vars"), _line(doc, "vars"), "vars", "{ready: 0}")
        heads = self.routine_heads(doc)
        signatures = {name: h[1] for name, h in heads.items()}
        memory = self.memory(doc, signatures)
        task_heads = self.task_heads(doc)
        names = Names(file=self.file, locks=locks, events=events,
                      vars=_shapes(variables), routines=signatures,
                      classes=frozenset(c.name for c in memory.classes) if memory else
                      frozenset(), has_memory=memory is not None,
                      tasks={h["name"]: h["spawned"] for h in task_heads})
        routines = {}
        for name, (body, params, local, line) in heads.items():
            scope = Scope(names.vars, {**{p: None for p in params}, **_shapes(local)},
                          routine=name)
            steps = StepParser(names, None, scope).steps(body, f"routines.{name}", line)
            routines[name] = Routine(name, steps, params, _locals(local, scope),
                                     Loc(self.file, line), reach=_union(steps))
        tasks = self.tasks(task_heads, names)
        check_touches(names)
        if all(t.spawned for t in tasks):
            raise self.error("every task is start: spawned, so nothing would ever run: "
                             "leave start: out of the task that spawns the others",
                             _line(doc, "tasks"), "tasks")
        if memory is None and names.uses_memory:
            memory = Memory(DEFAULT_POOL_PAGES, *default_watermarks(DEFAULT_POOL_PAGES))
        return Scenario(
            name=self.text(doc, "name", Path(self.file).stem) or Path(self.file).stem,
            path=self.file, content_hash=hashlib.sha256(data).hexdigest(),
            description=self.text(doc, "description", ""),
            source=self.text(doc, "source", ""), expect=expect, limits=limits,
            memory=memory, locks=locks, events=events, vars=variables, routines=routines,
            tasks=tasks, lock_classes=dict(self.lock_classes),
            abspath=os.path.abspath(self.file), semaphores=dict(self.semaphores))


def _shapes(variables: dict[str, Any]) -> dict[str, int | None]:
    """Name -> array length (None for a scalar): what a :class:`Scope` needs."""
    return {n: len(v) if isinstance(v, tuple) else None for n, v in variables.items()}


def _locals(declared: dict[str, Any], scope: Scope) -> tuple[tuple[str, Any], ...]:
    """A frame's initial locals: the declared ones, then every other name the scope
    gained (``repeat ... as:`` indices; a routine's parameters, which its call binds),
    at 0, in order."""
    out = dict(declared)
    for name in scope.local:
        out.setdefault(name, 0)
    return tuple(out.items())


def _union(steps: tuple[Step, ...]) -> frozenset:
    reach: set = set()
    for s in steps:
        reach |= s.reach
    return frozenset(reach)


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
