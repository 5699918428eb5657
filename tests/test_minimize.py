"""Minimization keeps the bug (verdict and cycle shape) and never adds preemptions."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import vmemu
from conftest import CONTRACT, io_retry_scenario, seed_reaching
from vmemu._cli import main
from vmemu._explore import signature
from vmemu._explore.minimize import TolerantReplay, minimize, preemptions
from vmemu._run import replay

ABBA = vmemu.load(str(CONTRACT / "abba.yaml"))
DINING = vmemu.load(str(CONTRACT / "dining_philosophers.yaml"))
LOST_WAKEUP = vmemu.load(str(CONTRACT / "lost_wakeup.yaml"))


def _failing(sc, *, start=0, faults=None, strategy="random"):
    for seed in range(start, start + 200):
        r = vmemu.run(sc, seed=seed, strategy=strategy, faults=faults, driver="direct")
        if r.failed:
            return r
    raise AssertionError(f"no failing schedule of {sc.name}")


def _most_preempting(sc, seeds=range(60)):
    """The failing random run with the most preemptions: the most to minimize."""
    rs = [vmemu.run(sc, seed=s, driver="direct") for s in seeds]
    return max((r for r in rs if r.failed), key=lambda r: (preemptions(r), -r.seed))


def test_abba_minimizes_to_one_preemption_and_replays_exactly():
    r = _most_preempting(ABBA)
    assert preemptions(r) > 1
    m = minimize(r)
    assert m.verdict == "deadlock" and signature(m) == signature(r)
    assert preemptions(m) == 1
    assert m.strategy == "minimized" and m.seed == r.seed
    # No `vmemu run` form rebuilds it: the report says to save and replay the trace.
    assert m.replay_command().startswith("vmemu replay TRACE.json")
    again = replay(m.trace, driver="direct")
    assert again.trace_hash == m.trace_hash
    assert replay(m.trace, driver="trio").trace_hash == m.trace_hash


def test_dining_philosophers_minimize_keeps_cycle_and_never_adds_preemptions():
    r = _most_preempting(DINING)
    m = minimize(r)
    assert m.verdict == r.verdict and m.cycle == r.cycle
    assert preemptions(m) < preemptions(r)
    assert replay(m.trace, driver="direct").trace_hash == m.trace_hash


def test_every_dining_deadlock_minimizes_to_its_one_necessary_preemption():
    # Three philosophers deadlock with one preemption and no fewer: start philosopher2
    # (a free choice), switch to philosopher1 after it takes fork2; every later switch is
    # forced by blocking. Removing deviations alone stalls at 2 or 3 preemptions; moving
    # them, choosing the start task and the one-switch sweep reach 1 from every schedule.
    failing = [r for r in (vmemu.run(DINING, seed=s, driver="direct") for s in range(40))
               if r.failed]
    assert len(failing) >= 10 and max(preemptions(r) for r in failing) >= 3
    for r in failing:
        m = minimize(r)
        assert (m.verdict, signature(m)) == (r.verdict, signature(r)), r.seed
        assert preemptions(m) == 1, r.seed


def test_minimized_trace_saved_replays_from_the_cli(tmp_path, capsys):
    m = minimize(_failing(LOST_WAKEUP))
    path = m.trace.save(tmp_path / "min.json")
    capsys.readouterr()
    assert main(["replay", path, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["trace_hash"] == m.trace_hash and out["verdict"] == "deadlock"
    assert out["strategy"] == "minimized"


def test_ok_result_is_returned_unchanged():
    r = vmemu.run(ABBA, seed=seed_reaching(ABBA.path, "ok"), driver="direct")
    assert r.verdict == "ok"
    assert minimize(r) is r


def test_max_runs_bounds_the_work_and_still_keeps_the_bug():
    r = _most_preempting(DINING)
    m = minimize(r, max_runs=1)   # only the re-recording of the original
    assert m.trace.tape == r.trace.tape and m.trace_hash == r.trace_hash


def test_minimize_drops_needless_faults(tmp_path):
    # The bug needs exactly one io_error; random runs fire several.
    path, plan = io_retry_scenario(tmp_path, repeats=4, probability=0.9)
    sc = vmemu.load(path)
    r = _failing(sc, faults=plan)
    m = minimize(r)
    assert m.verdict == "assertion"
    assert _fired(sc, plan, r) > 1 and _fired(sc, plan, m) == 1
    assert replay(m.trace, driver="direct").trace_hash == m.trace_hash


def _fired(sc, plan, r):
    probe = TolerantReplay(r.trace.tape)
    vmemu.run(sc, strategy=probe, faults=plan, driver="direct")
    return sum(1 for kind, v, _, _ in probe.log if kind == "bool" and v)


@settings(max_examples=15, deadline=None, database=None)
@given(seed=st.integers(0, 10_000), sc=st.sampled_from([ABBA, DINING, LOST_WAKEUP]))
def test_minimize_never_loses_the_bug_or_adds_preemptions(seed, sc):
    r = vmemu.run(sc, seed=seed, strategy="pct", steps_hint=8, driver="direct")
    if not r.failed:
        r = _failing(sc, start=seed)
    m = minimize(r, max_runs=40)
    assert signature(m) == signature(r)
    assert preemptions(m) <= preemptions(r)
    assert replay(m.trace, driver="direct").trace_hash == m.trace_hash


def _bundled_deadlocks():
    root = Path(__file__).resolve().parents[1] / "scenarios"
    paths = sorted(CONTRACT.glob("*.yaml")) + sorted(root.rglob("*.yaml")) \
        + [root / "python" / "abba.py"]
    return [p for p in paths if vmemu.load(str(p)).expect == "deadlock"]


def _fewest_by_dfs(sc, sig):
    """The preemptions of the first schedule with this signature that a
    preemption-bounded dfs finds: deepening runs every cheaper schedule first."""
    from vmemu._strategies import schedules
    for s in schedules("dfs", 0, bound="preemptions"):
        r = vmemu.run(sc, strategy=s, driver="direct")
        if r.failed and signature(r) == sig:
            return preemptions(r)
    raise AssertionError("dfs never found it")


def test_every_bundled_deadlock_minimizes_to_the_fewest_preemptions_dfs_needs(tmp_path):
    dining5 = tmp_path / "dining5.yaml"
    dining5.write_text((CONTRACT / "dining_philosophers.yaml").read_text()
                       .replace("count: 3", "count: 5"))
    paths = _bundled_deadlocks() + [dining5]
    assert len(paths) >= 10
    for path in paths:
        sc = vmemu.load(str(path))
        failing = [r for r in (vmemu.run(sc, seed=s, driver="direct") for s in range(30))
                   if r.failed][:8]
        assert failing, path
        # The schedules that preempt the most are the hardest to bring down.
        for r in sorted(failing, key=preemptions, reverse=True)[:2]:
            m = minimize(r)
            assert signature(m) == signature(r), path
            assert preemptions(m) == _fewest_by_dfs(sc, signature(r)), (path, r.seed)
            assert replay(m.trace, driver="direct").trace_hash == m.trace_hash
