"""The sync primitives' rules at their edges: who holds what after an out-of-order unlock,
who a waiter waits for (and how the report says it), which readers an rwlock lets in
past a queued writer, and what observers and fault plans see at a lock.

Each test pins one rule a kernel engineer relies on, on a schedule forced by sleeps or
by tasks that poll ``statistics()``, so that a change to the rule changes a verdict, a
report line or an event (the mutation run, ``bench/mutation.sh sync``, checks that).
"""

from __future__ import annotations

import textwrap

import vmemu
from conftest import LockLog


def _py(tmp_path, body: str, name: str = "s.py") -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return str(p)


def _waiting(r) -> dict[str, str]:
    return {t["name"]: t["waiting_for"] for t in r.tasks}


def _holding(r) -> dict[str, list[str]]:
    return {t["name"]: t["holding"] for t in r.tasks}


# --------------------------------------------------------------------------- ownership
def test_unlock_out_of_order_keeps_the_other_hold(write_scenario):
    # lock A; lock B; unlock A: the task still holds B (and only B).
    path = write_scenario("""
locks: {A: mutex, B: mutex}
events: {never: completion}
tasks:
  t: [{lock: A}, {lock: B}, {unlock: A}, {wait: never}]
  u: [{sleep: 1}, {lock: A}, {unlock: A}]
""")
    r = vmemu.run(path, driver="direct")
    assert r.verdict == "deadlock"
    assert _holding(r)["t"] == ["B"]


def test_unlock_of_a_mutex_held_by_another_names_the_holder(write_scenario):
    path = write_scenario("""
locks: {M: mutex}
tasks:
  t1: [{lock: M}, {sleep: 5}, {unlock: M}]
  t2: [{sleep: 1}, {unlock: M}]
""")
    r = vmemu.run(path, driver="direct")
    assert r.verdict == "bug"
    assert r.message == "BUG: t2: unlock of mutex M not held by it (held by t1)"


def test_write_unlock_of_an_rwsem_held_for_read_is_a_bug(write_scenario):
    path = write_scenario("""
locks: {rw: rwsem}
tasks:
  t: [{read_lock: rw}, {unlock: rw}]
""")
    r = vmemu.run(path, driver="direct")
    assert (r.verdict, r.message) == ("bug", "BUG: t: unlock of rwsem rw not write-held by it")


def test_sleeping_lock_under_a_spinlock_names_the_lock(write_scenario):
    path = write_scenario("""
locks: {s: spinlock, m: mutex}
tasks:
  t: [{lock: s}, {lock: m}, {unlock: m}, {unlock: s}]
""")
    r = vmemu.run(path, driver="direct")
    assert r.verdict == "bug"
    assert r.message == ("BUG: sleeping function called from invalid context: "
                         "t does 'lock m' while holding spinlock s")


# --------------------------------------------------------------------------- semaphores
def test_semaphore_double_up_says_double_unlock(write_scenario):
    path = write_scenario("""
locks: {s: semaphore}
tasks:
  t: [{lock: s}, {unlock: s}, {unlock: s}]
""")
    r = vmemu.run(path, driver="direct")
    assert r.message == "BUG: t: up() of semaphore s that nobody holds (double unlock?)"


def test_semaphore_up_by_a_taker_gives_back_its_own_unit(write_scenario):
    # t2 took the second unit and gives it back: t1 still holds the first.
    path = write_scenario("""
locks: {s: {kind: semaphore, count: 2}}
events: {never: completion}
tasks:
  t1: [{lock: s}, {wait: never}]
  t2: [{sleep: 1}, {lock: s}, {unlock: s}]
""")
    r = vmemu.run(path, driver="direct")
    assert r.verdict == "deadlock"
    assert _holding(r) == {"t1": ["s"], "t2": []}


def test_semaphore_waiter_names_holders_and_who_else_can_up_it(write_scenario):
    path = write_scenario("""
locks: {s: {kind: semaphore, count: 2}}
events: {never: completion}
tasks:
  t1: [{lock: s}, {wait: never}, {unlock: s}]
  t2: [{sleep: 1}, {lock: s}, {wait: never}, {unlock: s}]
  t3: [{sleep: 2}, {lock: s}]
  t4: [{wait: never}, {unlock: s}]
  t5: [{wait: never}, {unlock: s}]
""")
    r = vmemu.run(path, driver="direct")
    assert r.verdict == "deadlock"
    assert _waiting(r)["t3"] == "semaphore s (held by t1, t2; t4 or t5 can up it)"


def test_signal_semaphore_waiter_names_who_can_up_it(write_scenario):
    # sema_init(&s, 0): the waiter waits for whoever can still up() it.
    path = write_scenario("""
locks: {s: {kind: semaphore, count: 0, max: 1}, m: mutex}
tasks:
  a: [{lock: m}, {lock: s}, {unlock: m}, {unlock: s}]
  b: [{sleep: 1}, {lock: m}, {unlock: s}, {unlock: m}]
""")
    r = vmemu.run(path, driver="direct")
    assert r.verdict == "deadlock"
    assert _waiting(r)["a"] == "semaphore s (only b can up it)"
    assert [c["text"] for c in r.cycle] == [
        "a waits for semaphore s, which only b can up",
        "b waits for mutex m held by a"]


def test_semaphore_statistics_name_a_taker(tmp_path):
    path = _py(tmp_path, '''
        locks = {"s": {"kind": "semaphore", "count": 2}}

        async def t(ctx):
            s = ctx.lock("s")
            ctx.check(not s.locked(), "free at first")
            async with s:
                ctx.check(s.locked() and s.statistics().owner == "t", "t holds a unit")

        tasks = {"t": t}
    ''')
    r = vmemu.run(path, driver="direct")
    assert (r.verdict, r.message) == ("ok", "")


# --------------------------------------------------------------------------- lock API
def test_a_python_task_and_a_fault_planned_run_log_lock_events_like_a_step(tmp_path,
                                                                         write_scenario):
    # Lock._lock's own fast path (a free plain mutex) serves Python tasks, and scenario
    # files under a fault plan (run_steps takes lock steps inline only without one): its
    # event names the task and its line, and a mutex taken under a spinlock is the same
    # might_sleep bug, worded the same, on every path.
    path = _py(tmp_path, '''
        locks = {"m": "mutex", "s": "spinlock"}

        async def t(ctx):
            await ctx.lock("m").acquire()
            await ctx.lock("m").release()
            await ctx.lock("s").acquire()
            await ctx.lock("m").acquire()

        tasks = {"t": t}
    ''')
    r = vmemu.run(path, driver="direct")
    locks = [e for e in r.trace.events if e[2] == "lock"]
    assert locks[0][1:4] == ["t", "lock", "m"] and locks[0][4] > 0
    assert r.verdict == "bug" and r.message == (
        "BUG: sleeping function called from invalid context: t does 'lock m' while "
        "holding spinlock s")
    yaml = write_scenario("""
locks: {m: mutex, s: spinlock}
tasks:
  t: [{lock: m}, {unlock: m}, {lock: s}, {lock: m}]
""")
    plan = tmp_path / "plan.yaml"
    # (a rule that never fires: its space budget is never used up)
    plan.write_text("faults:\n  - at: lock\n    do: preempt\n    space: 1000\n")
    for faults in (None, str(plan)):
        y = vmemu.run(yaml, driver="direct", faults=faults)
        assert [e[1:] for e in y.trace.events if e[2] == "lock"][0] == ["t", "lock", "m", 4]
        assert y.message == r.message


def test_statistics_of_a_free_a_held_and_a_contended_lock(tmp_path):
    path = _py(tmp_path, '''
        locks = {"m": "mutex"}

        def shape(s):
            return (s.locked, s.owner, s.tasks_waiting)

        async def owner(ctx):
            m = ctx.lock("m")
            ctx.check(shape(m.statistics()) == (False, None, 0), f"free: {m.statistics()}")
            await m.acquire()
            while m.statistics().tasks_waiting == 0:   # until the other one queues
                await ctx.yield_()
            ctx.check(shape(m.statistics()) == (True, "owner", 1), f"held: {m.statistics()}")
            await m.release()

        async def other(ctx):
            m = ctx.lock("m")
            while not m.locked():
                await ctx.yield_()
            async with m:
                pass

        tasks = {"owner": owner, "other": other}
    ''')
    for seed in range(5):
        r = vmemu.run(path, seed=seed, driver="direct")
        assert (r.verdict, r.message) == ("ok", "")


def test_owner_of_a_recursive_lock_may_trylock_it_again(tmp_path):
    path = _py(tmp_path, '''
        locks = {"r": "recursive"}

        async def t(ctx):
            r = ctx.lock("r")
            async with r:
                ctx.check(r.try_acquire(), "the owner re-takes it")
                await r.release()
            ctx.check(not r.locked(), "free after as many releases")

        tasks = {"t": t}
    ''')
    r = vmemu.run(path, driver="direct")
    assert (r.verdict, r.message) == ("ok", "")


def test_observers_hear_the_mode_of_every_kind_of_lock(write_scenario):
    path = write_scenario("""
locks: {m: mutex, r: recursive, s: semaphore, rw: rwsem, q: spinlock}
tasks:
  t: [{lock: m}, {unlock: m}, {lock: r}, {lock: r}, {unlock: r}, {unlock: r},
      {lock: s}, {unlock: s}, {read_lock: rw}, {read_unlock: rw}, {lock: rw}, {unlock: rw},
      {trylock: q}, {unlock: q}]
""")
    obs = LockLog()
    r = vmemu.run(path, driver="direct", observers=[obs])
    assert r.verdict == "ok"
    assert [f"{hook} {lock} {mode}" for hook, _, lock, mode in obs.ops
            if hook != "acquiring"] == [
        "acquired m lock", "released m lock",
        "acquired r lock", "acquired r lock", "released r lock", "released r lock",
        "acquired s lock", "released s lock",
        "acquired rw read_lock", "released rw read_lock",
        "acquired rw lock", "released rw lock",
        "acquired q lock", "released q lock"]   # (a trylock is announced by acquiring)


def test_a_bad_unlock_with_an_observer_that_ignores_it_is_still_a_bug(write_scenario):
    path = write_scenario("""
locks: {m: mutex}
tasks:
  t: [{unlock: m}]
""")
    r = vmemu.run(path, driver="direct", observers=[LockLog()])
    assert r.verdict == "bug" and "double unlock" in r.message


def test_the_events_of_an_uncontended_lock(write_scenario):
    # The fast path of an uncontended mutex emits the same events as the slow one.
    path = write_scenario("""
locks: {m: mutex}
tasks:
  t: [{lock: m}, {unlock: m}]
""")
    plain = vmemu.run(path, driver="direct")
    watched = vmemu.run(path, driver="direct", observers=[LockLog()])
    rows = [e[1:4] for e in plain.trace.events]
    assert ["t", "lock", "m"] in rows and ["t", "unlock", "m"] in rows
    assert plain.trace.events == watched.trace.events


def test_a_lock_fault_fires_only_at_the_named_lock(write_scenario, tmp_path):
    path = write_scenario("""
locks: {A: mutex, B: mutex}
tasks:
  t: [{lock: A}, {unlock: A}, {lock: B}, {unlock: B}]
""")
    plan = tmp_path / "delay_b.yaml"
    plan.write_text("faults:\n  - at: lock\n    where: {name: B}\n    do: {delay: 10}\n")
    r = vmemu.run(path, driver="direct", faults=str(plan))
    at = {(e[2], e[3]): e[0] for e in r.trace.events if e[2] == "lock"}
    assert at == {("lock", "A"): 0, ("lock", "B"): 10}


# --------------------------------------------------------------------------- rwsem
RWSEM_QUEUE = """
locks: {L: rwsem}
events: {never: completion}
tasks:
  t1: [{lock: L}, {wait: never}]
  r2: [{sleep: 1}, {read_lock: L}]
  w3: [{sleep: 2}, {lock: L}]
  w4: [{sleep: 3}, {lock: L}]
  r5: [{sleep: 4}, {read_lock: L}]
"""


def test_rwsem_waiters_wait_for_the_writer_and_whoever_is_queued_ahead(write_scenario):
    # Writer-fair: a reader waits for queued writers ahead of it, not for queued readers.
    r = vmemu.run(write_scenario(RWSEM_QUEUE), driver="direct")
    assert r.verdict == "deadlock"
    w = _waiting(r)
    assert w["r2"] == "rwsem L (for read) (held by t1)"
    assert w["w3"] == "rwsem L (queued behind r2) (held by t1)"
    assert w["w4"] == "rwsem L (queued behind r2, writer w3) (held by t1)"
    assert w["r5"] == "rwsem L (for read) (queued behind writer w3, writer w4) (held by t1)"


def test_rwsem_lets_every_queued_reader_in_when_the_writer_leaves(write_scenario):
    # r2 and r3 queue behind the writer; both must read at once when it leaves, or r2
    # waits for b forever while r3 waits for r2.
    path = write_scenario("""
locks: {rw: rwsem}
events: {a: completion, b: completion}
tasks:
  t1: [{lock: rw}, {sleep: 5}, {unlock: rw}]
  r2: [{sleep: 1}, {read_lock: rw}, {complete: a}, {wait: b}, {read_unlock: rw}]
  r3: [{sleep: 2}, {read_lock: rw}, {wait: a}, {complete: b}, {read_unlock: rw}]
""")
    for seed in range(20):
        r = vmemu.run(path, seed=seed, driver="direct")
        assert (r.verdict, r.message) == ("ok", "")


# --------------------------------------------------------------------------- rwlock
# rwlock_t holders may not sleep, so these schedules are forced by tasks that poll the
# lock's queue instead of by sleeps. Every section checks mutual exclusion.
RWLOCK_HEAD = '''
    locks = {"L": "rwlock"}
    vars = {"readers": 0, "writers": 0, "r2_in": 0}
    limits = {"steps": 3000}

    async def queued(ctx, n):
        L = ctx.rwsem("L")
        while L.statistics().tasks_waiting < n:
            await ctx.yield_()

    async def read(ctx, L):
        ctx.check(ctx.vars["writers"] == 0, "a reader inside with a writer")
        ctx.vars["readers"] += 1
        await ctx.yield_()
        ctx.check(ctx.vars["writers"] == 0, "a writer came in beside a reader")

    async def write(ctx, L):
        ctx.check(ctx.vars["readers"] == 0 and ctx.vars["writers"] == 0, "writer not alone")
        ctx.vars["writers"] += 1
        await ctx.yield_()
        ctx.check(ctx.vars["readers"] == 0 and ctx.vars["writers"] == 1, "writer not alone")
        ctx.vars["writers"] -= 1

    async def w1(ctx):
        """The first writer: holds L until W1_UNTIL tasks queue behind it."""
        L = ctx.rwsem("L")
        await L.acquire()
        await write(ctx, L)
        await queued(ctx, W1_UNTIL)
        await L.release()

    async def once_held(ctx):
        """L, once w1 holds it."""
        L = ctx.rwsem("L")
        while not L.locked():
            await ctx.yield_()
        return L
'''


def test_rwlock_readers_pass_a_queued_writer_once_no_writer_holds_it(tmp_path):
    # w1 writes; r1, w2, r2 queue in that order. When w1 leaves, r1 reads and r2 must
    # join it (rwlock_t is not writer-fair): r1 waits inside until r2 is in too.
    path = _py(tmp_path, RWLOCK_HEAD + '''
    W1_UNTIL = 3

    async def r1(ctx):
        L = await once_held(ctx)
        await L.acquire_read()
        await read(ctx, L)
        while ctx.vars["r2_in"] == 0:
            await ctx.yield_()
        ctx.vars["readers"] -= 1
        await L.release_read()

    async def w2(ctx):
        L = ctx.rwsem("L")
        await queued(ctx, 1)
        await L.acquire()
        await write(ctx, L)
        await L.release()

    async def r2(ctx):
        L = ctx.rwsem("L")
        await queued(ctx, 2)
        await L.acquire_read()
        ctx.vars["r2_in"] = 1
        await read(ctx, L)
        ctx.vars["readers"] -= 1
        await L.release_read()

    tasks = {"w1": w1, "r1": r1, "w2": w2, "r2": r2}
    ''')
    for seed in range(10):
        r = vmemu.run(path, seed=seed, driver="direct")
        assert (r.verdict, r.message) == ("ok", "")


def test_rwlock_readers_stay_out_while_the_next_writer_holds_it(tmp_path):
    # w1 writes; w2 then r1 queue. When w1 leaves, w2 writes and r1 keeps waiting.
    path = _py(tmp_path, RWLOCK_HEAD + '''
    W1_UNTIL = 2

    async def w2(ctx):
        L = await once_held(ctx)
        await L.acquire()
        ctx.vars["writers"] += 1
        for _ in range(3):
            await ctx.yield_()
        ctx.check(ctx.vars["readers"] == 0, "a reader came in beside the writer")
        ctx.vars["writers"] -= 1
        await L.release()

    async def r1(ctx):
        L = ctx.rwsem("L")
        await queued(ctx, 1)
        await L.acquire_read()
        await read(ctx, L)
        ctx.vars["readers"] -= 1
        await L.release_read()

    tasks = {"w1": w1, "w2": w2, "r1": r1}
    ''')
    for seed in range(10):
        r = vmemu.run(path, seed=seed, driver="direct")
        assert (r.verdict, r.message) == ("ok", "")


def test_rwlock_reader_waits_only_for_the_writer_holding_it(tmp_path):
    # t1 write-holds and spins; r2, w3, r4 queue. A queued rwlock reader waits for the
    # holding writer only (it will pass w3); w3 waits for r2 queued ahead of it.
    path = _py(tmp_path, RWLOCK_HEAD + '''
    async def t1(ctx):
        L = ctx.rwsem("L")
        await L.acquire()
        while True:
            await ctx.yield_()

    async def r2(ctx):
        L = await once_held(ctx)
        await L.acquire_read()

    async def w3(ctx):
        await queued(ctx, 1)
        await ctx.rwsem("L").acquire()

    async def r4(ctx):
        await queued(ctx, 2)
        await ctx.rwsem("L").acquire_read()

    tasks = {"t1": t1, "r2": r2, "w3": w3, "r4": r4}
    ''')
    r = vmemu.run(path, driver="direct")
    assert r.verdict == "livelock"
    w = _waiting(r)
    assert w["r2"] == "rwlock L (for read) (held by t1)"
    assert w["w3"] == "rwlock L (queued behind r2) (held by t1)"
    assert w["r4"] == "rwlock L (for read) (held by t1)"
