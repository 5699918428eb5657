"""Fuzzing every input vmemu reads: each mutant ends with a verdict, or with one line.

Hypothesis mutates every bundled and contract scenario (and ../shared/lang's), every fault
plan and a few saved traces: YAML tags, values of other types, sizes far out of range,
deleted and duplicated keys, items and lines, and raw bytes. Each mutant must either load
and run to a verdict (a :class:`Result` whose report and JSON render), or be refused with
one :class:`UserError` line naming the file; the same refusal through the CLI is exit
code 2, nothing on stdout and one line on stderr. Nothing else may escape.

Bounds: runs are capped at a few thousand steps (a mutant may ask for the largest budget
there is), an alarm turns a hang into a failure instead of a stuck suite, and the
process's peak memory may not grow by more than a few hundred MB over the whole test.
Examples are derandomized, so the suite is not flaky.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import os
import re
import resource
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vmemu
from conftest import CONTRACT, ROOT, seed_reaching
from vmemu._cli import main
from vmemu._errors import UserError
from vmemu._faults import load_fault_plan

LANG = CONTRACT.parent / "lang"
SCENARIOS = sorted([*ROOT.glob("scenarios/**/*.yaml"), *CONTRACT.glob("*.yaml"),
                    *CONTRACT.glob("bad/*.yaml"), *LANG.glob("*.yaml"),
                    *LANG.glob("bad/*.yaml")])
AMPLE = ROOT / "scenarios" / "ext2_bitmap_ample_memory.yaml"
#: Each fault plan, with a scenario it is written for.
PLANS = [(ROOT / "faults" / "low_memory_in_bread.yaml", AMPLE),
         (ROOT / "faults" / "random_low_memory.yaml", AMPLE),
         (ROOT / "faults" / "fail_atomic_allocs.yaml", ROOT / "scenarios" /
          "atomic_rx_may_fail.yaml"),
         (ROOT / "vmemu" / "_lockdep" / "confirm_faults.yaml", CONTRACT / "abba.yaml")]
#: Steps a mutant may run here (its own limits may be far larger: that is not the point).
STEP_CAP = 3000
#: Peak memory the whole fuzz run may add to the process.
MAX_GROWTH_KB = 600 * 1024

#: ``VMEMU_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py`` fuzzes deeper, with fresh
#: random examples each time (the suite's own run is small and derandomized).
_DEEP = os.environ.get("VMEMU_FUZZ_EXAMPLES")
FUZZ = settings(max_examples=int(_DEEP or 250), derandomize=not _DEEP, database=None,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------------------- mutations
TAGS = ["!!timestamp x", "!!bool x", '!!int ""', "!!int abc", "!!binary aGk=", "!!set {a}",
        "!!python/object/apply:os.system ['true']", "!foo bar", "! x", "!!float x",
        "!!omap [a: 1]", "!!str 5", "!!null x", "!!map {a: 1}", "!!seq [1]"]
NASTY: list[Any] = [0, -1, 1, 3, 2**31, 2**63, 9223372036854775808, 10**8, 10**12, 10**30,
                    1.5, float("nan"), float("inf"), True, False, None, "", "[", "*", "x" * 300,
                    "2001-12-14", "=", "{i}", "{(i+1)%n}", "superblock", "GFP_KERNEL",
                    [], {}, [1, 2], {"a": 1}, [[0]], {"lock": "A"}, "yield", ["yield"] * 3,
                    # expressions and templates, wherever a number or a name is read
                    "1 // 0", "x % 0", "9" * 400, "(" * 300 + "1" + ")" * 300, "-" * 500 + "1",
                    "{i", "{(i+1)%0}", "{n*n*n*n*n*n*n*n}", "ok + 1", "__import__('os')"]
RAW = [b"\x00", b"\xff\xfe", b"\t", b":", b"{", b"[", b"&a ", b"*a", b"<<: *a\n", b"- ",
       b"\n  ", b"#", b"'", b'"', b"%YAML 1.1\n", b"---\n", b"\xe2\x80\xa8", b"\r"]


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) to a node of a plain document."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


def _get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _mutate_tree(data: Any, doc: Any) -> tuple[Any, list[str]]:
    """One to three structural mutations of a plain document; returns it and the tag
    texts to splice in for ``__TAGn__`` placeholders."""
    tags: list[str] = []
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        op = data.draw(st.sampled_from(["nasty", "tag", "delete", "duplicate", "copy",
                                        "size"]))
        if op == "nasty":
            new: Any = copy.deepcopy(data.draw(st.sampled_from(NASTY)))
        elif op == "tag":
            new = f"__TAG{len(tags)}__"
            tags.append(data.draw(st.sampled_from(TAGS)))
        elif op == "size":
            new = data.draw(st.sampled_from([10**7, 10**7 + 1, 10**8, 10**12, 10**15,
                                             10**15 + 1, 2**64, -(2**63)]))
        elif op == "copy":
            new = json.loads(json.dumps(_get(doc, data.draw(st.sampled_from(paths))),
                                        default=str))
        else:
            new = None
        if not path:
            doc = new if op not in ("delete", "duplicate") else doc
            continue
        parent = _get(doc, path[:-1])
        key = path[-1]
        if op == "delete":
            del parent[key]
        elif op == "duplicate":
            if isinstance(parent, list):
                parent.insert(key, json.loads(json.dumps(parent[key], default=str)))
            else:
                parent[f"{key}"] = parent[key]
        else:
            parent[key] = new
    return doc, tags


def _dump(doc: Any, tags: list[str]) -> bytes:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)
    for i, tag in enumerate(tags):
        text = re.sub(rf"'?__TAG{i}__'?", lambda m: tag, text)
    return text.encode()


def _mutate_bytes(data: Any, raw: bytes) -> bytes:
    for _ in range(data.draw(st.integers(1, 3))):
        lines = raw.split(b"\n")
        op = data.draw(st.sampled_from(["del_line", "dup_line", "insert", "flip",
                                        "truncate"]))
        i = data.draw(st.integers(0, max(0, len(lines) - 1)))
        if op == "del_line":
            del lines[i]
        elif op == "dup_line":
            lines.insert(i, lines[i])
        raw = b"\n".join(lines)
        if op in ("insert", "flip", "truncate") and raw:
            at = data.draw(st.integers(0, len(raw) - 1))
            if op == "insert":
                raw = raw[:at] + data.draw(st.sampled_from(RAW)) + raw[at:]
            elif op == "flip":
                raw = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) \
                    + raw[at + 1:]
            else:
                raw = raw[:at]
    return raw


def _mutant(data: Any, path: Path) -> bytes:
    raw = path.read_bytes()
    if data.draw(st.booleans()):
        return _mutate_bytes(data, raw)
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError:
        return _mutate_bytes(data, raw)
    doc, tags = _mutate_tree(data, doc)
    return _dump(doc, tags)


# ---------------------------------------------------------------------------- checks
@pytest.fixture(scope="module")
def bounds():
    """A hang becomes a failure (SIGALRM), and peak memory growth is checked at the end."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def hung(signum, frame):
        raise AssertionError("a fuzz example did not end within 60 s: vmemu hung")
    old = signal.signal(signal.SIGALRM, hung)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < MAX_GROWTH_KB, f"the fuzz run grew peak memory by {grown // 1024} MB"


@contextlib.contextmanager
def alarm(seconds: int = 60):
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)


def one_line(e: UserError, path: Path) -> None:
    text = str(e)
    assert "\n" not in text and "Traceback" not in text, text
    assert text.startswith(str(path)) or str(path) in text, text


def cli_refuses(args: list[str], path: Path) -> None:
    """The CLI turns the same input into exit 2, no stdout, one line on stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    assert code == 2, (code, err.getvalue())
    assert out.getvalue() == ""
    lines = err.getvalue().strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("vmemu: error: "), err.getvalue()


def capped(sc: vmemu.Scenario) -> vmemu.Scenario:
    limits = dataclasses.replace(sc.limits, steps=min(sc.limits.steps, STEP_CAP))
    return dataclasses.replace(sc, limits=limits)


def ends_with_a_verdict(r: vmemu.Result) -> None:
    assert r.verdict in vmemu.VERDICTS
    assert r.report().startswith("vmemu: ")
    json.dumps(r.to_json())
    if r.scenario.memory is not None and r.verdict == "ok":
        pass


def run_or_refuse(sc: vmemu.Scenario, path: Path, seed: int, faults: Any = None) -> None:
    try:
        r = vmemu.run(capped(sc), seed=seed, faults=faults, driver="direct")
    except UserError as e:       # e.g. a plan that does not fit the scenario
        assert "\n" not in str(e)
        return
    ends_with_a_verdict(r)


# ---------------------------------------------------------------------------- the tests
def test_the_corpus_is_there():
    assert len(SCENARIOS) >= 40 and all(p.exists() for p, _ in PLANS)


@FUZZ
@given(data=st.data())
def test_mutated_scenarios_end_with_a_verdict_or_one_line(tmp_path, bounds, data):
    src = data.draw(st.sampled_from(SCENARIOS), label="scenario")
    path = tmp_path / "mutant.yaml"
    path.write_bytes(_mutant(data, src))
    with alarm():
        try:
            sc = vmemu.load(path)
        except UserError as e:
            one_line(e, path)
            cli_refuses(["run", str(path), "--driver", "direct"], path)
            return
        run_or_refuse(sc, path, data.draw(st.integers(0, 3), label="seed"))


@FUZZ
@given(data=st.data())
def test_mutated_fault_plans_end_with_a_verdict_or_one_line(tmp_path, bounds, data):
    src, scenario = data.draw(st.sampled_from(PLANS), label="plan")
    path = tmp_path / "plan.yaml"
    path.write_bytes(_mutant(data, src))
    with alarm():
        try:
            plan = load_fault_plan(path)
        except UserError as e:
            one_line(e, path)
            cli_refuses(["run", str(scenario), "--faults", str(path), "--driver", "direct"],
                        path)
            return
        run_or_refuse(vmemu.load(scenario), path, data.draw(st.integers(0, 3)), plan)


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """A few saved traces to mutate: a deadlock, a run under a fault plan, a long run."""
    folder = tmp_path_factory.mktemp("traces")
    abba = str(CONTRACT / "abba.yaml")
    runs = [vmemu.run(abba, seed=seed_reaching(abba, "deadlock"), driver="direct"),
            vmemu.run(str(AMPLE), faults=str(ROOT / "faults" / "random_low_memory.yaml"),
                      seed=1, driver="direct"),
            vmemu.run(str(CONTRACT / "dining_philosophers.yaml"), seed=2, driver="direct")]
    return [Path(r.trace.save(folder / f"t{i}.json")) for i, r in enumerate(runs)]


def _mutate_json(data: Any, raw: bytes) -> bytes:
    doc = json.loads(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        op = data.draw(st.sampled_from(["nasty", "delete", "duplicate", "tape"]))
        if not path:
            continue
        parent, key = _get(doc, path[:-1]), path[-1]
        if op == "delete":
            del parent[key]
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif op == "tape":
            doc["tape"] = data.draw(st.sampled_from(["z" * 3000, "0" * 3000, "", "Z", "-_",
                                                     "1" * 40]))
        else:
            parent[key] = copy.deepcopy(data.draw(st.sampled_from(NASTY)))
    return json.dumps(doc, default=str).encode()


@FUZZ
@given(data=st.data())
def test_mutated_traces_replay_or_are_refused_with_one_line(tmp_path, bounds, traces, data):
    src = data.draw(st.sampled_from(traces), label="trace")
    raw = src.read_bytes()
    mutant = _mutate_bytes(data, raw) if data.draw(st.booleans()) else _mutate_json(data, raw)
    path = tmp_path / "mutant.json"
    path.write_bytes(mutant)
    with alarm():
        try:
            r = vmemu.replay(path, driver="direct")
        except UserError as e:
            one_line(e, path)
            cli_refuses(["replay", str(path), "--driver", "direct"], path)
            return
        ends_with_a_verdict(r)
