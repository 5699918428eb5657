"""Exploration: run many schedules of one scenario, keep (and save) what fails.

Schedule ``i`` of an exploration seeded ``S`` is the ``i``-th strategy of
``schedules(strategy, S)``; seeded strategies use seed ``S + i``, so every schedule can be
re-run alone (the finding says how). What an exploration reports never depends on
``jobs``: workers split the schedule indices (see :mod:`vmemu._explore_pool`), every
index below the first failure runs, and the *lowest* failing index is the answer. With
``keep_going`` every failure is kept, one per :func:`signature`, the lowest index each.

PCT's steps hint (the expected run length) adapts as the exploration learns: schedules
``[0, 2)`` use the default, and schedules ``[2**k, 2**(k+1))`` the longest run among all
schedules below ``2**k``. That keeps it a function of the index, as ``jobs`` requires.

Findings are saved (atomically) the moment a worker reports them, then replaced by their
minimized schedule (:func:`vmemu._minimize.minimize`), which is what the report shows and
``vmemu replay`` reproduces. ``time_budget`` is the only wall-clock dependence: it decides
how many schedules run, never what a schedule does.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ._explore_pool import LocalGate, Pool, Runner, Spec
from ._kernel import lockup
from ._result import Result
from ._run import _as_scenario, _check_driver, _load_faults, run
from ._scenario.model import Scenario
from ._strategies import PARAMS, ReplayStrategy, is_exhaustive, schedules
from ._trace import Trace

#: Schedules `explore` and `check` try when the user gives no budget.
DEFAULT_RUNS = 1000
#: The strategy `explore` uses when the user names none.
DEFAULT_STRATEGY = "portfolio"


@dataclass
class ExploreResult:
    """What an exploration found.

    Attributes:
        result: the first failure found (lowest schedule index), else the last run.
        schedules: schedules run (until the first failure, or in all with ``all``).
        findings: every failing result kept (one per signature with ``all``), by index;
            each has ``trace_path`` set when it was saved, and ``extra["schedule"]``.
        exhausted: True when a systematic strategy explored the whole space.
    """

    result: Result
    schedules: int
    findings: list[Result] = field(default_factory=list)
    exhausted: bool = False

    @property
    def verdict(self) -> str:
        return self.result.verdict


class ExploreInterrupted(KeyboardInterrupt):
    """Ctrl-C during an exploration; every finding reported so far is saved.

    Attributes:
        schedules: schedules done when it stopped.
        saved: paths of the saved findings.
    """

    def __init__(self, schedules: int, saved: list[str]) -> None:
        super().__init__(f"interrupted after {schedules} schedules")
        self.schedules = schedules
        self.saved = saved


def signature(r: Result) -> tuple:
    """What makes two findings the same bug: verdict plus the cycle's task/lock shape."""
    return (r.verdict, tuple((c["task"], c["waits_for"]) for c in r.cycle),
            r.culprit if not r.cycle else None)


def finding_path(folder: str | os.PathLike, scenario_name: str, trace: Trace) -> Path:
    """Where a finding is saved: ``FOLDER/SCENARIO-VERDICT-HASH.json``."""
    return Path(folder) / f"{_slug(scenario_name)}-{trace.verdict}-{trace.trace_hash[:12]}.json"


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in s) or "scenario"


@dataclass
class _Finding:
    index: int
    sig: tuple
    found_by: str
    raw_tape: int
    path: str | None = None
    result: Result | None = None


def explore(scenario: Scenario | str | os.PathLike, *, runs: int = DEFAULT_RUNS, seed: int = 0,
            strategy: str = DEFAULT_STRATEGY, faults: Any = None, driver: str = "direct",
            time_budget: float | None = None, keep_going: bool = False, jobs: int = 1,
            findings_dir: str | os.PathLike | None = None, minimize: bool = True,
            progress: Callable[[int, int], None] | None = None,
            on_finding: Callable[[Result], None] | None = None,
            **params: Any) -> ExploreResult:
    """Try up to ``runs`` schedules; stop at the first failure unless ``keep_going``.

    Args:
        scenario: a loaded scenario or a path.
        runs: most schedules to run.
        seed: schedule ``i`` of a seeded strategy uses ``seed + i``.
        strategy: ``portfolio`` (random and pct alternating), ``random``, ``pct``, ``dfs``,
            ``hypothesis`` (Hypothesis's engine generates and shrinks: see
            :mod:`vmemu._explore_hypothesis`).
        faults: a fault plan path or object.
        driver: how each schedule runs (``direct`` is the fastest; traces are the same).
        time_budget: stop starting schedules after this many wall-clock seconds.
        keep_going: keep every distinct failure instead of stopping at the first.
        jobs: worker processes (1: this process). Needs a scenario (and fault plan) file;
            ``dfs`` is sequential by nature and always runs in this process.
        findings_dir: save each finding there as it is found (None: do not save).
        minimize: replace each finding by its minimized schedule.
        progress: called with (schedules done, findings) as the exploration goes.
        on_finding: called with each finding's final Result (saved, minimized).
        **params: strategy parameters (``depth``, ``steps_hint``, ``bound`` ...).

    Raises:
        ExploreInterrupted: on Ctrl-C, after saving every finding reported so far.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    sc = _as_scenario(scenario)
    plan = _load_faults(faults)
    params = {k: v for k, v in params.items() if v is not None}
    _check_driver(driver)
    # Bad strategy names and parameters fail here, before any worker starts; this also
    # loads every strategy module, so PARAMS (hence the epochs) is complete.
    schedules(strategy, seed, **params)
    if strategy == "hypothesis":
        from ._explore_hypothesis import explore_hypothesis
        return explore_hypothesis(sc, plan, runs=runs, seed=seed, time_budget=time_budget,
                                  keep_going=keep_going, findings_dir=findings_dir,
                                  progress=progress, on_finding=on_finding)
    jobs = max(1, int(jobs))
    if jobs > 1 and not _parallel_ok(sc, plan, strategy):
        jobs = 1
    spec = Spec(scenario_path=sc.path, scenario_hash=sc.content_hash,
                faults_path=getattr(plan, "path", None), strategy=strategy, seed=seed,
                params=params, driver=driver, keep_going=keep_going, minimize=minimize,
                jobs=jobs)
    ex = _Exploration(spec, sc, plan, runs, findings_dir, progress, on_finding)
    deadline = None if time_budget is None else time.monotonic() + time_budget
    return ex.go(deadline)


def _parallel_ok(sc: Scenario, plan: Any, strategy: str) -> bool:
    """Can worker processes rebuild this exploration from files? (Else run it here.)"""
    if is_exhaustive(strategy):
        return False   # each DFS schedule is computed from the previous run
    if plan is not None and not getattr(plan, "path", None):
        return False
    try:
        return hashlib.sha256(Path(sc.path).read_bytes()).hexdigest() == sc.content_hash
    except OSError:
        return False


def _adapts_hint(spec: Spec) -> bool:
    return "steps_hint" in PARAMS.get(spec.strategy, ()) and "steps_hint" not in spec.params


def _epochs(spec: Spec, runs: int) -> Iterator[tuple[int, int]]:
    if not _adapts_hint(spec) or is_exhaustive(spec.strategy):
        yield 0, runs
        return
    start, stop = 0, 2
    while start < runs:
        yield start, min(stop, runs)
        start, stop = stop, stop * 2


class _Exploration:
    """The coordinator: hands epochs to the workers, saves and dedups what they find."""

    def __init__(self, spec: Spec, sc: Scenario, plan: Any, runs: int, folder: Any,
                 progress: Any, on_finding: Any) -> None:
        self.spec, self.sc, self.plan, self.runs = spec, sc, plan, runs
        self.folder = folder
        self.progress = progress
        self.on_finding = on_finding
        self.done = 0                   # schedules finished (progress only)
        self.kept: dict[tuple, _Finding] = {}
        # Per worker and epoch: the index ranges it took, and the last index it ran.
        self.shares: list[tuple[list[tuple[int, int]], int]] = []
        self.last: tuple[int, Any] = (-1, None)             # highest index run, its run
        self.longest = 0
        self.exhausted = False

    # ------------------------------------------------------------------ the loop
    def go(self, deadline: float | None) -> ExploreResult:
        with lockup.shorter_after_first():
            return self._go(deadline)

    def _go(self, deadline: float | None) -> ExploreResult:
        pool = None
        try:
            if self.spec.jobs > 1:
                pool = Pool(self.spec)
                source: Any = lambda a, b, h: pool.epoch(a, b, h, deadline)
            else:
                runner = Runner(self.spec, self.sc, self.plan, 0, LocalGate(deadline))
                runner.on_done = self._one_done
                source = runner.epoch
            for start, stop in _epochs(self.spec, self.runs):
                hint = self._hint() if _adapts_hint(self.spec) else None
                for msg in source(start, stop, hint):
                    self._handle(msg, start, stop)
                if (self.exhausted or self._first() is not None and not self.spec.keep_going
                        or (deadline is not None and time.monotonic() > deadline)):
                    break
        except KeyboardInterrupt:
            if pool is not None:
                pool.close()
                pool = None
            raise ExploreInterrupted(self.done, [f.path for f in self._sorted() if f.path])
        finally:
            if pool is not None:
                pool.close()
        return self._result()

    def _hint(self) -> int:
        from ._strategies.pct import DEFAULT_STEPS_HINT
        return self.longest or DEFAULT_STEPS_HINT

    def _one_done(self, n: int = 1) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, len(self.kept))

    def _handle(self, msg: tuple, start: int, stop: int) -> None:
        kind = msg[0]
        if kind == "progress":
            self._one_done(msg[2])
        elif kind == "found":
            self._found(*msg[2:])
        elif kind == "minimized":
            self._minimized(*msg[2:])
        elif kind == "epoch":
            _, w, done, upto, longest, exhausted, ran, last = msg
            self.shares.append((ran, upto))
            self.longest = max(self.longest, longest)
            self.exhausted = self.exhausted or exhausted
            if done and upto > self.last[0]:
                self.last = (upto, last)

    # ------------------------------------------------------------------ findings
    def _first(self) -> _Finding | None:
        return min(self.kept.values(), key=lambda f: f.index, default=None)

    def _sorted(self) -> list[_Finding]:
        return sorted(self.kept.values(), key=lambda f: f.index)

    def _found(self, i: int, sig: tuple, trace: Trace, found_by: str) -> None:
        if self.spec.keep_going:
            old = self.kept.get(sig)
            if old is not None and old.index <= i:
                return
        else:
            old = self._first()
            if old is not None and old.index <= i:
                return      # beyond the first failure: not part of this exploration
        f = _Finding(i, sig, found_by, len(trace.tape))
        if self.folder is not None:
            f.path = self._save(trace)
        if old is not None:
            del self.kept[old.sig]
            self._discard(old.path, keep=f.path)
        self.kept[sig] = f

    def _minimized(self, i: int, sig: tuple, trace: Trace) -> None:
        f = self.kept.get(sig)
        if f is None or f.index != i:
            return          # superseded by a lower schedule meanwhile
        r = self._rebuild(trace)
        raw = f.path
        if self.folder is not None:
            f.path = self._save(trace)
            self._discard(raw, keep=f.path)
        r.trace_path = f.path
        r.extra.update({"schedule": i, "found_by": f.found_by,
                        "minimized_from": f.raw_tape})
        f.result = r
        if self.on_finding is not None:
            self.on_finding(r)

    def _save(self, trace: Trace) -> str:
        return trace.save(finding_path(self.folder, self.sc.name, trace))

    def _discard(self, path: str | None, keep: str | None) -> None:
        if path and path != keep:
            try:
                os.unlink(path)
            except OSError:
                pass

    def _rebuild(self, trace: Trace) -> Result:
        """The Result of a schedule a worker recorded, by replaying its tape here."""
        strat = ReplayStrategy(trace.tape, recorded=trace.strategy, seed=trace.seed)
        strat.params = lambda: dict(trace.params)  # type: ignore[method-assign]
        r = run(self.sc, strategy=strat, faults=self.plan, driver=self.spec.driver)
        if r.trace_hash != trace.trace_hash:  # pragma: no cover - a determinism bug
            raise RuntimeError(f"schedule of {self.sc.path} did not replay to the same trace "
                               "(nondeterminism in vmemu)")
        return r

    # ------------------------------------------------------------------ the answer
    def _counted(self, limit: int) -> int:
        """Schedules done with index <= ``limit`` (each worker's done ones are a prefix
        of the ranges it took, up to ``upto``)."""
        n = 0
        for ran, upto in self.shares:
            for a, b in ran:
                hi = min(b - 1, upto, limit)
                if hi < a:
                    break
                n += hi - a + 1
        return n

    def _result(self) -> ExploreResult:
        kept = self._sorted()
        if kept and not self.spec.keep_going:
            schedules = self._counted(kept[0].index)
        else:
            schedules = self._counted(self.runs)
        findings = [f.result for f in kept if f.result is not None]
        if findings:
            result = findings[0]
        else:
            idx, last = self.last
            if last is None:  # pragma: no cover - schedule 0 always runs
                raise RuntimeError("exploration ran no schedule")
            result = last if isinstance(last, Result) else self._rebuild(last)
        return ExploreResult(result, schedules, findings, self.exhausted)

