"""Property tests of the kernel over randomly generated scenarios (Hypothesis).

Invariants checked at every scheduling point: lock ownership is consistent, no task is
lost (every task is runnable, blocked on a resource that lists it, sleeping on a timer, or
done), and every run ends in a verdict within its limits; the same seed gives the same
trace hash on both drivers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

import vmemu
from vmemu._kernel.drivers.trio_driver import run_trio
from vmemu._kernel.sync import Lock, Recursive, RWSem, Semaphore
from vmemu._kernel.task import BLOCKED, DONE, RUNNABLE, SLEEPING
from vmemu._run import new_kernel
from vmemu._scenario import load_scenario
from vmemu._strategies.random import RandomStrategy

LOCK_KINDS = ["mutex", "semaphore", "recursive", "rwsem", "spinlock"]


@st.composite
def scenarios(draw):
    n_locks = draw(st.integers(1, 3))
    locks = {f"L{i}": draw(st.sampled_from(LOCK_KINDS)) for i in range(n_locks)}
    ev_kind = draw(st.sampled_from(["waitqueue", "completion"]))
    lock_names = sorted(locks)
    rw = [n for n in lock_names if locks[n] == "rwsem"]
    step = st.one_of(
        st.sampled_from(lock_names).map(lambda n: {"lock": n}),
        st.sampled_from(lock_names).map(lambda n: {"unlock": n}),
        st.sampled_from(lock_names).map(lambda n: {"trylock": n}),
        *([st.sampled_from(rw).map(lambda n: {"read_lock": n}),
           st.sampled_from(rw).map(lambda n: {"read_unlock": n})] if rw else []),
        st.just("yield"),
        st.integers(0, 3).map(lambda n: {"sleep": n}),
        st.integers(-2, 2).map(lambda n: {"add": {"x": n}}),
        st.integers(0, 2).map(lambda n: {"set": {"x": n}}),
        st.sampled_from([{"signal": "ev"}, {"broadcast": "ev"}, {"complete": "ev"},
                         {"wait": "ev"}]),
        st.just({"assert": "x < 6"}),
    )
    # Mostly well-formed critical sections, sometimes raw (misuse must give `bug`).
    section = st.sampled_from(lock_names).flatmap(
        lambda n: st.lists(step, max_size=2).map(lambda body: [{"lock": n}, *body, {"unlock": n}]))
    chunk = st.one_of(section, step.map(lambda s: [s]))
    tasks = {}
    for i in range(draw(st.integers(1, 4))):
        steps = [s for c in draw(st.lists(chunk, min_size=1, max_size=5)) for s in c]
        tasks[f"t{i}"] = steps
    doc = {"name": "random", "limits": {"steps": 300, "ticks": 200, "hung_task_timeout": 50},
           "locks": locks, "events": {"ev": ev_kind}, "vars": {"x": 0}, "tasks": tasks}
    return yaml.safe_dump(doc, sort_keys=False)


def check_invariants(k):
    """Lock ownership and task accounting, as seen between two scheduling points."""
    for r in k.resources.values():
        if isinstance(r, Semaphore):
            assert r.count == r.initial - len(r.takers) >= 0
            for t in r.takers:
                assert r in t.held
        elif isinstance(r, RWSem):
            assert not (r.writer is not None and r.readers)
            for t in r.readers:
                assert r in t.held
            if r.writer is not None:
                assert r in r.writer.held
        elif isinstance(r, Lock):
            if r.owner is None:
                assert all(r not in t.held for t in k.tasks)
            else:
                held = sum(1 for x in r.owner.held if x is r)
                assert held == (r.depth if isinstance(r, Recursive) else 1)
                assert all(r not in t.held for t in k.tasks if t is not r.owner)
    runnable = list(k.runnable)   # the run queue: tasks sorted by tid
    timers = {t.tid for _, _, t in k.timers}
    for t in k.tasks:
        if t.state is RUNNABLE:
            assert t in runnable
        elif t.state is BLOCKED:
            assert t not in runnable
            assert any(w is t for w, _ in t.waiting_for.waiters), f"{t} lost"
        elif t.state is SLEEPING:
            assert t.tid in timers, f"{t} sleeps without a timer"
        else:
            assert t.state is DONE and t not in runnable


def checking(k, stats):
    """Wrap ``k.next_task`` so that the invariants are checked before every step (the
    state between two scheduling points, and the final one), counting into ``stats``.

    The event-loop drivers ask ``k.next_task()`` for every step, even when only one task
    can run (the direct driver decides those itself), so the check sees them all."""
    next_task = k.next_task

    def checked_next_task():
        check_invariants(k)
        stats["checks"] += 1
        stats["forced"] += len(k.runnable) == 1
        return next_task()

    k.next_task = checked_next_task


def _load(text):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "random.yaml"
        p.write_text(text)
        return load_scenario(str(p))


def test_kernel_invariants_hold_at_every_step():
    total = {"examples": 0, "checks": 0, "forced": 0, "fewest": 10**9}

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=scenarios(), seed=st.integers(0, 2**32))
    def invariants_hold(text, seed):
        sc = _load(text)
        k = new_kernel(sc, RandomStrategy(seed))
        stats = {"checks": 0, "forced": 0}
        checking(k, stats)
        trio.run(run_trio, k)
        # Before the first step and at the end at least, and before every decision.
        assert stats["checks"] >= 2 and stats["checks"] > len(k.tape)
        for key in ("checks", "forced"):
            total[key] += stats[key]
        total["examples"] += 1
        total["fewest"] = min(total["fewest"], stats["checks"])
        assert k.outcome is not None and k.outcome.verdict in vmemu.VERDICTS
        # Every run ends within its limits.
        assert k.steps <= sc.limits.steps + 1 and k.now <= sc.limits.ticks
        # No task is lost: each one is reported, and `ok` means each one finished.
        assert [t["name"] for t in k.final_tasks] == [t.name for t in sc.tasks]
        if k.outcome.verdict == "ok":
            assert all(t["state"] == "done" for t in k.final_tasks)
        if k.outcome.verdict == "deadlock":
            assert all(t["state"] != "runnable" for t in k.final_tasks)
            assert any(t["state"] == "blocked" for t in k.final_tasks)

    invariants_hold()
    # Every example was checked, including the steps where a single task could run
    # (which a strategy hook never sees): about 7 per example on average.
    assert total["examples"] >= 100 and total["fewest"] >= 2
    assert total["forced"] > 0 and total["checks"] > 3 * total["examples"], total


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=scenarios(), seed=st.integers(0, 2**32))
def test_same_seed_same_hash_on_both_drivers(text, seed):
    sc = _load(text)
    a = vmemu.run(sc, seed=seed, driver="direct")
    b = vmemu.run(sc, seed=seed, driver="direct")
    c = vmemu.run(sc, seed=seed, driver="trio")
    assert a.trace_hash == b.trace_hash == c.trace_hash
    assert a.verdict == c.verdict and a.trace.tape == c.trace.tape
