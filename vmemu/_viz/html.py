"""One self-contained HTML file per run, exploration or lockdep session.

Inline CSS, JS and SVG; the timeline's data is one JSON document in the page (compact:
positions are deltas, strings are interned). Nothing is fetched: a Content-Security-Policy
forbids it. The bytes depend only on the run: no dates, no random ids, no dict order
that the run did not fix.
"""

from __future__ import annotations

import json
import os
from html import escape
from importlib import resources
from typing import Any

from .graph import Graph
from .graph import render as render_graph
from .model import ACTS, CATEGORIES, P, STATES, Timeline

_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "img-src data:")
_LEGEND_STATES = (("running", "#2e7d32"), ("runnable", "#c5e1a5"), ("blocked", "#d32f2f"),
                  ("interruptible wait", "#f4c7d0"), ("sleeping", "#90caf9"), ("io", "#7e57c2"),
                  ("delay", "#4fc3f7"), ("reclaim", "#fb8c00"), ("kswapd", "#ffb74d"),
                  ("writeback", "#6d4c41"))
_CATS = ("fault", "error", "block", "wake", "lock", "memory", "verdict", "exit", "other")


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _json_script(data: Any) -> str:
    """JSON safe inside ``<script>``: no ``<`` at all, so no ``</script>`` or ``<!--``."""
    text = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class _Strings:
    """An interned string table (first-seen order, which the run fixes)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {"": 0}
        self.list: list[str] = [""]

    def __call__(self, s: Any) -> int:
        s = "" if s is None else str(s)
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.list)
            self.list.append(s)
        return i


def timeline_data(tl: Timeline, result: Any) -> dict[str, Any]:
    """The page's JSON: the timeline, columnar and delta-encoded (see viz.js)."""
    s = _Strings()
    stuck = {t["name"] for t in result.tasks if t.get("state") == "blocked"} \
        if result.verdict in ("deadlock", "hang") else set()
    if result.verdict == "hang" and result.culprit:
        stuck = {result.culprit}
    state_ix = {n: i for i, n in enumerate(STATES)}
    st = []
    for lane in tl.lanes:
        flat, prev = [], 0
        for p, state, label, line in lane.states:
            flat += [p - prev, state_ix[state], s(label), line]
            prev = p
        st.append(flat)
    act_ix = {n: i for i, n in enumerate(ACTS)}
    acts, prev = [], 0
    for li, a, b, kind, label, line in sorted(tl.acts, key=lambda x: (x[1], x[0])):
        acts += [li, a - prev, b - a, act_ix[kind], s(label), line]
        prev = a
    holds, prev = [], 0
    locks = sorted({h[3] for h in tl.holds})
    for li, a, b, lock, mode, line, row in sorted(tl.holds, key=lambda x: (x[1], x[0], x[6])):
        holds += [li, a - prev, b - a, s(lock), s(mode), line, row]
        prev = a
    cats = list(_CATS)
    cat_ix = {c: i for i, c in enumerate(cats)}
    rows: list[list] = []
    row_ix: dict[tuple, int] = {}
    ev, prev, prev_tick = [], 0, 0
    lane_of = {lane.name: i for i, lane in enumerate(tl.lanes)}
    for i, (tick, task, op, arg, line) in enumerate(tl.events):
        key = (task, op, "" if arg is None else str(arg), line)
        r = row_ix.get(key)
        if r is None:
            r = row_ix[key] = len(rows)
            rows.append([lane_of.get(task, -1), s(op), s(key[2]), line,
                         cat_ix[CATEGORIES.get(op, "other")]])
        p = tl.event_pos[i]
        ev += [r, p - prev, tick - prev_tick]
        prev, prev_tick = p, tick
    pre, prev = [], 0
    for p, a, b in tl.preempts:
        pre += [p - prev, a, b]
        prev = p
    flows, prev = [], 0
    for a, pa, b, pb, idx in tl.flows:
        flows += [a, pa - prev, b, pb - pa, idx]
        prev = pa
    ticks, prev, prev_tick = [], 0, 0
    for p, t in tl.ticks:
        ticks += [p - prev, t - prev_tick]
        prev, prev_tick = p, t
    mem = None
    if tl.mem is not None:
        free, prev = [], 0
        for p, n in tl.mem["free"]:
            free += [p - prev, n]
            prev = p
        mem = {k: tl.mem[k] for k in ("pages", "min", "low", "high", "below_min")}
        mem["free"] = free
    return {
        "P": P, "end": tl.end, "steps": tl.steps, "file": result.scenario.path,
        "lanes": [[lane.name, int(lane.daemon), int(lane.name in stuck)] for lane in tl.lanes],
        "states": list(STATES), "actkinds": list(ACTS), "cats": cats, "locks": locks,
        "st": st, "acts": acts, "holds": holds, "ev": ev, "evrows": rows, "pre": pre,
        "flows": flows, "ticks": ticks, "mem": mem, "forever": _forever(tl, stuck),
        "strs": s.list,
    }


def _forever(tl: Timeline, stuck: set[str]) -> list[int]:
    """The last ``block`` of every task stuck at the verdict (it never ended)."""
    last: dict[str, int] = {}
    for i, (_, task, op, _, _) in enumerate(tl.events):
        if op == "block":
            last[task] = i
    return sorted(last[n] for n in stuck if n in last)


# --------------------------------------------------------------------------- pieces
def page(title: str, header: str, body: list[str], data: Any | None) -> str:
    """The whole document."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="vmemu">',
        '<link rel="icon" href="data:,">',
        f"<title>{escape(title)}</title>",
        f"<style>\n{_asset('viz.css')}</style>",
        "</head><body>",
        header,
    ]
    parts += body
    parts.append('<div id="tip" role="tooltip" hidden></div>')
    if data is not None:
        parts.append(f'<script id="vmemu-data" type="application/json">{_json_script(data)}'
                     "</script>")
    parts.append(f"<script>\n{_asset('viz.js')}</script>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def header(verdict: str, name: str, message: str, facts: list[tuple[str, Any]],
           replay: str | None, replay_label: str = "replay") -> str:
    """Verdict, scenario, facts, and the replay command with its copy button."""
    v = escape(verdict)
    out = ['<header id="header">',
           f'<h1><span class="verdict v-{v}">{v.upper()}</span>{escape(name)}</h1>']
    if message:
        out.append(f'<p class="message">{escape(message)}</p>')
    out.append('<dl class="facts">')
    for k, val in facts:
        if val is None or val == "":
            continue
        out.append(f"<div><dt>{escape(k)}</dt><dd>{escape(str(val))}</dd></div>")
    out.append("</dl>")
    if replay:
        out.append(f'<div class="replay"><span>{escape(replay_label)}:</span>'
                   f'<code id="replay-cmd">{escape(replay)}</code>'
                   '<button class="copy" type="button" data-copy="replay-cmd">copy</button></div>')
    out.append("</header>")
    return "\n".join(out)


def nav(links: list[tuple[str, str]]) -> str:
    return "<nav>" + "".join(f'<a href="#{a}">{escape(t)}</a>' for a, t in links) + "</nav>"


def timeline_section(tl: Timeline, stuck: set[str]) -> str:
    """Toolbar, legend, lane labels and the two canvases (drawn by viz.js)."""
    legend = "".join(f'<span><i class="sw" style="background:{c}"></i>{escape(n)}</span>'
                     for n, c in _LEGEND_STATES)
    legend += ('<span><i class="sw" style="background:#5c6bc0"></i>lock held (one row per '
               'overlapping hold)</span><span>\u25bc fault</span>'
               '<span style="color:#b26a00">\u25c6 preemption</span>'
               '<span style="color:#1e88e5">\u2192 wake-up</span>')
    labels = []
    if tl.mem is not None:
        m = tl.mem
        labels.append('<div class="lane-label mem-label" data-lane="mem">free pages of '
                      f'{m["pages"]}<br>min {m["min"]} \u00b7 low {m["low"]} \u00b7 high '
                      f'{m["high"]}<br>\u25cf at or below min</div>')
    for i, lane in enumerate(tl.lanes):
        cls = "lane-label lane" + (" daemon" if lane.daemon else "") + \
            (" stuck" if lane.name in stuck else "")
        labels.append(f'<div class="{cls}" data-lane="{i}" data-task="{escape(lane.name)}" '
                      f'title="{escape(lane.name)}">{escape(lane.name)}</div>')
    return "\n".join([
        '<section id="timeline-section"><h2>Timeline</h2>',
        f'<p class="note">{len(tl.lanes)} task lanes, {tl.steps} steps, {tl.final_ticks} ticks. '
        "Wheel or w/s to zoom, drag or a/d to pan, double-click or 0 to fit; hover for "
        "details, click to show the scenario line.</p>",
        '<div class="toolbar"><span><button id="zoom-in" type="button">+</button> '
        '<button id="zoom-out" type="button">\u2212</button> '
        '<button id="zoom-fit" type="button">fit</button> '
        '<input id="lane-filter" type="search" placeholder="filter tasks" '
        'aria-label="show only the tasks whose name contains"></span>'
        f'<span class="legend">{legend}</span></div>',
        '<div id="timeline">',
        '<div class="tl-row" id="axis-row"><div class="gutter">steps / ticks</div>'
        '<div class="tl-canvas-wrap"><canvas id="axis"></canvas></div></div>',
        '<div id="lanes-wrap"><div class="tl-row"><div class="gutter" id="labels">',
        *labels,
        '</div><div class="tl-canvas-wrap"><canvas id="tl"></canvas></div></div></div>',
        "</div></section>",
    ])


def waitfor_section(tl: Timeline, result: Any) -> str:
    """The wait-for graph at the verdict, the cycle highlighted, and its table."""
    if not tl.waits:
        return ""
    cyc_edges = set()
    cyc_nodes = set()
    for c in result.cycle:
        t, h, r = "t:" + c["task"], "t:" + c["held_by"], "r:" + c["waits_for"]
        cyc_edges |= {(t, r), (r, h), (t, h)}
        cyc_nodes |= {t, r, h}
    culprit = {"t:" + result.culprit} if result.verdict == "hang" and result.culprit else set()
    g = Graph()
    # Thousands of waiters are no graph anyone can read (and were hundreds of MB of
    # SVG): past WAITERS_DRAWN, only the cycle's (or the hung task's) waits are drawn,
    # and each wait draws its cycle edges and at most EDGES_DRAWN others.
    many = len(tl.waits) > WAITERS_DRAWN
    drawn = [w for w in tl.waits if not many or "t:" + w["task"] in cyc_nodes | culprit]
    left_out = len(tl.waits) - len(drawn)
    for w in drawn:
        t, r = "t:" + w["task"], "r:" + w["resource"]
        blockers = [(b, label) for i, (b, label) in enumerate(w["blockers"])
                    if i < EDGES_DRAWN or "t:" + b in cyc_nodes]
        g.node(t, w["task"], kind="task", cycle=t in cyc_nodes or t in culprit)
        if w["kind"] == "task":
            # A join waits for a task, not for something it holds: one edge, task to task.
            for b, label in blockers:
                g.node("t:" + b, b, kind="task", cycle="t:" + b in cyc_nodes)
                g.edges.append(_edge(t, "t:" + b, label, cyc_edges, w["text"]))
            continue
        g.node(r, w["resource"], kind="resource", cycle=r in cyc_nodes,
               sub=w["nobody"])
        g.edges.append(_edge(t, r, "waits for", cyc_edges, w["text"]))
        for b, label in blockers:
            g.node("t:" + b, b, kind="task", cycle="t:" + b in cyc_nodes)
            g.edges.append(_edge(r, "t:" + b, label, cyc_edges,
                                 f"{w['resource']}: {label} {b}"))
    svg = render_graph(g, svg_id="waitfor-graph", title="wait-for graph at the verdict")
    rows = "".join(f"<tr><td>{escape(w['task'])}</td><td>{escape(w['text'])}</td></tr>"
                   for w in tl.waits)
    cycle = " \u2192 ".join([c["task"] for c in result.cycle] + [result.cycle[0]["task"]]) \
        if result.cycle else ""
    note = (f"The cycle {escape(cycle)} is drawn in red." if cycle else
            "No wait-for cycle: the tasks below wait for something nobody in the cycle holds.")
    if left_out or any(len(w["blockers"]) + w.get("more", 0) > EDGES_DRAWN for w in drawn):
        note += (f" Of {len(tl.waits)} blocked tasks, {len(drawn)} are drawn, each with at "
                 f"most {EDGES_DRAWN} of the tasks it waits for besides the cycle's; the "
                 "table lists every one.")
    return "\n".join(['<section id="waitfor"><h2>Wait-for graph at the verdict</h2>',
                      f'<p class="note">{note} Boxes are tasks, ellipses what they wait for.</p>',
                      svg, '<table class="waits"><thead><tr><th>task</th><th>waits for</th>'
                      f"</tr></thead><tbody>{rows}</tbody></table></section>"])


#: Past this many blocked tasks, the wait-for graph draws only the cycle's.
WAITERS_DRAWN = 40
#: Edges drawn from one wait besides the cycle's.
EDGES_DRAWN = 5


def _edge(a: str, b: str, label: str, cyc: set, title: str) -> Any:
    from .graph import Edge
    return Edge(a, b, label, (a, b) in cyc, title)


def source_section(path: str, abspath: str, hits: dict[int, int], what: str,
                   linked: bool = True) -> str:
    """The scenario file, the lines ``hits`` counts marked and clickable."""
    text = None
    for p in (abspath, path):
        if p and os.path.isfile(p):
            try:
                with open(p, encoding="utf-8") as f:
                    text = f.read()
                break
            except (OSError, UnicodeDecodeError):
                continue
    head = f'<section id="source-section"><h2>Scenario source: {escape(path)}</h2>'
    if text is None:
        return head + '<p class="note">The scenario file could not be read.</p></section>'
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        c = hits.get(n, 0)
        cls = "ln touched" if c else "ln"
        count = f"\u00d7{c}" if c else ""
        rows.append(f'<div class="{cls}" id="L{n}" data-line="{n}"><span class="no">{n}</span>'
                    f'<span class="hits">{count}</span><span class="code">{escape(line)}'
                    "</span></div>")
    click = "; click one to find it in the timeline" if linked else ""
    return "\n".join([head, f'<p class="note">Highlighted: lines {escape(what)} (with how '
                      f"many times){click}.</p>",
                      '<div id="source-wrap"><div id="source">', *rows, "</div></div></section>"])


def table_section(n_events: int) -> str:
    return "\n".join([
        '<section id="interleaving"><h2>Interleaving</h2>',
        f'<p class="note">Every event of the run ({n_events}), one column per task '
        "(\u2192 switch point, !! blocks forever; :N is the scenario line). The last rows "
        "are shown first; older ones on demand.</p>",
        '<button id="itable-more" type="button" hidden>show earlier rows</button>',
        '<div class="table-wrap"><table id="itable"><thead><tr><th></th><th>tick</th>'
        "<th>step</th></tr></thead><tbody></tbody></table></div></section>"])


def line_hits(tl: Timeline) -> dict[int, int]:
    """How often the run was at each scenario line: its events and its state changes."""
    hits: dict[int, int] = {}
    for ev in tl.events:
        if ev[4]:
            hits[ev[4]] = hits.get(ev[4], 0) + 1
    for lane in tl.lanes:
        for _, _, _, line in lane.states:
            if line:
                hits[line] = hits.get(line, 0) + 1
    return hits
