"""The contract: every scenario in ../shared/contract reaches its `expect` verdict under
`vmemu explore` with the default budget, and every bad input is rejected cleanly."""

from __future__ import annotations

import pytest

from conftest import CONTRACT, bad_files, cli_json, contract_files, vmemu_cli
from vmemu._scenario import load_scenario


def test_contract_folder_is_there():
    # Guards against silently running zero contract cases.
    assert len(contract_files()) >= 9 and len(bad_files()) >= 8


@pytest.mark.parametrize("path", contract_files(), ids=lambda p: p.stem)
def test_contract_scenario_reaches_expect(path):
    expect = load_scenario(str(path)).expect
    d = cli_json("explore", str(path), "--findings", "/tmp/vmemu-test-findings")
    assert d["verdict"] == expect, d.get("message")
    assert d["scenario"] and d["strategy"] and len(d["trace_hash"]) == 64
    if expect != "ok":
        assert d["replay"].startswith("vmemu replay ")


@pytest.mark.parametrize("path", bad_files(), ids=lambda p: p.stem)
@pytest.mark.parametrize("command", ["run", "explore", "check"])
def test_bad_input_rejected_with_one_line(path, command):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect-error:")
    needle = first.split(":", 1)[1].strip().lower()
    p = vmemu_cli(command, str(path))
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert needle in lines[0].lower()
    assert str(path) in lines[0]          # names the file
    assert "Traceback" not in p.stderr


def test_check_runs_the_whole_contract_folder():
    p = vmemu_cli("check", str(CONTRACT), "--runs", "300")
    assert p.returncode == 0, p.stdout + p.stderr
    # The folder is searched recursively: bad/'s files are negative tests (expect-error).
    n = len(contract_files()) + len(bad_files())
    assert f"{n} of {n} scenarios as expected" in p.stdout
