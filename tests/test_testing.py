"""vmemu.testing: Hypothesis searches schedules and shrinks failures to few preemptions."""

from __future__ import annotations


import pytest
from hypothesis import find, given, settings

import vmemu
import vmemu.testing
from conftest import CONTRACT, io_retry_scenario
from vmemu._explore.minimize import preemptions

ABBA = vmemu.load(str(CONTRACT / "abba.yaml"))
ABBA_ORDERED = vmemu.load(str(CONTRACT / "abba_ordered.yaml"))
FAST = settings(max_examples=200, deadline=None, database=None, derandomize=True)


def test_failing_abba_property_shrinks_to_exactly_one_preemption():
    failing = []

    @FAST
    @given(vmemu.testing.schedules(ABBA))
    def never_deadlocks(sched):
        r = sched.run()
        if r.verdict != "ok":
            failing.append(sched)
        assert r.verdict == "ok"

    with pytest.raises(AssertionError):
        never_deadlocks()
    # Hypothesis runs the shrunk falsifying example last.
    minimal = failing[-1]
    assert minimal.verdict == "deadlock"
    assert minimal.preemptions == 1
    # Counted independently: replay the tape and count switches away from a runnable task.
    assert preemptions(minimal.result) == 1
    assert "1 preemption," in repr(minimal)


def test_find_gives_the_same_minimal_schedule_and_it_replays_on_every_driver():
    s = find(vmemu.testing.schedules(str(CONTRACT / "abba.yaml")),
             lambda s: s.verdict == "deadlock", settings=FAST)
    assert s.preemptions == 1
    for driver in ("trio", "direct"):
        assert s.run(driver=driver).trace_hash == s.result.trace_hash


def test_a_property_that_holds_passes():
    @settings(max_examples=40, deadline=None, database=None)
    @given(vmemu.testing.schedules(ABBA_ORDERED))
    def never_deadlocks(sched):
        assert sched.run().verdict == "ok"

    never_deadlocks()


def test_fault_decisions_are_drawn_and_shrink_to_one_firing(tmp_path):
    path, plan = io_retry_scenario(tmp_path, repeats=3, probability=0.5)
    strat = vmemu.testing.schedules(path, faults=plan)
    s = find(strat, lambda s: s.verdict == "assertion", settings=FAST)
    assert s.faults_fired == 1 and s.preemptions == 0


def test_saved_schedule_replays_from_the_cli(tmp_path):
    s = find(vmemu.testing.schedules(ABBA), lambda s: s.verdict == "deadlock", settings=FAST)
    path = s.save(tmp_path / "t.json")
    assert vmemu.replay(path).trace_hash == s.result.trace_hash
    assert s.result.replay_command() == f"vmemu replay {path}"


def test_unsaved_drawn_schedule_does_not_claim_a_seed_reproduces_it():
    s = find(vmemu.testing.schedules(ABBA), lambda s: s.verdict == "deadlock", settings=FAST)
    assert "--seed" not in s.result.replay_command()
    assert s.result.report().rstrip().endswith(
        "vmemu replay TRACE.json (save it first: result.trace.save('TRACE.json'))")


def test_bad_scenario_is_a_user_error_at_call_time(tmp_path):
    with pytest.raises(vmemu.UserError, match="nope.yaml"):
        vmemu.testing.schedules(str(tmp_path / "nope.yaml"))
