"""lockdep's dependency rules at their edges: trylock chains, and the reclaim pseudo-lock
each GFP mask takes (lockdep must predict exactly the reclaim deadlocks reclaim can cause).

Schedules here never deadlock (tasks start apart, memory is ample), so every cycle found
is a prediction from the lock order alone.
"""

from __future__ import annotations

import pytest

from vmemu._lockdep import graph, lockdep
from test_gfp import EXPECTED, NEEDS, SCOPES


def chains(res) -> list[str]:
    """Each cycle as ``X -> Y -> X``, read from its smallest lock (the report starts it
    at the dependency that closed it, which depends on the schedules)."""
    out = []
    for c in res.to_json()["cycles"]:
        locks = c["chain"].split(" -> ")[:-1]
        i = locks.index(min(locks))
        locks = locks[i:] + locks[:i]
        out.append(" -> ".join(locks + locks[:1]))
    return out


TRYLOCK = """
name: trylock-chain
locks: {A: mutex, B: mutex, C: mutex, D: mutex}
tasks:
  t1: [{lock: B}, %s {lock: C}, {unlock: C}, %s {unlock: B}]
  t2:
    start: 5
    steps: [{lock: C}, {lock: B}, {unlock: B}, {unlock: C}]
"""


@pytest.mark.parametrize("trylocks", [["A"], ["A", "D"]])
def test_a_lock_taken_under_trylocks_depends_on_the_lock_below_them(write_scenario,
                                                                     trylocks):
    # t1 holds B, trylocks A (and D), then takes C: C depends on the trylocked locks
    # *and* on B below them, so t2's C -> B closes a cycle through B.
    tries = "".join(f"{{trylock: {x}}}, " for x in trylocks)
    untries = "".join(f"{{unlock: {x}}}, " for x in reversed(trylocks))
    res = lockdep(write_scenario(TRYLOCK % (tries, untries)), runs=2, confirm=0)
    assert res.verdicts == {"ok": 2}
    edges = set(res.graph.edges)
    assert {(x, "C") for x in trylocks} | {("B", "C"), ("C", "B")} <= edges
    # A trylock never waits: taking it records no dependency on what is held.
    assert not {("B", x) for x in trylocks} & edges
    assert chains(res) == ["B -> C -> B"]


def test_a_lock_taken_above_a_plain_lock_depends_only_on_that_one(write_scenario):
    res = lockdep(write_scenario(TRYLOCK.replace("%s", "{lock: A},", 1)
                                 .replace("%s", "{unlock: A},", 1)), runs=2, confirm=0)
    assert ("A", "C") in res.graph.edges and ("B", "C") not in res.graph.edges
    # B -> A -> C -> B: the cycle is still found, through A.
    assert chains(res) == ["A -> C -> B -> A"]


RECLAIM = """
name: reclaim-under-lock
memory:
  pages: 4096
  classes:
    dirty: {writeback: wb, needs: %s}
locks: {L: mutex}
routines:
  wb: [{lock: L}, {unlock: L}]
tasks:
  t: [{lock: L}, %s, {free: p}, {unlock: L}]
"""
PSEUDO = {"[]": "reclaim", "[io]": "io_reclaim", "[io, fs]": "fs_reclaim"}


def reclaim_chains(write_scenario, needs: str, gfp: str, scope: str | None = None):
    alloc = f"{{alloc: 1, gfp: {gfp}, as: p}}"
    step = f"{{flags: [{scope}], do: [{alloc}]}}" if scope else alloc
    res = lockdep(write_scenario(RECLAIM % (needs, step)), runs=1, confirm=0)
    assert res.verdicts == {"ok": 1} and res.synthetic == ["dirty"]
    return chains(res)


@pytest.mark.parametrize("gfp", EXPECTED)
def test_an_allocation_under_a_lock_depends_on_each_writeback_its_mask_allows(
        write_scenario, gfp):
    # With ample memory nothing is ever written back; lockdep still predicts the
    # deadlock exactly when reclaim under this mask could run the writeback (test_gfp).
    for needs, effect in zip(NEEDS, EXPECTED[gfp]):
        expected = [f"L -> {PSEUDO[needs]} -> L"] if effect == "writeback" else []
        assert reclaim_chains(write_scenario, needs, gfp) == expected, (needs, effect)


@pytest.mark.parametrize("scope", SCOPES)
def test_a_scope_removes_the_reclaim_dependencies_it_forbids(write_scenario, scope):
    for needs, effect in zip(NEEDS, EXPECTED[SCOPES[scope]]):
        expected = [f"L -> {PSEUDO[needs]} -> L"] if effect == "writeback" else []
        assert reclaim_chains(write_scenario, needs, "GFP_KERNEL", scope) == expected


def test_pf_memalloc_allocations_never_depend_on_reclaim(write_scenario):
    assert reclaim_chains(write_scenario, "[io, fs]", "GFP_KERNEL", "PF_MEMALLOC") == []


def test_the_writeback_side_is_learned_in_a_synthetic_reclaim_context(write_scenario):
    path = write_scenario(RECLAIM % ("[io]", "{alloc: 1, as: p}"))
    res = lockdep(path, runs=1, confirm=0)
    [cycle] = res.to_json()["cycles"]
    back = next(e for e in cycle["edges"] if e["from"] == "io_reclaim")
    assert (back["task"], back["run"], back["seed"]) == \
        ("reclaim:dirty", "synthetic writeback of dirty", None)
    wb = next(i for i, ln in enumerate(open(path).read().splitlines(), 1) if "wb:" in ln)
    assert back["stack"] == [
        {"frame": "reclaim:dirty", "at": "", "step": ""},
        {"frame": "synthetic reclaim", "at": "", "step": "synthetic writeback of dirty"},
        {"frame": "wb", "at": f"{path}:{wb}", "step": "lock L"}]
    assert back["held"] == [{"lock": "io_reclaim", "mode": "write",
                             "frame": "synthetic reclaim", "at": "",
                             "step": "synthetic writeback of dirty"}]
    assert res.graph.kinds == {"L": "mutex", "io_reclaim": "pseudo"}
    assert res.graph.edges[("L", "io_reclaim")].dst_mode == "write"


GOLDEN = """\
name: golden
locks:
  A: mutex
  S: rwsem
  U: mutex
  fork: {kind: mutex, count: 2, class: fork}
tasks:
  t1: [{lock: A}, {read_lock: S}, {read_unlock: S}, {unlock: A}]
  t2:
    start: 5
    steps: [{lock: S}, {lock: A}, {unlock: A}, {unlock: S}]
  t3:
    start: 10
    steps: [{lock: fork0}, {lock: fork1}, {unlock: fork1}, {unlock: fork0}]
  t4:
    start: 15
    steps: [{read_lock: S}, {read_lock: S}, {read_unlock: S}, {read_unlock: S}]
  u1:
    start: 20
    steps: [{unlock: U}]
  u2:
    start: 20
    steps: [{unlock: U}]
"""


def test_the_json_report_of_every_kind_of_finding(write_scenario):
    # One scenario with a read/write inversion (A -> S{read}, S -> A), recursive locking on
    # a lock class (fork0 then fork1) and on an rwsem's read side, and two racing bad
    # unlocks (each schedule has one; the report keeps each place once). Every field a
    # user or a tool reads is checked.
    path = write_scenario(GOLDEN, "golden.yaml")
    res = lockdep(path, runs=6, confirm=0)

    def occ(task, line, step, held=()):
        return {"task": task, "at": f"{path}:{line}",
                "stack": [{"frame": task, "at": f"{path}:{line}", "step": step}],
                "held": [{"lock": lock, "mode": mode, "frame": task, "at": f"{path}:{line}",
                          "step": s} for lock, mode, s in held]}

    a_s = {"from": "A", "to": "S", "from_mode": "write", "to_mode": "read",
           **occ("t1", 8, "read_lock S", [("A", "write", "lock A")])}
    s_a = {"from": "S", "to": "A", "from_mode": "write", "to_mode": "write",
           **occ("t2", 11, "lock A", [("S", "write", "lock S")])}
    bad = "unlock of mutex U not held by it (held by nobody (double unlock?))"
    # Schedules have seeds of their own (explore's): check each occurrence names its
    # schedule and the command that re-runs it, then compare the rest.
    got = res.to_json()
    firsts = got["dependencies"] + got["recursive"] + got["bad_unlocks"]
    for e in firsts:
        seed, run, replay = e.pop("seed"), e.pop("run"), e.pop("replay")
        assert run.startswith(f"schedule seed {seed} (") and \
            replay.startswith(f"vmemu run {path} --seed {seed} --strategy ")
    for c in got["cycles"]:
        for e in c["edges"]:
            del e["seed"], e["run"], e["replay"]
    got["bad_unlocks"].sort(key=lambda b: b["task"])
    assert got == {
        "scenario": "golden", "scenario_path": path, "found": True, "runs": 6, "seed": 0,
        "synthetic_writeback": [], "verdicts": {"bug": 6}, "confirm": 0,
        "confirm_faults": None, "locks": ["A", "S"], "dependencies": [a_s, s_a],
        "observed": [],
        "cycles": [{"locks": ["S", "A"], "chain": "S -> A -> S", "edges": [s_a, a_s],
                    "confirmed": False, "confirmed_by": None, "replay": None,
                    "needs_writer": []}],
        "cycles_cut": False,
        "recursive": [
            {"lock": "fork", "mode": "write", "held_mode": "write",
             "held_at": f"{path}:14", "confirmed_by": None,
             **occ("t3", 14, "lock fork1", [("fork", "write", "lock fork0")])},
            {"lock": "S", "mode": "read", "held_mode": "read",
             "held_at": f"{path}:17", "confirmed_by": None,
             **occ("t4", 17, "read_lock S", [("S", "read", "read_lock S")])}],
        "bad_unlocks": [
            {"lock": "U", "message": bad, **occ("u1", 20, "unlock U")},
            {"lock": "U", "message": bad, **occ("u2", 23, "unlock U")}],
    }
    assert res.graph.kinds == {"A": "mutex", "S": "rwsem", "fork": "mutex"}


def test_a_recursive_lock_released_once_is_still_held_once(write_scenario):
    # R is taken twice, released once, then taken again under A: still a re-entry (no
    # edge A -> R), so no cycle R -> A -> R.
    res = lockdep(write_scenario("""
locks: {R: recursive, A: mutex}
tasks:
  t: [{lock: R}, {lock: A}, {lock: R}, {unlock: R}, {lock: R}, {unlock: R}, {unlock: A},
      {unlock: R}, {lock: A}, {unlock: A}]
"""), runs=1, confirm=0)
    assert list(res.graph.edges) == [("R", "A")] and not res.found


def test_a_semaphore_upped_by_a_task_listed_before_its_taker_is_released(write_scenario):
    # `giver` (the first task) ups the semaphore `taker` holds; taker then takes N: no
    # dependency S -> N, since taker no longer holds S.
    res = lockdep(write_scenario("""
locks: {S: semaphore, M: mutex, N: mutex}
events: {taken: completion, given: completion}
tasks:
  giver: [{wait: taken}, {lock: M}, {unlock: S}, {complete: given}, {unlock: M}]
  taker: [{lock: S}, {complete: taken}, {wait: given}, {lock: N}, {unlock: N}]
"""), runs=2, confirm=0)
    assert res.verdicts == {"ok": 2}
    assert ("S", "N") not in res.graph.edges and ("M", "N") not in res.graph.edges


def test_every_elementary_cycle_is_found_also_through_a_shared_lock(write_scenario):
    # A -> B -> D -> A and A -> C -> D -> A share A and D: both are reported, in the
    # order their closing dependency was first seen.
    res = lockdep(write_scenario("""
locks: {A: mutex, B: mutex, C: mutex, D: mutex}
tasks:
  t1: [{lock: A}, {lock: B}, {lock: D}, {unlock: D}, {unlock: B}, {unlock: A}]
  t2:
    start: 5
    steps: [{lock: A}, {lock: C}, {lock: D}, {unlock: D}, {unlock: C}, {unlock: A}]
  t3:
    start: 10
    steps: [{lock: D}, {lock: A}, {unlock: A}, {unlock: D}]
"""), runs=1, confirm=0)
    assert [c["chain"] for c in res.to_json()["cycles"]] == \
        ["D -> A -> B -> D", "D -> A -> C -> D"]


def test_too_many_cycles_are_cut_at_the_limit_and_say_so(write_scenario):
    # Six locks, every task takes every pair in both orders: far more than 64 cycles.
    names = [f"L{i}" for i in range(6)]
    tasks = "".join(
        f"  t{a}_{b}:\n    start: {i}\n    steps: [{{lock: {x}}}, {{lock: {y}}}, "
        f"{{unlock: {y}}}, {{unlock: {x}}}]\n"
        for i, (a, b, x, y) in enumerate((a, b, names[a], names[b]) for a in range(6)
                                         for b in range(6) if a != b))
    res = lockdep(write_scenario("locks: {" + ", ".join(f"{n}: mutex" for n in names)
                                 + "}\ntasks:\n" + tasks), runs=1, confirm=0)
    assert res.cut and len(res.cycles) == graph.MAX_CYCLES
    assert res.to_json()["cycles_cut"] is True


@pytest.mark.parametrize("budget, cut", [(3, False), (2, True)])
def test_the_cycle_search_stops_at_its_budget_and_says_so(write_scenario, monkeypatch,
                                                           budget, cut):
    # ABBA's graph is searched in 3 edge visits (A -> B, B -> A: found; then B -> A from
    # B, which is not the smallest lock). The budget is a safety net for huge graphs.
    monkeypatch.setattr(graph, "SEARCH_BUDGET", budget)
    res = lockdep(write_scenario("""
locks: {A: mutex, B: mutex}
tasks:
  t1: [{lock: A}, {lock: B}, {unlock: B}, {unlock: A}]
  t2:
    start: 5
    steps: [{lock: B}, {lock: A}, {unlock: A}, {unlock: B}]
"""), runs=1, confirm=0)
    assert chains(res) == ["A -> B -> A"] and res.cut is cut


def test_a_real_writeback_holds_its_pseudo_lock_only_while_it_runs(write_scenario):
    # Memory is short, so t's allocation (under L) really writes a page back with wb,
    # which takes M: L -> io_reclaim (the allocation), io_reclaim -> M (the writeback);
    # and after the writeback, X is taken under L alone.
    res = lockdep(write_scenario("""
memory:
  pages: 16
  watermarks: {min: 4, low: 6, high: 8}
  classes:
    dirty: {writeback: wb, needs: [io]}
locks: {L: mutex, M: mutex, X: mutex}
routines:
  wb: [{lock: M}, {unlock: M}]
tasks:
  t: [{fill: {class: dirty, pages: 12}}, {lock: L}, {alloc: 1, as: p}, {lock: X},
      {unlock: X}, {free: p}, {unlock: L}]
"""), runs=1, confirm=0)
    assert res.verdicts == {"ok": 1}
    [wb] = [e for e in res.graph.edges.values() if e.src == "io_reclaim" and e.first.seed is not None]
    assert wb.dst == "M" and [f[0] for f in wb.first.stack] == ["t", "direct reclaim", "wb"]
    assert set(res.graph.edges) == {("L", "io_reclaim"), ("io_reclaim", "M"), ("L", "X")}
    assert res.graph.kinds == {"L": "mutex", "io_reclaim": "pseudo", "M": "mutex",
                               "X": "mutex"}


def test_events_and_reclaim_passed_before_a_signal_are_dependencies(write_scenario):
    # The signaller takes L and allocates (a reclaim point) before it completes `done`:
    # a waiter for `done` depends on both. The waiter waits for `done` holding L.
    path = write_scenario("""
memory:
  pages: 4096
  classes: {dirty: {writeback: wb, needs: [io]}}
locks: {L: mutex}
events: {done: completion}
routines:
  wb: [yield]
tasks:
  signaller: [{lock: L}, {unlock: L}, {alloc: 1, as: p}, {free: p}, {complete: done}]
  waiter:
    start: 10
    steps: [{lock: L}, {wait: done}, {unlock: L}]
""")
    res = lockdep(path, runs=1, confirm=0)
    lines = open(path).read().splitlines()
    at = {k: f"{path}:{next(i for i, ln in enumerate(lines, 1) if k in ln)}"
          for k in ("signaller:", "waiter:")}
    signaller, waiter = at["signaller:"], f"{path}:{int(at['waiter:'].split(':')[-1]) + 2}"
    deps = {(d["from"], d["to"]): d for d in res.to_json()["dependencies"]}
    assert set(deps) == {("done", "L"), ("done", "io_reclaim"), ("L", "done")}
    for to in ("L", "io_reclaim"):
        d = deps["done", to]
        assert (d["from_mode"], d["to_mode"], d["task"], d["at"], d["to_at"], d["held"]) == \
            ("signal", "write", "signaller", signaller, signaller, [])
        assert d["stack"] == [{"frame": "signaller", "at": signaller, "step": "complete done"}]
    w = deps["L", "done"]
    assert (w["from_mode"], w["to_mode"], w["task"], w["at"]) == ("write", "wait", "waiter",
                                                                  waiter)
    assert chains(res) == ["L -> done -> L"]
    assert res.graph.kinds == {"L": "mutex", "io_reclaim": "pseudo", "done": "completion"}


def test_the_text_report_says_where_each_lock_was_taken(write_scenario, capsys):
    from vmemu._cli import main
    path = write_scenario(GOLDEN, "golden.yaml")
    assert main(["lockdep", path, "--runs", "6", "--confirm", "0"]) == 1
    out = capsys.readouterr().out
    for line in (f"  (A) at t2 ({path}:11): lock A",
                 f"  (S) at t2 ({path}:11): lock S",
                 f"       at t1 ({path}:8): read_lock S",
                 f" #0: (S) at t2 ({path}:11): lock S",
                 f"  (fork) at t3 ({path}:14): lock fork1",
                 f"  (fork) at t3 ({path}:14): lock fork0"):
        assert line in out.splitlines(), line


@pytest.mark.parametrize("kind, recursive", [("rwlock", False), ("rwsem", True)])
def test_re_reading_an_rwlock_is_allowed_and_an_rwsem_is_not(write_scenario, kind, recursive):
    # An rwlock's readers pass waiting writers (Linux rwlock_t): a nested read cannot
    # deadlock. An rwsem is writer-fair: it can.
    res = lockdep(write_scenario(f"""
locks: {{S: {kind}}}
tasks:
  t: [{{read_lock: S}}, {{read_lock: S}}, {{read_unlock: S}}, {{read_unlock: S}}]
"""), runs=1, confirm=0)
    assert (list(res.graph.recursions) == ["S"]) is recursive


def test_cycles_are_reported_in_the_order_they_closed(write_scenario):
    # A -> B -> F -> A closes last (F -> A is the newest dependency) although its other
    # dependencies are older than every one of C -> D -> E -> C: it is reported second.
    res = lockdep(write_scenario("""
locks: {A: mutex, B: mutex, C: mutex, D: mutex, E: mutex, F: mutex}
tasks:
  t1: [{lock: A}, {lock: B}, {unlock: B}, {unlock: A}]
  t2: {start: 5, steps: [{lock: B}, {lock: F}, {unlock: F}, {unlock: B}]}
  t3: {start: 10, steps: [{lock: C}, {lock: D}, {unlock: D}, {unlock: C}]}
  t4: {start: 15, steps: [{lock: D}, {lock: E}, {unlock: E}, {unlock: D}]}
  t5: {start: 20, steps: [{lock: E}, {lock: C}, {unlock: C}, {unlock: E}]}
  t6: {start: 25, steps: [{lock: F}, {lock: A}, {unlock: A}, {unlock: F}]}
"""), runs=1, confirm=0)
    assert chains(res) == ["C -> D -> E -> C", "A -> B -> F -> A"]


def test_a_lock_released_out_of_order_is_no_longer_a_dependency(write_scenario):
    # lock X; lock A; unlock X; lock B: B is taken under A only.
    res = lockdep(write_scenario("""
locks: {X: mutex, A: mutex, B: mutex}
tasks:
  t: [{lock: X}, {lock: A}, {unlock: X}, {lock: B}, {unlock: B}, {unlock: A}]
"""), runs=1, confirm=0)
    assert set(res.graph.edges) == {("X", "A"), ("A", "B")}
    [ab] = [d for d in res.to_json()["dependencies"] if d["from"] == "A"]
    assert [h["lock"] for h in ab["held"]] == ["A"]


def test_a_recursive_lock_taken_twice_and_released_once_is_held_once(write_scenario):
    res = lockdep(write_scenario("""
locks: {R: recursive, X: mutex}
tasks:
  t: [{lock: R}, {lock: R}, {unlock: R}, {lock: X}, {unlock: X}, {unlock: R}]
"""), runs=1, confirm=0)
    [rx] = res.to_json()["dependencies"]
    assert (rx["from"], rx["to"]) == ("R", "X")
    assert [(h["lock"], h["step"]) for h in rx["held"]] == [("R", "lock R")]


def test_the_text_report_shows_frames_without_a_file_or_a_step(write_scenario, capsys):
    from vmemu._cli import main
    path = write_scenario(RECLAIM % ("[io]", "{alloc: 1, as: p}"))
    assert main(["lockdep", path, "--runs", "1", "--confirm", "0"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "       in synthetic reclaim: synthetic writeback of dirty" in lines
    assert "       in reclaim:dirty" in lines


def test_node_kinds_come_from_whichever_use_is_seen_first(write_scenario):
    # The waiter waits before anyone signals; no allocation passes the io_reclaim point
    # (GFP_NOIO), so only the synthetic writeback names that pseudo-lock.
    res = lockdep(write_scenario(RECLAIM % ("[io]", "{alloc: 1, gfp: GFP_NOIO, as: p}")),
                  runs=1, confirm=0)
    assert res.graph.kinds == {"L": "mutex", "io_reclaim": "pseudo"}
    res = lockdep(write_scenario("""
events: {done: completion}
tasks:
  waiter: [{wait: done}]
  signaller: {start: 10, steps: [{complete: done}]}
""", "w.yaml"), runs=1, confirm=0)
    assert res.graph.kinds == {"done": "completion"}


def test_a_signal_from_inside_reclaim_depends_on_the_locks_not_on_reclaim(write_scenario):
    # t passes the io_reclaim point (its first allocation), then L; later its direct
    # reclaim writes back a page whose routine completes `done`. `done` depends on L,
    # which t got through, but not on io_reclaim: that reclaim is the one running.
    res = lockdep(write_scenario("""
memory:
  pages: 64
  watermarks: {min: 8, low: 12, high: 16}
  classes: {dirty: {writeback: wb, needs: [io]}}
locks: {L: mutex}
events: {done: completion}
routines:
  wb: [{complete: done}]
tasks:
  t: [{alloc: 1, as: q}, {lock: L}, {unlock: L}, {fill: {class: dirty, pages: 60}},
      {alloc: 1, as: p}, {free: p}, {free: q}]
  w: {start: 100, steps: [{wait: done}]}
"""), runs=1, confirm=0)
    deps = [(d["from"], d["to"], d["task"], [f["frame"] for f in d["stack"]])
            for d in res.to_json()["dependencies"]]
    assert deps == [("done", "L", "t", ["t", "direct reclaim", "wb"])]


def test_an_event_signalled_after_a_wait_depends_on_the_waited_event(write_scenario):
    # t waits for A, then completes B: whoever waits for B waits for A too.
    res = lockdep(write_scenario("""
events: {A: completion, B: completion}
tasks:
  a: [{complete: A}]
  t: {start: 5, steps: [{wait: A}, {complete: B}]}
  w: {start: 10, steps: [{wait: B}]}
"""), runs=1, confirm=0)
    deps = [(d["from"], d["to"], d["from_mode"], d["to_mode"], d["task"])
            for d in res.to_json()["dependencies"]]
    assert deps == [("B", "A", "signal", "wait", "t")]
