"""Who can still signal it: the watchdog's view of what each task has left to do.

A task waiting for an event waits for *every live task whose remaining program can
still signal, broadcast or complete that event*: that is the wait-for edge of an event
(crossrelease and DEPT draw the same edge). "Remaining program" is read off the task's
emulated stack: in every frame, the step it is at and everything after it in its body,
a loop's whole body again (it may iterate), the routines those steps call, the tasks they
spawn, and — when they allocate — the writeback routines reclaim may run in their context.
A semaphore used as a signal (``count: 0``) gets the same treatment: it waits for the
tasks that can still ``up`` it without taking it first.

Each step carries its ``reach`` (what it and its bodies can do, computed at load time:
``("signal", E)``, ``("up", S)``, ``("down", S)``, ``("call", R)``, ``("spawn", T)``,
``("stop", T)``, ``("alloc", "")``); here they are unioned along the continuation and
expanded through calls, spawns and writeback. A Python task's program cannot be read, so
it is assumed able to do anything (the edge is then conservative).
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

from .task import DONE, Task

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel

#: What a task whose program cannot be read is assumed able to do.
ANYTHING = frozenset({("*", "*")})


def _expand(k: "Kernel", items: frozenset) -> frozenset:
    """``items`` plus everything the routines, tasks and writebacks they name can do."""
    memo = k.scenario.memo.setdefault("reach", {})
    key = items
    if key in memo:
        return memo[key]
    sc = k.scenario
    specs = {s.name: s for s in sc.tasks}
    writebacks = ([sc.routines[c.writeback] for c in sc.memory.classes if c.writeback]
                  if sc.memory is not None else [])
    out = set(items)
    todo = list(items)
    seen: set = set()
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        op, name = item
        if op == "call":
            more = sc.routines[name].reach
        elif op == "spawn":
            spec = specs.get(name)
            more = ANYTHING if spec is not None and spec.fn is not None else \
                spec.reach if spec is not None else frozenset()
        elif op == "alloc":
            more = frozenset().union(*(r.reach | {("call", r.name)} for r in writebacks))
        else:
            continue
        for m in more:
            if m not in out:
                out.add(m)
                todo.append(m)
    result = frozenset(out)
    memo[key] = result
    return result


def _after(body: tuple, target: Any) -> set | None:
    """What ``body`` can still do from step ``target`` on (None: not in this body)."""
    for i, s in enumerate(body):
        if s is target:
            return set().union(*(x.reach for x in body[i:]))
        if s.body or s.orelse:
            inner = _after(s.body, target)
            if inner is None:
                inner = _after(s.orelse, target)
            if inner is not None:
                if s.op in ("while", "repeat"):
                    inner |= s.reach          # the loop may run its whole body again
                return inner.union(*(x.reach for x in body[i + 1:]))
    return None


def _answers(k: "Kernel") -> dict:
    """The kernel's cache of answers, valid while ``k.steps`` stands: a task id -> what
    that task can still do; ``("signal", event, stopped)`` -> the signallers of a wait."""
    cache = k._reach_cache
    if cache is None or cache[0] != k.steps:
        cache = (k.steps, {})
        k._reach_cache = cache
    return cache[1]


def remaining(k: "Kernel", t: Task) -> frozenset:
    """What ``t`` can still do (expanded), cached while the run does not move."""
    answers = _answers(k)
    got = answers.get(t.tid)
    if got is not None:
        return got
    if t.state is DONE:
        result = frozenset()
    elif t.spec is None:
        # kswapd: it runs writeback routines, in its own context.
        result = _expand(k, frozenset({("alloc", "")}))
    elif t.spec.fn is not None:
        result = ANYTHING
    else:
        items: set = set()
        for f in t.stack:
            if f.body is None:
                continue          # a reclaim frame: the alloc below it is in its body
            rest = _after(f.body, f.step) if f.step is not None else None
            items |= rest if rest is not None else set().union(*(x.reach for x in f.body))
        result = _expand(k, frozenset(items))
    answers[t.tid] = result
    return result


def can(k: "Kernel", t: Task, item: tuple[str, str]) -> bool:
    """Can ``t``'s remaining program do ``item``?"""
    r = remaining(k, t)
    return item in r or r is ANYTHING


def signallers(k: "Kernel", event: str, waiter: Task) -> list[Task]:
    """Live tasks that can still signal ``event`` (or, for an interruptible waiter, stop
    it), in task-id order; the waiter itself too when it could (a cycle of one).

    The answer is the same for every uninterruptible waiter of ``event`` (an
    interruptible one adds its stoppers), so it is computed once per report (while
    ``k.steps`` stands) and shared: the list returned is the cache's, not to be changed.
    Twenty thousand waiters on one event cost one scan of the task table, not twenty
    thousand."""
    stopped = waiter.name if waiter.interruptible else None
    answers = _answers(k)
    key = ("signal", event, stopped)
    got = answers.get(key)
    if got is None:
        got = answers[key] = _scan_signallers(k, event, stopped)
    return got


def _scan_signallers(k: "Kernel", event: str, stopped: str | None) -> list[Task]:
    """One scan of the task table for :func:`signallers`."""
    out = []
    for t in k.tasks:
        if t.state is DONE:
            continue
        if can(k, t, ("signal", event)) or (stopped is not None
                                             and can(k, t, ("stop", stopped))):
            out.append(t)
    return out


#: A list of task names longer than this is cut short in report text.
NAMES_SHOWN = 5
#: How many names a cut list still shows.
NAMES_CUT_TO = 3


def names(tasks: list[Task], also: Task | None = None, joiner: str = " or ") -> str:
    """``"s1 or s2"`` (``joiner`` between the names of a short list); a long list cut
    short: ``"s0, s1, s2 ... and 9997 more"`` (with ``also``, one of ``tasks``, among the
    names shown: a cycle's next task)."""
    if len(tasks) <= NAMES_SHOWN:
        return joiner.join(t.name for t in tasks)
    shown = list(tasks[:NAMES_CUT_TO])
    if also is not None and also not in shown:
        shown.append(also)
    return f"{', '.join(t.name for t in shown)} ... and {len(tasks) - len(shown)} more"


def uppers(k: "Kernel", sem: str, takers: list[Task]) -> list[Task]:
    """Who can still ``up`` semaphore ``sem``: takers whose program still ups it, then
    tasks that up it without taking it first (a semaphore used as a signal).

    Like :func:`signallers`, computed once per report and shared by every waiter (the
    list returned is the cache's): thousands of waiters cost one scan, not one each."""
    answers = _answers(k)
    key = ("up", sem)
    got = answers.get(key)
    if got is None:
        got = answers[key] = _scan_uppers(k, sem, takers)
    return got


def _scan_uppers(k: "Kernel", sem: str, takers: list[Task]) -> list[Task]:
    out = [t for t in takers if t.state is not DONE and can(k, t, ("up", sem))]
    seen = {t.tid for t in out}
    for t in k.tasks:
        if t.state is not DONE and t.tid not in seen and remaining(k, t) is not ANYTHING \
                and can(k, t, ("up", sem)) and not can(k, t, ("down", sem)):
            out.append(t)
    return out
