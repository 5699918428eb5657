"""Tests of the scenario loader (YAML -> model) and the safe expression language."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmemu._errors import ScenarioError
from vmemu._scenario import compile_expr, expand_template, load_scenario
from vmemu._scenario.model import VERDICTS, Memory, Scenario, Step
from vmemu._scenario.yaml_loader import DEFAULT_POOL_PAGES, load_yaml_scenario

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract"
GOOD = sorted(CONTRACT.glob("*.yaml"))
BAD = sorted((CONTRACT / "bad").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(path)


def load_text(tmp_path: Path, text: str) -> Scenario:
    return load_scenario(write(tmp_path, text))


def load_error(tmp_path: Path, text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_text(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message
    return info.value


def walk(steps: tuple[Step, ...]):
    for step in steps:
        yield step
        yield from walk(step.body)
        yield from walk(step.orelse)


# -- the contract -----------------------------------------------------------------------

def test_contract_files_exist() -> None:
    assert len(GOOD) >= 9 and len(BAD) >= 8


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_contract_scenarios_load(path: Path) -> None:
    scenario = load_scenario(str(path))
    assert scenario.path == str(path)
    assert scenario.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert scenario.expect in VERDICTS
    assert scenario.tasks and scenario.name
    for task in scenario.tasks:
        assert task.loc is not None and task.loc.file == str(path)
        for step in walk(task.steps):
            assert step.loc.file == str(path) and step.loc.line > 0
    assert "ok" not in scenario.vars       # a per-task name, not a shared variable


def test_dining_philosophers_expands_names() -> None:
    scenario = load_scenario(str(CONTRACT / "dining_philosophers.yaml"))
    assert list(scenario.locks) == ["fork0", "fork1", "fork2"]
    assert set(scenario.locks.values()) == {"mutex"}
    assert [t.name for t in scenario.tasks] == ["philosopher0", "philosopher1", "philosopher2"]
    for i, task in enumerate(scenario.tasks):
        right = f"fork{(i + 1) % 3}"
        assert [(s.op, s.target) for s in task.steps] == [
            ("lock", f"fork{i}"), ("yield", None), ("lock", right), ("unlock", right),
            ("unlock", f"fork{i}")]
        assert [s.loc.line for s in task.steps] == [10, 11, 12, 13, 14]
        assert task.loc is not None and task.loc.line == 7


def test_ext2_scenario_model() -> None:
    scenario = load_scenario(str(CONTRACT / "ext2_bitmap_reclaim_gfp_noio.yaml"))
    memory = scenario.memory
    assert memory is not None
    assert (memory.pages, memory.min, memory.low, memory.high, memory.kswapd) == \
        (32, 2, 4, 8, False)
    assert [(c.name, c.writeback, c.needs) for c in memory.classes] == [
        ("shm", "writepage_shm", ("io", "fs")), ("pagecache", None, ())]
    assert scenario.locks == {"superblock": "semaphore"}
    assert list(scenario.routines) == ["bread", "writepage_shm"]
    alloc, io = scenario.routines["bread"].steps
    assert (alloc.op, alloc.n, alloc.gfp, alloc.as_, alloc.may_fail) == \
        ("alloc", 1, "GFP_KERNEL", "bh", False)
    assert (io.op, io.n, io.loc.line) == ("io", 2, 25)
    user, worker = scenario.tasks
    assert [(s.op, s.target, s.n) for s in user.steps] == [("fill", "shm", 26),
                                                           ("fill", "pagecache", 4)]
    flags = worker.steps[2]
    assert (flags.op, flags.flags, flags.loc.line) == ("flags", ("PF_MEMALLOC_NOIO",), 39)
    assert [(s.op, s.target, s.loc.line) for s in flags.body] == [("call", "bread", 41)]
    assert "superblock lock" in scenario.description and not scenario.description.endswith("\n")
    assert scenario.source.startswith("linux-mm")


def test_lost_wakeup_model() -> None:
    scenario = load_scenario(str(CONTRACT / "lost_wakeup.yaml"))
    assert scenario.events == {"wq": "waitqueue"}
    assert scenario.vars == {"ready": 0}
    branch, check = scenario.tasks[0].steps
    assert branch.op == "if" and branch.expr is not None
    def env(ready: int) -> SimpleNamespace:   # what expressions read: a task's frame
        return SimpleNamespace(locals={}, shared={"ready": ready}, task=None)
    assert branch.expr(env(0)) == 1 and branch.expr(env(1)) == 0
    assert [s.op for s in branch.body] == ["yield", "wait"] and branch.orelse == ()
    assert check.op == "assert" and check.expr is not None and check.expr.names == ("ready",)
    setter = scenario.tasks[1].steps[0]
    assert [(p.name, v) for p, v in setter.assign] == [("ready", 1)]


def test_alloc_without_memory_section_gets_default_pool() -> None:
    scenario = load_scenario(str(CONTRACT / "sleep_under_spinlock.yaml"))
    assert scenario.memory is not None and scenario.memory.pages == DEFAULT_POOL_PAGES
    assert load_scenario(str(CONTRACT / "abba.yaml")).memory is None


def _expected_error(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    match = re.match(r"#\s*expect-error:\s*(.+)", first)
    assert match, f"{path} has no '# expect-error:' line"
    return match.group(1).strip()


BAD_LINES = {"bad_expr": 6, "broken_yaml": 6, "missing_routine": 5, "negative_pages": 3,
             "python_object": 2, "typo_lock": 6, "unknown_step": 6, "watermarks_order": 5}


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_contract_files_are_rejected_at_load(path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert _expected_error(path).lower() in message.lower()
    assert message.startswith(str(path) + ":")
    if path.stem in BAD_LINES:
        assert info.value.line == BAD_LINES[path.stem]
        assert message.startswith(f"{path}:{BAD_LINES[path.stem]}: ")


def test_bad_messages_are_helpful() -> None:
    def msg(stem: str) -> str:
        with pytest.raises(ScenarioError) as info:
            load_scenario(str(CONTRACT / "bad" / f"{stem}.yaml"))
        return str(info.value)
    assert "unknown lock 'superblok' (did you mean 'superblock'?)" in msg("typo_lock")
    assert "unknown step 'lokc' (did you mean 'lock'?)" in msg("unknown_step")
    assert "tasks.t.steps[0].lock" in msg("typo_lock")
    assert "unexpected '(' at column 11" in msg("bad_expr")
    assert "unsupported YAML tag '!!python/object/apply:os.system'" in msg("python_object")
    assert "line 6, column" in msg("broken_yaml")


# -- dispatch -----------------------------------------------------------------------------

def test_load_scenario_dispatch(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="nope.yaml: no such scenario file"):
        load_scenario("nope.yaml")
    with pytest.raises(ScenarioError, match="directory"):
        load_scenario(str(tmp_path))
    with pytest.raises(ScenarioError, match=r"\.yaml, \.yml or \.py"):
        load_scenario(write(tmp_path, "tasks: {t: [yield]}", "s.txt"))
    scenario = load_scenario(write(tmp_path, "tasks: {t: [yield]}", "tiny.yml"))
    assert scenario.name == "tiny" and scenario.expect == "ok"
    assert load_yaml_scenario(Path(write(tmp_path, "tasks: {t: [yield]}"))).name == "s"


# -- structure errors ---------------------------------------------------------------------

@pytest.mark.parametrize("text, fragment, line", [
    ("", "empty", None),
    ("- a\n- b\n", "top level must be a mapping", 1),
    ("name: x\ntaks: {t: [yield]}\n", "unknown top-level key 'taks' (did you mean 'tasks'?)", 2),
    ("expect: deadlok\ntasks: {t: [yield]}\n", "did you mean 'deadlock'?", 1),
    ("limits: {steps: 0}\ntasks: {t: [yield]}\n", "limits.steps", 1),
    ("limits: {stpes: 5}\ntasks: {t: [yield]}\n", "did you mean 'steps'?", 1),
    ("locks: {A: mutx}\ntasks: {t: [yield]}\n", "unknown lock kind 'mutx' (did you mean 'mutex'?)", 1),
    ("locks:\n  A: {kind: mutex, count: 0}\ntasks: {t: [yield]}\n", "count", 2),
    ("events: {e: waitq}\ntasks: {t: [yield]}\n", "unknown event kind", 1),
    ("vars: {x: abc}\ntasks: {t: [yield]}\n", "integer", 1),
    ("vars: {and: 1}\ntasks: {t: [yield]}\n", "identifier", 1),
    ("tasks: {}\n", "at least one task", 1),
    ("name: a\nname: b\ntasks: {t: [yield]}\n", "duplicate key 'name'", 2),
    ("tasks:\n  t:\n    count: 2\n    stpes: [yield]\n", "did you mean 'steps'?", 4),
    ("tasks:\n  t:\n    flags: [PF_MEMALOC]\n    steps: [yield]\n",
     "unknown task flag 'PF_MEMALOC' (did you mean 'PF_MEMALLOC'?)", 3),
    ("tasks:\n  t:\n    start: -1\n    steps: [yield]\n", "start", 3),
    ("tasks:\n  t{i}: [yield]\n", "count:", 2),
    ("tasks:\n  t: !custom [yield]\n", "unsupported YAML tag '!custom'", 2),
    ("tasks:\n  t:\n    - yield\n  t0: [yield]\n  u:\n    count: 1\n    steps: []\n",
     None, None),
    ("tasks:\n  t0: [yield]\n  t:\n    count: 2\n    steps: [yield]\n", "duplicate task 't0'", 3),
])
def test_structure_errors(tmp_path: Path, text: str, fragment: str | None,
                          line: int | None) -> None:
    if fragment is None:
        load_text(tmp_path, text)
        return
    error = load_error(tmp_path, text)
    assert fragment in str(error)
    assert error.line == line


@pytest.mark.parametrize("memory, fragment", [
    ("{pages: 0}", "pages"),
    ("{pages: abc}", "pages"),
    ("{pages: true}", "pages"),
    ("{kswapd: true}", "pages"),
    ("{pages: 64, watermarks: {min: 4, low: 4, high: 8}}", "watermark"),
    ("{pages: 64, watermarks: {min: 1, low: 4, high: 80}}", "watermark"),
    ("{pages: 64, watermarks: {min: -1, low: 4, high: 8}}", "watermark"),
    ("{pages: 64, watermarks: {min: 1, low: 4}}", "watermark"),
    ("{pages: 2}", "watermark"),
    ("{pages: 64, kswapd: 1}", "kswapd"),
    ("{pages: 64, clases: {}}", "did you mean 'classes'?"),
    ("{pages: 64, classes: {c: {writeback: nothere}}}", "unknown routine 'nothere'"),
    ("{pages: 64, classes: {c: {needs: [io, disk]}}}", "needs"),
])
def test_memory_errors(tmp_path: Path, memory: str, fragment: str) -> None:
    error = load_error(tmp_path, f"memory: {memory}\ntasks: {{t: [yield]}}\n")
    assert fragment in str(error) and error.line == 1 and error.key


def test_default_watermarks(tmp_path: Path) -> None:
    memory = load_text(tmp_path, "memory: {pages: 64}\ntasks: {t: [yield]}\n").memory
    assert memory == Memory(pages=64, min=2, low=4, high=6)
    memory = load_text(tmp_path, "memory: {pages: 3, kswapd: true}\ntasks: {t: [yield]}\n").memory
    assert memory == Memory(pages=3, min=1, low=2, high=3, kswapd=True)


# -- step errors ----------------------------------------------------------------------------

HEADER = """\
memory: {pages: 64, classes: {shm: {writeback: wb}}}
locks: {A: mutex, R: rwsem, superblock: semaphore}
events: {wq: waitqueue, done: completion}
vars: {ready: 0}
routines:
  wb: [yield]
tasks:
  t:
    - yield
"""  # the step under test is on line 10


@pytest.mark.parametrize("step, fragment", [
    ("lokc: A", "unknown step 'lokc' (did you mean 'lock'?)"),
    ("jump", "unknown step 'jump'"),
    ("lock", "needs an argument"),
    ("42", "a step is"),
    ("lock: superblok", "unknown lock 'superblok' (did you mean 'superblock'?)"),
    ("trylock: B", "unknown lock 'B'"),
    ("read_lock: A", "read_lock needs an rwsem or rwlock, but 'A' is a mutex"),
    ("read_unlock: superblock", "rwsem"),
    ("wait: wqq", "unknown event 'wqq' (did you mean 'wq'?)"),
    ("complete: dne", "did you mean 'done'?"),
    ("wait: wq\n      with_lock: AA", "unknown lock 'AA'"),
    ("call: nothere", "unknown routine 'nothere'"),
    ("fill: {class: shn, pages: 1}", "unknown class 'shn' (did you mean 'shm'?)"),
    ("fill: {class: shm}", "pages"),
    ("fill: {class: shm, pages: 1, dirty: true}", "unknown option 'dirty'"),
    ("io: abc", "io: unknown variable 'abc' in expr 'abc'"),
    ("io: [1]", "io: expected a non-negative integer of ticks, got [1]"),
    ("sleep: -1", "sleep: expected a non-negative integer"),
    ("alloc: 0", "positive integer"),
    ("alloc: 1\n      gfp: GFP_KERNL", "unknown GFP mask 'GFP_KERNL' (did you mean 'GFP_KERNEL'?)"),
    ("alloc: 1\n      gpf: GFP_KERNEL", "unknown option 'gpf' beside 'alloc' (did you mean 'gfp'?)"),
    ("alloc: 1\n      may_fail: maybe", "true or false"),
    ("lock: A\n      gfp: GFP_NOIO", "lock takes no options"),
    ("lock: A\n      unlock: A", "one step has one operation"),
    ("set: {readdy: 1}", "unknown variable 'readdy' (did you mean 'ready'?)"),
    ("add: {ready: x}", "unknown variable 'x' in expr 'x'"),
    ("add: {ready: [1]}", "expected an integer or an expression in quotes"),
    ("set: {}", "mapping"),
    ("assert: 'readdy == 1'", "unknown variable 'readdy' in expr"),
    ("assert: 'ready ==='", "bad expr"),
    ("if: 'ready'", "if needs 'then:'"),
    ("if: 'ready'\n      then: [yield]\n      else: [jump]", "unknown step 'jump'"),
    ("repeat: x\n      do: [yield]", "repeat"),
    ("repeat: 2", "needs 'do:'"),
    ("while: 'ready'\n      do: yield", "expected a list of steps"),
    ("flags: [PF_NOIO]\n      do: [yield]", "unknown task flag 'PF_NOIO'"),
    ("yield: 3", "yield takes no argument"),
    ("lock: 'fork{i}'", "templates like {i} only expand in a task with count:"),
    ("free: 3", "page handle"),
])
def test_step_errors(tmp_path: Path, step: str, fragment: str) -> None:
    error = load_error(tmp_path, HEADER + f"    - {step}\n")
    assert fragment in str(error)
    assert error.line is not None and error.line >= 10
    assert error.key is not None and error.key.startswith("tasks.t.steps[1]")


def test_memory_ops_need_memory(tmp_path: Path) -> None:
    error = load_error(tmp_path, "tasks:\n  t:\n    - fill: {class: c, pages: 1}\n")
    assert "memory:" in str(error) and error.line == 3
    scenario = load_text(tmp_path, "tasks:\n  t:\n    - alloc: 1\n      as: p\n    - free: p\n")
    assert scenario.memory is not None


def test_error_lines_in_nested_steps(tmp_path: Path) -> None:
    error = load_error(tmp_path, """
        locks: {A: mutex}
        tasks:
          t:
            - yield
            - repeat: 2
              do:
                - if: "ok"
                  then:
                    - yield
                  else:
                    - lock: A
                    - lock: B
    """)
    assert error.line == 12
    assert error.key == "tasks.t.steps[1].do[0].else[1].lock"
    assert str(error).endswith("unknown lock 'B'")


def test_every_step_kind(tmp_path: Path) -> None:
    scenario = load_text(tmp_path, HEADER + """\
    - lock: A
    - unlock: A
    - read_lock: R
    - read_unlock: R
    - trylock: superblock
    - alloc: 2
      gfp: GFP_NOIO
      as: page
      may_fail: true
    - free: page
    - fill: {class: shm, pages: 3}
    - io: 4
    - sleep: 0
    - call: wb
    - flags: [PF_MEMALLOC_NOFS, PF_MEMALLOC]
      do: [yield]
    - wait: wq
      with_lock: A
    - signal: wq
    - broadcast: wq
    - complete: done
    - set: {ready: 3}
    - add: {ready: -1}
    - assert: ready > 0
    - if: ok
      then: [yield]
      else: [yield, yield]
    - repeat: 3
      do: [yield]
    - while: false
      do: []
    - point: before_io
    - yield:
""")
    steps = scenario.tasks[0].steps
    assert [s.op for s in steps][1:] == [
        "lock", "unlock", "read_lock", "read_unlock", "trylock", "alloc", "free", "fill", "io",
        "sleep", "call", "flags", "wait", "signal", "broadcast", "complete", "set", "add",
        "assert", "if", "repeat", "while", "point", "yield"]
    by_op = {s.op: s for s in steps}
    alloc = by_op["alloc"]
    assert (alloc.n, alloc.gfp, alloc.as_, alloc.may_fail, alloc.loc.line) == \
        (2, "GFP_NOIO", "page", True, 15)
    assert by_op["fill"].target == "shm" and by_op["fill"].n == 3
    assert by_op["flags"].flags == ("PF_MEMALLOC_NOFS", "PF_MEMALLOC")
    assert by_op["wait"].with_lock == "A" and by_op["wait"].target == "wq"
    assert [(p.name, v) for p, v in by_op["set"].assign] == [("ready", 3)]
    assert by_op["set"].shared        # a store to a shared variable: a scheduling point
    assert len(by_op["if"].orelse) == 2 and by_op["repeat"].n == 3
    assert by_op["while"].expr is not None and by_op["while"].expr({}) == 0
    assert by_op["point"].target == "before_io"


def test_counted_task_templates(tmp_path: Path) -> None:
    scenario = load_text(tmp_path, """
        locks:
          m: {kind: mutex, count: 2}
        vars: {turn: 0, x0: 0, x1: 0}
        tasks:
          "w{i}of{n}":
            count: 2
            flags: [PF_MEMALLOC]
            start: 5
            steps:
              - lock: "m{1 - i}"
              - set: {"x{i}": 1}
              - while: "turn != {i}"
                do: [yield]
              - alloc: 1
                as: "p{i}"
          plain:
            - lock: m0
    """)
    names = [t.name for t in scenario.tasks]
    assert names == ["w0of2", "w1of2", "plain"]
    w1 = scenario.tasks[1]
    assert (w1.flags, w1.start, w1.loc.line if w1.loc else None) == (("PF_MEMALLOC",), 5, 5)
    assert w1.steps[0].target == "m0"
    assert [(p.name, p.scope, v) for p, v in w1.steps[1].assign] == [("x1", "shared", 1)]
    assert w1.steps[2].expr is not None and w1.steps[2].expr.source == "turn != 1"
    assert w1.steps[3].as_ == "p1"
    assert scenario.tasks[2].start == 0 and scenario.tasks[2].flags == ()


def test_recursive_routines_and_yaml_features(tmp_path: Path) -> None:
    scenario = load_text(tmp_path, """
        locks: {A: mutex}
        routines:
          a: [{call: b}]
          b: [{call: a}]
        tasks:
          t: &body
            - lock: A
            - unlock: A
          v: *body
          u:
            <<: {count: 1, start: 3}
            steps: [{call: a}]
    """)
    assert [t.name for t in scenario.tasks] == ["t", "v", "u0"]
    assert scenario.tasks[1].steps == scenario.tasks[0].steps
    assert scenario.tasks[2].start == 3
    assert scenario.routines["a"].steps[0].target == "b"


def test_alias_bomb_is_bounded(tmp_path: Path) -> None:
    lines = ["a0: &a0 [yield, yield, yield, yield, yield, yield, yield, yield, yield, yield]"]
    for i in range(1, 8):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"{{repeat: 1, do: {prev}}}"] * 10) + "]")
    text = "tasks:\n  t:\n    - repeat: 1\n      do:\n        " + "\n        ".join(
        f"- {{repeat: 1, do: {item.split(': ', 1)[1]}}}" for item in lines) + "\n"
    error = load_error(tmp_path, text)
    assert "too large" in str(error)


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, "tasks:\n  t:\n    - lock: A\n   bad indent: [\n")
    assert re.search(r"line \d+", str(error)) and error.line is not None
    error = load_error(tmp_path, "tasks: {t: [yield]}\n---\ntasks: {}\n")
    assert "line 2" in str(error)


@pytest.mark.parametrize("text, line", [
    ('tasks: {t: [yield]}\nfoo: "\x07"\n', 2),
    ("tasks: {t: [yield]}\nx: !!int abc\n", 2),
    ("tasks: {t: [yield]}\nx: !!timestamp 2020-13-45\n", 2),
    ("tasks: {t: [yield]}\nx: " + "[" * 5000 + "]" * 5000 + "\n", None),
])
def test_odd_yaml_is_a_scenario_error(tmp_path: Path, text: str, line: int | None) -> None:
    error = load_error(tmp_path, text)
    assert error.line == line
    if line is not None:
        assert f"line {line}" in str(error)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"name: x\ntasks: {t: [yield]}\n# \xff\xfe\n")
    with pytest.raises(ScenarioError, match="line 3"):
        load_scenario(str(path))


# -- the expression language -------------------------------------------------------------

@pytest.mark.parametrize("text, env, value", [
    ("1 + 2 * 3", {}, 7),
    ("(1 + 2) * 3", {}, 9),
    ("10 - 3 - 2", {}, 5),
    ("2 * 3 % 4", {}, 2),
    ("-2 * 3", {}, -6),
    ("- -4", {}, 4),
    ("7 / 2", {}, 3),
    ("-7 // 2", {}, -4),
    ("-7 % 3", {}, 2),
    ("1 + 1 == 2", {}, 1),
    ("not 1 == 2", {}, 1),
    ("not x", {"x": 5}, 0),
    ("1 < 2 and 2 < 1 or 3 == 3", {}, 1),
    ("1 or 0 and 0", {}, 1),
    ("(1 or 0) and 0", {}, 0),
    ("not 0 and 0", {}, 0),
    ("x >= 2 and x <= 4", {"x": 3}, 1),
    ("x != 3", {"x": 3}, 0),
    ("x > 3", {"x": 3}, 0),
    ("true + true", {}, 2),
    ("false or x", {"x": 7}, 1),
    ("a_1*2", {"a_1": 21}, 42),
    ("2 and 3", {}, 1),
])
def test_expr_values(text: str, env: dict, value: int) -> None:
    assert compile_expr(text)(env) == value


def test_expr_short_circuit_and_division() -> None:
    assert compile_expr("0 and 1 // 0")({}) == 0
    assert compile_expr("1 or 1 % 0")({}) == 1
    assert compile_expr("x == 0 or 10 / x > 1")({"x": 0}) == 1
    with pytest.raises(ZeroDivisionError):
        compile_expr("1 // x")({"x": 0})
    with pytest.raises(ZeroDivisionError):
        compile_expr("1 and 5 % 0")({})


def test_expr_names_and_unknown_variables() -> None:
    expr = compile_expr("b + a * b - c", known_vars=["a", "b", "c"])
    assert expr.names == ("b", "a", "c") and expr.source == "b + a * b - c"
    with pytest.raises(ScenarioError, match=r"unknown variable 'redy' in expr .*did you mean 'ready'"):
        compile_expr("redy == 1", file="f.yaml", line=3, key="k", known_vars=["ready"])
    assert compile_expr("zz").names == ("zz",)


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "x.y", "f(1)", "'a'", '"a"', "1 if 1 else 0",
    "[1]", "{}", "x[0]", "lambda: 1", "2 ** 3", "a = 1", "1; 2", "a < b < c", "", "  ",
    "(", ")", "1 +", "not", "and 1", "1 2", "x y", "@x", "1 ! 2", "`id`", "é", "0x10",
    "1.5", "true()", "-", "\\", "$HOME", "os.system",
    "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1" + ")" * 66,
])
def test_expr_rejects(text: str) -> None:
    with pytest.raises(ScenarioError) as info:
        compile_expr(text, file="f.yaml", line=4, key="tasks.t.steps[0].assert")
    message = str(info.value)
    assert "expr" in message and "\n" not in message
    assert message.startswith("f.yaml:4: tasks.t.steps[0].assert: ")


def test_expr_long_chains_do_not_recurse() -> None:
    assert compile_expr(" + ".join(["1"] * 5000))({}) == 5000
    assert compile_expr(" and ".join(["x"] * 5000))({"x": 1}) == 1
    assert compile_expr("-" * 60 + "1")({}) == 1


def test_expand_template() -> None:
    assert expand_template("fork{(i+1)%n}", 2, 3) == "fork0"
    assert expand_template("t{i}_{n}", 1, 4) == "t1_4"
    assert expand_template("plain", 0, 1) == "plain"
    for bad, fragment in [("x{j}", "unknown variable 'j'"), ("x{i", "never closed"),
                          ("x}", "without"), ("x{i % 0}", "division by zero"),
                          ("x{f(i)}", "bad expr"), ("x{{i}}", "nested")]:
        with pytest.raises(ScenarioError, match=re.escape(fragment)):
            expand_template(bad, 1, 2, file="f", line=1, key="k")


# -- property: compiled expressions agree with a reference evaluator ----------------------

# AST nodes: ("int", v) ("var", name) ("neg", x) ("not", x) ("bin", op, l, r)
# ("cmp", op, l, r) ("and", l, r) ("or", l, r). Precedence levels for printing:
_LEVEL = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "//": 6,
          "%": 6, "neg": 7, "int": 8, "var": 8}
_VARS = ("a", "b", "c")


def _level(node: tuple) -> int:
    return _LEVEL[node[1]] if node[0] == "bin" else _LEVEL[node[0]]


def _render(node: tuple, extra: st.DataObject) -> str:
    def child(sub: tuple, need_parens: bool) -> str:
        text = _render(sub, extra)
        if need_parens or extra.draw(st.integers(0, 9)) == 0:
            return f"({text})"
        return text
    kind = node[0]
    if kind == "int":
        return str(node[1])
    if kind == "var":
        return node[1]
    if kind == "neg":
        return "-" + child(node[1], _level(node[1]) < 7)
    if kind == "not":
        return "not " + child(node[1], _level(node[1]) < 3)
    if kind in ("and", "or"):
        level = _LEVEL[kind]
        return (child(node[1], _level(node[1]) < level) + f" {kind} "
                + child(node[2], _level(node[2]) <= level))
    op, left, right = node[1], node[2], node[3]
    if kind == "cmp":
        return child(left, _level(left) <= 4) + f" {op} " + child(right, _level(right) <= 4)
    level = _LEVEL[op]
    return child(left, _level(left) < level) + f" {op} " + child(right, _level(right) <= level)


def _reference(node: tuple, env: dict) -> int:
    kind = node[0]
    if kind == "int":
        return node[1]
    if kind == "var":
        return env[node[1]]
    if kind == "neg":
        return -_reference(node[1], env)
    if kind == "not":
        return int(not _reference(node[1], env))
    if kind == "and":
        return int(bool(_reference(node[1], env)) and bool(_reference(node[2], env)))
    if kind == "or":
        return int(bool(_reference(node[1], env)) or bool(_reference(node[2], env)))
    left, right = _reference(node[2], env), _reference(node[3], env)
    op = node[1]
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op in ("/", "//"):
        return left // right
    if op == "%":
        return left % right
    return int({"==": left == right, "!=": left != right, "<": left < right,
                "<=": left <= right, ">": left > right, ">=": left >= right}[op])


_LEAVES = st.one_of(st.tuples(st.just("int"), st.integers(0, 9)),
                    st.tuples(st.just("var"), st.sampled_from(_VARS)))
_TREES = st.recursive(_LEAVES, lambda sub: st.one_of(
    st.tuples(st.just("neg"), sub),
    st.tuples(st.just("not"), sub),
    st.tuples(st.sampled_from(["and", "or"]), sub, sub),
    st.tuples(st.just("bin"), st.sampled_from(["+", "-", "*", "/", "//", "%"]), sub, sub),
    st.tuples(st.just("cmp"), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), sub, sub),
), max_leaves=12)


def _outcome(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except ZeroDivisionError:
        return "ZeroDivisionError"


@settings(max_examples=300, deadline=None)
@given(tree=_TREES, env=st.fixed_dictionaries({v: st.integers(-5, 5) for v in _VARS}),
       extra=st.data())
def test_expr_agrees_with_reference(tree: tuple, env: dict, extra: st.DataObject) -> None:
    text = _render(tree, extra)
    expr = compile_expr(text, known_vars=_VARS)
    assert _outcome(expr, env) == _outcome(_reference, tree, env), text
    used = {n[1] for n in _nodes(tree) if n[0] == "var"}
    assert set(expr.names) == used


def _nodes(node: tuple):
    yield node
    for part in node[1:]:
        if isinstance(part, tuple):
            yield from _nodes(part)
