"""The watchdog's definitions at their edges: which cycle a deadlock reports, and when a
blocked task becomes a hang and which task the report names.

Every scenario here deadlocks (or not) the same way in every schedule: completions make
the tasks take their locks before anyone blocks, so a single run with any seed shows it.
"""

from __future__ import annotations

import pytest

import vmemu

# t1 and t2 each take one lock, wait until the other has its own, then ask for the
# other's: an ABBA deadlock in every schedule.
ABBA_TASKS = """
  t1: [{lock: A}, {complete: a_taken}, {wait: b_taken}, {lock: B}, {unlock: B}, {unlock: A}]
  t2: [{lock: B}, {complete: b_taken}, {wait: a_taken}, {lock: A}, {unlock: A}, {unlock: B}]
"""
ABBA_HEAD = """
locks: {A: mutex, B: mutex}
events: {a_taken: completion, b_taken: completion, never: completion}
tasks:
"""

ABBA_CYCLE = [("t1", "mutex B", "t2"), ("t2", "mutex A", "t1")]


def cycle(r: vmemu.Result) -> list[tuple[str, str, str]]:
    """The reported cycle as (task, waits for, held by)."""
    return [(c["task"], c["waits_for"], c["held_by"]) for c in r.cycle]


def run_all_seeds(path: str, seeds: range = range(4)) -> vmemu.Result:
    """Run a few schedules; they must all agree (the scenario leaves nothing to chance)."""
    results = [vmemu.run(path, seed=s, driver="direct") for s in seeds]
    assert len({(r.verdict, r.message, str(r.cycle)) for r in results}) == 1
    return results[0]


def test_a_cycle_beside_a_bystander_blocked_first_is_still_found(write_scenario):
    # The bystander (the first task) waits for a completion nobody fires: it blocks first
    # and has no way out, but it is not part of the cycle.
    r = run_all_seeds(write_scenario(ABBA_HEAD + "  bystander: [{wait: never}]\n"
                                     + ABBA_TASKS))
    assert r.verdict == "deadlock"
    assert cycle(r) == ABBA_CYCLE
    assert r.message == "wait-for cycle t1 -> t2 -> t1"
    bystander = next(t for t in r.tasks if t["name"] == "bystander")
    assert bystander["state"] == "blocked" and "completion never" in bystander["waiting_for"]


def test_a_task_waiting_on_a_cycle_is_not_part_of_it(write_scenario):
    # t0 (the first task) waits for B, held by t2, which is in the cycle t1 <-> t2: the
    # walk from t0 enters the cycle at t2, but t0 itself is not on it.
    r = run_all_seeds(write_scenario(ABBA_HEAD + "  t0: [{sleep: 1}, {lock: B}, {unlock: B}]\n"
                                     + ABBA_TASKS))
    assert r.verdict == "deadlock"
    assert cycle(r) == ABBA_CYCLE          # printed from its lowest task id, t1
    assert r.message == "wait-for cycle t1 -> t2 -> t1"
    t0 = next(t for t in r.tasks if t["name"] == "t0")
    assert t0["state"] == "blocked" and t0["waiting_for"] == "mutex B (held by t2)"


def test_a_longer_cycle_is_reported_whole_in_task_order(write_scenario):
    # Three tasks, three locks: t3 -> t1 -> t2 -> t3 read from the lowest id.
    r = run_all_seeds(write_scenario("""
locks: {A: mutex, B: mutex, C: mutex}
events: {a: completion, b: completion, c: completion}
tasks:
  t1: [{lock: A}, {complete: a}, {wait: b}, {wait: c}, {lock: B}]
  t2: [{lock: B}, {complete: b}, {wait: a}, {wait: c}, {lock: C}]
  t3: [{lock: C}, {complete: c}, {wait: a}, {wait: b}, {lock: A}]
"""))
    assert r.verdict == "deadlock"
    assert cycle(r) == [
        ("t1", "mutex B", "t2"), ("t2", "mutex C", "t3"), ("t3", "mutex A", "t1")]
    assert r.message == "wait-for cycle t1 -> t2 -> t3 -> t1"


@pytest.mark.parametrize("kswapd", [False, True])
def test_a_deadlock_without_a_cycle_names_the_first_blocked_task(write_scenario, kswapd):
    # kswapd, asleep on its waitqueue, is a daemon: never the task a deadlock is about.
    r = run_all_seeds(write_scenario(("memory: {pages: 64, kswapd: true}\n" if kswapd else "")
                                     + """
events: {never: completion, later: completion}
tasks:
  idle: [yield]
  first: [{wait: never}]
  second: [{wait: later}]
"""))
    assert r.verdict == "deadlock" and r.cycle == []
    assert r.culprit == "first"
    assert r.message == "first waits for completion never (nobody can complete it)"


def test_held_locks_are_listed_once_each(write_scenario):
    r = run_all_seeds(write_scenario("""
locks: {R: recursive, S: semaphore, m: mutex}
events: {never: completion}
tasks:
  t: [{lock: R}, {lock: R}, {lock: S}, {lock: m}, {wait: never}]
"""))
    assert r.verdict == "deadlock"
    assert r.tasks[0]["holding"] == ["R", "S", "m"]


def test_readers_and_writers_queued_on_an_rwsem_say_behind_whom(write_scenario):
    # r1 and r3 hold sem for read; w1, then w2, queue for write; r2 queues for read
    # behind them (writer-fair), though only readers hold it.
    r = run_all_seeds(write_scenario("""
locks: {sem: rwsem}
events: {a: completion, b: completion, never: completion}
tasks:
  r1: [{read_lock: sem}, {complete: a}, {wait: never}]
  r3: [{wait: a}, {read_lock: sem}, {complete: b}, {wait: never}]
  w1: [{wait: b}, {lock: sem}]
  w2: [{sleep: 1}, {lock: sem}]
  r2: [{sleep: 2}, {read_lock: sem}]
"""))
    assert r.verdict == "deadlock" and r.cycle == []
    waits = {t["name"]: t["waiting_for"] for t in r.tasks}
    assert waits["w1"] == "rwsem sem (held by r1, r3)"
    assert waits["w2"] == "rwsem sem (queued behind writer w1) (held by r1, r3)"
    assert waits["r2"] == "rwsem sem (for read) (queued behind writer w1, writer w2)"


def test_a_hang_reports_the_cycle_of_the_hung_task_not_the_first_one(write_scenario):
    # Two deadlocked pairs: t1/t2 from tick 5, t3/t4 from tick 0. When the timer keeps
    # the run going past the timeout, t3 has been blocked longest: its cycle is reported.
    r = run_all_seeds(write_scenario("""
limits: {hung_task_timeout: 20}
locks: {A: mutex, B: mutex, C: mutex, D: mutex}
events: {a: completion, b: completion, c: completion, d: completion}
tasks:
  t1: [{sleep: 5}, {lock: A}, {complete: a}, {wait: b}, {lock: B}]
  t2: [{sleep: 5}, {lock: B}, {complete: b}, {wait: a}, {lock: A}]
  t3: [{lock: C}, {complete: c}, {wait: d}, {lock: D}]
  t4: [{lock: D}, {complete: d}, {wait: c}, {lock: C}]
  timer: [{sleep: 30}]
"""))
    assert r.verdict == "hang" and r.culprit == "t3"
    assert [c["task"] for c in r.cycle] == ["t3", "t4"]


def test_a_cycle_is_followed_past_a_holder_that_is_only_sleeping(write_scenario):
    # t waits to write an rwsem read-held by s (asleep on a timer) and by b, which waits
    # for the mutex t holds: the cycle t <-> b goes through the second holder.
    r = run_all_seeds(write_scenario("""
limits: {hung_task_timeout: 20}
locks: {sem: rwsem, m: mutex}
events: {s_in: completion, b_in: completion, t_in: completion}
tasks:
  s: [{read_lock: sem}, {complete: s_in}, {sleep: 100}, {read_unlock: sem}]
  b: [{wait: s_in}, {read_lock: sem}, {complete: b_in}, {wait: t_in}, {lock: m}]
  t: [{lock: m}, {complete: t_in}, {wait: b_in}, {lock: sem}]
"""))
    assert r.verdict == "hang"
    assert cycle(r) == [("b", "mutex m", "t"), ("t", "rwsem sem", "b")]


# ---------------------------------------------------------------- hung tasks

def hang_scenario(hold: int, timeout: int = 20, late: int | None = None) -> str:
    """``holder`` keeps mutex m for ``hold`` ticks; ``early`` blocks on it at tick 0 (and
    ``late`` at tick ``late``, when given)."""
    text = f"""
limits: {{hung_task_timeout: {timeout}}}
locks: {{m: mutex}}
events: {{taken: completion}}
tasks:
  holder: [{{lock: m}}, {{complete: taken}}, {{sleep: {hold}}}, {{unlock: m}}]
  early: [{{wait: taken}}, {{lock: m}}, {{unlock: m}}]
"""
    if late is not None:
        text += f"  late: [{{wait: taken}}, {{sleep: {late}}}, {{lock: m}}, {{unlock: m}}]\n"
    return text


def test_blocked_exactly_hung_task_timeout_ticks_is_not_a_hang(write_scenario):
    # khungtaskd reports a task blocked for *more than* the timeout.
    r = run_all_seeds(write_scenario(hang_scenario(hold=20)))
    assert r.verdict == "ok" and r.ticks == 20


def test_one_tick_more_is_a_hang_reported_when_the_timeout_was_crossed(write_scenario):
    r = run_all_seeds(write_scenario(hang_scenario(hold=21)))
    assert r.verdict == "hang" and r.culprit == "early"
    assert r.message == ("INFO: task early blocked for more than 20 ticks waiting for "
                         "mutex m (held by holder)")
    assert r.ticks == 21


def test_the_hang_report_names_the_task_blocked_longest(write_scenario):
    # Both are over the limit when the holder's timer comes due; `early` has waited
    # longer, and the hang is reported at the tick its timeout was crossed.
    r = run_all_seeds(write_scenario(hang_scenario(hold=100, late=5)))
    assert r.verdict == "hang" and r.culprit == "early" and r.ticks == 21
    assert r.message.startswith("INFO: task early blocked for more than 20 ticks")
    # Reversed roles: the later task in task order is the one that blocked first.
    r = run_all_seeds(write_scenario(hang_scenario(hold=100, late=5)
                                     .replace("early:", "tmp:").replace("late:", "early:")
                                     .replace("tmp:", "late:")))
    assert r.verdict == "hang" and r.culprit == "late" and r.ticks == 21


def test_of_tasks_hung_equally_long_the_first_in_task_order_is_named(write_scenario):
    r = run_all_seeds(write_scenario(hang_scenario(hold=100)
                                     + "  also: [{wait: taken}, {lock: m}, {unlock: m}]\n"))
    assert r.verdict == "hang" and r.culprit == "early"


@pytest.mark.parametrize("timeout, verdict", [(9, "hang"), (10, "deadlock")])
def test_a_hang_reports_the_cycle_it_is_part_of(write_scenario, timeout, verdict):
    # An ABBA at tick 0, plus a timer due at tick 10 that keeps the run going: blocked
    # for more than the timeout by then, the deadlocked tasks are hung tasks, and the
    # report still shows their cycle. Blocked exactly the timeout: a plain deadlock.
    r = run_all_seeds(write_scenario(
        ABBA_HEAD.replace("locks:", f"limits: {{hung_task_timeout: {timeout}}}\nlocks:")
        + ABBA_TASKS + "  timer: [{sleep: 10}]\n"))
    assert r.verdict == verdict and cycle(r) == ABBA_CYCLE
    if verdict == "hang":
        assert r.culprit == "t1" and r.ticks == 10
        assert r.message.startswith("INFO: task t1 blocked for more than 9 ticks")


def test_interruptible_idle_kswapd_never_hangs(write_scenario):
    # kswapd sleeps on its waitqueue all run long, far past the timeout: not a hang.
    r = run_all_seeds(write_scenario("""
limits: {hung_task_timeout: 5}
memory: {pages: 64, kswapd: true}
tasks:
  t: [{sleep: 50}, {alloc: 1, as: p}, {free: p}]
"""))
    assert r.verdict == "ok" and r.ticks == 50


def test_a_hang_beside_idle_kswapd_names_the_hung_task(write_scenario):
    # kswapd has slept on its waitqueue since tick 0, longer than `victim` has waited for
    # the mutex; but its sleep is interruptible: the hang is victim's.
    r = run_all_seeds(write_scenario("""
limits: {hung_task_timeout: 20}
memory: {pages: 64, kswapd: true}
locks: {m: mutex}
tasks:
  holder: [{sleep: 1}, {lock: m}, {sleep: 100}, {unlock: m}]
  victim: [{sleep: 2}, {lock: m}, {unlock: m}]
"""))
    assert r.verdict == "hang" and r.culprit == "victim" and r.ticks == 23
    assert [(t["name"], t["state"], t["holding"]) for t in r.tasks] == [
        ("holder", "sleeping", ["m"]), ("victim", "blocked", []), ("kswapd", "blocked", [])]
    kswapd = r.tasks[2]
    assert kswapd["waiting_for"].startswith("waitqueue kswapd_wait")
    # A frame with no scenario line (kswapd is vmemu's own task) says so with "".
    assert kswapd["stack"] == [{"frame": "kswapd", "at": "", "step": ""}]


PY_STACK = '''
import functools
import types

locks = {"A": "mutex", "B": "mutex"}
events = {"a": "completion", "b": "completion"}


async def take(ctx, name):
    await ctx.lock(name).acquire()


async def via(ctx, name):
    await take(ctx, name)


@types.coroutine
def take_old_style(ctx, name):
    # A generator-based coroutine in the scenario itself (as `yield from` code has).
    yield from take(ctx, name)


async def via_old(ctx, name):
    await take_old_style(ctx, name)


async def t1(ctx):
    await take(ctx, "A")
    await ctx.event("a").complete()
    await ctx.event("b").wait()
    await via(ctx, "B")


async def second(ctx, first, then):
    await take(ctx, first)
    await ctx.event("b").complete()
    await ctx.event("a").wait()
    await via_old(ctx, then)

tasks = {"t1": t1, "t2": functools.partial(second, first="B", then="A")}
'''


def test_a_python_task_s_stack_shows_its_scenario_frames_innermost_last(tmp_path):
    # The same file at two paths: a scenario module is loaded once per content, and each
    # report still points into the file it was given.
    lines = PY_STACK.splitlines()
    for folder in ("a", "b"):
        path = tmp_path / folder / "pystack.py"
        path.parent.mkdir()
        path.write_text(PY_STACK)
        r = run_all_seeds(str(path))
        assert r.verdict == "deadlock" and r.message == "wait-for cycle t1 -> t2 -> t1"
        # Whatever the driver has at the bottom of the chain (a bare yield, a trio
        # wait, an asyncio future), the scenario's frames read the same.
        for driver in ("trio", "asyncio"):
            assert vmemu.run(str(path), seed=1, driver=driver).tasks == r.tasks, driver

        def at(text: str) -> str:
            return f"{path}:{next(i for i, ln in enumerate(lines, 1) if text in ln)}"

        stacks = {t["name"]: t["stack"] for t in r.tasks}
        # Only the scenario's own frames (none of vmemu's), outermost first.
        assert stacks["t1"] == [
            {"frame": "t1", "at": at('await via(ctx, "B")'), "step": ""},
            {"frame": "via", "at": at("await take(ctx, name)"), "step": ""},
            {"frame": "take", "at": at("await ctx.lock(name).acquire()"), "step": ""}]
        assert stacks["t2"] == [
            {"frame": "second", "at": at("await via_old(ctx, then)"), "step": ""},
            {"frame": "via_old", "at": at("await take_old_style(ctx, name)"), "step": ""},
            {"frame": "take_old_style", "at": at("yield from take(ctx, name)"), "step": ""},
            {"frame": "take", "at": at("await ctx.lock(name).acquire()"), "step": ""}]


def test_a_daemon_blocked_first_is_not_what_a_deadlock_is_about(write_scenario):
    r = run_all_seeds(write_scenario("""
events: {never: completion, later: completion}
tasks:
  helper:
    daemon: true
    steps: [{wait: never}]
  worker: [{wait: later}]
"""))
    assert r.verdict == "deadlock" and r.culprit == "worker"
    assert r.message == "worker waits for completion later (nobody can complete it)"
    assert [(t["name"], t["state"]) for t in r.tasks] == [("helper", "blocked"),
                                                          ("worker", "blocked")]


def test_finished_tasks_read_done_and_wait_for_nothing(write_scenario):
    r = run_all_seeds(write_scenario("""
events: {never: completion}
tasks:
  quick: [yield]
  stuck: [{wait: never}]
"""))
    assert [(t["name"], t["state"], t["waiting_for"]) for t in r.tasks] == [
        ("quick", "done", ""), ("stuck", "blocked", r.tasks[1]["waiting_for"])]
    assert r.tasks[1]["waiting_for"].startswith("completion never")


def test_a_writeback_that_deadlocks_in_lockdep_s_synthetic_run_is_still_reported(
        write_scenario):
    # The synthetic run's task is vmemu's own (no scenario file): its report has no
    # Python frames, and the routine's re-locking is lockdep's recursive locking.
    from vmemu._lockdep import lockdep
    res = lockdep(write_scenario("""
memory:
  pages: 64
  classes: {dirty: {writeback: wb, needs: [io]}}
locks: {L: mutex}
routines:
  wb: [{lock: L}, {lock: L}]
tasks:
  t: [yield]
"""), runs=1, confirm=0)
    assert res.synthetic == ["dirty"] and list(res.graph.recursions) == ["L"]
    assert res.graph.recursions["L"].first.task == "reclaim:dirty"


def test_a_cycle_is_found_after_a_chain_of_waits_that_leads_nowhere(write_scenario):
    # c0 waits for c1, which waits for an event nobody fires: a dead end, searched
    # first; the ABBA between t1 and t2 comes after it in task order.
    r = run_all_seeds(write_scenario(ABBA_HEAD.replace("locks: {", "locks: {X: mutex, ")
                                     + "  c0: [{sleep: 1}, {lock: X}]\n"
                                     + "  c1: [{lock: X}, {wait: never}]\n" + ABBA_TASKS))
    assert r.verdict == "deadlock" and cycle(r) == ABBA_CYCLE


READERS_CYCLE = """
locks: {sem: rwsem, m: mutex}
events: {x_in: completion, b_in: completion, t_in: completion, never: completion}
tasks:
  x: [{read_lock: sem}, {complete: x_in}, %s{wait: never}]
  b: [{wait: x_in}, {read_lock: sem}, {complete: b_in}, {wait: t_in}, {lock: m}]
  t: [{lock: m}, {complete: t_in}, {wait: b_in}, {lock: sem}]
"""


def test_a_cycle_through_the_second_reader_after_a_reader_stuck_elsewhere(write_scenario):
    # t waits to write sem, read-held by x (stuck on an event) and by b, which waits for
    # the mutex t holds: the search passes x (already known to lead nowhere) for b.
    r = run_all_seeds(write_scenario(READERS_CYCLE % ""))
    assert r.verdict == "deadlock"
    assert cycle(r) == [("b", "mutex m", "t"), ("t", "rwsem sem", "b")]


def test_the_hung_task_s_cycle_is_found_past_a_holder_that_leads_nowhere(write_scenario):
    # The same, as a hang (a timer keeps the run going): b has waited longest, and the
    # walk from b reaches t, whose first holder x is a dead end, then b again.
    r = run_all_seeds(write_scenario("limits: {hung_task_timeout: 20}\n"
                                     + READERS_CYCLE % "{sleep: 1}, "
                                     + "  timer: [{sleep: 30}]\n"))
    assert r.verdict == "hang" and r.culprit == "b"
    assert cycle(r) == [("b", "mutex m", "t"), ("t", "rwsem sem", "b")]


def test_a_semaphore_nobody_holds_says_who_could_up_it(write_scenario):
    # A count-0 semaphore is a signal: the consumer waits for an up() that only the
    # producer (stuck behind the consumer's mutex) or idle (stuck forever) could do.
    r = run_all_seeds(write_scenario("""
locks: {items: {kind: semaphore, count: 0}, m: mutex}
events: {never: completion, in: completion}
tasks:
  consumer: [{lock: m}, {complete: in}, {lock: items}]
  producer: [{wait: in}, {lock: m}, {unlock: items}]
  idle: [{wait: never}, {unlock: items}]
"""))
    assert r.verdict == "deadlock"
    assert r.message == "wait-for cycle consumer -> producer -> consumer"
    assert [(t["name"], t["waiting_for"]) for t in r.tasks] == [
        ("consumer", "semaphore items (only producer or idle can up it)"),
        ("producer", "mutex m (held by consumer)"),
        ("idle", "completion never (nobody can complete it)")]
    assert [c["text"] for c in r.cycle] == [
        "consumer waits for semaphore items, which only producer or idle can up",
        "producer waits for mutex m held by consumer"]


# ---------------------------------------------------------------- many waiters, one event

def _run_counting_can(path, monkeypatch):
    """Run ``path`` (direct driver, seed 0); the result and how often ``can`` was asked
    whether a task's remaining program can do something (the reach analysis's unit)."""
    from vmemu._kernel import _reach
    calls = 0
    can = _reach.can

    def counting(*a):
        nonlocal calls
        calls += 1
        return can(*a)

    monkeypatch.setattr(_reach, "can", counting)
    return vmemu.run(path, seed=0, driver="direct"), calls


def test_thousands_of_waiters_on_one_event_cost_one_scan_and_a_short_line(write_scenario,
                                                                        monkeypatch):
    # Every waiter of an event waits for the same signallers. The report asked "who can
    # still signal it" once per waiter, each time scanning every task: with 10,000 + 10,000
    # tasks, 218 s of `can` calls and 89 KB lines naming every signaller ("only s0 or s1 or
    # ... can signal it"). Now: one scan per event and report, and a cut list.
    n = 1000
    path = write_scenario(f"""
name: many-waiters
events: {{e: waitqueue}}
tasks:
  w:
    count: {n}
    steps:
      - wait: e
  s:
    count: {n}
    steps:
      - wait: e
      - signal: e
""")
    r, calls = _run_counting_can(path, monkeypatch)
    assert r.verdict == "deadlock"
    assert r.message == "wait-for cycle s0 -> s0"
    # A scan asks `can` of each of the 2n tasks: at most two scans in the whole run and
    # report (before: one per blocked task and per report of it, ~4n).
    assert 0 < calls <= 2 * (2 * n)
    waits = {t["name"]: t["waiting_for"] for t in r.tasks}
    line = f"waitqueue e (only s0, s1, s2 ... and {n - 3} more can signal it)"
    assert waits["w0"] == waits[f"w{n - 1}"] == waits[f"s{n - 1}"] == line
    assert max(len(t["waiting_for"]) for t in r.tasks) < 80
    [c] = r.cycle
    assert c["text"] == f"s0 waits for waitqueue e, which only s0, s1, s2 ... and {n - 3} " \
                       "more can signal"


def test_a_cut_list_of_signallers_still_names_the_cycle_s_next_task(write_scenario):
    # a waits (holding M) for e, which s0..s6 and t can signal; s0..s6 wait for an event
    # nobody signals, t waits for M: the cycle a -> t -> a. The list is cut, but its
    # line still names t.
    path = write_scenario("""
name: cut-cycle
locks: {M: mutex}
events: {e: waitqueue, f: completion}
tasks:
  a: [{lock: M}, {wait: e}, {unlock: M}]
  s:
    count: 7
    steps: [{wait: f}, {signal: e}]
  t:
    start: 10
    steps: [{lock: M}, {signal: e}, {unlock: M}]
""")
    for driver in ("direct", "trio", "asyncio"):
        r = vmemu.run(path, seed=0, driver=driver)
        assert r.verdict == "deadlock" and r.message == "wait-for cycle a -> t -> a"
        assert [c["text"] for c in r.cycle] == [
            "a waits for waitqueue e, which only s0, s1, s2, t ... and 4 more can signal",
            "t waits for mutex M held by a"]
        waits = {t["name"]: t["waiting_for"] for t in r.tasks}
        assert waits["a"] == "waitqueue e (only s0, s1, s2 ... and 5 more can signal it)"
        assert waits["s0"] == "completion f (nobody can complete it)"


def test_thousands_of_waiters_on_one_semaphore_cost_one_scan_and_a_short_line(
        write_scenario, monkeypatch):
    # The same for a semaphore used as a signal: each waiter asked who can still `up` it,
    # scanning every task (and a list membership test inside): quadratic, and each line
    # named every upper.
    n = 600
    path = write_scenario(f"""
name: many-sem-waiters
locks: {{S: {{kind: semaphore, count: 0}}}}
events: {{never: waitqueue}}
tasks:
  w:
    count: {n}
    steps:
      - lock: S
  u:
    count: {n}
    steps:
      - wait: never
      - unlock: S
""")
    r, calls = _run_counting_can(path, monkeypatch)
    assert r.verdict == "deadlock"
    # A scan asks `can` at most twice of each of the 2n tasks (up, and down); a report
    # asks for the semaphore's uppers and the event's signallers once each.
    assert 0 < calls <= 4 * (2 * n)
    waits = {t["name"]: t["waiting_for"] for t in r.tasks}
    line = f"semaphore S (only u0, u1, u2 ... and {n - 3} more can up it)"
    assert waits["w0"] == waits[f"w{n - 1}"] == line, waits["w0"]
    assert max(len(t["waiting_for"]) for t in r.tasks) < 80


def test_an_idle_kswapd_is_never_a_hung_task(write_scenario):
    # kswapd reclaims once, then waits on its waitqueue again (interruptibly, as the
    # real one sleeps): however long the others sleep, that is no hang.
    r = vmemu.run(write_scenario("""
limits: {hung_task_timeout: 10}
memory:
  pages: 16
  watermarks: {min: 2, low: 4, high: 8}
  kswapd: true
  classes:
    cache: {}
tasks:
  user:
    - fill: {class: cache, pages: 14}
    - sleep: 50
"""), driver="direct")
    assert r.verdict == "ok", r.message
    assert [e[1:4] for e in r.trace.events if e[2] == "block"] == [
        ["kswapd", "block", "wait kswapd_wait"]]
    assert r.ticks == 50
