"""Fault plans: loading and its errors, every action and filter, the Linux attributes,
and exact replay of probabilistic firing decisions from a saved trace."""

from __future__ import annotations

import json

import pytest

import vmemu
from conftest import ROOT, cli_json, vmemu_cli
from vmemu._errors import DivergenceError, FaultPlanError
from vmemu._faults import load_fault_plan

AMPLE = str(ROOT / "scenarios" / "ext2_bitmap_ample_memory.yaml")
FAULTS = ROOT / "faults"

ATOMICS = """
name: atomics
memory: {pages: 64, watermarks: {min: 2, low: 4, high: 8}}
tasks:
  t:
    - repeat: 8
      do:
        - alloc: 1
          gfp: GFP_ATOMIC
          may_fail: true
          as: p
        - free: p
"""


@pytest.fixture
def plan(write_scenario):
    """Write a fault plan into the test's temp folder (the same writer as scenarios)."""
    return lambda text, name="plan.yaml": write_scenario(text, name)


def outcomes(r):
    """Per allocation, in order: True if it succeeded."""
    return [e[2] == "alloc" for e in r.trace.events if e[2] in ("alloc", "alloc_fail")]


# ------------------------------------------------------------------ bad plans
@pytest.mark.parametrize("text, line, needle", [
    ("faults:\n  - at: alloc\n    do: exhast\n", 3,
     "faults[0].do: unknown action 'exhast' (did you mean 'exhaust'?)"),
    ("faults:\n  - at: lock\n    do: exhaust\n", 3, "exhaust only works at: alloc"),
    ("faults:\n  - at: alloc\n    do: io_error\n", 3, "io_error only works at: io"),
    ("faults:\n  - at: allocc\n    do: fail\n", 2,
     "unknown site 'allocc' (did you mean 'alloc'?)"),
    ("faults:\n  - at: alloc\n    do: fail\n    probabilty: 0.5\n", 4,
     "unknown key 'probabilty' in a fault rule (did you mean 'probability'?)"),
    ("faults:\n  - at: alloc\n    do: fail\n    probability: 1.5\n", 4,
     "probability must be a number from 0 to 1"),
    ("faults:\n  - at: io\n    do: delay\n", 3, "write do: {delay: N}"),
    ("faults:\n  - at: io\n    do: {delay: 0}\n", 3, "delay needs a positive number"),
    ("faults:\n  - at: lock\n    where: {gfp: GFP_KERNEL}\n    do: preempt\n", 3,
     "gfp filters only apply at alloc"),
    ("faults:\n  - at: alloc\n    where: {gfp: GFP_KERNAL}\n    do: fail\n", 3,
     "unknown GFP mask 'GFP_KERNAL' (did you mean 'GFP_KERNEL'?)"),
    ("faults:\n  - at: alloc\n    do: fail\n    times: -2\n", 4, "times must be an integer >= -1"),
    ("faults:\n  - at: alloc\n    do: fail\n    ignore_gfp_wait: maybe\n", 4,
     "ignore_gfp_wait must be true or false"),
    ("faults: []\n", 1, "needs a non-empty list of rules"),
    ("faults:\n  - at: alloc\n    do: fail\n  - {at: io}\n", 4, "a rule needs do:"),
    ("faults:\n  - at: alloc\n     do: fail\n", 3, "line 3"),
])
def test_bad_plan_is_one_line_naming_file_line_and_key(plan, text, line, needle):
    path = plan(text)
    with pytest.raises(FaultPlanError) as e:
        load_fault_plan(path)
    assert needle in str(e.value)
    assert str(e.value).startswith(f"{path}:{line}: ")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("command", ["run", "explore"])
def test_bad_plan_on_the_command_line_exits_2_with_one_line(plan, command):
    path = plan("faults:\n  - at: alloc\n    do: exhast\n")
    p = vmemu_cli(command, AMPLE, "--faults", path)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == (f"vmemu: error: {path}:3: faults[0].do: unknown action "
                                "'exhast' (did you mean 'exhaust'?); actions: exhaust, fail, "
                                "{delay: N}, preempt, io_error")


def test_missing_plan_file(tmp_path):
    p = vmemu_cli("run", AMPLE, "--faults", str(tmp_path / "nope.yaml"))
    assert p.returncode == 2 and "no such fault plan file" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("where, needle", [
    ("{task: ext2_new_blok}", "no task 'ext2_new_blok' in scenario"),
    ("{within: breed}", "no routine 'breed' in scenario"),
])
def test_filter_names_are_checked_against_the_scenario(plan, where, needle):
    path = plan(f"faults:\n  - at: alloc\n    where: {where}\n    do: exhaust\n")
    p = vmemu_cli("explore", AMPLE, "--faults", path)
    assert p.returncode == 2, p.stdout
    line = p.stderr.strip()
    assert len(line.splitlines()) == 1 and needle in line and "did you mean" in line
    assert f"{path}:3: faults[0].where." in line


def test_globs_in_filters_are_not_checked(plan):
    path = plan("faults:\n  - at: alloc\n    where: {task: 'ext2_*'}\n    do: exhaust\n")
    assert vmemu.run(AMPLE, faults=path).verdict == "deadlock"


# ------------------------------------------------------------------ actions
def test_exhaust_turns_ample_memory_into_the_1999_deadlock():
    assert vmemu.explore(AMPLE, runs=50).verdict == "ok"
    d = cli_json("run", AMPLE, "--faults", str(FAULTS / "low_memory_in_bread.yaml"))
    assert d["verdict"] == "deadlock"
    assert d["cycle"][0]["task"] == "ext2_new_block"
    assert d["cycle"][0]["waits_for"] == "semaphore superblock"
    # The invisible hog keeps conservation: free + hogged + ... == pages.
    mem = d["memory"]
    assert mem["free"] == 2 and mem["hogged"] == 32
    assert sum(mem[k] for k in ("free", "allocated", "cached", "writeback", "hogged")) == 64
    assert "--faults" in d["replay"]


def test_fail_spares_sleeping_allocs_unless_ignore_gfp_wait_is_false(plan, write_scenario):
    sc = write_scenario(ATOMICS.replace("GFP_ATOMIC", "GFP_KERNEL"))
    spared = vmemu.run(sc, faults=plan("faults:\n  - {at: alloc, do: fail}\n"))
    assert spared.verdict == "ok" and all(outcomes(spared))
    hit = vmemu.run(sc, faults=plan("faults:\n  - {at: alloc, do: fail, "
                                    "ignore_gfp_wait: false}\n"))
    assert hit.verdict == "ok" and not any(outcomes(hit))


def test_unhandled_injected_failure_is_oom(plan, write_scenario):
    sc = write_scenario(ATOMICS.replace("          may_fail: true\n", ""))
    r = vmemu.run(sc, faults=plan("faults:\n  - {at: alloc, do: fail, times: 1}\n"))
    assert r.verdict == "oom" and "a fault plan failed it" in r.message


@pytest.mark.parametrize("attrs, expect", [
    ("times: 2", [False, False, True, True, True, True, True, True]),
    ("interval: 3", [True, True, False, True, True, False, True, True]),
    ("interval: 3, times: 1", [True, True, False, True, True, True, True, True]),
    ("space: 3", [True, True, False, False, False, False, False, False]),
])
def test_linux_attributes_times_interval_space(plan, write_scenario, attrs, expect):
    r = vmemu.run(write_scenario(ATOMICS),
                  faults=plan(f"faults:\n  - {{at: alloc, do: fail, {attrs}}}\n"))
    assert outcomes(r) == expect


def test_task_and_gfp_filters(plan, write_scenario):
    sc = write_scenario(ATOMICS + """  u:
    - alloc: 1
      gfp: GFP_NOWAIT
      may_fail: true
      as: q
""")
    r = vmemu.run(sc, faults=plan("faults:\n  - {at: alloc, where: {task: u}, do: fail}\n"))
    assert [e[1] for e in r.trace.events if e[2] == "alloc_fail"] == ["u"]
    r = vmemu.run(sc, faults=plan("faults:\n  - {at: alloc, where: {gfp: GFP_ATOMIC}, "
                                  "do: fail}\n"))
    assert {e[1] for e in r.trace.events if e[2] == "alloc_fail"} == {"t"}


POINTS = """
name: points
limits: {hung_task_timeout: 100}
locks: {m: mutex}
tasks:
  t:
    - point: before_io
    - io: 2
    - assert: "ok == 1"
    - lock: m
    - unlock: m
"""


def test_delay_at_a_named_point(plan, write_scenario):
    sc = write_scenario(POINTS)
    assert vmemu.run(sc).ticks == 2
    r = vmemu.run(sc, faults=plan("faults:\n  - {at: point, where: {name: before_io}, "
                                  "do: {delay: 40}}\n"))
    assert r.verdict == "ok" and r.ticks == 42
    bad = plan("faults:\n  - {at: point, where: {name: befor_io}, do: {delay: 1}}\n")
    with pytest.raises(FaultPlanError, match="no fault point 'befor_io'.*did you mean"):
        vmemu.run(sc, faults=bad)


def test_io_error_fails_the_io(plan, write_scenario):
    r = vmemu.run(write_scenario(POINTS), faults=plan("faults:\n  - {at: io, do: io_error}\n"))
    assert r.verdict == "assertion"
    assert any(e[2] == "io" and e[3] == "2 error" for e in r.trace.events)


def test_preempt_at_lock_and_within_filter(plan):
    # Preempt ext2_new_block right before it takes the superblock lock, inside bread only
    # (that is writeback's lock, never reached here): no effect. At the task's own lock
    # the preemption is recorded.
    inside = vmemu.run(AMPLE, faults=plan("faults:\n  - {at: lock, where: {within: bread}, "
                                          "do: preempt}\n"))
    assert not [e for e in inside.trace.events if e[2] == "preempt"]
    r = vmemu.run(AMPLE, faults=plan("faults:\n  - {at: lock, where: {task: ext2_new_block,"
                                     " name: superblock}, do: preempt}\n"))
    assert [e[1] for e in r.trace.events if e[2] == "preempt"] == ["ext2_new_block"]
    assert r.verdict == "ok"


# ------------------------------------------------------------------ determinism
def test_probabilistic_firing_is_a_recorded_decision_that_replays(tmp_path):
    plan_path = str(FAULTS / "random_low_memory.yaml")
    first = {}
    for seed in range(12):
        first.setdefault(vmemu.run(AMPLE, seed=seed, faults=plan_path,
                                   driver="direct").verdict, seed)
    # The coin decides: some runs deadlock, some do not.
    assert set(first) == {"ok", "deadlock"}
    for verdict, seed in first.items():
        out = tmp_path / f"t{seed}.json"
        d = cli_json("run", AMPLE, "--faults", plan_path, "--seed", str(seed),
                     "--trace", str(out))
        assert d["verdict"] == verdict and d["decisions"] >= 1
        for driver in ("trio", "direct"):
            rep = cli_json("replay", str(out), "--driver", driver)
            assert rep["trace_hash"] == d["trace_hash"]
            assert rep["verdict"] == verdict


def test_firing_decisions_are_on_the_tape(plan, write_scenario):
    sc = write_scenario(ATOMICS)
    r = vmemu.run(sc, seed=3, faults=plan("faults:\n  - {at: alloc, do: fail, "
                                          "probability: 0.5}\n"))
    assert len(r.trace.tape) == 8                # one coin per allocation, one task
    assert [not ok for ok in outcomes(r)] == [bool(v) for v in r.trace.tape]
    again = vmemu.run(sc, seed=3, faults=r.faults, driver="direct")
    assert again.trace_hash == r.trace_hash


def test_a_fault_plan_that_is_not_a_regular_file_is_one_line(tmp_path):
    for path, says in (("/dev/null", "is a character device, not a fault plan file"),
                       (str(tmp_path), "is a directory, not a fault plan file"),
                       (str(tmp_path / "nope.yaml"), "no such fault plan file")):
        p = vmemu_cli("run", str(ROOT / "scenarios" / "ext2_bitmap_ample_memory.yaml"),
                      "--faults", path)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        assert p.stderr.strip().splitlines() == [f"vmemu: error: {path}: --faults: "
                                                 + p.stderr.split("--faults: ", 1)[1].strip()]
        assert says in p.stderr


@pytest.mark.parametrize("strategy", ["random", "dfs"])
def test_a_certain_fault_is_no_decision_of_the_strategy(plan, write_scenario, strategy):
    # probability 1 (the default) fires every time without asking the strategy: nothing
    # lands on the tape, and a systematic search cannot choose to let it pass (dfs tries
    # "does not fire" first for a real coin).
    r = vmemu.run(write_scenario(ATOMICS), strategy=strategy,
                  faults=plan("faults:\n  - {at: alloc, do: fail, times: 3}\n"))
    assert outcomes(r) == [False, False, False, True, True, True, True, True]
    assert r.trace.tape == []


@pytest.mark.parametrize("tape, says", [
    ("20100110", "answers 2 where a fault decision at faults[0] fail at alloc needs 0 or 1"),
    ("1010011", "asks for another (fault at faults[0] fail at alloc)"),
])
def test_a_replay_that_diverges_at_a_fault_names_the_rule_and_site(plan, write_scenario,
                                                                    tmp_path, tape, says):
    # A trace edited by hand (or a plan changed since): the message says which rule's
    # coin the replay stumbled on.
    r = vmemu.run(write_scenario(ATOMICS), seed=3,
                  faults=plan("faults:\n  - {at: alloc, do: fail, probability: 0.5}\n"))
    path = tmp_path / "t.json"
    r.trace.save(str(path))
    d = json.loads(path.read_text())
    assert d["tape"] == "10100110"
    d["tape"] = tape
    path.write_text(json.dumps(d))
    with pytest.raises(DivergenceError) as e:
        vmemu.replay(str(path), driver="direct")
    assert says in str(e.value)


PREEMPTED = """
name: preempted
locks: {m: mutex, n: mutex}
tasks:
  t: [{lock: m}, {unlock: m}]
  u: [{lock: n}, {unlock: n}, {lock: n}, {unlock: n}, {lock: n}, {unlock: n}]
"""


def test_a_preempted_task_lets_the_other_run_first_on_every_driver(plan, write_scenario):
    # `preempt` at t's lock: u (runnable) must run before t goes on, whatever the
    # strategy would have picked (dfs keeps running the task that runs), and the direct
    # driver's own fast path (random has one) must honour it as the kernel does.
    sc = write_scenario(PREEMPTED)
    faults = plan("faults:\n  - {at: lock, where: {task: t}, do: preempt}\n")
    r = vmemu.run(sc, strategy="dfs", faults=faults, driver="direct")
    ev = [e[1:4] for e in r.trace.events]
    assert ev[:3] == [["t", "fault", "preempt at lock m (faults[0])"], ["t", "preempt", None],
                      ["u", "lock", "n"]]
    assert ev.index(["u", "lock", "n"]) < ev.index(["t", "lock", "m"])
    for seed in range(8):
        runs = [vmemu.run(sc, seed=seed, faults=faults, driver=d)
                for d in ("direct", "trio", "asyncio")]
        assert len({r.trace_hash for r in runs}) == 1, seed
