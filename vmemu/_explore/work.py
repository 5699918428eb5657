"""The workers of an exploration: who runs which schedule, in this process or in others.

An exploration is cut into *epochs* (ranges of schedule indices). In each epoch, the
``J`` workers claim blocks of :data:`BLOCK` consecutive indices from a shared counter,
in increasing order (:func:`blocks`), and each stops early only at an index above
the lowest failure found so far (unless ``--all``) or when time is up. So every schedule
below the first failure always runs, whatever ``J`` is, and the coordinator
(:mod:`vmemu._explore`) can report the lowest failing index: the answer never depends on
``J``. A worker starts each block with ``schedules(strategy, seed + block_start)``, so it
never builds the strategies of other workers' schedules.

A worker reports, as messages (tuples):

- ``("found", w, i, signature, trace, run_command)``: schedule ``i`` failed; sent before
  minimizing, so that the coordinator saves it at once (a crash or Ctrl-C loses nothing);
- ``("minimized", w, i, signature, trace)``: the minimized schedule of that finding;
- ``("progress", w, n)``: ``n`` more schedules done (batched, for the progress bar only);
- ``("epoch", w, done, upto, longest, exhausted, blocks, last)``: the worker's part of
  the epoch is done: ``done`` schedules, the last at index ``upto`` (the done ones are a
  prefix of the index ranges in ``blocks``, the ones it took, in order), ``longest`` run
  in decisions (PCT's steps hint), whether the strategy ran out of schedules, and its
  last run (a Result in-process, a Trace from a process);
- ``("error", w, kind, text)``: ``user`` (one-line UserError text) or ``internal``.

Worker processes come from the ``forkserver`` context where there is one (else
``spawn``): never ``fork``, as the host may be a threaded program (pytest, trio).
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import sys
import time
import traceback
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ._errors import UserError
from ._kernel import lockup
from ._run import _load_faults, run
from ._scenario import load_scenario
from ._strategies import schedules

#: ``stop_at`` while nothing has failed yet.
NO_FAILURE = 2**62
#: Consecutive schedules a worker takes at a time (even: see :func:`strategies`).
BLOCK = 64
#: Seconds between progress messages of a worker process.
PROGRESS_EVERY = 0.1
#: Imported once in the forkserver, so that each worker starts with them loaded (the
#: start-up of a pool is time a user waits for, on every `explore --jobs`).
PRELOAD = ["vmemu._explore_pool", "vmemu._minimize", "vmemu._explore",
           "vmemu._strategies.pct", "vmemu._strategies.dfs",
           "vmemu._strategies.hypothesis_strategy", "vmemu._kernel.mm"]


@dataclass(frozen=True)
class Spec:
    """What every worker needs to run schedules of one exploration (picklable)."""

    scenario_path: str
    scenario_hash: str
    faults_path: str | None
    strategy: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    driver: str = "direct"
    keep_going: bool = False
    minimize: bool = True
    jobs: int = 1


def strategies(spec: Spec, start: int, hint: int | None) -> Iterator[Any]:
    """Schedules ``start, start+1, ...`` of the exploration, as fresh strategies.

    Seeded strategies give schedule ``i`` the seed ``seed + i``, so the stream from
    ``start`` is the stream of an exploration seeded ``seed + start`` (``start`` is even:
    a portfolio alternates random and pct by index parity). ``hint`` pins PCT's steps hint.
    """
    params = dict(spec.params)
    if hint is not None:
        params["steps_hint"] = hint
    return schedules(spec.strategy, spec.seed + start, **params)


def blocks(start: int, stop: int, gate: Any, jobs: int) -> Iterator[tuple[int, int]]:
    """The index ranges of ``[start, stop)`` that this worker runs, in increasing order.

    One worker takes the whole epoch: a systematic search (dfs) builds each schedule from
    the run before it, so its stream must not be cut. Several workers claim the next
    block of :data:`BLOCK` indices from a shared counter whenever they are ready for
    one: claims only grow, so every index below a failure is claimed (and run) by
    someone, and a slow or descheduled worker leaves no more than a block for the others
    to wait on at the end of an epoch (fixed shares cost up to 40 % of an epoch on a
    busy machine).
    """
    if jobs == 1:
        yield start, stop
        return
    while (a := gate.claim()) < stop:
        yield a, min(a + BLOCK, stop)


class LocalGate:
    """Stop conditions shared by the workers, for a single in-process worker."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self._stop_at = NO_FAILURE

    def stop_at(self) -> int:
        return self._stop_at

    def lower(self, i: int) -> None:
        self._stop_at = min(self._stop_at, i)

    def stopped(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def halt(self) -> None:
        self.deadline = -1.0


class SharedGate:
    """The same, in shared memory between worker processes (the coordinator sets ``flag``)."""

    def __init__(self, ctx: Any) -> None:
        self.value = ctx.RawValue("q", NO_FAILURE)
        self.flag = ctx.RawValue("b", 0)
        self.next = ctx.RawValue("q", 0)     # the next unclaimed index of the epoch
        self.lock = ctx.Lock()

    def claim(self) -> int:
        """The first index of the next unclaimed block (``>= stop`` when none is left)."""
        with self.lock:
            a = self.next.value
            self.next.value = a + BLOCK
        return a

    def open_epoch(self, start: int) -> None:
        """Called by the coordinator before it hands out an epoch starting at ``start``."""
        with self.lock:
            self.next.value = start

    def stop_at(self) -> int:
        return self.value.value

    def lower(self, i: int) -> None:
        with self.lock:
            if i < self.value.value:
                self.value.value = i

    def stopped(self) -> bool:
        return bool(self.flag.value)

    def halt(self) -> None:
        self.flag.value = 1


class Runner:
    """One worker: runs its share of each epoch and reports what it finds."""

    def __init__(self, spec: Spec, scenario: Any, plan: Any, worker: int, gate: Any) -> None:
        self.spec = spec
        self.sc = scenario
        self.plan = plan
        self.w = worker
        self.gate = gate
        self.seen: set[tuple] = set()      # signatures this worker already reported
        self.on_done: Callable[[], None] = lambda: None

    def epoch(self, start: int, stop: int, hint: int | None) -> Iterator[tuple]:
        """Run this worker's schedules in ``[start, stop)``; the last message is ``epoch``."""
        spec, gate = self.spec, self.gate
        done, upto, longest, last, exhausted, halted = 0, start - 1, 0, None, False, False
        ran: list[tuple[int, int]] = []
        for a, b in blocks(start, stop, gate, spec.jobs):
            ran.append((a, b))
            it = strategies(spec, a, hint)
            for i in range(a, b):
                try:
                    strat = next(it)
                except StopIteration:
                    exhausted = halted = True
                    break
                # Time counts from the second schedule on: an exploration runs one at least.
                if (not spec.keep_going and i > gate.stop_at()) or (i > 0 and gate.stopped()):
                    halted = True
                    break
                r = run(self.sc, strategy=strat, faults=self.plan, driver=spec.driver)
                done, upto, last = done + 1, i, r
                longest = max(longest, getattr(strat, "decisions", 0))
                if r.failed:
                    yield from self._found(i, r)
                self.on_done()
            if halted:
                break
        else:
            # A systematic search that ends exactly at the budget is still exhausted: ask.
            if done and _exhaustive(spec.strategy):
                try:
                    next(it)
                except StopIteration:
                    exhausted = True
        yield ("epoch", self.w, done, upto, longest, exhausted, ran, last)

    def _found(self, i: int, r: Any) -> Iterator[tuple]:
        from ._explore import signature
        sig = signature(r)
        if sig in self.seen:      # this worker reported a lower schedule of the same bug
            return
        self.seen.add(sig)
        if not self.spec.keep_going:
            self.gate.lower(i)
        yield ("found", self.w, i, sig, r.trace, r.replay_command())
        trace = r.trace
        superseded = not self.spec.keep_going and self.gate.stop_at() < i
        if self.spec.minimize and not superseded:
            from ._minimize import minimize
            trace = minimize(r, driver="direct", faults=self.plan).trace
        yield ("minimized", self.w, i, sig, trace)


def _exhaustive(name: str) -> bool:
    from ._strategies import is_exhaustive
    return is_exhaustive(name)


def load(spec: Spec) -> tuple[Any, Any]:
    """The scenario and fault plan of ``spec``, as a worker process loads them."""
    sc = load_scenario(spec.scenario_path)
    if sc.content_hash != spec.scenario_hash:
        raise UserError("the scenario changed on disk while it was being explored",
                        file=spec.scenario_path)
    return sc, _load_faults(spec.faults_path)


def worker_main(spec: Spec, w: int, inbox: Any, outbox: Any, gate: SharedGate) -> None:
    """A worker process: run the epochs the coordinator sends until told to quit."""
    # Ctrl-C is the coordinator's business: it saves what was found and ends the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with lockup.shorter_after_first():
            _work(spec, w, inbox, outbox, gate)
    except UserError as e:
        outbox.put(("error", w, "user", str(e)))
    except BaseException:
        outbox.put(("error", w, "internal", traceback.format_exc()))


def _work(spec: Spec, w: int, inbox: Any, outbox: Any, gate: SharedGate) -> None:
    sc, plan = load(spec)
    runner = Runner(spec, sc, plan, w, gate)
    pending, last_sent = 0, time.monotonic()

    def on_done() -> None:
        nonlocal pending, last_sent
        pending += 1
        now = time.monotonic()
        if now - last_sent >= PROGRESS_EVERY:
            outbox.put(("progress", w, pending))
            pending, last_sent = 0, now

    runner.on_done = on_done
    while (msg := inbox.get())[0] == "epoch":
        for out in runner.epoch(*msg[1:]):
            if out[0] == "epoch":
                if pending:
                    outbox.put(("progress", w, pending))
                    pending = 0
                last = out[-1]
                out = out[:-1] + (last.trace if last is not None else None,)
            outbox.put(out)


class Pool:
    """``J`` worker processes and the queues to talk to them."""

    def __init__(self, spec: Spec) -> None:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            ctx.set_forkserver_preload(PRELOAD)
        self.spec = spec
        self.gate = SharedGate(ctx)
        self.outbox = ctx.Queue()
        self.inboxes = [ctx.Queue() for _ in range(spec.jobs)]
        self.procs = [ctx.Process(target=worker_main, name=f"vmemu-explore-{w}", daemon=True,
                                  args=(spec, w, self.inboxes[w], self.outbox, self.gate))
                      for w in range(spec.jobs)]
        # Started with SIGINT ignored, which they inherit: a Ctrl-C on the terminal reaches
        # the whole process group, and only the coordinator should react to it.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
        # Workers need nothing from the host's __main__; hiding it keeps spawn/forkserver
        # from re-running the user's script in every worker (a script without the
        # `if __name__ == "__main__":` guard would otherwise explore recursively).
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            for p in self.procs:
                p.start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main
            if old is not None:
                signal.signal(signal.SIGINT, old)

    def epoch(self, start: int, stop: int, hint: int | None,
              deadline: float | None) -> Iterator[tuple]:
        """Hand ``[start, stop)`` to every worker; yield their messages until all are done."""
        self.gate.open_epoch(start)
        for q in self.inboxes:
            q.put(("epoch", start, stop, hint))
        remaining = len(self.procs)
        while remaining:
            if deadline is not None and time.monotonic() > deadline:
                self.gate.halt()
            try:
                msg = self.outbox.get(timeout=PROGRESS_EVERY)
            except queue.Empty:
                self._check_alive()
                continue
            if msg[0] == "error":
                _, w, kind, text = msg
                if kind == "user":
                    raise UserError(text)
                raise RuntimeError(f"explore worker {w} failed:\n{text}")
            if msg[0] == "epoch":
                remaining -= 1
            yield msg

    def _check_alive(self) -> None:
        for p in self.procs:
            if not p.is_alive():
                raise RuntimeError(f"explore worker {p.name} died (exit code {p.exitcode})")

    def close(self) -> None:
        """Stop the workers: politely, then by force (they hold no state worth keeping)."""
        self.gate.halt()
        for q in self.inboxes:
            try:
                q.put(("quit",))
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 2.0
        for p in self.procs:
            while p.is_alive() and time.monotonic() < deadline:
                # A worker exits only once its queued messages are in the pipe: drain it.
                try:
                    self.outbox.get(timeout=0.01)
                except (queue.Empty, OSError, ValueError, EOFError):
                    pass
            p.join(max(0.0, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(1.0)
        for q in [*self.inboxes, self.outbox]:
            q.cancel_join_thread()
            q.close()


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()

