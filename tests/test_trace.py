"""Saved traces: compact on disk, exact round trip, damage refused with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vmemu
from conftest import CONTRACT, seed_reaching, vmemu_cli
from vmemu._errors import TraceError
from vmemu._trace import (Trace, canonical_json, decode_events, decode_ints, encode_events,
                          encode_ints, events_hash)

ABBA = str(CONTRACT / "abba.yaml")
ABBA_SEED = seed_reaching(ABBA, "deadlock")  # a schedule that deadlocks


def _long_scenario(tmp_path: Path, reps: int) -> str:
    p = tmp_path / "long.yaml"
    p.write_text("name: long\nlimits: {steps: 1000000}\nlocks: {m: mutex}\ntasks:\n"
                 "  w:\n    count: 3\n    steps:\n"
                 f"      - repeat: {reps}\n        do:\n          - lock: m\n"
                 "          - yield\n          - unlock: m\n          - sleep: 1\n")
    return str(p)


def test_save_load_round_trips_exactly(tmp_path):
    r = vmemu.run(_long_scenario(tmp_path, 200), seed=3, driver="direct")
    assert len(r.trace.tape) > 100 and len(r.trace.events) > 1000
    path = r.trace.save(tmp_path / "t.json")
    back = Trace.load(path)
    assert back == r.trace
    assert events_hash(back.events) == r.trace_hash
    # and it still replays, byte for byte
    assert vmemu.replay(path, driver="direct").trace_hash == r.trace_hash


def test_unusual_event_arguments_keep_their_type():
    # 1, 1.0 and True are equal in Python but spelled differently in the hashed JSON.
    events = [[0, "a", "x", 1, 3], [0, "a", "x", True, 3], [0, "a", "x", 1.0, 3],
              [7, "b", "y", [1, "two"], 0], [7, "b", "y", None, 0], [2, "ü", "z", "é", 9],
              [2**40, "b", "y", -5, 12]] + [[i, "t", "op", str(i % 40), i % 7] for i in range(300)]
    back = decode_events(json.loads(json.dumps(encode_events(events))))
    assert back == events
    assert canonical_json(back) == canonical_json(events)
    values = [0, 1, 31, 32, 33, 1023, 1024, 2**50]
    assert decode_ints(encode_ints(values)) == values


def test_a_long_run_costs_at_most_16_bytes_per_decision(tmp_path):
    r = vmemu.run(_long_scenario(tmp_path, 3000), seed=1, driver="direct")
    path = Path(r.trace.save(tmp_path / "long.json"))
    per_decision = path.stat().st_size / len(r.trace.tape)
    assert len(r.trace.tape) > 10_000
    assert per_decision <= 16, per_decision


@pytest.mark.parametrize("version", [1, 2])
def test_traces_of_older_versions_are_refused_in_one_line(tmp_path, version):
    # Version 3 changed what an exploration's seeds mean (independent splitmix64 seeds):
    # an older file's `found by` seed names another schedule, so it is refused.
    r = vmemu.run(ABBA, seed=ABBA_SEED, driver="direct")
    d = r.trace.to_dict()
    d["version"] = version
    if version == 1:
        d.update(tape=list(r.trace.tape), events=r.trace.events)
    old = tmp_path / f"v{version}.json"
    old.write_text(json.dumps(d))
    p = vmemu_cli("replay", str(old))
    assert p.returncode == 2 and p.stdout == "" and "Traceback" not in p.stderr
    assert p.stderr.strip() == (f"vmemu: error: {old}: version: trace version {version} was "
                                "written by an older vmemu, whose exploration seeds meant "
                                "other schedules; re-record it with this vmemu")


def _saved(tmp_path: Path) -> tuple[Path, dict]:
    r = vmemu.run(ABBA, seed=ABBA_SEED, driver="direct")
    path = Path(r.trace.save(tmp_path / "t.json"))
    return path, json.loads(path.read_text())


def _damage(d: dict, how: str) -> str:
    if how == "truncated":
        return json.dumps(d)[:-40]
    d = json.loads(json.dumps(d))
    if how == "event edited":
        d["events"]["rows"][0][1] = "intruder"
    elif how == "event dropped":
        d["events"]["stream"] = d["events"]["stream"][1:]
    elif how == "stream garbage":
        d["events"]["stream"] += "!"
    elif how == "stream cut in a number":
        d["events"]["stream"] += "Z"        # a continuation digit with nothing after it
    elif how == "row out of range":
        d["events"]["stream"] = "y" + d["events"]["stream"]
    elif how == "tape garbage":
        d["tape"] = "0\"1"
    elif how == "tape not a string":
        d["tape"] = {"x": 1}
    elif how == "future version":
        d["version"] = 99
    elif how == "hash missing":
        del d["trace_hash"]
    return json.dumps(d)


@pytest.mark.parametrize("how", ["truncated", "event edited", "event dropped", "stream garbage",
                                 "stream cut in a number", "row out of range", "tape garbage",
                                 "tape not a string", "future version", "hash missing"])
def test_a_damaged_trace_is_refused_with_one_line(tmp_path, how):
    path, d = _saved(tmp_path)
    path.write_text(_damage(d, how))
    with pytest.raises(TraceError) as e:
        Trace.load(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    p = vmemu_cli("replay", str(path))
    assert p.returncode == 2 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_saving_is_atomic_and_leaves_no_temp_files(tmp_path):
    r = vmemu.run(ABBA, seed=ABBA_SEED, driver="direct")
    target = tmp_path / "deep" / "er" / "t.json"
    r.trace.save(target)
    r.trace.save(target)                # overwriting is a rename too
    assert [p.name for p in target.parent.iterdir()] == ["t.json"]
    assert Trace.load(target) == r.trace


def test_ctrl_c_during_a_save_lands_after_the_file_is_complete(tmp_path, monkeypatch):
    import os
    import signal
    r = vmemu.run(ABBA, seed=ABBA_SEED, driver="direct")
    real_fsync = os.fsync

    def fsync_and_interrupt(fd):
        os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C in the middle of the write
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync_and_interrupt)
    with pytest.raises(KeyboardInterrupt):
        r.trace.save(tmp_path / "t.json")
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]
    assert Trace.load(tmp_path / "t.json") == r.trace


@pytest.mark.parametrize("key", ["events.stream", "tape"])
def test_a_stream_longer_than_its_run_could_record_is_refused_before_decoding(tmp_path, key):
    # A crafted trace of an 8-step run with 2 million more events (or decisions): it used
    # to be decoded whole (10 million took 25 s and 1.6 GB) before being found damaged.
    path, d = _saved(tmp_path)
    if key == "tape":
        d["tape"] += "0" * 2_000_000
    else:
        d["events"]["stream"] += "0" * 2_000_000
    path.write_text(json.dumps(d))
    p = vmemu_cli("replay", str(path))
    assert p.returncode == 2 and p.stdout == "" and "Traceback" not in p.stderr
    line = p.stderr.strip()
    assert "\n" not in line and line.startswith(f"vmemu: error: {path}: {key}: ")
    assert f"more than a run of {d['steps']} steps records" in line
    assert line.endswith("the file is damaged or was edited; re-record it")


def test_a_fault_plans_many_coin_flips_still_round_trip(tmp_path):
    # The tape is bounded by the run's steps only without a fault plan: each rule that
    # may fire is a coin flip on the tape, many a step here (over a million in all).
    plan = tmp_path / "plan.yaml"
    plan.write_text("faults:\n" + "  - {at: step, probability: 0.0001, do: preempt}\n" * 800)
    r = vmemu.run(_long_scenario(tmp_path, 150), seed=3, driver="direct", faults=str(plan))
    assert len(r.trace.tape) > max(1 << 20, 64 * r.trace.steps)
    assert Trace.load(r.trace.save(tmp_path / "t.json")) == r.trace


def test_a_deeply_nested_trace_is_refused_in_one_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"format": "vmemu-trace", "version": 3, "x": '
                    + "[" * 100_000 + "]" * 100_000 + "}")
    p = vmemu_cli("replay", str(path))
    assert p.returncode == 2 and p.stdout == "" and "Traceback" not in p.stderr
    assert p.stderr.strip() == (f"vmemu: error: {path}: not a vmemu trace: its JSON is nested "
                                "too deeply (the file is damaged or is not a trace; "
                                "re-record it)")


def test_a_trace_saved_with_a_byte_order_mark_is_read(tmp_path):
    # An editor that saves "UTF-8 with BOM" (scenario files are read with one too).
    path, d = _saved(tmp_path)
    plain = Trace.load(path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert Trace.load(path) == plain
    assert Trace.from_json("\ufeff" + json.dumps(d)) == plain
    p = vmemu_cli("replay", str(path))
    assert p.returncode == 1 and "deadlock" in p.stdout, p.stderr   # it replays the bug
    path.write_bytes(json.dumps(d).encode("utf-16"))
    p = vmemu_cli("replay", str(path))
    assert p.returncode == 2 and p.stderr.strip() == (
        f"vmemu: error: {path}: not a vmemu trace: the file is UTF-16 text (its BOM says "
        "so); save it as UTF-8")
