"""Cancelling a run: host deadlines inside trio and asyncio, and Ctrl-C on the command line.

A cancelled ``await vmemu.arun(...)`` must unwind every emulated task and raise the
host's cancellation (which the scope swallows); the host program goes on, and the part of
the run that happened is deterministic. On the command line, Ctrl-C during a run is one
line and exit code 130 on every driver and command.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import anyio
import pytest
import trio

import vmemu
from conftest import CONTRACT, ROOT, SPIN

ABBA = str(CONTRACT / "abba.yaml")

# Far longer than any deadline below: about 400,000 steps ends in `livelock` (seconds).
LONG = """
name: long
limits: {steps: 400000}
locks: {m: mutex}
tasks:
  t:
    count: 2
    steps:
      - repeat: 1000000
        do: [yield, {lock: m}, {unlock: m}]
"""


@pytest.fixture
def long(write_scenario):
    return vmemu.load(write_scenario(LONG, "long.yaml"))


@pytest.fixture
def spin(write_scenario):
    return vmemu.load(write_scenario(SPIN, "spin.yaml"))


@pytest.fixture(params=["trio", "asyncio"])
def host(request):
    """The host loop (anyio backend); each runs arun's default driver for it."""
    return request.param


def _never_awaited(record: list) -> list[str]:
    gc.collect()
    return [str(w.message) for w in record if "never awaited" in str(w.message)]


async def _host_and_bystander(body):
    """Run ``body()`` beside a bystander task; returns (body's value, bystander turns
    taken while body ran, turns taken after)."""
    turns = 0

    async def bystander():
        nonlocal turns
        while True:
            turns += 1
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(bystander)
        value = await body()
        during = turns
        for _ in range(3):
            await anyio.sleep(0)
        after = turns - during
        tg.cancel_scope.cancel()
    return value, during, after


@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
@pytest.mark.anyio
async def test_a_deadline_firing_mid_run_unwinds_arun_and_the_host_goes_on(
        anyio_backend, long):
    events: list = []

    async def body():
        with anyio.CancelScope() as scope:
            def log(ev: list) -> None:
                events.append(ev)
                if len(events) == 1:   # the run is under way: 50 ms more, then cancelled
                    scope.deadline = anyio.current_time() + 0.05
            await vmemu.arun(long, seed=1, log=log)
            pytest.fail("arun returned after its deadline")
        # The run was cut short (it never reached its verdict), and vmemu still works.
        return scope.cancelled_caught, await vmemu.arun(ABBA, seed=1)

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        (caught, after), during, turns_after = await _host_and_bystander(body)
        assert _never_awaited(record) == []
    assert caught
    assert len(events) > 10 and not [ev for ev in events if ev[2] == "verdict"]
    assert after.verdict == vmemu.run(ABBA, seed=1, driver="direct").verdict
    assert during > 0 and turns_after > 0


_SWALLOWS_ALL = """
name = "swallows-all"
limits = {"steps": 5_000_000}


async def swallower(ctx):
    while True:
        try:
            await ctx.yield_()
        except:  # noqa: E722  (even the host's cancellation, and Killed)
            pass


async def worker(ctx):
    while True:
        await ctx.yield_()


tasks = {"swallower": swallower, "worker": worker}
"""


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
@pytest.mark.parametrize("driver", [None, "asyncio"])
def test_a_deadline_ends_a_run_whose_task_swallows_every_exception(backend, driver,
                                                                    tmp_path):
    # The asyncio driver threw the host's cancellation into emulated code, which a bare
    # except swallowed; anyio delivered it again and again and the host hung at 100 %
    # CPU. Now a cancelled run stops as a finished one does: scheduling points raise
    # Killed, and a task that swallows that for good is left parked. (In a process of
    # its own: were it to hang again, the timeout says so instead of hanging the suite.)
    path = tmp_path / "swallows_all.py"
    path.write_text(_SWALLOWS_ALL)
    code = textwrap.dedent(f"""
        import anyio, vmemu
        async def main():
            with anyio.move_on_after(0.3) as scope:
                await vmemu.arun({str(path)!r}, seed=1, driver={driver!r})
            print(scope.cancelled_caught)
            print((await vmemu.arun({ABBA!r}, seed=1, driver={driver!r})).verdict)
        anyio.run(main, backend={backend!r})
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    want = vmemu.run(ABBA, seed=1, driver="direct").verdict
    assert (p.returncode, p.stdout.split(), p.stderr) == (0, ["True", want], ""), p


@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
@pytest.mark.parametrize("driver", [None, "asyncio"])
@pytest.mark.anyio
async def test_a_scope_cancelled_before_the_call_runs_nothing(anyio_backend, driver, long):
    events: list = []
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await vmemu.arun(long, driver=driver, log=events.append)
            pytest.fail("arun returned in a cancelled scope")
        assert _never_awaited(record) == []
    assert scope.cancelled_caught
    assert not [ev for ev in events if ev[2] == "verdict"]
    assert (await vmemu.arun(ABBA, seed=1, driver=driver)).verdict in ("ok", "deadlock")


async def _cancelled_at(spin, n: int, driver: str | None) -> list:
    """The events of a run whose scope is cancelled, from its log hook, at the n-th event."""
    events: list = []
    with anyio.CancelScope() as scope:
        def log(ev: list) -> None:
            events.append(ev)
            if len(events) == n:
                scope.cancel()
        await vmemu.arun(spin, seed=3, driver=driver, log=log)
        pytest.fail("arun returned after its scope was cancelled")
    assert scope.cancelled_caught
    return events


@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
@pytest.mark.parametrize("driver", [None, "asyncio"])
@pytest.mark.anyio
async def test_two_cancelled_runs_give_the_same_trace(anyio_backend, driver, spin):
    a = await _cancelled_at(spin, 500, driver)
    b = await _cancelled_at(spin, 500, driver)
    full = vmemu.run(spin, seed=3, driver="direct").trace.events
    # Stopped within a step of the cancellation, after exactly what the full run did.
    assert a == b
    assert 500 <= len(a) < 510 < len(full) and a == full[:len(a)]


# ---------------------------------------------------------------- Ctrl-C on the CLI

# A Python scenario (so the test can tell when the run really started) that runs far
# longer than the test waits: it touches the file named by $VMEMU_TEST_STARTED, then
# yields until the step budget ($VMEMU_TEST_STEPS) runs out: minutes. Every command,
# explorations included, must stop at the next step of the schedule it is running.
STARTED = '''
import os
expect = "ok"
limits = {"steps": int(os.environ["VMEMU_TEST_STEPS"])}

async def worker(ctx):
    open(os.environ["VMEMU_TEST_STARTED"], "a").close()
    while True:
        await ctx.yield_()

tasks = {"a": worker, "b": worker}
'''

def _default_sigint() -> None:
    # A test run started in the background by a non-interactive shell has SIGINT ignored,
    # and children inherit that: give each vmemu process the default, as a terminal does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


COMMANDS = {
    "run": ["run", "{s}"],
    "explore": ["explore", "{s}", "--runs", "3"],
    "check": ["check", "{s}"],
    "lockdep": ["lockdep", "{s}", "--runs", "3"],
}


def _signal_once_running(tmp_path, source: str, cases, sig: int) -> dict:
    """Start ``vmemu`` on the Python scenario ``source`` for every (driver, command) of
    ``cases``, all at once, send each ``sig`` as soon as its emulated run is under way,
    and return (exit code, stdout, stderr) per case."""
    scenario = tmp_path / "forever.py"
    scenario.write_text(textwrap.dedent(source))
    procs = {}
    # All at once: each process spends most of its time importing (2 cores, ~1 s each).
    for driver, cmd in cases:
        started = tmp_path / f"started-{driver}-{cmd}"
        steps = 10**7
        env = {**os.environ, "VMEMU_TEST_STARTED": str(started),
               "VMEMU_TEST_STEPS": str(steps)}
        argv = [a.format(s=scenario) for a in COMMANDS[cmd]] + ["--driver", driver]
        p = subprocess.Popen([sys.executable, "-m", "vmemu", *argv], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=_default_sigint)
        procs[(driver, cmd)] = (p, started)
    try:
        deadline = time.monotonic() + 60
        waiting = dict(procs)
        while waiting and time.monotonic() < deadline:
            for key, (p, started) in list(waiting.items()):
                if started.exists():       # the emulated run is under way: interrupt it
                    p.send_signal(sig)
                    del waiting[key]
                elif p.poll() is not None:
                    del waiting[key]       # ended early: reported below
            time.sleep(0.02)
        return {key: (p.wait(timeout=60), *p.communicate()) for key, (p, _) in procs.items()}
    finally:
        for p, _ in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


def test_ctrl_c_on_every_driver_and_command_is_one_line_and_exit_130(tmp_path):
    results = _signal_once_running(
        tmp_path, STARTED, [(d, c) for d in ("trio", "asyncio", "direct") for c in COMMANDS],
        signal.SIGINT)
    bad = {key: (code, err) for key, (code, _out, err) in results.items()
           if code != 130 or len(err.strip().splitlines()) != 1
           or not err.startswith("vmemu: interrupted")}
    assert bad == {}
    # The exploration stopped inside its first schedule, not after it.
    for driver in ("trio", "asyncio", "direct"):
        assert results[(driver, "explore")][2].startswith(
            "vmemu: interrupted after 0 schedules; nothing found"), driver


# Every task swallows whatever is raised in it, Ctrl-C included, as a C-like port's
# `except:` around a retry does.
SWALLOWING = STARTED.replace("""    while True:
        await ctx.yield_()""", """    while True:
        try:
            await ctx.yield_()
        except:
            pass""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["int", "term"])
def test_a_signal_stops_a_run_whose_tasks_swallow_everything(tmp_path, sig):
    # The direct driver runs emulated code in the main thread, where Python raises
    # KeyboardInterrupt at whatever bytecode runs: inside a task's `try`, it was
    # swallowed, and `vmemu run` went on to its 10**7-step livelock verdict, exit 1.
    assert "except:" in SWALLOWING
    cases = [("direct", c) for c in COMMANDS] + [("trio", "run"), ("asyncio", "run")]
    results = _signal_once_running(tmp_path, SWALLOWING, cases, sig)
    word, code = ("interrupted", 130) if sig == signal.SIGINT else ("terminated", 143)
    bad = {key: (rc, err) for key, (rc, _out, err) in results.items()
           if rc != code or len(err.strip().splitlines()) != 1
           or not err.startswith(f"vmemu: {word}")}
    assert bad == {}


_STOP_AT_ONCE = """
name = "stop_at_once"
limits = {"steps": 100_000}


async def other(ctx):
    while True:
        await ctx.yield_()


async def worker(ctx):
    from vmemu._kernel.kernel import interrupt_running
    n = 0
    while True:
        await ctx.yield_()
        n += 1
        if n == 50:      # what explore's SIGTERM handler does, at a known moment
            assert interrupt_running(15)
        elif n > 50:
            raise RuntimeError("ran on after the run was interrupted")


tasks = {"other": other, "worker": worker}
"""


@pytest.mark.parametrize("driver", ["direct", "trio", "asyncio"])
def test_an_interrupted_run_stops_at_its_next_step_with_the_signal(tmp_path, driver):
    # Explore's signal handler stops the run in progress at its very next step, on every
    # driver (the direct driver's fast path included), and the KeyboardInterrupt carries
    # the signal, which sets explore's exit status (SIGTERM: 143). Between runs there
    # is nothing to stop.
    from vmemu._kernel.kernel import interrupt_running
    path = tmp_path / "stop_at_once.py"
    path.write_text(_STOP_AT_ONCE)
    for seed in range(3):
        with pytest.raises(KeyboardInterrupt) as e:
            vmemu.run(str(path), seed=seed, driver=driver)
        assert e.value.signum == 15
    assert interrupt_running(2) is False
