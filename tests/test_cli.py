"""The command line: exit codes, one-line usage errors, JSON, the structured log."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import vmemu
from conftest import CONTRACT, ROOT, seed_reaching, vmemu_cli, vmemu_cli_all

ABBA = str(CONTRACT / "abba.yaml")
ABBA_SEED = seed_reaching(ABBA, "deadlock")  # a schedule that deadlocks
ORDERED = str(CONTRACT / "abba_ordered.yaml")


@pytest.mark.parametrize("args,needle", [
    (["run", ABBA, "--seed", "-1"], "--seed"),
    (["run", ABBA, "--seed", "x"], "--seed"),
    (["explore", ABBA, "--runs", "0"], "--runs"),
    (["explore", ABBA, "--time", "-3"], "--time"),
    (["run", ABBA, "--strategy", "rando"], "did you mean 'random'"),
    (["run", ABBA, "--driver", "fast"], "--driver"),
    (["run", ABBA, "--log", "xml"], "--log"),
    (["run", "nope.yaml"], "no such scenario file"),
    (["run", str(CONTRACT)], "directory"),
    (["frobnicate"], "frobnicate"),
    ([], "COMMAND"),
    (["replay", "missing.json"], "missing.json"),
])
def test_usage_errors_are_one_line_exit_2(args, needle):
    p = vmemu_cli(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert needle in lines[0]


def test_exit_codes():
    assert vmemu_cli("explore", ABBA).returncode == 1
    assert vmemu_cli("explore", ORDERED, "--runs", "50").returncode == 0
    assert vmemu_cli("check", ABBA, ORDERED, "--runs", "200").returncode == 0


def test_check_reports_a_mismatch_with_exit_1(write_scenario, tmp_path):
    wrong = write_scenario(open(ABBA).read().replace("expect: deadlock", "expect: ok"))
    p = vmemu_cli("check", wrong, "--runs", "200", "--findings", str(tmp_path / "f"))
    assert p.returncode == 1
    assert "FAIL" in p.stdout and "expect ok, got deadlock" in p.stdout
    replay = [ln.strip() for ln in p.stdout.splitlines() if ln.strip().startswith("replay: ")]
    assert len(replay) == 1
    # The printed command works as printed: the finding was saved for it.
    again = vmemu_cli(*replay[0].split()[2:], "--json")
    assert again.returncode == 1 and json.loads(again.stdout)["verdict"] == "deadlock"


def test_run_json_has_the_contract_fields():
    p = vmemu_cli("run", ABBA, "--seed", str(ABBA_SEED), "--json")
    d = json.loads(p.stdout)
    assert p.returncode == 1 and d["verdict"] == "deadlock"
    for key in ("verdict", "scenario", "seed", "strategy", "steps", "ticks", "trace_hash",
                "tasks", "cycle", "trace"):
        assert key in d
    assert d["cycle"] == [
        {"task": "t1", "waits_for": "mutex B", "held_by": "t2", "edge": "lock",
         "text": "t1 waits for mutex B held by t2"},
        {"task": "t2", "waits_for": "mutex A", "held_by": "t1", "edge": "lock",
         "text": "t2 waits for mutex A held by t1"},
    ]


def test_text_report_ends_with_replay_command():
    p = vmemu_cli("run", ABBA, "--seed", str(ABBA_SEED))
    last = p.stdout.strip().splitlines()[-1]
    assert last == f"replay: vmemu run {ABBA} --seed {ABBA_SEED} --strategy random"
    # ... and that command reproduces the same run.
    again = vmemu_cli(*last.split()[2:])
    assert again.stdout == p.stdout


def test_structured_log_json():
    p = vmemu_cli("run", ABBA, "--seed", str(ABBA_SEED), "--log", "json", "--json")
    events = [json.loads(line) for line in p.stderr.splitlines()]
    assert events and {"event", "tick", "task"} <= set(events[0])
    assert any(e["event"] == "block" for e in events)
    assert events[-1]["event"] == "verdict"


def test_explore_log_shows_the_events_of_the_schedule_it_reports(tmp_path):
    p = vmemu_cli("explore", ABBA, "--log", "json", "--json", "--findings", str(tmp_path))
    assert p.returncode == 1
    out = json.loads(p.stdout)
    lines = [json.loads(line) for line in p.stderr.splitlines()]
    head, events = lines[0], lines[1:]
    # One header naming the finding and how to replay it, then that schedule's events:
    # exactly the events its saved trace holds.
    assert head["event"] == "schedule" and head["verdict"] == "deadlock"
    assert head["replay"] == out["replay"]
    saved = vmemu.Trace.load(out["trace"])
    assert [[e["tick"], e["task"], e["event"], e["arg"], e["line"]] for e in events] == \
        [list(e) for e in saved.events]


def test_explore_log_without_findings_and_check_log(tmp_path):
    ordered = str(CONTRACT / "abba_ordered.yaml")
    p = vmemu_cli("explore", ordered, "--runs", "30", "--log", "json")
    [line] = [json.loads(x) for x in p.stderr.splitlines()]
    assert p.returncode == 0 and line == {"event": "explored", "scenario": "abba-ordered",
                                          "verdict": "ok", "schedules": 30}
    p = vmemu_cli("check", ABBA, "--log", "json", "--findings", str(tmp_path))
    lines = [json.loads(x) for x in p.stderr.splitlines()]
    assert p.returncode == 0 and lines[0]["event"] == "schedule"
    assert lines[-1] == {**lines[-1], "event": "verdict", "arg": "deadlock"}


def test_python_m_vmemu_help():
    p = vmemu_cli("--help")
    assert p.returncode == 0 and "explore" in p.stdout and "lockdep" in p.stdout


def test_check_of_a_folder_without_scenarios(tmp_path):
    p = vmemu_cli("check", str(tmp_path))
    assert p.returncode == 2 and "no scenario files" in p.stderr and str(tmp_path) in p.stderr


def test_a_findings_folder_or_trace_path_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    calls = (("explore", ABBA, "--findings", str(blocker)),
             ("explore", ABBA, "--findings", str(blocker), "--jobs", "2"),
             ("run", ABBA, "--seed", str(ABBA_SEED), "--trace", str(blocker / "t.json")),
             ("lockdep", str(ROOT / "scenarios" / "lockdep" / "ext2_ample_memory.yaml"),
              "--findings", str(blocker)))
    for args, p in zip(calls, vmemu_cli_all(*calls)):
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, args
        # Each checked before any schedule runs (lockdep and run --trace once failed
        # only when saving, and lockdep's report of minutes of work was lost).
        if args[0] == "run":
            assert lines[0] == (f"vmemu: error: --trace: cannot write {blocker}/t.json: "
                                f"{blocker} is not a folder"), args
        else:
            assert lines[0] == (f"vmemu: error: --findings: {blocker} is a file, not a "
                                "folder; name a folder (it is made if need be)"), args
    assert blocker.read_text() == "not a folder\n"     # nothing the user had was touched


def test_sigterm_while_explore_sets_up_is_reported_as_terminated(monkeypatch, capsys,
                                                                 tmp_path):
    # SIGTERM raises vmemu's _Terminated (a KeyboardInterrupt, so that an exploration ends
    # its workers and saves). One that lands before the exploration handles it (loading,
    # opening the store) was reported as Ctrl-C: "interrupted", exit 130, not 143.
    import vmemu._explore as ex
    from vmemu._cli import _Terminated, main

    def set_up_then_sigterm(*a, **kw):
        raise _Terminated()

    monkeypatch.setattr(ex, "explore", set_up_then_sigterm)
    code = main(["explore", str(CONTRACT / "abba_ordered.yaml"), "--store",
                 str(tmp_path / "c.sqlite")])
    assert (code, capsys.readouterr().err) == (143, "vmemu: terminated\n")


def test_a_command_builds_only_its_own_parser_and_help_still_lists_all(tmp_path):
    # Building every subcommand's parser (and importing what `measure`'s needs) cost
    # every command milliseconds of start-up.
    code = ("import sys, runpy; sys.argv = ['vmemu', 'run', sys.argv[1], '--driver', 'direct']\n"
            "try:\n    runpy.run_module('vmemu', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('vmemu._measure', 'csv') if m in sys.modules),"
            " file=sys.stderr)")
    p = subprocess.run([sys.executable, "-c", code, str(CONTRACT / "abba_ordered.yaml")],
                       cwd=ROOT, capture_output=True, text=True)
    assert "OK in abba-ordered" in p.stdout, p.stderr
    assert p.stderr.strip().splitlines()[-1] == "[]", p.stderr
    top = subprocess.run([sys.executable, "-m", "vmemu", "--help"], cwd=ROOT,
                         capture_output=True, text=True).stdout
    for name in ("run", "explore", "campaigns", "replay", "check", "lockdep", "measure"):
        assert f"\n    {name}" in top
    one = subprocess.run([sys.executable, "-m", "vmemu", "measure", "--help"], cwd=ROOT,
                         capture_output=True, text=True)
    assert one.returncode == 0 and one.stdout.startswith("usage: vmemu measure")
