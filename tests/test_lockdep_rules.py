"""lockdep's dependency rules at their edges: trylock chains, and the reclaim pseudo-lock
each GFP mask takes (lockdep must predict exactly the reclaim deadlocks reclaim can cause).

Schedules here never deadlock (tasks start apart, memory is ample), so every cycle found
is a prediction from the lock order alone.
"""

from __future__ import annotations

import pytest

from vmemu._lockdep import lockdep
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
