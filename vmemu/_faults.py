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

from ._errors import FaultPlanError, ScenarioError, did_you_mean
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
_RECLAIM_FRAMES = ("direct reclaim", "balance_pgdat", "synthetic reclaim")


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
def load_fault_plan(path: str | os.PathLike[str]) -> FaultPlan:
    """Load and validate a fault plan file.

    Raises:
        FaultPlanError: one line naming the file, line and key, with a fix.
    """
    from ._scenario._yaml import parse_yaml
    file = os.fspath(path)
    p = Path(file)
    if not p.is_file():
        raise FaultPlanError("no such fault plan file" if not p.exists()
                             else "is a directory, not a fault plan file" if p.is_dir()
                             else "is not a regular file (a fault plan is a .yaml file)",
                             file=file,
                             key="--faults")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise FaultPlanError(f"cannot read the fault plan: {e.strerror or e}", file=file,
                             key="--faults") from None
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
                raise self.error(f"unknown key {k!r} in {what}{did_you_mean(str(k), allowed)}"
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
            raise self.error(f"unknown site {at!r}{did_you_mean(str(at), SITES)}; sites: "
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
                raise self.error(f"expected a name or a list of names, got {where[wk]!r}",
                                 wline, wkey)
            if wk == "gfp":
                for v in vals:
                    if v not in GFP_MASKS:
                        raise self.error(f"unknown GFP mask {v!r}{did_you_mean(v, GFP_MASKS)}"
                                         f"; known masks: {', '.join(GFP_MASKS)}", wline, wkey)
            filters[wk] = tuple(vals)
        prob = raw.get("probability", 1.0)
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
            raise self.error(f"probability must be a number from 0 to 1 (0.25 = one time in "
                             f"four), got {prob!r}", _line(raw, "probability"),
                             f"{key}.probability")
        interval = self.integer(raw, "interval", 1, 1, key)
        times = self.integer(raw, "times", -1, -1, key)
        space = self.integer(raw, "space", 0, 0, key)
        igw = raw.get("ignore_gfp_wait", True)
        if not isinstance(igw, bool):
            raise self.error(f"ignore_gfp_wait must be true or false, got {igw!r}",
                             _line(raw, "ignore_gfp_wait"), f"{key}.ignore_gfp_wait")
        return FaultRule(index=i, line=line, at=at, action=action, probability=float(prob),
                         interval=interval, times=times, space=space, ignore_gfp_wait=igw,
                         lines=lines, **filters)

    def action(self, raw: Any, at: str, line: int, key: str) -> FaultAction:
        if isinstance(raw, dict) and len(raw) == 1 and "delay" in raw:
            n = raw["delay"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise self.error(f"delay needs a positive number of ticks, got {n!r}",
                                 line, f"{key}.delay")
            act = FaultAction("delay", n)
        elif raw == "delay":
            raise self.error("delay needs ticks: write do: {delay: N}", line, key)
        elif isinstance(raw, str) and raw in ACTIONS:
            act = FaultAction(raw)
        else:
            shown = raw if isinstance(raw, str) else repr(raw)
            raise self.error(f"unknown action {shown!r}{did_you_mean(str(raw), ACTIONS)}; "
                             "actions: exhaust, fail, {delay: N}, preempt, io_error",
                             line, key)
        if at not in ACTIONS[act.do]:
            raise self.error(f"{act.do} only works at: {', '.join(ACTIONS[act.do])} "
                             f"(this rule is at: {at})", line, key)
        return act

    def integer(self, raw: dict, name: str, default: int, minimum: int, key: str) -> int:
        v = raw.get(name, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            hint = " (-1 = no limit)" if name == "times" else ""
            raise self.error(f"{name} must be an integer >= {minimum}{hint}, got {v!r}",
                             _line(raw, name), f"{key}.{name}")
        return v


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
    """Every literal (non-glob) name in a filter must exist in the scenario."""
    tasks = [t.name for t in sc.tasks]
    if sc.memory is not None and sc.memory.kswapd:
        tasks.append("kswapd")
    frames = [*sc.routines, *tasks, *_RECLAIM_FRAMES]
    classes = [c.name for c in sc.memory.classes] if sc.memory is not None else []
    names = {"lock": list(sc.locks), "alloc": classes,
             "point": sorted(_points(sc)) if all(t.fn is None for t in sc.tasks) else None}
    for r in plan.rules:
        checks = [("task", r.task, tasks, "task"), ("within", r.within, frames, "routine"),
                  ("name", r.name, names.get(r.at), "lock" if r.at == "lock" else
                   "page class" if r.at == "alloc" else "fault point")]
        for wk, pats, known, what in checks:
            if known is None:
                continue
            for pat in pats:
                if not any(c in pat for c in "*?[") and pat not in known:
                    raise FaultPlanError(
                        f"no {what} {pat!r} in scenario {sc.path}"
                        + did_you_mean(pat, known) + (f"; it has: {', '.join(known)}"
                                                      if known else ""),
                        file=plan.path, line=r.lines.get(f"where.{wk}", r.line),
                        key=f"faults[{r.index}].where.{wk}")


def _points(sc: Any) -> set[str]:
    out: set[str] = set()

    def walk(steps: Any) -> None:
        for s in steps:
            if s.op == "point" and s.target:
                out.add(s.target)
            walk(s.body)
            walk(s.orelse)
    for t in sc.tasks:
        walk(t.steps)
    for routine in sc.routines.values():
        walk(routine.steps)
    return out
