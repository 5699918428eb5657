"""The extended syntax of ../shared/lang (values, locals, arrays, atomics, routine
parameters, kthreads, interruptible and timed waits): every scenario reaches its
`expect` through `vmemu check`, and every bad input is one line with exit 2.
(test_driver_matrix.py runs the same files on every driver.)"""

from __future__ import annotations

import json

import pytest

from conftest import LANG, lang_bad_files, lang_files, vmemu_cli
from vmemu._cli import main
from vmemu._scenario import load_scenario


def test_lang_folder_is_there():
    # Guards against silently running zero cases.
    assert len(lang_files()) >= 12 and len(lang_bad_files()) >= 7


def test_every_lang_scenario_reaches_its_expect():
    p = vmemu_cli("check", str(LANG), "--json")
    d = json.loads(p.stdout)
    rows = {r["path"]: r for r in d["scenarios"]}
    # check searches the folder recursively: bad/'s files are negative tests.
    assert len(rows) == len(lang_files()) + len(lang_bad_files())
    for path in lang_files():
        row = rows[str(path)]
        assert row["verdict"] == load_scenario(str(path)).expect, row
    assert all(rows[str(path)]["ok"] for path in lang_bad_files())
    assert p.returncode == 0 and d["ok"]


@pytest.mark.parametrize("path", lang_bad_files(), ids=lambda p: p.stem)
def test_lang_bad_input_rejected_with_one_line(path, capsys):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect-error:")
    needle = first.split(":", 1)[1].strip().lower()
    for command in ("run", "explore", "check"):
        assert main([command, str(path)]) == 2, command
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert out == "" and len(lines) == 1, (command, err)
        assert needle in lines[0].lower() and str(path) in lines[0], lines[0]


_HASHES = """
import sys, vmemu
for path in sys.argv[1:]:
    sc = vmemu.load(path)
    for seed in range(3):
        print(path, seed, vmemu.run(sc, seed=seed, driver="direct").trace_hash)
"""


def test_the_new_steps_hash_the_same_in_every_process_and_hash_seed():
    import subprocess
    import sys
    from conftest import ROOT
    files = [str(p) for p in lang_files()] + \
        [str(p) for p in sorted((ROOT / "scenarios" / "ports").glob("*.yaml"))]
    outs = set()
    for hs in ("0", "4242"):
        p = subprocess.run([sys.executable, "-c", _HASHES, *files], capture_output=True,
                           text=True, env={**__import__("os").environ, "PYTHONHASHSEED": hs},
                           timeout=120)
        assert p.returncode == 0, p.stderr
        outs.add(p.stdout)
    assert len(outs) == 1 and len(outs.pop().splitlines()) == 3 * len(files)


def test_every_scenario_example_in_the_reference_loads_and_runs(tmp_path):
    # The YAML blocks of docs/scenarios.md that are whole scenarios (they have tasks:)
    # must stay true to the loader.
    import re
    import vmemu
    from conftest import ROOT
    text = (ROOT / "docs" / "scenarios.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "tasks:" in b]
    assert len(blocks) >= 4
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.yaml"
        path.write_text(block)
        r = vmemu.run(str(path), driver="direct")
        assert r.verdict in ("ok", "deadlock", "assertion"), (block, r.message)
