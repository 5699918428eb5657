"""`vmemu lockdep`: lock-order and reclaim cycles predicted from runs that never deadlock."""

from __future__ import annotations

import json
import shlex
import textwrap
from pathlib import Path

import pytest

from conftest import CONTRACT, ROOT, vmemu_cli
from vmemu._cli import main
from vmemu._explore import explore
from vmemu._strategies import schedule_seed
from vmemu._lockdep import lockdep
from vmemu._lockdep.report import render
from vmemu._run import replay, run

SELFTEST = ROOT / "scenarios" / "selftest"
LOCKDEP = ROOT / "scenarios" / "lockdep"
EXT2 = str(LOCKDEP / "ext2_ample_memory.yaml")
EXT2_NOFS = str(LOCKDEP / "ext2_ample_memory_nofs.yaml")


def cli(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI in this process; returns (exit code, stdout)."""
    code = main(list(args))
    return code, capsys.readouterr().out


def cycle_sets(res) -> list[frozenset[str]]:
    return [frozenset(c.locks) for c in res.cycles]


def line_of(path: str | Path, text: str, nth: int = 1) -> int:
    """The 1-based line of the ``nth`` line containing ``text``."""
    hits = [i for i, ln in enumerate(Path(path).read_text().splitlines(), 1) if text in ln]
    return hits[nth - 1]


def scenario(write_scenario, text: str) -> str:
    return write_scenario(textwrap.dedent(text).lstrip("\n"))


# ---------------------------------------------------------------- the 1999 ext2 bug

def test_ext2_with_ample_memory_never_deadlocks_but_lockdep_sees_the_cycle(capsys):
    assert explore(EXT2, runs=200).verdict == "ok"
    code, out = cli(capsys, "lockdep", EXT2, "--runs", "20", "--confirm", "0", "--json")
    d = json.loads(out)
    assert code == 1 and d["found"] is True
    [cycle] = d["cycles"]
    assert cycle["chain"] == "superblock -> fs_reclaim -> superblock"
    assert cycle["confirmed"] is False and cycle["replay"] is None
    first, back = cycle["edges"]
    # superblock -> fs_reclaim: the GFP_KERNEL allocation in bread, under the lock.
    assert (first["from"], first["to"], first["task"]) == \
        ("superblock", "fs_reclaim", "ext2_new_block")
    assert first["at"] == f"{EXT2}:{line_of(EXT2, 'alloc: 1')}"
    assert [f["frame"] for f in first["stack"]] == ["ext2_new_block", "bread"]
    assert first["held"][0]["at"] == f"{EXT2}:{line_of(EXT2, '- lock: superblock', 2)}"
    # fs_reclaim -> superblock: learned from the synthetic writeback of the shm class.
    assert (back["from"], back["to"]) == ("fs_reclaim", "superblock")
    assert back["at"] == f"{EXT2}:{line_of(EXT2, '- lock: superblock', 1)}"
    assert back["seed"] is None and "synthetic" in back["run"]
    assert d["synthetic_writeback"] == ["shm"]


def test_targeted_search_turns_the_ample_memory_prediction_into_a_real_deadlock(tmp_path):
    # No learning schedule deadlocks (memory never runs short), but the targeted search
    # exhausts memory at an allocation under the superblock lock: the 1999 deadlock.
    res = lockdep(EXT2, runs=20, findings_dir=tmp_path)
    assert res.verdicts == {"ok": 20} and res.confirm == 200
    [c] = res.cycles
    assert c.confirmed_by == "targeted" and c.replay.startswith("vmemu replay ")
    path = shlex.split(c.replay)[2]
    r = replay(path)
    assert r.verdict == "deadlock" and {x["waits_for"] for x in r.cycle} == \
        {"semaphore superblock"}
    assert r.trace.faults and r.trace.faults.endswith("confirm_faults.yaml")
    # Without a findings folder the replay is the run command of the schedule as found.
    c2 = lockdep(EXT2, runs=20).cycles[0]
    args = shlex.split(c2.replay)
    assert args[:2] == ["vmemu", "run"] and "--faults" in args
    again = run(args[2], seed=int(args[args.index("--seed") + 1]),
                strategy=args[args.index("--strategy") + 1],
                faults=args[args.index("--faults") + 1],
                **{k.lstrip("-").split("=")[0]: int(k.split("=")[1])
                   for k in args if k.startswith("--") and "=" in k})
    assert again.verdict == "deadlock"


def test_targeted_search_cannot_confirm_a_cycle_whose_tasks_never_overlap(capsys):
    # selftest AB-BA: t2 starts after t1 has finished, so no schedule or fault can make
    # them deadlock; the report says what was tried.
    code, out = cli(capsys, "lockdep", str(SELFTEST / "abba.yaml"), "--runs", "3")
    assert code == 1
    assert ("not reproduced: none of the 3 schedules nor of 200 schedules with lock "
            "preemptions and low memory deadlocked on these locks") in out
    code, out = cli(capsys, "lockdep", str(SELFTEST / "abba.yaml"), "--runs", "3",
                    "--confirm", "0")
    assert "not reproduced: none of the 3 schedules deadlocked on these locks" in out


def test_ext2_text_report_has_lockdeps_shape(capsys):
    code, out = cli(capsys, "lockdep", EXT2, "--runs", "5", "--confirm", "0")
    assert code == 1
    for needle in ("WARNING: possible circular locking dependency detected",
                   "ext2_new_block is trying to acquire lock:\n  (fs_reclaim) at bread",
                   "but task is already holding lock:\n  (superblock) at ext2_new_block",
                   "the existing dependency chain (in reverse order) is:",
                   "-> #1 (superblock):", "-> #0 (fs_reclaim):",
                   "superblock --> fs_reclaim --> superblock",
                   "Possible unsafe locking scenario:", "*** DEADLOCK ***",
                   "1 lock held by ext2_new_block:", "not reproduced: none of the 5 schedules"):
        assert needle in out, needle
    table = out[out.index("Possible unsafe locking scenario"):out.index("*** DEADLOCK")]
    heads = table.splitlines()[2].split()
    assert heads == ["ext2_new_block", "reclaim:shm"]   # one column per task


def test_nofs_scope_around_the_bitmap_read_removes_the_cycle(capsys):
    res = lockdep(EXT2_NOFS, runs=10)
    assert explore(EXT2_NOFS, runs=100).verdict == "ok"
    assert res.cycles == [] and not res.found
    # The writeback dependency was still learned: the cycle is gone, not unobserved.
    assert ("fs_reclaim", "superblock") in res.graph.edges
    assert ("superblock", "fs_reclaim") not in res.graph.edges
    code, out = cli(capsys, "lockdep", EXT2_NOFS, "--runs", "3")
    assert code == 0 and "no lock-order problems found" in out


def test_gfp_nofs_allocation_also_removes_the_cycle(write_scenario):
    text = Path(EXT2).read_text().replace("gfp: GFP_KERNEL", "gfp: GFP_NOFS")
    assert lockdep(write_scenario(text), runs=5).cycles == []


def test_memory_pressure_deadlock_confirms_the_prediction():
    # The contract scenario really deadlocks: the report carries the replay command.
    res = lockdep(str(CONTRACT / "ext2_bitmap_reclaim.yaml"), runs=5)
    [c] = [c for c in res.cycles if set(c.locks) == {"superblock", "fs_reclaim"}]
    assert c.replay and c.replay.startswith("vmemu run ")
    seed = int(shlex.split(c.replay)[shlex.split(c.replay).index("--seed") + 1])
    assert run(str(CONTRACT / "ext2_bitmap_reclaim.yaml"), seed=seed).verdict == "deadlock"


def test_noio_scope_removes_io_reclaim_edges(write_scenario):
    base = """
        name: noio
        memory:
          pages: 1024
          watermarks: {min: 2, low: 4, high: 8}
          classes:
            swap: {writeback: swap_out, needs: [io]}
        locks: {queue: mutex}
        routines:
          swap_out:
            - lock: queue
            - unlock: queue
        tasks:
          user:
            - fill: {class: swap, pages: 2}
          driver:
            - lock: queue
            - %s
            - free: p
            - unlock: queue
        """
    alloc = "{alloc: 1, gfp: GFP_NOFS, as: p}"
    res = lockdep(scenario(write_scenario, base % alloc), runs=3)
    assert [c.locks for c in res.cycles] == [["queue", "io_reclaim"]]
    noio = "{flags: [PF_MEMALLOC_NOIO], do: [%s]}" % alloc
    res = lockdep(scenario(write_scenario, base % noio), runs=3)
    assert res.cycles == [] and ("io_reclaim", "queue") in res.graph.edges


# ---------------------------------------------------------------- lib/locking-selftest.c

CYCLES = {"abba": "AB", "abbcca": "ABC", "abcabc": "ABC", "abbccdda": "ABCD",
          "abcdbdda": "ABD", "abcdbcda": "ABCD"}


@pytest.mark.parametrize("name", sorted(CYCLES))
def test_selftest_cycles_are_reported_though_no_run_deadlocks(name):
    path = SELFTEST / f"{name}.yaml"
    assert explore(path, runs=20).verdict == "ok"
    res = lockdep(path, runs=3)
    assert cycle_sets(res) == [frozenset(CYCLES[name])]
    [c] = res.cycles
    assert c.replay is None and res.found
    # The closing edge is the last task's (the "fail" line of the selftest).
    assert c.chain[0].first.task == f"t{len(name) // 2}"


@pytest.mark.parametrize("name", sorted(CYCLES))
def test_selftest_orderly_variants_are_not_reported(name):
    res = lockdep(SELFTEST / f"{name}_ordered.yaml", runs=3)
    assert res.graph.edges and not res.found


def test_aa_on_a_mutex_is_recursive_locking_and_deadlocks_for_real(capsys):
    path = SELFTEST / "aa.yaml"
    res = lockdep(path, runs=3)
    assert res.cycles == []
    [r] = res.graph.recursions.values()
    assert (r.lock, r.first.task, r.first.at) == ("A", "t1", f"{path}:{line_of(path, 'should fail')}")
    assert r.held.at == f"{path}:{line_of(path, '- lock: A')}"
    assert r.replay == f"vmemu run {path} --seed {schedule_seed(0, 0)} --strategy random"
    code, out = cli(capsys, "lockdep", str(path), "--runs", "3")
    assert code == 1 and "WARNING: possible recursive locking detected" in out
    assert "reproduced: a schedule deadlocked on A; replay: vmemu run" in out


@pytest.mark.parametrize("name,lock,text", [
    ("double_unlock", "A", "fail"),
    ("unlock_not_held", "A", "unlock: A"),
])
def test_bad_unlocks_are_reported(capsys, name, lock, text):
    path = SELFTEST / f"{name}.yaml"
    res = lockdep(path, runs=2)
    [b] = res.graph.bad_unlocks.values()
    assert (b.lock, b.first.at) == (lock, f"{path}:{line_of(path, text)}")
    assert b.replay == f"vmemu run {path} --seed {schedule_seed(0, 0)} --strategy random"
    code, out = cli(capsys, "lockdep", str(path), "--runs", "2")
    assert code == 1 and "WARNING: bad unlock balance detected!" in out
    assert f"t1 is trying to release lock ({lock}) at:" in out


def test_every_selftest_and_lockdep_scenario_reaches_its_expect(capsys):
    code, out = cli(capsys, "check", str(SELFTEST), str(LOCKDEP), "--runs", "30")
    assert code == 0, out


# ---------------------------------------------------------------- rwsem rules

def test_read_write_inversion_is_reported():
    res = lockdep(LOCKDEP / "rwsem_read_write_inversion.yaml", runs=3)
    [c] = res.cycles
    assert set(c.locks) == {"mm", "inode"}
    modes = {(e.src, e.dst): (e.src_mode, e.dst_mode) for e in c.edges}
    assert modes == {("mm", "inode"): ("read", "write"), ("inode", "mm"): ("write", "write")}
    assert c.needs_writer == []


def test_retaking_a_held_read_lock_is_reported():
    res = lockdep(SELFTEST / "rsem_aa1.yaml", runs=3)
    [r] = res.graph.recursions.values()
    assert (r.lock, r.mode, r.held.mode) == ("X", "read", "read")


def test_readers_that_never_nest_are_not_reported():
    res = lockdep(LOCKDEP / "rwsem_readers_only.yaml", runs=20)
    assert res.verdicts == {"ok": 20} and not res.found


def test_read_then_write_on_one_rwsem_deadlocks_and_is_recursive(write_scenario):
    path = scenario(write_scenario, """
        name: rsem-aa2
        locks: {X: rwsem}
        tasks:
          t:
            - read_lock: X
            - lock: X
        """)
    [r] = lockdep(path, runs=2).graph.recursions.values()
    assert (r.mode, r.held.mode) == ("write", "read") and r.replay


def test_a_read_only_cycle_is_reported_and_says_it_needs_a_writer(write_scenario, capsys):
    text = """
        name: read-cycle
        locks: {A: rwsem, B: rwsem}
        tasks:
          t1:
            - read_lock: A
            - read_lock: B
            - read_unlock: B
            - read_unlock: A
          t2:
            start: 5
            steps:
              - read_lock: B
              - read_lock: A
              - read_unlock: A
              - read_unlock: B
          %s
        """
    path = scenario(write_scenario, text % "")
    [c] = lockdep(path, runs=2).cycles
    assert c.needs_writer == ["A", "B"]
    code, out = cli(capsys, "lockdep", path, "--runs", "2")
    assert "note: no task takes A, B for write" in out
    writers = "w: {start: 9, steps: [{lock: A}, {unlock: A}, {lock: B}, {unlock: B}]}"
    path = scenario(write_scenario, text % writers)
    [c] = lockdep(path, runs=2).cycles
    assert c.needs_writer == []


# ---------------------------------------------------------------- other lock rules

def test_recursive_lock_reentry_is_not_reported(write_scenario):
    path = scenario(write_scenario, """
        name: reentry
        locks: {R: recursive, M: mutex}
        tasks:
          t:
            - lock: R
            - lock: R
            - lock: M
            - unlock: M
            - unlock: R
            - unlock: R
        """)
    res = lockdep(path, runs=2)
    assert not res.found and list(res.graph.edges) == [("R", "M")]


def test_trylock_adds_no_edge_but_what_is_taken_under_it_does(write_scenario):
    text = """
        name: trylock
        locks: {A: mutex, B: mutex}
        tasks:
          t1:
            - %s: A
            - lock: B
            - unlock: B
            - unlock: A
          t2:
            start: 5
            steps:
              - lock: B
              - trylock: A
              - unlock: A
              - unlock: B
        """
    res = lockdep(scenario(write_scenario, text % "trylock"), runs=2)
    # t1: A (trylock) held while B is taken -> A->B. t2 only trylocks A: no B->A.
    assert list(res.graph.edges) == [("A", "B")] and not res.found
    text2 = text.replace("trylock: A\n              - unlock: A",
                         "lock: A\n              - unlock: A")
    res = lockdep(scenario(write_scenario, text2 % "trylock"), runs=2)
    assert cycle_sets(res) == [frozenset("AB")]


def test_semaphore_released_by_another_task_is_no_longer_held(write_scenario):
    path = scenario(write_scenario, """
        name: sem-handoff
        locks: {S: semaphore, M: mutex}
        events: {given: completion}
        tasks:
          taker:
            - lock: S
            - wait: given
            - lock: M
            - unlock: M
          giver:
            start: 5
            steps:
              - unlock: S
              - complete: given
          other:
            start: 10
            steps:
              - lock: M
              - lock: S
              - unlock: S
              - unlock: M
        """)
    res = lockdep(path, runs=5)
    assert res.verdicts == {"ok": 5}
    assert ("S", "M") not in res.graph.edges and not res.found


def test_a_real_abba_is_confirmed_with_a_replay_that_deadlocks():
    res = lockdep(CONTRACT / "abba.yaml", runs=20)
    [c] = res.cycles
    assert c.replay
    args = shlex.split(c.replay)
    assert run(args[2], seed=int(args[args.index("--seed") + 1])).verdict == "deadlock"


def _rotations(*names: str) -> list[list[str]]:
    """Every rotation of the cycle ``names`` (lockdep reports it from whichever
    acquisition closed it first, which depends on the schedules it learned from)."""
    return [list(names[i:] + names[:i]) for i in range(len(names))]


def test_dining_philosophers_table_has_one_column_per_philosopher(capsys):
    code, out = cli(capsys, "lockdep", str(CONTRACT / "dining_philosophers.yaml"),
                    "--runs", "10")
    assert code == 1
    chain = out[out.index("Chain exists of:"):].splitlines()[1].split(" --> ")
    assert chain[0].strip() == chain[-1].strip()
    assert [c.strip() for c in chain[:-1]] in _rotations("fork0", "fork1", "fork2")
    table = out[out.index("Possible unsafe locking scenario"):out.index("*** DEADLOCK")]
    columns = table.splitlines()[2].split()
    assert sorted(columns) == ["philosopher0", "philosopher1", "philosopher2"]
    # Each philosopher first takes its left fork (fork i), then all block on their
    # right fork (fork i+1 mod 3): one row per operation, in its philosopher's column.
    rows = [ln for ln in table.splitlines()[4:] if ln.strip()]
    width = len(table.splitlines()[3]) // 3 + 1
    ops = [(columns[(len(ln) - len(ln.lstrip())) // width], ln.strip()) for ln in rows]
    left = [(p, f"lock(fork{p[-1]});") for p in columns]
    right = [(p, f"lock(fork{(int(p[-1]) + 1) % 3});") for p in columns]
    assert ops[:3] == left and sorted(ops[3:]) == sorted(right)


# ---------------------------------------------------------------- determinism, input

def test_lockdep_json_is_deterministic_across_drivers_and_processes(tmp_path):
    a = lockdep(EXT2, runs=5, driver="direct", findings_dir=tmp_path / "a").to_json()
    b = lockdep(EXT2, runs=5, driver="trio", findings_dir=tmp_path / "b").to_json()
    assert json.dumps(a).replace("/b/", "/a/") == json.dumps(b).replace("/b/", "/a/")
    p = vmemu_cli("lockdep", EXT2, "--runs", "5", "--json", "--findings", str(tmp_path / "c"),
                  env={"PYTHONHASHSEED": "7"})
    assert p.returncode == 1
    assert p.stdout.replace("/c/", "/a/") == json.dumps(a, indent=2).replace("/c/", "/a/") + "\n"
    # The confirming traces themselves are byte for byte the same.
    [fa], [fc] = (sorted((tmp_path / d).iterdir()) for d in ("a", "c"))
    assert fa.name == fc.name and fa.read_bytes() == fc.read_bytes()


def test_bad_input_is_one_line_exit_2():
    p = vmemu_cli("lockdep", "no_such.yaml")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "no_such.yaml" in p.stderr
    p = vmemu_cli("lockdep", EXT2, "--runs", "0")
    assert p.returncode == 2 and "--runs" in p.stderr


# ---------------------------------------------------------------- lock classes

def test_counted_locks_are_separate_nodes_unless_grouped_into_a_class(capsys, write_scenario):
    base = (CONTRACT / "dining_philosophers.yaml").read_text()
    code, out = cli(capsys, "lockdep", str(CONTRACT / "dining_philosophers.yaml"),
                    "--runs", "5", "--json")
    d = json.loads(out)
    [chain] = [c["chain"].split(" -> ") for c in d["cycles"]]
    assert code == 1 and chain[:-1] in _rotations("fork0", "fork1", "fork2")
    grouped = write_scenario(base.replace("fork: {kind: mutex, count: 3}",
                                          "fork: {kind: mutex, count: 3, class: fork}"))
    code, out = cli(capsys, "lockdep", grouped, "--runs", "5")
    # One class: nesting two forks is lockdep's "recursive locking" on class fork.
    assert code == 1 and "possible recursive locking detected" in out
    assert "(fork) at" in out and "circular" not in out


def test_lockdep_reports_the_cycle_through_the_completion_of_event_lockdep():
    # ../shared/lang/event_lockdep.yaml explores ok (the signaller runs first), yet
    # L -> done (waiting for done while holding L) and done -> L (L taken before
    # complete(done)) form a cycle that lockdep through events must report.
    from conftest import LANG
    path = str(LANG / "event_lockdep.yaml")
    res = lockdep(path, runs=20, confirm=0, driver="direct")
    assert res.verdicts == {"ok": 20}
    assert [sorted(c.locks) for c in res.cycles] == [["L", "done"]]
    text = render(res)
    assert "waiter is trying to wait for event:\n  (completion done)" in text
    assert "signaller took L before it signalled (completion done)" in text
    assert "wait_for_completion(done);" in text and "/* before complete(done) */" in text
    d = res.to_json()
    edges = {(e["from"], e["to"]): (e["from_mode"], e["to_mode"]) for e in d["dependencies"]}
    assert edges == {("L", "done"): ("write", "wait"), ("done", "L"): ("signal", "write")}


def test_a_timed_wait_records_no_dependency_so_its_cycle_is_not_predicted(capsys,
                                                                        write_scenario):
    # event_lockdep's shape with `timeout: 5` on the wait (wait_for_completion_timeout):
    # the timeout always ends the wait, so L -> done is no dependency (DEPT's rule) and
    # there is no cycle. Before, lockdep printed `L --> done --> L`, *** DEADLOCK *** and
    # exited 1 although no schedule can deadlock. The untimed wait is still predicted.
    from conftest import LANG
    untimed = (LANG / "event_lockdep.yaml").read_text()
    assert "      - wait: done\n" in untimed
    timed = write_scenario(untimed.replace("      - wait: done\n",
                                           "      - wait: done\n        timeout: 5\n"),
                           "timed.yaml")
    assert explore(timed, runs=50).verdict == "ok"
    code, out = cli(capsys, "lockdep", timed, "--runs", "20")
    assert code == 0, out
    assert "DEADLOCK" not in out and "wait_for_completion(done)" not in out
    res = lockdep(timed, runs=20, confirm=0, driver="direct")
    assert res.cycles == [] and not res.found
    # The signaller's half is still learned; the waiter's L -> done is not.
    assert [(e["from"], e["to"]) for e in res.to_json()["dependencies"]] == [("done", "L")]
    code, out = cli(capsys, "lockdep", str(LANG / "event_lockdep.yaml"), "--runs", "20",
                    "--confirm", "0")
    assert code == 1 and "L --> done --> L" in out and "*** DEADLOCK ***" in out


def test_what_a_task_signals_after_a_timed_wait_does_not_depend_on_it(write_scenario):
    # A signal records `E -> what the signaller got through`; a timed wait is not
    # something it must get through (the timeout lets it pass), untimed it is.
    text = textwrap.dedent("""
        name: timed-then-signal
        expect: ok
        events: {a: completion, b: completion}
        tasks:
          t1:
            - wait: a
              timeout: 3
            - complete: b
          t2:
            - complete: a
        """).lstrip("\n")
    deps = lambda path: {(e["from"], e["to"]) for e in
                         lockdep(path, runs=5, confirm=0).to_json()["dependencies"]}
    assert deps(write_scenario(text, "timed.yaml")) == set()
    untimed = text.replace("      timeout: 3\n", "")
    assert "timeout" not in untimed
    assert deps(write_scenario(untimed, "untimed.yaml")) == {("b", "a")}
