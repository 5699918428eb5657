"""What every module of the exploration package shares; it imports none of them.

The package imports one way: ``base`` <- ``minimize`` <- ``work`` <- ``executors`` <-
``store`` <- ``plan`` <- ``coordinator`` <- ``api`` <- ``hypothesis``, ``ui``; the
package's ``__init__`` loads the rest only when :func:`explore` is first called (``import vmemu`` must
stay cheap: no multiprocessing, no sqlite3, no Dask).
"""

from __future__ import annotations

import marshal
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._result import Result
from .._trace import Trace

#: Schedules `explore` and `check` try when the user gives no budget.
DEFAULT_RUNS = 1000
#: The strategy `explore` uses when the user names none.
DEFAULT_STRATEGY = "portfolio"
#: Distinct interleavings counted at most, per exploration and per campaign. An
#: overnight campaign of a long scenario sees a new interleaving in most schedules:
#: counting them all would grow memory (about 110 bytes each) and the store without
#: end. Beyond this many, the count says "over" and tells nothing more: such a space is
#: nowhere near saturated.
COVER_CAP = 1_000_000


@dataclass
class ExploreResult:
    """What an exploration found.

    Attributes:
        result: the first failure found (lowest schedule index); else, in a resumed
            campaign, the first known bug hit again (``extra["known"]``); else the last
            run.
        schedules: schedules run (until the first failure, or in all with ``all``).
        findings: every failing result kept (one per signature with ``all``), by index;
            each has ``trace_path`` set when it was saved, and ``extra["schedule"]``.
        exhausted: True when a systematic strategy explored the whole space.
        interleavings: distinct interleavings among the schedules run (see
            :func:`interleaving`); for a resumed campaign, in the whole campaign.
        capped: the count stopped at :data:`COVER_CAP` (so did the curve).
        bound: a dfs search's coverage (``bound``, ``max_bound``, ``complete``,
            ``whole``, ``summary``: see ``DFSSearch.coverage``), else None.
        campaign: the campaign's id in the store, if one was used.
        first_index: the first schedule index this exploration ran (0, or where a
            resumed campaign went on).
        known: findings of earlier runs of a resumed campaign (``signature`` text,
            ``verdict``, ``schedule``, ``trace``, ``hits`` before this run), which are not
            findings again; ``hits_now`` counts the schedules of this run that hit one,
            ``again_at`` is the first of them (None: not hit).
        coverage: ``(schedules, distinct interleavings)`` points: how coverage grew, for
            seeing when an exploration saturates (the HTML summary draws it).
        unrecorded: why the campaign store stopped taking this exploration's writes
            midway (a full disk ...), if it did; the result itself is complete.
    """

    result: Result
    schedules: int
    findings: list[Result] = field(default_factory=list)
    exhausted: bool = False
    interleavings: int = 0
    bound: dict[str, Any] | None = None
    campaign: int | None = None
    first_index: int = 0
    known: list[dict[str, Any]] = field(default_factory=list)
    coverage: list[tuple[int, int]] = field(default_factory=list)
    unrecorded: str | None = None
    capped: bool = False

    @property
    def verdict(self) -> str:
        return self.result.verdict

    @property
    def known_hits(self) -> int:
        """Schedules of this run that hit a bug the resumed campaign knew."""
        return sum(k.get("hits_now", 0) for k in self.known)

    @property
    def failed(self) -> bool:
        """Did any schedule fail: a new finding, or a bug the campaign knew, hit again?"""
        return bool(self.findings) or self.known_hits > 0


class ExploreInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during an exploration; every finding reported so far is saved.

    Attributes:
        schedules: schedules done when it stopped.
        saved: paths of the saved findings.
        signum: the signal that stopped it (SIGINT for Ctrl-C).
        known_hits: schedules that hit a bug the resumed campaign knew.
    """

    def __init__(self, schedules: int, saved: list[str], signum: int = 2,
                 known_hits: int = 0) -> None:
        super().__init__(f"interrupted after {schedules} schedule"
                         + ("" if schedules == 1 else "s"))
        self.schedules = schedules
        self.saved = saved
        self.signum = signum
        self.known_hits = known_hits


class WorkersLost(RuntimeError):
    """The exploration's worker processes died again and again (the OOM killer, a
    crash of the interpreter): it gave up. Not a finding, and not bad input.

    Attributes:
        schedules: schedules done when it gave up (all of them recorded in a campaign
            store, which a resume goes on from).
    """

    def __init__(self, message: str, schedules: int) -> None:
        super().__init__(message)
        self.schedules = schedules


def signature(r: Result) -> tuple:
    """What makes two findings the same bug: verdict plus the cycle's task/lock shape."""
    return (r.verdict, tuple((c["task"], c["waits_for"]) for c in r.cycle),
            r.culprit if not r.cycle else None)


def finding_path(folder: str | os.PathLike, scenario_name: str, trace: Trace) -> Path:
    """Where a finding is saved: ``FOLDER/SCENARIO-VERDICT-HASH.json``."""
    return Path(folder) / f"{_slug(scenario_name)}-{trace.verdict}-{trace.trace_hash[:12]}.json"


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in s) or "scenario"


def interleaving(events: list) -> int:
    """A 64-bit hash of a run's ordered events, the same in every process.

    Every event the kernel records is a synchronisation operation (lock, unlock, wait,
    signal, wake, block, alloc, free, fault ...), a write of a shared variable, or a
    task's exit, each with its task, place and tick; two schedules with the same events
    in the same order are the same interleaving, however many scheduling decisions
    (a switch between two yields changes no event) told them apart. ``marshal`` format 0
    spells equal event lists identically (no references, no interning flags), and two
    CRCs of it make 64 bits; it costs ~2 us a run, against ~10 for the sha256 of the
    canonical JSON that ``trace_hash`` is.
    """
    data = marshal.dumps(events, 0)
    return (zlib.crc32(data) << 32) | zlib.adler32(data)


@dataclass(frozen=True)
class Spec:
    """What a worker needs to run schedules of one exploration (picklable, small).

    The scenario and fault plan travel as their content, not as paths: a Dask worker on
    another machine has no such file. ``key`` names the loaded pair in a worker's cache.
    """

    scenario_path: str
    scenario_hash: str
    scenario_text: bytes
    faults_path: str | None
    faults_hash: str | None
    faults_text: bytes | None
    strategy: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    driver: str = "direct"
    keep_going: bool = False
    #: Signatures a resumed campaign already knows: found again, they are not findings.
    known: frozenset = frozenset()

    @property
    def key(self) -> tuple:
        return (self.scenario_hash, self.faults_hash, self.scenario_path, self.faults_path)
