"""What ``vmemu explore`` shows: a progress bar on a terminal, the report, the JSON.

The progress bar is drawn on stderr, and only when both stdout and stderr are terminals
and ``--json`` is off, so pipes, files and CI logs get the report alone.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from .._report import colour_ok, plural
from .._result import Result
from .base import COVER_CAP

#: Seconds between two redraws of the progress numbers.
REDRAW_EVERY = 0.1
#: Seconds between two status lines off a terminal.
STATUS_EVERY = 60.0


class ProgressBar:
    """Schedules done, schedules/s and findings, live; a line per finding above the bar."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        self.progress = Progress(
            SpinnerColumn(), TextColumn("exploring: {task.completed} schedules"),
            TextColumn("{task.fields[rate]}/s"),
            TextColumn("{task.fields[cover]} interleavings"),
            TextColumn("{task.fields[findings]} found"),
            TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("explore", total=None, rate="-", findings=0,
                                           cover=0)
        self.start = time.monotonic()
        self.shown = 0.0
        self.announced = 0      # findings printed above the bar

    @staticmethod
    def maybe(enabled: bool) -> "ProgressBar | StatusLines | _NoBar":
        """A bar when ``enabled`` and attached to a terminal; status lines when enabled
        elsewhere (a CI log, nohup); else a silent stand-in."""
        if not enabled:
            return _NoBar()
        if colour_ok(sys.stdout) and colour_ok(sys.stderr):
            return ProgressBar()
        return StatusLines()

    def __enter__(self) -> "ProgressBar":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def update(self, done: int, findings: int, interleavings: int = 0) -> None:
        now = time.monotonic()
        if now - self.shown < REDRAW_EVERY:
            return
        self.shown = now
        rate = done / max(now - self.start, 1e-9)
        self.progress.update(self.task, completed=done, rate=f"{rate:,.0f}",
                             findings=max(findings, self.announced),
                             cover=count_text(interleavings))

    def found(self, r: Result) -> None:
        self.progress.console.print(
            f"found {r.verdict} at schedule {r.extra.get('schedule')}: "
            f"{r.replay_command()}", highlight=False, markup=False)
        # The count the workers report lags behind the line just printed.
        self.announced += 1
        self.progress.update(self.task, findings=self.announced)


def count_text(interleavings: int) -> str:
    """A live count of distinct interleavings: ``1,000,000+`` once counting stopped."""
    return f"{interleavings:,}" + ("+" if interleavings >= COVER_CAP else "")


class StatusLines:
    """The progress bar's stand-in off a terminal: a line on stderr every
    :data:`STATUS_EVERY` seconds of a long exploration, as AFL without its UI and
    syzkaller do. A log then shows the campaign is alive and how it goes (and CI
    services that end a job silent for ten minutes leave it running); an exploration
    shorter than that prints none."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.next = self.start + STATUS_EVERY

    def __enter__(self) -> "StatusLines":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def update(self, done: int, findings: int, interleavings: int = 0) -> None:
        now = time.monotonic()
        if now < self.next:
            return
        self.next = now + STATUS_EVERY
        took = now - self.start
        try:
            print(f"vmemu: exploring: {done:,} schedules ({done / max(took, 1e-9):,.0f}/s), "
                  f"{count_text(interleavings)} interleavings, {findings} found, "
                  f"{_elapsed(took)}", file=sys.stderr, flush=True)
        except OSError:     # stderr is gone (`2>&1 | head -1`, a full disk): no more
            self.next = float("inf")   # lines, but the exploration goes on to its report

    def found(self, r: Result) -> None:
        pass


def _elapsed(seconds: float) -> str:
    """``12m05s``, or ``3h07m`` from an hour on."""
    s = max(0, int(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class _NoBar:
    """No progress shown (``--json``, ``--log``)."""

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def update(self, done: int, findings: int, interleavings: int = 0) -> None:
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


def _summary(x: Any) -> list[str]:
    """The lines every explore report has: what ran, how much of it was new."""
    lines = []
    if x.first_index:
        lines.append(f"  campaign {x.campaign} resumed at schedule {x.first_index}")
    if x.capped:
        lines.append(f"  distinct interleavings: over {COVER_CAP:,} (vmemu stops counting "
                     "there, to bound memory: the space is far from explored)")
    else:
        lines.append(f"  distinct interleavings: {x.interleavings}"
                     + (" (in the whole campaign)" if x.first_index else ""))
    for k in x.known:
        now = k.get("hits_now", 0)
        again = (f", hit again by {plural(now, 'schedule')} (first {k['again_at']})" if now
                 else ", not hit again")
        lines.append(f"  known from earlier runs of the campaign: {k['verdict']} at schedule "
                     f"{k['schedule']}{again}"
                     + (f": vmemu replay {k['trace']}" if k["trace"] else ""))
    return lines


def explore_text(x: Any, folder: str | None) -> str:
    """The human report of an exploration."""
    if not x.findings and x.failed:
        # A resumed campaign that hit only bugs it knew: headed by the first of them (it
        # is not fixed), not a plain OK; the full report was given when it was found.
        r = x.result
        what = (f"{plural(x.schedules, 'schedule')} explored, {x.known_hits} failed, "
                "every one with a bug the campaign knew")
        return "\n".join(
            [f"vmemu: {r.verdict.upper()} in {r.scenario.name} ({r.scenario.path}) [{what}]",
             f"  {r.message}", *_summary(x), "", f"replay: {r.replay_command()}"])
    if not x.findings:
        # Headed by the exploration, not by its last schedule as if it were one run. A
        # bounded dfs search that ran out is not a plain OK: its line says what it covered.
        r = x.result
        head = r.verdict.upper()
        lines = []
        if x.bound is not None:
            lines.append("  " + x.bound["summary"])
            if not x.bound["whole"]:
                head = "NO FAILURE WITHIN THE BOUND"
        what = f"{plural(x.schedules, 'schedule')} explored, none failed"
        return "\n".join(
            [f"vmemu: {head} in {r.scenario.name} ({r.scenario.path}) [{what}]", *lines,
             f"  last schedule: strategy {r.strategy}"
             + (f", seed {r.seed}" if r.seed is not None else "")
             + f", {plural(r.steps, 'step')}, tick {r.ticks}", *_summary(x)])
    parts = []
    if len(x.findings) > 1:
        parts.append(f"vmemu: {len(x.findings)} distinct failures in "
                     f"{plural(x.schedules, 'schedule')}"
                     + (f" (traces in {folder})" if folder else ""))
        parts.append("")
    for n, f in enumerate(x.findings):
        head = [f"  schedules explored: {x.schedules}"] + _summary(x) if n == 0 else []
        parts.append(_with_lines(f.report(), head, _finding_lines(f)))
        if n + 1 < len(x.findings):
            parts.append("")
    return "\n".join(parts)


def explore_json(x: Any) -> dict[str, Any]:
    """The ``--json`` object: the first finding (or last run) as DESIGN §5, plus
    ``schedules``, ``exhausted`` and a summary of every finding."""
    d = x.result.to_json()
    d["schedules"] = x.schedules
    d["failed"] = x.failed      # (a known bug hit again too: not only new findings)
    d["unrecorded"] = x.unrecorded
    d["exhausted"] = x.exhausted
    d["interleavings"] = x.interleavings
    d["interleavings_capped"] = x.capped
    d["campaign"] = x.campaign
    d["first_schedule"] = x.first_index
    d["known"] = x.known
    if x.bound is not None:
        # dfs: what was covered; "complete": false is never a plain OK.
        d["bound"] = x.bound
        d["complete"] = bool(x.bound["whole"])
        d["summary"] = x.bound["summary"]
    d["findings"] = [{
        "verdict": f.verdict, "message": f.message, "schedule": f.extra.get("schedule"),
        "trace": f.trace_path, "trace_hash": f.trace_hash, "cycle": f.cycle,
        "found_by": f.extra.get("found_by"), "replay": f.replay_command(),
    } for f in x.findings]
    return d


def _age(t: float) -> str:
    return _elapsed(time.time() - t)


def campaigns_text(rows: list[dict[str, Any]]) -> str:
    """``vmemu campaigns``: a table like AFL's status screen, one row per campaign,
    then each finding with the command that replays it."""
    if not rows:
        return "no campaigns yet"
    head = ("id", "scenario", "strategy", "seed", "status", "schedules", "per s",
            "interleavings", "new until", "failures", "updated")
    body = []
    for c in rows:
        rate = c["schedules"] / c["seconds"] if c["seconds"] else 0.0
        body.append((str(c["id"]), c["scenario_name"], c["strategy"], str(c["seed"]),
                     c["status"], f"{c['schedules']:,}", f"{rate:,.0f}",
                     count_text(c["interleavings"]),
                     f"{c['new_cover_at']:,}" if c["interleavings"] < COVER_CAP else "-",
                     str(c["failures"]), _age(c["updated"]) + " ago"))
    # Columns as wide as their widest value (and the changing ones wider from the start,
    # so that the heading does not move as a campaign runs).
    least = {6: 9, 10: 12}
    widths = [max([least.get(i, 0)] + [len(r[i]) for r in [head, *body]])
              for i in range(len(head))]
    out = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in [head, *body]]
    for c in rows:
        for f in c["findings"]:
            out.append(f"  campaign {c['id']}: {f['verdict']} at schedule {f['schedule']}, "
                       f"hit by {plural(f['hits'], 'schedule')}"
                       + (f": vmemu replay {f['trace']}" if f["trace"] else ""))
    return "\n".join(out)


def campaigns_json(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``vmemu campaigns --json``: every campaign with its counters and findings."""
    keep = ("id", "scenario", "scenario_name", "scenario_hash", "faults", "faults_hash",
            "strategy", "params", "seed", "driver", "status", "started", "updated",
            "schedules", "seconds", "interleavings", "new_cover_at", "failures", "findings")
    return {"campaigns": [{**{k: c[k] for k in keep},
                           "interleavings_capped": c["interleavings"] >= COVER_CAP}
                          for c in rows]}
