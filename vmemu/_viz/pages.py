"""The three pages: a run (``run``/``replay``), an exploration, a lockdep session."""

from __future__ import annotations

import os
from html import escape
from typing import Any

from .graph import Edge, Graph
from .graph import render as render_graph
from .html import (header, line_hits, nav, page, source_section, table_section,
                   timeline_data, timeline_section, waitfor_section)
from .model import Timeline


def _stuck(result: Any) -> set[str]:
    if result.verdict == "hang" and result.culprit:
        return {result.culprit}
    if result.verdict == "deadlock":
        return {t["name"] for t in result.tasks if t.get("state") == "blocked"}
    return set()


def _run_facts(r: Any) -> list[tuple[str, Any]]:
    return [("scenario", r.scenario.path), ("faults", r.faults), ("strategy", r.strategy),
            ("seed", r.seed), ("steps", r.steps), ("ticks", r.ticks),
            ("tasks", len(r.tasks)), ("trace", r.trace_path),
            ("trace hash", r.trace_hash[:16]), *_swap_facts(r)]


def _swap_facts(r: Any) -> list[tuple[str, Any]]:
    """The swap metrics of a run that swapped (docs/swapout.md)."""
    m = r.extra.get("metrics")
    if not m or not m["swapped"]:
        return []
    policy = r.extra.get("memory", {}).get("swap", {}).get("policy", "")
    return [("swap-out", policy),
            ("swap writes", f"{m['write_requests']} requests, {m['pages_written']} pages"),
            ("swap reads", f"{m['read_requests']} requests, {m['pages_read']} pages"),
            ("readahead", f"{m['readahead_used']} used, {m['readahead_wasted']} wasted"),
            ("device busy", f"{m['device_busy_ticks']} ticks, {m['seeks']} seeks"),
            ("longest reclaim wait", f"{m['reclaim_wait_ticks_max']} ticks")]


def _run_sections(r: Any, tl: Timeline) -> list[str]:
    return [timeline_section(tl, _stuck(r)), waitfor_section(tl, r),
            source_section(r.scenario.path, r.scenario.abspath or "", line_hits(tl),
                           "the run executed"),
            table_section(len(tl.events))]


def run_page(r: Any, tl: Timeline) -> str:
    """The page of one run: header, timeline, wait-for graph, source, interleaving."""
    title = f"vmemu: {r.verdict.upper()} in {r.scenario.name}"
    links = [("timeline-section", "timeline")]
    if tl.waits:
        links.append(("waitfor", "wait-for graph"))
    links += [("source-section", "source"), ("interleaving", "interleaving")]
    head = header(r.verdict, r.scenario.name, r.message, _run_facts(r), r.replay_command())
    return page(title, head, [nav(links)] + _run_sections(r, tl), timeline_data(tl, r))


def explore_page(x: Any, tl: Timeline, out_path: str) -> str:
    """An exploration: its summary and findings, then the reported run's page."""
    r = x.result
    title = f"vmemu explore: {r.verdict.upper()} in {r.scenario.name}"
    facts = [("scenario", r.scenario.path), ("faults", r.faults),
             ("schedules", x.schedules), ("findings", len(x.findings)),
             ("reported", f"schedule {r.extra.get('schedule')}" if x.failed else "last run"),
             ("strategy", r.strategy), ("seed", r.seed), ("steps", r.steps)]
    head = header(r.verdict, r.scenario.name, r.message, facts, r.replay_command())
    links = [("campaign", "exploration"), ("timeline-section", "timeline of the reported run")]
    if tl.waits:
        links.append(("waitfor", "wait-for graph"))
    links += [("source-section", "source"), ("interleaving", "interleaving")]
    body = [nav(links), _campaign_section(x, out_path)] + _run_sections(r, tl)
    return page(title, head, body, timeline_data(tl, r))


def _campaign_section(x: Any, out_path: str) -> str:
    r = x.result
    if x.findings:
        what = (f"{len(x.findings)} distinct failure(s) in {x.schedules} schedules; the "
                "timeline below is the first finding's (lowest schedule index).")
    elif x.failed:
        what = (f"{x.schedules} schedules explored, {x.known_hits} failed, every one with a "
                "bug the campaign knew; the timeline below is the first of them (its saved "
                "trace).")
    elif x.exhausted:
        what = f"All {x.schedules} schedules of the bounded space explored; none failed."
    else:
        what = f"{x.schedules} schedules explored, none failed; the timeline is the last run's."
    out = ['<section id="campaign"><h2>Exploration</h2>', f'<p class="note">{escape(what)}</p>',
           _coverage_chart(x)]
    if x.findings:
        rows = []
        base = os.path.dirname(os.path.abspath(out_path))
        for n, f in enumerate(x.findings):
            link = ""
            if f.trace_path:
                rel = os.path.relpath(os.path.abspath(f.trace_path), base)
                link = f'<a href="{escape(rel)}">{escape(f.trace_path)}</a>'
            cmd = f.replay_command()
            rows.append(f"<tr><td>{n + 1}</td><td>{escape(f.verdict)}</td>"
                        f"<td>{escape(str(f.extra.get('schedule', '')))}</td>"
                        f"<td>{escape(f.message)}</td><td>{link}</td>"
                        f'<td class="cmd"><code id="replay-{n}">{escape(cmd)}</code> '
                        f'<button class="copy" type="button" data-copy="replay-{n}">copy'
                        "</button></td></tr>")
        out.append('<table class="findings"><thead><tr><th>#</th><th>verdict</th>'
                   "<th>schedule</th><th>message</th><th>trace</th><th>replay</th></tr>"
                   f"</thead><tbody>{''.join(rows)}</tbody></table>")
    out.append(f'<p class="note">Reported run: {escape(r.replay_command())}</p></section>')
    return "\n".join(out)


def _coverage_chart(x: Any) -> str:
    """Distinct interleavings against schedules run, when the exploration counted them
    (``x.coverage``: ``[(schedules, distinct), ...]``); a note otherwise."""
    pts = [(int(a), int(b)) for a, b in (getattr(x, "coverage", None) or ())]
    if len(pts) < 2:
        n = getattr(x, "interleavings", None)
        if n is not None:
            return f'<p class="note">Distinct interleavings: {int(n)}.</p>'
        return ('<p class="note">This exploration did not count distinct interleavings '
                "over time.</p>")
    w, h, pad = 520, 180, 40
    mx, my = max(a for a, _ in pts) or 1, max(b for _, b in pts) or 1
    path = " ".join(f"{'M' if i == 0 else 'L'}{pad + (w - 2 * pad) * a / mx:.1f},"
                    f"{h - pad + (2 * pad - h) * b / my:.1f}" for i, (a, b) in enumerate(pts))
    return (f'<svg class="chart" id="coverage-chart" viewBox="0 0 {w} {h}" width="{w}" '
            f'height="{h}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'aria-label="distinct interleavings over schedules">'
            f'<path d="{path}" fill="none" stroke="#1565c0" stroke-width="2"/>'
            f'<text x="{pad}" y="16" font-size="12">{my} distinct interleavings'
            + (" (counting stopped there)" if getattr(x, "capped", False) else "")
            + "</text>"
            f'<text x="{w - pad}" y="{h - 10}" font-size="12" text-anchor="end">{mx} '
            "schedules</text></svg>")


# --------------------------------------------------------------------------- lockdep
def lockdep_page(res: Any) -> str:
    """A lockdep session: the dependency graph with the predicted cycles, the cycles'
    details with their replay commands, and the source lines each dependency came from."""
    g, sc = res.graph, res.scenario
    cyc_edges = {(e.src, e.dst) for c in res.cycles for e in c.edges}
    cyc_nodes = {n for e in cyc_edges for n in e}
    gr = Graph()
    from .._lockdep.graph import PSEUDO_LOCKS
    for name in sorted({n for e in g.edges for n in e} | set(g.recursions)):
        what = getattr(g, "kinds", {}).get(name) or sc.locks.get(name) \
            or sc.events.get(name) or "lock"
        if name in PSEUDO_LOCKS:
            kind, what = "pseudo", "reclaim pseudo-lock"
        else:   # events (lockdep through waits) are drawn like what a task waits for
            kind = "resource" if what in ("waitqueue", "completion", "event") else "lock"
        gr.node(name, name, kind=kind, cycle=name in cyc_nodes, title=f"{name} ({what})")
    for e in sorted(g.edges.values(), key=lambda e: e.order):
        at = e.first.at
        label = f"{e.first.task}" + (f" :{at.rpartition(':')[2]}" if at else "")
        gr.edges.append(Edge(e.src, e.dst, label, (e.src, e.dst) in cyc_edges,
                             f"{e.dst} taken while holding {e.src}: first by {e.first.task} "
                             f"at {e.first.where()} ({e.first.run})"))
    for r in g.recursions.values():
        gr.edges.append(Edge(r.lock, r.lock, f"{r.first.task} again", True,
                             f"recursive locking of {r.lock} by {r.first.task}"))
    svg = render_graph(gr, svg_id="lockdep-graph", title="lock dependency graph")
    n_found = len(res.cycles) + len(g.recursions) + len(g.bad_unlocks)
    verdict = "deadlock" if n_found else "ok"
    badge_msg = (f"{len(res.cycles)} possible circular locking dependenc"
                 f"{'y' if len(res.cycles) == 1 else 'ies'}, {len(g.recursions)} recursive, "
                 f"{len(g.bad_unlocks)} bad unlock(s)") if n_found else "no lock-order problems found"
    facts = [("scenario", sc.path), ("schedules learned", res.runs), ("seed", res.seed),
             ("synthetic writeback", ", ".join(res.synthetic)),
             ("locks", len(g.locks)), ("dependencies", len(g.edges)),
             ("targeted search", res.confirm or None)]
    first = next((c.replay for c in res.cycles if c.replay), None)
    head = header(verdict, f"lockdep: {sc.name}", badge_msg, facts, first,
                  "replay the confirmed deadlock")
    head = head.replace(f">{verdict.upper()}<", f">{'PREDICTED' if n_found else 'OK'}<", 1)
    rows = []
    for n, c in enumerate(res.cycles):
        chain = " \u2192 ".join(c.locks + [c.locks[0]])
        steps = "<br>".join(
            f"{escape(e.dst)} while holding {escape(e.src)}: {escape(e.first.task)} at "
            + _line_link(e.first.at, sc.path) for e in c.chain)
        conf = (f'<code id="cyc-{n}">{escape(c.replay)}</code> <button class="copy" '
                f'type="button" data-copy="cyc-{n}">copy</button> ({escape(c.confirmed_by or "")})'
                if c.replay else "not confirmed by a schedule (a prediction)")
        rows.append(f"<tr><td>{n + 1}</td><td>{escape(chain)}</td><td>{steps}</td>"
                    f"<td>{conf}</td></tr>")
    for r in g.recursions.values():
        rows.append(f"<tr><td>R</td><td>{escape(r.lock)} \u2192 {escape(r.lock)} (recursive)"
                    f"</td><td>{escape(r.first.task)} at {_line_link(r.first.at, sc.path)}</td>"
                    f"<td>{escape(r.replay or 'a prediction')}</td></tr>")
    for b in g.bad_unlocks.values():
        rows.append(f"<tr><td>U</td><td>{escape(b.message)}</td><td>{escape(b.first.task)} "
                    f"at {_line_link(b.first.at, sc.path)}</td><td>{escape(b.replay or '')}"
                    "</td></tr>")
    table = ('<table class="cycles"><thead><tr><th>#</th><th>cycle</th><th>dependencies '
             "(first seen)</th><th>confirmed by</th></tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>") if rows else ""
    hits: dict[int, int] = {}
    for e in g.edges.values():
        for occ in (e.first,):
            for _, at, _ in occ.stack:
                ln = _line_of(at, sc.path)
                if ln:
                    hits[ln] = hits.get(ln, 0) + 1
    body = [nav([("graph", "dependency graph"), ("source-section", "source")]),
            '<section id="graph"><h2>Lock dependency graph</h2>'
            '<p class="note">An arrow A \u2192 B: B was taken while A was held (labelled with '
            "the task and line that first did it). Solid ellipses are events (waiting for "
            "E while holding A gives A \u2192 E; what the signaller took before signalling "
            "gives E \u2192 B); dashed ellipses are reclaim pseudo-locks (an allocation that "
            "may reclaim takes them; a writeback runs under one). The predicted cycles are "
            "red.</p>", svg or '<p class="note">No dependencies.</p>',
            table, "</section>",
            source_section(sc.path, sc.abspath or "", hits, "where dependencies were learned",
                           linked=False)]
    return page(f"vmemu lockdep: {sc.name}", head, body, None)


def _line_of(at: str, path: str) -> int:
    file, _, line = at.rpartition(":")
    return int(line) if line.isdigit() and (not file or file == path) else 0


def _line_link(at: str, path: str) -> str:
    n = _line_of(at, path)
    return f'<a href="#L{n}">{escape(at)}</a>' if n else escape(at or "?")
