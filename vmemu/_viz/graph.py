"""Small directed graphs as inline SVG: the wait-for graph of a deadlock and lockdep's
dependency graph, each with its cycle highlighted.

The layout is computed here, deterministically: the cycle's nodes on a circle in cycle
order (so the cycle reads as a ring), every other node on an outer ring in a fixed order.
Edges are gentle arcs, so that the two directions between one pair of nodes (a task
waiting for a lock it holds itself) stay apart; each carries its name at its middle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

#: Pixels per character of the node font (12px monospace), for sizing boxes.
_CHAR = 7.3


@dataclass
class Node:
    id: str
    label: str
    kind: str = "task"            # task | resource | lock | pseudo
    cycle: bool = False
    title: str = ""
    sub: str = ""                 # a second, smaller line


@dataclass
class Edge:
    src: str
    dst: str
    label: str = ""
    cycle: bool = False
    title: str = ""


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def node(self, id: str, label: str, **kw: object) -> Node:
        for n in self.nodes:
            if n.id == id:
                for k, v in kw.items():
                    if v:
                        setattr(n, k, v)
                return n
        n = Node(id, label, **kw)  # type: ignore[arg-type]
        self.nodes.append(n)
        return n


def _size(n: Node) -> tuple[float, float]:
    chars = max(len(n.label), int(len(n.sub) * 0.85))
    return chars * _CHAR / 2 + 12, (17 if n.sub else 11) + 2


def layout(g: Graph) -> dict[str, tuple[float, float]]:
    """Centre of every node: cycle nodes on an inner circle, the others outside it."""
    inner = [n for n in g.nodes if n.cycle]
    outer = [n for n in g.nodes if not n.cycle]
    if not inner:
        inner, outer = outer, []
    pos: dict[str, tuple[float, float]] = {}

    def ring(nodes: list[Node], r: float, phase: float) -> None:
        for i, n in enumerate(nodes):
            a = phase + 2 * math.pi * i / max(1, len(nodes))
            pos[n.id] = (r * math.cos(a), r * math.sin(a))

    def radius(nodes: list[Node], minimum: float) -> float:
        # Room along the circle for every box and a label between neighbours.
        need = sum(2 * _size(n)[0] + 150 for n in nodes)
        return max(minimum, need / (2 * math.pi))

    r1 = radius(inner, 70.0) if len(inner) > 1 else 0.0
    if len(inner) == 2:   # side by side, with room for a readable arrow between them
        r1 = max(r1, (_size(inner[0])[0] + _size(inner[1])[0]) / 2 + 80)
    # Two nodes side by side (their two arcs and labels then stack vertically, and the
    # picture is wide rather than tall); rings of more start at the top.
    ring(inner, r1, math.pi if len(inner) == 2 else -math.pi / 2)
    if outer:
        r2 = max(radius(outer, 0.0), 140.0 if len(inner) == 2 else r1 + 130)
        # Around a side-by-side pair, start above it: the others then sit above and below.
        phase = -math.pi / 2 if len(inner) == 2 else -math.pi / 2 + math.pi / max(2, len(outer))
        ring(outer, r2, phase)
    return pos


def _clip(n: Node, cx: float, cy: float, tx: float, ty: float) -> tuple[float, float]:
    """Where the line from a node's centre towards (tx, ty) leaves its shape."""
    hw, hh = _size(n)
    dx, dy = tx - cx, ty - cy
    if dx == 0 and dy == 0:
        return cx, cy
    if n.kind in ("resource", "pseudo"):   # an ellipse
        t = 1 / math.hypot(dx / (hw + 8), dy / (hh + 4))
    else:
        t = min(hw / abs(dx) if dx else math.inf, hh / abs(dy) if dy else math.inf)
    return cx + dx * t, cy + dy * t


def _f(v: float) -> str:
    """A coordinate, printed the same way everywhere (one decimal)."""
    s = f"{v:.1f}"
    return "0" if s in ("0.0", "-0.0") else s.removesuffix(".0")


def _edge_geometry(e: Edge, pos: dict, by_id: dict,
                   pairs: set) -> tuple[str, float, float, str]:
    """The SVG path of an edge, and where (and how anchored) its label goes.

    An edge bends away from the middle of the picture (its label on the outside), except
    when the reverse edge exists too: the two then bend to opposite sides.
    """
    (sx, sy), (tx, ty) = pos[e.src], pos[e.dst]
    if e.src == e.dst:
        hw, hh = _size(by_id[e.src])
        path = (f"M{_f(sx + hw * 0.4)},{_f(sy - hh)} C{_f(sx + hw * 0.4 + 40)},"
                f"{_f(sy - hh - 60)} {_f(sx - hw * 0.4 - 40)},{_f(sy - hh - 60)} "
                f"{_f(sx - hw * 0.4)},{_f(sy - hh)}")
        return path, sx, sy - hh - 52, "middle"
    mx, my = (sx + tx) / 2, (sy + ty) / 2
    dx, dy = tx - sx, ty - sy
    dist = math.hypot(dx, dy) or 1.0
    bend = min(0.22 * dist, 60.0)
    nx, ny = -dy / dist, dx / dist          # the left normal of the edge
    if (e.dst, e.src) not in pairs and nx * mx + ny * my < 0:
        nx, ny = -nx, -ny                   # outwards, away from the middle
    cx, cy = mx + nx * bend, my + ny * bend
    ax, ay = _clip(by_id[e.src], sx, sy, cx, cy)
    bx, by = _clip(by_id[e.dst], tx, ty, cx, cy)
    path = f"M{_f(ax)},{_f(ay)} Q{_f(cx)},{_f(cy)} {_f(bx)},{_f(by)}"
    lx, ly = 0.25 * ax + 0.5 * cx + 0.25 * bx, 0.25 * ay + 0.5 * cy + 0.25 * by
    # The label goes on the outer side of the arc, so that the two directions between
    # one pair of nodes do not write over each other.
    anchor = "start" if nx > 0.3 else "end" if nx < -0.3 else "middle"
    lx += 5 if nx > 0.3 else -5 if nx < -0.3 else 0
    ly += 0 if anchor != "middle" else (10 if ny > 0 else -10)
    return path, lx, ly, anchor


def render(g: Graph, *, svg_id: str, title: str, zoom: float = 1.2) -> str:
    """The graph as an ``<svg>`` element (empty string when it has no node); ``zoom``
    scales its on-screen size."""
    if not g.nodes:
        return ""
    pos = layout(g)
    size = {n.id: _size(n) for n in g.nodes}
    by_id = {n.id: n for n in g.nodes}
    pairs = {(e.src, e.dst) for e in g.edges}
    edges = [(e, _edge_geometry(e, pos, by_id, pairs)) for e in g.edges
             if e.src in pos and e.dst in pos]
    xs = [pos[n.id][0] + s * (size[n.id][0] + 8) for n in g.nodes for s in (-1, 1)]
    ys = [pos[n.id][1] + s * (size[n.id][1] + 4) for n in g.nodes for s in (-1, 1)]
    for e, (_, lx, ly, anchor) in edges:   # labels are 11px text: ~6.2px a character
        w = len(e.label) * 6.2
        left = lx - w / 2 if anchor == "middle" else lx - w if anchor == "end" else lx
        xs += [left, left + w]
        ys += [ly - 8, ly + 8]
    pad = 16
    x0, y0 = min(xs) - pad, min(ys) - pad
    w, h = max(xs) - min(xs) + 2 * pad, max(ys) - min(ys) + 2 * pad
    out = [f'<svg id="{svg_id}" class="graph" xmlns="http://www.w3.org/2000/svg" '
           f'viewBox="{_f(x0)} {_f(y0)} {_f(w)} {_f(h)}" width="{_f(w * zoom)}" '
           f'height="{_f(h * zoom)}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>",
           "<defs>"]
    for name, colour in (("a", "#8a939c"), ("c", "#c62828")):
        out.append(f'<marker id="{svg_id}-{name}" viewBox="0 0 10 10" refX="9" refY="5" '
                   'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
                   f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')
    out.append("</defs>")
    for e, (path, lx, ly, anchor) in sorted(edges, key=lambda x: x[0].cycle):  # cycle on top
        cls = "edge cycle" if e.cycle else "edge"
        marker = f"{svg_id}-{'c' if e.cycle else 'a'}"
        tip = f"<title>{escape(e.title or e.label)}</title>" if (e.title or e.label) else ""
        out.append(f'<g class="{cls}" data-src="{escape(e.src)}" data-dst="{escape(e.dst)}">'
                   f'{tip}<path d="{path}" marker-end="url(#{marker})"/>')
        if e.label:
            out.append(f'<text x="{_f(lx)}" y="{_f(ly)}" text-anchor="{anchor}" '
                       f'dominant-baseline="middle" paint-order="stroke" stroke="#fff" '
                       f'stroke-width="4">{escape(e.label)}</text>')
        out.append("</g>")
    for n in g.nodes:
        x, y = pos[n.id]
        hw, hh = size[n.id]
        cls = f"node {n.kind}" + (" cycle" if n.cycle else "")
        tip = f"<title>{escape(n.title or n.label)}</title>"
        out.append(f'<g class="{cls}" data-id="{escape(n.id)}">{tip}')
        if n.kind in ("resource", "pseudo"):
            dash = ' stroke-dasharray="5 3"' if n.kind == "pseudo" else ""
            out.append(f'<ellipse cx="{_f(x)}" cy="{_f(y)}" rx="{_f(hw + 8)}" '
                       f'ry="{_f(hh + 4)}"{dash}/>')
        else:
            out.append(f'<rect x="{_f(x - hw)}" y="{_f(y - hh)}" width="{_f(2 * hw)}" '
                       f'height="{_f(2 * hh)}" rx="5"/>')
        ty = y - 6 if n.sub else y
        out.append(f'<text x="{_f(x)}" y="{_f(ty)}" text-anchor="middle" '
                   f'dominant-baseline="middle">{escape(n.label)}</text>')
        if n.sub:
            out.append(f'<text x="{_f(x)}" y="{_f(y + 9)}" text-anchor="middle" '
                       f'dominant-baseline="middle" style="font-size:10px;fill:#5b6570">'
                       f'{escape(n.sub)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
