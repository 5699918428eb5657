"""Kthreads and waits: spawn/join/stop/daemon, interruptible, killable and timed waits,
semaphores used as signals, rwlock_t, and the wait-for edges they add (issue: deadlocks
through events)."""

from __future__ import annotations

import pytest

import vmemu
from vmemu._cli import main


def run(path, seed=0, driver="direct"):
    return vmemu.run(path, seed=seed, driver=driver)


def explore(path, **kw):
    kw.setdefault("driver", "direct")
    return vmemu.explore(path, **kw).result


def test_spawning_a_task_that_is_still_alive_is_a_bug(write_scenario):
    r = run(write_scenario("""
tasks:
  main: [{spawn: worker}, {spawn: worker}]
  worker:
    start: spawned
    steps: [{sleep: 5}]
"""))
    assert r.verdict == "bug"
    assert "spawn of worker, which is already running (spawned twice while alive)" in r.message


def test_a_task_that_exited_can_be_spawned_again(write_scenario):
    r = run(write_scenario("""
vars: {runs: 0}
tasks:
  main:
    - repeat: 3
      do: [{spawn: worker}, {join: worker}]
    - assert: "runs == 3"
  worker:
    start: spawned
    steps: [{add: {runs: 1}}]
"""))
    assert r.verdict == "ok", r.message
    assert [t["name"] for t in r.tasks] == ["main", "worker", "worker", "worker"]


def test_joining_a_task_never_spawned_is_a_null_task_struct(write_scenario):
    r = run(write_scenario("""
tasks:
  main: [{join: worker}]
  worker:
    start: spawned
    steps: [yield]
"""))
    assert r.verdict == "bug" and "join of worker, which was never spawned" in r.message


def test_spawn_names_can_be_computed_at_run_time(write_scenario):
    r = run(write_scenario("""
vars: {done: 0}
tasks:
  main:
    - repeat: 3
      as: j
      do: [{spawn: "worker{j}"}]
    - repeat: 3
      as: j
      do: [{join: "worker{j}"}]
    - assert: "done == 3"
  worker:
    count: 3
    start: spawned
    steps: [{add: {done: 1}}]
"""))
    assert r.verdict == "ok", r.message


def test_stop_wakes_an_interruptible_wait_and_should_stop_ends_the_loop(write_scenario):
    r = explore(write_scenario("""
events: {wq: waitqueue}
vars: {woken_ok: -1}
tasks:
  main: [{spawn: kt}, {sleep: 10}, {stop: kt}]
  kt:
    start: spawned
    daemon: true
    steps:
      - while: "not should_stop"
        do:
          - wait: wq
            state: interruptible
          - set: {woken_ok: ok}
      - assert: "woken_ok == 0"      # interrupted, not woken by the event
"""), runs=50)
    assert r.verdict == "ok", r.message


def test_stop_does_not_wake_an_uninterruptible_wait(write_scenario):
    r = explore(write_scenario("""
limits: {hung_task_timeout: 100}
events: {wq: waitqueue}
tasks:
  main: [{spawn: kt}, {sleep: 10}, {stop: kt}]
  kt:
    start: spawned
    steps:
      - while: "not should_stop"
        do: [{wait: wq}]
"""), runs=20)
    assert r.verdict == "deadlock"
    assert [c["text"] for c in r.cycle] == [] and "main waits for exit of task kt" in r.message


def test_an_interruptible_sleeper_never_hangs_but_a_killable_one_does(write_scenario):
    body = """
limits: {hung_task_timeout: 100}
events: {wq: waitqueue}
tasks:
  sleeper:
    daemon: true
    steps: [{wait: wq, state: %s}]
  timer: [{sleep: 1000}]
"""
    assert run(write_scenario(body % "interruptible", name="i.yaml")).verdict == "ok"
    hung = run(write_scenario(body % "killable", name="k.yaml"))
    assert hung.verdict == "hang" and hung.culprit == "sleeper"


def test_hung_task_timeout_is_strict_and_names_the_oldest_blocked_task(write_scenario):
    # old blocks at tick 1, young at tick 5; holder lets go at tick N. Blocked exactly
    # hung_task_timeout ticks is not hung (khungtaskd: more than N); the report names the
    # task blocked longest.
    body = """
limits: {hung_task_timeout: 50}
locks: {m: mutex}
tasks:
  holder: [{lock: m}, {sleep: %d}, {unlock: m}]
  young: {start: 5, steps: [{lock: m}, {unlock: m}]}
  old: {start: 1, steps: [{lock: m}, {unlock: m}]}
"""
    assert run(write_scenario(body % 51, name="at.yaml")).verdict == "ok"
    hung = run(write_scenario(body % 52, name="over.yaml"))
    assert hung.verdict == "hang" and hung.culprit == "old", hung.message
    assert hung.message.startswith("INFO: task old blocked for more than 50 ticks")


def test_a_timed_wait_times_out_with_ok_0_or_is_woken_with_ok_1(write_scenario):
    r = run(write_scenario("""
events: {wq: waitqueue}
vars: {first: -1, second: -1}
tasks:
  waiter:
    - wait: wq
      timeout: 20
    - set: {first: ok}
    - wait: wq
      timeout: "3 * 100"
    - set: {second: ok}
    - assert: "first == 0 and second == 1"
  waker: [{sleep: 50}, {signal: wq}]
"""))
    assert r.verdict == "ok", r.message
    assert ("timeout", "wq") in [(ev[2], ev[3]) for ev in r.trace.events]
    assert r.ticks == 50


def test_a_timed_wait_woken_early_leaves_no_timer_that_turns_a_deadlock_into_a_hang(
        write_scenario):
    # The timed wait ends at tick 1; its 5000-tick timer must not keep the deadlock
    # below from being found (nor make khungtaskd fire on the clock jump).
    r = explore(write_scenario("""
limits: {hung_task_timeout: 100}
locks: {a: mutex, b: mutex}
events: {wq: waitqueue}
tasks:
  t1: [{wait: wq, timeout: 5000}, {lock: a}, {sleep: 1}, {lock: b}]
  t2: [{sleep: 1}, {signal: wq}, {lock: b}, {sleep: 1}, {lock: a}]
"""), runs=50)
    assert r.verdict == "deadlock" and r.ticks < 100, r.message


def test_a_semaphore_with_count_0_is_a_signal_and_max_bounds_up(write_scenario):
    sig = explore(write_scenario("""
locks: {items: {kind: semaphore, count: 0}}
tasks:
  consumer: [{lock: items}, {lock: items}]
  producer: [{unlock: items}]
"""))
    assert sig.verdict == "deadlock"
    consumer = next(t for t in sig.tasks if t["name"] == "consumer")
    assert consumer["waiting_for"] == "semaphore items (nobody can up it)"
    over = run(write_scenario("""
locks: {s: {kind: semaphore, count: 1, max: 2}}
tasks:
  t: [{unlock: s}, {unlock: s}]
""", name="over.yaml"))
    assert over.verdict == "bug" and "up() of semaphore s beyond its max of 2" in over.message


def test_a_signal_semaphore_waits_for_whoever_can_still_up_it(write_scenario):
    r = explore(write_scenario("""
locks: {items: {kind: semaphore, count: 0}, m: mutex}
tasks:
  consumer: [{lock: m}, {lock: items}, {unlock: m}]
  producer: [{sleep: 1}, {lock: m}, {unlock: items}, {unlock: m}]
"""))
    assert r.verdict == "deadlock"
    assert [c["text"] for c in r.cycle] == [
        "consumer waits for semaphore items, which only producer can up",
        "producer waits for mutex m held by consumer"]


def test_rwlock_readers_pass_a_waiting_writer_and_may_not_sleep(write_scenario):
    assert explore(write_scenario("""
locks: {rw: rwlock}
tasks:
  reader: [{read_lock: rw}, yield, {read_lock: rw}, {read_unlock: rw}, {read_unlock: rw}]
  writer: [{lock: rw}, {unlock: rw}]
"""), runs=200).verdict == "ok"
    r = run(write_scenario("""
locks: {rw: rwlock}
tasks:
  t: [{read_lock: rw}, {sleep: 1}, {read_unlock: rw}]
""", name="sleepy.yaml"))
    assert r.verdict == "bug" and "while holding rwlock rw" in r.message


def test_an_event_edge_names_every_task_that_can_still_signal(write_scenario):
    r = explore(write_scenario("""
events: {done: completion}
locks: {m: mutex}
tasks:
  waiter: [{lock: m}, {wait: done}, {unlock: m}]
  s1: [{sleep: 1}, {lock: m}, {complete: done}, {unlock: m}]
  s2: [{sleep: 1}, {lock: m}, {complete: done}, {unlock: m}]
"""))
    assert r.verdict == "deadlock"
    waiter = next(t for t in r.tasks if t["name"] == "waiter")
    assert waiter["waiting_for"] == "completion done (only s1 or s2 can complete it)"


def test_a_cycle_is_found_beside_a_bystander_and_never_includes_a_mere_waiter(
        write_scenario):
    # t0 waits on a member of the t1/t2 cycle without being in it; t3 waits for a
    # completion nobody can complete. The cycle is t1 <-> t2 alone.
    r = explore(write_scenario("""
locks: {a: mutex, b: mutex}
events: {never: completion}
tasks:
  t0: [{sleep: 2}, {lock: a}]
  t1: [{lock: a}, {sleep: 1}, {lock: b}]
  t2: [{lock: b}, {sleep: 1}, {lock: a}]
  t3: [{wait: never}]
"""))
    assert r.verdict == "deadlock"
    assert [c["task"] for c in r.cycle] == ["t1", "t2"]


def test_python_kthreads_spawn_stop_and_wait_with_a_timeout(tmp_path):
    src = tmp_path / "py_kthreads.py"
    src.write_text('''
expect = "ok"
events = {"wq": "waitqueue"}
vars = {"timeouts": 0}

async def main(ctx):
    await ctx.spawn("kt")
    await ctx.sleep(100)
    await ctx.stop("kt")
    ctx.check(ctx.vars["timeouts"] >= 3, "the kthread timed out while idle")

async def kt(ctx):
    while not ctx.should_stop:
        woken = await ctx.event("wq").wait(state="interruptible", timeout=20)
        if not woken and not ctx.should_stop:
            ctx.vars["timeouts"] += 1

tasks = {"main": main, "kt": {"fn": kt, "start": "spawned", "daemon": True}}
''')
    for driver in ("direct", "trio", "asyncio"):
        r = run(str(src), driver=driver)
        assert r.verdict == "ok", (driver, r.message)


@pytest.mark.parametrize("text, needle", [
    ("tasks:\n  main: [{spawn: wokrer}]\n  worker: {start: spawned, steps: [yield]}\n",
     "unknown task 'wokrer' (did you mean 'worker'?)"),
    ("tasks:\n  main: [{join: nobody}]\n", "unknown task 'nobody'"),
    ("tasks:\n  main: [{stop: nobody}]\n", "unknown task 'nobody'"),
    ("tasks:\n  main:\n    - repeat: 2\n      as: j\n      do: [{spawn: \"w{j}\"}]\n"
     "  v: {start: spawned, steps: [yield]}\n", "no task under tasks: can be 'w{j}'"),
    ("locks: {m: mutex}\ntasks:\n  t:\n    - wait: m\n      timeout: 5\n",
     "'m' is a mutex, not an event"),
    ("events: {wq: waitqueue}\ntasks:\n  t:\n    - wait: wq\n      state: interruptable\n",
     "unknown wait state 'interruptable' (did you mean 'interruptible'?)"),
    ("events: {wq: waitqueue}\ntasks:\n  t:\n    - wait: wq\n      timeout: [1]\n",
     "timeout: expected an integer or an expression"),
    ("locks: {s: {kind: semaphore, count: -1}}\ntasks:\n  t: [yield]\n", "count must be"),
    ("locks: {s: {kind: semaphore, max: 0}}\ntasks:\n  t: [yield]\n", "max must be"),
    ("tasks:\n  t:\n    daemon: yes please\n    steps: [yield]\n", "daemon must be true or false"),
    ("tasks:\n  t:\n    start: later\n    steps: [yield]\n", "'spawned'"),
    ("tasks:\n  t: {start: spawned, steps: [yield]}\n", "every task is start: spawned"),
])
def test_bad_lifecycle_input_is_one_line(write_scenario, capsys, text, needle):
    path = write_scenario(text)
    assert main(["run", path]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert needle in err and path in err


def test_a_timed_out_waiter_leaves_the_queue_and_a_later_signal_is_lost(write_scenario):
    # The waiter gave up at tick 5 and sleeps on: the signal at tick 10 finds nobody
    # waiting (a lost wakeup), and does not wake the sleeper early.
    r = run(write_scenario("""
events: {wq: waitqueue}
tasks:
  impatient: [{wait: wq, timeout: 5}, {assert: "ok == 0"}, {sleep: 20}]
  waker: [{sleep: 10}, {signal: wq}]
"""))
    assert r.verdict == "ok", r.message
    ev = [e[:4] for e in r.trace.events]
    assert [5, "impatient", "timeout", "wq"] in ev
    assert [10, "waker", "signal", "wq (lost: nobody waiting)"] in ev
    assert not [e for e in ev if e[2] == "wake"]
    assert r.ticks == 25


def test_timed_waits_that_run_out_at_the_same_tick_time_out_in_the_order_they_began(
        write_scenario):
    # Both waits end at tick 5: their `timeout` events come in the order the tasks
    # blocked (a timer queue is first in, first out at equal deadlines), in every schedule.
    sc = write_scenario("""
events: {wq: waitqueue}
tasks:
  a: [{wait: wq, timeout: 5}]
  b: [{wait: wq, timeout: 5}]
""")
    orders = set()
    for seed in range(12):
        r = run(sc, seed=seed)
        ev = r.trace.events
        blocked = [e[1] for e in ev if e[2] == "block"]
        assert [e[1] for e in ev if e[2] == "timeout"] == blocked
        assert {e[0] for e in ev if e[2] == "timeout"} == {5}
        orders.add(tuple(blocked))
    assert orders == {("a", "b"), ("b", "a")}


def test_a_sleep_of_zero_ticks_is_only_a_scheduling_point(write_scenario):
    # `sleep: 0` lets others run if the strategy wants, but does not put the task to
    # sleep: dfs's first schedule keeps running `a`, which sets x before b looks.
    r = vmemu.run(write_scenario("""
vars: {x: 0}
tasks:
  a: [{sleep: 0}, {set: {x: 1}}]
  b: [yield, {assert: "x == 1"}]
"""), strategy="dfs", driver="direct")
    assert r.verdict == "ok", r.message
    assert r.ticks == 0
