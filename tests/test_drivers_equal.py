"""The direct driver is the trio driver, only faster: same trace hash for every input.

The direct driver steps coroutines itself and lets the kernel's bare ``yield`` park a task;
the kernel keeps its run queue as a sorted task list, counts unfinished tasks and checks
only the longest-blocked task for hangs. None of that may change a single event: every
contract scenario, and every scenario shipped in ``scenarios/``, under 30 seeds of two
strategies, gives the same trace on both drivers; and the kernel's shortcuts give the same
traces as the full scans they replace.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

import vmemu
from conftest import ROOT, contract_files, lang_files, vmemu_cli_all
from vmemu._kernel.drivers.direct import run_direct
from vmemu._kernel.kernel import Kernel
from vmemu._run import new_kernel, reset_kernel
from vmemu._strategies import make_strategy

SEEDS = range(30)
SHIPPED = sorted(p for p in (ROOT / "scenarios").rglob("*.yaml"))
SCENARIOS = contract_files() + SHIPPED


def _same(sc: vmemu.Scenario, seed: int, strategy: str) -> str:
    a = vmemu.run(sc, seed=seed, strategy=strategy, driver="direct")
    b = vmemu.run(sc, seed=seed, strategy=strategy, driver="trio")
    assert (a.verdict, a.steps, a.ticks, a.trace.tape, a.trace_hash) == \
        (b.verdict, b.steps, b.ticks, b.trace.tape, b.trace_hash), (sc.path, seed, strategy)
    return a.verdict


def test_there_are_scenarios_to_compare():
    assert len(contract_files()) >= 9 and len(SHIPPED) >= 5


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_direct_and_trio_drivers_give_the_same_trace(path: Path):
    sc = vmemu.load(str(path))
    verdicts = {_same(sc, seed, "random") for seed in SEEDS}
    verdicts |= {_same(sc, seed, "pct") for seed in SEEDS[:10]}
    assert verdicts   # at least one run each; mostly several verdicts per scenario


def _random_scenario(rng: random.Random, extra: tuple[list[str], ...] = (),
                     locks: str = "{A: mutex, B: mutex}") -> str:
    """A small random program over two mutexes, an event and timers, with a short
    hung-task timeout, so that hangs, deadlocks and timer wakeups all happen often
    (``extra``: more chunks of steps to draw from, over ``locks``)."""
    chunks = [*extra, ["yield"], ["sleep: 1"], ["sleep: 3"], ["io: 2"], ["wait: ev"], ["signal: ev"],
              ["lock: A", "sleep: 2", "unlock: A"], ["lock: B", "yield", "unlock: B"],
              ["lock: B", "sleep: 6", "unlock: B"],
              ["lock: A", "lock: B", "unlock: B", "unlock: A"],
              ["lock: B", "lock: A", "unlock: A", "unlock: B"]]
    lines = ["name: fuzz",
             f"limits: {{steps: 400, ticks: 300, hung_task_timeout: {rng.choice([3, 5, 20])}}}",
             f"locks: {locks}",
             f"events: {{ev: {rng.choice(['waitqueue', 'completion'])}}}", "tasks:"]
    for t in range(rng.randint(2, 4)):
        lines.append(f"  t{t}:")
        for _ in range(rng.randint(1, 5)):
            lines += [f"    - {step}" for step in rng.choice(chunks)]
    return "\n".join(lines) + "\n"


def _full_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the kernel do what it did before its shortcuts: scan every task."""
    monkeypatch.setattr(Kernel, "_may_hang", lambda self, next_tick: True)
    real_advance = Kernel._advance_clock

    def advance(self: Kernel) -> bool:
        self._unfinished = sum(1 for t in self.tasks if t.state != "done" and not t.daemon)
        return real_advance(self)
    monkeypatch.setattr(Kernel, "_advance_clock", advance)


def test_kernel_shortcuts_change_no_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    rng = random.Random(1999)
    files = []
    for n in range(60):
        p = tmp_path / f"fuzz{n}.yaml"
        p.write_text(_random_scenario(rng))
        files.append(p)
    files += SCENARIOS
    fast = {}
    for p in files:
        sc = vmemu.load(str(p))
        fast[p] = [vmemu.run(sc, seed=s, driver="direct") for s in range(5)]
    with monkeypatch.context() as m:
        _full_scans(m)
        verdicts = set()
        for p in files:
            sc = vmemu.load(str(p))
            for s, f in zip(range(5), fast[p]):
                slow = vmemu.run(sc, seed=s, driver="direct")
                assert (slow.verdict, slow.trace_hash) == (f.verdict, f.trace_hash), (p, s)
                verdicts.add(slow.verdict)
    # The fuzz must reach the verdicts the shortcuts decide: ok, hang and deadlock.
    assert {"ok", "hang", "deadlock"} <= verdicts


class _Silent:
    """An observer that does nothing (only the hooks every observer must have): it changes
    no event, but while one is attached every step goes through its handler (run_steps
    takes no step inline) and the page-fault fast paths are off."""

    def reclaim_point(self, t, gfp):
        pass

    def writeback_begin(self, t, name):
        pass

    def writeback_end(self, t, name):
        pass


def _direct(sc: vmemu.Scenario, seed: int, observers: tuple = ()) -> tuple:
    k = new_kernel(sc, make_strategy("random", seed), observers=observers)
    run_direct(k)
    return (k.outcome.verdict, k.outcome.message, k.steps, k.now, k.tape, k.events,
            k.final_tasks, k.final_cycle)


def test_inline_steps_change_no_trace(tmp_path: Path):
    # run_steps takes yield and plain-mutex lock/unlock inline, repeating what
    # Kernel.checkpoint, Lock._lock and Lock.release do: every event, message and tape
    # must be the handlers' own, bad unlocks and self-deadlocks included.
    rng = random.Random(2026)
    bad = (["unlock: A"], ["lock: A", "lock: A"], ["lock: B", "unlock: A", "unlock: B"],
           ["lock: S", "lock: A", "unlock: A", "unlock: S"],     # might_sleep: a bug
           ["lock: S", "yield", "unlock: S"],
           # bodies: run_steps called again, in the same frame
           ["{repeat: 2, do: [{lock: A}, yield, {unlock: A}]}"],
           ["{repeat: 2, as: k, do: [{if: 'k == 1', then: [{lock: B}, {unlock: B}], "
            "else: [yield]}]}"])
    files = []
    for n in range(60):
        p = tmp_path / f"fuzz{n}.yaml"
        p.write_text(_random_scenario(rng, extra=bad, locks="{A: mutex, B: mutex, S: spinlock}"))
        files.append(p)
    verdicts, messages = set(), set()
    for p in files + SCENARIOS:
        sc = vmemu.load(str(p))
        for seed in range(5):
            inline = _direct(sc, seed)
            assert _direct(sc, seed, (_Silent(),)) == inline, (p, seed)
            verdicts.add(inline[0])
            messages.add(inline[1])
    assert {"ok", "hang", "deadlock", "bug"} <= verdicts
    # ... and the bugs include a mutex taken under a spinlock, and a bad unlock.
    assert any("BUG: sleeping function called from invalid context" in m for m in messages)
    assert any("BUG" in m and "not held by it" in m for m in messages)


def test_hung_task_is_found_after_tasks_block_and_wake_repeatedly(tmp_path: Path):
    # `waiter` blocks on A many times (each time a fresh wait); the hang is the last one,
    # when `holder` keeps A and sleeps past the timeout. The oldest-blocked shortcut must
    # see the re-blocked task at its new blocking time.
    p = tmp_path / "rehang.yaml"
    p.write_text(
        "name: rehang\nlimits: {hung_task_timeout: 10}\nlocks: {A: mutex}\ntasks:\n"
        "  holder:\n    - repeat: 5\n      do:\n        - lock: A\n        - sleep: 4\n"
        "        - unlock: A\n    - lock: A\n    - sleep: 50\n    - unlock: A\n"
        "  waiter:\n    - repeat: 6\n      do:\n        - sleep: 1\n        - lock: A\n"
        "        - unlock: A\n")
    runs = [vmemu.run(str(p), seed=s, driver="direct") for s in range(10)]
    assert {r.verdict for r in runs} == {"hang"}
    for r in runs:
        assert "task waiter blocked for more than 10 ticks" in r.message
        # khungtaskd reports the tick the timeout was crossed, not a later timer's.
        waiter_blocked = max(ev[0] for ev in r.trace.events
                             if ev[1] == "waiter" and ev[2] == "block")
        assert r.ticks == waiter_blocked + 11


@pytest.mark.parametrize("tasks", [1, 2])
def test_step_budget_ends_a_lone_spinning_task_identically(write_scenario, tasks):
    # With one runnable task the direct driver decides without asking the kernel; the
    # step budget must still end the run at the same step, with the same trace.
    path = write_scenario("name: spin\nlimits: {steps: 500}\nvars: {x: 0}\ntasks:\n  t:\n"
                          f"    count: {tasks}\n    steps:\n"
                          "      - while: \"x == 0\"\n        do: [yield]\n")
    a = vmemu.run(path, seed=3, driver="direct")
    b = vmemu.run(path, seed=3, driver="trio")
    assert a.verdict == b.verdict == "livelock"
    assert (a.steps, a.trace_hash, a.message) == (b.steps, b.trace_hash, b.message)
    assert a.steps == 501


def _state(k: Kernel) -> tuple:
    return (k.outcome.verdict, k.outcome.message, k.steps, k.now, list(k.tape),
            [list(e) for e in k.events], k.final_tasks, k.final_cycle)


@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_a_reset_kernel_runs_the_next_schedule_as_a_new_one_would(strategy, tmp_path):
    # An exploration runs a block's schedules on one kernel, reset between them (its task
    # bodies and spawnable tasks kept): every run must equal a fresh kernel's, whatever
    # the run before it left behind (a deadlock, a hang, stale timers, memory in use, a
    # spawned task). Random programs (timers, events, short hung-task timeouts) too.
    rng = random.Random(99)
    fuzz = []
    for n in range(40):
        p = tmp_path / f"fuzz{n}.yaml"
        p.write_text(_random_scenario(rng, extra=(["{wait: ev, timeout: 4}"],
                                                  ["{wait: ev, timeout: 40}", "yield"])))
        fuzz.append(p)
    verdicts = set()
    for path in fuzz + SCENARIOS + lang_files() + sorted((ROOT / "scenarios").rglob("*.py")):
        sc = vmemu.load(str(path))
        k = None
        for seed in range(6):
            fresh = new_kernel(sc, make_strategy(strategy, seed))
            run_direct(fresh)
            before = make_strategy(strategy, seed + 50)   # (a run the next must not notice)
            k = new_kernel(sc, before) if k is None else reset_kernel(k, before)
            run_direct(k)
            reset_kernel(k, make_strategy(strategy, seed))
            run_direct(k)
            assert _state(k) == _state(fresh), (path, seed)
            verdicts.add(fresh.outcome.verdict)
    assert {"ok", "deadlock", "hang", "bug"} <= verdicts


_SWALLOWER = '''
name = "swallower"
locks = {"A": "mutex", "B": "mutex"}
events = {"wq": "waitqueue"}


async def main(ctx):
    await ctx.spawn("worker")
    async with ctx.lock("A"):
        await ctx.yield_()
        async with ctx.lock("B"):
            pass
    await ctx.stop("worker")


async def other(ctx):
    async with ctx.lock("B"):
        await ctx.yield_()
        async with ctx.lock("A"):
            pass


async def worker(ctx):
    BODY


tasks = {"main": main, "other": other,
         "worker": {"fn": worker, "start": "spawned", "daemon": True}}
'''
#: Swallows the Killed that unwinds it at the end of a run, once, and returns.
_ONCE = '''try:
        while not ctx.should_stop:
            await ctx.event("wq").wait(state="interruptible")
    except:  # noqa: E722  (a bare except, as real code has)
        pass'''
#: Swallows every Killed and goes back to waiting: it refuses to die.
_ALWAYS = '''while True:
        try:
            await ctx.event("wq").wait(state="interruptible")
        except:  # noqa: E722
            pass'''


def test_a_task_that_swallows_the_end_of_run_kill_ends_alike_on_every_driver(tmp_path):
    # It ends when Killed is thrown into it (an `exit` event, after the verdict): the
    # direct driver once dropped that end, so its traces differed from trio's and
    # asyncio's and explore's findings failed to replay on them.
    path = tmp_path / "once.py"
    path.write_text(_SWALLOWER.replace("BODY", _ONCE))
    sc = vmemu.load(str(path))
    verdicts = set()
    for seed in range(12):
        runs = [vmemu.run(sc, seed=seed, driver=d) for d in ("direct", "trio", "asyncio")]
        assert len({(r.verdict, r.trace_hash) for r in runs}) == 1, seed
        verdicts.add(runs[0].verdict)
    assert verdicts == {"ok", "deadlock"}
    x = vmemu.explore(sc, runs=200, findings_dir=str(tmp_path / "f"), store=None)
    assert x.verdict == "deadlock"
    assert vmemu.replay(x.result.trace_path, driver="trio").trace_hash == x.result.trace_hash


def test_a_task_that_refuses_to_die_is_left_parked_and_the_run_ends(tmp_path):
    # A task that swallows every Killed and waits again used to spin at 100 % CPU in the
    # end-of-run kill on every driver, deaf to SIGTERM. It is now parked for good (never
    # resumed) and the command ends with its verdict, saying nothing about the coroutine
    # Python could not close.
    path = tmp_path / "always.py"
    path.write_text(_SWALLOWER.replace("BODY", _ALWAYS))
    calls = [("run", str(path), "--seed", str(seed), "--driver", d, "--json")
             for seed in (1, 3) for d in ("direct", "trio", "asyncio")]
    calls.append(("explore", str(path), "--runs", "300", "--all", "--store",
                  str(tmp_path / "c.sqlite"), "--findings", str(tmp_path / "f")))
    procs = vmemu_cli_all(*calls, timeout=60)
    for p in procs:
        assert p.returncode in (0, 1) and not p.stderr, p
    runs = [json.loads(p.stdout) for p in procs[:6]]
    for seed_runs in (runs[:3], runs[3:]):
        assert len({(r["verdict"], r["trace_hash"]) for r in seed_runs}) == 1
    assert {r["verdict"] for r in runs} <= {"ok", "deadlock", "hang"}
    assert "schedules explored: 300" in procs[6].stdout


def test_tasks_that_end_while_the_run_unwinds_do_so_in_one_order_on_every_driver(tmp_path):
    # Two daemons swallow the end-of-run Killed and return (two `exit` events after the
    # verdict). Trio ran every unwinding task at once, in an order of its own choosing
    # (it shuffles each batch): the trace's tail, and its hash, changed from run to run.
    text = _SWALLOWER.replace("BODY", _ONCE).replace('await ctx.stop("worker")', "pass")
    text = text.replace('await ctx.spawn("worker")',
                        'await ctx.spawn("worker")\n    await ctx.spawn("second")')
    text = text.replace('''"worker": {"fn": worker, "start": "spawned", "daemon": True}}''',
                        '''"worker": {"fn": worker, "start": "spawned", "daemon": True},
         "second": {"fn": worker, "start": "spawned", "daemon": True}}''')
    path = tmp_path / "two.py"
    path.write_text(text)
    sc = vmemu.load(str(path))
    want = vmemu.run(sc, seed=3, driver="direct")
    assert want.verdict == "deadlock" and \
        [e[1] for e in want.trace.events if e[2] == "exit"][-2:] == ["worker", "second"]
    got = {vmemu.run(sc, seed=3, driver="trio").trace_hash for _ in range(12)}
    got.add(vmemu.run(sc, seed=3, driver="asyncio").trace_hash)
    assert got == {want.trace_hash}


#: Two tasks that take A and B in opposite orders (Python scenario text).
_ABBA = '''

async def t1(ctx):
    async with ctx.lock("A"):
        await ctx.yield_()
        async with ctx.lock("B"):
            pass


async def t2(ctx):
    async with ctx.lock("B"):
        await ctx.yield_()
        async with ctx.lock("A"):
            pass
'''


_UNWINDING = '''
name = "unwinding"
locks = {"A": "mutex", "B": "mutex", "C": "mutex"}
events = {"E": "waitqueue"}
vars = {"x": 0}


async def s(ctx):
    BODY
''' + _ABBA + '''

tasks = {"s": s, "t1": t1, "t2": t2}
'''
#: Unwinds through an `async with` and a `finally` that awaits: scheduling points on its
#: way out, each raising Killed again. No task here swallows anything.
_WAY_OUT = '''async with ctx.lock("C"):
        try:
            await ctx.event("E").wait()
        finally:
            await ctx.store("x", 5)'''
#: Swallows the Killed after its `async with` released the lock (on its way out).
_AFTER_RELEASE = '''try:
        async with ctx.lock("C"):
            await ctx.event("E").wait()
    except:  # noqa: E722
        return'''


@pytest.mark.parametrize("body", [_WAY_OUT, _AFTER_RELEASE], ids=["finally", "swallow"])
def test_a_task_unwinding_through_scheduling_points_ends_alike_on_every_driver(body, tmp_path):
    # Scheduling points a task meets while it unwinds (a lock's release in `async with`,
    # an await in `finally`) raise Killed again, whoever ran last: a first cut at tasks
    # that refuse to die parked such a task for good on its second scheduling point,
    # charged a lock's release to whichever task ran last (so the direct driver disagreed
    # with the others), and printed "Exception ignored ... Killed" when Python closed it.
    path = tmp_path / "unwinding.py"
    path.write_text(_UNWINDING.replace("BODY", body))
    sc = vmemu.load(str(path))
    for seed in range(16):
        runs = [vmemu.run(sc, seed=seed, driver=d) for d in ("direct", "trio", "asyncio")]
        assert len({(r.verdict, r.trace_hash) for r in runs}) == 1, seed
    procs = vmemu_cli_all(*[("run", str(path), "--seed", "1", "--driver", d)
                            for d in ("direct", "trio", "asyncio")])
    assert all(p.returncode in (0, 1) and not p.stderr for p in procs), procs


_LATE = '''
name = "late"
locks = {"A": "mutex", "B": "mutex", "T": "mutex"}
events = {"E": "waitqueue"}
''' + _ABBA + '''

async def cnt(ctx):
    n = 0
    while True:
        try:
            await ctx.event("E").wait()
        except:  # noqa: E722
            n += 1
            ctx.lock("T").try_acquire()     # (an event, with no scheduling point)
            if n >= 150:
                raise ValueError("gave up")


tasks = {"cnt": {"fn": cnt, "daemon": True}, "t1": t1, "t2": t2}
'''


def test_a_task_left_parked_changes_nothing_when_python_closes_it(tmp_path):
    # A task left parked for good runs again when Python closes its coroutine (its bare
    # except swallows the GeneratorExit): once, it added events to the trace of a run
    # already over (the hash read before and after gc.collect() differed, findings
    # failed to replay) and printed "Exception ignored" tracebacks, one per schedule.
    import gc
    path = tmp_path / "late.py"
    path.write_text(_LATE)
    sc = vmemu.load(str(path))
    hashes = set()
    for driver in ("direct", "trio", "asyncio"):
        r = vmemu.run(sc, seed=1, driver=driver)
        n = len(r.trace.events)
        gc.collect()
        assert len(r.trace.events) == n, driver
        hashes.add(r.trace_hash)
    assert len(hashes) == 1
    p = vmemu_cli_all(("explore", str(path), "--runs", "300", "--store",
                       str(tmp_path / "c.sqlite"), "--findings", str(tmp_path / "f")))[0]
    assert p.returncode == 1 and not p.stderr, p
    [finding] = list((tmp_path / "f").glob("*.json"))
    procs = vmemu_cli_all(*[("replay", str(finding), "--driver", d)
                            for d in ("direct", "trio", "asyncio")])
    assert all(q.returncode == 1 and not q.stderr for q in procs), procs


_INTERRUPTED = """
name = "interrupted"
limits = {"steps": 5_000_000}


async def swallower(ctx):
    while True:
        try:
            await ctx.yield_()
        except:  # noqa: E722
            pass


async def worker(ctx):
    n = 0
    while True:
        await ctx.yield_()
        n += 1
        if n == 100:     # what explore's Ctrl-C handler does, at a known moment
            from vmemu._kernel.kernel import interrupt_running
            interrupt_running(2)


tasks = {"swallower": swallower, "worker": worker}
"""


def test_ctrl_c_ends_a_run_whose_task_swallows_everything_on_every_driver(tmp_path):
    # Explore's Ctrl-C stops the run in progress at its next step (interrupt_running).
    # The asyncio driver then unwound the tasks without stopping the kernel: a task that
    # swallowed Killed parked again, on a baton nobody would set, and the process hung.
    path = tmp_path / "interrupted.py"
    path.write_text(_INTERRUPTED)
    code = ("import sys, vmemu\n"
            "try:\n    vmemu.run(sys.argv[1], seed=0, driver=sys.argv[2])\n"
            "except KeyboardInterrupt:\n    print('interrupted')\n")
    for driver in ("direct", "trio", "asyncio"):
        p = subprocess.run([sys.executable, "-c", code, str(path), driver],
                           capture_output=True, text=True, timeout=60)
        assert (p.stdout, p.stderr) == ("interrupted\n", ""), (driver, p)


_ONE_LEFT = '''
name = "one_left"
events = {"wq": "waitqueue"}


async def main(ctx):
    await ctx.yield_()


async def keeper(ctx):
    try:
        await ctx.event("wq").wait(state="interruptible")
    except:  # noqa: E722
        pass


tasks = {"main": main, "keeper": {"fn": keeper, "daemon": True}}
'''


def _alike_on_every_driver(path, source: str) -> list:
    """Write the Python scenario ``source`` to ``path`` and run it on the three drivers;
    the runs, checked to give one trace hash."""
    path.write_text(source)
    runs = [vmemu.run(str(path), driver=d) for d in ("direct", "trio", "asyncio")]
    assert len({r.trace_hash for r in runs}) == 1
    return runs


def test_the_last_task_left_is_unwound_on_every_driver(tmp_path):
    # main ends the run (`ok`) with one task of two done; the daemon left waiting is
    # unwound all the same, swallows the Killed and returns: its `exit` follows the
    # verdict on every driver.
    for r in _alike_on_every_driver(tmp_path / "one_left.py", _ONE_LEFT):
        assert r.verdict == "ok"
        assert [e[1:3] for e in r.trace.events][-3:] == [
            ["main", "exit"], ["-", "verdict"], ["keeper", "exit"]]


_JOINED = '''
name = "joined"
events = {"wq": "waitqueue"}


async def main(ctx):
    await ctx.spawn("worker")
    await ctx.join("worker")


async def worker(ctx):
    try:
        await ctx.event("wq").wait()
    except:  # noqa: E722
        raise ValueError("unwinding went wrong")


tasks = {"main": main, "worker": {"fn": worker, "start": "spawned"}}
'''


def test_what_a_task_raises_while_it_unwinds_changes_nothing(tmp_path):
    # The run deadlocks (main joins worker, which waits for a signal nobody sends). While
    # unwinding, worker raises something else than the Killed thrown into it: that is not
    # an exit (its joiner main is not woken) and adds nothing to the trace.
    for r in _alike_on_every_driver(tmp_path / "joined.py", _JOINED):
        assert r.verdict == "deadlock"
        assert [e[1:3] for e in r.trace.events][-1] == ["-", "verdict"]
        assert not [e for e in r.trace.events if e[2] == "wake"]
