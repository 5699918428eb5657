"""The watchdog: deadlock, hung-task and cycle detection over the wait-for graph.

The wait-for graph is implicit in the task table: a BLOCKED task waits for its
``waiting_for`` resource, and a resource is held by ``resource.holders()`` (a lock's owner,
a semaphore's downers, the tasks that could free memory). A cycle is found by following
first blocked holders, like lockdep's chain walk, and printed from its lowest task id so
the same deadlock always reads the same way.
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

from .task import BLOCKED, DONE, Outcome, Task

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import Kernel


def describe_wait(t: Task) -> str:
    """``"mutex B (held by t2)"`` or ``"waitqueue wq (nobody will signal it)"``."""
    r = t.waiting_for
    if r is None:
        return ""
    holders = [h.name for h in r.holders()]
    queued = [b.name for b in r.blockers(t) if b.name not in holders]
    what = r.describe()
    if t.wait_what == "read_lock":
        what += " (for read)"
    if queued:
        what += f" (queued behind {', '.join(queued)})"
    if holders:
        # Memory is not "held": its holders are the tasks that could free some.
        verb = getattr(r, "holders_verb", "held by")
        return f"{what} ({verb} {', '.join(holders)})"
    return f"{what} ({r.nobody_text()})"


def find_cycle(k: "Kernel", start: Task | None = None) -> list[dict[str, str]]:
    """The first wait-for cycle (as ``[{task, waits_for, held_by}]``), or ``[]``.

    Starting points are tried in task-id order (or only ``start``); the cycle is rotated to
    begin at its lowest task id.
    """
    starts = [start] if start is not None else [t for t in k.tasks if t.state is BLOCKED]
    for s in starts:
        path: list[Task] = []
        seen: dict[int, int] = {}
        t: Task | None = s
        while t is not None and t.state is BLOCKED and t.tid not in seen:
            seen[t.tid] = len(path)
            path.append(t)
            nxt = None
            for h in t.waiting_for.blockers(t):
                if h.state is BLOCKED or h is t or h.tid in seen:
                    nxt = h
                    break
            t = nxt
        if t is not None and t.tid in seen:
            cyc = path[seen[t.tid]:]
            low = min(range(len(cyc)), key=lambda i: cyc[i].tid)
            cyc = cyc[low:] + cyc[:low]
            out = []
            for i, c in enumerate(cyc):
                nxt_t = cyc[(i + 1) % len(cyc)]
                out.append({"task": c.name, "waits_for": c.waiting_for.describe(),
                            "held_by": nxt_t.name})
            return out
    return []


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
    """khungtaskd: a task blocked for more than ``hung_task_timeout`` ticks by ``next_tick``."""
    limit = k.limits.hung_task_timeout
    worst: Task | None = None
    for t in k.tasks:
        if t.state is BLOCKED and next_tick - t.blocked_since > limit \
                and not getattr(t.waiting_for, "interruptible", False):  # idle kswapd
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
    want = os.path.abspath(code.co_filename) if code is not None else None
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
            for f in frames
            if want is not None and os.path.abspath(f.f_code.co_filename) == want]


def _live_frames_below(frame: Any) -> list[Any]:
    """The frames called from ``frame`` down to this one, outermost first."""
    import sys
    inner = []
    f = sys._getframe(1)
    while f is not None and f is not frame:
        inner.append(f)
        f = f.f_back
    return inner[::-1] if f is frame else []
