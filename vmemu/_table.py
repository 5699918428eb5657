"""Lincheck-style interleaving tables: one column per task, one row per step of a run.

Built from the run's canonical event list (``Result.trace.events``: ``[tick, task, op,
arg, line]``, the verdict last) and the task reports at the verdict. A row whose task
differs from the previous row's is a *switch point* (the scheduler chose another task);
a ``block`` that never ended (every blocked task of a ``deadlock``, the hung task of a
``hang``) is highlighted, and for a verdict raised by one task (``bug``, ``assertion``,
``oom``) a last row in that task's column says what went wrong.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ._result import Result

#: Rows shown at most; earlier ones are summarised in one note.
MAX_ROWS = 40
#: Widest a cell may be (longer text wraps onto more lines; nothing is cut).
CELL_WIDTH = 34

_SWITCH, _FOREVER, _FAIL = "->", "!!", "XX"


def _cell(ev: list) -> tuple[str, str]:
    """The text of one event in its task's column, and its ``:line`` suffix."""
    _, _, op, arg, line = ev
    text = op if arg is None else f"{op} {arg}"
    return text, (f" :{line}" if line else "")


def _wrap(text: str, suffix: str, width: int) -> list[str]:
    """A cell's lines: the text wrapped at ``width`` (words kept whole when they fit),
    with the ``:line`` suffix on the last line."""
    import textwrap
    lines = textwrap.wrap(text + suffix, width, break_on_hyphens=False) or [""]
    return lines


def _rows(r: "Result") -> tuple[list[str], list[dict[str, Any]], int]:
    """Columns (task names) and rows; also how many earlier rows were left out."""
    events = [ev for ev in r.trace.events if ev[2] != "verdict"]
    forever: set[int] = set()
    stuck = [t["name"] for t in r.tasks if t["state"] == "blocked"]
    if r.verdict == "hang" and r.culprit:
        stuck = [r.culprit]
    if r.verdict in ("deadlock", "hang"):
        last_block = {}
        for i, ev in enumerate(events):
            if ev[2] == "block":
                last_block[ev[1]] = i
        forever = {last_block[n] for n in stuck if n in last_block}
    rows = []
    prev = None
    for i, ev in enumerate(events):
        text, suffix = _cell(ev)
        rows.append({"tick": ev[0], "task": ev[1], "text": text, "suffix": suffix,
                     "switch": prev is not None and ev[1] != prev, "mark": _FOREVER
                     if i in forever else ""})
        prev = ev[1]
    if r.culprit and r.verdict in ("bug", "assertion", "oom", "livelock"):
        # The failing step itself emits no event (it raised): show it, at its line.
        at = next((t["stack"][-1]["at"] for t in r.tasks
                   if t["name"] == r.culprit and t["stack"]), "")
        line = at.rpartition(":")[2] if at else ""
        rows.append({"tick": r.ticks, "task": r.culprit, "text": r.message or r.verdict,
                     "suffix": f" :{line}" if line.isdigit() else "",
                     "switch": prev is not None and r.culprit != prev, "mark": _FAIL})
    seen = {row["task"] for row in rows}
    cols = [t["name"] for t in r.tasks if t["name"] in seen]
    cols += sorted(seen - set(cols))      # tasks the report does not list (defensive)
    hidden = max(0, len(rows) - MAX_ROWS)
    return cols, rows[hidden:], hidden


def render_table(result: "Result", *, rich: bool) -> str:
    """The interleaving table of a run, as text (ANSI-styled when ``rich``).

    Args:
        result: a finished run (any verdict; the table is meant for failures).
        rich: style it with rich (for a terminal); otherwise plain ASCII text.
    """
    cols, rows, hidden = _rows(result)
    if not rows:
        return "interleaving: no steps were recorded"
    total = hidden + len(rows)
    # Rows are events, not the header's steps (scheduling points): say so.
    legend = (f"interleaving: {total} event{'s' if total != 1 else ''} of {len(cols)} "
              f"task{'s' if len(cols) != 1 else ''} ({_SWITCH} switch point, "
              f"{_FOREVER} blocks forever, {_FAIL} fails; :N is the scenario line)")
    note = (f"(the first {hidden} event{'s' if hidden != 1 else ''} are not shown)"
            if hidden else "")
    if rich:
        return _render_rich(result, cols, rows, legend, note)
    return _render_plain(result, cols, rows, legend, note)


def _render_plain(r: "Result", cols: list[str], rows: list[dict], legend: str,
                  note: str) -> str:
    cells = [_wrap(row["text"], row["suffix"], CELL_WIDTH) for row in rows]
    widths = {c: len(c) for c in cols}
    for cell, row in zip(cells, rows):
        widths[row["task"]] = max(widths[row["task"]], *map(len, cell))
    tick_w = max(4, *(len(str(row["tick"])) for row in rows))
    out = [legend]
    if note:
        out.append(note)
    out.append("    " + "tick".rjust(tick_w) + " | "
               + " | ".join(c.ljust(widths[c]) for c in cols).rstrip())
    out.append("    " + "-" * tick_w + "-+-" + "-+-".join("-" * widths[c] for c in cols))
    for i, row in enumerate(rows):
        mark = row["mark"] or (_SWITCH if row["switch"] else "")
        for j, text in enumerate(cells[i]):
            line = [(text if c == row["task"] else "").ljust(widths[c]) for c in cols]
            head = mark.ljust(3) + " " + str(row["tick"]).rjust(tick_w) if j == 0 \
                else " " * (4 + tick_w)
            out.append(head + " | " + " | ".join(line).rstrip())
    out.append(f"verdict: {r.verdict}" + (f" ({r.message})" if r.message else ""))
    return "\n".join(out)


def _render_rich(r: "Result", cols: list[str], rows: list[dict], legend: str,
                 note: str) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("tick", justify="right", no_wrap=True, style="dim")
    for c in cols:
        table.add_column(c, overflow="fold", max_width=CELL_WIDTH,
                         header_style="bold cyan")
    for row in rows:
        mark = row["mark"] or (_SWITCH if row["switch"] else "")
        style = ("bold red" if row["mark"] == _FOREVER else "bold magenta"
                 if row["mark"] == _FAIL else None)
        cells = []
        for c in cols:
            if c == row["task"]:
                t = Text("\n".join(_wrap(row["text"], row["suffix"], CELL_WIDTH)))
                t.highlight_regex(r" :\d+$", "dim")
                cells.append(t)
            else:
                cells.append("")
        table.add_row(Text(mark, style="yellow" if mark == _SWITCH else ""),
                      str(row["tick"]), *cells, style=style,
                      end_section=False)
    buf = io.StringIO()
    width = 12 + sum(CELL_WIDTH + 3 for _ in cols)
    console = Console(file=buf, force_terminal=True, color_system="standard",
                      width=max(80, width), legacy_windows=False)
    console.print(Text(legend, style="bold"), soft_wrap=True)
    if note:
        console.print(Text(note, style="dim"), soft_wrap=True)
    console.print(table)
    verdict = Text()
    verdict.append(f"verdict: {r.verdict}", style="bold red")
    if r.message:
        verdict.append(f" ({r.message})")
    console.print(verdict, soft_wrap=True)
    return buf.getvalue().rstrip("\n")
