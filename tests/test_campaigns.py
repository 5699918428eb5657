"""Campaigns: the SQLite store, --resume, coverage, `vmemu campaigns`, workers that die,
signals with --jobs, and --cluster on Dask."""

from __future__ import annotations

import json
import re
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vmemu
from conftest import CONTRACT, RARE, ROOT, TWO_BUGS, cli_json, vmemu_cli
from vmemu._explore import explore, signature
from vmemu._explore.store import Store

ORDERED = str(CONTRACT / "abba_ordered.yaml")
DINING = str(CONTRACT / "dining_philosophers.yaml")


def _ranges(store: Path) -> list[tuple[int, int]]:
    db = sqlite3.connect(store)
    try:
        return [tuple(r) for r in db.execute("SELECT start, stop FROM ranges ORDER BY start")]
    finally:
        db.close()


def _disjoint_cover(ranges: list[tuple[int, int]]) -> int:
    """The end of ``ranges`` if they tile [0, end) exactly once; else fail."""
    end = 0
    for a, b in sorted(ranges):
        assert a == end, f"gap or overlap at {a} (covered up to {end}): {ranges}"
        end = b
    return end


def test_resume_never_repeats_an_index_and_runs_what_one_long_exploration_would(tmp_path):
    store = tmp_path / "c.sqlite"
    first = explore(ORDERED, strategy="pct", runs=300, store=store)
    assert first.first_index == 0 and first.schedules == 300 and first.campaign == 1
    more = [explore(ORDERED, runs=n, store=store, resume=True) for n in (200, 100)]
    assert [m.first_index for m in more] == [300, 500]
    assert [m.schedules for m in more] == [200, 100]
    assert {m.campaign for m in more} == {1}
    assert _disjoint_cover(_ranges(store)) == 600
    # Together they ran exactly the schedules of one exploration of 600: the same
    # interleavings, and PCT's hint (from the stored runs) picked the same last schedule.
    whole = explore(ORDERED, strategy="pct", runs=600)
    assert more[-1].interleavings == whole.interleavings
    assert more[-1].result.trace_hash == whole.result.trace_hash
    # The CLI says where it went on.
    p = vmemu_cli("explore", ORDERED, "--resume", "--runs", "50", "--store", str(store))
    assert p.returncode == 0 and "  campaign 1 resumed at schedule 600" in p.stdout
    assert f"distinct interleavings: {whole.interleavings} (in the whole campaign)" in p.stdout


def test_resume_goes_on_to_the_next_new_bug(tmp_path, write_scenario):
    path = write_scenario(TWO_BUGS)
    store, found = tmp_path / "c.sqlite", tmp_path / "f"
    a = explore(path, strategy="random", runs=500, store=store, findings_dir=found)
    b = explore(path, runs=500, store=store, findings_dir=found, resume=True)
    assert a.findings and b.findings
    assert signature(b.result) != signature(a.result)       # the known bug is not news
    assert b.result.extra["schedule"] > a.result.extra["schedule"]
    assert [k["verdict"] for k in b.known] == [a.verdict]
    rows = json.loads(vmemu_cli("campaigns", "--json", "--store", str(store)).stdout)
    [c] = rows["campaigns"]
    assert c["failures"] == 2 and c["status"] == "done" and c["strategy"] == "random"
    assert sorted(f["verdict"] for f in c["findings"]) == sorted([a.verdict, b.verdict])
    assert all(Path(f["trace"]).exists() for f in c["findings"])
    p = vmemu_cli("explore", path, "--resume", "--strategy", "pct", "--store", str(store))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith(
        f"vmemu: error: --resume: campaign 1 of {path} ran with --strategy random --seed 0, "
        "not these options;")
    # dfs builds each schedule from the run before it: nothing to go on from.
    explore(path, strategy="dfs", runs=5, store=store)
    p = vmemu_cli("explore", path, "--resume", "--strategy", "dfs", "--store", str(store))
    assert p.returncode == 2 and p.stderr.strip() == (
        "vmemu: error: --resume: a dfs search cannot be resumed; run it again with a larger "
        "--runs or --time")


ABBA_SAID_FINE = """\
name: abba-said-fine
locks: {A: mutex, B: mutex}
tasks:
  t1: [{lock: A}, {lock: B}, {unlock: B}, {unlock: A}]
  t2: [{lock: B}, {lock: A}, {unlock: A}, {unlock: B}]
"""


def _failing(path: str, seed: int, indices: range) -> list[int]:
    """The schedules of a `random` exploration seeded ``seed`` that fail, each run alone
    (schedule i runs as seed schedule_seed(seed, i)): the oracle for hit counts."""
    from vmemu._strategies import schedule_seed
    sc = vmemu.load(path)
    return [i for i in indices
            if vmemu.run(sc, seed=schedule_seed(seed, i), strategy="random",
                         driver="direct").failed]


def test_a_known_bug_hit_lower_down_by_a_resume_becomes_the_campaigns_record(
        tmp_path, write_scenario):
    # An --all campaign interrupted while a worker's higher block, which hit the bug,
    # was recorded before the lower block that hits it first: the store had the bug at
    # the higher schedule. The resume runs the lower block, and the bug there was
    # "known", so the campaign kept the higher schedule for good (an exploratory review
    # saw 6111 where one uninterrupted campaign keeps 4). That state, made by hand:
    path = write_scenario(ABBA_SAID_FINE)
    store, found = tmp_path / "c.sqlite", tmp_path / "f"
    a = explore(path, strategy="random", runs=300, keep_going=True, store=store,
                findings_dir=found)
    [f] = a.findings
    first, want = f.extra["schedule"], f.trace_hash
    db = sqlite3.connect(store)
    with db:
        db.execute("UPDATE findings SET schedule = ?", (first + 200,))
        db.execute("DELETE FROM ranges")
        db.execute("INSERT INTO ranges (campaign, start, stop, longest) "
                   "SELECT id, ?, 300, 13 FROM campaigns", (first + 1,))
    db.close()
    b = explore(path, runs=first + 1, store=store, findings_dir=found, resume=True)
    assert b.first_index == 0 and not b.findings and b.known[0]["again_at"] == first
    db = sqlite3.connect(store)
    [(schedule, trace, got)] = db.execute("SELECT schedule, trace, trace_hash FROM findings")
    db.close()
    # As one uninterrupted campaign has it: that schedule, minimized, saved, replaying.
    assert (schedule, got) == (first, want)
    assert vmemu.replay(trace).trace_hash == want


def test_a_resumed_campaign_still_fails_on_the_bugs_it_knew(tmp_path, write_scenario):
    # An overnight campaign resumed in the morning: the deadlock it found is not news, so
    # it goes on looking past it, but a bug that is still there is not an OK either. The
    # verdict is the known bug's, the exit code 1, and every schedule that hit it counts.
    path = write_scenario(ABBA_SAID_FINE)
    store, found = tmp_path / "c.sqlite", tmp_path / "f"
    a = explore(path, strategy="random", runs=100, store=store, findings_dir=found)
    assert a.findings and a.failed
    b = explore(path, runs=1500, store=store, findings_dir=found, resume=True)
    assert not b.findings and b.failed and b.verdict == "deadlock"
    [k] = b.known
    fails = _failing(path, 0, range(b.first_index, b.first_index + 1500))
    assert k["hits_now"] == len(fails) > 100 and k["again_at"] == fails[0]
    # The report is the known bug's saved (minimized) trace, replayed.
    assert b.result.extra["known"] and b.result.trace_path == k["trace"]
    assert b.result.extra["schedule"] == fails[0]
    # Counted the same whoever ran the blocks: a second store, two worker processes.
    store2 = tmp_path / "c2.sqlite"
    explore(path, strategy="random", runs=100, store=store2, findings_dir=found)
    b2 = explore(path, runs=1500, store=store2, findings_dir=found, resume=True, jobs=2)
    assert [(k2["hits_now"], k2["again_at"]) for k2 in b2.known] == [(len(fails), fails[0])]
    # The store adds them up: the first hit, then this run's.
    rows = json.loads(vmemu_cli("campaigns", "--json", "--store", str(store)).stdout)
    assert [f["hits"] for f in rows["campaigns"][0]["findings"]] == [1 + len(fails)]
    d = cli_json("explore", path, "--resume", "--runs", "100", "--store", str(store2),
                 "--findings", str(found))
    assert d["failed"] and d["findings"] == [] and d["verdict"] == "deadlock"
    assert d["known"][0]["hits_now"] == len(_failing(path, 0, range(d["first_schedule"],
                                                                    d["first_schedule"] + 100)))
    # The command line: headed by the bug, exit 1, ending with the command that replays it.
    p = vmemu_cli("explore", path, "--resume", "--runs", "300", "--store", str(store),
                  "--findings", str(found))
    more = _failing(path, 0, range(b.first_index + 1500, b.first_index + 1800))
    lines = p.stdout.splitlines()
    assert p.returncode == 1, p.stderr
    assert lines[0] == (f"vmemu: DEADLOCK in abba-said-fine ({path}) [300 schedules explored, "
                        f"{len(more)} failed, every one with a bug the campaign knew]")
    assert f"hit again by {len(more)} schedules (first {more[0]})" in p.stdout
    assert lines[-1] == f"replay: vmemu replay {k['trace']}"
    # Its saved trace gone, and no folder to save one in: the report is the schedule
    # that hit it, replayed by its seed.
    os.unlink(k["trace"])
    c = explore(path, runs=200, store=store, resume=True)
    assert c.failed and c.result.trace_path is None and c.result.extra["known"]
    assert c.result.replay_command().startswith(f"vmemu run {path} --seed ")
    # With one (or the file corrupt), the schedule that hit it is minimized and saved
    # in its place: the report, the store and `vmemu campaigns` name a file that replays.
    for spoil in (None, "{not json"):
        if spoil is not None:
            Path(c.result.trace_path).write_text(spoil)
        c = explore(path, runs=200, store=store, findings_dir=found, resume=True)
        new = c.result.trace_path
        assert c.failed and c.result.extra["known"] and new and os.path.exists(new)
        assert vmemu.replay(new).verdict == "deadlock"
        [f] = Store(str(store)).campaigns()[0]["findings"]
        assert f["trace"] == new and c.known[0]["trace"] == new
        assert f"vmemu replay {new}" in vmemu_cli("campaigns", "--store", str(store)).stdout


@pytest.mark.parametrize("jobs", [1, 2])
def test_all_counts_every_schedule_that_hit_each_bug(tmp_path, write_scenario, jobs):
    path = write_scenario(TWO_BUGS)
    store = tmp_path / "c.sqlite"
    x = explore(path, strategy="random", runs=3000, keep_going=True, store=store,
                findings_dir=tmp_path / "f", jobs=jobs)
    assert len(x.findings) == 2
    sc = vmemu.load(path)
    from vmemu._strategies import schedule_seed
    want: dict[str, int] = {}
    for i in range(3000):
        r = vmemu.run(sc, seed=schedule_seed(0, i), strategy="random", driver="direct")
        if r.failed:
            want[r.verdict] = want.get(r.verdict, 0) + 1
    rows = json.loads(vmemu_cli("campaigns", "--json", "--store", str(store)).stdout)
    assert {f["verdict"]: f["hits"] for f in rows["campaigns"][0]["findings"]} == want


def test_an_all_campaign_killed_overnight_keeps_its_hit_counts(tmp_path, write_scenario):
    # `--all` for hours, then the machine reboots (SIGKILL: no chance to tidy up). The
    # store holds every block recorded before the kill; the hits of those very schedules
    # went with them (one transaction), so each bug's count is exact, not the 1 its
    # finding started with.
    path = write_scenario(TWO_BUGS)
    store = tmp_path / "c.sqlite"
    p = _start([path, "--all", "--strategy", "random", "--runs", "10000000", "--store",
                str(store), "--findings", str(tmp_path / "f")])
    try:
        give_up = time.monotonic() + 60
        while True:
            assert time.monotonic() < give_up and p.poll() is None, p.stderr.read()
            time.sleep(0.05)
            try:
                if sum(b - a for a, b in _ranges(store)) >= 3000:
                    break
            except sqlite3.Error:
                pass
        p.kill()
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    [c] = Store(str(store)).campaigns()
    assert c["status"] == "killed"
    sc = vmemu.load(path)
    from vmemu._strategies import schedule_seed
    want: dict[str, int] = {}
    for a, b in _ranges(store):
        for i in range(a, b):
            r = vmemu.run(sc, seed=schedule_seed(0, i), strategy="random", driver="direct")
            if r.failed:
                want[r.verdict] = want.get(r.verdict, 0) + 1
    assert {f["verdict"]: f["hits"] for f in c["findings"]} == want
    assert min(want.values()) > 1


def test_a_bug_found_lower_down_later_is_not_a_second_hit(tmp_path):
    # With --all and workers, a block with a higher index may report a bug before the
    # block holding its lowest index: the finding is recorded again (lower schedule),
    # but it was hit twice, not three or four times (recording it counts no hit: the
    # hits go with the ranges that ran).
    from vmemu._explore.base import Spec
    from vmemu._explore.findings import Findings
    from vmemu._strategies import schedule_seed
    sc = vmemu.load(str(CONTRACT / "abba.yaml"))
    (i1, r1), (i2, r2) = [
        (i, r) for i in range(200)
        if (r := vmemu.run(sc, seed=schedule_seed(0, i), strategy="random",
                           driver="direct")).failed][:2]
    assert signature(r1) == signature(r2)
    db = Store(str(tmp_path / "c.sqlite"))
    cid = db.create(scenario=sc, faults=None, strategy="random", params={}, seed=0,
                    driver="direct")
    spec = Spec(sc.path, sc.content_hash, b"", None, None, None, "random", 0,
                keep_going=True)
    found = Findings(spec, sc, None, None, False, None, db, cid, [])
    found.add(i2, signature(r2), r2.trace)
    found.add(i1, signature(r1), r1.trace)
    found.finish()
    db.record(cid, ranges=[(0, 200, 0)], cover=[], schedules=200, seconds=1.0,
              new_cover_at=None, hits={signature(r1): 2},
              findings=found.store_rows([(0, 200, 0)]))
    [f] = db.findings(cid)
    assert (f["schedule"], f["hits"]) == (i1, 2)


def test_campaigns_lists_them_as_a_table(tmp_path):
    store = tmp_path / "c.sqlite"
    p = vmemu_cli("campaigns", "--store", str(store))
    assert p.returncode == 2 and "no campaign store here yet" in p.stderr
    cli_json("explore", DINING, "--store", str(store), "--findings", str(tmp_path / "f"))
    cli_json("explore", ORDERED, "--runs", "40", "--store", str(store))
    p = vmemu_cli("campaigns", "--store", str(store))
    head, one, two, finding = p.stdout.splitlines()
    assert head.split() == ["id", "scenario", "strategy", "seed", "status", "schedules",
                            "per", "s", "interleavings", "new", "until", "failures",
                            "updated"]
    assert one.split()[:5] == ["1", "dining-philosophers-3", "portfolio", "0", "done"]
    assert two.split()[:6] == ["2", "abba-ordered", "portfolio", "0", "done", "40"]
    assert re.fullmatch(r"  campaign 1: deadlock at schedule \d+, hit by 1 schedule: "
                        r"vmemu replay \S+\.json", finding)


def test_coverage_counts_distinct_interleavings_and_saturates():
    # abba_ordered has a handful of interleavings however many schedules run.
    small = explore(ORDERED, strategy="random", runs=50)
    big = explore(ORDERED, strategy="random", runs=2000)
    assert 1 < small.interleavings <= big.interleavings < 20
    d = cli_json("explore", ORDERED, "--strategy", "dfs")
    # dfs ran every schedule there is: no interleaving was missed by random's 2,000.
    assert d["exhausted"] and d["interleavings"] == big.interleavings


def test_several_explorations_write_one_store_at_once(tmp_path):
    store = tmp_path / "c.sqlite"
    cmd = [sys.executable, "-m", "vmemu", "explore", "--store", str(store), "--strategy",
           "random", "--time", "0.3"]
    procs = [subprocess.Popen(cmd + [path], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for path in (ORDERED, ORDERED, str(ROOT / "scenarios" / "python" / "abba.py"))]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 1], outs
    rows = Store(store).campaigns()
    assert [c["status"] for c in rows] == ["done"] * 3
    for c in rows:
        db = sqlite3.connect(store)
        got = [tuple(r) for r in db.execute(
            "SELECT start, stop FROM ranges WHERE campaign = ? ORDER BY start", (c["id"],))]
        db.close()
        assert _disjoint_cover(got) >= c["schedules"] > 0


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, session,
    ...); the name may hold spaces and parentheses (Dask renames its workers)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _left_behind(session: int) -> list[int]:
    """The processes of ``session``: the explorer started by :func:`_start` leads one,
    and every descendant stays in it, whoever its parent becomes and whatever it calls
    itself (a process title set with setproctitle overwrites the environment that
    /proc shows, so an environment mark would miss Dask's workers)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int(_stat(d.name)[3]) == session:
                    pids.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def _gone(session: int, within: float = 10.0) -> list[int]:
    give_up = time.monotonic() + within
    while (left := _left_behind(session)) and time.monotonic() < give_up:
        time.sleep(0.05)
    return left


def _start(args: list[str]) -> subprocess.Popen:
    """``vmemu explore ARGS`` as the leader of a new session (its id is the pid)."""
    return subprocess.Popen([sys.executable, "-m", "vmemu", "explore", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_workers(n: int, p: subprocess.Popen) -> None:
    give_up = time.monotonic() + 60
    while len(_left_behind(p.pid)) < n and time.monotonic() < give_up and p.poll() is None:
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_explore_jobs_2_stops_it_and_leaves_no_process(tmp_path, sig):
    where = "--jobs=2"
    p = _start([ORDERED, where, "--time", "120", "--store", str(tmp_path / "c.db")])
    try:
        # SIGINT: early, the moment the worker process exists (it was ignored while the
        # workers started, and the run went on for minutes); SIGTERM once all are up.
        _wait_for_workers(2, p)
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 128 + sig, err
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("vmemu: interrupted" if sig == signal.SIGINT else "vmemu: terminated")
    assert _gone(p.pid) == []


def test_killing_the_explorer_leaves_the_store_consistent_and_resume_fills_the_holes(
        tmp_path):
    store = tmp_path / "c.sqlite"
    p = _start([ORDERED, "--jobs", "2", "--time", "120", "--store", str(store)])
    try:
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up and p.poll() is None:
            time.sleep(0.1)
            try:
                if len(_ranges(store)) >= 2:
                    break
            except sqlite3.Error:
                pass
        p.kill()                                   # SIGKILL: no chance to tidy up
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert _gone(p.pid) == []                       # the workers died with it
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    [c] = Store(store).campaigns()
    assert c["status"] == "killed" and c["schedules"] > 0
    before = sorted(_ranges(store))
    x = explore(ORDERED, runs=5000, store=store, resume=True)
    after = _ranges(store)
    end = _disjoint_cover(after)              # holes filled, nothing run twice
    assert end == before[-1][1] + 5000 - sum(b - a for a, b in _gaps(before))
    assert x.first_index == (_gaps(before)[0][0] if _gaps(before) else before[-1][1])


def _gaps(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, end = [], 0
    for a, b in sorted(ranges):
        if a > end:
            out.append((end, a))
        end = max(end, b)
    return out


def test_a_campaign_survives_sigkill_of_a_worker(write_scenario, tmp_path):
    path = write_scenario(TWO_BUGS)
    killed = []

    def progress(done, found, cover):
        if not killed and done > 600:
            workers = multiprocessing.active_children()
            if workers:
                os.kill(workers[0].pid, signal.SIGKILL)
                killed.append(workers[0].pid)

    store = tmp_path / "c.sqlite"
    two = explore(path, runs=3000, keep_going=True, jobs=2, progress=progress, store=store,
                  findings_dir=tmp_path / "two")
    one = explore(path, runs=3000, keep_going=True, findings_dir=tmp_path / "one")
    assert killed
    key = [(f.extra["schedule"], signature(f), f.trace_hash) for f in two.findings]
    assert key == [(f.extra["schedule"], signature(f), f.trace_hash) for f in one.findings]
    assert two.schedules == one.schedules == 3000 and two.interleavings == one.interleavings
    assert _disjoint_cover(_ranges(store)) == 3000
    [c] = Store(store).campaigns()
    assert len(c["findings"]) == len(one.findings) == 2
    assert sorted(p.name for p in (tmp_path / "two").glob("*.json")) == \
        sorted(p.name for p in (tmp_path / "one").glob("*.json"))


def test_cluster_local_2_finds_what_jobs_1_and_2_find_and_leaves_nothing_on_sigterm(
        tmp_path):
    # One cluster start for all of it: --all keeps the lowest index of each bug, which is
    # the first failure; once every index below it ran, SIGTERM ends the exploration.
    pytest.importorskip("distributed")
    rare = tmp_path / "rare.yaml"
    rare.write_text(RARE)
    want = set()
    for jobs in (1, 2):
        x = explore(str(rare), strategy="random", seed=16, runs=3000, jobs=jobs)
        want.add((x.result.extra["schedule"], x.result.trace_hash))
    [(first, trace_hash)] = want
    assert first > 400                    # deep: many blocks ran before it
    store = tmp_path / "c.sqlite"
    p = _start([str(rare), "--cluster", "local:2", "--all", "--strategy", "random", "--seed",
                "16", "--runs", "100000000", "--store", str(store), "--findings",
                str(tmp_path / "f")])
    try:
        give_up = time.monotonic() + 120
        while time.monotonic() < give_up and p.poll() is None:
            time.sleep(0.1)
            try:
                done = _ranges(store)
                # The coordinator runs blocks itself while the cluster starts: wait until
                # the Dask workers have run some too (their CPU time says so).
                if done and _contiguous(done) > first and Store(store).findings(1) \
                        and _busiest_grandchild(p.pid) > 0.3:
                    break
            except sqlite3.Error:
                pass
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143, err
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("vmemu: terminated after ") and "1 finding saved" in err
    [f] = Store(store).findings(1)
    assert (f["schedule"], f["trace_hash"]) == (first, trace_hash)
    assert vmemu.replay(f["trace"]).trace_hash == trace_hash
    assert _gone(p.pid) == []


def _busiest_grandchild(pid: int) -> float:
    """CPU seconds of the busiest process two generations below ``pid`` (a Dask worker:
    forked by the forkserver the explorer started)."""
    parent = {}
    for q in _left_behind(pid):
        try:
            fields = _stat(q)
            parent[q] = (int(fields[1]), (int(fields[11]) + int(fields[12]))
                         / os.sysconf("SC_CLK_TCK"))
        except (OSError, IndexError, ValueError):
            pass
    return max((cpu for q, (pp, cpu) in parent.items()
                if pp in parent and parent[pp][0] == pid), default=0.0)


def _contiguous(ranges: list[tuple[int, int]]) -> int:
    end = 0
    for a, b in sorted(ranges):
        if a > end:
            break
        end = max(end, b)
    return end


def test_import_vmemu_loads_nothing_heavy():
    # A command pays only for what it uses: no worker pool, Hypothesis, trio, YAML
    # (with its dumper), SQLite or Dask until something needs them.
    code = ("import sys, vmemu; heavy = ('multiprocessing', 'hypothesis', 'trio', 'yaml', "
            "'sqlite3', 'distributed', 'concurrent.futures.process', 'rich'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
    # ... and the names are all there when used.
    assert callable(vmemu.explore) and vmemu.Result and vmemu.VERDICTS


def test_an_exploration_in_one_process_starts_no_pool_machinery(tmp_path):
    # `vmemu explore` without --jobs or --cluster runs every schedule here: it imports no
    # worker pool (concurrent.futures and the logging it pulls in) and no socket (the
    # store names this host without it): together ~10 ms of every such command.
    code = ("import sys, runpy; sys.argv = ['vmemu', 'explore', sys.argv[1], '--runs', '50', "
            "'--store', sys.argv[2]]\n"
            "try:\n    runpy.run_module('vmemu', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('concurrent.futures', 'multiprocessing', 'socket', "
            "'logging') if m in sys.modules), file=sys.stderr)")
    p = subprocess.run([sys.executable, "-c", code, str(CONTRACT / "abba_ordered.yaml"),
                        str(tmp_path / "c.sqlite")], cwd=ROOT, capture_output=True, text=True)
    assert "none failed" in p.stdout and p.stderr.strip().splitlines()[-1] == "[]", p.stderr
    from vmemu._explore.store import _hostname
    import socket
    assert _hostname() == socket.gethostname()


def test_an_interrupted_campaign_keeps_what_it_found(tmp_path, write_scenario):
    # Ctrl-C after a bug was found but before it was final (minimized): its schedules
    # are recorded as run, so the campaign must know the bug as found, or a resumed
    # exploration would never report it again.
    from vmemu._explore import ExploreInterrupted
    path = write_scenario(ABBA_SAID_FINE)
    store, found = tmp_path / "c.sqlite", tmp_path / "f"

    def ctrl_c_once_found(done: int, findings: int, cover: int) -> None:
        if findings:
            raise KeyboardInterrupt

    with pytest.raises(ExploreInterrupted) as e:
        explore(path, strategy="random", runs=500, store=store, findings_dir=found,
                progress=ctrl_c_once_found)
    [c] = Store(str(store)).campaigns()
    assert c["status"] == "interrupted"
    [f] = c["findings"]
    assert f["verdict"] == "deadlock" and e.value.saved == [f["trace"]] and f["hits"] >= 1
    assert vmemu.replay(f["trace"]).verdict == "deadlock"
    b = explore(path, runs=200, store=store, findings_dir=found, resume=True)
    assert not b.findings and b.failed and b.known[0]["trace"] == f["trace"]
    # Interrupted again, having hit only that bug: it says so (not "nothing found").
    with pytest.raises(ExploreInterrupted) as e:
        explore(path, runs=50_000, store=store, findings_dir=found, resume=True,
                progress=lambda done, findings, cover: _ctrl_c_after(done, 3000))
    first = b.first_index + 200
    assert e.value.saved == [] and e.value.known_hits == len(
        _failing(path, 0, range(first, first + e.value.schedules)))
    assert e.value.known_hits > 0


def test_ctrl_c_of_a_resumed_campaign_says_it_hit_known_bugs(tmp_path, write_scenario):
    path = write_scenario(ABBA_SAID_FINE)
    store, found = tmp_path / "c.sqlite", tmp_path / "f"
    explore(path, strategy="random", runs=50, store=store, findings_dir=found)
    p = _start([path, "--resume", "--time", "60", "--store", str(store), "--findings",
                str(found)])
    give_up = time.monotonic() + 60
    while Store(str(store)).campaigns()[0]["schedules"] < 2000:
        assert time.monotonic() < give_up and p.poll() is None, p.stderr.read()
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and out == ""
    assert re.fullmatch(r"vmemu: interrupted after \d+ schedules; no new bug; \d+ schedules "
                        r"hit bugs the campaign knew\n", err), err


def _ctrl_c_after(done: int, n: int) -> None:
    if done >= n:
        raise KeyboardInterrupt


def _resuming(store: Path) -> subprocess.Popen:
    """A campaign of ORDERED in ``store``, resumed by an explorer that runs for a minute,
    once that explorer has claimed it (the store names its pid)."""
    explore(ORDERED, strategy="random", runs=10, store=store)
    p = _start([ORDERED, "--resume", "--time", "60", "--store", str(store)])
    give_up = time.monotonic() + 60
    while Store(str(store)).campaigns()[0]["pid"] != p.pid:
        if time.monotonic() > give_up or p.poll() is not None:
            p.kill()
            raise AssertionError(f"the explorer never claimed the campaign: {p.stderr.read()}")
        time.sleep(0.05)
    return p


def test_a_campaign_running_now_is_not_resumed_twice(tmp_path):
    # Two resumes of one campaign at once would both go on at its next unrun index and
    # run the same schedules: the second is refused while the first runs, in one line.
    store = tmp_path / "c.sqlite"
    first = _resuming(store)
    try:
        p = vmemu_cli("explore", ORDERED, "--resume", "--runs", "10", "--store", str(store))
        assert p.returncode == 2 and p.stdout == "" and p.stderr == (
            f"vmemu: error: {store}: --resume: campaign 1 is running now (process "
            f"{first.pid}); wait for it to end, or explore without --resume for a new "
            "campaign\n")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 143
    # Once it has stopped, the campaign goes on where it left off.
    again = explore(ORDERED, runs=10, store=store, resume=True)
    assert again.first_index > 10 and again.schedules == 10


def test_a_killed_explorer_nobody_reaped_is_not_running(tmp_path):
    # A supervisor script kills its explorer and never waits for it: the process is a
    # zombie, which still answers kill(pid, 0). It runs nothing, so the campaign is
    # listed as killed and resumes, rather than "running now" until the script ends.
    store = tmp_path / "c.sqlite"
    p = _resuming(store)
    try:
        give_up = time.monotonic() + 60
        os.kill(p.pid, signal.SIGKILL)       # no wait(): it stays a zombie
        stat = Path(f"/proc/{p.pid}/stat")
        while stat.read_bytes().rpartition(b")")[2].split()[0] != b"Z":
            assert time.monotonic() < give_up
            time.sleep(0.02)
        [c] = Store(str(store)).campaigns()
        assert c["status"] == "killed"
        again = explore(ORDERED, runs=10, store=store, resume=True)
        assert again.schedules == 10
    finally:
        if p.returncode is None:
            p.kill()
            p.communicate(timeout=30)


def test_interleavings_stop_being_counted_at_the_cap(tmp_path, monkeypatch):
    # Overnight, a long scenario sees a new interleaving in most schedules: counted
    # without end, they would fill memory (and the store) until the campaign is killed.
    # Past COVER_CAP the count stops, and every place that shows it says so.
    from vmemu._explore import coordinator, ui
    from vmemu._viz.pages import _coverage_chart
    monkeypatch.setattr(coordinator, "COVER_CAP", 40)
    monkeypatch.setattr(ui, "COVER_CAP", 40)
    store = tmp_path / "c.sqlite"
    x = explore(DINING, strategy="random", runs=400, keep_going=True, store=store,
                findings_dir=tmp_path / "f")
    assert x.capped and x.interleavings == 40
    assert x.coverage[-1][1] == 40 and x.coverage[-1][0] < 400   # no flat tail
    assert "  distinct interleavings: over 40 (vmemu stops counting there" in \
        ui.explore_text(x, None)
    assert ui.explore_json(x)["interleavings_capped"] is True
    assert "counting stopped there" in _coverage_chart(x)
    db = sqlite3.connect(store)
    assert db.execute("SELECT count(*) FROM interleavings").fetchone() == (40,)
    db.close()
    # Resumed, the campaign stays at the cap: nothing more is kept or stored.
    again = explore(DINING, strategy="random", runs=200, keep_going=True, store=store,
                    findings_dir=tmp_path / "f", resume=True)
    assert again.capped and again.interleavings == 40
    rows = Store(str(store)).campaigns()
    table = ui.campaigns_text(rows).splitlines()
    assert table[1].split()[7:9] == ["40+", "-"]    # interleavings, new until
    assert ui.campaigns_json(rows)["campaigns"][0]["interleavings_capped"] is True
    # Under the cap nothing changes: the count is exact and says nothing of a cap.
    y = explore(DINING, strategy="random", runs=5, store=tmp_path / "d.sqlite")
    assert not y.capped and y.interleavings < 40
    assert not ui.explore_json(y)["interleavings_capped"]


def test_a_full_disk_midway_does_not_end_the_exploration(tmp_path, monkeypatch, capsys):
    # The disk fills up overnight: the store's writes fail (SQLITE_FULL, made here with
    # a page limit). The exploration runs to its end and reports in full; stderr says
    # the store stopped recording; the store stays readable, as of its last good write.
    from vmemu._cli import main
    from vmemu._explore import store as st
    real = st.Store.__init__

    def full_disk(self, path):
        real(self, path)
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        self.db.execute(f"PRAGMA max_page_count = {pages}")
    monkeypatch.setattr(st.Store, "__init__", full_disk)
    store = tmp_path / "c.sqlite"
    code = main(["explore", DINING, "--all", "--runs", "2000", "--store", str(store),
                 "--findings", str(tmp_path / "f")])
    out, err = capsys.readouterr()
    assert code == 1 and out.startswith("vmemu: DEADLOCK in dining-philosophers-3")
    assert err == ("vmemu: note: the campaign store stopped recording this exploration "
                   "midway (database or disk is full); the report is complete, but a resume "
                   "will run the unrecorded schedules again\n")
    monkeypatch.setattr(st.Store, "__init__", real)
    # Readable, as of its last good write: here its creation; not the first block run
    # (nor so its finding: the two go together), which a resume will run again.
    [c] = Store(str(store)).campaigns()
    assert c["schedules"] == 0 and c["findings"] == []
    assert cli_json("explore", DINING, "--runs", "20", "--store", str(store))["unrecorded"] is None


def test_a_store_that_cannot_be_written(tmp_path):
    # The default store where it cannot be created: the exploration runs, and says it
    # keeps no record. A store the user named: one line, exit 2.
    (tmp_path / ".vmemu").write_text("a file, not a folder")
    p = vmemu_cli("explore", ORDERED, "--runs", "20", cwd=tmp_path)
    assert p.returncode == 0 and "none failed" in p.stdout
    store_note, findings_note = p.stderr.splitlines()
    assert store_note.startswith("vmemu: note: this campaign is not recorded (")
    assert findings_note == (
        "vmemu: note: failing traces are not saved (--findings: cannot write "
        ".vmemu/findings: .vmemu is not a folder); name a folder you can write with "
        "--findings to save them")
    # ... and a bug it finds is reported, with the command that replays it by its seed.
    p = vmemu_cli("explore", str(CONTRACT / "abba.yaml"), cwd=tmp_path)
    assert p.returncode == 1 and p.stdout.splitlines()[-1].startswith("replay: vmemu run ")
    p = vmemu_cli("explore", ORDERED, "--runs", "20", "--store", ".vmemu/c.sqlite",
                  cwd=tmp_path)
    assert p.returncode == 2 and p.stdout == "" and len(p.stderr.splitlines()) == 1
    assert "cannot open the campaign store" in p.stderr and "Traceback" not in p.stderr


_NOT_A_STORE = {
    "another program's campaigns table": (
        "CREATE TABLE campaigns (id INTEGER PRIMARY KEY, name TEXT); "
        "INSERT INTO campaigns (name) VALUES ('x')",
        "its campaigns table lacks 19 of the 20 columns of a store (scenario, "
        "scenario_name, scenario_hash ...)"),
    "a column missing": ("ALTER TABLE campaigns DROP COLUMN new_cover_at",
                         "its campaigns table has no column new_cover_at"),
    "params not JSON": ("UPDATE campaigns SET params = '{oops'",
                        "campaign 1 is damaged (its params are '{oops', not a JSON object)"),
    "a seed that is no number": ("UPDATE campaigns SET seed = 'abc'",
                                 "campaign 1 is damaged (its seed is 'abc', not a number)"),
    "a count that is no number": ("UPDATE campaigns SET schedules = 'many'",
                                  "campaign 1 is damaged (schedules is 'many')"),
    "a newer vmemu's": ("PRAGMA user_version = 7",
                        "it was written by a newer vmemu (store version 7, this vmemu reads 1)"),
}


@pytest.mark.parametrize("how", list(_NOT_A_STORE))
def test_a_store_of_another_layout_or_with_damaged_rows_is_one_line(tmp_path, how):
    # An SQLite file of another program, or a store edited by hand: `campaigns` and a
    # resume say so in one line naming it (not KeyError, JSONDecodeError, ValueError),
    # before anything is claimed: the campaign is not left `running`.
    sql, why = _NOT_A_STORE[how]
    store = tmp_path / "c.sqlite"
    if how.startswith("another program"):
        db = sqlite3.connect(store)
    else:
        explore(ORDERED, runs=5, store=store)
        db = sqlite3.connect(store)
    db.executescript(sql)
    db.close()
    for args in (["campaigns"], ["campaigns", "--json"],
                 ["explore", ORDERED, "--resume", "--runs", "5"]):
        p = vmemu_cli(*args, "--store", str(store))
        assert p.returncode == 2 and p.stdout == "", p.stderr
        assert p.stderr == (f"vmemu: error: {store}: --store: not a campaign store this vmemu "
                            f"can use: {why}; use another --store, or move this file away\n")
    if not how.startswith("another program"):
        db = sqlite3.connect(store)
        assert db.execute("SELECT status FROM campaigns").fetchall() == [("done",)]
        db.close()


def test_a_store_written_before_it_had_a_version_still_opens(tmp_path):
    store = tmp_path / "c.sqlite"
    explore(ORDERED, runs=5, store=store)
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA user_version").fetchone() == (1,)
    db.execute("PRAGMA user_version = 0")       # as every store made before it was set
    db.close()
    assert explore(ORDERED, runs=5, store=store, resume=True).first_index == 5
    assert [c["schedules"] for c in Store(str(store), readonly=True).campaigns()] == [10]


def test_a_store_another_program_holds_locked_is_in_use_not_damaged(tmp_path, monkeypatch,
                                                                     capsys):
    # Another program holds the store (BEGIN EXCLUSIVE) for longer than vmemu waits: the
    # line says it is in use, not "delete a damaged one" (it is healthy); listing works.
    from vmemu._cli import main
    from vmemu._explore import store as st
    monkeypatch.setattr(st, "BUSY_SECONDS", 0.5, raising=False)
    store = tmp_path / "c.sqlite"
    explore(ORDERED, runs=5, store=store)
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        code = main(["explore", ORDERED, "--runs", "5", "--store", str(store)])
        out, err = capsys.readouterr()
        assert code == 2 and out == ""
        assert err == (f"vmemu: error: {store}: --store: the campaign store is in use: another "
                       "vmemu or program has held it locked for 0.5 s (database is locked); "
                       "wait for it to finish, or pass --store PATH with another store\n")
        assert main(["campaigns", "--store", str(store)]) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["1", "abba-ordered"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [c["schedules"] for c in Store(str(store)).campaigns()] == [5]


@pytest.mark.parametrize("kind", ["directory", "FIFO", "character device"])
def test_a_store_that_is_not_a_file_is_named_for_what_it_is(tmp_path, kind):
    # SQLite would say "disk I/O error" of a FIFO or /dev/null, and "unable to open
    # database file" of a folder: the line says what the path is, for explore and
    # campaigns alike, and nothing is read from (or written to) it.
    path = {"directory": tmp_path, "character device": "/dev/null"}.get(kind)
    if kind == "FIFO":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    for args in (["explore", ORDERED, "--runs", "5"], ["campaigns"]):
        p = vmemu_cli(*args, "--store", str(path), cwd=tmp_path)
        assert p.returncode == 2 and p.stdout == "", p.stderr
        assert p.stderr.startswith(f"vmemu: error: {path}: --store: is a {kind}") \
            and p.stderr.endswith(", not a campaign store; pass --store PATH with a file "
                                  "you can write\n"), p.stderr


def test_resume_says_why_there_is_no_campaign_to_go_on_with(tmp_path):
    # A campaign covers one version of a scenario and fault plan. When --resume finds
    # none, the line says what differs from the file's newest campaign, and what to do.
    path = tmp_path / "s.yaml"
    path.write_text((CONTRACT / "abba_ordered.yaml").read_text())
    store = str(tmp_path / "c.sqlite")

    def resume(*more: str) -> str:
        p = vmemu_cli("explore", str(path), "--runs", "5", "--store", store, "--resume", *more)
        assert p.returncode == 2 and p.stdout == "" and len(p.stderr.splitlines()) == 1
        return p.stderr

    assert resume() == (f"vmemu: error: --resume: no campaign of {path} to resume in {store}; "
                        "run it once without --resume\n")
    explore(str(path), runs=5, store=store, seed=3, strategy="pct", depth=2)
    assert resume("--seed", "4") == (
        f"vmemu: error: --resume: campaign 1 of {path} ran with --strategy pct --seed 3 "
        "--depth 2, not these options; --resume alone goes on with the campaign's own, or "
        "explore without --resume to start a new campaign\n")
    plan = ROOT / "faults" / "fail_atomic_allocs.yaml"
    assert resume("--faults", str(plan)) == (
        f"vmemu: error: --resume: campaign 1 of {path} ran with no fault plan, not with "
        f"{plan} (or that plan changed); explore without --resume to start a new "
        "campaign\n")
    path.write_text(path.read_text() + "# fixed\n")
    assert resume() == (f"vmemu: error: --resume: {path} changed since its campaign 1 ran "
                        "(its content differs); explore without --resume to start a new "
                        "campaign\n")


@pytest.mark.parametrize("cluster", ["local:0", "local:abc", "local:", "dask://x",
                                     "local:99999"])
def test_a_bad_cluster_is_one_line_and_records_no_campaign(tmp_path, cluster):
    store = tmp_path / "c.sqlite"
    p = vmemu_cli("explore", ORDERED, "--cluster", cluster, "--store", str(store))
    assert p.returncode == 2 and p.stdout == "" and p.stderr.startswith(
        "vmemu: error: --cluster: expected "), p.stderr
    assert len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr
    assert not store.exists() or Store(str(store)).campaigns() == []


def test_a_resume_claims_its_campaign_before_it_reads_it(tmp_path, monkeypatch):
    # Two resumes racing: the second must not read the ranges (or findings) before it
    # holds the campaign, or a first one ending in between leaves it going on from old
    # ranges, running schedules twice. What it reads, it reads as the claimant.
    store = tmp_path / "c.sqlite"
    explore(ORDERED, strategy="random", runs=50, store=store)
    seen = []
    for name in ("ranges", "findings", "interleavings"):
        real = getattr(Store, name)

        def spy(self, campaign, real=real, name=name):
            row = self.db.execute("SELECT status, pid FROM campaigns WHERE id = ?",
                                  (campaign,)).fetchone()
            seen.append((name, row))
            return real(self, campaign)
        monkeypatch.setattr(Store, name, spy)
    explore(ORDERED, runs=50, store=store, resume=True)
    assert {n for n, _ in seen} == {"ranges", "findings", "interleavings"}
    assert all(row == ("running", os.getpid()) for _, row in seen), seen


#: (the coordinator's pid, the real run_block) for _dies_in_a_worker.
_DYING: list = []


def _dies_in_a_worker(*args, **kw):
    """work.run_block in the coordinator; in a (forked) worker, death as SIGKILL leaves
    it: no answer, no clean-up. Module level: the pool pickles it by name (a worker
    started by a forkserver imports this module afresh: _DYING is empty there)."""
    if not _DYING or os.getpid() != _DYING[0]:
        os._exit(9)
    return _DYING[1](*args, **kw)


def test_workers_that_keep_dying_end_it_in_one_line_not_as_a_bug(tmp_path, monkeypatch,
                                                                    capsys):
    # The OOM killer takes a worker again and again: after MAX_RESTARTS new pools the
    # exploration gives up. That is one line and exit 3: not 1 (a bug found), not a
    # traceback; the campaign keeps what it recorded and resumes from there.
    from vmemu._cli import main
    from vmemu._explore import coordinator, work
    monkeypatch.setattr(coordinator, "MAX_RESTARTS", 1)
    real = work.run_block
    _DYING[:] = [os.getpid(), real]
    monkeypatch.setattr(work, "run_block", _dies_in_a_worker)
    store = tmp_path / "c.sqlite"
    code = main(["explore", ORDERED, "--jobs", "2", "--runs", "20000", "--store", str(store)])
    out, err = capsys.readouterr()
    assert code == 3 and out == "", err
    assert re.fullmatch(r"vmemu: error: explore workers died 2 times \(.+\); gave up after "
                        r"\d+ schedules; the campaign keeps what it recorded, and --resume "
                        r"goes on from there \(with fewer --jobs, if memory ran out\)\n",
                        err), err
    [c] = Store(str(store)).campaigns()
    ran = _ranges(store)
    assert c["status"] == "interrupted" and c["schedules"] == sum(b - a for a, b in ran) > 0
    # Recorded: the schedules below the dead workers' lost blocks (above them nothing
    # counts yet: a lost block may hold the first failure). The resume goes on there.
    end = _disjoint_cover(ran)
    monkeypatch.setattr(work, "run_block", real)
    x = explore(ORDERED, runs=100, store=store, resume=True)
    assert x.first_index == end and x.schedules == 100


def test_findings_are_listed_by_a_path_that_works_from_anywhere(tmp_path):
    # Explored in one folder with a relative --findings, listed (and resumed) from
    # another: the replay command works, and the resume knows the saved trace.
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    store = str(tmp_path / "c.sqlite")
    abba = str(CONTRACT / "abba.yaml")
    assert vmemu_cli("explore", abba, "--store", store, "--findings", "found",
                     cwd=work).returncode == 1
    [f] = Store(store).campaigns()[0]["findings"]
    assert f["trace"] == str(work / "found" / Path(f["trace"]).name)
    listed = vmemu_cli("campaigns", "--store", store, cwd=elsewhere).stdout
    cmd = listed.split(": vmemu replay ")[1].split()[0]
    assert vmemu_cli("replay", cmd, cwd=elsewhere).returncode == 1
    p = vmemu_cli("explore", abba, "--resume", "--runs", "50", "--store", store,
                  cwd=elsewhere)
    assert p.returncode == 1 and p.stdout.splitlines()[-1] == f"replay: vmemu replay {cmd}"


def _campaign(store: Path) -> tuple:
    """What a campaign store says of its one campaign: schedules, interleavings, new
    until, where the ranges run end (they must tile [0, end)), each finding's (verdict,
    schedule, hits)."""
    [c] = Store(str(store)).campaigns()
    return (c["schedules"], c["interleavings"], c["new_cover_at"],
            _disjoint_cover(_ranges(store)),
            sorted((f["verdict"], f["schedule"], f["hits"]) for f in c["findings"]))


def test_the_campaign_of_a_first_failure_does_not_depend_on_jobs(tmp_path):
    # Without --all only the schedules up to the first failure count, as with --jobs 1:
    # --jobs 2 runs blocks beyond it meanwhile, but the campaign must not list them as
    # run (a resume would skip them, their hits uncounted) or count their interleavings.
    rare = tmp_path / "rare.yaml"
    rare.write_text(RARE)
    got = []
    for jobs in (1, 2):
        store = tmp_path / f"c{jobs}.sqlite"
        x = explore(str(rare), strategy="random", seed=16, runs=3000, jobs=jobs,
                    store=store, findings_dir=tmp_path / f"f{jobs}")
        first = x.result.extra["schedule"]
        assert first > 400 and x.schedules == first + 1
        got.append(_campaign(store))
        schedules, interleavings, _, end, findings = got[-1]
        assert schedules == first + 1 == end
        assert interleavings == x.interleavings and findings == [("deadlock", first, 1)]
    assert got[0] == got[1]


def test_a_finding_that_cannot_be_saved_is_not_lost_to_the_campaign(tmp_path, monkeypatch):
    # The disk fills up just as the first bug is found: the exploration ends (one line,
    # exit 2), and the campaign does not list the failing schedule as run, so that a
    # resume finds that very bug again.
    from vmemu._errors import UserError
    from vmemu._explore import findings
    store = tmp_path / "c.sqlite"
    want = explore(DINING, strategy="random", runs=100).result.extra["schedule"]

    def full(self, trace):
        raise UserError("cannot save a trace there (No space left on device)")
    monkeypatch.setattr(findings.Findings, "_save", full)
    with pytest.raises(UserError):
        explore(DINING, strategy="random", runs=100, store=store, findings_dir=tmp_path / "f")
    assert all(b <= want for _, b in _ranges(store))
    monkeypatch.undo()
    x = explore(DINING, runs=100, store=store, findings_dir=tmp_path / "f", resume=True)
    assert x.findings and x.result.extra["schedule"] == want


def _killed_minimizing(args: str, store: Path, found: Path, nth: int) -> None:
    """``explore(ARGS, store=..., findings_dir=...)`` in a new process that SIGKILLs
    itself as it starts minimizing its ``nth`` finding; every block is written to the
    store as it ends."""
    script = ("import os, signal\n"
              "from vmemu._explore import coordinator, explore, findings\n"
              "coordinator.FLUSH_EVERY = 0.0\n"
              "real, n = findings.minimize_result, []\n"
              "def dies(*a, **k):\n"
              "    n.append(1)\n"
              f"    if len(n) == {nth}: os.kill(os.getpid(), signal.SIGKILL)\n"
              "    return real(*a, **k)\n"
              "findings.minimize_result = dies\n"
              f"explore({args}, store={str(store)!r}, findings_dir={str(found)!r})\n")
    p = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr


def test_a_campaign_killed_while_minimizing_keeps_its_finding(tmp_path):
    # SIGKILL while the first bug is minimized (its block is recorded as run by then):
    # the finding is in the store as found (its saved, unminimized trace), so a resume
    # knows it, and it replays.
    store, found = tmp_path / "c.sqlite", tmp_path / "f"
    _killed_minimizing(f"{DINING!r}, strategy='random', runs=100", store, found, nth=1)
    want = explore(DINING, strategy="random", runs=100)
    first = want.result.extra["schedule"]
    assert _disjoint_cover(_ranges(store)) == first + 1       # recorded as run ...
    [c] = Store(str(store)).campaigns()
    [f] = c["findings"]                                       # ... with its finding
    assert (f["verdict"], f["schedule"], f["hits"]) == ("deadlock", first, 1)
    assert vmemu.replay(f["trace"]).verdict == "deadlock"
    again = explore(DINING, runs=50, store=store, findings_dir=found, resume=True)
    assert again.known and again.known[0]["trace"] == f["trace"]


def test_a_findings_folder_that_cannot_be_made_is_refused_before_any_work(tmp_path):
    # Checked when the exploration starts, not at its first finding hours later; and
    # nothing is recorded for an exploration that never ran.
    (tmp_path / "afile").write_text("")
    store = tmp_path / "c.sqlite"
    for given, why in (("afile", "afile is a file, not a folder; name a folder (it is "
                                 "made if need be)"),
                       ("afile/sub", "cannot write afile/sub: afile is not a folder")):
        p = vmemu_cli("explore", DINING, "--findings", given, "--store", str(store),
                      cwd=tmp_path)
        assert (p.returncode, p.stdout, p.stderr) == (
            2, "", f"vmemu: error: --findings: {why}\n")
    assert Store(str(store)).campaigns() == []       # no campaign for what never ran
    p = vmemu_cli("explore", DINING, "--findings", "new/deeper", "--store", str(store),
                  cwd=tmp_path)
    assert p.returncode == 1 and list((tmp_path / "new" / "deeper").glob("*.json"))


# Dask's GC diagnosis callback may fire while its client stops in another thread and
# assert on its own timer (distributed/gc.py): a teardown race inside Dask, harmless.
@pytest.mark.filterwarnings("ignore:Exception ignored in.*GCDiagnosis"
                            ":pytest.PytestUnraisableExceptionWarning")
def test_a_cluster_started_in_process_leaves_the_interpreter_as_it_was(tmp_path):
    # The API in a user's process (here pytest's, whose __main__ workers must not
    # re-import): the same answer as --jobs 1, and the GIL switch interval, shortened
    # while the cluster starts, is the user's again afterwards.
    pytest.importorskip("distributed")
    import sys as _sys
    before = _sys.getswitchinterval()
    x = explore(DINING, strategy="random", runs=4000, keep_going=True, cluster="local:1",
                findings_dir=tmp_path / "c")
    one = explore(DINING, strategy="random", runs=4000, keep_going=True,
                  findings_dir=tmp_path / "one")
    assert _sys.getswitchinterval() == before
    assert [(f.extra["schedule"], f.trace_hash) for f in x.findings] == \
        [(f.extra["schedule"], f.trace_hash) for f in one.findings]
    assert x.schedules == one.schedules == 4000


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(),
                    reason="needs root to run as another user (setpriv)")
def test_campaigns_lists_a_store_this_user_may_only_read(tmp_path):
    # A campaign runner's store, listed by a colleague who may read it but not write it
    # (nor its folder), here an older store (no interleavings trigger yet): listing
    # needs no write, so it works.
    import tempfile
    nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
              sys.executable]
    if subprocess.run([*nobody, "-c", "import vmemu"], cwd=ROOT,
                      capture_output=True).returncode != 0:
        pytest.skip("another user cannot read this checkout or its Python")
    folder = Path(tempfile.mkdtemp(prefix="vmemu-ro-"))
    try:
        folder.chmod(0o755)
        store = folder / "c.sqlite"
        explore(str(CONTRACT / "abba.yaml"), runs=5, store=store, findings_dir=folder / "f")
        db = sqlite3.connect(store)
        db.execute("DROP TRIGGER interleavings_counted")
        db.close()
        store.chmod(0o644)
        p = subprocess.run([*nobody, "-m", "vmemu", "campaigns", "--store", str(store)],
                           cwd=ROOT, capture_output=True, text=True)
        assert p.returncode == 0 and p.stderr == "", p.stderr
        assert p.stdout.splitlines()[1].split()[:2] == ["1", "abba"]
        assert "campaign 1: deadlock at schedule 0" in p.stdout
    finally:
        import shutil
        shutil.rmtree(folder)


def test_a_cluster_address_with_no_scheduler_is_one_line_at_once(tmp_path):
    # Nothing listens there (the scheduler was never started): refused before any
    # schedule runs, rather than after Dask's 10 s timeout with the work thrown away.
    pytest.importorskip("distributed")
    import socket
    with socket.socket() as s:          # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = tmp_path / "c.sqlite"
    for address, why in ((f"tcp://127.0.0.1:{port}", "Connection refused"),
                         ("tcp://nosuchhost.invalid:8786", "")):
        p = vmemu_cli("explore", ORDERED, "--cluster", address, "--store", str(store))
        assert p.returncode == 2 and p.stdout == "" and len(p.stderr.splitlines()) == 1
        assert p.stderr.startswith(f"vmemu: error: --cluster: cannot reach the Dask "
                                   f"scheduler at {address} (") and why in p.stderr
    assert Store(str(store)).campaigns() == []      # nothing ran


def test_a_cluster_too_large_for_one_machine_is_refused_as_jobs_is():
    # local:N starts N worker processes here, as --jobs does: the same cap, the same line.
    from vmemu._bounds import MAX_JOBS
    from vmemu._errors import UserError
    from vmemu._explore.executors import check_cluster
    check_cluster(f"local:{MAX_JOBS}")
    with pytest.raises(UserError) as e:
        check_cluster(f"local:{MAX_JOBS + 1}")
    assert str(e.value) == (f"--cluster: expected local:N with N at most {MAX_JOBS} worker "
                            f"processes, got {MAX_JOBS + 1}")


def test_a_cluster_address_where_no_dask_scheduler_answers_is_one_line(tmp_path):
    # A TCP service that is not Dask (an SSH server's banner, which Dask read as the
    # length of a frame: a MemoryError traceback), or a host name no resolver takes.
    pytest.importorskip("distributed")
    import socket
    import threading
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    port = server.getsockname()[1]
    stop = threading.Event()
    talked: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.sendall(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n")
            talked.append(conn)       # (kept open, as sshd waits for the client's turn)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    store = tmp_path / "c.sqlite"
    address = f"tcp://127.0.0.1:{port}"
    try:
        p = vmemu_cli("explore", ORDERED, "--runs", "10000000", "--time", "60",
                      "--cluster", address, "--store", str(store))
    finally:
        stop.set()
        thread.join()
        server.close()
        for conn in talked:
            conn.close()
    assert talked and p.returncode == 2 and p.stdout == "", p.stderr
    assert len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr
    assert p.stderr.startswith(f"vmemu: error: --cluster: cannot reach the Dask scheduler at "
                               f"{address}: what answers there may not be a Dask scheduler (")
    assert p.stderr.endswith("); start one with `dask scheduler`, or use --cluster local:N\n")
    bad_name = "tcp://" + "a" * 70 + ".example:8786"      # (a label over 63 letters)
    p = vmemu_cli("explore", ORDERED, "--cluster", bad_name, "--store", str(store))
    assert p.returncode == 2 and p.stdout == "" and "Traceback" not in p.stderr
    assert p.stderr.startswith(f"vmemu: error: --cluster: cannot reach the Dask scheduler "
                               f"at {bad_name} (") and len(p.stderr.splitlines()) == 1


def test_a_block_cut_short_leaves_no_hole_below_what_is_recorded(tmp_path, monkeypatch):
    # A block the deadline (or a signal) cut short never ran its tail; without --all,
    # blocks above it must not be listed as run: a failure in that tail would be the
    # first, and a resume must run the tail first, as one long exploration would.
    # (`random` here: blocks [0, 1), [1, 1025), [1025, 2049), [2049, 3000).)
    from vmemu._explore import work
    real = work.run_block

    def cut(spec, start, stop, *args, **kw):
        if start != 1025:
            return real(spec, start, stop, *args, **kw)
        blk = real(spec, start, start + 10, *args, **kw)  # its first 10 schedules only
        blk.stop = stop
        return blk
    monkeypatch.setattr(work, "run_block", cut)
    store = tmp_path / "c.sqlite"
    x = explore(ORDERED, strategy="random", runs=3000, store=store)
    assert x.schedules == 3000 - (2049 - 1035)
    assert _disjoint_cover(_ranges(store)) == 1035
    assert Store(str(store)).campaigns()[0]["schedules"] == 1035
    monkeypatch.setattr(work, "run_block", real)
    again = explore(ORDERED, runs=100, store=store, resume=True)
    assert again.first_index == 1035


def test_new_until_does_not_depend_on_jobs(tmp_path):
    # "New until" is one past the last schedule that showed an interleaving first: by
    # the lowest index each was seen at, not by which worker's block came back first.
    got = []
    for jobs in (1, 2):
        store = tmp_path / f"c{jobs}.sqlite"
        explore(ORDERED, strategy="random", runs=5000, jobs=jobs, store=store)
        got.append(_campaign(store))
    assert got[0] == got[1] and got[0][2] < 1000      # (abba_ordered saturates early)


def test_a_resume_in_the_middle_of_an_epoch_runs_what_one_long_exploration_runs(tmp_path):
    # PCT's hint for schedules [2**k, 2**(k+1)) is the longest run below 2**k: a resume
    # that goes on at 2825 must use the one computed at 2048, not count 2048..2824.
    path = str(ROOT / "scenarios" / "ports" / "runtime_pm_resume_noio_fixed.yaml")
    one, two = tmp_path / "one.sqlite", tmp_path / "two.sqlite"
    explore(path, runs=4096, store=one)
    explore(path, runs=2825, store=two)
    x = explore(path, runs=4096 - 2825, store=two, resume=True)
    assert x.first_index == 2825
    a, b = _campaign(one), _campaign(two)
    assert a == b


def test_a_resume_that_never_starts_leaves_its_campaign_as_it_was(tmp_path, monkeypatch):
    # Claimed, then refused before any schedule ran: the campaign is not left "running"
    # (another process would be refused "running now" while this one lives).
    from vmemu._explore import api
    store = tmp_path / "c.sqlite"
    explore(ORDERED, strategy="random", runs=10, store=store)

    def refused(*args, **kw):
        raise RuntimeError("refused")
    monkeypatch.setattr(api, "_Exploration", refused)
    with pytest.raises(RuntimeError):
        explore(ORDERED, runs=10, store=store, resume=True)
    assert Store(str(store)).campaigns()[0]["status"] == "done"


def test_a_finding_above_a_hole_is_not_recorded_without_its_schedules(tmp_path, monkeypatch):
    # A block cut short holds back the blocks above it; a failure one of those found is
    # reported, but the campaign must not list it without the schedules that found it
    # (a resume runs the hole and finds the real first failure there).
    from vmemu._explore import work
    rare = tmp_path / "rare.yaml"
    rare.write_text(RARE)
    want = explore(str(rare), strategy="random", seed=16, runs=3000).result.extra["schedule"]
    assert 11 < want < 1025
    real = work.run_block

    def cut(spec, start, stop, *args, **kw):
        if start != 1:
            return real(spec, start, stop, *args, **kw)
        blk = real(spec, start, 11, *args, **kw)
        blk.stop = stop
        return blk
    monkeypatch.setattr(work, "run_block", cut)
    store = tmp_path / "c.sqlite"
    x = explore(str(rare), strategy="random", seed=16, runs=100000, store=store)
    assert x.failed and x.result.extra["schedule"] > 1025
    [c] = Store(str(store)).campaigns()
    assert c["findings"] == [] and _disjoint_cover(_ranges(store)) == 11
    monkeypatch.setattr(work, "run_block", real)
    y = explore(str(rare), runs=100000, store=store, resume=True)
    assert y.findings and y.result.extra["schedule"] == want
    [c] = Store(str(store)).campaigns()
    assert [(f["schedule"], f["hits"]) for f in c["findings"]] == [(want, 1)]


def test_an_all_campaign_killed_while_minimizing_lists_no_finding_without_its_schedules(
        tmp_path):
    # --all minimizes each new bug as it is found; SIGKILL during the second: every
    # finding the store lists lies in a recorded range and has been hit.
    store, found = tmp_path / "c.sqlite", tmp_path / "f"
    path = tmp_path / "two.yaml"
    path.write_text(TWO_BUGS)
    _killed_minimizing(f"{str(path)!r}, strategy='random', seed=1, runs=3000, "
                       "keep_going=True", store, found, nth=2)
    ran = _ranges(store)
    [c] = Store(str(store)).campaigns()
    for f in c["findings"]:
        assert f["hits"] >= 1 and any(a <= f["schedule"] < b for a, b in ran), c
        assert os.path.exists(f["trace"])
