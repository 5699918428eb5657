"""The soft-lockup watchdog: a task that never reaches a scheduling point ends the run
with ``livelock`` instead of hanging the tool, on every driver, deterministically."""

from __future__ import annotations

import json
import textwrap

import pytest

import vmemu
from conftest import CONTRACT, seed_reaching, vmemu_cli
from vmemu._kernel import lockup
from vmemu._run import replay

SPIN = '''
    name = "spin"

    async def spinner(ctx):
        n = 0
        while True:        # no await: the kernel never gets control back
            n += 1

    async def other(ctx):
        await ctx.yield_()

    tasks = {"spinner": spinner, "other": other}
'''

# A busy-wait: spins only in the schedules where `waiter` runs before `setter` set go.
BUSY_WAIT = '''
    name = "busy-wait"
    vars = {"go": 0}

    async def setter(ctx):
        await ctx.yield_()
        ctx.vars["go"] = 1

    async def waiter(ctx):
        await ctx.yield_()
        while not ctx.vars["go"]:
            pass

    tasks = {"setter": setter, "waiter": waiter}
'''


@pytest.fixture
def fast_watchdog(monkeypatch):
    monkeypatch.setattr(lockup, "SOFT_LOCKUP_SECONDS", 0.3)


def _write(tmp_path, text, name):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


@pytest.mark.parametrize("driver", ["direct", "trio", "asyncio"])
def test_a_spinning_task_is_a_soft_lockup_not_a_hung_tool(tmp_path, fast_watchdog, driver):
    r = vmemu.run(_write(tmp_path, SPIN, "spin.py"), driver=driver)
    assert r.verdict == "livelock" and r.culprit == "spinner"
    assert r.message.startswith("BUG: soft lockup - task spinner never reached a "
                                "scheduling point")
    # It was stuck running, not done (the report and the JSON say so).
    assert {t["name"]: t["state"] for t in r.tasks}["spinner"] == "running"
    assert "    spinner: running" in r.report()
    assert r.trace_hash == vmemu.run(_write(tmp_path, SPIN, "spin.py"),
                                     driver="direct").trace_hash


def test_a_schedule_dependent_busy_wait_is_found_and_replays(tmp_path, fast_watchdog):
    path = _write(tmp_path, BUSY_WAIT, "busy.py")
    verdicts = {vmemu.run(path, seed=s, driver="direct").verdict for s in range(8)}
    assert verdicts == {"ok", "livelock"}
    x = vmemu.explore(path, runs=50, findings_dir=tmp_path / "f")
    assert x.verdict == "livelock" and x.result.culprit == "waiter"
    again = replay(x.result.trace_path, driver="direct")
    assert (again.verdict, again.trace_hash) == ("livelock", x.result.trace_hash)


def test_soft_lockup_verdicts_are_the_same_across_processes(tmp_path):
    path = _write(tmp_path, SPIN, "spin.py")
    env = {"VMEMU_SOFT_LOCKUP_SECONDS": "0.3"}
    runs = [vmemu_cli("run", path, "--json", env={**env, "PYTHONHASHSEED": h})
            for h in ("0", "1")]
    outs = [json.loads(p.stdout) for p in runs]
    assert [p.returncode for p in runs] == [1, 1]
    assert outs[0]["verdict"] == "livelock" and outs[0] == outs[1]


def test_a_long_run_that_keeps_reaching_scheduling_points_is_not_a_lockup(
        tmp_path, fast_watchdog):
    # Far longer than the threshold in all, but every step is short: steps keep moving.
    path = _write(tmp_path, """
        name = "long"
        limits = {"steps": 10**7}

        async def worker(ctx):
            for _ in range(1_000_000):
                await ctx.yield_()

        tasks = {"a": worker, "b": worker}
    """, "long.py")
    r = vmemu.run(path, driver="direct")
    assert r.verdict == "ok" and r.steps > 2_000_000


@pytest.mark.parametrize("value", ["abc", "-1", "0", "inf"])
def test_a_bad_threshold_in_the_environment_is_one_line_exit_2(value):
    p = vmemu_cli("run", str(CONTRACT / "abba.yaml"),
                  env={"VMEMU_SOFT_LOCKUP_SECONDS": value})
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == (f"vmemu: error: VMEMU_SOFT_LOCKUP_SECONDS: expected a "
                                f"positive number of seconds like 5, got {value!r}; unset "
                                "it or fix it")


def test_an_exploration_calls_repeated_lockups_sooner(tmp_path, monkeypatch):
    # `explore --all` of a busy-wait scenario locks up in many schedules: after the first
    # one, the exploration stops the next ones after REPEAT_SECONDS of CPU, not the full
    # threshold. What the runs report does not change (the message has no seconds).
    monkeypatch.setattr(lockup, "SOFT_LOCKUP_SECONDS", 0.6)
    monkeypatch.setattr(lockup, "REPEAT_SECONDS", 0.1)
    path = _write(tmp_path, BUSY_WAIT, "busy.py")
    assert lockup._threshold() == 0.6
    with lockup.shorter_after_first():
        first = vmemu.run(path, seed=seed_reaching(path, "livelock"), driver="direct")
        assert lockup._threshold() == 0.1
        x = vmemu.explore(path, runs=30, keep_going=True)
    assert lockup._threshold() == 0.6          # only inside an exploration
    assert [f.verdict for f in x.findings] == ["livelock"]
    assert x.findings[0].message == first.message
