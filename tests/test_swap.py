"""Swap-out IO clustering (the end of the 1999 thread): address spaces, the swap device,
the three swap-out policies, the metrics of every run and ``vmemu measure``.

The acceptance relationships are measured here, as ratios and inequalities between
policies in one scenario (never absolute numbers): docs/swapout.md shows the table.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vmemu
from conftest import ROOT
from vmemu._cli import main
from vmemu._kernel.drivers.direct import run_direct
from vmemu._measure import measure, parse_vary
from vmemu._run import new_kernel
from vmemu._scenario.yaml_loader import _Loader
from vmemu._strategies import make_strategy

CLUSTER = ROOT / "scenarios" / "swapout_clustering.yaml"
POLICIES = ("vmscan", "shrink_mmap", "vmscan_alloc_deferred_io")
POLICY = "memory.swapout=" + ",".join(POLICIES)
TOUCH_WRITE = "tasks.proc.steps.2.touch.order"     # the write pass of each process
TOUCH_READ = "tasks.proc.steps[4].touch.order"      # the re-read


@functools.cache
def table(*vary: str) -> dict[tuple, dict]:
    """``measure`` of the clustering scenario: values of the varied keys -> metrics."""
    out = measure(str(CLUSTER), [parse_vary(v) for v in vary])
    rows = {}
    for row in out["variants"]:
        assert row["verdict"] == "ok", row
        rows[tuple(row["vary"].values())] = row["metrics"]
    return rows


def by_policy(*vary: str) -> dict[str, dict]:
    """The metrics of each policy, the other keys held at one value each."""
    rows = table(POLICY, *vary)
    return {key[0]: m for key, m in rows.items()}


def run_kernel(path: str, seed: int = 0):
    k = new_kernel(vmemu.load(path), make_strategy("random", seed))
    run_direct(k)
    return k


# ------------------------------------------------------------------ the setup
def test_the_clustering_scenario_forces_96_pages_out_under_every_policy():
    for policy in POLICIES:
        text = CLUSTER.read_text().replace("swapout: vmscan", f"swapout: {policy}")
        r = vmemu.run(_Loader(str(CLUSTER)).scenario(text.encode()), driver="direct")
        assert r.verdict == "ok", r.report()
        ev = r.trace.events
        got = next(i for i, e in enumerate(ev) if e[1] == "pressure" and e[2] == "alloc")
        written = sum(int(e[3].split("(")[1].split(")")[0]) for e in ev[:got]
                      if e[2] == "swap_write")
        assert written == 96, policy       # what pressure's allocation forced out
        assert [e[3].split(":")[0] for e in ev if e[2] == "touch"][:2] == \
            ["heap 0..63 (write)", "heap 0..63 (write)"]


def test_two_tasks_touching_in_turn_get_alternating_frames(write_scenario):
    path = write_scenario("""
memory: {pages: 64}
tasks:
  p:
    count: 2
    steps:
      - sleep: "{i}"
      - mmap: {region: heap, pages: 8}
      - touch: {region: heap, write: true, think: 2}
""")
    vm = run_kernel(path).mm.vm
    owner = {f: (p.region.mm.name, p.index) for f, p in vm.frames.items()}
    assert [owner[f] for f in range(6)] == [("p0", 0), ("p1", 0), ("p0", 1), ("p1", 1),
                                            ("p0", 2), ("p1", 2)]


# ------------------------------------------------------------------ the acceptance
def test_vmscan_writes_in_at_most_a_quarter_of_the_requests_of_deferred_io():
    m = by_policy()          # the scenario's queue holds 1 request: a small window
    assert m["vmscan"]["pages_written"] == m["vmscan_alloc_deferred_io"]["pages_written"]
    assert 4 * m["vmscan"]["write_requests"] <= m["vmscan_alloc_deferred_io"]["write_requests"]
    # ... and the device is busy longer for the same pages: a seek per small request.
    assert m["vmscan"]["device_busy_ticks"] < m["vmscan_alloc_deferred_io"]["device_busy_ticks"]
    assert m["vmscan"]["reclaim_wait_ticks_max"] < \
        m["vmscan_alloc_deferred_io"]["reclaim_wait_ticks_max"]


def test_shrink_mmap_writes_in_few_requests_but_its_reread_scatters():
    m = by_policy()
    shrink, vmscan = m["shrink_mmap"], m["vmscan"]
    # Its slots follow physical order, which is the order it writes in: few requests.
    assert shrink["write_requests"] <= vmscan["write_requests"]
    assert 4 * shrink["write_requests"] <= m["vmscan_alloc_deferred_io"]["write_requests"]
    # But a process's virtually adjacent pages have slots two apart: its re-read needs
    # more requests, and half of each readahead window is the other process's pages.
    assert shrink["read_requests"] >= 2 * vmscan["read_requests"]
    assert shrink["swapin_faults"] > vmscan["swapin_faults"]
    assert shrink["readahead_wasted"] > vmscan["readahead_wasted"]
    # Deferred IO allocated its slots in virtual order, as vmscan: it re-reads as well.
    assert m["vmscan_alloc_deferred_io"]["read_requests"] == vmscan["read_requests"]


def test_a_bigger_queue_recovers_the_deferred_writes_clustering():
    rows = table(POLICY, "memory.swap.device.queue=1,2,64")
    deferred = {q: rows[("vmscan_alloc_deferred_io", q)]["write_requests"] for q in (1, 2, 64)}
    vmscan = {q: rows[("vmscan", q)]["write_requests"] for q in (1, 2, 64)}
    # vmscan does not need the window: its writes arrive in slot order.
    assert vmscan[1] == vmscan[2] == vmscan[64]
    # Two processes interleave two streams of slots: a window of 2 lets both grow.
    recovered = (deferred[1] - deferred[2]) / (deferred[1] - vmscan[1])
    assert recovered >= 0.9
    assert deferred[64] <= deferred[2]


def test_one_process_makes_the_policies_agree_and_random_order_narrows_the_reread_gap():
    one = by_policy("tasks.proc.count=1")
    keys = ("write_requests", "read_requests", "readahead_wasted", "device_busy_ticks")
    assert len({tuple(m[k] for k in keys) for m in one.values()}) == 1
    assert one["vmscan"]["pages_written"] > 0
    seq = by_policy()
    rnd = by_policy(f"{TOUCH_WRITE}=random", f"{TOUCH_READ}=random")
    gap = {name: m["shrink_mmap"]["read_requests"] / m["vmscan"]["read_requests"]
           for name, m in (("sequential", seq), ("random", rnd))}
    assert 1 <= gap["random"] < 0.6 * gap["sequential"]
    # (What does not shrink: deferred IO still writes in physical order; see the docs.)
    assert rnd["vmscan_alloc_deferred_io"]["write_requests"] > \
        4 * rnd["vmscan"]["write_requests"]


def test_measure_json_is_the_same_across_runs_drivers_and_hash_seeds():
    args = ["measure", str(CLUSTER), "--vary", POLICY, "--json"]
    outs = []
    for seed, driver in (("1", "trio"), ("2", "asyncio")):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        p = subprocess.run([sys.executable, "-m", "vmemu", *args, "--driver", driver],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        assert p.returncode == 0, p.stderr
        outs.append(p.stdout)
    direct = json.dumps(measure(str(CLUSTER), [parse_vary(POLICY)]), indent=2) + "\n"
    assert outs[0] == outs[1] == direct
    assert "driver" not in direct


def test_the_numbers_do_not_depend_on_the_seed():
    sc = vmemu.load(str(CLUSTER))
    got = {json.dumps(vmemu.run(sc, seed=s, driver="direct").extra["metrics"])
           for s in range(4)}
    assert len(got) == 1


# ------------------------------------------------------------------ measure, the CLI
def test_measure_prints_one_row_per_variant_and_csv(capsys):
    assert main(["measure", str(CLUSTER), "--vary", POLICY, "--vary",
                 "memory.swap.device.queue=1,2", "--metrics",
                 "write_requests,read_requests"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["memory.swapout", "memory.swap.device.queue", "verdict",
                                "write_requests", "read_requests"]
    assert [ln.split()[:2] for ln in lines[2:]] == [[p, q] for p in POLICIES
                                                    for q in ("1", "2")]
    assert main(["measure", str(CLUSTER), "--csv", "--metrics", "pages_written"]) == 0
    assert capsys.readouterr().out.splitlines() == ["verdict,pages_written", "ok,128"]


@pytest.mark.parametrize("vary, needle", [
    ("memory.swapot=vmscan", "(did you mean 'swapout'?)"),
    ("memry.swapout=vmscan", "no key 'memry' in"),
    ("memory.swapout=vmscn", "(did you mean 'vmscan'?)"),
    ("tasks.proc.steps[9].touch.order=random", "has no item [9] (it has 6: 0..5)"),
    ("memory.swapout", "expected KEY=V1,V2"),
    ("memory.swap.slots=0", "slots must be a positive integer"),
])
def test_measure_bad_vary_is_one_line_exit_2(capsys, vary, needle):
    assert main(["measure", str(CLUSTER), "--vary", vary]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--vary" in err and needle in err, err


def test_measure_an_unknown_metric_is_one_line(capsys):
    assert main(["measure", str(CLUSTER), "--metrics", "write_reqs"]) == 2
    assert "did you mean 'write_requests'" in capsys.readouterr().err


# ------------------------------------------------------------------ bad scenarios
_BASE = """memory:
  pages: 64
  swapout: {swapout}
  swap: {{slots: {slots}}}
tasks:
  t:
    - mmap: {{region: heap, pages: 64}}
    - touch: {{region: {region}, pages: "{pages}", write: true}}
"""


@pytest.mark.parametrize("fields, where, needle", [
    ({"region": "hep"}, ":8: tasks.t.steps[1].touch.region:",
     "touch of region 'hep', which no mmap step maps (did you mean 'heap'?)"),
    ({"pages": "0..127"}, ":8: tasks.t.steps[1].touch.pages:",
     "pages 0..127 are out of bounds: region 'heap' has 64 pages (0..63)"),
    ({"pages": "9..3"}, ":8: tasks.t.steps[1].touch.pages:", "is empty"),
    ({"swapout": "shrink_mmp"}, ":3: memory.swapout:",
     "unknown swap-out policy 'shrink_mmp' (did you mean 'shrink_mmap'?)"),
    ({"slots": 0}, ":4: memory.swap.slots:", "slots must be a positive integer, got 0"),
    ({"slots": 10**8}, ":4: memory.swap.slots:", "at most 10_000_000"),
])
def test_bad_swap_input_is_one_line_with_file_line_key(write_scenario, capsys, fields,
                                                       where, needle):
    values = {"region": "heap", "pages": "0..63", "swapout": "vmscan", "slots": 16, **fields}
    path = write_scenario(_BASE.format(**values))
    assert main(["run", path]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and where in err and needle in err, err


@pytest.mark.parametrize("step, needle", [
    ("touch: {region: heap, order: strid:2}", "unknown touch order 'strid:2' (did you mean "
     "'stride'?)"),
    ("touch: {region: heap, order: 'stride:0'}", "stride needs a step of at least 1"),
    ("touch: {region: heap, writ: true}", "unknown option 'writ' in touch (did you mean "
     "'write'?)"),
    ("mmap: {region: heap}", "mmap needs pages:"),
    ("touch: {pages: 1}", "touch needs region:"),
])
def test_bad_mapping_steps_are_one_line(write_scenario, capsys, step, needle):
    path = write_scenario(f"tasks:\n  t:\n    - mmap: {{region: heap, pages: 4}}\n"
                          f"    - {step}\n")
    assert main(["run", path]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and ":4: tasks.t.steps[1]" in err, err


def test_touching_a_region_the_task_has_not_mapped_is_a_run_time_bug(write_scenario):
    path = write_scenario("""
tasks:
  a: [{mmap: {region: heap, pages: 4}}]
  b: [{touch: {region: heap, pages: 2}}]
""")
    r = vmemu.run(path, driver="direct")
    assert r.verdict == "bug" and "b touched region 'heap', which it has not mapped" in \
        r.message


# ------------------------------------------------------------------ composition
FULL = ROOT / "scenarios" / "swapout_full_oom.yaml"
NOIO = ROOT / "scenarios" / "swapout_memalloc_noio.yaml"


def variant(write_scenario, path, old: str, new: str) -> str:
    text = path.read_text()
    assert text.count(old) == 1
    return write_scenario(text.replace(old, new), name=path.name)


def test_a_full_swap_device_is_oom_reported_with_the_swap_state(write_scenario):
    r = vmemu.run(FULL, driver="direct")
    assert r.verdict == "oom"
    assert "swap 16 of 16 slots used" in r.message and "hog: page fault at" in r.message
    assert r.extra["memory"]["swap"] == {"slots": 16, "used": 16, "policy": "vmscan"}
    assert "swap 16 of 16 slots used (vmscan)" in r.report()
    # With room in swap the same program runs to the end.
    ok = variant(write_scenario, FULL, "slots: 16", "slots: 64")
    assert vmemu.run(ok, driver="direct").verdict == "ok"


def test_a_swap_write_is_io_so_a_noio_scope_cannot_swap_out(write_scenario):
    r = vmemu.run(NOIO, driver="direct")
    assert r.verdict == "deadlock"
    assert "may not write back 46 dirty anonymous pages to swap (needs io)" in r.report()
    assert r.extra["metrics"]["pages_written"] == 0
    # kswapd reclaims with GFP_KERNEL: it swaps out, and the driver gets its pages.
    fixed = variant(write_scenario, NOIO, "kswapd: false", "kswapd: true")
    r = vmemu.run(fixed, driver="direct")
    assert r.verdict == "ok" and r.extra["metrics"]["pages_written"] > 0
    assert {e[1] for e in r.trace.events if e[2] == "swap_write"} <= {"kswapd", "swap_io"}


def test_a_gfp_noio_allocation_does_not_swap_but_gfp_kernel_does(write_scenario):
    text = """
memory:
  pages: 40
  watermarks: {min: 2, low: 4, high: 8}
  swap: {slots: 64}
tasks:
  app:
    - mmap: {region: heap, pages: 36}
    - touch: {region: heap, write: true}
    - alloc: 8
      gfp: GFP
      may_fail: true
    - assert: "ok == OK"
"""
    assert vmemu.run(write_scenario(text.replace("GFP", "GFP_NOIO").replace("OK", "0")),
                     driver="direct").verdict == "ok"
    r = vmemu.run(write_scenario(text.replace("GFP", "GFP_KERNEL").replace("OK", "1")),
                  driver="direct")
    assert r.verdict == "ok" and r.extra["metrics"]["pages_written"] >= 8


def test_scenarios_without_swap_report_zero_metrics_and_no_swap_section():
    r = vmemu.run(ROOT / "scenarios" / "ext2_bitmap_ample_memory.yaml", driver="direct")
    m = r.extra["metrics"]
    assert m["swapped"] is False and m["write_requests"] == m["pages_read"] == 0
    assert "write request" not in r.report() and "swap" not in r.extra["memory"]
    assert "anon" not in r.extra["memory"]
    assert json.loads(json.dumps(r.to_json()))["metrics"] == m


def test_the_report_of_a_run_that_swapped_says_so(capsys):
    assert main(["run", str(CLUSTER)]) == 0
    out = capsys.readouterr().out
    assert "  swap (vmscan): 8 write requests for 128 pages (16.0 per request)" in out


# ------------------------------------------------------------------ drivers, Python
def test_swap_runs_are_the_same_on_every_driver_and_replay(tmp_path):
    sc = vmemu.load(str(CLUSTER))
    base = vmemu.run(sc, seed=1, driver="direct")
    for driver in ("trio", "asyncio"):
        r = vmemu.run(sc, seed=1, driver=driver)
        assert (r.trace_hash, r.extra["metrics"]) == (base.trace_hash, base.extra["metrics"])
    saved = base.trace.save(tmp_path / "t.json")
    assert vmemu.replay(saved, driver="trio").trace_hash == base.trace_hash


def test_python_scenarios_map_and_touch_like_yaml_ones(tmp_path, write_scenario):
    py = tmp_path / "swap.py"
    py.write_text('''
memory = {"pages": 40, "watermarks": {"min": 2, "low": 4, "high": 8},
          "swap": {"slots": 64, "readahead": 4}}

async def t(ctx):
    await ctx.mmap("heap", 48)
    await ctx.touch("heap", write=True)
    await ctx.touch("heap", (0, 15), order="stride:4")

tasks = {"t": t}
''')
    yaml = write_scenario("""
memory:
  pages: 40
  watermarks: {min: 2, low: 4, high: 8}
  swap: {slots: 64, readahead: 4}
tasks:
  t:
    - mmap: {region: heap, pages: 48}
    - touch: {region: heap, write: true}
    - touch: {region: heap, pages: "0..15", order: "stride:4"}
""")
    a, b = vmemu.run(str(py), driver="direct"), vmemu.run(yaml, driver="direct")
    assert a.verdict == b.verdict == "ok"
    assert a.extra["metrics"] == b.extra["metrics"] and a.extra["metrics"]["swapped"]


def test_touch_orders():
    from vmemu._kernel._anon import touch_order
    assert list(touch_order(2, 6, "sequential", 0)) == [2, 3, 4, 5, 6]
    assert list(touch_order(2, 6, "reverse", 0)) == [6, 5, 4, 3, 2]
    assert list(touch_order(0, 6, "stride", 3)) == [0, 3, 6, 1, 4, 2, 5]
    perm = list(touch_order(0, 63, "random", 0))
    assert sorted(perm) == list(range(64)) and perm != sorted(perm)
    assert perm == list(touch_order(0, 63, "random", 0)) != list(touch_order(0, 63,
                                                                             "random", 1))


# ------------------------------------------------------------------ invariants
@st.composite
def swap_scenarios(draw):
    pages = draw(st.integers(12, 48))
    policy = draw(st.sampled_from(POLICIES))
    dev = {k: draw(st.integers(a, b)) for k, (a, b) in
           {"seek": (0, 4), "per_page": (1, 3), "max_request": (1, 8), "queue": (1, 4)}.items()}
    text = ["limits: {steps: 3000, hung_task_timeout: 100000}",
            f"memory:\n  pages: {pages}\n  watermarks: {{min: 2, low: 3, high: 6}}",
            f"  kswapd: {draw(st.booleans())}".lower(), f"  swapout: {policy}",
            f"  swap: {{slots: {draw(st.integers(1, 96))}, readahead: "
            f"{draw(st.integers(1, 8))}, device: {json.dumps(dev)}}}", "tasks:"]
    for i in range(draw(st.integers(1, 3))):
        size = draw(st.integers(1, 40))
        text += [f"  t{i}:", f"    - mmap: {{region: heap, pages: {size}}}"]
        for _ in range(draw(st.integers(1, 3))):
            lo = draw(st.integers(0, size - 1))
            hi = draw(st.integers(lo, size - 1))
            order = draw(st.sampled_from(["sequential", "reverse", "random", "stride:3"]))
            touch = (f"touch: {{region: heap, pages: \"{lo}..{hi}\", order: \"{order}\", "
                     f"write: {str(draw(st.booleans())).lower()}, think: "
                     f"{draw(st.integers(0, 2))}}}")
            if draw(st.booleans()):
                touch = f"flags: [PF_MEMALLOC_NOIO]\n      do: [{{{touch}}}]"
            text.append(f"    - {touch}")
    return "\n".join(text) + "\n"


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=swap_scenarios(), seed=st.integers(0, 3))
def test_swap_keeps_every_page_and_slot_accounted_for(tmp_path_factory, text, seed):
    path = tmp_path_factory.mktemp("swap") / "s.yaml"
    path.write_text(text)
    k = run_kernel(str(path), seed)
    assert k.outcome.verdict in ("ok", "deadlock", "oom", "livelock"), k.outcome.message
    k.mm.check()                      # every page in exactly one state
    vm = k.mm.vm
    dev = vm.dev
    assert sum(dev.map) == dev.used == len(dev.owner) <= dev.slots
    assert all(p.slot == s for s, p in dev.owner.items())
    assert sorted(vm.frames) == vm.order
    assert sorted(f for f, p in vm.frames.items() if not p.mapped) == vm.cache
    for m in vm.mms:
        assert m.rss == sum(1 for p in vm.frames.values() if p.mapped and p.region.mm is m)
    stats = vm.stats
    assert stats["readahead_used"] <= stats["readahead_pages"] <= stats["pages_read"]
    assert vm.writing >= 0 and vm.marked >= 0
    if k.outcome.verdict == "deadlock":   # nothing in flight: a deadlock is for real
        assert not dev.in_flight() and vm.writing == 0


def test_a_run_that_ends_with_swap_io_queued_counts_only_what_the_device_started(
        tmp_path):
    # Found by the invariant test above: t1's last fault reads ahead, and the run ends
    # before the device starts on some of it. Requests and pages count together.
    path = tmp_path / "s.yaml"
    path.write_text("""\
limits: {steps: 3000, hung_task_timeout: 100000}
memory:
  pages: 12
  watermarks: {min: 2, low: 3, high: 6}
  kswapd: false
  swapout: vmscan
  swap: {slots: 12, readahead: 3, device: {seek: 0, per_page: 1, max_request: 1, queue: 1}}
tasks:
  t0:
    - mmap: {region: heap, pages: 1}
    - repeat: 3
      do: [{touch: {region: heap, pages: "0..0"}}]
  t1:
    - mmap: {region: heap, pages: 19}
    - touch: {region: heap, pages: "0..18", order: reverse, write: true}
    - touch: {region: heap, pages: "17..17"}
""")
    for seed in range(4):
        k = run_kernel(str(path), seed)
        st = k.mm.vm.stats
        assert k.outcome.verdict == "ok"
        assert st["readahead_used"] <= st["readahead_pages"] <= st["pages_read"]
        assert st["pages_read"] == st["read_requests"]          # max_request: 1


MIXED = """\
%s
memory:
  pages: 64
  watermarks: {min: 4, low: 8, high: 16}
  classes: {cache: {}}
  swap: {slots: 64%s}
  swapout: vmscan
tasks:
  t:
    - fill: {class: cache, pages: 6}
    - mmap: {region: heap, pages: 60}
    - touch: {region: heap, pages: "0..59", write: true}
%s"""


def test_a_reclaim_that_drops_cache_and_swaps_out_counts_both(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED % ("", "", ""))
    r = vmemu.run(str(path), driver="direct")
    ops = [(e[2], e[3]) for e in r.trace.events if e[2].startswith("reclaim")]
    # The first reclaim reaches its target (9 free) with cache alone: no swap-out. The
    # second frees the last cache page, then swaps out 32 pages.
    assert ops[:6] == [("reclaim", "for 1: 4 free, page fault, GFP_KERNEL"),
                       ("reclaim_clean", "5 cache: 9 free"),
                       ("reclaim_done", "freed 5: 9 free"),
                       ("reclaim", "for 1: 4 free, page fault, GFP_KERNEL"),
                       ("reclaim_clean", "1 cache: 5 free"),
                       ("reclaim_done", "freed 33: 37 free")]


def test_a_task_hung_in_swap_out_shows_it_in_its_stack(tmp_path):
    path = tmp_path / "slow.yaml"
    path.write_text(MIXED % ("limits: {hung_task_timeout: 50}", ", device: {seek: 1000}",
                             "  ticker:\n    - repeat: 200\n      do: [{sleep: 10}]\n"))
    r = vmemu.run(str(path), driver="direct")
    assert r.verdict == "hang" and r.message.startswith("INFO: task t blocked for more than "
                                                        "50 ticks waiting for swap IO")
    [t] = [t for t in r.tasks if t["name"] == "t"]
    assert [f["step"] for f in t["stack"]] == [
        "touch heap 0..59 (write, sequential)",
        "swap out anonymous pages (vmscan; page fault, GFP_KERNEL)"]
