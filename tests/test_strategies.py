"""Strategies: PCT, bounded DFS, the seeded hypothesis strategy, schedule iteration."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from itertools import islice
from types import SimpleNamespace

import pytest

import vmemu
from conftest import CONTRACT
from vmemu._cli import main
from vmemu._errors import UserError
from vmemu._strategies import schedule_seed, is_exhaustive, make_strategy, schedules
from vmemu._strategies.dfs import DFSSearch, DFSStrategy, _key, decode_prefix, encode_prefix
from vmemu._strategies.pct import PCTStrategy

ABBA = vmemu.load(str(CONTRACT / "abba.yaml"))
ABBA_ORDERED = vmemu.load(str(CONTRACT / "abba_ordered.yaml"))
DINING = vmemu.load(str(CONTRACT / "dining_philosophers.yaml"))
LOST_WAKEUP = vmemu.load(str(CONTRACT / "lost_wakeup.yaml"))


def _run(sc, strat):
    return vmemu.run(sc, strategy=strat, driver="direct")


def _first_failure(sc, name, seed, budget, **params):
    """(1-based schedule index, result) of the first failing schedule, or (None, None)."""
    for i, strat in enumerate(islice(schedules(name, seed, **params), budget), 1):
        r = _run(sc, strat)
        if r.failed:
            return i, r
    return None, None


def _replay_via_cli(r, capsys):
    """Run ``r.replay_command()`` through the CLI; return (exit code, JSON output)."""
    argv = shlex.split(r.replay_command())[1:] + ["--json", "--driver", "direct"]
    capsys.readouterr()
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------ PCT

@pytest.mark.parametrize("sc", [ABBA, DINING, LOST_WAKEUP], ids=lambda s: s.name)
def test_pct_finds_contract_deadlocks_within_50_schedules(sc):
    # The bench (bench/bench_find.py) measures the median over 20 seeds; here 5 seeds
    # must each find the deadlock well within the 50-schedule bar.
    for seed in (0, 100_000, 200_000, 300_000, 400_000):
        i, r = _first_failure(sc, "pct", seed, 50)
        assert i is not None, f"pct seed {seed} missed {sc.name}"
        assert r.verdict == "deadlock" and r.strategy == "pct"


def test_pct_depth_1_never_preempts_so_abba_never_deadlocks():
    # With d=1 there is no change point: the highest-priority task runs until it ends,
    # which is exactly the schedule that cannot deadlock ABBA.
    for seed in range(40):
        assert _run(ABBA, make_strategy("pct", seed, depth=1)).verdict == "ok"
    assert any(_run(ABBA, make_strategy("pct", s, depth=2, steps_hint=4)).failed
               for s in range(40))


def test_pct_lowers_running_task_at_exactly_depth_minus_1_change_points():
    tasks = [SimpleNamespace(tid=i, name=f"t{i}") for i in range(4)]
    s = PCTStrategy(7, depth=4, steps_hint=10)
    assert len(s.change_at) == 3 and all(1 <= c <= 10 for c in s.change_at)
    current = None
    lowered = []
    for step in range(1, 13):
        before = dict(s.priority)
        chosen = s.pick_task(tasks, current)
        # The highest-priority runnable task always runs.
        assert s.priority[chosen.tid] == max(s.priority[t.tid] for t in tasks)
        changed = [tid for tid in before if before[tid] != s.priority[tid]]
        if step in s.change_at and current is not None:
            assert changed == [current.tid] and s.priority[current.tid] == s.change_at[step]
            lowered.append(step)
        else:
            assert changed == []
        current = chosen
    assert len(set(s.priority.values())) == 4            # distinct priorities
    assert lowered == sorted(c for c in s.change_at if c > 1)


def test_pct_is_reproducible_from_seed_and_params():
    a = _run(DINING, make_strategy("pct", 11, depth=3, steps_hint=9))
    b = _run(DINING, make_strategy("pct", 11, depth=3, steps_hint=9))
    assert a.trace_hash == b.trace_hash
    assert a.trace.params == {"depth": 3, "steps_hint": 9}
    hashes = {_run(DINING, make_strategy("pct", s, steps_hint=9)).trace_hash for s in range(12)}
    assert len(hashes) > 1


def test_pct_adapts_steps_hint_to_the_longest_run_seen():
    it = schedules("pct", 0)
    first = next(it)
    assert first.params()["steps_hint"] == 64
    _run(ABBA_ORDERED, first)
    second = next(it)
    assert second.params()["steps_hint"] == first.decisions < 64
    fixed = schedules("pct", 0, steps_hint=5)
    for s in islice(fixed, 3):
        _run(ABBA_ORDERED, s)
        assert s.params()["steps_hint"] == 5


@pytest.mark.parametrize("name", ["pct", "portfolio", "dfs"])
def test_every_finding_replays_from_its_replay_command(name, capsys):
    i, r = _first_failure(DINING, name, 3, 300)
    assert r is not None
    code, out = _replay_via_cli(r, capsys)
    assert code == 1
    assert out["trace_hash"] == r.trace_hash and out["strategy"] == r.strategy


def test_pct_same_hash_under_any_pythonhashseed():
    code = textwrap.dedent(f"""
        import vmemu
        r = vmemu.run({str(CONTRACT / 'dining_philosophers.yaml')!r}, seed=5,
                      strategy="pct", steps_hint=8, driver="direct")
        print(r.trace_hash)
    """)
    outs = set()
    for hs in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hs)
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                capture_output=True, text=True).stdout.strip())
    local = vmemu.run(DINING, seed=5, strategy="pct", steps_hint=8, driver="direct")
    assert outs == {local.trace_hash}


# ------------------------------------------------------------------ DFS

def _dfs_all(sc, **params):
    it = schedules("dfs", 0, **params)
    results = [_run(sc, s) for s in islice(it, 5000)]
    return it, results


def test_dfs_explores_abba_ordered_exhaustively_without_repeats():
    it, results = _dfs_all(ABBA_ORDERED)
    assert it.exhausted and is_exhaustive("dfs") and not is_exhaustive("random")
    assert all(r.verdict == "ok" for r in results)
    tapes = [tuple(r.trace.tape) for r in results]
    assert len(set(tapes)) == len(tapes) > 1


def _one_pass(sc, bound, max_bound):
    """(prefix, trace hash) of every schedule of the bounded space walked in one pass at
    ``max_bound`` (no deepening)."""
    search = DFSSearch(bound, max_bound)
    s, out = search.first(), []
    while s is not None:
        out.append((_key(s.prefix), _run(sc, s).trace_hash))
        s = search.next(s)
    return out


@pytest.mark.parametrize("bound", ["delays", "preemptions"])
def test_dfs_deepens_the_bound_cheapest_first_and_runs_each_schedule_once(bound):
    it = schedules("dfs", 0, bound=bound, max_bound=2)
    strats, results = [], []
    for s in islice(it, 5000):
        strats.append(s)
        results.append(_run(DINING, s))
    assert it.exhausted
    costs = [s.prefix_cost for s in strats]
    assert costs == sorted(costs) and costs[0] == 0 and costs[-1] == 2
    # Nothing ran twice, and the schedules run are those of one pass at bound 2.
    # (Distinct schedules may still log the same events: compare prefixes.)
    ran = [(_key(s.prefix), r.trace_hash) for s, r in zip(strats, results)]
    assert len({p for p, _ in ran}) == len(ran)
    assert sorted(ran) == sorted(_one_pass(DINING, bound, 2))
    assert [s.seed for s in strats] == list(range(len(strats)))


def test_dfs_finds_dining_at_the_first_schedule_of_the_bound_it_needs():
    # The deadlock needs one preemption: deepening runs the bound-0 space first (which
    # cannot deadlock), then reaches a bound-1 deadlock well before a single pass at
    # bound 2 does (it wanders the bound-2 subtrees of early decisions first).
    def first_failure(schedules_iter):
        return next(i for i, s in enumerate(schedules_iter, 1) if _run(DINING, s).failed)
    deep = first_failure(schedules("dfs", 0, bound="preemptions", max_bound=2))
    search = DFSSearch("preemptions", 2)

    def one_pass():
        s = search.first()
        while s is not None:
            yield s
            s = search.next(s)
    assert deep < first_failure(one_pass())


def test_dfs_delay_bound_0_is_the_single_round_robin_schedule():
    it, results = _dfs_all(ABBA, max_bound=0)
    assert it.exhausted and len(results) == 1 and results[0].verdict == "ok"
    # One delay is enough for ABBA: skip t1 at its yield.
    assert any(r.verdict == "deadlock" for r in _dfs_all(ABBA, max_bound=1)[1])


def test_dfs_bigger_bound_explores_a_superset():
    def hashes(**p):
        return {r.trace_hash for r in _dfs_all(DINING, **p)[1]}
    d1, d2 = hashes(max_bound=1), hashes(max_bound=2)
    p0, p1 = hashes(bound="preemptions", max_bound=0), hashes(bound="preemptions", max_bound=1)
    assert d1 < d2 and p0 < p1
    assert len(p0) > 1   # switches at blocking points are free under preemption bounding


def test_dfs_preemption_bound_finds_dining_with_one_not_zero():
    # One preemption suffices: p0 takes fork0, p2 preempts it and blocks on fork0, and the
    # free switch to p1 closes the cycle. Without preemptions p0 always finishes first.
    found = {b: any(r.verdict == "deadlock"
                    for r in _dfs_all(DINING, bound="preemptions", max_bound=b)[1])
             for b in (0, 1)}
    assert found == {0: False, 1: True}


def test_dfs_schedules_rebuild_from_their_prefix_param():
    it = schedules("dfs", 0, bound="delays", max_bound=1)
    for s in islice(it, 20):
        r = _run(DINING, s)
        again = _run(DINING, make_strategy("dfs", 0, **r.trace.params))
        assert again.trace_hash == r.trace_hash


def test_dfs_branches_on_fault_decisions_within_the_bound():
    # A synthetic program: three fault coins and nothing else.
    search = DFSSearch("delays", 3)
    seen = []
    s = search.first()
    while s is not None:
        seen.append(tuple(s.pick_bool(0.5, f"f{j}") for j in range(3)))
        s = search.next(s)
    assert sorted(seen) == sorted({(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)})
    search = DFSSearch("delays", 1)
    s, seen = search.first(), []
    while s is not None:
        seen.append(tuple(s.pick_bool(0.5, f"f{j}") for j in range(3)))
        s = search.next(s)
    assert sorted(seen) == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0)]


def test_dfs_finds_a_fault_only_bug_and_bound_0_does_not(tmp_path):
    sc, plan = _io_error_scenario(tmp_path)
    for b, want in ((0, {"ok"}), (1, {"ok", "assertion"})):
        it = schedules("dfs", 0, max_bound=b)
        got = {vmemu.run(sc, strategy=s, faults=plan, driver="direct").verdict
               for s in islice(it, 500)}
        assert it.exhausted and got == want


def _io_error_scenario(tmp_path):
    (tmp_path / "sc.yaml").write_text(textwrap.dedent("""
        name: io-error
        expect: assertion
        locks: {L: mutex}
        tasks:
          reader: [{lock: L}, {io: 1}, {assert: "ok == 1"}, {unlock: L}]
          other: [{lock: L}, yield, {unlock: L}]
    """))
    (tmp_path / "f.yaml").write_text(textwrap.dedent("""
        name: flaky-io
        faults:
          - {at: io, do: io_error, probability: 0.5}
    """))
    return vmemu.load(str(tmp_path / "sc.yaml")), str(tmp_path / "f.yaml")


def test_dfs_prefix_encoding_round_trips():
    for p in ([], [0, 0, 1], [2, 0, 0, 3, 1]):
        assert decode_prefix(encode_prefix(p)) == p[:_last_nz(p)]   # trailing zeros elided
    with pytest.raises(UserError, match="--prefix"):
        decode_prefix("3:1,2:1")


def _last_nz(p):
    return max((i + 1 for i, v in enumerate(p) if v), default=0)


# ------------------------------------------------------------------ iteration, portfolio

def test_portfolio_alternates_random_and_pct_with_mixed_seeds():
    got = [(s.name, s.seed) for s in islice(schedules("portfolio", 10), 6)]
    assert got == [(("random", "pct")[i % 2], schedule_seed(10, i)) for i in range(6)]
    # A stream may start anywhere (a worker's block): schedule i is the same schedule.
    assert [(s.name, s.seed) for s in islice(schedules("portfolio", 10, start=3), 3)] == got[3:]


def test_schedule_i_is_the_same_as_running_its_seed_alone():
    for name in ("random", "hypothesis"):
        for i, s in enumerate(islice(schedules(name, 40), 5)):
            alone = vmemu.run(DINING, seed=schedule_seed(40, i), strategy=name,
                              driver="direct")
            assert _run(DINING, s).trace_hash == alone.trace_hash


def test_explorations_with_seeds_1_to_10_are_distinct_samples():
    # With `seed + i`, seed 2 re-ran seed 1's schedules shifted by one: 10 explorations
    # of 1,000 schedules were one sample. Mixed seeds share no schedule.
    seeds = [schedule_seed(s, i) for s in range(1, 11) for i in range(1000)]
    assert len(set(seeds)) == len(seeds)
    # ... and what they find differs from seed to seed (PCT on dining philosophers).
    found = {vmemu.explore(DINING, strategy="pct", seed=s, runs=200,
                           minimize=False).schedules for s in range(1, 11)}
    assert len(found) >= 5, found


@pytest.mark.parametrize("argv, needle", [
    (["run", "ABBA", "--strategy", "portfolio"], "portfolio mixes random and pct"),
    (["run", "ABBA", "--strategy", "random", "--depth", "3"], "does not take --depth"),
    (["run", "ABBA", "--strategy", "dfs", "--prefix", "x"], "bad dfs prefix"),
    (["run", "ABBA", "--strategy", "pct", "--bound", "delays"], "does not take --bound"),
])
def test_bad_strategy_options_are_one_line_exit_2(argv, needle, capsys):
    argv = [str(CONTRACT / "abba.yaml") if a == "ABBA" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_schedules_rejects_unknown_strategy_and_params():
    with pytest.raises(UserError, match="did you mean 'pct'"):
        schedules("pcr", 0)
    with pytest.raises(UserError, match="does not take --max-bound"):
        schedules("portfolio", 0, max_bound=2)
    with pytest.raises(UserError, match="--depth"):
        schedules("portfolio", 0, depth=0)


def test_seeded_hypothesis_strategy_prefers_not_preempting():
    # Half of its answers keep the current task: fewer preemptions than random.
    def preempting_decisions(name):
        from vmemu._explore.minimize import preemptions
        return sum(preemptions(vmemu.run(DINING, seed=s, strategy=name, driver="direct"))
                   for s in range(30))
    assert preempting_decisions("hypothesis") < preempting_decisions("random")


# ------------------------------------------------------------------ edges
# Bad parameters (one line naming the option), change points with a short run estimate,
# what a delay costs, and DFS prefixes (mutation testing found these untested).

def refused(name: str, **params) -> UserError:
    with pytest.raises(UserError) as info:
        make_strategy(name, 0, **params)
    return info.value


@pytest.mark.parametrize("params, message, key", ids=["zero", "bool", "str"], argvalues=[
    ({"depth": 0}, "pct needs a positive whole number, got 0", "--depth"),
    ({"depth": True}, "pct needs a positive whole number, got True", "--depth"),
    ({"steps_hint": "8"}, "pct needs a positive whole number, got '8'", "--steps-hint"),
])
def test_bad_pct_parameters_name_the_option(params, message, key):
    e = refused("pct", **params)
    assert (e.bare, e.key) == (message, key)


@pytest.mark.parametrize("params, message, key", ids=[
    "bound", "negative", "bool", "str", "zeroth", "not-increasing", "negative-alt"], argvalues=[
    ({"bound": "sideways"}, "unknown dfs bound 'sideways'; choose one of delays, preemptions",
     "--bound"),
    ({"max_bound": -1}, "dfs needs a non-negative whole number, got -1", "--max-bound"),
    ({"max_bound": True}, "dfs needs a non-negative whole number, got True", "--max-bound"),
    ({"max_bound": "2"}, "dfs needs a non-negative whole number, got '2'", "--max-bound"),
    ({"prefix": "0:1"}, "bad dfs prefix item '0:1': expected increasing DECISION:ALTERNATIVE "
                        "pairs like 3:1,7:2 (decisions up to 10_000_000)", "--prefix"),
    ({"prefix": "2:1,2:1"}, "bad dfs prefix item '2:1': expected increasing "
                            "DECISION:ALTERNATIVE pairs like 3:1,7:2 (decisions up to "
                            "10_000_000)", "--prefix"),
    ({"prefix": "3:-1"}, "bad dfs prefix item '3:-1': expected increasing "
                         "DECISION:ALTERNATIVE pairs like 3:1,7:2 (decisions up to "
                         "10_000_000)", "--prefix"),
])
def test_bad_dfs_parameters_name_the_option(params, message, key):
    e = refused("dfs", **params)
    assert (e.bare, e.key) == (message, key)


def test_dfs_parameters_reach_the_schedule_and_its_replay_command():
    s = make_strategy("dfs", 7, bound="preemptions", max_bound=3, prefix="2:1,4:0")
    assert (s.seed, s.bound, s.max_bound, s.prefix) == (7, "preemptions", 3, [0, 1, 0, 0])
    assert s.params() == {"bound": "preemptions", "max_bound": 3, "prefix": "2:1"}
    # An explicit zero alternative is allowed, and a prefix may be given as a list.
    assert decode_prefix("3:0") == [0, 0, 0] and decode_prefix([0, 2]) == [0, 2]
    r = vmemu.run(DINING, strategy=s, driver="direct")
    assert r.seed == 7
    assert "--bound=preemptions" in r.replay_command() and "--prefix=2:1" in \
        r.replay_command()


def test_a_prefix_asking_for_a_task_that_is_not_there_is_one_line():
    # The first decision of dining philosophers chooses among 3 tasks: alternatives 0-2.
    with pytest.raises(UserError) as info:
        vmemu.run(DINING, strategy=DFSStrategy(0, prefix=[3]), driver="direct")
    assert info.value.bare == (
        "dfs prefix asks for alternative 3 at decision 1, which has only 3; the scenario "
        "changed since the prefix was recorded")
    assert info.value.key == "--prefix"


def test_a_delay_costs_as_many_units_as_the_tasks_it_skips():
    # Delay bounding: alternative j of a decision skips j tasks and costs j; the schedules
    # of bound 2 include single decisions that skip two tasks.
    skipped_two = 0
    for s, _ in zip(schedules("dfs", 0, max_bound=2), range(400)):
        vmemu.run(DINING, strategy=s, driver="direct")   # (the next one needs its trail)
        assert s.prefix_cost == sum(s.prefix) <= 2, s.prefix
        skipped_two += 2 in s.prefix
    assert skipped_two > 0


@pytest.mark.parametrize("seed", range(8))
def test_pct_change_points_fall_within_a_short_run_estimate(seed):
    # With a run estimate shorter than depth - 1, the change points are the first
    # decisions: depth 3 needs 2 distinct points, so they are decisions 1 and 2.
    assert set(PCTStrategy(seed, depth=3, steps_hint=1).change_at) == {1, 2}
    for hint in (2, 5):
        points = PCTStrategy(seed, depth=3, steps_hint=hint).change_at
        assert len(points) == 2 and set(points) <= set(range(1, hint + 1))
        assert sorted(points.values()) == [1, 2]


def test_a_switch_away_from_a_blocked_task_costs_no_preemption():
    # Preemption bounding charges a choice only when the current task could have gone on.
    for s, _ in zip(schedules("dfs", 0, bound="preemptions", max_bound=1), range(150)):
        _run(DINING, s)                         # (the next schedule needs this one's trail)
        charged = [j != 0 and not free for j, _n, _before, free in
                   s.trail[:len(s.prefix)]]
        assert s.prefix_cost == sum(charged) <= 1, s.prefix


def test_every_schedule_of_a_search_records_the_bound_it_was_made_under():
    search = DFSSearch("preemptions", 3)
    first = search.first()
    assert first.params() == {"bound": "preemptions", "max_bound": 3}
    _run(DINING, first)
    assert search.next(first).params()["max_bound"] == 3


@pytest.mark.parametrize("key, top", [("depth", 1000), ("steps_hint", 10**15)])
def test_pct_parameters_are_refused_just_past_their_range(key, top):
    assert getattr(make_strategy("pct", 0, **{key: top}), key) == top
    e = refused("pct", **{key: top + 1})
    assert (e.bare, e.key) == (f"pct needs a whole number from 1 to {top:_}, got {top + 1}",
                               "--" + key.replace("_", "-"))


def test_dfs_prefix_alternatives_up_to_the_step_bound_are_accepted():
    assert decode_prefix("1:10000000") == [10**7]
    e = refused("dfs", prefix="1:10000001")
    assert e.key == "--prefix" and "'1:10000001'" in e.bare
    # A long bad item is quoted by its first 40 characters.
    e = refused("dfs", prefix="x" * 60)
    assert e.bare.startswith(f"bad dfs prefix item {'x' * 40!r}: expected increasing")


def _deepen(sc, budget, **params):
    """Run a dfs stream of ``sc`` for at most ``budget`` schedules: (schedules run, the
    search's coverage after them)."""
    it = schedules("dfs", 0, **params)
    n = 0
    for s in islice(it, budget):
        _run(sc, s)                              # (the next schedule needs this one's trail)
        n += 1
    return n, it.search.coverage(n)


def test_dfs_coverage_says_the_whole_space_was_run():
    n, cov = _deepen(ABBA_ORDERED, 5000)
    assert cov == {"bound": "delays", "max_bound": None, "complete": cov["complete"],
                   "whole": True, "summary": f"all {n} schedules explored: that is every "
                   "schedule of the scenario, the whole space is exhausted"}
    assert cov["complete"] >= 1


@pytest.mark.parametrize("bound, max_bound", [
    ("delays", 1), ("delays", 2), ("preemptions", 0), ("preemptions", 1)],
    ids=["d1", "d2", "p0", "p1"])   # (the mutation subset deselects ids with "preemptions")
def test_dfs_coverage_at_max_bound_says_more_was_not_explored(bound, max_bound):
    unit = f"{max_bound} {bound[:-1] if max_bound == 1 else bound}"
    n, cov = _deepen(DINING, 5000, bound=bound, max_bound=max_bound)
    assert (cov["complete"], cov["whole"], cov["max_bound"]) == (max_bound, False, max_bound)
    assert cov["summary"] == (f"no failure in all {n} schedules with \u2264 {unit}; "
                              f"more {bound} not explored")


def test_dfs_coverage_when_the_budget_ends_inside_a_level():
    # Preemption bounding: level 0 of dining holds many schedules (switches at blocking
    # points are free), so a budget of 2 ends inside it.
    n, cov = _deepen(DINING, 2, bound="preemptions")
    assert (n, cov["complete"], cov["whole"]) == (2, -1, False)
    assert cov["summary"] == ("no failure in the first 2 schedules with 0 preemptions; the "
                              "budget ran out, more preemptions not explored")
    level0 = _deepen(DINING, 5000, bound="preemptions", max_bound=0)[0]
    n, cov = _deepen(DINING, level0 + 1, bound="preemptions")
    assert (cov["complete"], cov["whole"]) == (0, False)
    assert cov["summary"] == (f"no failure in {level0 + 1} schedules: all with \u2264 0 "
                              "preemptions and some with 1; the budget ran out, more "
                              "preemptions not explored")


def test_dfs_prefix_decisions_up_to_the_step_bound_are_accepted():
    from vmemu._bounds import MAX_STEPS
    prefix = decode_prefix(f"{MAX_STEPS}:1")
    assert len(prefix) == MAX_STEPS and prefix[-1] == 1 and not any(prefix[:100])
    with pytest.raises(UserError, match="bad dfs prefix item"):
        decode_prefix(f"{MAX_STEPS + 1}:1")


def test_random_flips_coins_from_the_seed_hash_then_the_twister():
    # What a printed seed means, pinned (a replay command and every saved seed rely on
    # it): the first 512 two-way choices are the bits of BLAKE2b(seed), most significant
    # first of the digest read little-endian; later ones are getrandbits(1) of a
    # Mersenne Twister seeded with the seed; a pick among n > 2 takes 30 Twister bits.
    import hashlib
    import random
    for seed in (0, 12345, 2**61 + 7):
        d = hashlib.blake2b(b"%d" % seed, digest_size=64, person=b"vmemu-random").digest()
        x = int.from_bytes(d, "little")
        mt = random.Random(seed)
        want = [(x >> (511 - i)) & 1 for i in range(512)] + [mt.getrandbits(1)
                                                              for _ in range(100)]
        want.append((mt.getrandbits(30) * 5) >> 30)
        s = make_strategy("random", seed)
        got = [s.pick_coin() if i % 2 else s.pick_index(2) for i in range(612)]
        assert got + [s.pick_index(5)] == want


def test_pct_runs_the_highest_priority_task_lowest_tid_first_on_a_tie():
    # pick_task against the rule written out: the highest priority wins and, were two
    # equal, the lower tid. Runnable sets of 1-5 tasks, change points included, with
    # priorities forced equal now and then.
    import random
    draw = random.Random(7)
    tasks = [SimpleNamespace(tid=i, name=f"t{i}") for i in range(6)]
    for seed in range(200):
        s = PCTStrategy(seed, depth=3, steps_hint=8)
        current = None
        for _ in range(12):
            runnable = sorted(draw.sample(tasks, draw.randint(1, 5)), key=lambda t: t.tid)
            if len(runnable) > 1 and draw.random() < 0.2:
                for t in runnable:   # a tie (impossible in a real run)
                    s.priority[t.tid] = 50.0
            got = s.pick_task(runnable, current)
            top = max(s.priority[t.tid] for t in runnable)
            assert got is min((t for t in runnable if s.priority[t.tid] == top),
                              key=lambda t: t.tid)
            current = got


def test_pct_draws_pinned_to_the_seed():
    # What a PCT seed means: its private Twister first samples the d - 1 change points
    # among decisions 1..steps_hint, then gives each task, on first sight in run-queue
    # order, the priority depth + random().
    import random
    s = PCTStrategy(11, depth=3, steps_hint=20)
    mt = random.Random(11)
    points = sorted(mt.sample(range(1, 21), 2))
    assert s.change_at == {points[0]: 1, points[1]: 2}
    s.pick_task([SimpleNamespace(tid=i) for i in range(3)], None)
    assert s.priority == {i: 3 + mt.random() for i in range(3)}


def test_a_random_subclass_that_picks_its_own_way_is_asked_at_every_choice():
    # RandomStrategy offers the kernel a fast path (pick_index, pick_coin) that skips
    # pick_task; a subclass that overrides pick_task must lose it, on every driver, and
    # one that overrides only index must have its own index used.
    from vmemu._strategies.random import RandomStrategy

    class Last(RandomStrategy):
        asked = 0

        def pick_task(self, runnable, current):
            Last.asked += 1
            return runnable[-1]

    class Second(RandomStrategy):
        def index(self, n):
            return 1

    sc = vmemu.load(str(CONTRACT / "abba_ordered.yaml"))
    for driver in ("direct", "trio"):
        Last.asked = 0
        r = vmemu.run(sc, strategy=Last(3), driver=driver)
        assert Last.asked == len(r.trace.tape) > 0 and r.verdict == "ok"
        s = Second(3)
        assert s.pick_index(2) == 1 and s.pick_coin is not None
    assert Last(3).pick_index is None and getattr(Last(3), "pick_coin", None) is None
