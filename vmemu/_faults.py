"""Fault plans (``faults/*.yaml``, ``--faults F``): what to break, where, and how often.

Modelled on Linux's fault-injection attributes (Documentation/fault-injection/): each
rule has a *site* (``at``), filters (``where``), an action (``do``) and the attributes
``probability``, ``interval``, ``times``, ``space`` and ``ignore_gfp_wait``. They are
checked in Linux's order (``should_fail_ex()``): filters, then ``times``, then ``space``,
then ``interval``, and last the coin flip. The coin flip is the only nondeterminism and it
is a question to the strategy (``k.choose_bool``), so it lands on the decision tape and a
saved trace replays every firing exactly. The reference is docs/faults.md.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ._bounds import MAX_TICKS
from ._errors import FaultPlanError, ScenarioError, did_you_mean
from ._files import read_user_file
from ._kernel._gfp import DIRECT_RECLAIM, GFP_MASKS

__all__ = ["FaultAction", "FaultRule", "FaultPlan", "FaultInjector", "load_fault_plan",
           "SITES", "ACTIONS"]

#: Where a rule can fire: every allocation (and fill), lock acquire, io, named point, step.
SITES = ("alloc", "lock", "io", "point", "step")
#: What a rule does, and the sites where that makes sense.
ACTIONS = {"exhaust": ("alloc",), "fail": ("alloc",), "io_error": ("io",),
           "delay": SITES, "preempt": SITES}
_TOP_KEYS = ("name", "description", "faults")
_RULE_KEYS = ("at", "where", "do", "probability", "interval", "times", "space",
              "ignore_gfp_wait")
_WHERE_KEYS = ("task", "within", "name", "gfp")
#: Sites a ``where`` key can filter on (``task`` and ``within`` work everywhere).
_WHERE_SITES = {"name": ("alloc", "lock", "point"), "gfp": ("alloc",)}
#: Frames the memory manager pushes, valid in ``within`` besides routine and task names.
_RECLAIM_FRAMES = ("direct reclaim", "balance_pgdat", "synthetic reclaim", "wait for memory")


@dataclass(frozen=True, slots=True)
class FaultAction:
    """What a firing rule asks for: ``do`` is one of :data:`ACTIONS`; ``n`` the ticks of
    a ``delay``."""

    do: str
    n: int = 0

    def describe(self) -> str:
        return f"delay {self.n}" if self.do == "delay" else self.do


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One entry of ``faults:`` (filters are tuples of glob patterns; empty = any)."""

    index: int
    line: int
    at: str
    action: FaultAction
    probability: float = 1.0
    interval: int = 1
    times: int = -1
    space: int = 0
    ignore_gfp_wait: bool = True
    task: tuple[str, ...] = ()
    within: tuple[str, ...] = ()
    name: tuple[str, ...] = ()
    gfp: tuple[str, ...] = ()
    lines: dict[str, int] = field(default_factory=dict, compare=False)

    def matches(self, kind: str, task: Any, name: str | None, gfp: str | None) -> bool:
        """The filters: site, task, routine on the stack, name, GFP mask."""
        if kind != self.at:
            return False
        if self.task and not _any_match(task.name, self.task):
            return False
        if self.within and not any(_any_match(f.name, self.within) for f in task.stack):
            return False
        if self.name and (name is None or not _any_match(name, self.name)):
            return False
        if self.gfp and gfp not in self.gfp:
            return False
        if (self.action.do == "fail" and self.ignore_gfp_wait and gfp is not None
                and DIRECT_RECLAIM in GFP_MASKS.get(gfp, ())):
            return False  # Linux: ignore-gfp-wait spares allocations that may sleep
        return True


def _any_match(value: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatchcase(value, p) for p in patterns)


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _glob_problem(pattern: str) -> str | None:
    """What is wrong with a filter's glob pattern (fnmatch syntax), if anything.

    fnmatch takes an unclosed ``[`` literally, so ``task: "["`` would quietly match no
    task; say so instead.
    """
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                return (f"the '[' at position {i + 1} is never closed (a set is written "
                        "[abc]; write [[] for a literal '[')")
            i = j
        i += 1
    return None


@dataclass(frozen=True)
class FaultPlan:
    """A loaded fault plan. ``bind(kernel)`` gives the per-run injector."""

    name: str
    path: str
    content_hash: str
    rules: tuple[FaultRule, ...]
    description: str = ""

    def bind(self, k: Any) -> "FaultInjector":
        """The injector for one run of ``k`` (fresh counters; names checked against the
        scenario, so a typo in a filter is an error instead of a rule that never fires)."""
        _check_names(self, k.scenario)
        return FaultInjector(self, k)


class FaultInjector:
    """Per-run state of a plan (``times``/``space``/``interval`` counters per rule)."""

    def __init__(self, plan: FaultPlan, k: Any) -> None:
        self.plan = plan
        self.k = k
        self.times = [r.times for r in plan.rules]
        self.space = [r.space for r in plan.rules]
        self.count = [0] * len(plan.rules)

    def at(self, kind: str, task: Any, *, name: str | None = None, gfp: str | None = None,
           size: int = 1) -> FaultAction | None:
        """Consulted at every fault site; the first rule that fires wins (plan order).

        Args:
            kind: the site (:data:`SITES`).
            task: the task at the site.
            name: the lock, point or (for ``fill``) page class name, if any.
            gfp: the requested GFP mask name at ``alloc``.
            size: pages at ``alloc`` (what ``space`` is charged), else 1.
        """
        for i, r in enumerate(self.plan.rules):
            if not r.matches(kind, task, name, gfp):
                continue
            if r.probability <= 0.0 or self.times[i] == 0:
                continue
            if self.space[i] > size:
                self.space[i] -= size       # a budget that must be used up first
                continue
            if r.interval > 1:
                self.count[i] += 1
                if self.count[i] % r.interval:
                    continue
            if not self.k.choose_bool(r.probability, f"faults[{i}] {r.action.do} at {kind}"):
                continue
            if self.times[i] > 0:
                self.times[i] -= 1
            self.k.emit(task, "fault", f"{r.action.describe()} at {kind}"
                        + (f" {name}" if name else "") + f" (faults[{i}])")
            return r.action
        return None


# ---------------------------------------------------------------------------- loading
def load_fault_plan(path: str | os.PathLike[str], *, key: str | None = None) -> FaultPlan:
    """Load and validate a fault plan file.

    ``key`` names where the path came from in a message about the file itself (the CLI
    passes ``--faults``).

    Raises:
        FaultPlanError: one line naming the file, line and key, with a fix.
    """
    from ._scenario._yaml import parse_yaml
    file = os.fspath(path)
    data = read_user_file(file, what="fault plan file", error=FaultPlanError, key=key)
    try:
        doc = parse_yaml(data, file)
    except ScenarioError as e:
        raise FaultPlanError(e.bare, file=file, line=e.line, key=e.key) from None
    return _Reader(file).plan(doc, hashlib.sha256(data).hexdigest())


class _Reader:
    def __init__(self, file: str) -> None:
        self.file = file

    def error(self, msg: str, line: int | None, key: str) -> FaultPlanError:
        return FaultPlanError(msg, file=self.file, line=line, key=key)

    def plan(self, doc: Any, digest: str) -> FaultPlan:
        if not isinstance(doc, dict):
            raise self.error("a fault plan is a mapping with a `faults:` list, e.g. "
                             "faults: [{at: alloc, do: exhaust}]", 1, "faults")
        self.keys(doc, _TOP_KEYS, "", "a fault plan")
        raw = doc.get("faults")
        if not isinstance(raw, list) or not raw:
            raise self.error("needs a non-empty list of rules like [{at: alloc, do: exhaust}]",
                             _line(doc, "faults"), "faults")
        rules = tuple(self.rule(i, r, _item_line(raw, i, doc)) for i, r in enumerate(raw))
        name = doc.get("name", Path(self.file).stem)
        if not isinstance(name, str) or not name:
            raise self.error("name must be a non-empty string", _line(doc, "name"), "name")
        desc = doc.get("description") or ""
        return FaultPlan(name=name, path=self.file, content_hash=digest, rules=rules,
                         description=str(desc).strip())

    def keys(self, value: dict, allowed: tuple[str, ...], prefix: str, what: str) -> None:
        for k in value:
            if k not in allowed:
                raise self.error(f"unknown key {_shown(k)} in {what}{did_you_mean(str(k), allowed)}"
                                 f"; allowed: {', '.join(allowed)}", _line(value, k),
                                 f"{prefix}{k}")

    def rule(self, i: int, raw: Any, line: int) -> FaultRule:
        key = f"faults[{i}]"
        if not isinstance(raw, dict):
            raise self.error("each rule is a mapping like {at: alloc, do: exhaust}", line, key)
        self.keys(raw, _RULE_KEYS, f"{key}.", "a fault rule")
        for need in ("at", "do"):
            if need not in raw:
                raise self.error(f"a rule needs {need}: (e.g. at: alloc, do: exhaust)",
                                 line, f"{key}.{need}")
        at = raw["at"]
        if at not in SITES:
            raise self.error(f"unknown site {_shown(at)}{did_you_mean(str(at), SITES)}; sites: "
                             + ", ".join(SITES), _line(raw, "at"), f"{key}.at")
        action = self.action(raw["do"], at, _line(raw, "do"), f"{key}.do")
        lines = {k: _line(raw, k) for k in raw}
        where = raw.get("where") or {}
        if not isinstance(where, dict):
            raise self.error("where must be a mapping like {task: T, within: ROUTINE}",
                             _line(raw, "where"), f"{key}.where")
        self.keys(where, _WHERE_KEYS, f"{key}.where.", "where")
        filters: dict[str, tuple[str, ...]] = {}
        for wk in _WHERE_KEYS:
            if wk not in where:
                continue
            wline, wkey = _line(where, wk), f"{key}.where.{wk}"
            lines[f"where.{wk}"] = wline
            if wk in _WHERE_SITES and at not in _WHERE_SITES[wk]:
                raise self.error(f"{wk} filters only apply at "
                                 f"{' or '.join(_WHERE_SITES[wk])}, not at {at}", wline, wkey)
            vals = where[wk] if isinstance(where[wk], list) else [where[wk]]
            if not vals or not all(isinstance(v, str) and v for v in vals):
                raise self.error(f"expected a name or a list of names, got {_shown(where[wk])}",
                                 wline, wkey)
            for v in vals:
                if (problem := _glob_problem(v)) is not None:
                    raise self.error(f"bad pattern {_shown(v)}: {problem}", wline, wkey)
            if wk == "gfp":
                for v in vals:
                    if v not in GFP_MASKS:
                        raise self.error(f"unknown GFP mask {_shown(v)}{did_you_mean(v, GFP_MASKS)}"
                                         f"; known masks: {', '.join(GFP_MASKS)}", wline, wkey)
            filters[wk] = tuple(vals)
        prob = raw.get("probability", 1.0)
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
            raise self.error(f"probability must be a number from 0 to 1 (0.25 = one time in "
                             f"four), got {_shown(prob)}", _line(raw, "probability"),
                             f"{key}.probability")
        interval = self.integer(raw, "interval", 1, 1, key)
        times = self.integer(raw, "times", -1, -1, key)
        space = self.integer(raw, "space", 0, 0, key)
        igw = raw.get("ignore_gfp_wait", True)
        if not isinstance(igw, bool):
            raise self.error(f"ignore_gfp_wait must be true or false, got {_shown(igw)}",
                             _line(raw, "ignore_gfp_wait"), f"{key}.ignore_gfp_wait")
        return FaultRule(index=i, line=line, at=at, action=action, probability=float(prob),
                         interval=interval, times=times, space=space, ignore_gfp_wait=igw,
                         lines=lines, **filters)

    def action(self, raw: Any, at: str, line: int, key: str) -> FaultAction:
        if isinstance(raw, dict) and len(raw) == 1 and "delay" in raw:
            n = raw["delay"]
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_TICKS:
                raise self.error(f"delay needs a positive number of ticks, at most "
                                 f"{MAX_TICKS:_}, got {_shown(n)}", line, f"{key}.delay")
            act = FaultAction("delay", n)
        elif raw == "delay":
            raise self.error("delay needs ticks: write do: {delay: N}", line, key)
        elif isinstance(raw, str) and raw in ACTIONS:
            act = FaultAction(raw)
        else:
            shown = _shown(raw if isinstance(raw, str) else repr(raw))
            raise self.error(f"unknown action {shown}{did_you_mean(str(raw), ACTIONS)}; "
                             "actions: exhaust, fail, {delay: N}, preempt, io_error",
                             line, key)
        if at not in ACTIONS[act.do]:
            raise self.error(f"{act.do} only works at: {', '.join(ACTIONS[act.do])} "
                             f"(this rule is at: {at})", line, key)
        return act

    def integer(self, raw: dict, name: str, default: int, minimum: int, key: str) -> int:
        v = raw.get(name, default)
        if isinstance(v, bool) or not isinstance(v, int) or not minimum <= v <= MAX_TICKS:
            hint = " (-1 = no limit)" if name == "times" else ""
            raise self.error(f"{name} must be an integer >= {minimum}{hint} and at most "
                             f"{MAX_TICKS:_}, got {_shown(v)}", _line(raw, name),
                             f"{key}.{name}")
        return v


def _shown(value: Any) -> str:
    """``repr`` of a user value, short enough for one line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _line(m: Any, key: Any) -> int | None:
    lines = getattr(m, "lines", None)
    if isinstance(lines, dict):
        return lines.get(key, getattr(m, "line", None))
    return getattr(m, "line", None)


def _item_line(seq: Any, i: int, doc: Any) -> int | None:
    lines = getattr(seq, "lines", None)
    if isinstance(lines, list) and i < len(lines):
        return lines[i]
    return _line(doc, "faults")


# ---------------------------------------------------------------------------- binding
def _check_names(plan: FaultPlan, sc: Any) -> None:
    """Every rule can fire in this scenario: its site exists, and each name or pattern in
    its filters matches something the scenario has (a typo, or a glob that matches
    nothing, is an error instead of a rule that never fires)."""
    tasks = [t.name for t in sc.tasks]
    if sc.memory is not None and sc.memory.kswapd:
        tasks.append("kswapd")
    frames = [*sc.routines, *tasks, *_RECLAIM_FRAMES]
    classes = [c.name for c in sc.memory.classes] if sc.memory is not None else []
    yaml_only = all(t.fn is None for t in sc.tasks)   # Python tasks: sites not known
    ops = _ops(sc) if yaml_only else {}
    names = {"lock": list(sc.locks), "alloc": classes,
             "point": sorted(ops.get("point", ())) if yaml_only else None}
    sites = {"lock": bool(sc.locks), "alloc": sc.memory is not None,
             "io": "io" in ops or not yaml_only, "point": "point" in ops or not yaml_only,
             "step": True}
    for r in plan.rules:
        # A rule without filters is generic (any allocation, if there is one): a plan of
        # such rules fits every scenario. A filtered rule is about this scenario.
        if not sites[r.at] and (r.task or r.within or r.name or r.gfp):
            what = {"lock": "declares no locks", "alloc": "has no memory pool",
                    "io": "has no io steps", "point": "has no point steps"}[r.at]
            raise FaultPlanError(f"this rule can never fire: scenario {sc.path} {what} "
                                 f"(no {r.at} site)", file=plan.path,
                                 line=r.lines.get("at", r.line), key=f"faults[{r.index}].at")
        checks = [("task", r.task, tasks, "task"), ("within", r.within, frames, "routine"),
                  ("name", r.name, names.get(r.at), "lock" if r.at == "lock" else
                   "page class" if r.at == "alloc" else "fault point")]
        for wk, pats, known, what in checks:
            if known is None:
                continue
            for pat in pats:
                if any(fnmatchcase(c, pat) for c in known):
                    continue
                has = f"; it has: {', '.join(known)}" if known else ""
                text = (f"pattern {pat!r} matches no {what}" if _is_glob(pat)
                        else f"no {what} {pat!r}")
                raise FaultPlanError(
                    f"{text} in scenario {sc.path}"
                    + ("" if _is_glob(pat) else did_you_mean(pat, known)) + has,
                    file=plan.path, line=r.lines.get(f"where.{wk}", r.line),
                    key=f"faults[{r.index}].where.{wk}")


def _ops(sc: Any) -> dict[str, set[str]]:
    """Every step op of the scenario's tasks and routines -> the targets it names."""
    out: dict[str, set[str]] = {}
    seen: set[int] = set()

    def walk(steps: Any) -> None:
        for s in steps:
            out.setdefault(s.op, set())
            if isinstance(getattr(s, "target", None), str):
                out[s.op].add(s.target)
            # Every field holding steps (then, else, do, ...), whatever the step kind.
            for value in vars(s).values() if hasattr(s, "__dict__") else \
                    (getattr(s, f, None) for f in getattr(s, "__slots__", ())):
                if isinstance(value, tuple) and value and all(hasattr(v, "op") for v in value) \
                        and id(value) not in seen:
                    seen.add(id(value))
                    walk(value)
    for t in sc.tasks:
        walk(t.steps)
    for routine in sc.routines.values():
        walk(routine.steps)
    return out
