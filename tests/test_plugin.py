"""The pytest plugin: ``pytest --vmemu PATH`` turns scenario files into test items."""

from __future__ import annotations

import shlex
import textwrap
from importlib.metadata import entry_points

import pytest

from conftest import CONTRACT, LANG, bad_files, contract_files, lang_bad_files, lang_files

pytest_plugins = ["pytester"]

ABBA = (CONTRACT / "abba.yaml").read_text()
ABBA_ORDERED = (CONTRACT / "abba_ordered.yaml").read_text()


def _with_expect(text: str, verdict: str) -> str:
    lines = [f"expect: {verdict}" if ln.startswith("expect:") else ln
             for ln in text.splitlines()]
    assert lines != text.splitlines()
    return "\n".join(lines) + "\n"


def test_the_plugin_is_registered_through_the_pytest11_entry_point():
    eps = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert eps.get("vmemu") == "vmemu._pytest_plugin"


def test_every_contract_scenario_is_a_passing_test(pytester: pytest.Pytester):
    result = pytester.runpytest("--vmemu", str(CONTRACT), "-v")
    n = len(contract_files()) + len(bad_files())
    result.assert_outcomes(passed=n)
    result.stdout.fnmatch_lines(["*abba.yaml::abba PASSED*",
                                 "*bad/typo_lock.yaml::typo_lock PASSED*"])


def test_the_extended_syntax_works_as_pytest_items_too(pytester: pytest.Pytester):
    result = pytester.runpytest("--vmemu", str(LANG), "--vmemu-runs", "200", "-v")
    result.assert_outcomes(passed=len(lang_files()) + len(lang_bad_files()))
    result.stdout.fnmatch_lines(["*event_cycle.yaml::event_cycle PASSED*"])


def test_a_wrong_expect_fails_with_the_report_and_a_replay_command(pytester: pytest.Pytester,
                                                                  capsys):
    pytester.makefile(".yaml", wrong=_with_expect(ABBA, "ok"))
    result = pytester.runpytest("--vmemu", "--vmemu-runs", "50")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "wrong.yaml: expected ok, got deadlock" in out
    assert "wait-for cycle" in out and "t1 waits for mutex" in out
    replay = next(ln for ln in result.stdout.lines if ln.startswith("replay: vmemu "))
    assert replay.startswith("replay: vmemu replay .vmemu/findings/abba-deadlock-")
    # The printed command really replays the failing schedule (pytester runs in its
    # folder, as a user pasting the command into the same shell would).
    from vmemu._cli import main
    capsys.readouterr()
    assert main(shlex.split(replay.removeprefix("replay: vmemu ")) + ["--json"]) == 1
    assert '"verdict": "deadlock"' in capsys.readouterr().out


def test_a_missed_failure_says_how_to_search_further(pytester: pytest.Pytester):
    pytester.makefile(".yaml", ordered=_with_expect(ABBA_ORDERED, "deadlock"))
    result = pytester.runpytest("--vmemu", "--vmemu-runs", "20", "--vmemu-seed", "7",
                                "--vmemu-findings", "out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*ordered.yaml: expected deadlock, got ok (20 of 20 schedules explored from seed 7)",
        "replay: vmemu replay out/abba-ordered-ok-*.json",
        "search further: vmemu explore ordered.yaml --runs 200 --seed 7",
    ])
    assert len(list((pytester.path / "out").glob("*.json"))) == 1


def test_a_scenario_that_does_not_load_is_a_failing_item_not_a_crash(pytester: pytest.Pytester):
    pytester.makefile(".yaml", good=ABBA, typo=ABBA.replace("lock: B", "lock: Bee", 1))
    result = pytester.runpytest("--vmemu", "--vmemu-runs", "50")
    result.assert_outcomes(passed=1, failed=1)
    assert "ERROR collecting" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*typo.yaml:*unknown*'Bee'*"])
    assert "Traceback" not in result.stdout.str()


def test_expect_error_files_pass_only_when_loading_fails_that_way(pytester: pytest.Pytester):
    broken = ABBA.replace("lock: B", "lock: Bee", 1)
    pytester.makefile(".yaml", right="# expect-error: bee\n" + broken,
                      wrong_text="# expect-error: watermark\n" + broken,
                      loads="# expect-error: bee\n" + ABBA)
    result = pytester.runpytest("--vmemu", "-v")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*right.yaml::right PASSED*"])
    result.stdout.fnmatch_lines(["*loads.yaml: loaded, but its first line expects an error*"])


def test_without_the_opt_in_yaml_files_are_not_collected(pytester: pytest.Pytester):
    pytester.makefile(".yaml", wrong=_with_expect(ABBA, "ok"))
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_the_ini_option_opts_in_and_sets_the_budget(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\nvmemu = true\nvmemu_runs = 3\nvmemu_driver = asyncio\n")
    pytester.makefile(".yaml", ordered=_with_expect(ABBA_ORDERED, "deadlock"))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected deadlock, got ok (3 of 3 schedules*"])


def test_fault_plans_and_private_files_are_not_collected(pytester: pytest.Pytester):
    pytester.makefile(".yaml", abba=ABBA, _private=_with_expect(ABBA, "ok"),
                      plan=textwrap.dedent("""
                          name: low-memory
                          faults:
                            - at: alloc
                              do: exhaust
                      """))
    result = pytester.runpytest("--vmemu", "--vmemu-runs", "50")
    result.assert_outcomes(passed=1)


def test_items_carry_the_vmemu_marker(pytester: pytest.Pytester):
    pytester.makefile(".yaml", abba=ABBA)
    pytester.makepyfile(test_other="def test_x():\n    pass\n")
    result = pytester.runpytest("--vmemu", "-m", "vmemu", "--vmemu-runs", "50")
    result.assert_outcomes(passed=1, deselected=1)


@pytest.mark.parametrize("args, text", [
    (["--vmemu-driver", "asyncoi"], "unknown driver 'asyncoi'"),
    (["--vmemu-runs", "0"], "vmemu_runs: expected a whole number >= 1"),
])
def test_bad_plugin_settings_are_usage_errors(pytester: pytest.Pytester, args, text):
    pytester.makefile(".yaml", abba=ABBA)
    result = pytester.runpytest("--vmemu", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert text in result.stderr.str()


def test_a_real_pytest_process_finds_the_plugin(pytester: pytest.Pytester):
    pytester.makefile(".yaml", wrong=_with_expect(ABBA, "ok"))
    result = pytester.runpytest_subprocess("--vmemu", "--vmemu-runs", "50")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected ok, got deadlock*", "replay: vmemu replay *"])

