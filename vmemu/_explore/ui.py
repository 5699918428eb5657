"""What ``vmemu explore`` shows: a progress bar on a terminal, the report, the JSON.

The progress bar is drawn on stderr, and only when both stdout and stderr are terminals
and ``--json`` is off, so pipes, files and CI logs get the report alone.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ._result import Result

#: Seconds between two redraws of the progress numbers.
REDRAW_EVERY = 0.1


class ProgressBar:
    """Schedules done, schedules/s and findings, live; a line per finding above the bar."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        self.progress = Progress(
            SpinnerColumn(), TextColumn("exploring: {task.completed} schedules"),
            TextColumn("{task.fields[rate]}/s"), TextColumn("{task.fields[findings]} found"),
            TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("explore", total=None, rate="-", findings=0)
        self.start = time.monotonic()
        self.shown = 0.0

    @staticmethod
    def maybe(enabled: bool) -> "ProgressBar | _NoBar":
        """A bar when ``enabled`` and attached to a terminal, else a silent stand-in."""
        if enabled and sys.stdout.isatty() and sys.stderr.isatty():
            return ProgressBar()
        return _NoBar()

    def __enter__(self) -> "ProgressBar":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def update(self, done: int, findings: int) -> None:
        now = time.monotonic()
        if now - self.shown < REDRAW_EVERY:
            return
        self.shown = now
        rate = done / max(now - self.start, 1e-9)
        self.progress.update(self.task, completed=done, rate=f"{rate:,.0f}", findings=findings)

    def found(self, r: Result) -> None:
        self.progress.console.print(
            f"found {r.verdict} at schedule {r.extra.get('schedule')}: "
            f"{r.replay_command()}", highlight=False, markup=False)


class _NoBar:
    """The progress bar when there is no terminal to draw it on."""

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def update(self, done: int, findings: int) -> None:
        pass

    def found(self, r: Result) -> None:
        pass


def _finding_lines(r: Result) -> list[str]:
    i = r.extra.get("schedule")
    lines = [f"  found by schedule {i}: {r.extra.get('found_by')}"]
    before = r.extra.get("minimized_from")
    if before is not None and before > len(r.trace.tape):
        lines.append(f"  minimized from {before} to {len(r.trace.tape)} decisions")
    return lines


def _with_lines(report: str, head: list[str], tail: list[str]) -> str:
    """``report`` with ``head`` after its first line and ``tail`` before its replay line
    (a failure report must end with the command that replays it)."""
    lines = report.split("\n")
    lines[1:1] = head
    if tail and lines[-1].startswith("replay: "):
        blank = lines[-2:-1] == [""]
        at = len(lines) - (2 if blank else 1)
        lines[at:at] = tail
    elif tail:
        lines.extend(tail)
    return "\n".join(lines)


def explore_text(x: Any, folder: str | None) -> str:
    """The human report of an exploration."""
    if not x.findings:
        what = (f"  all {x.schedules} schedules explored: the bounded space is exhausted"
                if x.exhausted else f"  schedules explored: {x.schedules}, none failed")
        return _with_lines(x.result.report(), [what], [])
    parts = []
    if len(x.findings) > 1:
        parts.append(f"vmemu: {len(x.findings)} distinct failures in {x.schedules} schedules"
                     + (f" (traces in {folder})" if folder else ""))
        parts.append("")
    for n, f in enumerate(x.findings):
        head = [f"  schedules explored: {x.schedules}"] if n == 0 else []
        parts.append(_with_lines(f.report(), head, _finding_lines(f)))
        if n + 1 < len(x.findings):
            parts.append("")
    return "\n".join(parts)


def explore_json(x: Any) -> dict[str, Any]:
    """The ``--json`` object: the first finding (or last run) as DESIGN §5, plus
    ``schedules``, ``exhausted`` and a summary of every finding."""
    d = x.result.to_json()
    d["schedules"] = x.schedules
    d["exhausted"] = x.exhausted
    d["findings"] = [{
        "verdict": f.verdict, "message": f.message, "schedule": f.extra.get("schedule"),
        "trace": f.trace_path, "trace_hash": f.trace_hash, "cycle": f.cycle,
        "found_by": f.extra.get("found_by"), "replay": f.replay_command(),
    } for f in x.findings]
    return d
