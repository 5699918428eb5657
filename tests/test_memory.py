"""The memory model: watermarks, GFP masks and scopes, direct reclaim and writeback,
"too small to fail" waits, kswapd, the lockdep hooks, and the 1999 deadlock report."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vmemu
from conftest import CONTRACT, ROOT
from vmemu._cli import main
from vmemu._scenario.model import (Limits, Loc, Memory, PageClass, Routine, Scenario, Step,
                                   TaskSpec)

MEMORY_CONTRACT = sorted(CONTRACT.glob("ext2_bitmap_reclaim*.yaml")) + [
    CONTRACT / "sleep_under_spinlock.yaml"]
EXT2 = ROOT / "scenarios" / "ext2_bitmap_reclaim.yaml"


def events(r, op=None, task=None):
    return [e for e in r.trace.events
            if (op is None or e[2] == op) and (task is None or e[1] == task)]


# ------------------------------------------------------------------ the contract
def test_memory_contract_files_are_there():
    assert len(MEMORY_CONTRACT) == 5 and all(p.exists() for p in MEMORY_CONTRACT)


@pytest.mark.parametrize("driver", ["trio", "direct"])
@pytest.mark.parametrize("path", MEMORY_CONTRACT, ids=lambda p: p.stem)
def test_memory_contract_reaches_expect_with_default_budget(path, driver):
    sc = vmemu.load(str(path))
    x = vmemu.explore(sc, driver=driver)          # default budget: 1000 schedules
    assert x.verdict == sc.expect, x.result.report()
    if sc.expect == "ok":
        assert x.schedules == 1000


def test_1999_report_shows_task_lock_alloc_writeback_and_replay(capsys):
    assert main(["run", str(EXT2)]) == 1
    out = capsys.readouterr().out
    rel = str(EXT2)
    assert "DEADLOCK" in out
    assert "wait-for cycle ext2_new_block -> ext2_new_block" in out
    assert ("ext2_new_block: blocked, waiting for semaphore superblock (held by "
            "ext2_new_block), holding superblock") in out
    # The stack, innermost first: the lock it waits on, the writeback routine, the
    # reclaim, the allocation that entered it, and the task's own line - all with lines.
    text = EXT2.read_text().splitlines()
    lock_line = text.index("    - lock: superblock", text.index("  writepage_shm:" + " " * 19
                                                         + "# page out one shm page: find "
                                                         "its block on disk")) + 1
    alloc_line = text.index("    - alloc: 1") + 1
    call_line = len(text) - text[::-1].index("    - call: bread")
    stack = [ln.strip() for ln in out.splitlines() if ln.strip().startswith(("at ", "in "))]
    assert stack[0] == f"at writepage_shm ({rel}:{lock_line}): lock superblock"
    assert stack[1].startswith(f"in direct reclaim ({rel}:{alloc_line}): write back dirty "
                               "shm page")
    assert re.fullmatch(r"in direct reclaim \(.*\): write back dirty shm page \d+ with "
                        r"writepage_shm \(class needs io\+fs; GFP_KERNEL allows it\)", stack[1])
    assert stack[2] == f"in bread ({rel}:{alloc_line}): alloc 1 (GFP_KERNEL) as bh"
    assert stack[3] == f"in ext2_new_block ({rel}:{call_line}): call bread"
    assert "memory: 2 of 32 pages free (watermarks min 2 low 4 high 8)" in out
    assert out.rstrip().splitlines()[-1].startswith(f"replay: vmemu run {rel}")


def test_1999_json_cycle_and_stack(capsys):
    assert main(["run", str(EXT2), "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["verdict"] == "deadlock"
    assert d["cycle"] == [{"task": "ext2_new_block", "waits_for": "semaphore superblock",
                           "held_by": "ext2_new_block", "edge": "lock",
                           "text": "ext2_new_block waits for semaphore superblock held by "
                                   "ext2_new_block"}]
    task = next(t for t in d["tasks"] if t["name"] == "ext2_new_block")
    assert [f["frame"] for f in task["stack"]] == ["ext2_new_block", "bread",
                                                  "direct reclaim", "writepage_shm"]
    assert d["memory"]["free"] == 2 and d["memory"]["writeback"] == 1


# ------------------------------------------------------------------ watermarks and masks
POOL = """
name: pool
memory:
  pages: 8
  watermarks: {{min: {min}, low: {low}, high: {high}}}
  classes: {{clean: {{}}}}
vars: {{got: 0}}
tasks:
  t:
{body}
"""


def pool(write_scenario, body, min=2, low=4, high=6):
    return write_scenario(POOL.format(min=min, low=low, high=high, body=body))


COUNT_ALLOCS = """\
    - repeat: 8
      do:
        - alloc: 1
          gfp: {gfp}
          may_fail: true
          as: p
        - if: "ok == 1"
          then: [{{add: {{got: 1}}}}]
    - assert: "got == {expect}"
"""


@pytest.mark.parametrize("gfp, expect", [("GFP_NOWAIT", 4), ("GFP_ATOMIC", 6)])
def test_non_sleeping_allocations_stop_at_their_watermark(write_scenario, gfp, expect):
    # min 4: GFP_NOWAIT stops at min, GFP_ATOMIC (__GFP_HIGH) may use half the reserve.
    path = pool(write_scenario, COUNT_ALLOCS.format(gfp=gfp, expect=expect), 4, 5, 6)
    r = vmemu.run(path)
    assert r.verdict == "ok", r.message
    assert len(events(r, "alloc_fail")) == 8 - expect


def test_pf_memalloc_may_use_the_whole_reserve(write_scenario):
    body = "    - flags: [PF_MEMALLOC]\n      do:\n" + "".join(
        "        " + ln + "\n" for ln in COUNT_ALLOCS.format(gfp="GFP_KERNEL", expect=8)
        .strip("\n").split("\n"))
    r = vmemu.run(pool(write_scenario, body))
    assert r.verdict == "ok", r.message
    assert r.extra["memory"]["free"] == 0
    assert not events(r, "reclaim")                    # never entered reclaim


def test_unhandled_failure_is_oom_naming_the_mask(write_scenario):
    body = "    - alloc: 7\n      gfp: GFP_NOWAIT\n      as: p\n"
    r = vmemu.run(pool(write_scenario, body))
    assert r.verdict == "oom"
    assert "GFP_NOWAIT" in r.message and "may_fail" in r.message


def test_allocation_larger_than_the_pool_is_oom_not_a_wait(write_scenario):
    r = vmemu.run(pool(write_scenario, "    - alloc: 9\n      as: p\n"))
    assert r.verdict == "oom" and "only 8 pages" in r.message


def test_allocation_to_min_is_fast_path_and_below_min_reclaims_to_low(write_scenario):
    body = """\
    - fill: {class: clean, pages: 6}
    - alloc: 1
      as: p
"""
    r = vmemu.run(pool(write_scenario, body))
    assert r.verdict == "ok"
    assert len(events(r, "reclaim")) == 1
    # Reclaim frees until free >= low + request (5), then the allocation takes one.
    assert r.extra["memory"]["free"] == 4
    assert r.extra["memory"]["cached"] == 3


def test_double_free_is_a_bug(write_scenario):
    path = write_scenario("""
name: df
memory: {pages: 8, watermarks: {min: 1, low: 2, high: 3}}
tasks:
  t: [{alloc: 1, as: p}, {free: p}, {free: p}]
""")
    r = vmemu.run(path)
    assert r.verdict == "bug" and "double free" in r.message


def test_python_double_free_of_a_handle_is_a_bug():
    async def body(ctx):
        h = await ctx.alloc(2)
        await ctx.free(h)
        await ctx.free(h)
    r = vmemu.run(_scenario({"t": body}))
    assert r.verdict == "bug" and "double free of 2 page(s)" in r.message


# ------------------------------------------------------------------ waiting for memory
HOLDER = """
name: wait
limits: {{hung_task_timeout: 100}}
memory: {{pages: 8, watermarks: {{min: 2, low: 4, high: 6}}}}
events: {{never: completion}}
tasks:
  holder:
    - alloc: 6
      as: big
    - {then}
    - free: big
  asker:
    - sleep: 1
    - alloc: 1
      as: p
    - free: p
"""


def test_too_small_to_fail_waits_and_retries_when_pages_are_freed(write_scenario):
    r = vmemu.run(write_scenario(HOLDER.format(then="sleep: 50")))
    assert r.verdict == "ok", r.message
    ops = [(e[1], e[2]) for e in r.trace.events]
    assert ops.index(("asker", "memwait")) < ops.index(("holder", "free")) \
        < ops.index(("asker", "alloc"))


def test_waiting_for_memory_forever_is_a_deadlock_naming_who_could_free(write_scenario):
    r = vmemu.run(write_scenario(HOLDER.format(then="wait: never")))
    assert r.verdict == "deadlock"
    asker = next(t for t in r.tasks if t["name"] == "asker")
    assert asker["waiting_for"].startswith("memory (2 of 8 pages free, min 2)")
    assert "could be freed by holder" in asker["waiting_for"]


def test_waiting_for_memory_too_long_is_a_hang(write_scenario):
    r = vmemu.run(write_scenario(HOLDER.format(then="sleep: 500")))
    assert r.verdict == "hang"
    assert r.message.startswith("INFO: task asker blocked for more than 100 ticks")


def test_nothing_reclaimable_and_nobody_holding_pages_says_so(write_scenario):
    path = write_scenario("""
name: starved
memory:
  pages: 8
  watermarks: {min: 2, low: 4, high: 6}
  classes: {d: {writeback: wb, needs: [io]}}
routines: {wb: [{io: 1}]}
tasks:
  t:
    - fill: {class: d, pages: 6}
    - flags: [PF_MEMALLOC_NOIO]
      do: [{alloc: 1, as: p}]
""")
    r = vmemu.run(path)
    assert r.verdict == "deadlock"
    assert "no task can free any" in r.message


# ------------------------------------------------------------------ reclaim and writeback
RECLAIM = """
name: reclaim
memory:
  pages: 16
  watermarks: {min: 2, low: 4, high: 6}
  classes:
    a: {writeback: wb_a, needs: [io, fs]}
    b: {writeback: wb_b, needs: [io]}
routines:
  wb_a: [{io: 1}]
  wb_b: [{io: 1}]
tasks:
  t:
    - fill: {class: b, pages: 3}
    - fill: {class: a, pages: 4}
    - fill: {class: b, pages: 7}
    - flags: [FLAGS]
      do:
        - alloc: 3
          as: p
"""


def test_reclaim_walks_classes_in_order_oldest_page_first(write_scenario):
    r = vmemu.run(write_scenario(RECLAIM.replace("flags: [FLAGS]", "flags: [PF_MEMALLOC_NOFS]")
                                 .replace("needs: [io, fs]", "needs: [io]")))
    assert r.verdict == "ok", r.message
    wb = [e[3] for e in events(r, "writeback")]
    # Class a first (listed first), then b; within b, the pages filled first (0-2).
    assert wb == ["a by wb_a: page 3", "a by wb_a: page 4", "a by wb_a: page 5",
                  "a by wb_a: page 6", "b by wb_b: page 0"]


def test_nofs_scope_skips_classes_that_need_fs_but_not_io(write_scenario):
    r = vmemu.run(write_scenario(RECLAIM.replace("[FLAGS]", "[PF_MEMALLOC_NOFS]")))
    assert r.verdict == "ok", r.message
    assert {e[3].split()[0] for e in events(r, "writeback")} == {"b"}
    reclaim = events(r, "reclaim")[0][3]
    assert "GFP_KERNEL in a PF_MEMALLOC_NOFS scope (__GFP_DIRECT_RECLAIM|__GFP_IO)" in reclaim


def test_noio_scope_skips_every_dirty_class(write_scenario):
    r = vmemu.run(write_scenario(RECLAIM.replace("[FLAGS]", "[PF_MEMALLOC_NOIO]")))
    assert r.verdict == "deadlock"
    assert not events(r, "writeback")


def test_writeback_has_its_own_handle_names(write_scenario):
    # The task holds `bh` when reclaim runs a writeback that allocates and frees its own
    # `bh`: the task's handle must survive (C locals of another function).
    path = write_scenario("""
name: handles
memory:
  pages: 16
  watermarks: {min: 2, low: 4, high: 6}
  classes: {d: {writeback: wb}}
routines:
  wb: [{alloc: 1, as: bh}, {free: bh}]
tasks:
  t:
    - alloc: 1
      as: bh
    - fill: {class: d, pages: 13}
    - alloc: 1
      as: other
    - free: other
    - free: bh
""")
    r = vmemu.run(path)
    assert r.verdict == "ok", r.message
    assert events(r, "writeback")
    assert r.extra["memory"]["allocated"] == 0


# ------------------------------------------------------------------ kswapd
KSWAPD = """
name: kswapd
limits: {hung_task_timeout: 100}
memory:
  pages: 32
  watermarks: {min: 2, low: 4, high: 8}
  kswapd: true
  classes: {clean: {}}
tasks:
  t:
    - sleep: 500
    - fill: {class: clean, pages: FILL}
    - sleep: 1
"""


def test_kswapd_wakes_below_low_and_reclaims_toward_high(write_scenario):
    r = vmemu.run(write_scenario(KSWAPD.replace("FILL", "29")))
    assert r.verdict == "ok", r.message
    assert events(r, "wake", "t") and events(r, "kswapd", "kswapd")
    assert r.extra["memory"]["free"] == 8
    assert any(t["name"] == "kswapd" for t in r.tasks)


def test_idle_kswapd_is_neither_hung_nor_in_the_way(write_scenario):
    r = vmemu.run(write_scenario(KSWAPD.replace("FILL", "2")))
    assert r.verdict == "ok", r.message            # 500 ticks idle > hung_task_timeout
    assert not events(r, task="kswapd")            # never woken, never ran
    assert r.trace.tape == []                      # and cost no scheduling decision


def test_kswapd_blocks_on_the_superblock_like_any_task():
    r = vmemu.run(str(ROOT / "scenarios" / "ext2_kswapd_superblock.yaml"))
    assert r.verdict == "deadlock"
    ks = next(t for t in r.tasks if t["name"] == "kswapd")
    assert ks["state"] == "blocked"
    assert ks["waiting_for"] == "semaphore superblock (held by ext2_new_block)"
    assert [f["frame"] for f in ks["stack"]] == ["kswapd", "balance_pgdat", "writepage_shm"]


def test_deadlock_chain_through_memory_and_kswapd():
    path = ROOT / "scenarios" / "ext2_bitmap_reclaim_pf_memalloc_exhausted.yaml"
    r = vmemu.run(str(path))
    assert r.verdict == "deadlock"
    assert r.message == "wait-for cycle ext2_new_inode -> kswapd -> ext2_new_inode"
    assert r.cycle[0]["task"] == "ext2_new_inode"
    assert r.cycle[0]["waits_for"].startswith("memory (0 of 32 pages free")
    assert r.cycle[1] == {"task": "kswapd", "waits_for": "semaphore superblock",
                          "held_by": "ext2_new_inode", "edge": "lock",
                          "text": "kswapd waits for semaphore superblock held by "
                                  "ext2_new_inode"}
    assert r.cycle[0]["edge"] == "memory"
    assert r.cycle[0]["text"].endswith(", which kswapd could free")
    assert "could be freed by kswapd" in r.report()


@pytest.mark.parametrize("name", ["ext2_kswapd_superblock", "mmap_write_truncate_lock"])
def test_memory_runs_are_the_same_on_every_driver(name):
    path = str(ROOT / "scenarios" / f"{name}.yaml")
    for seed in range(4):
        hashes = {vmemu.run(path, seed=seed, driver=d).trace_hash
                  for d in ("trio", "direct", "asyncio")}
        assert len(hashes) == 1


# ------------------------------------------------------------------ lockdep's hooks
class Recorder:
    """Every observer call, as (hook, task, detail)."""

    def __init__(self):
        self.calls = []

    def acquiring(self, t, lock, mode):
        pass

    def acquired(self, t, lock, mode):
        self.calls.append(("acquired", t.name, lock.name))

    def released(self, t, lock, mode):
        pass

    def reclaim_point(self, t, gfp):
        self.calls.append(("reclaim_point", t.name, gfp))

    def writeback_begin(self, t, cls):
        self.calls.append(("writeback_begin", t.name, cls))

    def writeback_end(self, t, cls):
        self.calls.append(("writeback_end", t.name, cls))


def _scenario(tasks, *, pages=64, wm=(2, 4, 8), classes=(), routines=None, kswapd=False,
              locks=None):
    loc = Loc("<test>", 1)
    return Scenario(name="py", path="<test>", content_hash="0",
                    memory=Memory(pages, *wm, kswapd=kswapd, classes=classes),
                    routines={n: Routine(n, steps) for n, steps in (routines or {}).items()},
                    locks=locks or {},
                    limits=Limits(steps=5000),
                    tasks=tuple(TaskSpec(name=n, fn=f, loc=loc) for n, f in tasks.items()))


def test_reclaim_points_are_reported_even_with_plenty_of_memory():
    async def body(ctx):
        for gfp in ("GFP_KERNEL", "GFP_ATOMIC", "GFP_NOFS"):
            await ctx.free(await ctx.alloc(1, gfp))
        with ctx.flags("PF_MEMALLOC_NOIO"):
            await ctx.free(await ctx.alloc(1))
        with ctx.flags("PF_MEMALLOC"):
            await ctx.free(await ctx.alloc(1))
    rec = Recorder()
    r = vmemu.run(_scenario({"t": body}), observers=[rec])
    assert r.verdict == "ok"
    assert [c[2] for c in rec.calls] == [
        frozenset({"__GFP_DIRECT_RECLAIM", "__GFP_IO", "__GFP_FS"}),
        frozenset({"__GFP_DIRECT_RECLAIM", "__GFP_IO"}),
        frozenset({"__GFP_DIRECT_RECLAIM"})]          # GFP_ATOMIC, PF_MEMALLOC: none


SHM = (PageClass("shm", "writepage", ("io", "fs")),)
WRITEPAGE = {"writepage": (Step("lock", Loc("<test>", 2), target="sb"),
                           Step("alloc", Loc("<test>", 3), n=1, as_="bh"),
                           Step("free", Loc("<test>", 4), target="bh"),
                           Step("unlock", Loc("<test>", 5), target="sb"))}


def test_writeback_is_bracketed_for_lockdep():
    async def body(ctx):
        await ctx.fill("shm", 14)
        await ctx.free(await ctx.alloc(1))
    rec = Recorder()
    r = vmemu.run(_scenario({"t": body}, pages=16, classes=SHM, routines=WRITEPAGE,
                            locks={"sb": "semaphore"}), observers=[rec])
    assert r.verdict == "ok", r.message
    wb = [c for c in rec.calls if c[0] != "reclaim_point"]
    assert wb[:3] == [("writeback_begin", "t", "shm"), ("acquired", "t", "sb"),
                      ("writeback_end", "t", "shm")]


def test_synthetic_writeback_runs_the_routine_without_memory_pressure():
    seen = {}

    async def body(ctx):
        mm = ctx.k.mm
        await ctx.fill("shm", 3)
        before = mm.accounting()
        await mm.synthetic_writeback(ctx.task, "shm")
        seen["same"] = before == mm.accounting()
        seen["pf"] = ctx.task.has_flag("PF_MEMALLOC")
    rec = Recorder()
    r = vmemu.run(_scenario({"t": body}, classes=SHM, routines=WRITEPAGE,
                            locks={"sb": "semaphore"}), observers=[rec])
    assert r.verdict == "ok", r.message
    assert seen == {"same": True, "pf": False}     # no page moved; the scope ended
    assert [c for c in rec.calls if c[0] != "reclaim_point"] == [
        ("writeback_begin", "t", "shm"), ("acquired", "t", "sb"),
        ("writeback_end", "t", "shm")]
    assert not events(r, "reclaim")


# ------------------------------------------------------------------ the property
GFPS = ("GFP_KERNEL", "GFP_NOFS", "GFP_NOIO", "GFP_ATOMIC", "GFP_NOWAIT")
op = st.one_of(
    st.tuples(st.just("alloc"), st.integers(1, 4), st.sampled_from(GFPS), st.booleans()),
    st.tuples(st.just("free"), st.integers(0, 7)),
    st.tuples(st.just("fill"), st.sampled_from(["dirty", "fsdirty", "clean"]),
              st.integers(2, 8)),
    st.tuples(st.just("scope"), st.sampled_from(["PF_MEMALLOC", "PF_MEMALLOC_NOIO",
                                                 "PF_MEMALLOC_NOFS"])),
)
program = st.lists(op, min_size=3, max_size=12)


def _task(ops, pools):
    async def body(ctx):
        pools.append(ctx.k.mm)
        handles = []
        for o in ops:
            if o[0] == "alloc":
                h = await ctx.alloc(o[1], o[2], may_fail=o[3])
                if h is not None:
                    handles.append(h)
            elif o[0] == "free" and handles:
                await ctx.free(handles.pop(o[1] % len(handles)))
            elif o[0] == "fill":
                await ctx.fill(o[1], o[2])
            elif o[0] == "scope":
                with ctx.flags(o[1]):
                    h = await ctx.alloc(1, may_fail=True)
                    await ctx.free(h)
            ctx.k.mm.check()
        for h in handles:
            await ctx.free(h)
    return body


PROP_CLASSES = (PageClass("clean"), PageClass("dirty", "wb", ("io",)),
                PageClass("fsdirty", "wb", ("io", "fs")))
# The writeback routine allocates: were PF_MEMALLOC not honoured, it would recurse.
PROP_ROUTINES = {"wb": (Step("alloc", Loc("<p>", 1), n=1, as_="b", may_fail=True),
                        Step("io", Loc("<p>", 2), n=1),
                        Step("free", Loc("<p>", 3), target="b"))}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=program, b=program, kswapd=st.booleans(), seed=st.integers(0, 2**16))
def test_pages_are_conserved_and_reclaim_never_recurses(a, b, kswapd, seed):
    pools: list = []

    def check(ev):
        # After every event of the run, not only between a task's own operations.
        if pools:
            pools[0].check()
    sc = _scenario({"a": _task(a, pools), "b": _task(b, pools)}, pages=12, wm=(1, 3, 5),
                   classes=PROP_CLASSES, routines=PROP_ROUTINES, kswapd=kswapd)
    r = vmemu.run(sc, seed=seed, driver="direct", log=check)
    assert r.verdict in ("ok", "oom", "deadlock", "hang", "livelock"), r.message
    mm = pools[0]
    mm.check()
    acc = mm.accounting()
    assert sum(acc.values()) == 12
    if r.verdict == "ok":
        # a and b (tids 0, 1) freed everything; kswapd, a daemon, may be mid-writeback.
        assert mm.held.get(0, 0) == mm.held.get(1, 0) == 0
        assert kswapd or acc["allocated"] == acc["writeback"] == 0
    # Reclaim never nests within one task (the PF_MEMALLOC guard).
    depth: dict[str, int] = {}
    for _, task, name, _, _ in r.trace.events:
        if name == "reclaim":
            depth[task] = depth.get(task, 0) + 1
            assert depth[task] == 1, r.trace.events
        elif name == "reclaim_done":
            depth[task] -= 1


def test_an_empty_writeback_routine_still_costs_a_step_a_page(write_scenario):
    # Direct reclaim toward low writes back about a thousand pages with a routine that
    # does nothing: each page is still charged to the step budget (a reclaim of millions
    # of pages must meet the budget, never the soft-lockup watchdog).
    path = write_scenario("""
limits: {steps: 100}
memory:
  pages: 4096
  watermarks: {min: 8, low: 1000, high: 3000}
  classes: {dirty: {writeback: wb}}
routines:
  wb: []
tasks:
  t: [{fill: {class: dirty, pages: 4087}}, {alloc: 2, as: p}, {free: p}]
""")
    r = vmemu.run(path, driver="direct")
    assert (r.verdict, r.message) == ("livelock", "step budget of 100 exhausted while t was "
                                                  "still running")
    # (The fill and the allocation take the budget's other steps.)
    assert sum(1 for e in r.trace.events if e[2] == "writeback") == 98
