"""The Python API: load, run, explore, replay, arun inside trio, Python scenarios."""

from __future__ import annotations

import textwrap

import pytest
import trio

import vmemu
from conftest import CONTRACT, ROOT, LockLog, cli_json, seed_reaching

ABBA = str(CONTRACT / "abba.yaml")
ABBA_SEED = seed_reaching(ABBA, "deadlock")  # a schedule that deadlocks


@pytest.mark.trio
async def test_arun_tells_observers_what_run_tells_them():
    a, b = LockLog(), LockLog()
    r = await vmemu.arun(ABBA, seed=ABBA_SEED, observers=[a])
    vmemu.run(ABBA, seed=ABBA_SEED, driver="direct", observers=[b])
    assert r.verdict == "deadlock" and a.ops == b.ops
    assert ("acquiring", "t1", "A", "lock") in a.ops


@pytest.mark.trio
async def test_arun_inside_a_trio_program():
    # Other trio tasks keep running beside the emulation; determinism is unaffected.
    ticks = 0

    async def bystander():
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bystander)
        r = await vmemu.arun(ABBA, seed=ABBA_SEED)
        nursery.cancel_scope.cancel()
    assert r.verdict == "deadlock"
    assert r.trace_hash == vmemu.run(ABBA, seed=ABBA_SEED, driver="direct").trace_hash


def test_result_object():
    r = vmemu.run(ABBA, seed=ABBA_SEED)
    assert r.failed and r.verdict == "deadlock"
    assert r.trace.tape and r.trace_hash == r.trace.trace_hash
    j = r.to_json()
    for key in ("verdict", "scenario", "seed", "strategy", "steps", "ticks", "trace_hash",
                "tasks", "cycle", "trace"):
        assert key in j
    for t in j["tasks"]:
        assert set(t) >= {"name", "state", "waiting_for", "holding", "stack"}
    assert vmemu.replay(r.trace).trace_hash == r.trace_hash


def test_explore_api_returns_first_failure():
    x = vmemu.explore(ABBA, runs=50)
    assert x.verdict == "deadlock" and 1 <= x.schedules <= 50


def test_python_scenario_module(tmp_path):
    p = tmp_path / "pyscen.py"
    p.write_text(textwrap.dedent('''
        expect = "assertion"
        locks = {"m": "mutex"}
        vars = {"x": 0}

        async def incr(ctx):
            # A racy read-modify-write: the read happens before the lock.
            old = ctx.vars["x"]
            async with ctx.lock("m"):
                ctx.vars["x"] = old + 1

        async def check(ctx):
            await ctx.sleep(5)
            ctx.check(ctx.vars["x"] == 2, "lost update")

        tasks = {"a": incr, "b": incr, "checker": check}
    '''))
    x = vmemu.explore(str(p), runs=200)
    assert x.verdict == "assertion" and "lost update" in x.result.message
    assert vmemu.load(str(p)).expect == "assertion"


def test_python_scenario_stack_points_at_source_lines():
    r = vmemu.explore(str(ROOT / "scenarios" / "python" / "abba.py"), runs=50).result
    assert r.verdict == "deadlock"
    at = {t["name"]: t["stack"][-1]["at"] for t in r.tasks}
    assert at["t1"].endswith("abba.py:12") and at["t2"].endswith("abba.py:19")


def test_python_scenario_errors_are_one_line(tmp_path):
    p = tmp_path / "broken.py"
    p.write_text("locks = {'m': 'mutx'}\nasync def t(ctx):\n    pass\ntasks = {'t': t}\n")
    with pytest.raises(vmemu.ScenarioError) as e:
        vmemu.load(str(p))
    assert "mutx" in str(e.value) and "mutex" in str(e.value) and "\n" not in str(e.value)
    p.write_text("tasks = {'t': lambda ctx: None}\n")
    with pytest.raises(vmemu.ScenarioError, match="async def"):
        vmemu.load(str(p))
    p.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(vmemu.ScenarioError, match="boom"):
        vmemu.load(str(p))


def test_python_task_using_unknown_lock_is_a_bug(tmp_path):
    p = tmp_path / "unk.py"
    p.write_text("locks = {'superblock': 'mutex'}\n"
                 "async def t(ctx):\n    await ctx.lock('superblok').acquire()\n"
                 "tasks = {'t': t}\n")
    r = vmemu.run(str(p))
    assert r.verdict == "bug" and "did you mean 'superblock'" in r.message


def test_lock_statistics_shape(tmp_path):
    p = tmp_path / "stats.py"
    p.write_text(textwrap.dedent('''
        locks = {"m": "mutex"}
        async def t(ctx):
            m = ctx.lock("m")
            assert not m.locked()
            async with m:
                s = m.statistics()
                ctx.check(m.locked() and s.owner == "t" and s.tasks_waiting == 0, "stats")
        tasks = {"t": t}
    '''))
    assert vmemu.run(str(p)).verdict == "ok"


def test_cli_json_fields_for_python_scenario():
    py_abba = ROOT / "scenarios" / "python" / "abba.py"
    d = cli_json("run", str(py_abba), "--seed", str(seed_reaching(py_abba, "deadlock")))
    assert d["verdict"] == "deadlock" and d["scenario"] == "abba-python"
