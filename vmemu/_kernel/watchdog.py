"""The watchdog: deadlock, hung-task and cycle detection over the wait-for graph.

The wait-for graph is implicit in the task table: a BLOCKED task waits for its
``waiting_for`` resource, and the resource says whom that wait waits for
(``resource.blockers(t)``): a lock's owner (and waiters queued ahead of it), every task
that can still signal an event or up a semaphore used as a signal (``_reach.py``), a
joined task, the tasks that could free memory. A cycle may mix these edges; it is found by
a depth-first search and printed from its lowest task id so the same deadlock always
reads the same way, each edge named ("waits for mutex X held by T", "waits for completion
E, which only T can complete", "joins T").
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

from .task import BLOCKED, DONE, Outcome, Task

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel


def describe_wait(t: Task) -> str:
    """``"mutex B (held by t2)"`` or ``"waitqueue wq (nobody can signal it)"``."""
    r = t.waiting_for
    if r is None:
        return ""
    return r.edge(t)[0]


#: The kind of each resource's edge in a cycle (``cycle[i]["edge"]`` in JSON).
_EDGE_KINDS = {"waitqueue": "event", "completion": "event", "task": "join",
               "memory": "memory"}


def find_cycle(k: "Kernel", start: Task | None = None) -> list[dict[str, str]]:
    """The first wait-for cycle (as ``[{task, waits_for, held_by, edge, text}]``), or ``[]``.

    A depth-first search over blocked tasks, whose edges lead to every task a wait waits
    for (a lock's holder, each task that can still signal an event, a joined task...),
    from each blocked task in task-id order (or only from ``start``). What is found is the
    cycle itself, never the path that led into it, rotated to begin at its lowest task id.
    """
    starts = [start] if start is not None else [t for t in k.tasks if t.state is BLOCKED]
    done: set[int] = set()       # explored without finding a cycle through them
    # Blocker lists fully explored (by id; `keep` holds them so ids stay unique): a
    # resource that answers many waiters with one shared list (every waiter of an event)
    # has all of that list's tasks in `done` once one waiter was explored, so the next
    # waiter need not walk it again (20,000 waiters would walk 10,000 signallers each).
    explored: set[int] = set()
    keep: list[Any] = []
    for s in starts:
        if s.tid in done or s.state is not BLOCKED:
            continue
        path: list[Task] = [s]
        on_path = {s.tid: 0}
        lists = [_blockers(s, explored, keep)]
        stack = [_blocked(lists[-1])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                explored.add(id(lists.pop()))
                gone = path.pop()
                del on_path[gone.tid]
                done.add(gone.tid)
                continue
            if nxt.tid in on_path:
                return _cycle(path[on_path[nxt.tid]:])
            if nxt.tid in done:
                continue
            on_path[nxt.tid] = len(path)
            path.append(nxt)
            lists.append(_blockers(nxt, explored, keep))
            stack.append(_blocked(lists[-1]))
    return []


def _blockers(t: Task, explored: set[int], keep: list) -> Any:
    """Whom ``t`` waits for, in the order its resource lists them; ``()`` when that very
    list was explored already (all of it is done)."""
    got = t.waiting_for.blockers(t)
    if id(got) in explored:
        return ()           # a constant: marking it explored cannot hit a live list
    keep.append(got)
    return got


def _blocked(blockers: Any) -> Any:
    """The blocked ones among ``blockers``, lazily (a cycle is often found at the first)."""
    return (b for b in blockers if b.state is BLOCKED)


def _cycle(cyc: list[Task]) -> list[dict[str, str]]:
    low = min(range(len(cyc)), key=lambda i: cyc[i].tid)
    cyc = cyc[low:] + cyc[:low]
    out = []
    for i, c in enumerate(cyc):
        nxt = cyc[(i + 1) % len(cyc)]
        r = c.waiting_for
        out.append({"task": c.name, "waits_for": r.describe(), "held_by": nxt.name,
                    "edge": _EDGE_KINDS.get(r.kind, "lock"), "text": r.cycle_text(c, nxt)})
    return out


def deadlock_outcome(k: "Kernel") -> Outcome:
    """Nothing runnable, no timers, some task unfinished: a deadlock."""
    blocked = [t for t in k.tasks if t.state is BLOCKED and not t.daemon]
    if not blocked:
        blocked = [t for t in k.tasks if t.state is BLOCKED]
    first = blocked[0] if blocked else None
    cycle = find_cycle(k)
    if cycle:
        chain = " -> ".join([c["task"] for c in cycle] + [cycle[0]["task"]])
        msg = f"wait-for cycle {chain}"
    elif first is not None:
        msg = f"{first.name} waits for {describe_wait(first)}"
    else:  # pragma: no cover - defensive
        msg = "no task can run"
    return Outcome("deadlock", msg, first.name if first else None)


def hung_task(k: "Kernel", next_tick: int) -> Outcome | None:
    """khungtaskd: a task blocked uninterruptibly (or killably) for more than
    ``hung_task_timeout`` ticks by ``next_tick``; the one blocked longest (lowest task id
    among equals). Interruptible sleeps never hang."""
    limit = k.limits.hung_task_timeout
    worst: Task | None = None
    for t in k.tasks:
        if t.state is BLOCKED and not t.interruptible and next_tick - t.blocked_since > limit:
            if worst is None or t.blocked_since < worst.blocked_since:
                worst = t
    if worst is None:
        return None
    # Report the moment the threshold was crossed, not the (later) next timer.
    k.now = max(k.now, worst.blocked_since + limit + 1)
    return Outcome("hang", f"INFO: task {worst.name} blocked for more than {limit} ticks "
                   f"waiting for {describe_wait(worst)}", worst.name)


def task_reports(k: "Kernel") -> list[dict[str, Any]]:
    """Every task: name, state, waiting_for, holding, and its emulated stack."""
    out = []
    for t in k.tasks:
        holding = []
        for r in t.held:
            if r.name not in holding:
                holding.append(r.name)
        stack = []
        for f in t.stack:
            stack.append({"frame": f.name, "at": str(f.loc) if f.loc else "",
                          "step": f.what})
        if t.spec is not None and t.spec.fn is not None and t.state is not DONE:
            stack = _python_stack(t) or stack
        out.append({
            "name": t.name,
            "state": t.state if t.state is not DONE else "done",
            "waiting_for": describe_wait(t) if t.state is BLOCKED else "",
            "holding": holding,
            "stack": stack,
        })
    return out


def _python_stack(t: Task) -> list[dict[str, str]]:
    """The frames of a Python task's coroutine chain that lie in its scenario file."""
    import os
    # The frames' file is the one the task's code was compiled from: a scenario module is
    # shared by every path with the same content, so that may not be spec.loc's path.
    fn = t.spec.fn
    code = getattr(fn, "__code__", None) or getattr(getattr(fn, "func", None), "__code__", None)
    if code is None or t.spec.loc is None:   # no scenario file (a task vmemu made itself)
        return []
    want = os.path.abspath(code.co_filename)
    frames = []
    coro = t.coro
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        if getattr(coro, "cr_running", False) or getattr(coro, "gi_running", False):
            # The task running now (the asyncio driver asks for the next task from inside
            # the parking one): what it awaits is not linked yet, but is on the call stack.
            frames += _live_frames_below(frame)
            break
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return [{"frame": f.f_code.co_name, "at": f"{t.spec.loc.file}:{f.f_lineno}", "step": ""}
            for f in frames if os.path.abspath(f.f_code.co_filename) == want]


def _live_frames_below(frame: Any) -> list[Any]:
    """The frames called from ``frame`` down to this one, outermost first."""
    import sys
    inner = []
    f = sys._getframe(1)
    while f is not None and f is not frame:
        inner.append(f)
        f = f.f_back
    return inner[::-1] if f is frame else []
