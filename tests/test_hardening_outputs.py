"""Hardening, second pass: what a command writes, and what emulated code may do to vmemu.

Found by an adversarial pass over the command line: output options that replaced a
device or a user's input with a file, a task's ``sys.exit()`` that ended vmemu with no
report (so ``check`` passed over a failing scenario), and paths and streams that were a
traceback: a name too long, a deleted current folder, a closed stdout or stderr.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading

import pytest

from conftest import CONTRACT, ROOT, vmemu_cli, vmemu_cli_all

ABBA = str(CONTRACT / "abba.yaml")


def _one_line(p: subprocess.CompletedProcess, code: int = 2) -> str:
    lines = p.stderr.strip().splitlines()
    assert p.returncode == code and len(lines) == 1 and "Traceback" not in p.stderr, \
        (p.returncode, p.stderr)
    return lines[0]


def test_a_fifo_output_is_written_through_not_replaced_by_a_file(tmp_path):
    # os.replace over the path made a regular file of it (as root, `--trace /dev/null`
    # turned /dev/null into a file for the whole machine). A FIFO shows the same bug
    # without putting the machine at risk.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    p = vmemu_cli("run", ABBA, "--trace", str(fifo))
    reader.join(30)
    assert p.returncode in (0, 1), p.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and got[0].startswith(b'{"format":"vmemu-trace"')


def test_a_fifo_nobody_reads_is_one_line_not_a_wait(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    line = _one_line(vmemu_cli("run", ABBA, "--trace", str(fifo), timeout=60))
    assert str(fifo) in line and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_dev_stdout_is_written_to(tmp_path):
    # (Not /dev/null here: were this bug back, a test run as root would break it.)
    p = vmemu_cli("run", ABBA, "--perfetto", "/dev/stdout", "--json")
    assert p.returncode in (0, 1), p.stderr
    assert '"traceEvents"' in p.stdout and '"verdict"' in p.stdout


def test_a_link_into_proc_is_written_through_not_replaced(tmp_path):
    # /dev/stdout -> /proc/self/fd/1 with standard output sent to a file: the rename went
    # to the file the link named (what was printed after it went to the unlinked old
    # one, and was lost), or, where that name did not resolve, replaced the link itself
    # (it broke /dev/stdout for the whole machine). A link of the test's own shows it
    # without putting the machine at risk. Now the stream itself is written, in order.
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        p = subprocess.run([sys.executable, "-m", "vmemu", "run", ABBA, "--perfetto",
                            str(link), "--json"], cwd=ROOT, stdout=f,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode in (0, 1), p.stderr
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"
    import json
    perfetto, report = json.JSONDecoder().raw_decode(out.read_text())
    assert "traceEvents" in perfetto
    assert json.loads(out.read_text()[report:])["scenario"] == "abba"


def test_a_symlinked_output_writes_the_file_it_names(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    p = vmemu_cli("run", ABBA, "--trace", str(link))
    assert p.returncode in (0, 1), p.stderr
    assert link.is_symlink() and target.read_text().startswith('{"format":"vmemu-trace"')


def test_no_output_option_may_overwrite_an_input(tmp_path):
    scenario = tmp_path / "mine.yaml"
    scenario.write_text((CONTRACT / "abba.yaml").read_text())
    plan = tmp_path / "plan.yaml"
    plan.write_text((ROOT / "faults" / "fail_atomic_allocs.yaml").read_text())
    saved = tmp_path / "t.json"
    assert vmemu_cli("run", str(scenario), "--trace", str(saved)).returncode in (0, 1)
    calls = (("run", str(scenario), "--trace", str(scenario)),
             ("run", str(scenario), "--faults", str(plan), "--trace", str(plan)),
             ("run", str(scenario), "--faults", str(plan), "--html", str(plan)),
             ("run", str(scenario), "--trace", str(tmp_path / "o.json"),
              "--perfetto", str(tmp_path / "o.json")),
             # The scenario a trace names is an input of its replay, too.
             ("replay", str(saved), "--html", str(scenario)))
    for args, p in zip(calls, vmemu_cli_all(*calls)):
        line = _one_line(p)
        assert "would destroy it" in line or "give each its own name" in line, (args, line)
    assert scenario.read_text() == (CONTRACT / "abba.yaml").read_text()
    assert plan.read_text() == (ROOT / "faults" / "fail_atomic_allocs.yaml").read_text()
    assert not (tmp_path / "o.json").exists()


SYS_EXIT_IN_A_TASK = '''
import sys
expect = "ok"

async def a(ctx):
    await ctx.yield_()
    sys.exit(3)

async def b(ctx):
    await ctx.yield_()

tasks = {"a": a, "b": b}
'''


def test_sys_exit_in_a_task_is_a_bug_verdict_on_every_driver(tmp_path):
    # It was re-raised as vmemu's own exit: exit code 3 and no report, and `check` of
    # a folder holding it printed nothing and exited 0 over another scenario's failure.
    path = tmp_path / "exits.py"
    path.write_text(textwrap.dedent(SYS_EXIT_IN_A_TASK))
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text((CONTRACT / "abba.yaml").read_text().replace("deadlock", "ok", 1))
    calls = [("run", str(path), "--json", "--driver", d) for d in ("direct", "trio", "asyncio")]
    calls.append(("check", str(tmp_path), "--runs", "50"))
    *runs, check = vmemu_cli_all(*calls)
    import json
    seen = {(json.loads(p.stdout)["verdict"], json.loads(p.stdout)["message"],
             json.loads(p.stdout)["trace_hash"], p.returncode) for p in runs}
    assert len(seen) == 1 and next(iter(seen))[:2] == ("bug", "task a raised SystemExit: 3")
    assert next(iter(seen))[3] == 1
    assert check.returncode == 1 and "FAIL" in check.stdout, check.stdout + check.stderr


def test_sys_exit_while_a_python_scenario_loads_is_one_line(tmp_path):
    path = tmp_path / "exit0.py"
    path.write_text("import sys\nsys.exit(0)\n")
    line = _one_line(vmemu_cli("run", str(path)))
    assert line.startswith(f"vmemu: error: {path}:2:") and "SystemExit" in line


def test_a_file_name_too_long_is_one_line_for_every_output(tmp_path):
    long = str(tmp_path / ("a" * 300))
    calls = (("run", ABBA, "--html", long + ".html"), ("run", ABBA, "--perfetto", long),
             ("run", ABBA, "--trace", long), ("explore", ABBA, "--findings", long))
    for args, p in zip(calls, vmemu_cli_all(*calls)):
        assert "the file name is too long" in _one_line(p), args


def test_a_deleted_current_folder_is_one_line_or_a_note(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    code = ("import os, sys, runpy; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); "
            "sys.argv = ['vmemu', *sys.argv[2:]]; runpy.run_module('vmemu', run_name='__main__')")

    def vmemu_in_gone(*args: str) -> subprocess.CompletedProcess:
        gone.mkdir(exist_ok=True)
        return subprocess.run([sys.executable, "-c", code, str(gone), *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = _one_line(vmemu_in_gone("run", ABBA, "--html", "x.html"))
    assert "the current folder no longer exists" in line
    # An exploration still runs and reports; it says what it could not keep.
    p = vmemu_in_gone("explore", ABBA, "--runs", "5")
    assert p.returncode == 1 and "DEADLOCK" in p.stdout and "Traceback" not in p.stderr
    assert "failing traces are not saved" in p.stderr


@pytest.mark.parametrize("stream", ["closed stdout", "full stderr"])
def test_an_unusable_stream_keeps_the_exit_code(tmp_path, stream):
    # A closed stdout was an AttributeError traceback (sys.stdout is None), exit 1; a
    # stderr on a full disk turned a bad input's exit 2 into 1.
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    codes = []
    for args in (("run", ABBA, "--seed", "0", "--json"), ("run", str(empty))):
        with open("/dev/full", "w") as full:
            if stream == "closed stdout":
                p = subprocess.run([sys.executable, "-m", "vmemu", *args], cwd=ROOT,
                                   stderr=subprocess.PIPE, timeout=120,
                                   preexec_fn=lambda: os.close(1))
                assert b"Traceback" not in p.stderr
            else:
                p = subprocess.run([sys.executable, "-m", "vmemu", *args], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=full, timeout=120)
        codes.append(p.returncode)
    expect_ok = vmemu_cli("run", ABBA, "--seed", "0").returncode
    assert codes == [expect_ok, 2]


def test_a_huge_number_says_what_to_do_not_pythons_advice(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("name: big\nlimits: {steps: " + "9" * 5000 + "}\n"
                    "tasks:\n  t: [yield]\n")
    line = _one_line(vmemu_cli("run", str(path)))
    assert ":2:" in line and "5000 digits" in line and "sys.set_int" not in line


def test_measure_with_no_metric_named_is_one_line():
    line = _one_line(vmemu_cli("measure", str(ROOT / "scenarios" / "swapout_clustering.yaml"),
                               "--metrics", ","))
    assert "--metrics" in line and "names no metric" in line


# ------------------------------------------ Python scenarios and the API (adversarial pass)

BAD_STR = '''
class Weird(Exception):
    def __str__(self):
        raise RuntimeError("broken str")

async def t1(ctx):
    await ctx.yield_()
    raise Weird()

tasks = {"t1": t1}
'''


def test_an_exception_whose_str_raises_is_a_bug_verdict_on_every_driver(tmp_path):
    # Formatting the verdict raised: a traceback on direct and asyncio, and on trio the
    # loop was never rescheduled: a hang that Ctrl-C and SIGTERM could not end.
    path = tmp_path / "badstr.py"
    path.write_text(BAD_STR)
    import vmemu
    seen = {(r.verdict, r.message, r.trace_hash)
            for r in (vmemu.run(str(path), driver=d) for d in ("direct", "trio", "asyncio"))}
    assert seen and {(v, m) for v, m, _ in seen} == {
        ("bug", "task t1 raised Weird: <unprintable Weird>")} and len(seen) == 1


@pytest.mark.parametrize("call, what", [
    ("await ctx.sleep(float('nan'))", "sleep of nan ticks"),
    ("await ctx.io(float('nan'))", "io of nan ticks"),
    ("await ctx.event('e').wait(timeout=float('nan'))", "a wait's timeout of nan ticks"),
    ("await ctx.sleep(1.5)", "sleep of 1.5 ticks"),
    ("await ctx.sleep(-1)", "sleep of -1 ticks"),
    ("await ctx.event('e').wait(state='interruptable')",
     "unknown wait state 'interruptable' (did you mean 'interruptible'?)"),
    ("await ctx.point(object())", "point names a fault site with a string"),
], ids=["nan-sleep", "nan-io", "nan-timeout", "float", "negative", "state", "point"])
def test_a_python_tasks_bad_argument_is_a_bug_verdict_not_a_hang(tmp_path, call, what):
    # NaN never equals a timer's deadline: the clock looped for ever at 100 % CPU, in
    # kernel code the soft-lockup watchdog does not watch. A float ran, then saving its
    # trace crashed; a negative sleep was `ok`; a misspelled state a false deadlock.
    path = tmp_path / "bad.py"
    path.write_text(f"events = {{'e': 'waitqueue'}}\n\n\nasync def t1(ctx):\n"
                    f"    await ctx.yield_()\n    {call}\n\ntasks = {{'t1': t1}}\n")
    import vmemu
    for driver in ("direct", "trio"):
        r = vmemu.run(str(path), driver=driver)
        assert r.verdict == "bug" and what in r.message, (driver, r.message)


def test_a_base_exception_at_import_is_one_failing_scenario_of_a_check(tmp_path):
    # A BaseException (not an Exception) raised while a Python scenario imports was an
    # internal traceback that ended `vmemu check` of a whole folder.
    (tmp_path / "a_base.py").write_text("class MyBase(BaseException):\n    pass\n\n"
                                        "raise MyBase('at import')\n")
    (tmp_path / "b.yaml").write_text((CONTRACT / "abba.yaml").read_text())
    p = vmemu_cli("check", str(tmp_path), "--runs", "50")
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert "MyBase: at import" in p.stdout and "b.yaml" in p.stdout


def test_the_api_refuses_what_the_cli_refuses_seeds_and_a_running_loop():
    import trio

    import vmemu
    for seed in (-1, 2**63, 1.5, True):
        with pytest.raises(vmemu.UserError, match="seed must be a whole number"):
            vmemu.run(ABBA, seed=seed, driver="direct")
    # Inside a trio program: the asyncio driver crashed trio (TrioInternalError).
    caught = []

    async def host():
        for driver in ("asyncio", "trio"):
            with pytest.raises(vmemu.UserError, match="await vmemu.arun"):
                vmemu.run(ABBA, driver=driver)
        caught.append(vmemu.run(ABBA, driver="direct").verdict)
        caught.append((await vmemu.arun(ABBA)).verdict)
    trio.run(host)
    assert len(caught) == 2
