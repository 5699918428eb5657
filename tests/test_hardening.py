"""Every case of the hardening issue: bad input, special files, sizes and output errors end
with one line and exit code 2 (or a verdict), never a traceback, a hang or a MemoryError.

(Signals are tested with the drivers and ``explore --jobs``; fuzzing is ``test_fuzz.py``.)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

import vmemu
from vmemu._strategies import schedule_seed
from conftest import CONTRACT, ROOT, seed_reaching
from vmemu._cli import main
from vmemu._errors import UserError

pytest_plugins = ["pytester"]

ABBA = str(CONTRACT / "abba.yaml")
ABBA_SEED = seed_reaching(ABBA, "deadlock")
AMPLE = str(ROOT / "scenarios" / "ext2_bitmap_ample_memory.yaml")


def cli(*args: str) -> tuple[int, str, str]:
    """``vmemu ARGS`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def refused(*args: str, needle: str) -> str:
    """Exit code 2, nothing on stdout, one line on stderr containing ``needle``."""
    code, out, err = cli(*args)
    lines = err.strip().split("\n")
    assert code == 2 and out == "" and len(lines) == 1, (code, out, err)
    assert lines[0].startswith("vmemu: error: ") and "Traceback" not in err
    assert needle in lines[0], lines[0]
    return lines[0]


@contextlib.contextmanager
def no_hang(seconds: int = 20):
    """Fail (instead of hanging the suite) if the block blocks."""
    def hung(signum, frame):
        raise AssertionError("blocked: vmemu must never wait on a special file")
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------------- YAML tags
TAGGED = ["!!timestamp x", "!!bool x", '!!int ""', "!!binary aGk=", "!custom x"]


@pytest.mark.parametrize("tag", TAGGED)
def test_a_yaml_tag_in_a_scenario_is_one_line(tmp_path, tag):
    p = tmp_path / "s.yaml"
    p.write_text(f"name: {tag}\ntasks: {{t: [yield]}}\n")
    line = refused("run", str(p), needle="unsupported YAML tag")
    assert line.startswith(f"vmemu: error: {p}:1: ")


@pytest.mark.parametrize("tag", TAGGED)
def test_a_yaml_tag_in_a_fault_plan_is_one_line(tmp_path, tag):
    p = tmp_path / "f.yaml"
    p.write_text(f"name: {tag}\nfaults: [{{at: alloc, do: exhaust}}]\n")
    refused("run", AMPLE, "--faults", str(p), needle=f"{p}:1: ")


def test_dates_and_equals_signs_are_plain_strings(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: 2001-12-14\ndescription: =\ntasks: {t: [yield]}\n")
    sc = vmemu.load(p)
    assert (sc.name, sc.description) == ("2001-12-14", "=")


# ------------------------------------------------------------------------- sizes
BIG_POOL = """\
name: big
limits: {{steps: 2000}}
memory:
  pages: {pages}
  classes:
    shm: {{writeback: wb, needs: [io]}}
    clean: {{}}
routines:
  wb: []
tasks:
  t:
    - fill: {{class: {cls}, pages: {fill}}}
    - alloc: {alloc}
      as: p
    - free: p
"""


def test_a_pool_of_ten_billion_pages_costs_nothing(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(BIG_POOL.format(pages=10**10, cls="clean", fill=9 * 10**9, alloc=10**8))
    tracemalloc.start()
    try:
        r = vmemu.run(p, driver="direct")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.verdict == "ok", r.message
    assert r.extra["memory"]["classes"]["clean"] == 9 * 10**9
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MB for a run on a 10^10-page pool"


def test_a_fill_of_ten_million_dirty_pages_is_charged_to_the_step_budget(tmp_path,
                                                                        monkeypatch):
    """The fill needs reclaim for most of its pages: each writeback is a step, so the
    verdict is the step budget's, whatever the CPU; a soft-lockup threshold far below
    what per-page work would take changes nothing."""
    from vmemu._kernel import lockup
    p = tmp_path / "s.yaml"
    p.write_text(BIG_POOL.format(pages=10**7, cls="shm", fill=9_999_990, alloc=1))
    slow = vmemu.run(p, driver="direct")
    monkeypatch.setattr(lockup, "SOFT_LOCKUP_SECONDS", 0.5)
    fast = vmemu.run(p, driver="trio")
    for r in (slow, fast):
        assert r.verdict == "livelock" and "step budget of 2000 exhausted" in r.message
    assert slow.trace_hash == fast.trace_hash and slow.steps == fast.steps == 2001


def test_a_fill_is_taken_in_one_go_with_the_same_pages_as_page_by_page():
    """The pages a fill takes, and the order reclaim writes them back, are those of the
    old per-page lists: the 1999 report names shm page 0 first."""
    r = vmemu.run(str(ROOT / "scenarios" / "ext2_kswapd_superblock.yaml"), driver="direct",
                  seed=0)
    wb = [e[3] for e in r.trace.events if e[2] == "writeback"]
    assert wb and all(w.endswith(f"page {i}") for i, w in enumerate(wb))


@pytest.mark.parametrize("text, needle", [
    ("memory: {pages: 9223372036854775808}", "pages must be at most 1_000_000_000_000"),
    ("memory: {pages: 10000000000000}", "(the range is 1 to 1_000_000_000_000)"),
    ("limits: {steps: 1000000000000}", "steps must be at most 10_000_000"),
    ("limits: {ticks: 10000000000000000}", "ticks must be at most"),
    ("memory: {pages: 64, watermarks: {min: 1, low: 2, high: 10000000000000}}",
     "watermark high must be at most"),
    ("locks: {m: {kind: mutex, count: 100000000}}", "count must be at most 10000"),
])
def test_sizes_beyond_the_range_are_refused_at_load_stating_it(tmp_path, text, needle):
    p = tmp_path / "s.yaml"
    p.write_text(text + "\ntasks: {t: [yield]}\n")
    refused("run", str(p), needle=needle)


@pytest.mark.parametrize("step, needle", [
    ("{sleep: 10000000000000000}", "at most 1_000_000_000_000_000 of ticks"),
    ("{repeat: 10000000000000000, do: [yield]}", "at most 1_000_000_000_000_000 count"),
])
def test_step_arguments_beyond_the_range_are_refused(tmp_path, step, needle):
    p = tmp_path / "s.yaml"
    p.write_text(f"tasks: {{t: [{step}]}}\n")
    refused("run", str(p), needle=needle)


def test_an_allocation_larger_than_a_huge_pool_is_an_oom_at_once(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(BIG_POOL.format(pages=10**12, cls="clean", fill=1, alloc=10**12 + 1))
    r = vmemu.run(p, driver="direct")
    assert r.verdict == "oom" and "the pool has only 1000000000000 pages" in r.message


# ------------------------------------------------------------------------- special files
def _fifo(tmp_path: Path, name: str) -> str:
    p = tmp_path / name
    os.mkfifo(p)
    return str(p)


@pytest.mark.parametrize("name, args", [
    ("s.yaml", ("run", "{}")), ("s.py", ("run", "{}")), ("t.json", ("replay", "{}")),
    ("f.yaml", ("run", AMPLE, "--faults", "{}")), ("s.yaml", ("check", "{}")),
])
def test_a_fifo_is_refused_without_blocking(tmp_path, name, args):
    fifo = _fifo(tmp_path, name)
    with no_hang():
        refused(*(a.format(fifo) for a in args), needle="is a FIFO (named pipe)")


def test_a_symlink_to_dev_zero_is_refused(tmp_path):
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    with no_hang():
        refused("run", str(link), needle="is a character device, not a scenario file")
        refused("replay", str(link), needle="is a character device, not a trace file")


def test_a_symlink_loop_a_dangling_link_and_a_folder_say_what_they_are(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    dangling = tmp_path / "gone.yaml"
    dangling.symlink_to(tmp_path / "nowhere.yaml")
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    refused("run", str(loop), needle="is a symlink loop")
    refused("run", str(dangling), needle="is a symlink to a missing file")
    refused("run", str(folder), needle="is a directory, not a scenario file")
    refused("run", str(tmp_path / "missing.yaml"), needle="no such scenario file")
    refused("replay", str(loop), needle="is a symlink loop")


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    p = tmp_path / "huge.yaml"
    with open(p, "wb") as f:
        f.truncate(3 << 20)             # sparse: costs nothing on disk
    refused("run", str(p), needle="is 3 MiB, larger than the 1 MiB a scenario file may be")


def test_a_fifo_in_a_folder_is_passed_over_by_check_and_pytest_alike(tmp_path, pytester):
    (tmp_path / "ok.yaml").write_text(Path(ABBA).read_text())
    _fifo(tmp_path, "pipe.yaml")
    with no_hang():
        code, out, _ = cli("check", str(tmp_path), "--runs", "5")
        assert code == 0 and out.splitlines() == [
            f"ok   {tmp_path}/ok.yaml: expect deadlock, got deadlock (1 schedule)",
            "1 of 1 scenario as expected"]
        result = pytester.runpytest("--vmemu", "--vmemu-runs", "5", str(tmp_path))
    result.assert_outcomes(passed=1)


# ------------------------------------------------------------------------- traces
def _trace(tmp_path: Path) -> tuple[Path, dict]:
    r = vmemu.run(ABBA, seed=ABBA_SEED, driver="direct")
    p = Path(r.trace.save(tmp_path / "t.json"))
    return p, json.loads(p.read_text())


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d.update(faults=2), "faults: expected `str | null`, got `int`"),
    (lambda d: d.update(params=5), "params: expected `object`, got `int`"),
    (lambda d: d.pop("seed"), "missing required field `seed`"),
    (lambda d: d.update(scenario_abspath=2), "scenario_abspath: expected `str`"),
    (lambda d: d.update(events=[[0]]), "events: expected `object`, got `array`"),
    (lambda d: d.update(version=1, tape=[0], events=[[0]]),
     "trace version 1 was written by an older vmemu"),
    (lambda d: d.update(tape="z" * 3000), "damaged decision tape: a number is too large"),
    (lambda d: d.update(verdict="fine"), "verdict: invalid enum value 'fine'"),
    (lambda d: d.update(steps=-1), "steps: expected `int` >= 0"),
    (lambda d: d.update(version=[]), "trace version [] is not supported"),
    (lambda d: d.update(extra=1), "unknown field `extra`"),
])
def test_a_trace_is_checked_by_its_schema_one_line_each(tmp_path, edit, needle):
    p, d = _trace(tmp_path)
    edit(d)
    p.write_text(json.dumps(d))
    line = refused("replay", str(p), needle=needle)
    assert str(p) in line


def test_decisions_left_over_after_the_run_are_refused(tmp_path):
    from vmemu._trace import decode_ints, encode_ints
    p, d = _trace(tmp_path)
    d["tape"] = encode_ints(decode_ints(d["tape"]) + [0, 1, 0])
    p.write_text(json.dumps(d))
    refused("replay", str(p), needle="replay diverged: the run ended after")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_trace_files_get_the_users_umask(tmp_path, umask, mode):
    r = vmemu.run(ABBA, seed=ABBA_SEED, driver="direct")
    old = os.umask(umask)
    try:
        path = r.trace.save(tmp_path / "t.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


# ------------------------------------------------------------------------- output errors
def test_json_to_a_full_disk_is_one_line_exit_2():
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "vmemu", "run", ABBA, "--json"],
                           stdout=full, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                           timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip().split("\n") == [
        "vmemu: error: cannot write the output to standard output (No space left on "
        "device)"]


@pytest.mark.parametrize("seed, code", [(ABBA_SEED, 1), (None, 0)])
def test_a_reader_that_leaves_early_does_not_change_the_exit_code(seed, code):
    args = ["run", ABBA] + (["--seed", str(seed)] if seed is not None else
                            ["--strategy", "random", "--seed", "0"])
    if seed is None:
        args[1] = str(CONTRACT / "abba_ordered.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "vmemu", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()                    # `| head -0`: gone before the report is written
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code and err == b""


@pytest.mark.parametrize("args", [("run", ABBA, "--trace", ""), ("replay", ""),
                                  ("run", ABBA, "--faults", ""),
                                  ("explore", ABBA, "--findings", "")])
def test_an_empty_path_is_refused(args):
    refused(*args, needle="expected a file or folder name, got ''")


@pytest.mark.parametrize("args, needle", [
    (("--strategy", "pct", "--depth", "1000000000"), "--depth: pct needs a whole number from 1"),
    (("--strategy", "pct", "--steps-hint", "1" + "0" * 21), "--steps-hint: pct needs a whole"),
    (("--strategy", "dfs", "--prefix", "99999999999999999999999:1"), "bad dfs prefix item"),
    (("--seed", "1" + "0" * 30), "expected a seed from 0 to"),
])
def test_strategy_options_beyond_their_range_are_one_line(args, needle):
    refused("run", ABBA, *args, needle=needle)


def test_explore_jobs_beyond_the_range_is_one_line():
    refused("explore", ABBA, "--jobs", "100000", needle="expected at most 256 worker")


# ------------------------------------------------------------------------- fault plans
@pytest.mark.parametrize("where, needle", [
    ('{task: "["}', "bad pattern '[': the '[' at position 1 is never closed"),
    ('{task: "ext2_*["}', "is never closed"),
])
def test_a_bad_glob_is_refused_at_load(tmp_path, where, needle):
    p = tmp_path / "f.yaml"
    p.write_text(f"faults:\n  - at: alloc\n    where: {where}\n    do: exhaust\n")
    line = refused("run", AMPLE, "--faults", str(p), needle=needle)
    assert f"{p}:3: faults[0].where.task: " in line


@pytest.mark.parametrize("rule, needle", [
    ("{at: alloc, where: {task: 'nobody*'}, do: exhaust}", "pattern 'nobody*' matches no task"),
    ("{at: alloc, where: {within: 'wb_*'}, do: exhaust}", "pattern 'wb_*' matches no routine"),
    ("{at: lock, where: {name: 'x?'}, do: preempt}", "pattern 'x?' matches no lock"),
    ("{at: point, where: {task: ext2_new_block}, do: preempt}",
     "this rule can never fire: scenario"),
])
def test_a_rule_whose_filters_match_nothing_is_one_line(tmp_path, rule, needle):
    p = tmp_path / "f.yaml"
    p.write_text(f"faults:\n  - {rule}\n")
    refused("run", AMPLE, "--faults", str(p), needle=needle)


def test_a_rule_without_filters_fits_any_scenario(tmp_path):
    p = tmp_path / "f.yaml"
    p.write_text("faults:\n  - {at: alloc, do: exhaust}\n  - {at: io, do: preempt}\n")
    assert vmemu.run(ABBA, faults=str(p), seed=ABBA_SEED).verdict == "deadlock"


# ------------------------------------------------------------------------- commands
def test_version_and_help_texts():
    p = subprocess.run([sys.executable, "-m", "vmemu", "--version"], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == f"vmemu {vmemu.__version__}"
    from vmemu._cli import build_parser
    from vmemu._strategies import strategy_names
    sub = build_parser()._subparsers._group_actions[0].choices
    for command in ("run", "explore"):
        text = " ".join(sub[command].format_help().split())
        names = [n for n in strategy_names() if n != "portfolio" or command == "explore"]
        assert all(n in text for n in names), (command, names)
    check = " ".join(sub["check"].format_help().split())
    assert "default direct" in check and "first seed of each scenario's exploration" in check


# ------------------------------------------------------------------------- check / pytest
@pytest.fixture
def mixed_folder(tmp_path):
    top = tmp_path / "suite"
    (top / "sub").mkdir(parents=True)
    (top / "sub" / "abba.yaml").write_text(Path(ABBA).read_text())
    (top / "typo.yaml").write_text((CONTRACT / "bad" / "typo_lock.yaml").read_text())
    (top / "plan.yaml").write_text("faults: [{at: alloc, do: exhaust}]\n")
    (top / "broken.yaml").write_text("tasks: {t: [lokc: A]}\n")
    (top / "ordered.yml").write_text((CONTRACT / "abba_ordered.yaml").read_text())
    return top


def test_check_and_pytest_treat_a_folder_the_same_way(mixed_folder, pytester):
    code, out, err = cli("check", str(mixed_folder), "--runs", "20")
    rows = {ln.split(":")[0].split()[-1]: ln.split()[0] for ln in out.splitlines()[:-1]}
    top = str(mixed_folder)
    assert rows == {f"{top}/broken.yaml": "FAIL", f"{top}/ordered.yml": "ok",
                    f"{top}/sub/abba.yaml": "ok", f"{top}/typo.yaml": "ok"}, out
    assert code == 1 and err == "" and out.splitlines()[-1] == "3 of 4 scenarios as expected"
    assert "does not load: " in out and "expect error 'superblok', got it" in out
    result = pytester.runpytest("--vmemu", "--vmemu-runs", "20", str(mixed_folder), "-v")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*broken.yaml::broken FAILED*"])


def test_check_of_a_named_bad_file_is_still_one_line_exit_2():
    refused("check", str(CONTRACT / "bad" / "typo_lock.yaml"), needle="superblok")


# ------------------------------------------------------------------------- reports, API
def test_reports_say_one_schedule_and_head_an_ok_exploration_by_itself(tmp_path):
    code, out, _ = cli("explore", str(CONTRACT / "abba_ordered.yaml"), "--runs", "1",
                       "--strategy", "random")
    assert code == 0
    assert out.splitlines()[0].endswith("[1 schedule explored, none failed]")
    first = schedule_seed(0, 0)      # schedule 0 of exploration seed 0
    assert out.splitlines()[1].startswith(f"  last schedule: strategy random, seed {first}, ")
    p = tmp_path / "s.yaml"
    p.write_text("tasks: {t: []}\n")
    assert "[strategy random, seed 0, 1 step, tick 0]" in vmemu.run(p).report()


def test_a_report_names_the_failed_task_and_a_queued_rwsem_writer(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("locks: {sem: rwsem}\ntasks:\n  r: [{read_lock: sem}, {sleep: 5},"
                 " {read_lock: sem}]\n  w: [{sleep: 1}, {lock: sem}]\n")
    text = vmemu.run(p).report()
    assert "r waits for rwsem sem, queued behind writer w" in text
    bug = vmemu.run(str(CONTRACT / "sleep_under_spinlock.yaml"))
    assert bug.verdict == "bug"
    state = {t["name"]: t["state"] for t in bug.to_json()["tasks"]}
    assert state[bug.culprit] == "failed" and f"    {bug.culprit}: failed" in bug.report()


def test_the_memory_line_has_no_stray_separator(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("memory: {pages: 8, watermarks: {min: 1, low: 2, high: 3}}\n"
                 "tasks: {t: [{alloc: 1, as: p}, {free: p}, {assert: '0'}]}\n")
    line = next(ln for ln in vmemu.run(p).report().splitlines() if "memory:" in ln)
    assert line == "  memory: 8 of 8 pages free (watermarks min 1 low 2 high 3)"


def test_the_table_wraps_long_cells_instead_of_cutting_them(tmp_path):
    r = vmemu.run(str(ROOT / "scenarios" / "ext2_bitmap_reclaim.yaml"))
    text = r.report()
    assert "..." not in text.split("interleaving:")[1]
    assert "writeback shm by writepage_shm:" in text and "page 0 :21" in text


def test_no_colour_for_a_dumb_terminal(monkeypatch):
    from vmemu._report import colour_ok

    class Tty(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert colour_ok(Tty())
    monkeypatch.setenv("TERM", "dumb")
    assert not colour_ok(Tty())
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_ok(Tty()) and not colour_ok(io.StringIO())


def test_the_progress_count_includes_every_announced_finding():
    from vmemu._explore.ui import ProgressBar
    bar = ProgressBar()
    r = vmemu.run(ABBA, seed=ABBA_SEED, driver="direct")
    with contextlib.redirect_stderr(io.StringIO()):
        bar.found(r)
        bar.shown = -1.0
        bar.update(5, 0)                      # the workers' count lags behind
    assert bar.progress.tasks[0].fields["findings"] == 1


def test_repr_of_a_result_is_one_short_line_and_api_errors_name_no_option():
    r = vmemu.run(ABBA, seed=ABBA_SEED, driver="direct")
    assert repr(r).startswith("<Result deadlock in abba (") and len(repr(r)) < 200
    assert len(repr(r.trace)) < 200
    with pytest.raises(UserError) as e:
        vmemu.run(ABBA, faults="nope.yaml")
    assert str(e.value) == "nope.yaml: no such fault plan file"
