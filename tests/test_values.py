"""Values in scenarios: locals, arrays, loads and atomics, routine parameters and results,
expressions wherever a number is taken (issue: port real bugs faithfully)."""

from __future__ import annotations

import pytest

import vmemu
from vmemu._cli import main


def one(path, seed=0, driver="direct"):
    return vmemu.run(path, seed=seed, driver=driver)


def explore(path, **kw):
    kw.setdefault("driver", "direct")
    return vmemu.explore(path, **kw)


def test_an_index_out_of_range_is_a_kasan_bug_naming_array_index_length_and_line(
        write_scenario):
    r = one(write_scenario("""
vars: {buf: [0, 0, 0]}
tasks:
  t:
    locals: {i: 3}
    steps:
      - set: {"buf[i]": 1}
"""))
    assert r.verdict == "bug"
    assert r.message == ("BUG: KASAN: out-of-bounds access in t: buf[3] of an array of "
                         f"length 3 at {r.scenario.path}:7")


def test_a_negative_index_in_an_expression_is_out_of_bounds_too(write_scenario):
    r = one(write_scenario("""
tasks:
  t:
    locals: {a: [5, 6], i: -1, v: 0}
    steps:
      - set: {v: "a[i]"}
"""))
    assert r.verdict == "bug" and "a[-1] of an array of length 2" in r.message


def test_values_are_s64_and_wrap_like_c(write_scenario):
    r = one(write_scenario("""
vars: {x: 9223372036854775807}
tasks:
  t:
    - add: {x: 1}
    - assert: "x == -9223372036854775807 - 1"
"""))
    assert r.verdict == "ok", r.message


def test_each_counted_instance_has_its_own_locals(write_scenario):
    r = explore(write_scenario("""
vars: {sum: 0}
tasks:
  w:
    count: 3
    locals: {mine: 0}
    steps:
      - set: {mine: "{i} + 1"}
      - yield
      - fetch_add: {var: sum, value: mine}
  check:
    - join: w0
    - join: w1
    - join: w2
    - assert: "sum == 6"
"""), runs=200)
    assert r.verdict == "ok", r.result.message


def test_routine_frames_have_their_own_locals_and_return_results(write_scenario):
    # Recursion: each call has its own `n` and `sub`; the result comes back through `as:`.
    r = one(write_scenario("""
routines:
  sum_to:
    params: [n]
    locals: {sub: 0}
    steps:
      - if: "n == 0"
        then:
          - return: 0
      - call: sum_to
        args: {n: "n - 1"}
        as: sub
      - return: "n + sub"
  nothing:
    - yield
vars: {total: 0}
tasks:
  t:
    locals: {r: 7}
    steps:
      - call: sum_to
        args: {n: 10}
        as: total
      - call: nothing
        as: r
      - assert: "total == 55 and r == 0"
"""))
    assert r.verdict == "ok", r.message


def _schedules(path):
    return explore(path, strategy="dfs", runs=10_000).schedules


def test_local_work_is_not_a_scheduling_point_but_shared_stores_are(write_scenario):
    body = """
vars: {x: 0}
tasks:
  a:
    locals: {l: 0}
    steps:
      - set: {%s: 1}
      - set: {%s: 2}
      - set: {%s: 3}
  b: [yield]
"""
    local = _schedules(write_scenario(body % ("l", "l", "l"), name="local.yaml"))
    shared = _schedules(write_scenario(body % ("x", "x", "x"), name="shared.yaml"))
    assert local < shared
    # a runs to its end in one go: (a), or b first and then a or b at b's yield.
    assert local == 3


def test_load_is_a_scheduling_point_so_a_plain_counter_loses_updates(write_scenario):
    r = explore(write_scenario("""
vars: {counter: 0}
tasks:
  w:
    count: 2
    locals: {tmp: 0}
    steps:
      - load: {tmp: counter}
      - set: {counter: "tmp + 1"}
  check:
    - join: w0
    - join: w1
    - assert: "counter == 2"
"""))
    assert r.verdict == "assertion"
    assert "counter=1" in r.result.message


def test_atomics_store_what_c_stores_and_report_what_they_saw(write_scenario):
    r = one(write_scenario("""
vars: {x: 3, a: [10, 20]}
tasks:
  t:
    locals: {seen: 0, old: 0}
    steps:
      - cmpxchg: {var: x, old: 3, new: 4, as: seen}
      - assert: "ok == 1 and seen == 3 and x == 4"
      - cmpxchg: {var: x, old: 3, new: 9, as: seen}
      - assert: "ok == 0 and seen == 4 and x == 4"
      - xchg: {var: "a[1]", value: 7, as: old}
      - assert: "old == 20 and a[1] == 7"
      - fetch_add: {var: "a[0]", value: -5, as: old}
      - assert: "old == 10 and a[0] == 5"
"""))
    assert r.verdict == "ok", r.message
    ops = [(ev[2], ev[3]) for ev in r.trace.events if ev[2] in ("cmpxchg", "xchg",
                                                                   "fetch_add")]
    assert ops == [("cmpxchg", "x 3->4 ok"), ("cmpxchg", "x 3->9 failed (saw 4)"),
                   ("xchg", "a[1] 20->7"), ("fetch_add", "a[0] 10->5")]


def test_the_interleaving_table_shows_the_values(write_scenario):
    r = explore(write_scenario("""
vars: {x: 0}
tasks:
  w:
    count: 2
    locals: {tmp: 0}
    steps:
      - load: {tmp: x}
      - set: {x: "tmp + 1"}
  check: [{join: w0}, {join: w1}, {assert: "x == 2"}]
""")).result
    assert r.verdict == "assertion"
    table = r.report()
    assert "load x -> tmp=0" in table and "set x=1" in table


def test_repeat_as_gives_a_zero_based_index_and_expressions_size_steps(write_scenario):
    r = one(write_scenario("""
memory: {pages: 64, classes: {cache: {}}}
vars: {a: [0, 0, 0, 0], n: 4, t: 0}
tasks:
  t:
    locals: {k2: 0}
    steps:
      - repeat: "n"
        as: k
        do:
          - set: {"a[k]": "k * 10"}
      - assert: "a[0] == 0 and a[3] == 30 and k == 3"
      - sleep: "n * 2"
      - io: "n - 3"
      - alloc: "n / 2"
        as: p
      - fill: {class: cache, pages: "n"}
      - repeat: "n - 10"
        do: [{set: {t: 99}}]
      - assert: "t == 0"
"""))
    assert r.verdict == "ok", r.message
    assert r.ticks == 9
    assert r.extra["memory"]["classes"] == {"cache": 4}


def test_a_negative_sleep_or_alloc_from_an_expression_is_a_bug(write_scenario):
    r = one(write_scenario("""
vars: {n: -1}
tasks:
  t: [{sleep: "n"}]
"""))
    assert r.verdict == "bug" and "sleep of -1 ticks" in r.message


def test_writeback_routines_receive_class_and_page(write_scenario):
    r = explore(write_scenario("""
memory:
  pages: 16
  watermarks: {min: 2, low: 4, high: 6}
  classes:
    clean: {}
    shm: {writeback: wb, needs: [io]}
vars: {last_class: -1, pages: 0}
routines:
  wb:
    params: [class, page]
    steps:
      - set: {last_class: class}
      - add: {pages: 1}
tasks:
  t:
    - fill: {class: shm, pages: 12}
    - alloc: 6
      as: p
    - assert: "last_class == 1 and pages > 0"
"""), runs=20)
    assert r.verdict == "ok", r.result.message


@pytest.mark.parametrize("text, needle", [
    ("vars: {buf: [0, 0]}\ntasks:\n  t: [{set: {x: buf}}]\n", "unknown variable 'x'"),
    ("vars: {buf: [0, 0], x: 0}\ntasks:\n  t: [{set: {x: buf}}]\n", "buf' is an array"),
    ("vars: {buf: [0, 0], x: 0}\ntasks:\n  t: [{set: {buf: 1}}]\n", "give an element"),
    ("vars: {buf: [0, 'a']}\ntasks:\n  t: [yield]\n", "array element 1 must be an integer"),
    ("vars: {x: 0}\ntasks:\n  t:\n    locals: {tmp: 0}\n    steps: [{load: {x: x}}]\n",
     "'x' is a shared variable, but this must be a local"),
    ("vars: {x: 0}\ntasks:\n  t:\n    locals: {tmp: 0}\n    steps: [{load: {tmp: tmp}}]\n",
     "'tmp' is a local; this operation works on shared memory"),
    ("vars: {x: 0}\ntasks:\n  t:\n    steps: [{cmpxchg: {var: x, old: 0, new: 1, as: x}}]\n",
     "'x' is a shared variable, but this must be a local"),
    ("vars: {x: 0}\ntasks:\n  t:\n    steps: [{xchg: {var: x, valu: 1}}]\n",
     "unknown key 'valu' in xchg (did you mean 'value'?)"),
    ("routines:\n  r:\n    params: [a]\n    steps: [yield]\ntasks:\n"
     "  t: [{call: r, args: {a: 1, b: 2}}]\n", "r has no parameter 'b'"),
    ("routines:\n  r:\n    params: [a]\n    steps: [yield]\ntasks:\n  t: [{call: r}]\n",
     "missing argument 'a'"),
    ("tasks:\n  t:\n    locals: {ok: 0}\n    steps: [yield]\n", "per-task names"),
    ("vars: {x: 99999999999999999999}\ntasks:\n  t: [yield]\n", "does not fit in 64 bits"),
    ("tasks:\n  t:\n    - repeat: 2\n      as: 3\n      do: [yield]\n", "loop index"),
    ("memory: {pages: 8, classes: {c: {writeback: wb}}}\nroutines:\n  wb:\n"
     "    params: [x]\n    steps: [yield]\ntasks:\n  t: [yield]\n", "declares parameter 'x'"),
])
def test_bad_values_are_one_line_naming_file_line_and_key(write_scenario, capsys, text,
                                                          needle):
    path = write_scenario(text)
    assert main(["run", path]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert needle in err and path in err


def test_python_scenarios_get_loads_atomics_and_arrays(tmp_path):
    src = tmp_path / "py_values.py"
    src.write_text('''
expect = "ok"
vars = {"counter": 0, "slots": [0, 0]}

async def adder(ctx):
    for _ in range(2):
        await ctx.fetch_add("counter", 1)

async def swapper(ctx):
    old = await ctx.xchg("slots", 5, index=1)
    assert old == 0
    seen = await ctx.cmpxchg("slots", 0, 9, index=0)
    ctx.check(seen == 0 and ctx.ok == 1, "cmpxchg swapped")
    await ctx.store("slots", 1, index=0)

async def checker(ctx):
    await ctx.join("adder")
    await ctx.join("swapper")
    ctx.check(await ctx.load("counter") == 2, "counter")
    ctx.check(await ctx.load("slots", 0) == 1 and await ctx.load("slots", 1) == 5, "slots")

tasks = {"adder": adder, "swapper": swapper, "checker": checker}
''')
    x = explore(str(src), runs=100)
    assert x.verdict == "ok", x.result.message
    r = one(str(src), seed=1)
    assert ("xchg", "slots[1] 0->5") in [(ev[2], ev[3]) for ev in r.trace.events]


def test_a_stack_through_a_call_with_arguments_reads_in_the_report(write_scenario):
    r = explore(write_scenario("""
locks: {m: mutex}
routines:
  take:
    params: [a, b]
    steps: [{lock: m}, {lock: m}]
tasks:
  t:
    locals: {x: 2}
    steps:
      - call: take
        args: {a: 1, b: "x + 1"}
""")).result
    assert r.verdict == "deadlock"
    stack = next(t for t in r.tasks if t["name"] == "t")["stack"]
    assert stack[0]["step"] == "call take(a=1, b=x + 1)"
    assert stack[1]["frame"] == "take" and stack[1]["step"] == "lock m"


# ------------------------------------------------ found by an adversarial pass (round 5)

def test_arithmetic_wraps_to_64_bits_at_every_operation(write_scenario):
    # Intermediate results were unbounded Python ints: a routine squaring its parameter
    # at each of 24 calls hung the tool (a number of 2**24 * 63 bits; 12 calls here), a
    # product of 300 INT_MAXes was a `bug` verdict from Python's int-to-text limit, and
    # cmpxchg's `old` of INT_MAX + 1 never matched INT_MIN.
    product = "*".join(["x"] * 300)
    r = one(write_scenario(f"""
vars: {{x: 9223372036854775807, y: 0, z: -9223372036854775808}}
routines:
  sq:
    params: [a, d]
    steps:
      - if: "d > 0"
        then:
          - call: sq
            args: {{a: "a * a", d: "d - 1"}}
      - return: "a"
tasks:
  t:
    locals: {{m: 9223372036854775807, seen: 0, r: 0, big: 0}}
    steps:
      - call: sq
        args: {{a: "m", d: 12}}
        as: r
      - add: {{y: "{product}"}}
      - cmpxchg: {{var: z, old: "m + 1", new: 5, as: seen}}
      - assert: "ok == 1 and z == 5 and seen == -9223372036854775808"
      - assert: "y == 1 and r == 9223372036854775807"
      - set: {{big: "-(-9223372036854775807 - 1)"}}
      - assert: "big == -9223372036854775807 - 1"
      - assert: "(m + 1) / 2 == -4611686018427387904 and 9223372036854775808 == -m - 1"
"""))
    assert r.verdict == "ok", r.message


def test_a_condition_wait_may_drop_a_spinlock_to_sleep(write_scenario):
    # md/raid1's wait_barrier(): wait_event_lock_irq(wq, !barrier, resync_lock) sleeps
    # with its spinlock released; it was a might-sleep `bug`. Sleeping while holding
    # another spinlock still is one.
    text = """
locks: {resync_lock: spinlock, other: spinlock}
events: {wait_barrier: waitqueue}
vars: {barrier: 1}
tasks:
  io:
    - lock: resync_lock
    - while: "barrier != 0"
      do:
        - wait: wait_barrier
          with_lock: resync_lock
    - unlock: resync_lock
  resync:
    - lock: resync_lock
    - set: {barrier: 0}
    - broadcast: wait_barrier
    - unlock: resync_lock
"""
    x = explore(write_scenario(text), runs=50, store=None)
    assert x.verdict == "ok" and x.schedules == 50
    nested = text.replace("  io:\n    - lock: resync_lock", "  io:\n    - lock: other\n"
                          "    - lock: resync_lock").replace(
        "    - unlock: resync_lock\n  resync", "    - unlock: resync_lock\n"
        "    - unlock: other\n  resync")
    x = explore(write_scenario(nested), runs=50, store=None)
    assert x.verdict == "bug" and "while holding spinlock other" in x.result.message


def test_a_kthread_that_exits_holding_a_mutex_is_a_bug(write_scenario):
    # Linux: debug_check_no_locks_held() in do_exit; daemons were exempt and the run `ok`.
    r = one(write_scenario("""
locks: {M: mutex}
tasks:
  main:
    - spawn: worker
    - stop: worker
  worker:
    start: spawned
    daemon: true
    steps:
      - lock: M
"""))
    assert r.verdict == "bug" and r.message == "task worker exited holding M"


@pytest.mark.parametrize("name", ["should_stop", "ok", "not"])
def test_a_loop_index_may_not_hide_a_name_every_expression_reads(write_scenario, name):
    # `repeat ... as: should_stop` shadowed kthread_should_stop(): `stop` never ended the
    # loop that read it, and the run was a deadlock.
    path = write_scenario(f"""
tasks:
  t:
    - repeat: 3
      as: {name}
      do: [yield]
""")
    with pytest.raises(vmemu.ScenarioError, match="name the loop index something else"):
        vmemu.load(path)


def test_nesting_too_deep_for_the_interpreter_is_the_same_bug_on_every_driver(write_scenario):
    # 31 recursive calls, each 15 loops deep: every level costs Python frames, and the
    # run hit Python's recursion limit (a RecursionError `bug`) at a depth that differed
    # by driver (482, 479 and 477 steps). The emulated stack now has a bound of its own.
    loops = "{if: \"d > 0\", then: [{call: r, args: {d: \"d - 1\"}}]}"
    for _ in range(15):
        loops = "{repeat: 1, do: [" + loops + "]}"
    path = write_scenario(f"""
routines:
  r:
    params: [d]
    steps: [{loops}]
tasks:
  t: [{{call: r, args: {{d: 31}}}}]
""")
    seen = {(r.verdict, r.message, r.steps, r.trace_hash)
            for r in (one(path, driver=d) for d in ("direct", "trio", "asyncio"))}
    assert len(seen) == 1
    verdict, message, steps, _ = seen.pop()
    assert verdict == "bug" and "nested beyond 160 (kernel stack overflow)" in message
    # Within the bound, the same shape runs to its end.
    ok = one(write_scenario(f"""
routines:
  r:
    params: [d]
    steps: [{loops}]
tasks:
  t: [{{call: r, args: {{d: 8}}}}]
"""), driver="trio")
    assert ok.verdict == "ok", ok.message
