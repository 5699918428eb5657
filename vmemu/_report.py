"""Human-readable reports, modeled on khungtaskd and lockdep output.

Every failure report ends with the command that replays it.
"""

from __future__ import annotations

import os
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ._result import Result


def plural(n: int, word: str) -> str:
    """``1 step``, ``2 steps``."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def colour_ok(stream: IO[Any]) -> bool:
    """May output to ``stream`` be styled? A terminal, unless ``TERM=dumb`` or
    ``NO_COLOR`` (https://no-color.org) says otherwise."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM") != "dumb" and not os.environ.get("NO_COLOR")


def render_text(r: "Result", *, rich: bool = False) -> str:
    """Text report of one run; a failure's interleaving table is ANSI-styled if ``rich``."""
    lines: list[str] = []
    head = (f"vmemu: {r.verdict.upper()} in {r.scenario.name} ({r.scenario.path}) "
            f"[strategy {r.strategy}"
            + (f", seed {r.seed}" if r.seed is not None else "")
            + f", {plural(r.steps, 'step')}, tick {r.ticks}]")
    lines.append(head)
    if r.message:
        lines.append(f"  {r.message}")
    metrics = r.extra.get("metrics")
    if metrics and metrics["swapped"]:
        lines.extend(swap_lines(metrics, r.extra.get("memory", {}).get("swap")))
    if r.verdict == "ok":
        return "\n".join(lines)
    if r.cycle:
        lines.append("")
        lines.append("  wait-for cycle:")
        for c in r.cycle:
            lines.append(f"    {c['text']}")
    lines.append("")
    lines.append("  tasks:")
    for t in r.tasks:
        state = t["state"]
        desc = f"    {t['name']}: {state}"
        if t["waiting_for"]:
            desc += f", waiting for {t['waiting_for']}"
        if t["holding"]:
            desc += f", holding {', '.join(t['holding'])}"
        lines.append(desc)
        if state == "done":
            continue
        for depth, f in enumerate(reversed(t["stack"])):
            at = f" ({f['at']})" if f["at"] else ""
            step = f": {f['step']}" if f["step"] else ""
            lines.append(f"      {'at' if depth == 0 else 'in'} {f['frame']}{at}{step}")
    mem = r.extra.get("memory")
    if mem:
        lines.append("")
        parts = [f"{mem['free']} of {mem['pages']} pages free (watermarks min {mem['min']} "
                 f"low {mem['low']} high {mem['high']})"]
        used = ", ".join(f"{mem[k]} {_NAMES.get(k, k)}" for k in (
            "allocated", "cached", "writeback", "hogged", "anon", "swapio") if mem.get(k))
        parts += [used] if used else []
        if "swap" in mem:
            sw = mem["swap"]
            parts.append(f"swap {sw['used']} of {sw['slots']} slots used ({sw['policy']})")
        parts += [f"class {c}: {plural(n, 'page')}" for c, n in mem["classes"].items()]
        lines.append("  memory: " + "; ".join(parts))
    extra = r.extra.get("report_sections")
    if extra:
        for section in extra:
            lines.append("")
            lines.extend(section.rstrip("\n").split("\n"))
    from ._table import render_table  # late: only failure reports draw the table
    lines.append("")
    lines.extend("  " + row for row in render_table(r, rich=rich).split("\n"))
    lines.append("")
    lines.append(f"replay: {r.replay_command()}")
    return "\n".join(lines)


#: How the pool's states read in the memory line.
_NAMES = {"anon": "anonymous", "swapio": "under swap IO"}


def swap_lines(m: dict[str, Any], swap: dict[str, Any] | None) -> list[str]:
    """The report's lines about swap, for a run that swapped (``metrics``)."""
    policy = f" ({swap['policy']})" if swap else ""
    return [
        f"  swap{policy}: {plural(m['write_requests'], 'write request')} for "
        f"{plural(m['pages_written'], 'page')} ({m['pages_per_write']} per request), "
        f"{plural(m['read_requests'], 'read request')} for "
        f"{plural(m['pages_read'], 'page')}; {plural(m['seeks'], 'seek')}, device busy "
        f"{plural(m['device_busy_ticks'], 'tick')}",
        f"    {plural(m['swapin_faults'], 'swap-in fault')}; readahead "
        f"{plural(m['readahead_pages'], 'page')}: {m['readahead_used']} used, "
        f"{m['readahead_wasted']} wasted; {m['scanned_per_freed']} pages scanned per page "
        f"freed; reclaim waits: {m['reclaim_waits']}, longest "
        f"{plural(m['reclaim_wait_ticks_max'], 'tick')} (mean {m['reclaim_wait_ticks_mean']})",
    ]


def print_report(r: "Result") -> None:
    """Print a report on stdout (rich styling on a terminal, plain text otherwise)."""
    print(render_text(r, rich=colour_ok(sys.stdout)))
