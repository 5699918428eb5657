"""`vmemu explore`: the first failure by schedule index whatever --jobs is, --all with one
finding per bug, findings saved as found (minimized) and replayable, --time, Ctrl-C."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vmemu
from conftest import CONTRACT, RARE, ROOT, TWO_BUGS, cli_json, vmemu_cli
from vmemu._explore import explore, signature
from vmemu._explore.coordinator import MIN_BLOCK as BLOCK
from vmemu._explore.ui import ProgressBar, StatusLines, _NoBar
from vmemu._explore.minimize import preemptions
from vmemu._strategies import schedule_seed
from vmemu._trace import Trace

ABBA = str(CONTRACT / "abba.yaml")
ORDERED = str(CONTRACT / "abba_ordered.yaml")
PHILOSOPHERS = str(CONTRACT / "dining_philosophers.yaml")


def _saved(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def _key(x: vmemu.ExploreResult) -> tuple:
    return (x.verdict, x.schedules, x.result.trace_hash,
            [(f.extra["schedule"], signature(f), f.trace_hash) for f in x.findings])


@pytest.mark.parametrize("strategy", ["random", "pct", "portfolio"])
def test_jobs_never_change_the_answer(strategy):
    for path in (ABBA, PHILOSOPHERS):
        one = explore(path, strategy=strategy, runs=300, jobs=1)
        two = explore(path, strategy=strategy, runs=300, jobs=2)
        assert one.findings and _key(one) == _key(two), (path, strategy)


def test_jobs_never_change_a_late_first_finding(write_scenario):
    # Blocks go to the worker process and to the coordinator, which runs blocks itself
    # between collecting results; these first failures fall deep in different blocks,
    # and every schedule below them must have run first.
    path = write_scenario(RARE)
    for seed in (0, 8):
        one = explore(path, strategy="random", seed=seed, runs=1000, jobs=1)
        two = explore(path, strategy="random", seed=seed, runs=1000, jobs=2)
        assert _key(one) == _key(two)
        i = one.result.extra["schedule"]
        assert one.schedules == i + 1 > BLOCK
    every = [explore(path, strategy="random", runs=700, keep_going=True, jobs=j) for j in (1, 2)]
    assert _key(every[0]) == _key(every[1]) and every[0].schedules == 700


def test_jobs_2_and_jobs_1_give_the_same_first_finding_on_the_cli(tmp_path):
    a = cli_json("explore", PHILOSOPHERS, "--jobs", "1", "--findings", str(tmp_path / "a"))
    b = cli_json("explore", PHILOSOPHERS, "--jobs", "2", "--findings", str(tmp_path / "b"))
    for key in ("verdict", "schedules", "trace_hash", "seed", "strategy", "cycle", "steps"):
        assert a[key] == b[key], key
    assert [f["schedule"] for f in a["findings"]] == [f["schedule"] for f in b["findings"]]
    assert [p.name for p in _saved(tmp_path / "a")] == [p.name for p in _saved(tmp_path / "b")]


def test_the_first_failure_is_the_lowest_schedule_index():
    x = explore(ABBA, strategy="random", seed=3, runs=200)
    i = x.result.extra["schedule"]
    assert x.schedules == i + 1

    def verdict(j):
        return vmemu.run(ABBA, seed=schedule_seed(3, j), strategy="random",
                         driver="direct").verdict
    assert all(verdict(j) == "ok" for j in range(i)) and verdict(i) == "deadlock"
    # One printed integer re-runs the schedule that found it.
    assert x.result.extra["found_by"] == (f"vmemu run {ABBA} --seed {schedule_seed(3, i)} "
                                          "--strategy random")


def test_a_finding_is_saved_minimized_and_replays(tmp_path):
    x = explore(PHILOSOPHERS, strategy="random", runs=300, findings_dir=tmp_path)
    r = x.result
    assert [str(p) for p in _saved(tmp_path)] == [r.trace_path]   # the raw one is gone
    saved = Trace.load(r.trace_path)
    assert saved.strategy == "minimized" and saved.trace_hash == r.trace_hash
    raw = vmemu.run(PHILOSOPHERS, seed=schedule_seed(0, r.extra["schedule"]), strategy="random")
    assert raw.verdict == r.verdict and len(raw.trace.tape) == r.extra["minimized_from"]
    assert preemptions(r) <= preemptions(raw)
    again = vmemu.replay(r.trace_path)
    assert (again.verdict, again.trace_hash, again.cycle) == (r.verdict, r.trace_hash, r.cycle)
    assert r.replay_command() == f"vmemu replay {r.trace_path}"


def test_all_keeps_one_finding_per_bug_whatever_jobs_is(write_scenario, tmp_path):
    path = write_scenario(TWO_BUGS)
    one = explore(path, runs=300, keep_going=True, findings_dir=tmp_path / "one")
    two = explore(path, runs=300, keep_going=True, jobs=2, findings_dir=tmp_path / "two")
    assert _key(one) == _key(two)
    assert {f.verdict for f in one.findings} == {"deadlock", "assertion"}
    assert len({signature(f) for f in one.findings}) == len(one.findings)
    assert one.schedules == 300
    indices = [f.extra["schedule"] for f in one.findings]
    assert indices == sorted(indices) and one.result is one.findings[0]
    for folder in (tmp_path / "one", tmp_path / "two"):
        assert len(_saved(folder)) == len(one.findings)
        for p in _saved(folder):
            assert vmemu.replay(str(p)).failed


def test_all_prints_every_finding_with_its_replay_command(write_scenario, tmp_path):
    path = write_scenario(TWO_BUGS)
    p = vmemu_cli("explore", path, "--all", "--runs", "200", "--findings", str(tmp_path))
    assert p.returncode == 1 and p.stderr == ""   # no terminal: no progress bar
    blocks = p.stdout.split("\n\nvmemu: ")
    assert p.stdout.startswith("vmemu: 2 distinct failures in 200 schedules")
    replays = [line for line in p.stdout.splitlines() if line.startswith("replay: ")]
    assert sorted(replays) == sorted(f"replay: vmemu replay {f}" for f in _saved(tmp_path))
    assert len(blocks) == 3 and all(b.rstrip().splitlines()[-1].startswith("replay: ")
                                    for b in blocks[1:])


def test_explore_json_has_the_contract_fields(tmp_path):
    d = cli_json("explore", ABBA, "--findings", str(tmp_path))
    for key in ("verdict", "scenario", "seed", "strategy", "steps", "ticks", "trace_hash",
                "tasks", "cycle", "trace", "schedules"):
        assert key in d, key
    assert d["trace"] == d["findings"][0]["trace"] and Path(d["trace"]).exists()
    assert d["replay"] == f"vmemu replay {d['trace']}"


def test_dfs_says_when_it_explored_everything():
    p = vmemu_cli("explore", ORDERED, "--strategy", "dfs")
    assert p.returncode == 0
    d = cli_json("explore", ORDERED, "--strategy", "dfs")
    assert d["exhausted"] is True and 1 < d["schedules"] < 1000
    assert f"all {d['schedules']} schedules explored" in p.stdout
    # --jobs cannot split a DFS (each schedule comes from the last); it runs here, same answer
    assert cli_json("explore", ORDERED, "--strategy", "dfs", "--jobs", "2")["schedules"] == \
        d["schedules"]


def test_dfs_with_a_budget_of_exactly_the_space_says_it_explored_everything():
    # The search learns that it is done only when asked for one more schedule: a budget
    # that ended exactly at the space's end was reported as "the budget ran out ... some
    # with 4 delays" (there are none) and not exhausted.
    size = explore(CONTRACT / "abba_ordered.yaml", strategy="dfs", store=None).schedules
    for runs, whole in ((size - 1, False), (size, True)):
        x = explore(CONTRACT / "abba_ordered.yaml", strategy="dfs", runs=runs, store=None)
        assert (x.schedules, x.exhausted, x.bound["whole"]) == (runs, whole, whole)
        assert ("the whole space is exhausted" in x.bound["summary"]) == whole


def test_dfs_that_stops_at_a_failure_does_not_say_no_failure():
    x = explore(CONTRACT / "abba.yaml", strategy="dfs", store=None, minimize=False)
    assert x.verdict == "deadlock" and not x.exhausted
    s = x.bound["summary"]
    assert "no failure" not in s and s.startswith("the search stopped at a failure after "
                                                  f"{x.schedules} schedules")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_time_alone_bounds_an_exploration(jobs):
    # No --runs: only the time budget can end this (the scenario never fails).
    d = cli_json("explore", ORDERED, "--strategy", "random", "--time", "0.5", "--jobs", jobs)
    assert d["verdict"] == "ok" and d["schedules"] >= 1


def test_jobs_work_for_python_scenarios_and_fall_back_without_a_file():
    py = str(ROOT / "scenarios" / "python" / "abba.py")
    assert _key(explore(py, runs=100, jobs=2)) == _key(explore(py, runs=100))
    ghost = dataclasses.replace(vmemu.load(ABBA), path="/nonexistent/abba.yaml")
    assert explore(ghost, runs=100, jobs=2).verdict == "deadlock"


def test_progress_bar_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert isinstance(ProgressBar.maybe(enabled=True), ProgressBar)
    assert isinstance(ProgressBar.maybe(enabled=False), _NoBar)      # --json
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert isinstance(ProgressBar.maybe(enabled=True), StatusLines)   # a log: lines
    assert isinstance(ProgressBar.maybe(enabled=False), _NoBar)


def test_a_long_exploration_off_a_terminal_prints_status_lines(monkeypatch, capsys,
                                                                tmp_path):
    # nohup, a CI log: no bar, but a line on stderr every STATUS_EVERY seconds (a CI
    # service would end a job silent for ten minutes). Shorter explorations print none.
    from vmemu._cli import main
    from vmemu._explore import ui
    args = ["explore", str(CONTRACT / "dining_philosophers.yaml"), "--strategy", "random",
            "--all", "--runs", "3000", "--store", str(tmp_path / "c.sqlite"),
            "--findings", str(tmp_path / "f")]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("vmemu: DEADLOCK")
    monkeypatch.setattr(ui, "STATUS_EVERY", 0.0)    # every progress update: a line
    assert main(args) == 1
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) >= 2 and out.startswith("vmemu: DEADLOCK")
    got = [re.fullmatch(r"vmemu: exploring: ([\d,]+) schedules \([\d,]+/s\), ([\d,]+) "
                        r"interleavings, (\d+) found, \d+m\d\ds", line) for line in lines]
    assert all(got), lines
    done = [int(m[1].replace(",", "")) for m in got]
    assert done == sorted(done) and done[-1] == 3000
    assert int(got[-1][3]) >= 1 and int(got[-1][2].replace(",", "")) > 1

    # stderr gone (`2>&1 | head -1` ended): the lines stop, the exploration does not.
    class Gone:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")
    monkeypatch.setattr(sys, "stderr", Gone())
    assert main(args) == 1
    assert capsys.readouterr().out.startswith("vmemu: DEADLOCK")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_cleanly_and_keeps_the_findings(write_scenario, tmp_path, jobs):
    path = write_scenario(TWO_BUGS)
    folder = tmp_path / "found"
    p = subprocess.Popen([sys.executable, "-m", "vmemu", "explore", path, "--all",
                          "--runs", "100000000", "--jobs", jobs, "--findings", str(folder)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        give_up = time.monotonic() + 60
        while not _saved(folder) and time.monotonic() < give_up and p.poll() is None:
            time.sleep(0.05)
        assert _saved(folder), "no finding was saved"
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "interrupted after" in err and "saved: vmemu replay " in err
    named = [s.split()[0] for s in err.split("vmemu replay ")[1:]]
    assert named and all(Path(n.rstrip(";")).exists() for n in named)
    for f in _saved(folder):
        assert vmemu.replay(str(f)).failed
    assert not [f for f in folder.iterdir() if f.name.endswith(".tmp")]


def test_runs_must_be_positive():
    with pytest.raises(ValueError):
        explore(ABBA, runs=0)


# ------------------------------------------------------------------ --strategy hypothesis

def test_explore_hypothesis_runs_hypothesis_and_shrinks_to_one_preemption(tmp_path):
    dining = str(CONTRACT / "dining_philosophers.yaml")
    x = explore(dining, strategy="hypothesis", seed=1, findings_dir=tmp_path)
    assert x.verdict == "deadlock" and x.schedules > 1
    r = x.result
    assert r.strategy == "hypothesis" and preemptions(r) == 1
    assert r.replay_command() == f"vmemu replay {r.trace_path}"
    assert "Hypothesis" in r.extra["found_by"]
    for driver in ("direct", "trio"):
        again = vmemu.replay(r.trace_path, driver=driver)
        assert (again.verdict, again.trace_hash) == ("deadlock", r.trace_hash)


def test_explore_hypothesis_is_the_same_in_every_process(tmp_path):
    outs = [vmemu_cli("explore", str(CONTRACT / "dining_philosophers.yaml"), "--strategy",
                      "hypothesis", "--seed", "2", "--json", "--findings", str(tmp_path),
                      env={"PYTHONHASHSEED": h}) for h in ("0", "99")]
    assert [p.returncode for p in outs] == [1, 1]
    a, b = (json.loads(p.stdout) for p in outs)
    assert a == b and a["schedules"] > 1 and a["trace"]


def test_explore_hypothesis_without_failure_and_its_refusals(tmp_path):
    ordered = str(CONTRACT / "abba_ordered.yaml")
    x = explore(ordered, strategy="hypothesis", runs=40)
    assert x.verdict == "ok" and x.schedules == 40 and not x.findings
    x = explore(ordered, strategy="hypothesis", runs=10**6, time_budget=0.3)
    assert x.verdict == "ok" and 1 < x.schedules < 10**6
    p = vmemu_cli("explore", str(ABBA), "--strategy", "hypothesis", "--all")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == ("vmemu: error: --all: hypothesis stops at its first failure "
                                "and shrinks it; use a strategy that enumerates schedules "
                                "(portfolio, random, pct, dfs) to keep going")


# ------------------------------------------------------------------ dfs: bounds and wording

def _dining5(tmp_path):
    p = tmp_path / "dining5.yaml"
    p.write_text(Path(PHILOSOPHERS).read_text().replace("count: 3", "count: 5")
                 .replace("dining-philosophers-3", "dining-philosophers-5"))
    return str(p)


def test_dfs_finds_the_5_philosopher_deadlock(tmp_path):
    # No --max-bound: the bound deepens 0, 1, 2 ... within --runs (it needs one preemption,
    # after every schedule without one).
    d = cli_json("explore", _dining5(tmp_path), "--strategy", "dfs", "--bound", "preemptions",
                 "--runs", "5000", "--findings", str(tmp_path / "f"), "--store",
                 str(tmp_path / "c.sqlite"))
    assert d["verdict"] == "deadlock" and len(d["cycle"]) == 5
    assert 1 < d["schedules"] < 5000
    assert vmemu.replay(d["trace"]).verdict == "deadlock"


def test_an_exhausted_dfs_bound_is_never_a_plain_ok(tmp_path):
    # The 5-philosopher deadlock needs 4 delays: with at most 2, the bounded space runs
    # out. That is no failure within the bound, not "OK".
    args = ("explore", _dining5(tmp_path), "--strategy", "dfs", "--max-bound", "2",
            "--store", str(tmp_path / "c.sqlite"))
    p = vmemu_cli(*args)
    assert p.returncode == 0
    first, second = p.stdout.splitlines()[:2]
    assert first.startswith("vmemu: NO FAILURE WITHIN THE BOUND in dining-philosophers-5")
    assert "OK" not in p.stdout
    assert second == ("  no failure in all 364 schedules with \u2264 2 delays; "
                      "more delays not explored")
    d = cli_json(*args)
    assert d["schedules"] == 364 and d["complete"] is False and d["exhausted"] is False
    assert d["summary"] == second.strip()
    assert d["bound"] == {"bound": "delays", "max_bound": 2, "complete": 2, "whole": False,
                          "summary": d["summary"]}
    # Stopped by the budget inside a level: it says which bound was covered in full.
    d = cli_json("explore", _dining5(tmp_path), "--strategy", "dfs", "--runs", "50",
                 "--store", str(tmp_path / "c.sqlite"))
    assert d["complete"] is False and d["bound"]["complete"] >= 0
    assert d["summary"].startswith("no failure in 50 schedules: all with \u2264 ")



@pytest.mark.parametrize("strategy", ["random", "portfolio"])
@pytest.mark.parametrize("path", [CONTRACT / "abba_ordered.yaml",
                                  ROOT / "scenarios" / "ports" / "cmpxchg_counter.yaml",
                                  ROOT / "scenarios" / "ext2_bitmap_reclaim_gfp_noio.yaml"],
                         ids=lambda p: p.stem)
def test_an_ok_schedule_leaves_nothing_for_the_cyclic_gc(strategy, path):
    # Schedules that reference cycles keep alive (task <-> frame, strategy <-> its coin
    # stream) once cost a collection every ~30 schedules, a tenth of an exploration's time.
    # What an `ok` schedule allocates must be freed by refcounts alone: the garbage the GC
    # finds after 2,000 schedules is what it finds after 500 (per-exploration objects).
    import gc
    sc = vmemu.load(str(path))

    def garbage(runs: int) -> int:
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            x = explore(sc, runs=runs, strategy=strategy, minimize=False, store=None)
            assert x.verdict == "ok" and x.schedules == runs
            gc.collect()
            # vmemu's own objects only: another thread (a test's leftover) may make some
            return sum(type(o).__module__.startswith("vmemu") for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()

    # (Each block leaves its kernel to the GC, and 2,000 schedules take a few more
    # blocks than 500: a few hundred objects. A cycle per schedule was 6,000 or more.)
    small, large = garbage(500), garbage(2000)
    assert large - small < 1000, (small, large)


def test_jobs_leave_the_hosts_gil_switch_interval_as_it_was():
    # --jobs shortens the interval while the pool's threads feed the workers; a host
    # program (the pytest plugin, a notebook) must get its own back, even after an error.
    old = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.004)
        x = explore(CONTRACT / "abba_ordered.yaml", runs=3000, jobs=2, store=None)
        assert x.verdict == "ok" and sys.getswitchinterval() == pytest.approx(0.004)
        with pytest.raises(vmemu.UserError):
            explore(CONTRACT / "abba_ordered.yaml", runs=3000, jobs=2, store=None,
                    strategy="random", depth=3)
        assert sys.getswitchinterval() == pytest.approx(0.004)
        # Two explorations that overlap (threads of one host; A ends while B runs):
        # the host's interval comes back when the last one ends.
        import threading
        a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

        def wait_for(mine, other):
            def progress(*_):
                mine.set()
                other.wait(30)
            return progress

        def a():
            explore(CONTRACT / "abba_ordered.yaml", runs=3000, jobs=2, store=None,
                    progress=wait_for(a_in, b_in))
            a_out.set()

        ta = threading.Thread(target=a)
        ta.start()
        assert a_in.wait(30)
        tb = threading.Thread(target=lambda: explore(
            CONTRACT / "abba_ordered.yaml", runs=3000, jobs=2, store=None,
            progress=wait_for(b_in, a_out)))
        tb.start()
        ta.join(60)
        tb.join(60)
        assert a_out.is_set() and sys.getswitchinterval() == pytest.approx(0.004)
    finally:
        sys.setswitchinterval(old)
