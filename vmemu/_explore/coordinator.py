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
blocks itself between collecting results. Findings come back as raw traces, which
:mod:`~vmemu._explore.findings` saves (atomically) at once and minimizes here once they
are final; the minimized schedule is what the report shows and ``vmemu replay``
reproduces. Blocks also count the failing schedules of each bug (a campaign's hits).
``time_budget`` is the only wall-clock dependence: it
decides how many schedules run, never what a schedule does.

With a campaign store (:mod:`~vmemu._explore.store`) the exploration is recorded as it
goes, and ``resume`` continues a campaign at its next unrun index (first the holes a
killed exploration left), so no schedule runs twice.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Iterator, NamedTuple

from .._kernel import lockup
from .._scenario.model import Scenario
from .._strategies import PARAMS, is_exhaustive
from .._trace import Trace
from . import work
from .base import COVER_CAP, ExploreInterrupted, ExploreResult, Spec, WorkersLost
from .findings import Findings
from .plan import (Pending, SafePoints, check_signals, coalesce, prompt_helpers,
                   shipped_run_block, shutdown, take)
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


class _Ran(NamedTuple):
    """A block that ended, until the store has it: its range ``[start, stop)``, longest
    run, hits per signature and the interleavings it showed (those counted)."""

    start: int
    stop: int
    longest: int
    hits: dict[tuple, int]
    cover: list[int]


def _adapts_hint(spec: Spec) -> bool:
    return "steps_hint" in PARAMS.get(spec.strategy, ()) and "steps_hint" not in spec.params


class _Exploration:
    """The coordinator: hands out blocks and gathers what they report (the findings in
    :class:`~vmemu._explore.findings.Findings`)."""

    def __init__(self, spec: Spec, sc: Scenario, plan: Any, runs: int, folder: Any,
                 progress: Any, on_finding: Any, minimize: bool, db: Store | None,
                 campaign: dict[str, Any] | None) -> None:
        self.spec, self.sc, self.plan, self.runs = spec, sc, plan, runs
        self.progress = progress
        self.db = db
        self.ran: list[tuple[int, int]] = []   # [start, upto] ranges done this session
        self.done = 0
        self.cover: dict[int, int] = {}     # interleaving -> lowest index seen
        self.capped = False                 # a new one came once COVER_CAP were counted
        self.longest: list[tuple[int, int]] = []   # (range stop, longest) of ranges done
        self.last: tuple | None = None      # the highest-index run: Block.last
        self.exhausted = False
        self.token = next(_tokens)
        # Store bookkeeping: the blocks not written yet (see _flush), and what is running.
        self._unflushed: list[_Ran] = []
        self._inflight: dict[Any, tuple[int, int]] = {}
        self._pending: Pending | None = None
        self._cut = 2**62       # the lowest index a block cut short never ran
        self._flushed = time.monotonic()
        self._t0 = time.monotonic()
        self.cid: int | None = None
        self.todo: list[tuple[int, int]]
        self.known: list[dict[str, Any]] = []
        # A campaign's hit counts: (block start, failing schedules per signature) of
        # every block, and each known bug's lowest schedule that hit it again.
        self.hit_blocks: list[tuple[int, dict[tuple, int]]] = []
        self.again: dict[tuple, tuple[int, Trace]] = {}
        if db is not None and campaign is not None:
            self.cid = campaign["id"]     # (claimed by api.explore before it is read)
            done = db.ranges(self.cid)
            gaps, end = holes(done)
            self.longest = [(b, n) for _, b, n in done]
            self.cover = dict.fromkeys(db.interleavings(self.cid), -1)
            self.known = db.findings(self.cid)
            self.todo = take(gaps + [(end, 2**62)], runs)
        else:
            self.todo = [(0, runs)]
            if db is not None:
                self.cid = db.create(scenario=sc, faults=plan, strategy=spec.strategy,
                                     params=spec.params, seed=spec.seed, driver=spec.driver)
        self.first_index = self.todo[0][0] if self.todo else 0
        self.found = Findings(spec, sc, plan, folder, minimize, on_finding, db, self.cid,
                              self.known)

    # ------------------------------------------------------------------ the loop
    def go(self, deadline: float | None, jobs: int, cluster: str | None) -> ExploreResult:
        status = "interrupted"
        owned: list[Any] = []          # the executor, from the moment it exists
        try:
            with lockup.shorter_after_first(), SafePoints(), \
                    prompt_helpers(jobs > 1 or cluster is not None):
                executor = None
                if jobs > 1 or cluster:   # (this process alone imports no pool machinery)
                    from .executors import make_executor
                    executor = make_executor(jobs, cluster, self.spec, owned)
                self._run(executor, deadline, inline=cluster is None)
            shutdown(owned)
            self._finish()
            status = "done"
        except KeyboardInterrupt as e:
            work.forget(self.token)
            shutdown(owned)
            hits = self._hits(2**62)
            saved = [f.path for f in self.found.sorted() if f.path]
            known = sum(n for sig, n in hits.items() if sig in self.spec.known)
            raise ExploreInterrupted(self.done, saved, getattr(e, "signum", 2),
                                     known) from None
        finally:
            shutdown(owned)
            self._flush(status)
            if self.db is None:
                self.found.empty_trash()
            else:
                self.db.close()
        return self._result()

    def _epochs(self) -> list[tuple[int, list[tuple[int, int]]]]:
        """The todo ranges, cut where PCT's hint changes (powers of two), each with the
        index its epoch begins at (where the hint is computed: a resume that goes on in
        the middle of an epoch uses the hint one long exploration used there)."""
        if not _adapts_hint(self.spec) or is_exhaustive(self.spec.strategy):
            return [(self.todo[0][0] if self.todo else 0, self.todo)]
        out: list[tuple[int, list[tuple[int, int]]]] = []
        cuts = [0, 2] + [2 ** k for k in range(2, 63)]
        for lo, hi in zip(cuts, cuts[1:]):
            part = [(max(a, lo), min(b, hi)) for a, b in self.todo if a < hi and b > lo]
            if part:
                out.append((lo, part))
        return out

    def _hint(self, epoch_start: int) -> int | None:
        if not _adapts_hint(self.spec):
            return None
        from .._strategies.pct import DEFAULT_STEPS_HINT
        n = max((m for b, m in self.longest if b <= epoch_start), default=0)
        return n or DEFAULT_STEPS_HINT

    def _run(self, executor: Any, deadline: float | None, inline: bool) -> None:
        # (concurrent.futures, for the executor's futures only: no executor, no import)
        cf: Any = _futures() if executor is not None else None
        width = (executor.workers if executor is not None else 0) + (1 if inline else 0)
        for base, epoch in self._epochs():
            if epoch[0][0] > self.found.first:
                break
            hint = self._hint(base)
            size = sum(b - a for a, b in epoch)
            split = executor is not None and size >= SPLIT_FROM
            pending = Pending(self._blocks(epoch, width if split else 1, inline and not split))
            inflight: dict[Any, tuple[int, int]] = {}
            self._pending, self._inflight = pending, inflight     # (for _frontier)
            while pending or inflight:
                check_signals()
                up = split and executor.ready()
                while up and pending and len(inflight) < executor.slots:
                    a, b = pending.pop()
                    if a > self.found.first or self._late(deadline, a):
                        self._abandon(pending, a)
                        break
                    try:
                        f = executor.submit(shipped_run_block(), self.spec, a, b, hint,
                                            deadline, self.token)
                    except cf.BrokenExecutor as e:   # (a death seen before a result)
                        self._workers_died(executor, pending, inflight, [(a, b)], e)
                        break
                    inflight[f] = (a, b)
                ready = [f for f in inflight if f.done()]
                # Here: always under --jobs (this process is one of the J), small epochs,
                # and while a cluster is still starting.
                if not ready and pending and (inline or not up):
                    a, b = pending.pop()
                    if a > self.found.first or self._late(deadline, a):
                        self._abandon(pending, a)
                        continue
                    self._block(work.run_block(self.spec, a, b, hint, deadline, self.token))
                    check_signals()
                    if self.exhausted:
                        self._abandon(pending)
                    continue
                if not ready and inflight:
                    ready, _ = cf.wait(list(inflight), timeout=0.25,
                                       return_when=cf.FIRST_COMPLETED)
                for f in ready:
                    a, b = inflight.pop(f)
                    try:
                        blk = f.result()
                    except cf.BrokenExecutor as e:
                        self._workers_died(executor, pending, inflight, [(a, b)], e)
                        break
                    except cf.CancelledError:   # pragma: no cover - shutdown raced
                        continue
                    self._block(blk)
                if self.exhausted:
                    self._abandon(pending)
            if self.exhausted or self._late(deadline, 1):
                break

    def _workers_died(self, executor: Any, pending: Pending,
                      inflight: dict[Any, tuple[int, int]],
                      lost: list[tuple[int, int]], e: BaseException) -> None:
        """A worker died (SIGKILL, OOM): run its block (and every other one the broken
        pool lost) again on fresh workers. Workers that die again and again (a crash,
        not an accident) end it."""
        lost += [inflight.pop(g) for g in list(inflight)]
        pending.push_back(lost)     # (still to run, if only for _frontier)
        if executor.restarts >= MAX_RESTARTS:
            raise WorkersLost(f"explore workers died {MAX_RESTARTS + 1} times ({e})",
                              self.done) from None
        executor.restart()

    def _abandon(self, pending: Pending, popped: int | None = None) -> None:
        """The epoch's blocks still to run will not (the deadline, the first failure, a
        search exhausted): the lowest of them (the one just ``popped``, or one a dead
        worker lost) is a hole nothing above may be recorded over (see _frontier)."""
        low = [x for x in (popped, pending.back[0][0] if pending.back else None)
               if x is not None]
        self._cut = min([self._cut, *low])
        pending.clear()

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
        # Its findings first: one that cannot be saved (a full disk) ends the exploration
        # before the block is queued as run, so that a resume runs it again.
        try:
            for i, sig, trace in blk.found:
                self.found.add(i, sig, trace)
            for i, sig, trace in blk.again:
                self.found.lower(i, sig, trace)
                old = self.again.get(sig)
                if old is None or i < old[0]:
                    self.again[sig] = (i, trace)
        except BaseException:
            self._cut = min(self._cut, blk.start)     # (no block above it counts now)
            raise
        cover, seen = self.cover, []
        for h, i in blk.cover:
            old = cover.get(h)
            if old is None:
                if len(cover) >= COVER_CAP:
                    self.capped = True
                    continue
                cover[h] = i
            elif i < old:
                cover[h] = i
            seen.append(h)
        if not blk.found and not blk.exhausted and blk.upto < blk.stop - 1:
            # Cut short (the deadline, a signal) before its end: the rest never ran, so
            # nothing above it can count yet (see _frontier).
            self._cut = min(self._cut, blk.upto + 1)
        if blk.upto >= blk.start:
            self.ran.append((blk.start, blk.upto))
            self.done += blk.done
            self.longest.append((blk.upto + 1, blk.longest))
            self._unflushed.append(_Ran(blk.start, blk.upto + 1, blk.longest, blk.hits, seen))
            if blk.last is not None and (self.last is None or blk.last[0] > self.last[0]):
                self.last = blk.last
        self.exhausted = self.exhausted or blk.exhausted
        if blk.hits:
            self.hit_blocks.append((blk.start, blk.hits))
        if self.progress is not None:
            self.progress(self.done, len(self.found.kept), len(self.cover))
        if time.monotonic() - self._flushed > FLUSH_EVERY:
            self._flush(None)

    def _finish(self) -> None:
        """The exploration is over: the findings that are final are minimized and
        recorded (and known bugs hit again whose trace file was lost get a new one),
        then every block that counts."""
        self.found.finish()
        limit = self.found.limit()
        self.found.heal({sig: at for sig, at in self.again.items() if at[0] <= limit})
        self._flush("done")

    # ------------------------------------------------------------------ the store
    def _flush(self, status: str | None) -> None:
        """Record the blocks that ended and count, each with its hits, interleavings and
        findings, in one transaction (``status``: the exploration is over).

        With ``keep_going`` every block counts. Without, only the schedules up to the
        first failure do, as with ``--jobs 1``: a block is recorded once every index
        below it has run (:meth:`_frontier`) and none failed below its start; blocks that
        never qualify (beyond the first failure, or above work cut short) are dropped at
        the end, so that the campaign lists exactly the schedules that counted, and a
        resume runs the others if they are ever needed.
        """
        self._flushed = time.monotonic()
        if self.db is None or self.cid is None:
            return
        ready, later = self._unflushed, []
        if not self.spec.keep_going:
            first, edge = self.found.first, self._frontier()
            ready = []
            for r in self._unflushed:
                (ready if r.start <= first and r.stop <= edge else later).append(r)
        self._unflushed = later if status is None else []
        now = time.monotonic()
        ranges = coalesce([(r.start, r.stop, r.longest) for r in ready])
        hits: dict[tuple, int] = {}
        for r in ready:
            for sig, n in r.hits.items():
                hits[sig] = hits.get(sig, 0) + n
        self.db.record(self.cid, ranges=ranges, cover=[h for r in ready for h in r.cover],
                       schedules=sum(r.stop - r.start for r in ready),
                       seconds=now - self._t0,
                       new_cover_at=self._new_cover_at(ready),
                       status=status, hits=hits, findings=self.found.store_rows(ranges))
        self._t0 = now
        if self.db.lost is None:
            self.found.empty_trash()

    def _new_cover_at(self, ready: list[_Ran]) -> int | None:
        """One past the last schedule, among ``ready``'s, that showed an interleaving
        first: by the lowest index each was seen at (whichever block came back first),
        so that it is the same for every ``--jobs``. None: no new one."""
        cover = self.cover
        last = max((cover[h] for r in ready for h in r.cover), default=-1)
        return last + 1 if last >= 0 else None

    def _frontier(self) -> int:
        """The lowest schedule index still to run (or running) in this epoch, or that a
        block cut short never ran: every index below it that this exploration runs has
        ended."""
        starts = [a for a, _ in self._inflight.values()] + [self._cut]
        p = self._pending
        if p is not None:
            if p.back:
                starts.append(p.back[0][0])
            if p.next is not None:
                starts.append(p.next[0])
        return min(starts, default=2**62)

    # ------------------------------------------------------------------ the answer
    def _counted(self, limit: int) -> int:
        """Schedules done this session with index <= ``limit``."""
        return sum(max(0, min(upto, limit) - a + 1) for a, upto in self.ran)

    def _hits(self, limit: int) -> dict[tuple, int]:
        """Failing schedules per signature, among those up to ``limit``. Counting whole
        blocks is exact: a block lies below the first failure, holds it (and stopped
        there), or lies above it."""
        out: dict[tuple, int] = {}
        for start, hits in self.hit_blocks:
            if start <= limit:
                for sig, n in hits.items():
                    out[sig] = out.get(sig, 0) + n
        return out

    def _result(self) -> ExploreResult:
        kept = self.found.sorted()
        limit = self.found.limit()
        n = self._counted(limit)
        hits = self._hits(limit)
        again = {sig: at for sig, at in self.again.items() if at[0] <= limit}
        known = []
        for k in self.known:
            sig = sig_from_text(k["signature"])
            known.append({**k, "hits_now": hits.get(sig, 0),
                          "again_at": again[sig][0] if sig in again else None})
        findings = [f.result for f in kept if f.result is not None]
        if findings:
            result = findings[0]
        elif again:
            # No new bug, but a known one again: that is the verdict (it is not fixed).
            sig, (i, trace) = min(again.items(), key=lambda kv: kv[1][0])
            result = self.found.known_result(i, sig, trace)
        else:
            if self.last is None:  # pragma: no cover - schedule 0 always runs
                raise RuntimeError("exploration ran no schedule")
            result = work.rerun(self.spec, self.last)
        bound = None
        stream = work.forget(self.token)
        search = getattr(stream, "search", None)
        if search is not None:
            if not findings and not search.whole:
                # The budget may have ended exactly where the space does: the search
                # knows only when asked for one more schedule (it runs none to answer).
                next(stream.bare, None)
            bound = search.coverage(n, failed=bool(findings))
        exhausted = self.exhausted if bound is None else bound["whole"]
        # Interleavings among the schedules counted (none beyond the first failure, which
        # only some job counts ran), and a resumed campaign's earlier ones (index -1).
        seen = sum(1 for i in self.cover.values() if i <= limit)
        return ExploreResult(result, n, findings, exhausted, seen, bound,
                             self.cid, self.first_index, known,
                             coverage=coverage_curve(self.cover, limit, self.first_index, n,
                                                     self.capped),
                             unrecorded=self.db.lost if self.db is not None else None,
                             capped=self.capped)


#: Points at most in an exploration's coverage curve (``ExploreResult.coverage``).
COVERAGE_POINTS = 200


def coverage_curve(cover: dict[int, int], limit: int, first: int, schedules: int,
                   capped: bool = False) -> list[tuple[int, int]]:
    """Distinct interleavings against schedules run, as ``(schedules, distinct)`` points:
    where each new interleaving first appeared (the lowest schedule index, so the curve
    is the same for every ``--jobs``), thinned to :data:`COVERAGE_POINTS`, ending at
    ``schedules``, or where counting stopped when ``capped`` (a flat line after it
    would read as saturation). A resumed campaign's earlier interleavings count from
    the start."""
    earlier = sum(1 for i in cover.values() if i < 0)
    firsts = sorted(i - first + 1 for i in cover.values() if 0 <= i <= limit)
    step = max(1, len(firsts) // COVERAGE_POINTS)
    pts = [(0, earlier)] + [(x, earlier + k + 1) for k, x in enumerate(firsts)
                            if k % step == 0 or k == len(firsts) - 1]
    if not capped:
        pts.append((max(schedules, pts[-1][0]), earlier + len(firsts)))
    return pts


def _futures() -> Any:
    import concurrent.futures
    return concurrent.futures
