"""Determinism is the product: same inputs, same trace hash, in any process, under any
PYTHONHASHSEED, on either driver; saved traces replay byte for byte."""

from __future__ import annotations

import json
import shutil

import pytest

import vmemu
from conftest import CONTRACT, cli_json, seed_reaching, vmemu_cli, vmemu_cli_all

ABBA = str(CONTRACT / "abba.yaml")
ABBA_SEED = seed_reaching(ABBA, "deadlock")  # a schedule that deadlocks


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_same_hash_across_processes_and_hash_seeds(seed):
    runs = vmemu_cli_all(*((("run", ABBA, "--seed", str(seed), "--json"),
                            {"PYTHONHASHSEED": hs}) for hs in ("0", "1", "12345", "random")))
    assert all(p.returncode in (0, 1) for p in runs), [p.stderr for p in runs]
    hashes = {json.loads(p.stdout)["trace_hash"] for p in runs}
    assert len(hashes) == 1


def test_different_seeds_give_different_schedules():
    hashes = {vmemu.run(ABBA, seed=s, driver="direct").trace_hash for s in range(20)}
    assert len(hashes) > 1


def test_saved_trace_replays_to_same_hash_and_verdict(tmp_path):
    out = tmp_path / "t.json"
    run = cli_json("run", ABBA, "--seed", str(ABBA_SEED), "--trace", str(out))
    assert run["verdict"] == "deadlock"
    assert run["trace"] == str(out)
    assert run["replay"] == f"vmemu replay {out}"
    replays = vmemu_cli_all(*(("replay", str(out), "--driver", driver, "--json")
                              for driver in ("trio", "direct")), env={"PYTHONHASHSEED": "99"})
    for p in replays:
        assert p.returncode == 1, p.stderr
        rep = json.loads(p.stdout)
        assert rep["trace_hash"] == run["trace_hash"]
        assert rep["verdict"] == run["verdict"]
        assert rep["cycle"] == run["cycle"]


def test_trace_of_changed_scenario_is_refused_naming_the_step(tmp_path):
    sc = tmp_path / "abba.yaml"
    shutil.copy(ABBA, sc)
    out = tmp_path / "t.json"
    run = cli_json("run", str(sc), "--seed", str(ABBA_SEED), "--trace", str(out))
    assert run["verdict"] == "deadlock"
    # t2 now takes A first: the recorded schedule no longer fits.
    sc.write_text(sc.read_text().replace("  t2:\n    - lock: B", "  t2:\n    - lock: A"))
    p = vmemu_cli("replay", str(out))
    assert p.returncode == 2
    line = p.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in p.stderr
    assert "diverged" in line
    assert "line" in line or ".yaml:" in line     # names the step


def test_replay_of_a_broken_trace_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    p = vmemu_cli("replay", str(bad))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert str(bad) in p.stderr and "Traceback" not in p.stderr
    bad.write_text(json.dumps({"format": "something-else"}))
    p = vmemu_cli("replay", str(bad))
    assert p.returncode == 2 and "not a vmemu trace" in p.stderr


def test_trio_and_direct_drivers_agree_on_abba():
    for seed in range(10):
        a = vmemu.run(ABBA, seed=seed, driver="trio")
        b = vmemu.run(ABBA, seed=seed, driver="direct")
        assert (a.trace_hash, a.verdict, a.trace.tape) == (b.trace_hash, b.verdict, b.trace.tape)
