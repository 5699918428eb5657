"""The HTML timeline and the Perfetto trace, without a browser (test_viz_browser.py has one).

What a user would notice: the Perfetto file has the tracks, slices and counters of the
1999 deadlock and every event has the fields the Trace Event Format requires; the same
trace gives the same bytes; bad output paths are one line and exit 2; unknown event ops
and tasks that appear mid-run are drawn, not dropped.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

import pytest

import vmemu
from vmemu._cli import main
from vmemu._viz import perfetto_json, run_html, timeline
from vmemu._viz import record as R
from vmemu._viz.model import build
from vmemu._viz.output import write_text
from vmemu._viz.perfetto import laminar_rows

from conftest import CONTRACT, ROOT, seed_reaching

EXT2 = str(ROOT / "scenarios" / "ext2_bitmap_reclaim.yaml")
AMPLE = str(ROOT / "scenarios" / "ext2_bitmap_ample_memory.yaml")
LOW_MEM = str(ROOT / "faults" / "low_memory_in_bread.yaml")

#: Fields the Trace Event Format requires, by phase (``args`` for metadata and counters).
REQUIRED = {"B": {"name", "ts", "pid", "tid"}, "E": {"ts", "pid", "tid"},
            "X": {"name", "ts", "dur", "pid", "tid"}, "i": {"name", "ts", "pid", "s"},
            "C": {"name", "ts", "pid", "args"}, "s": {"name", "cat", "id", "ts", "pid", "tid"},
            "f": {"name", "cat", "id", "ts", "pid", "tid", "bp"}, "M": {"name", "pid", "args"}}


def check_trace_events(doc: dict) -> None:
    """Every event has its phase's required fields, timestamps are sorted, begin/end
    slices nest on every track, every flow has both ends and each end lies in a slice."""
    assert set(doc) >= {"traceEvents"}
    evs = doc["traceEvents"]
    stacks: dict[tuple, list] = {}
    slices: dict[tuple, list] = {}
    flows: dict[int, list] = {}
    last_ts = -1
    for e in evs:
        ph = e["ph"]
        assert ph in REQUIRED, e
        assert REQUIRED[ph] <= set(e), (ph, REQUIRED[ph] - set(e), e)
        if ph == "M":
            assert e["name"] in ("process_name", "thread_name", "process_sort_index",
                                 "thread_sort_index"), e
            continue
        assert isinstance(e["ts"], int) and e["ts"] >= last_ts, e
        last_ts = e["ts"]
        track = (e["pid"], e.get("tid"))
        if ph == "B":
            stacks.setdefault(track, []).append(e)
        elif ph == "E":
            assert stacks.get(track), f"E without B on {track} at {e['ts']}"
            b = stacks[track].pop()
            slices.setdefault(track, []).append((b["ts"], e["ts"], b["name"]))
        elif ph == "i":
            assert e["s"] in ("g", "p", "t")
        elif ph == "C":
            assert e["args"] and all(isinstance(v, (int, float)) for v in e["args"].values())
        elif ph in "sf":
            flows.setdefault(e["id"], []).append(e)
    assert not any(stacks.values()), "unterminated B slices"
    for fid, ends in flows.items():
        assert sorted(x["ph"] for x in ends) == ["f", "s"], fid
        s, f = sorted(ends, key=lambda x: x["ph"] != "s")
        assert f["bp"] == "e" and f["ts"] >= s["ts"]
        for end in (s, f):
            assert any(a <= end["ts"] <= b for a, b, _ in slices[(end["pid"], end["tid"])]), end


@pytest.fixture(scope="module")
def ext2_run():
    seed = seed_reaching(EXT2, "deadlock")
    return vmemu.run(EXT2, seed=seed)


def _tracks(doc):
    names = {}
    for e in doc["traceEvents"]:
        if e["ph"] == "M" and e["name"] == "process_name":
            names[e["pid"]] = e["args"]["name"]
    threads = {}
    for e in doc["traceEvents"]:
        if e["ph"] == "M" and e["name"] == "thread_name":
            threads[e["args"]["name"]] = (e["pid"], e["tid"])
    return names, threads


def test_perfetto_json_of_the_1999_deadlock_has_its_tracks_slices_and_counters(ext2_run):
    doc = json.loads(perfetto_json(ext2_run))
    check_trace_events(doc)
    procs, threads = _tracks(doc)
    assert sorted(procs.values()) == sorted(["vmemu: ext2-bitmap-reclaim", "shm_user",
                                             "ext2_new_block"])
    assert {"ext2_new_block", "ext2_new_block reclaim", "ext2_new_block locks",
            "shm_user"} <= set(threads)
    evs = doc["traceEvents"]

    def on(thread, ph):
        pid, tid = threads[thread]
        return [e for e in evs if e.get("tid") == tid and e["pid"] == pid and e["ph"] == ph]
    state = on("ext2_new_block", "B")
    assert [e["name"] for e in state][-1] == "blocked"      # blocked to the end: deadlock
    last = state[-1]["args"]
    assert last["what"] == "semaphore superblock (held by ext2_new_block)"
    assert last["line"] == 26                                # writepage_shm's lock step
    assert {"running", "runnable"} <= {e["name"] for e in state}
    assert [e["name"] for e in on("ext2_new_block locks", "B")] == ["superblock"]
    assert [e["name"] for e in on("ext2_new_block reclaim", "B")] == ["reclaim", "writeback"]
    free = [e["args"]["free pages"] for e in evs if e["ph"] == "C" and e["name"] == "memory"]
    assert free[0] == 32 and free[-1] == 2
    assert any(e["ph"] == "C" and e["name"] == "clock" for e in evs)
    assert any(e["ph"] == "i" and e["s"] == "g" and e["name"] == "verdict: deadlock"
               for e in evs)
    # Ticks are steps: the block happened at the last step of the run.
    assert state[-1]["ts"] // 1000 == ext2_run.steps


def test_perfetto_has_fault_and_preemption_instants_and_wakeup_flows(tmp_path):
    r = vmemu.run(AMPLE, seed=1, faults=LOW_MEM)
    doc = json.loads(perfetto_json(r))
    check_trace_events(doc)
    names = [(e["ph"], e.get("cat"), e.get("name")) for e in doc["traceEvents"]]
    assert ("i", "fault", "fault") in names
    phil = vmemu.run(str(ROOT.parent / "shared" / "contract" / "dining_philosophers.yaml"),
                     seed=seed_reaching(ROOT.parent / "shared" / "contract" /
                                        "dining_philosophers.yaml", "ok"))
    doc = json.loads(perfetto_json(phil))
    check_trace_events(doc)
    cats = {(e["ph"], e.get("cat")) for e in doc["traceEvents"]}
    assert ("i", "preemption") in cats and ("s", "wake") in cats and ("f", "wake") in cats


def test_the_same_trace_gives_the_same_html_and_perfetto_bytes(tmp_path, ext2_run):
    trace = ext2_run.trace.save(tmp_path / "t.json")
    outs = []
    for hashseed in ("1", "2"):
        h, p = tmp_path / f"{hashseed}.html", tmp_path / f"{hashseed}.json"
        proc = subprocess.run([sys.executable, "-m", "vmemu", "replay", trace, "--html", str(h),
                               "--perfetto", str(p)], capture_output=True, text=True,
                              cwd=tmp_path, env={**os.environ, "PYTHONHASHSEED": hashseed})
        assert proc.returncode == 1, proc.stderr
        outs.append((h.read_bytes(), p.read_bytes()))
    assert outs[0] == outs[1]
    html = outs[0][0].decode()
    # Self-contained: no URL is fetched (the CSP forbids it, and there is none to fetch).
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "default-src 'none'" in html


@pytest.mark.parametrize("path, needle", [
    ("", "empty"),
    ("{file}/x.html", "not a folder"),
    ("{dir}", "is a folder"),
    (EXT2, "would destroy it"),
])
def test_an_output_path_that_cannot_be_written_is_one_line_exit_2(tmp_path, capsys, path,
                                                                   needle):
    (tmp_path / "f").write_text("a file, not a folder")
    path = path.format(file=tmp_path / "f", dir=tmp_path)
    for opt in ("--html", "--perfetto"):
        code = main(["run", EXT2, opt, path])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert opt in err and needle in err
        if needle == "is a folder":       # the name it suggests is of that option's kind
            assert err.endswith(os.path.join(str(tmp_path), "run.json" if opt == "--perfetto"
                                             else "run.html")), err
    assert "1999" in open(EXT2).read()          # the scenario is still there
    code = main(["run", EXT2, "--html", str(tmp_path / "a"), "--perfetto",
                 str(tmp_path / "a")])
    assert code == 2 and "its own name" in capsys.readouterr().err


def test_outputs_are_written_atomically_with_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_text(str(tmp_path / "a.html"), "x", "HTML report")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.html").stat().st_mode) == 0o640
    os.chmod(tmp_path / "a.html", 0o604)   # a file the user set up keeps its mode
    write_text(str(tmp_path / "a.html"), "y", "HTML report")
    assert (tmp_path / "a.html").read_text() == "y"
    assert stat.S_IMODE((tmp_path / "a.html").stat().st_mode) == 0o604
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html"]   # no temp file left


def test_explore_and_lockdep_html_from_the_command_line(tmp_path, capsys):
    x = tmp_path / "x.html"
    code = main(["explore", EXT2, "--html", str(x), "--perfetto", str(tmp_path / "x.json"),
                 "--findings", str(tmp_path / "findings")])
    assert code == 1
    page = x.read_text()
    assert 'id="campaign"' in page and "1 distinct failure(s)" in page
    saved = next((tmp_path / "findings").iterdir())
    assert f'href="findings/{saved.name}"' in page            # linked, relative to the page
    check_trace_events(json.loads((tmp_path / "x.json").read_text()))
    ld = tmp_path / "l.html"
    code = main(["lockdep", str(ROOT / "scenarios" / "lockdep" / "ext2_ample_memory.yaml"),
                 "--runs", "5", "--confirm", "0", "--html", str(ld)])
    assert code == 1
    page = ld.read_text()
    cycle_edges = re.findall(r'<g class="edge cycle" data-src="([^"]+)" data-dst="([^"]+)"',
                             page)
    assert sorted(cycle_edges) == [("fs_reclaim", "superblock"), ("superblock", "fs_reclaim")]
    capsys.readouterr()


def test_an_explore_page_charts_distinct_interleavings_over_schedules(tmp_path):
    import vmemu
    x = vmemu.explore(str(CONTRACT / "abba_ordered.yaml"), runs=300, driver="direct")
    pts = x.coverage
    assert pts[0][0] == 0 and pts[-1] == (300, x.interleavings) and x.interleavings > 1
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(pts, pts[1:]))
    # the same curve from a second exploration (where each interleaving first appeared)
    assert vmemu.explore(str(CONTRACT / "abba_ordered.yaml"), runs=300,
                         driver="direct").coverage == pts
    page = tmp_path / "x.html"
    assert main(["explore", str(CONTRACT / "abba_ordered.yaml"), "--runs", "300",
                 "--html", str(page)]) == 0
    assert 'id="coverage-chart"' in page.read_text()


def test_unknown_ops_and_tasks_that_appear_mid_run_are_drawn():
    """A recording as a later vmemu might make it: a task created at step 3, ops this
    version never heard of. Each gets its lane and a generic marker with its text."""
    rec = R.Recording()
    rec.items = [(R.NEW, 0, 0, "parent", False), (R.READY, 0, 0),
                 (R.PICK, 1, 0, -1, 5, 0), (R.EVENT, 1, 0),
                 (R.NEW, 3, 1, "child", False), (R.READY, 3, 1), (R.EVENT, 3, 1),
                 (R.LEAVE, 3, 0, "blocked", "join", "joins child", 6),
                 (R.PICK, 4, 1, -1, 9, 0), (R.EVENT, 4, 2), (R.LEAVE, 4, 1, "done", "exit",
                                                            "exit", 9),
                 (R.EVENT, 4, 3), (R.END, 4)]
    rec.events = [[0, "parent", "cmpxchg", "x 0->1", 5], [0, "parent", "spawn", "child", 6],
                  [0, "child", "return", 7, 9], [0, "-", "verdict", "ok", 0]]
    rec.tasks = [(0, "parent", False), (1, "child", False)]
    rec.steps = 4
    tl = build(rec)
    assert [lane.name for lane in tl.lanes] == ["parent", "child"]
    assert tl.lanes[1].start == 3000
    assert [m[3] for m in tl.marks] == ["other", "other", "other", "verdict"]
    assert tl.lanes[0].states[-1][1:3] == ["blocked", "joins child"]

    class Fake:
        verdict, culprit, tasks, cycle, message = "ok", None, [], [], ""
        scenario = vmemu.load(EXT2)
    from vmemu._viz.html import timeline_data
    data = timeline_data(tl, Fake())
    strs = data["strs"]
    ops = [strs[row[1]] for row in data["evrows"]]
    assert ops == ["cmpxchg", "spawn", "return", "verdict"]
    assert "x 0->1" in strs and data["cats"][data["evrows"][0][4]] == "other"


def test_hold_rows_never_overlap_and_perfetto_rows_nest():
    spans = [(0, 10), (2, 5), (3, 12), (5, 6), (12, 14), (6, 6)]
    rows = laminar_rows(spans)
    for r in set(rows):
        mine = sorted((s for s, rr in zip(spans, rows) if rr == r), key=lambda x: (x[0], -x[1]))
        for (a, b), (c, d) in zip(mine, mine[1:]):
            assert d <= b or c >= b      # nested in, or after, the one before
    assert rows[2] != rows[0]            # (3, 12) crosses (0, 10)


def test_html_of_the_1999_deadlock_holds_the_timeline_graph_source_and_table(ext2_run):
    tl = timeline(ext2_run)
    page = run_html(ext2_run, tl)
    assert page.count('class="lane-label lane') == len(ext2_run.tasks)
    assert 'id="waitfor-graph"' in page and 'class="edge cycle"' in page
    assert 'id="L26"' in page and 'class="ln touched" id="L26"' in page
    assert ext2_run.replay_command() in page
    # The timeline agrees with the report: the task ends blocked on the superblock.
    lane = next(lane for lane in tl.lanes if lane.name == "ext2_new_block")
    assert lane.states[-1][1:] == ["blocked", "semaphore superblock (held by ext2_new_block)",
                                   26]
    assert tl.events == ext2_run.trace.events


def test_the_commands_of_docs_visualizing_md_write_what_it_says(tmp_path, capsys):
    """Every ``vmemu`` line of the page's first example, with its files put in tmp_path."""
    import shlex
    text = (ROOT / "docs" / "visualizing.md").read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    findings = tmp_path / "findings"
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for line in block.strip().splitlines():
            args = shlex.split(line)[1:]
            outs = []
            for i, a in enumerate(args):
                if i and args[i - 1] in ("--html", "--perfetto"):
                    args[i] = str(tmp_path / a)
                    outs.append(tmp_path / a)
                elif a.startswith(".vmemu/findings/"):
                    args[i] = str(findings / a.rpartition("/")[2])
            if args[0] in ("explore", "lockdep"):
                args += ["--findings", str(findings)]
            assert main(args) in (0, 1), line
            for out in outs:
                body = out.read_text()
                if out.suffix == ".html":
                    assert body.startswith("<!DOCTYPE html>") and "</html>" in body
                else:
                    check_trace_events(json.loads(body))
    finally:
        os.chdir(cwd)
    capsys.readouterr()


def test_thousands_of_waiters_draw_the_cycle_not_a_graph_of_millions_of_edges(
        write_scenario):
    # 1000 + 1000 tasks waiting on one event, each for the same 1000 signallers: the
    # page drew all 2 million edges, 690 MB of SVG in 72 s. Now the cycle is drawn, the
    # table lists every blocked task, and the note says what was left out.
    n = 300
    r = vmemu.run(write_scenario(f"""
events: {{e: waitqueue}}
tasks:
  w:
    count: {n}
    steps: [{{wait: e}}]
  s:
    count: {n}
    steps: [{{wait: e}}, {{signal: e}}]
"""), seed=0, driver="direct")
    assert r.verdict == "deadlock" and r.message == "wait-for cycle s0 -> s0"
    page = run_html(r, timeline(r))
    assert len(page) < 1_000_000
    assert f"Of {2 * n} blocked tasks, 1 are drawn" in page
    graph = page[page.index('id="waitfor-graph"'):page.index("</svg>", page.index(
        'id="waitfor-graph"'))]
    assert ">s0<" in graph and ">w1<" not in graph
    assert page.count("<tr><td>w") == n          # the table keeps every waiter


def test_a_delay_fault_is_drawn_as_a_delay(tmp_path):
    # The task sleeps where the plan delays it: its lane says "delay" (not a plain
    # sleep), then "io" for its own IO.
    sc, plan = tmp_path / "s.yaml", tmp_path / "p.yaml"
    sc.write_text("name: points\ntasks:\n  t:\n    - point: before_io\n    - io: 2\n")
    plan.write_text("faults: [{at: point, where: {name: before_io}, do: {delay: 40}}]\n")
    doc = json.loads(perfetto_json(vmemu.run(str(sc), faults=str(plan))))
    check_trace_events(doc)
    pid, tid = _tracks(doc)[1]["t"]
    waits = [e["name"] for e in doc["traceEvents"]
             if e["ph"] == "B" and (e["pid"], e.get("tid")) == (pid, tid)
             and e["name"] not in ("runnable", "running")]
    assert waits == ["delay", "io"]
