"""A run as Chrome Trace Event JSON, which Perfetto UI and chrome://tracing open.

Layout (the format: "Trace Event Format", the JSON object form ``{"traceEvents": [...]}``):

- process 1 (``vmemu: SCENARIO``): counter tracks ``memory`` (free pages, when the run
  has memory) and ``clock`` (the virtual tick), and the verdict as a global instant;
- one process per task (pid 2, 3, ... in task-id order), whose threads are the task's
  tracks: its state (``running``, ``runnable``, ``blocked`` ... as begin/end slices, with
  every event of the task as an instant and preemptions as instants named so), its
  reclaim/writeback periods, and the locks it held (begin/end; overlapping holds that do
  not nest go to a second track, because slices on one track must nest);
- flow arrows (``s`` -> ``f``) from each wake-up to the next time the woken task ran.

Timestamps are microseconds: a step is 1000 us (1 ms), and the events within one step
are spread inside it in order, so ``ts / 1000`` is the step. The output is a pure
function of the run.
"""

from __future__ import annotations

import json
from typing import Any

from .model import Timeline

#: Thread ids: ``pid * _TID + track``.
_TID = 1000
#: One encoder for every event (``json.dumps`` with options builds one per call).
_ENC = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                        check_circular=False)


def laminar_rows(spans: list[tuple[int, int]]) -> list[int]:
    """A row for each ``(start, end)`` such that the spans of one row are nested or
    disjoint (what B/E slices on one track must be); fewest rows, first fit."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], -spans[i][1], i))
    stacks: list[list[int]] = []
    rows = [0] * len(spans)
    for i in order:
        s, e = spans[i]
        for r, st in enumerate(stacks):
            while st and st[-1] <= s and not (st[-1] == s and e == s):
                st.pop()
            if not st or st[-1] >= e:
                st.append(e)
                rows[i] = r
                break
        else:
            rows[i] = len(stacks)
            stacks.append([e])
    return rows


def _begin_end(spans: list[tuple[int, int, dict]], pid: int, tid: int,
               cat: str) -> list[tuple[int, int, dict]]:
    """B/E events of properly nested spans ``(start, end, fields)``, in track order."""
    out: list[tuple[int, int, dict]] = []
    stack: list[tuple[int, dict]] = []
    seq = 0
    for s, e, f in sorted(spans, key=lambda x: (x[0], -x[1])):
        while stack and stack[-1][0] <= s and not (stack[-1][0] == s == e):
            end, _ = stack.pop()
            out.append((end, seq, {"ph": "E", "pid": pid, "tid": tid, "ts": end}))
            seq += 1
        out.append((s, seq, {"ph": "B", "pid": pid, "tid": tid, "ts": s, "cat": cat, **f}))
        seq += 1
        stack.append((e, f))
    while stack:
        end, _ = stack.pop()
        out.append((end, seq, {"ph": "E", "pid": pid, "tid": tid, "ts": end}))
        seq += 1
    return out


def _meta(kind: str, pid: int, name: str, tid: int | None = None,
          sort: int | None = None) -> list[dict]:
    out = [{"ph": "M", "pid": pid, "name": f"{kind}_name", "args": {"name": name}}]
    if sort is not None:
        out.append({"ph": "M", "pid": pid, "name": f"{kind}_sort_index",
                    "args": {"sort_index": sort}})
    if tid is not None:
        for e in out:
            e["tid"] = tid
    return out


def trace_events(tl: Timeline, result: Any) -> dict[str, Any]:
    """The Trace Event JSON object of a run (see the module docstring)."""
    path = result.scenario.path
    meta: list[dict] = _meta("process", 1, f"vmemu: {result.scenario.name}", sort=0)
    meta += _meta("thread", 1, "run", tid=_TID, sort=0)
    timed: list[tuple[int, int, dict]] = []    # (ts, per-track order, event)

    # counters
    if tl.mem is not None:
        for p, n in tl.mem["free"]:
            timed.append((p, 0, {"ph": "C", "pid": 1, "tid": _TID, "ts": p, "name": "memory",
                                 "args": {"free pages": n}}))
    for p, t in tl.ticks:
        timed.append((p, 0, {"ph": "C", "pid": 1, "tid": _TID, "ts": p, "name": "clock",
                             "args": {"tick": t}}))

    lane_pid = {i: i + 2 for i in range(len(tl.lanes))}
    by_lane_marks: dict[int, list] = {}
    for li, p, idx, cat in tl.marks:
        by_lane_marks.setdefault(li, []).append((p, idx, cat))
    flow_out: dict[int, list] = {}
    flow_in: dict[int, list] = {}
    for n, (a, pa, b, pb, idx) in enumerate(tl.flows):
        flow_out.setdefault(a, []).append((pa, n + 1))
        flow_in.setdefault(b, []).append((pb, n + 1))
    pre_of: dict[int, list] = {}
    for p, a, b in tl.preempts:
        pre_of.setdefault(a, []).append((p, tl.lanes[b].name))

    for li, lane in enumerate(tl.lanes):
        pid = lane_pid[li]
        tid = pid * _TID
        meta += _meta("process", pid, lane.name + (" (daemon)" if lane.daemon else ""),
                      sort=pid)
        meta += _meta("thread", pid, lane.name, tid=tid, sort=0)
        spans = []
        for j, (p, state, label, line) in enumerate(lane.states):
            end = lane.states[j + 1][0] if j + 1 < len(lane.states) else tl.end
            if state == "done" or end <= p:
                continue
            args: dict[str, Any] = {}
            if label:
                args["what"] = label
            if line:
                args["line"] = line
            f = {"name": state}
            if args:
                f["args"] = args
            spans.append((p, end, f))
        track = _begin_end(spans, pid, tid, "state")
        seq = len(track)
        for p, idx, cat in by_lane_marks.get(li, ()):
            _, _, op, arg, line = tl.events[idx]
            args = {"event": idx + 1}
            if arg is not None:
                args["arg"] = arg
            if line:
                args["line"] = line
            track.append((p, seq, {"ph": "i", "s": "t", "pid": pid, "tid": tid, "ts": p,
                                   "name": op, "cat": cat, "args": args}))
            seq += 1
        for p, other in pre_of.get(li, ()):
            track.append((p, seq, {"ph": "i", "s": "t", "pid": pid, "tid": tid, "ts": p,
                                   "name": f"preempted: {other} runs", "cat": "preemption"}))
            seq += 1
        for p, fid in flow_out.get(li, ()):
            track.append((p, seq, {"ph": "s", "pid": pid, "tid": tid, "ts": p, "id": fid,
                                   "name": "wake-up", "cat": "wake"}))
            seq += 1
        for p, fid in flow_in.get(li, ()):
            track.append((p, seq, {"ph": "f", "bp": "e", "pid": pid, "tid": tid, "ts": p,
                                   "id": fid, "name": "wake-up", "cat": "wake"}))
            seq += 1
        timed += _sorted_track(track)

        # Reclaim periods and lock holds get threads of their own under the lane's
        # process, one per row of overlapping spans (rows nest, as B/E slices must).
        acts = [(a[1], a[2], _fields(a[3], a[4], a[5], path)) for a in tl.acts if a[0] == li]
        holds = [(h[1], h[2], _fields(h[3], f"held ({h[4]})", h[5], path))
                 for h in tl.holds if h[0] == li]
        for spans, base, what, cat in ((acts, 1, "reclaim", "reclaim"),
                                       (holds, 100, "locks", "lock")):
            if not spans:
                continue
            rows = laminar_rows([(a, b) for a, b, _ in spans])
            for r in range(max(rows) + 1):
                t = tid + base + r
                meta += _meta("thread", pid, f"{lane.name} {what}" + (f" {r + 1}" if r else ""),
                              tid=t, sort=base + r)
                sp = [span for span, rr in zip(spans, rows) if rr == r]
                timed += _sorted_track(_begin_end(sp, pid, t, cat))

    for li, p, idx, cat in tl.marks:
        if li < 0:
            _, _, op, arg, _ = tl.events[idx]
            timed.append((p, 0, {"ph": "i", "s": "g", "pid": 1, "tid": _TID, "ts": p,
                                 "name": f"{op}: {arg}" if arg is not None else op,
                                 "cat": cat}))
    # Stable sort by time only: each track's own order (E before B at one instant,
    # the slice before the instants and flows inside it) is kept.
    timed.sort(key=lambda x: x[0])
    return {"traceEvents": meta + [e for _, _, e in timed], "displayTimeUnit": "ms",
            "otherData": {"generator": "vmemu", "scenario": result.scenario.name,
                          "scenario_path": path, "verdict": result.verdict,
                          "message": result.message, "replay": result.replay_command(),
                          "trace_hash": result.trace_hash,
                          "time_unit": "1 ms = 1 scheduling step",
                          "line": f"args.line is a line of {path}"}}


def _fields(name: str, what: str, line: int, path: str) -> dict[str, Any]:
    args: dict[str, Any] = {"what": what}
    if line:
        args["line"] = line
    return {"name": name, "args": args}


def _sorted_track(track: list[tuple[int, int, dict]]) -> list[tuple[int, int, dict]]:
    """One track's events by time, keeping their order within one instant."""
    return sorted(track, key=lambda x: (x[0], x[1]))


def dumps(obj: dict[str, Any]) -> str:
    """The JSON text: one event per line, keys sorted (diffable, and the same bytes for
    the same run)."""
    events = obj["traceEvents"]
    rest = {k: v for k, v in obj.items() if k != "traceEvents"}
    enc = _ENC.encode
    lines = [enc(e) for e in events]
    head = enc(rest)
    return head[:-1] + ',"traceEvents":[\n' + ",\n".join(lines) + "\n]}\n"
