"""What an exploration keeps of its failures: one finding per bug, saved, minimized.

Blocks report failures as raw traces (:mod:`~vmemu._explore.work`). :class:`Findings`
keeps the lowest schedule index of each signature (with ``keep_going``), or the lowest
failure of all (without); it saves each as found, atomically, so that a crash or Ctrl-C
loses nothing, and once a finding is final (no lower schedule can still fail) replays it
here, minimizes it and saves the minimal trace in place of the raw one. The campaign
store gets each finding with the block that found it, as found (:meth:`store_rows`), and
the minimal trace once final. A bug a resumed campaign knew is not a finding: when nothing new turns
up, :meth:`Findings.known_result` reports the first known bug hit again.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from .._errors import UserError
from .._result import Result
from .._run import run
from .._scenario.model import Scenario
from .._strategies import ReplayStrategy
from .._trace import Trace
from .base import Spec, finding_path
from .minimize import minimize as minimize_result
from .store import Store, sig_from_text


class Finding:
    """One kept failure: where it was found, its trace, and once final its Result."""

    __slots__ = ("index", "sig", "trace", "path", "result", "final", "stored_as")

    def __init__(self, index: int, sig: tuple, trace: Trace) -> None:
        self.index, self.sig, self.trace = index, sig, trace
        self.path: str | None = None
        self.result: Result | None = None
        self.final = False
        # (file, trace hash) the campaign store has for it; None: not stored yet.
        self.stored_as: tuple[str | None, str] | None = None

    @property
    def row(self) -> tuple[str | None, str]:
        """(file, trace hash) as the store should have them now: final once minimized."""
        r = self.result
        return self.path, (r.trace_hash if r is not None else self.trace.trace_hash)


class Findings:
    """The findings of one exploration (see the module docstring).

    Attributes:
        kept: the kept findings by signature.
        first: the lowest failing index so far without ``keep_going`` (blocks above it
            need not run), else 2**62.
    """

    def __init__(self, spec: Spec, sc: Scenario, plan: Any, folder: Any, minimize: bool,
                 on_finding: Any, db: Store | None, cid: int | None,
                 known: list[dict[str, Any]]) -> None:
        self.spec, self.sc, self.plan = spec, sc, plan
        self.folder, self.minimize, self.on_finding = folder, minimize, on_finding
        self.db, self.cid, self.known = db, cid, known
        self.kept: dict[tuple, Finding] = {}
        # Known bugs hit below the schedule the campaign recorded for them (see lower).
        self.better: dict[tuple, Finding] = {}
        self.first = 2**62
        self._trash: list[str] = []     # replaced trace files, to delete (empty_trash)

    def sorted(self) -> list[Finding]:
        return sorted(self.kept.values(), key=lambda f: f.index)

    def limit(self) -> int:
        """The highest schedule index that counts: the first failure's without
        ``keep_going`` (only some job counts ran beyond it), else every one."""
        kept = self.sorted()
        return kept[0].index if kept and not self.spec.keep_going else 2**62

    def add(self, i: int, sig: tuple, trace: Trace) -> None:
        """A block found ``sig`` at schedule ``i``."""
        keep_going = self.spec.keep_going
        old = self.kept.get(sig) if keep_going else min(self.kept.values(),
                                                        key=lambda f: f.index, default=None)
        if old is not None and old.index <= i:
            return      # the same bug lower down, or beyond the first failure
        f = Finding(i, sig, trace)
        if self.folder is not None:
            f.path = self._save(trace)
        if old is not None:
            del self.kept[old.sig]
            self._discard(old.path, keep=f.path)
        self.kept[sig] = f
        if keep_going:
            self._final(f)      # with --all every signature's lowest index so far counts
        else:
            self.first = min(self.first, i)

    def lower(self, i: int, sig: tuple, trace: Trace) -> None:
        """A bug the resumed campaign knew, hit again at schedule ``i``. Below the
        schedule the campaign recorded for it (an interrupted ``--all`` exploration may
        record a higher block's hit first, and the lower block never), it becomes the
        campaign's record of that bug, as one uninterrupted exploration would have kept
        it: saved as found, stored with its block, minimized at the end. It is still a
        known bug, not a finding of this exploration."""
        k = self._known(sig)
        old = self.better.get(sig)
        if k is None or i >= k["schedule"] or (old is not None and old.index <= i):
            return
        f = Finding(i, sig, trace)
        if self.folder is not None:
            f.path = self._save(trace)
        if old is not None:
            self._discard(old.path, keep=f.path)
        self.better[sig] = f

    def finish(self) -> None:
        """The exploration is over: minimize and record the findings that are final
        (the coordinator records how often each was hit, with the ranges run), and the
        known bugs found lower down (:meth:`lower`)."""
        for f in self.sorted():
            if not f.final:
                self._final(f)
        limit = self.limit()
        for sig, f in list(self.better.items()):
            if f.index > limit:      # (beyond the first failure: that block never counts)
                del self.better[sig]
            else:
                self._minimized(f)

    def store_rows(self, ranges: list[tuple[int, int, int]]) -> list[tuple]:
        """What the store must write of the findings, as :meth:`Store.record` takes them,
        with the blocks ``ranges`` (``[start, stop)``) it writes now: the findings in
        those blocks (as found until final: the saved, unminimized trace), and a new file
        for one stored before (its minimized trace). The store never has a finding
        without the block that found it, nor a block without its findings."""
        rows = []
        for f in [*self.sorted(), *self.better.values()]:
            if f.stored_as is None and not any(a <= f.index < b for a, b, _ in ranges):
                continue
            if f.stored_as != f.row:
                f.stored_as = f.row
                rows.append((f.sig, f.sig[0], f.index, *f.row))
        return rows

    def empty_trash(self) -> None:
        """Delete the replaced trace files that no finding names any more, in the store
        or here (a file the store names is kept until its replacement is written, so
        that a campaign killed in between still names a file that exists)."""
        mine = [*self.kept.values(), *self.better.values()]
        named = {f.stored_as[0] for f in mine if f.stored_as} | {f.path for f in mine}
        keep = []
        for path in self._trash:
            if path in named:
                keep.append(path)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        self._trash = keep

    def heal(self, again: dict[tuple, tuple[int, Trace]]) -> None:
        """Known bugs hit again (``again``: signature -> the first schedule and trace
        that hit it) whose saved trace is gone or no longer replays get a new one: that
        schedule, minimized, saved and recorded in the old one's place, so that the
        campaign's listing and replay commands work again."""
        if self.folder is None:
            return
        for k in self.known:
            sig = sig_from_text(k["signature"])
            if sig not in again or sig in self.better or \
                    (k["trace"] and self._replayed(k["trace"])):
                continue
            r = self._minimal(again[sig][1])
            k["trace"] = os.path.abspath(self._save(r.trace))
            if self.db is not None:
                self.db.repoint(self.cid, sig, k["trace"], r.trace_hash)

    def _replayed(self, path: str) -> Result | None:
        """The saved trace at ``path`` replayed, or None when it is gone, unreadable, or
        recorded by a vmemu with other events."""
        try:
            return self.rebuild(Trace.load(path))
        except (UserError, RuntimeError):
            return None

    def known_result(self, i: int, sig: tuple, trace: Trace) -> Result:
        """The report of a known bug hit again at schedule ``i``: its saved (minimized)
        trace replayed, or, when that file is gone or no longer replays, schedule ``i``."""
        k = self._known(sig)
        path = k["trace"] if k is not None else None
        r = self._replayed(path) if path else None
        if r is None:
            r, path = self.rebuild(trace), None
        r.trace_path = path
        r.extra.update({"schedule": i, "found_by": self._found_by(trace), "known": True})
        return r

    def rebuild(self, trace: Trace) -> Result:
        """The Result of a schedule a worker recorded, by replaying its tape here."""
        strat = ReplayStrategy(trace.tape, recorded=trace.strategy, seed=trace.seed)
        strat.params = lambda: dict(trace.params)  # type: ignore[method-assign]
        r = run(self.sc, strategy=strat, faults=self.plan, driver=self.spec.driver)
        if r.trace_hash != trace.trace_hash:  # pragma: no cover - a determinism bug
            raise RuntimeError(f"schedule of {self.sc.path} did not replay to the same trace "
                               "(nondeterminism in vmemu)")
        return r

    def _final(self, f: Finding) -> None:
        r = self._minimized(f)
        r.extra.update({"schedule": f.index, "found_by": self._found_by(f.trace),
                        "minimized_from": len(f.trace.tape)})
        if self.on_finding is not None:
            self.on_finding(r)

    def _minimized(self, f: Finding) -> Result:
        """``f`` replayed here and minimized; its minimal trace saved in place of the raw
        one (which goes to the trash)."""
        r = self._minimal(f.trace)
        raw = f.path
        if self.folder is not None and r.trace is not f.trace:
            f.path = self._save(r.trace)
            self._discard(raw, keep=f.path)
        r.trace_path = f.path
        f.result, f.final = r, True
        return r

    def _minimal(self, trace: Trace) -> Result:
        """The schedule ``trace`` recorded, replayed here, and minimized (unless this
        exploration does not minimize)."""
        r = self.rebuild(trace)
        return minimize_result(r, driver="direct", faults=self.plan) if self.minimize else r

    def _known(self, sig: tuple) -> dict[str, Any] | None:
        """The resumed campaign's record of bug ``sig``, if it knew it."""
        return next((k for k in self.known if sig_from_text(k["signature"]) == sig), None)

    def _found_by(self, trace: Trace) -> str:
        """The command that re-runs the schedule alone: its strategy, seed, parameters."""
        cmd = ["vmemu", "run", self.sc.path]
        if self.plan is not None and getattr(self.plan, "path", None):
            cmd += ["--faults", self.plan.path]
        if trace.seed is not None:
            cmd += ["--seed", str(trace.seed)]
        cmd += ["--strategy", trace.strategy]
        cmd += [f"--{k}={v}" for k, v in sorted(trace.params.items())]
        return " ".join(shlex.quote(c) for c in cmd)

    def _save(self, trace: Trace) -> str:
        return trace.save(finding_path(self.folder, self.sc.name, trace))

    def _discard(self, path: str | None, keep: str | None) -> None:
        """Put a replaced trace file out (see :meth:`empty_trash`)."""
        if path and path != keep:
            self._trash.append(path)
