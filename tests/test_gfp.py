"""GFP masks and task-flag scopes, seen from what reclaim does: which dirty classes an
allocation may write back, how deep into the reserve it may go, and how its mask reads.

Each case is one task, so one run shows it: the task fills the pool with dirty pages down
to ``min``, then makes one more allocation (``may_fail``) with the mask under test.
"""

from __future__ import annotations

import pytest

import vmemu
from vmemu._lockdep import lockdep

MASKS = ("GFP_KERNEL", "GFP_NOFS", "GFP_NOIO", "GFP_ATOMIC", "GFP_NOWAIT")
NEEDS = ("[]", "[io]", "[io, fs]")

# What reclaim does with a dirty class that needs NEEDS, for each mask: "writeback" (it
# may write the class back), "skip" (it may reclaim but not this class: the allocation
# fails), "reserve" (it may not reclaim but may dip into the reserve: __GFP_HIGH),
# "fail" (neither).
EXPECTED = {
    "GFP_KERNEL": ("writeback", "writeback", "writeback"),
    "GFP_NOFS": ("writeback", "writeback", "skip"),
    "GFP_NOIO": ("writeback", "skip", "skip"),
    "GFP_ATOMIC": ("reserve", "reserve", "reserve"),
    "GFP_NOWAIT": ("fail", "fail", "fail"),
}
# Inside a scope, GFP_KERNEL behaves as the scope's per-call mask.
SCOPES = {"PF_MEMALLOC_NOIO": "GFP_NOIO", "PF_MEMALLOC_NOFS": "GFP_NOFS"}


def scenario(needs: str, gfp: str, scope: str | None = None) -> str:
    alloc = f"{{alloc: 1, gfp: {gfp}, may_fail: true, as: p}}"
    step = f"{{flags: [{scope}], do: [{alloc}]}}" if scope else alloc
    return f"""
memory:
  pages: 16
  watermarks: {{min: 4, low: 6, high: 8}}
  classes:
    dirty: {{writeback: wb, needs: {needs}}}
routines:
  wb: [yield]
tasks:
  t: [{{fill: {{class: dirty, pages: 12}}}}, {step}, {{free: p}}]
"""


def what_happened(r: vmemu.Result) -> str:
    ops = [ev[2] for ev in r.trace.events]
    assert r.verdict == "ok", r.message
    tail = ops[ops.index("fill") + 1:]             # after the pool was filled to min
    if "writeback" in tail:
        assert "alloc" in tail and "alloc_fail" not in tail
        return "writeback"
    if "reclaim" in tail:
        assert "alloc_fail" in tail
        return "skip"
    return "reserve" if "alloc" in tail else "fail"


@pytest.mark.parametrize("gfp", MASKS)
def test_which_dirty_classes_each_mask_may_write_back(write_scenario, gfp):
    got = tuple(what_happened(vmemu.run(write_scenario(scenario(needs, gfp)),
                                        driver="direct")) for needs in NEEDS)
    assert got == EXPECTED[gfp]


@pytest.mark.parametrize("scope", SCOPES)
def test_a_scope_strips_the_mask_of_every_allocation_inside_it(write_scenario, scope):
    got = tuple(what_happened(vmemu.run(write_scenario(scenario(needs, "GFP_KERNEL", scope)),
                                        driver="direct")) for needs in NEEDS)
    assert got == EXPECTED[SCOPES[scope]]
    # A mask with nothing left to strip reads as itself.
    r = vmemu.run(write_scenario(scenario("[]", "GFP_NOIO", scope)), driver="direct")
    assert what_happened(r) == "writeback"
    assert "GFP_NOIO" in next(ev[3] for ev in r.trace.events if ev[2] == "reclaim")


@pytest.mark.parametrize("scope, shown", [
    ("PF_MEMALLOC_NOIO", "GFP_KERNEL in a PF_MEMALLOC_NOIO scope (__GFP_DIRECT_RECLAIM)"),
    ("PF_MEMALLOC_NOFS", "GFP_KERNEL in a PF_MEMALLOC_NOFS scope "
                         "(__GFP_DIRECT_RECLAIM|__GFP_IO)"),
])
def test_reports_say_what_a_scope_left_of_the_mask(write_scenario, scope, shown):
    r = vmemu.run(write_scenario(scenario("[io, fs]", "GFP_KERNEL", scope)), driver="direct")
    reclaim = next(ev[3] for ev in r.trace.events if ev[2] == "reclaim")
    assert reclaim == f"for 1: 4 free, {shown}"


def test_gfp_noio_under_the_lock_its_writeback_needs_is_safe_and_gfp_nofs_is_not(
        write_scenario):
    # The 1999 bug with a class whose writeback needs only IO: GFP_NOFS still lets
    # reclaim write it back under the lock its writeback takes (a self-deadlock);
    # GFP_NOIO makes reclaim drop the clean page cache instead.
    text = """
memory:
  pages: 32
  watermarks: {min: 2, low: 4, high: 8}
  classes:
    swap: {writeback: swap_out, needs: [io]}
    pagecache: {}
locks: {sb: mutex}
routines:
  swap_out: [{lock: sb}, {io: 1}, {unlock: sb}]
tasks:
  t:
    - fill: {class: swap, pages: 26}
    - fill: {class: pagecache, pages: 4}
    - lock: sb
    - alloc: 1
      gfp: %s
      as: bh
    - free: bh
    - unlock: sb
"""
    noio = vmemu.run(write_scenario(text % "GFP_NOIO", "noio.yaml"), driver="direct")
    assert noio.verdict == "ok"
    assert "reclaim_clean" in [ev[2] for ev in noio.trace.events]
    nofs = vmemu.run(write_scenario(text % "GFP_NOFS", "nofs.yaml"), driver="direct")
    assert nofs.verdict == "deadlock"
    assert [(c["task"], c["waits_for"], c["held_by"]) for c in nofs.cycle] == \
        [("t", "mutex sb", "t")]


def test_pf_memalloc_uses_the_whole_reserve_and_never_reclaims(write_scenario):
    # Free memory at min: a PF_MEMALLOC task may take every page left, without reclaim
    # (a writeback routine allocating must not recurse into reclaim).
    r = vmemu.run(write_scenario("""
memory:
  pages: 16
  watermarks: {min: 4, low: 6, high: 8}
  classes:
    dirty: {writeback: wb}
routines:
  wb: [yield]
tasks:
  t:
    - fill: {class: dirty, pages: 12}
    - flags: [PF_MEMALLOC]
      do: [{alloc: 4, as: p}, {alloc: 1, as: q, may_fail: true}, {assert: "ok == 0"}]
    - free: p
"""), driver="direct")
    assert r.verdict == "ok"
    ops = [ev[2] for ev in r.trace.events]
    assert "reclaim" not in ops and "writeback" not in ops
    assert r.extra["memory"]["free"] == 4


def test_reclaim_walks_the_classes_in_order_until_low_plus_the_request_is_free(
        write_scenario):
    # 2 pages free (= min): an allocation of 1 reclaims until low + 1 = 5 are free. The
    # clean cache goes first (2 pages), then one dirty page is written back; the second
    # clean class, listed last, is not needed, so it is not touched.
    r = vmemu.run(write_scenario("""
memory:
  pages: 20
  watermarks: {min: 2, low: 4, high: 8}
  classes:
    cache: {}
    dirty: {writeback: wb, needs: [io]}
    spare: {}
routines:
  wb: [yield]
tasks:
  t:
    - fill: {class: cache, pages: 2}
    - fill: {class: dirty, pages: 14}
    - fill: {class: spare, pages: 2}
    - alloc: 1
      as: p
    - free: p
"""), driver="direct")
    assert r.verdict == "ok"
    events = [(task, op, arg) for _, task, op, arg, _ in r.trace.events[3:]]
    assert events == [
        ("t", "reclaim", "for 1: 2 free, GFP_KERNEL"),
        ("t", "reclaim_clean", "2 cache: 4 free"),
        ("t", "writeback", "dirty by wb: page 2"),
        ("t", "reclaim_done", "freed 3: 5 free"),
        ("t", "alloc", "1 GFP_KERNEL: 4 free"),
        ("t", "free", "1: 5 free"),
        ("t", "exit", None),
        ("-", "verdict", "ok"),
    ]
    assert r.extra["memory"]["classes"] == {"cache": 0, "dirty": 13, "spare": 2}


@pytest.mark.parametrize("needs, gfp, shown", [
    ("[]", "GFP_NOIO", "class needs nothing; GFP_NOIO allows it"),
    ("[io]", "GFP_NOFS", "class needs io; GFP_NOFS allows it"),
    ("[io, fs]", "GFP_KERNEL", "class needs io+fs; GFP_KERNEL allows it"),
])
def test_a_writeback_blocked_under_reclaim_shows_why_reclaim_ran_it(write_scenario, needs,
                                                                    gfp, shown):
    # The allocating task holds the lock its own writeback takes: a self-deadlock, whose
    # stack reads allocation -> direct reclaim (which page, why it was allowed) -> routine.
    path = write_scenario(f"""
memory:
  pages: 16
  watermarks: {{min: 4, low: 6, high: 8}}
  classes:
    dirty: {{writeback: wb, needs: {needs}}}
locks: {{L: mutex}}
routines:
  wb: [{{lock: L}}, {{unlock: L}}]
tasks:
  t:
    - fill: {{class: dirty, pages: 12}}
    - lock: L
    - alloc: 1
      gfp: {gfp}
      as: p
""")
    lines = open(path).read().splitlines()
    alloc = lines.index("    - alloc: 1") + 1
    lock = next(i for i, ln in enumerate(lines, 1) if ln.startswith("  wb:"))
    r = vmemu.run(path, driver="direct")
    assert r.verdict == "deadlock" and r.message == "wait-for cycle t -> t"
    assert r.tasks[0]["stack"] == [
        {"frame": "t", "at": f"{path}:{alloc}", "step": f"alloc 1 ({gfp}) as p"},
        {"frame": "direct reclaim", "at": f"{path}:{alloc}",
         "step": f"write back dirty dirty page 0 with wb ({shown})"},
        {"frame": "wb", "at": f"{path}:{lock}", "step": "lock L"}]
    assert r.extra["memory"]["writeback"] == 1


def test_a_writeback_routine_is_told_its_class_and_page(write_scenario):
    # The reclaim walk above writes back dirty page 2 (class index 1); the routine sees
    # both. In lockdep's synthetic writeback (no real page) it is told page 0.
    text = """
memory:
  pages: 20
  watermarks: {min: 2, low: 4, high: 8}
  classes:
    cache: {}
    dirty: {writeback: wb, needs: [io]}
    spare: {}
vars: {cls: -1, pg: -1}
locks: {A: mutex, B: mutex}
routines:
  wb:
    params: [class, page]
    steps:
      - set: {cls: class, pg: page}
      - if: "page == 0"
        then: [{lock: A}, {unlock: A}]
        else: [{lock: B}, {unlock: B}]
tasks:
  t:
    - fill: {class: cache, pages: 2}
    - fill: {class: dirty, pages: 14}
    - fill: {class: spare, pages: 2}
    - alloc: 1
      as: p
    - assert: "cls == 1 and pg == 2"
    - free: p
"""
    path = write_scenario(text)
    r = vmemu.run(path, driver="direct")
    assert r.verdict == "ok", r.message
    synthetic = {(e.src, e.dst) for e in lockdep(path, runs=1, confirm=0).graph.edges.values()
                 if e.first.seed is None}
    assert synthetic == {("io_reclaim", "A")}


def test_what_reclaim_frees_is_counted_across_the_classes_it_walks(write_scenario):
    # A dirty class listed first with a single page: it is written back (1 page), then
    # the clean class gives the rest (2 pages). Reclaim reports the 3 it freed in all.
    r = vmemu.run(write_scenario("""
memory:
  pages: 20
  watermarks: {min: 2, low: 4, high: 8}
  classes:
    dirty: {writeback: wb, needs: [io]}
    spare: {}
routines:
  wb: [yield]
tasks:
  t:
    - fill: {class: dirty, pages: 1}
    - fill: {class: spare, pages: 17}
    - alloc: 1
      as: p
    - free: p
"""), driver="direct")
    assert r.verdict == "ok"
    events = [(op, arg) for _, _, op, arg, _ in r.trace.events if op.startswith(("reclaim",
                                                                                "writeback"))]
    assert events == [("reclaim", "for 1: 2 free, GFP_KERNEL"),
                      ("writeback", "dirty by wb: page 0"),
                      ("reclaim_clean", "2 spare: 5 free"),
                      ("reclaim_done", "freed 3: 5 free")]


@pytest.mark.parametrize("pages, writebacks, steps", [(1, 3, 8), (3, 5, 10)])
def test_every_writeback_costs_one_step_even_without_a_scheduling_point(
        write_scenario, pages, writebacks, steps):
    # A routine that only sets a variable costs what one that yields does: a step per
    # page written back (so a pool of dirty pages cannot be reclaimed for free).
    text = """
memory:
  pages: 20
  watermarks: {min: 2, low: 4, high: 8}
  classes:
    dirty: {writeback: wb, needs: [io]}
vars: {x: 0}
routines:
  wb: %s
tasks:
  t:
    - fill: {class: dirty, pages: 18}
    - alloc: %d
      as: p
    - free: p
"""
    for body in ("[{set: {x: 1}}]", "[yield]"):
        r = vmemu.run(write_scenario(text % (body, pages)), driver="direct")
        assert r.verdict == "ok" and r.steps == steps, body
        assert [e[2] for e in r.trace.events].count("writeback") == writebacks
