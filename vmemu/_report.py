"""Human-readable reports, modeled on khungtaskd and lockdep output.

Every failure report ends with the command that replays it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ._result import Result


def render_text(r: "Result") -> str:
    """Plain-text report of one run."""
    lines: list[str] = []
    head = (f"vmemu: {r.verdict.upper()} in {r.scenario.name} ({r.scenario.path}) "
            f"[strategy {r.strategy}"
            + (f", seed {r.seed}" if r.seed is not None else "")
            + f", {r.steps} steps, tick {r.ticks}]")
    lines.append(head)
    if r.message:
        lines.append(f"  {r.message}")
    if r.verdict == "ok":
        return "\n".join(lines)
    if r.cycle:
        lines.append("")
        lines.append("  wait-for cycle:")
        for c in r.cycle:
            lines.append(f"    {c['task']} waits for {c['waits_for']}, held by {c['held_by']}")
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
    extra = r.extra.get("report_sections")
    if extra:
        for section in extra:
            lines.append("")
            lines.extend(section.rstrip("\n").split("\n"))
    lines.append("")
    lines.append(f"replay: {r.replay_command()}")
    return "\n".join(lines)


def print_report(r: "Result", extra: dict) -> None:
    """Print a report on stdout (rich styling on a terminal, plain text otherwise)."""
    text = render_text(r)
    if "schedules" in extra:
        head, _, rest = text.partition("\n")
        text = head + f"\n  schedules explored: {extra['schedules']}" + ("\n" + rest if rest else "")
    print(text)
