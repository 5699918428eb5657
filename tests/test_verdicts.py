"""Each verdict of DESIGN §3, produced by a small scenario, with the report a user reads."""

from __future__ import annotations

import pytest

import vmemu


def explore(path, runs=300):
    return vmemu.explore(path, runs=runs, driver="direct").result


def test_self_deadlock_is_a_cycle_of_one(write_scenario):
    r = explore(write_scenario("""
locks: {m: mutex}
tasks:
  t: [{lock: m}, {lock: m}]
"""))
    assert r.verdict == "deadlock"
    assert r.cycle == [{"task": "t", "waits_for": "mutex m", "held_by": "t", "edge": "lock",
                        "text": "t waits for mutex m held by t"}]


def test_waiting_for_an_event_nobody_signals_is_a_deadlock_without_cycle(write_scenario):
    r = explore(write_scenario("""
events: {done: completion}
tasks:
  waiter: [{wait: done}]
  other: [yield]
"""))
    assert r.verdict == "deadlock" and r.cycle == []
    waiter = next(t for t in r.tasks if t["name"] == "waiter")
    assert waiter["state"] == "blocked"
    assert "completion done" in waiter["waiting_for"] and "nobody" in waiter["waiting_for"]
    assert "waits for completion done" in r.message


def test_hang_is_reported_like_khungtaskd(write_scenario):
    r = explore(write_scenario("""
limits: {hung_task_timeout: 20}
locks: {m: mutex}
tasks:
  holder: [{lock: m}, {sleep: 100}, {unlock: m}]
  victim: [{sleep: 1}, {lock: m}, {unlock: m}]
"""))
    assert r.verdict == "hang"
    assert r.message.startswith("INFO: task victim blocked for more than 20 ticks")
    assert r.culprit == "victim"


def test_livelock_when_the_step_budget_runs_out(write_scenario):
    r = explore(write_scenario("""
limits: {steps: 200}
vars: {x: 0}
tasks:
  spinner:
    - while: "x == 0"
      do: [yield]
  other: [yield]
"""), runs=3)
    assert r.verdict == "livelock" and "step budget of 200" in r.message


def test_livelock_without_scheduling_points_still_terminates(write_scenario):
    # A loop of pure computation has no scheduling point; the budget still ends it.
    r = explore(write_scenario("""
limits: {steps: 500}
vars: {x: 0}
tasks:
  t:
    - while: "1"
      do: [{assert: "x == 0"}]
"""), runs=1)
    assert r.verdict == "livelock"


def test_assertion(write_scenario):
    r = explore(write_scenario("""
vars: {x: 0}
tasks:
  a: [{add: {x: 1}}, {assert: "x == 1"}]
  b: [{add: {x: 1}}]
"""))
    assert r.verdict == "assertion"
    assert "'x == 1'" in r.message and "x=2" in r.message


@pytest.mark.parametrize("steps,needle", [
    ("[{unlock: m}]", "not held"),
    ("[{lock: m}, {unlock: m}, {unlock: m}]", "not held"),
    ("[{lock: s}, {sleep: 1}, {unlock: s}]", "while holding spinlock s"),
    ("[{lock: s}, {lock: m}, {unlock: m}, {unlock: s}]", "while holding spinlock s"),
    ("[{call: r}]", "call depth"),
    ("[{lock: m}]", "exited holding m"),
])
def test_bug(write_scenario, steps, needle):
    r = explore(write_scenario(f"""
locks: {{m: mutex, s: spinlock}}
routines:
  r: [{{call: r}}]
tasks:
  t: {steps}
"""), runs=1)
    assert r.verdict == "bug"
    assert needle in r.message


def test_semaphore_double_up_is_a_bug(write_scenario):
    r = explore(write_scenario("""
locks: {sem: semaphore}
tasks:
  t: [{lock: sem}, {unlock: sem}, {unlock: sem}]
"""), runs=1)
    assert r.verdict == "bug" and "double unlock" in r.message


def test_semaphore_may_be_released_by_another_task(write_scenario):
    r = explore(write_scenario("""
locks: {sem: semaphore}
events: {taken: completion}
tasks:
  a: [{lock: sem}, {complete: taken}]
  b: [{wait: taken}, {unlock: sem}]
"""))
    assert r.verdict == "ok"


def test_ok_report_is_short(write_scenario):
    r = explore(write_scenario("tasks:\n  t: [yield]\n"), runs=5)
    assert r.verdict == "ok" and r.report().count("\n") == 0


def test_failure_report_lists_every_task_and_ends_with_replay(write_scenario):
    path = write_scenario("""
locks: {A: mutex, B: mutex}
tasks:
  t1: [{lock: A}, yield, {lock: B}, {unlock: B}, {unlock: A}]
  t2: [{lock: B}, yield, {lock: A}, {unlock: A}, {unlock: B}]
  bystander: [yield]
""")
    r = explore(path)
    text = r.report()
    assert r.verdict == "deadlock"
    for name in ("t1", "t2", "bystander"):
        assert f"    {name}: " in text
    assert f"{path}:4" in text or f"{path}:5" in text   # scenario lines of the blocked steps
    assert text.rstrip().splitlines()[-1].startswith("replay: vmemu ")


_DAEMON_HOLDS = '''
name = "daemon_holds"
locks = {"A": "mutex"}
events = {"wq": "waitqueue"}


async def main(ctx):
    await ctx.yield_()


async def keeper(ctx):
    async with ctx.lock("A"):
        await ctx.event("wq").wait(state="interruptible")


tasks = {"main": main, "keeper": {"fn": keeper, "daemon": True}}
'''


@pytest.mark.parametrize("driver", ["direct", "asyncio"])
def test_an_ok_run_reports_a_daemon_as_it_was_at_the_verdict(tmp_path, driver):
    # Every non-daemon task is done, so the run is `ok`; the daemon still waits, holding
    # A. Ending the run unwinds it (back through its `async with`), but the report shows
    # the moment of the verdict, as for every other verdict: the line of its wait.
    path = tmp_path / "daemon_holds.py"
    path.write_text(_DAEMON_HOLDS)
    r = vmemu.run(str(path), driver=driver)
    assert r.verdict == "ok"
    keeper = next(t for t in r.tasks if t["name"] == "keeper")
    assert keeper["state"] == "blocked" and keeper["holding"] == ["A"]
    assert keeper["waiting_for"].startswith("waitqueue wq")
    wait_line = _DAEMON_HOLDS.splitlines().index(
        '        await ctx.event("wq").wait(state="interruptible")') + 1
    assert keeper["stack"][-1]["at"] == f"{path}:{wait_line}"


@pytest.mark.parametrize("daemon", ["true", "false"])
def test_a_task_or_kthread_that_exits_holding_locks_is_a_bug_naming_them(write_scenario,
                                                                         daemon):
    # Linux's do_exit() checks every task (debug_check_no_locks_held), kthreads too; a
    # daemon was exempt here once, and its run `ok`.
    text = """
locks: {A: mutex, B: mutex}
tasks:
  worker: [yield]
  holder:
    daemon: DAEMON
    steps: [{lock: A}, {lock: B}]
"""
    bug = vmemu.run(write_scenario(text.replace("DAEMON", daemon)), driver="direct")
    assert (bug.verdict, bug.message) == ("bug", "task holder exited holding A, B")
    assert bug.culprit == "holder"


def test_an_exception_escaping_a_python_task_is_a_kernel_oops(tmp_path):
    # Like an oops: the run ends with `bug`, naming the task and what it raised.
    path = tmp_path / "oops.py"
    path.write_text('''
name = "oops"


async def other(ctx):
    await ctx.yield_()


async def faulty(ctx):
    await ctx.yield_()
    raise ValueError("no such inode")


tasks = {"other": other, "faulty": faulty}
''')
    for driver in ("direct", "trio", "asyncio"):
        r = vmemu.run(str(path), driver=driver)
        assert (r.verdict, r.message, r.culprit) == (
            "bug", "task faulty raised ValueError: no such inode", "faulty"), driver
