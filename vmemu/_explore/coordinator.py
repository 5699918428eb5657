"""Exploration: run many schedules of one scenario, keep (and save) what fails.

Schedule ``i`` of an exploration seeded ``S`` is the ``i``-th strategy of
``schedules(strategy, S)``; seeded strategies use seed ``schedule_seed(S, i)`` (a
splitmix64 mix), so every schedule can be re-run alone from one printed integer (the
finding says how). What an exploration reports never depends on where its blocks ran
(``--jobs``, ``--cluster``, this process): every index below the first failure runs, and
the *lowest* failing index is the answer. With ``keep_going`` every failure is kept, one
per :func:`~vmemu._explore.base.signature`, the lowest index each.

PCT's steps hint (the expected run length) adapts as the exploration learns: schedules
``[0, 2)`` use the default, and schedules ``[2**k, 2**(k+1))`` the longest run among all
schedules below ``2**k``. That keeps it a function of the index, whoever runs what.

The coordinator cuts each such epoch into blocks (:func:`~vmemu._explore.work.run_block`),
hands them to an executor (:mod:`~vmemu._explore.executors`) and, under ``--jobs``, runs
blocks itself between collecting results. Findings come back as raw traces: they are
saved (atomically) at once, and minimized here (:func:`~vmemu._explore.minimize.minimize`)
once they are final; the minimized schedule is what the report shows and
``vmemu replay`` reproduces. ``time_budget`` is the only wall-clock dependence: it
decides how many schedules run, never what a schedule does.

With a campaign store (:mod:`~vmemu._explore.store`) the exploration is recorded as it
goes, and ``resume`` continues a campaign at its next unrun index (first the holes a
killed exploration left), so no schedule runs twice.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import os
import time
from collections import deque
from typing import Any, Callable, Iterator

from .._errors import UserError
from .._kernel import lockup
from .._result import Result
from .._run import _as_scenario, _check_driver, _load_faults, run
from .._scenario.model import Scenario
from .._strategies import PARAMS, ReplayStrategy, is_exhaustive, schedules
from .._trace import Trace
from . import work
from .base import (DEFAULT_RUNS, DEFAULT_STRATEGY, ExploreInterrupted, ExploreResult, Spec,
                   finding_path)
from .executors import make_executor
from .minimize import minimize as minimize_result
from .store import Store, holes, sig_from_text

#: Smallest and largest blocks handed out (schedules).
MIN_BLOCK, MAX_BLOCK = 64, 4096
#: Epochs smaller than this run in the coordinator alone (not worth a round trip).
SPLIT_FROM = 512
#: Worker pools replaced after a worker died, before the exploration gives up.
MAX_RESTARTS = 3
#: Seconds between two writes of progress to the store.
FLUSH_EVERY = 0.25

_tokens = itertools.count(1)


def explore(scenario: Scenario | str | os.PathLike, *, runs: int = DEFAULT_RUNS,
            seed: int | None = None, strategy: str | None = None, faults: Any = None,
            driver: str = "direct", time_budget: float | None = None,
            keep_going: bool = False, jobs: int = 1, cluster: str | None = None,
            findings_dir: str | os.PathLike | None = None, minimize: bool = True,
            progress: Callable[..., None] | None = None,
            on_finding: Callable[[Result], None] | None = None,
            store: str | os.PathLike | None = None, resume: bool = False,
            **params: Any) -> ExploreResult:
    """Try up to ``runs`` schedules; stop at the first failure unless ``keep_going``.

    Args:
        scenario: a loaded scenario or a path.
        runs: most schedules to run.
        seed: schedule ``i`` of a seeded strategy uses ``schedule_seed(seed, i)``
            (default 0).
        strategy: ``portfolio`` (random and pct alternating; the default), ``random``,
            ``pct``, ``dfs``, ``hypothesis`` (Hypothesis's engine generates and shrinks).
        faults: a fault plan path or object.
        driver: how each schedule runs (``direct`` is the fastest; traces are the same).
        time_budget: stop starting schedules after this many wall-clock seconds.
        keep_going: keep every distinct failure instead of stopping at the first.
        jobs: parallel workers on this machine (this process and ``jobs - 1`` others).
            ``dfs`` is sequential by nature and always runs in this process.
        cluster: ``tcp://HOST:PORT`` of a dask.distributed scheduler, or ``local:N``
            for a LocalCluster of N worker processes (needs ``vmemu[dask]``).
        findings_dir: save each finding there as it is found (None: do not save).
        minimize: replace each finding by its minimized schedule.
        progress: called with (schedules done, findings, interleavings) as it goes.
        on_finding: called with each finding's final Result (saved, minimized).
        store: record the campaign in this SQLite file (None: no record).
        resume: continue the newest campaign in ``store`` of this scenario and fault
            plan (and of ``strategy``/``seed``/``params`` where given) at its next unrun
            index; failures it already knows are not findings again.
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
    db = Store(store) if store is not None else None
    campaign = None
    if resume:
        if db is None:
            raise UserError("--resume needs a campaign store", key="--resume")
        want: dict[str, Any] = {k: v for k, v in (("strategy", strategy), ("seed", seed))
                                if v is not None}
        if params:
            want["params"] = params
        campaign = db.find(sc.content_hash, getattr(plan, "content_hash", None), want)
        if campaign is None:
            raise UserError(f"no campaign of {sc.path} to resume in {db.path}"
                            + (" with these options" if want else "")
                            + "; run it once without --resume", key="--resume")
        strategy, seed, params = campaign["strategy"], campaign["seed"], campaign["params"]
    strategy = strategy or DEFAULT_STRATEGY
    seed = 0 if seed is None else seed
    # Bad strategy names and parameters fail here, before any worker starts; this also
    # loads every strategy module, so PARAMS (hence the epochs) is complete.
    schedules(strategy, seed, **params)
    if strategy == "hypothesis":
        if resume:
            raise UserError("a Hypothesis search cannot be resumed", key="--resume")
        from .hypothesis import explore_hypothesis
        return explore_hypothesis(sc, plan, runs=runs, seed=seed, time_budget=time_budget,
                                  keep_going=keep_going, findings_dir=findings_dir,
                                  progress=progress, on_finding=on_finding)
    spec = Spec(scenario_path=sc.path, scenario_hash=sc.content_hash,
                scenario_text=_content(sc), faults_path=getattr(plan, "path", None),
                faults_hash=getattr(plan, "content_hash", None),
                faults_text=_plan_content(plan), strategy=strategy, seed=seed,
                params=params, driver=driver, keep_going=keep_going,
                known=frozenset(sig_from_text(f["signature"])
                                for f in (db.findings(campaign["id"]) if campaign else ())))
    work.remember(spec, sc, plan)
    parallel = (jobs > 1 or cluster) and not is_exhaustive(strategy)
    if parallel and (spec.scenario_text is None or (plan is not None and spec.faults_text is None)):
        if cluster:
            raise UserError("--cluster needs the scenario and fault plan as files",
                            key="--cluster")
        parallel = False      # an object without (matching) files: run it here
    if spec.scenario_text is None:
        spec = _replace(spec, scenario_text=b"")
    ex = _Exploration(spec, sc, plan, runs, findings_dir, progress, on_finding, minimize, db,
                      campaign)
    deadline = None if time_budget is None else time.time() + time_budget
    return ex.go(deadline, jobs if parallel else 1, cluster if parallel else None)


def _replace(spec: Spec, **kw: Any) -> Spec:
    import dataclasses
    return dataclasses.replace(spec, **kw)


def _content(sc: Scenario) -> bytes | None:
    """The scenario file's bytes, if the file still holds what was loaded."""
    import hashlib
    try:
        data = open(sc.path, "rb").read()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sc.content_hash else None


def _plan_content(plan: Any) -> bytes | None:
    if plan is None or not getattr(plan, "path", None):
        return None
    import hashlib
    try:
        data = open(plan.path, "rb").read()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == plan.content_hash else None


def _adapts_hint(spec: Spec) -> bool:
    return "steps_hint" in PARAMS.get(spec.strategy, ()) and "steps_hint" not in spec.params


class _Finding:
    __slots__ = ("index", "sig", "trace", "path", "result", "final")

    def __init__(self, index: int, sig: tuple, trace: Trace) -> None:
        self.index, self.sig, self.trace = index, sig, trace
        self.path: str | None = None
        self.result: Result | None = None
        self.final = False


class _Exploration:
    """The coordinator: hands out blocks, saves and dedups what they find."""

    def __init__(self, spec: Spec, sc: Scenario, plan: Any, runs: int, folder: Any,
                 progress: Any, on_finding: Any, minimize: bool, db: Store | None,
                 campaign: dict[str, Any] | None) -> None:
        self.spec, self.sc, self.plan, self.runs = spec, sc, plan, runs
        self.folder, self.progress, self.on_finding = folder, progress, on_finding
        self.minimize = minimize
        self.db = db
        self.kept: dict[tuple, _Finding] = {}
        self.first = 2**62                  # lowest failing index (without keep_going)
        self.ran: list[tuple[int, int]] = []   # [start, upto] ranges done this session
        self.done = 0
        self.cover: dict[int, int] = {}     # interleaving -> lowest index seen
        self.longest: list[tuple[int, int]] = []   # (range stop, longest) of ranges done
        self.last: tuple | None = None      # the highest-index run: Block.last
        self.exhausted = False
        self.token = next(_tokens)
        # Store bookkeeping: what is not written yet.
        self._unflushed: list[tuple[int, int, int]] = []
        self._new_cover: set[int] = set()
        self._cover_at: int | None = None
        self._flushed = time.monotonic()
        self._t0 = time.monotonic()
        self.cid: int | None = None
        self.todo: list[tuple[int, int]]
        self.known: list[dict[str, Any]] = []
        if db is not None and campaign is not None:
            self.cid = campaign["id"]
            done = db.ranges(self.cid)
            gaps, end = holes(done)
            self.longest = [(b, n) for _, b, n in done]
            self.cover = dict.fromkeys(db.interleavings(self.cid), -1)
            self.known = db.findings(self.cid)
            db.reopen(self.cid)
            self.todo = _take(gaps + [(end, 2**62)], runs)
        else:
            self.todo = [(0, runs)]
            if db is not None:
                self.cid = db.create(scenario=sc, faults=plan, strategy=spec.strategy,
                                     params=spec.params, seed=spec.seed, driver=spec.driver)
        self.first_index = self.todo[0][0] if self.todo else 0

    # ------------------------------------------------------------------ the loop
    def go(self, deadline: float | None, jobs: int, cluster: str | None) -> ExploreResult:
        status = "interrupted"
        owned: list[Any] = []          # the executor, from the moment it exists
        try:
            with lockup.shorter_after_first(), _SafePoints():
                executor = make_executor(jobs, cluster, self.spec, owned)
                self._run(executor, deadline, inline=cluster is None)
            _shutdown(owned)
            self._finish()
            status = "done"
        except KeyboardInterrupt as e:
            work.forget(self.token)
            _shutdown(owned)
            saved = [f.path for f in self._sorted() if f.path]
            raise ExploreInterrupted(self.done, saved, getattr(e, "signum", 2)) from None
        finally:
            _shutdown(owned)
            self._flush(status)
            if self.db is not None:
                self.db.close()
        return self._result()

    def _epochs(self) -> list[list[tuple[int, int]]]:
        """The todo ranges, cut where PCT's hint changes (powers of two)."""
        if not _adapts_hint(self.spec) or is_exhaustive(self.spec.strategy):
            return [self.todo]
        out: list[list[tuple[int, int]]] = []
        cuts = [0, 2] + [2 ** k for k in range(2, 63)]
        for lo, hi in zip(cuts, cuts[1:]):
            part = [(max(a, lo), min(b, hi)) for a, b in self.todo if a < hi and b > lo]
            if part:
                out.append(part)
        return out

    def _hint(self, epoch_start: int) -> int | None:
        if not _adapts_hint(self.spec):
            return None
        from .._strategies.pct import DEFAULT_STEPS_HINT
        n = max((m for b, m in self.longest if b <= epoch_start), default=0)
        return n or DEFAULT_STEPS_HINT

    def _run(self, executor: Any, deadline: float | None, inline: bool) -> None:
        width = (executor.workers if executor is not None else 0) + (1 if inline else 0)
        for epoch in self._epochs():
            start = epoch[0][0]
            if start > self.first:
                break
            hint = self._hint(start)
            size = sum(b - a for a, b in epoch)
            split = executor is not None and size >= SPLIT_FROM
            pending = _Pending(self._blocks(epoch, width if split else 1, inline and not split))
            inflight: dict[cf.Future, tuple[int, int]] = {}
            while pending or inflight:
                _check_signals()
                up = split and executor.ready()
                while up and pending and len(inflight) < executor.slots:
                    a, b = pending.pop()
                    if a > self.first or self._late(deadline, a):
                        pending.clear()
                        break
                    f = executor.submit(_shipped_run_block(), self.spec, a, b, hint,
                                        deadline, self.token)
                    inflight[f] = (a, b)
                ready = [f for f in inflight if f.done()]
                # Here: always under --jobs (this process is one of the J), small epochs,
                # and while a cluster is still starting.
                if not ready and pending and (inline or not up):
                    a, b = pending.pop()
                    if a > self.first or self._late(deadline, a):
                        pending.clear()
                        continue
                    self._block(work.run_block(self.spec, a, b, hint, deadline, self.token))
                    _check_signals()
                    if self.exhausted:
                        pending.clear()
                    continue
                if not ready and inflight:
                    ready, _ = cf.wait(list(inflight), timeout=0.25,
                                       return_when=cf.FIRST_COMPLETED)
                for f in ready:
                    a, b = inflight.pop(f)
                    try:
                        blk = f.result()
                    except cf.BrokenExecutor as e:
                        # A worker died (SIGKILL, OOM): run its block (and every other
                        # one the broken pool lost) again on fresh workers. Workers that
                        # die again and again (a crash, not an accident) end it.
                        if executor.restarts >= MAX_RESTARTS:
                            raise RuntimeError(f"explore workers died {MAX_RESTARTS + 1} "
                                               f"times ({e}); giving up") from None
                        lost = [(a, b)] + [inflight.pop(g) for g in list(inflight)]
                        pending.push_back(lost)
                        executor.restart()
                        break
                    except cf.CancelledError:   # pragma: no cover - shutdown raced
                        continue
                    self._block(blk)
                if self.exhausted:
                    pending.clear()
            if self.exhausted or self._late(deadline, 1):
                break

    def _late(self, deadline: float | None, index: int) -> bool:
        return bool(index) and deadline is not None and time.time() > deadline

    def _blocks(self, epoch: list[tuple[int, int]], width: int,
                alone: bool) -> Iterator[tuple[int, int]]:
        """Cut an epoch's ranges into blocks (lazily: with ``--time`` alone an epoch is
        endless): large while there is plenty left, smaller towards its end, so that no
        worker holds the next epoch up for long."""
        left = sum(b - a for a, b in epoch)
        for a, b in epoch:
            while a < b:
                if alone:
                    n = min(1024 if a else 1, b - a)   # schedule 0 alone: it sets the hint
                else:
                    n = max(MIN_BLOCK, min(MAX_BLOCK, left // (3 * max(width, 1))))
                n = min(n, b - a)
                yield a, a + n
                a += n
                left -= n

    # ------------------------------------------------------------------ a block's news
    def _block(self, blk: work.Block) -> None:
        if blk.upto >= blk.start:
            self.ran.append((blk.start, blk.upto))
            self.done += blk.done
            self.longest.append((blk.upto + 1, blk.longest))
            self._unflushed.append((blk.start, blk.upto + 1, blk.longest))
            if blk.last is not None and (self.last is None or blk.last[0] > self.last[0]):
                self.last = blk.last
        cover = self.cover
        for h, i in blk.cover:
            old = cover.get(h)
            if old is None:
                cover[h] = i
                self._new_cover.add(h)
                self._cover_at = max(self._cover_at or 0, i + 1)
            elif i < old:
                cover[h] = i
        self.exhausted = self.exhausted or blk.exhausted
        for i, sig, trace in blk.found:
            self._found(i, sig, trace)
        if self.progress is not None:
            self.progress(self.done, len(self.kept), len(self.cover))
        if time.monotonic() - self._flushed > FLUSH_EVERY:
            self._flush(None)

    def _sorted(self) -> list[_Finding]:
        return sorted(self.kept.values(), key=lambda f: f.index)

    def _found(self, i: int, sig: tuple, trace: Trace) -> None:
        keep_going = self.spec.keep_going
        old = self.kept.get(sig) if keep_going else min(self.kept.values(),
                                                        key=lambda f: f.index, default=None)
        if old is not None and old.index <= i:
            return      # the same bug lower down, or beyond the first failure
        f = _Finding(i, sig, trace)
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

    def _finish(self) -> None:
        """The exploration is over: minimize and record the findings that are final."""
        for f in self._sorted():
            if not f.final:
                self._final(f)
        self._flush("done")

    def _final(self, f: _Finding) -> None:
        r = self._rebuild(f.trace)
        raw_len = len(f.trace.tape)
        if self.minimize:
            r = minimize_result(r, driver="direct", faults=self.plan)
        raw = f.path
        if self.folder is not None and r.trace is not f.trace:
            f.path = self._save(r.trace)
            self._discard(raw, keep=f.path)
        r.trace_path = f.path
        r.extra.update({"schedule": f.index, "found_by": self._found_by(f.trace),
                        "minimized_from": raw_len})
        f.result, f.final = r, True
        if self.db is not None:
            self.db.finding(self.cid, f.sig, f.sig[0], f.index, f.path, r.trace_hash)
        if self.on_finding is not None:
            self.on_finding(r)

    def _found_by(self, trace: Trace) -> str:
        """The command that re-runs the schedule alone: its strategy, seed, parameters."""
        import shlex
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

    # ------------------------------------------------------------------ the store
    def _flush(self, status: str | None) -> None:
        self._flushed = time.monotonic()
        if self.db is None or self.cid is None:
            return
        now = time.monotonic()
        ranges, self._unflushed = _coalesce(self._unflushed), []
        new, self._new_cover = self._new_cover, set()
        self.db.record(self.cid, ranges=ranges, cover=new,
                       schedules=sum(b - a for a, b, _ in ranges), seconds=now - self._t0,
                       interleavings=len(self.cover), new_cover_at=self._cover_at,
                       status=status)
        self._t0 = now
        self._cover_at = None

    # ------------------------------------------------------------------ the answer
    def _counted(self, limit: int) -> int:
        """Schedules done this session with index <= ``limit``."""
        return sum(max(0, min(upto, limit) - a + 1) for a, upto in self.ran)

    def _result(self) -> ExploreResult:
        kept = self._sorted()
        if kept and not self.spec.keep_going:
            n = self._counted(kept[0].index)
        else:
            n = self._counted(2**62)
        findings = [f.result for f in kept if f.result is not None]
        if findings:
            result = findings[0]
        else:
            if self.last is None:  # pragma: no cover - schedule 0 always runs
                raise RuntimeError("exploration ran no schedule")
            result = work.rerun(self.spec, self.last)
        bound = None
        search = getattr(work.forget(self.token), "search", None)
        if search is not None:
            bound = search.coverage(n)
        exhausted = self.exhausted if bound is None else bound["whole"]
        # Interleavings among the schedules counted (none beyond the first failure, which
        # only some job counts ran), and a resumed campaign's earlier ones (index -1).
        limit = kept[0].index if kept and not self.spec.keep_going else 2**62
        seen = sum(1 for i in self.cover.values() if i <= limit)
        return ExploreResult(result, n, findings, exhausted, seen, bound,
                             self.cid, self.first_index, self.known)


class _SafePoints:
    """Ctrl-C and SIGTERM during an exploration take effect at safe points: between two
    schedules of a block run here, and between two looks at the executor. A
    KeyboardInterrupt inside a Dask call or a pool's bookkeeping could leave its locks
    held, and the shutdown that must follow would then hang."""

    def __enter__(self) -> "_SafePoints":
        import signal
        import threading
        self.old: dict[int, Any] = {}
        work.STOP[0] = 0
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old = signal.getsignal(sig)
                if sig == signal.SIGTERM and old in (signal.SIG_DFL, None):
                    continue      # (the API in a host that lets SIGTERM kill it)
                self.old[sig] = signal.signal(sig, _note_signal)
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal
        for sig, old in self.old.items():
            signal.signal(sig, old)
        work.STOP[0] = 0


def _note_signal(signum: int, frame: Any) -> None:
    if work.STOP[0]:                      # a second Ctrl-C: the user means it, now
        raise _interrupt(signum)
    work.STOP[0] = signum


def _interrupt(signum: int) -> KeyboardInterrupt:
    e = KeyboardInterrupt()
    e.signum = signum  # type: ignore[attr-defined]
    return e


def _check_signals() -> None:
    if work.STOP[0]:
        raise _interrupt(work.STOP[0])


def _shipped_run_block() -> Any:
    """``work.run_block`` as pickle finds it by name (a host that dropped and re-imported
    vmemu's modules, as pytester does, has a new module object under that name)."""
    import importlib
    return importlib.import_module(work.__name__).run_block


def _shutdown(owned: list[Any]) -> None:
    while owned:
        owned.pop().shutdown()


class _Pending:
    """The blocks of an epoch still to run: lost ones (a worker died) first, in order,
    then the epoch's next ones, made as they are needed."""

    def __init__(self, blocks: Iterator[tuple[int, int]]) -> None:
        self.back: deque[tuple[int, int]] = deque()
        self.blocks = blocks
        self.next = next(blocks, None)

    def __bool__(self) -> bool:
        return bool(self.back) or self.next is not None

    def pop(self) -> tuple[int, int]:
        if self.back:
            return self.back.popleft()
        got, self.next = self.next, next(self.blocks, None)
        assert got is not None
        return got

    def push_back(self, lost: list[tuple[int, int]]) -> None:
        self.back.extend(sorted(lost))
        self.back = deque(sorted(self.back))

    def clear(self) -> None:
        self.back.clear()
        self.next = None


def _take(ranges: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """The first ``n`` indices of ``ranges``, as ranges."""
    out = []
    for a, b in ranges:
        if n <= 0:
            break
        take = min(b - a, n)
        out.append((a, a + take))
        n -= take
    return out


def _coalesce(ranges: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Adjacent ranges merged (their longest runs too), fewer rows to store.

    Merging loses nothing the hint needs: a hint reads only ranges that end at an
    epoch's start, and no block crosses an epoch's start.
    """
    out: list[tuple[int, int, int]] = []
    for a, b, n in sorted(ranges):
        if out and out[-1][1] == a and not _crosses_power_of_two(out[-1][0], b):
            pa, _, pn = out[-1]
            out[-1] = (pa, b, max(pn, n))
        else:
            out.append((a, b, n))
    return out


def _crosses_power_of_two(a: int, b: int) -> bool:
    """Does ``(a, b]`` contain an epoch boundary strictly inside ``[a, b)``?"""
    p = 2
    while p < b:
        if a < p < b:
            return True
        p *= 2
    return False

