"""The timeline of one run, as plain data: lanes, state spans, activities, lock holds,
markers, wake-up flows and the memory curve. Both the HTML page and the Perfetto trace
are drawn from it, so they always agree.

Positions are integers: ``step * P + sub``, where ``sub`` orders the things that happened
within one step (a task runs from one scheduling point to the next, and may lock, enter
reclaim and block in that one step); the x axis of every view is the step.

Unknown event ops (new ones appear as vmemu grows) are drawn as generic markers with
their text; lanes come from the tasks the replay saw, spawned ones included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import record as R

#: Position units per step.
P = 1000

#: Lane states, in drawing order of importance (the densest view keeps the first).
STATES = ("blocked", "idle", "running", "io", "sleeping", "delay", "runnable", "done")
#: Activities drawn under the state bar.
ACTS = ("reclaim", "kswapd", "writeback")

#: Event op -> marker category (colours and legend); anything else is "other".
CATEGORIES = {
    "fault": "fault", "exhaust": "fault", "preempt": "fault", "delay": "fault",
    "alloc_fail": "error", "oom": "error",
    "block": "block", "memwait": "block",
    "wake": "wake", "woken": "wake", "signal": "wake", "broadcast": "wake",
    "complete": "wake",
    "lock": "lock", "unlock": "lock", "read_lock": "lock", "read_unlock": "lock",
    "trylock": "lock",
    "alloc": "memory", "free": "memory", "fill": "memory", "reclaim": "memory",
    "reclaim_done": "memory", "reclaim_clean": "memory", "writeback": "memory",
    "kswapd": "memory", "kswapd_done": "memory", "mmap": "memory", "touch": "memory",
    "swapin": "memory", "swap_write": "memory", "swap_read": "memory",
    "verdict": "verdict", "exit": "exit",
}
#: Ops that open and close an activity span of their task.
_OPEN = {"reclaim": "reclaim", "kswapd": "kswapd"}
_CLOSE = {"reclaim_done": "reclaim", "kswapd_done": "kswapd"}


@dataclass
class Lane:
    """One task's lane."""

    name: str
    tid: int
    daemon: bool
    start: int = 0
    #: ``[pos, state, label, line]``: the lane is in ``state`` from ``pos`` to the next.
    states: list[list] = field(default_factory=list)


@dataclass
class Timeline:
    """What :func:`build` returns (see the module docstring for positions).

    Attributes:
        lanes: one per task, in task-id order.
        acts: ``[lane, start, end, kind, label, line]`` reclaim/kswapd/writeback periods.
        holds: ``[lane, start, end, lock, mode, line, row]``; ``row`` stacks overlapping
            holds of one task so that none overlaps another in its row.
        marks: ``[lane, pos, event index, category]`` one per event (lane -1: global).
        preempts: ``[pos, from lane, to lane]`` switches away from a runnable task.
        flows: ``[from lane, from pos, to lane, to pos, event index]`` wake -> next run.
        ticks: ``[pos, tick]`` whenever the virtual clock moved.
        mem: free pages ``[[pos, free], ...]`` and watermarks, or None without memory.
        event_pos: the position of every event.
        end: the last position.
    """

    lanes: list[Lane]
    acts: list[list]
    holds: list[list]
    marks: list[list]
    preempts: list[list]
    flows: list[list]
    ticks: list[list]
    mem: dict[str, Any] | None
    event_pos: list[int]
    events: list[list]
    waits: list[dict[str, Any]]
    end: int
    steps: int
    final_ticks: int


def positions(items: list[tuple]) -> list[int]:
    """``step * P + sub`` for every item; items of one step share it out in order."""
    out = [0] * len(items)
    i, n = 0, len(items)
    while i < n:
        step = items[i][1]
        j = i
        while j < n and items[j][1] == step:
            j += 1
        count = j - i
        for r in range(count):
            out[i + r] = step * P + (r * P) // count
        i = j
    return out


def category(op: str) -> str:
    """The marker category of an event op ("other" for ops this view does not know)."""
    return CATEGORIES.get(op, "other")


def build(rec: R.Recording, memory: Any = None) -> Timeline:
    """Turn a :class:`~.record.Recording` into a :class:`Timeline`.

    Args:
        rec: the recording.
        memory: the scenario's memory model (pages and watermarks), if it has one.
    """
    items = rec.items
    pos = positions(items)
    end = pos[-1] if pos else 0
    lanes: list[Lane] = []
    by_tid: dict[int, int] = {}
    by_name: dict[str, int] = {}
    state: dict[int, str] = {}
    acts: list[list] = []
    open_acts: dict[tuple[int, str], list[list]] = {}
    holds: list[list] = []
    open_holds: dict[str, list[list]] = {}     # lock -> open holds, oldest first
    marks: list[list] = []
    preempts: list[list] = []
    flows: list[list] = []
    pending_flows: dict[int, list[list]] = {}
    ticks: list[list] = [[0, 0]]
    event_pos = [0] * len(rec.events)
    owner = -1          # the lane that has the CPU

    def set_state(li: int, p: int, st: str, label: str = "", line: int = 0) -> None:
        states = lanes[li].states
        if states and states[-1][0] == p:
            states.pop()   # two changes at one position: the later one is what shows
        if states and states[-1][1] == st and states[-1][2] == label:
            return
        states.append([p, st, label, line])
        state[li] = st

    def open_act(li: int, kind: str, p: int, label: str, line: int) -> None:
        a = [li, p, end, kind, label, line]
        acts.append(a)
        open_acts.setdefault((li, kind), []).append(a)

    def close_act(li: int, kind: str, p: int) -> None:
        stack = open_acts.get((li, kind))
        if stack:
            stack.pop()[2] = p

    for i, it in enumerate(items):
        kind, p = it[0], pos[i]
        if kind == R.PICK:
            _, _, tid, prev, line, tick = it
            li = by_tid[tid]
            if owner >= 0 and owner != li and state.get(owner) == "running":
                set_state(owner, p, "runnable", "preempted" if prev >= 0 else "", 0)
            if prev >= 0:
                preempts.append([p, by_tid[prev], li])
            owner = li
            set_state(li, p, "running", "", line)
            for f in pending_flows.pop(li, ()):
                f[3] = p
                flows.append(f)
            if tick != ticks[-1][1]:
                ticks.append([p, tick])
        elif kind == R.LEAVE:
            _, _, tid, st, what, label, line = it
            li = by_tid[tid]
            if st == "runnable":
                continue          # it keeps the CPU until another task is picked
            if st == "blocked":
                shown = "idle" if what == "idle" else "blocked"
            elif st == "sleeping":
                shown = what if what in ("io", "delay") else "sleeping"
            elif st == "done":
                shown = "done"
            else:
                shown = "blocked"
            set_state(li, p, shown, label, line)
            if owner == li:
                owner = -1
        elif kind == R.READY:
            li = by_tid[it[2]]
            if state.get(li) not in ("runnable", "running"):
                set_state(li, p, "runnable")
        elif kind == R.NEW:
            _, _, tid, name, daemon = it
            by_tid[tid] = len(lanes)
            by_name[name] = len(lanes)
            lanes.append(Lane(name, tid, daemon, p))
        elif kind == R.EVENT:
            idx = it[2]
            event_pos[idx] = p
            _, task, op, arg, line = rec.events[idx]
            li = by_name.get(task, -1)
            marks.append([li, p, idx, category(op)])
            if li < 0:
                continue
            if op in _OPEN:
                open_act(li, _OPEN[op], p, f"{op} {arg}" if arg is not None else op, line)
            elif op in _CLOSE:
                close_act(li, _CLOSE[op], p)
            elif op == "wake":
                woken = by_name.get(str(arg), -1)
                if woken >= 0:
                    if state.get(woken) not in ("runnable", "running"):
                        set_state(woken, p, "runnable", f"woken by {task}", line)
                    pending_flows.setdefault(woken, []).append([li, p, woken, end, idx])
        elif kind == R.ACQ:
            _, _, tid, lock, mode, line = it
            h = [by_tid[tid], p, end, lock, mode, line, 0]
            holds.append(h)
            open_holds.setdefault(lock, []).append(h)
        elif kind == R.REL:
            _, _, tid, lock, mode, line = it
            hs = open_holds.get(lock)
            if hs:
                li = by_tid[tid]
                # Its own hold first; a semaphore may be upped by another task.
                k = next((j for j in range(len(hs) - 1, -1, -1) if hs[j][0] == li), 0)
                hs.pop(k)[2] = p
        elif kind == R.WB_BEGIN:
            _, _, tid, cls, line = it
            open_act(by_tid[tid], "writeback", p, f"writeback of {cls}", line)
        elif kind == R.WB_END:
            close_act(by_tid[it[2]], "writeback", p)
    _stack_rows(holds)
    mem = None
    if memory is not None:
        free = [[pos[i], n] for i, n in rec.free]
        below, was = [], False
        for p, n in free:
            now = n <= memory.min
            if now and not was:
                below.append(p)
            was = now
        mem = {"pages": memory.pages, "min": memory.min, "low": memory.low,
               "high": memory.high, "free": free, "below_min": below}
    return Timeline(lanes, acts, holds, marks, preempts, flows, ticks, mem, event_pos,
                    rec.events, rec.waits, end, rec.steps, rec.ticks)


def _stack_rows(holds: list[list]) -> None:
    """Give every hold the first row of its lane where it overlaps nothing (so that each
    row is a valid sequence of slices: Perfetto wants them nested, we want them apart)."""
    rows: dict[int, list[int]] = {}
    for h in sorted(holds, key=lambda h: (h[0], h[1], -h[2])):
        ends = rows.setdefault(h[0], [])
        for r, e in enumerate(ends):
            if e <= h[1]:
                ends[r] = h[2]
                h[6] = r
                break
        else:
            h[6] = len(ends)
            ends.append(h[2])
