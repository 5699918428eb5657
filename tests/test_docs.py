"""Every command and output the documentation shows is checked here.

- A block that starts with ``$ vmemu ...`` and ends with ``[exit N]`` pastes real output:
  the command is run as shown (from the repository root) and every line shown must appear,
  in order, in what it prints on stdout and stderr (``[...]`` lines mark elisions); the
  exit code must be N. ``tests/regen_tutorial.py`` rewrites them after a format change.
- Every other ``vmemu ...`` / ``pytest --vmemu ...`` line of a shell block must parse,
  and the files it names must exist.
- Every Python block must compile, and the scenario, plan and trace files it names exist.
- Every YAML block is plain YAML; one with ``tasks:`` loads as a scenario, one with
  ``faults:`` as a fault plan.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from conftest import ROOT
from vmemu._cli import build_parser, main
from vmemu._errors import UserError

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```(\w*)\n(.*?)\n```", re.S | re.M)
_PATHLIKE = re.compile(r"^[\w./-]+\.(yaml|yml|py|json)$")
#: Files the documentation's commands write before naming them (not in the checkout).
_WRITTEN = ("t.json", "/tmp/ext2.json")


def blocks(page: Path) -> list[tuple[str, str]]:
    return _BLOCK.findall(page.read_text())


def ids(p: Path) -> str:
    return p.name


def run_shown(command: str, tmp: Path) -> tuple[int, list[str]]:
    """Run ``$ vmemu ...`` as shown (``/tmp/...`` files kept in ``tmp``); returns the exit
    code and the lines printed on stdout and stderr."""
    args = command[len("$ vmemu "):].replace("/tmp/", f"{tmp}/").split()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = main(args)
    return code, buf.getvalue().replace(f"{tmp}/", "/tmp/").split("\n")


@pytest.mark.parametrize("page", [p for p in PAGES if any(
    b.startswith("$ vmemu ") for _, b in blocks(p))], ids=ids)
def test_shown_output_is_what_the_command_prints(page, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)   # the pages' paths are relative to the repository root
    shown = [b for _, b in blocks(page) if b.startswith("$ vmemu ")]
    for block in shown:
        lines = block.split("\n")
        exit_line = re.fullmatch(r"\[exit (\d+)\]", lines[-1])
        assert exit_line, f"{page.name}: {lines[0]}: end the block with [exit N]"
        code, out = run_shown(lines[0], tmp_path)
        assert code == int(exit_line.group(1)), lines[0]
        pos = 0
        for want in lines[1:-1]:
            if want.lstrip().startswith("[..."):
                continue
            while pos < len(out) and out[pos].rstrip() != want.rstrip():
                pos += 1
            assert pos < len(out), f"{page.name}: {lines[0]}: the page shows a line the " \
                                   f"command no longer prints: {want!r}"
            pos += 1


def _commands(page: Path) -> list[list[str]]:
    out = []
    for lang, body in blocks(page):
        if lang not in ("", "sh") or body.startswith("$ "):
            continue
        for line in body.split("\n"):
            line = line.split("  #", 1)[0].strip()
            if not line.startswith(("vmemu ", "pytest ")):
                continue
            words = shlex.split(line)
            if any(w.isupper() or "|" in w or w.startswith("[") for w in words):
                continue   # a synopsis: `vmemu run SCENARIO [--faults F] ...`
            out.append(words)
    return out


def _named_files(page: Path) -> list[tuple[str, str]]:
    """(command, path) for every file a shown command or Python block reads."""
    out = []
    for words in _commands(page):
        if words[0] == "vmemu":
            try:
                args = build_parser().parse_args(words[1:])
            except (UserError, SystemExit) as e:
                pytest.fail(f"{page.name}: `{' '.join(words)}` does not parse: {e}")
            paths = [getattr(args, "scenario", None), getattr(args, "trace", None),
                     getattr(args, "faults", None), *getattr(args, "scenarios", [])]
        else:
            paths = [w for w in words[1:] if not w.startswith("-") and "/" in w]
        out += [(" ".join(words), p) for p in paths if p and "*" not in p]
    for lang, body in blocks(page):
        if lang != "python":
            continue
        tree = ast.parse(body)   # compile-checked in the next test
        out += [("python block", n.value) for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
                and _PATHLIKE.match(n.value)]
    return out


@pytest.mark.parametrize("page", PAGES, ids=ids)
def test_shown_commands_parse_and_name_files_that_exist(page):
    for where, path in _named_files(page):
        if path in _WRITTEN:
            continue
        assert (ROOT / path).exists(), f"{page.name}: {where}: no such file {path}"


@pytest.mark.parametrize("page", PAGES, ids=ids)
def test_python_and_yaml_blocks_are_valid(page, tmp_path):
    import vmemu
    from vmemu._faults import load_fault_plan
    from vmemu._scenario._yaml import parse_yaml
    for lang, body in blocks(page):
        if lang == "python":
            compile(body, f"{page.name} block", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        elif lang == "yaml":
            doc = parse_yaml(body.encode(), page.name)
            f = tmp_path / "block.yaml"
            f.write_text(body)
            if isinstance(doc, dict) and "tasks" in doc:
                vmemu.load(f)
            elif isinstance(doc, dict) and "faults" in doc:
                load_fault_plan(f)
