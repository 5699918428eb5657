"""The ``vmemu`` command line: run, explore, replay, check, lockdep (DESIGN §5).

Exit codes: 0 nothing found (``check``: all as expected), 1 a failure verdict (``check``:
a mismatch), 2 bad input or usage. Bad input is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from typing import Any, Iterator, Sequence

from ._errors import UserError

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
#: The exploration's worker processes kept dying (not a finding, not bad input).
EXIT_WORKERS = 3
_STORE = os.path.join(".vmemu", "campaigns.sqlite")
_FINDINGS = os.path.join(".vmemu", "findings")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {v}")
    return v


def _pos_int(text: str) -> int:
    v = _nonneg_int(text)
    if v == 0:
        raise argparse.ArgumentTypeError("expected a positive number, got 0")
    return v


def _seed(text: str) -> int:
    from ._bounds import MAX_SEED
    v = _nonneg_int(text)
    if v > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {MAX_SEED}, got {v}")
    return v


def _jobs(text: str) -> int:
    from ._bounds import MAX_JOBS
    v = _pos_int(text)
    if v > MAX_JOBS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_JOBS} worker processes, "
                                         f"got {v}")
    return v


def _path(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("expected a file or folder name, got ''")
    return text


def _pos_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return v


def _add_common(p: argparse.ArgumentParser, *, scenario: bool = True,
                driver: str = "trio") -> None:
    if scenario:
        p.add_argument("scenario", help="scenario file (.yaml or .py)")
        p.add_argument("--faults", metavar="F", type=_path, help="fault plan (faults/*.yaml)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--driver", default=driver, choices=["trio", "direct", "asyncio"],
                   help=f"how tasks are resumed (same traces either way; default {driver})")
    p.add_argument("--log", choices=["json", "console"], help="structured event log on stderr")


#: Strategy names for --help (tests check them against the registry).
STRATEGY_HELP = {
    "run": "random, pct, dfs or hypothesis",
    "explore": "portfolio (random and pct in turn), random, pct, dfs or hypothesis",
}


def _add_strategy(p: argparse.ArgumentParser, default: str, command: str,
                  resumable: bool = False) -> None:
    # explore: None means "the default, or the resumed campaign's"
    p.add_argument("--strategy", default=None if resumable else default, metavar="NAME",
                   help=f"scheduling strategy: {STRATEGY_HELP[command]} (default {default})")
    p.add_argument("--seed", type=_seed, default=None if resumable else 0,
                   help="seed (default 0)")
    p.add_argument("--depth", type=_pos_int, default=None, help="PCT bug depth d (default 3)")
    # Spelled with '_' too: a replay command appends `--{param}={value}` (Result.replay_command).
    p.add_argument("--steps-hint", "--steps_hint", dest="steps_hint", type=_pos_int,
                   default=None, metavar="K", help="PCT run-length estimate k (default: "
                   "adaptive in explore, 64 alone)")
    p.add_argument("--bound", choices=["delays", "preemptions"], default=None,
                   help="dfs: bound delays (default) or preemptions")
    p.add_argument("--max-bound", "--max_bound", "--max", dest="max_bound", type=_nonneg_int,
                   default=None, metavar="N", help="dfs: at most N delays/preemptions "
                   "(default: no limit, deepen 0, 1, 2 ... within --runs/--time)")
    p.add_argument("--prefix", default=None, help="dfs: the decision prefix of one schedule "
                   "(from a replay command)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests).

    Args:
        command: build only this subcommand's parser (a command line names one: the
            others cost milliseconds of every command's start-up); None or a name that
            is not a command builds them all, for ``--help`` and for the error.
    """
    from . import __version__
    p = _Parser(prog="vmemu", description="Find and replay concurrency hangs in emulated "
                "kernels: deadlocks, hung tasks, livelocks, low-memory lock inversions.")
    p.add_argument("--version", action="version", version=f"vmemu {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, add in _SUBPARSERS.items():
        if command in (None, name) or command not in _SUBPARSERS:
            add(sub)
    return p


def _add_run(sub: Any) -> None:
    r = sub.add_parser("run", help="run one schedule of a scenario")
    _add_common(r)
    _add_strategy(r, "random", "run")
    r.add_argument("--trace", metavar="OUT.json", type=_path, help="save the trace here")
    _add_viz(r)


def _add_explore(sub: Any) -> None:
    e = sub.add_parser("explore", help="search many schedules for a failure")
    # Explore runs thousands of schedules: the direct driver is the fast one (same traces).
    _add_common(e, driver="direct")
    _add_strategy(e, "portfolio", "explore", resumable=True)
    e.add_argument("--runs", type=_pos_int, default=None,
                   help="schedules to try (default 1000, or no limit with --time)")
    e.add_argument("--time", type=_pos_float, default=None, metavar="S",
                   help="stop starting new schedules after S wall-clock seconds")
    e.add_argument("--jobs", type=_jobs, default=1, metavar="J",
                   help="worker processes (the findings do not depend on J)")
    e.add_argument("--all", action="store_true",
                   help="keep going after the first failure; one finding per distinct bug")
    e.add_argument("--findings", default=_FINDINGS, metavar="DIR", type=_path,
                   help="where failing traces are saved as found (default .vmemu/findings)")
    _add_viz(e)
    e.add_argument("--cluster", metavar="ADDR", help="run on Dask: tcp://HOST:PORT of a "
                   "scheduler, or local:N for N local worker processes (vmemu[dask])")
    e.add_argument("--store", default=_STORE, metavar="FILE",
                   help=f"campaign store, SQLite (default {_STORE})")
    e.add_argument("--resume", action="store_true", help="continue this scenario's last "
                   "campaign at its next unrun schedule")


def _add_campaigns(sub: Any) -> None:
    cp = sub.add_parser("campaigns", help="list the campaigns in the store")
    cp.add_argument("--store", default=_STORE, metavar="FILE", help=f"default {_STORE}")
    cp.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _add_replay(sub: Any) -> None:
    rp = sub.add_parser("replay", help="replay a saved trace")
    rp.add_argument("trace", type=_path, help="trace file saved by run --trace or explore")
    _add_common(rp, scenario=False)
    _add_viz(rp)


def _add_check(sub: Any) -> None:
    c = sub.add_parser("check", help="check that each scenario reaches its `expect` verdict")
    c.add_argument("scenarios", nargs="+", type=_path,
                   help="scenario files, or folders (searched recursively; a file whose "
                        "first line is `# expect-error: TEXT` must fail to load with TEXT)")
    c.add_argument("--runs", type=_pos_int, default=None,
                   help="schedules per scenario (default 1000)")
    c.add_argument("--seed", type=_seed, default=0,
                   help="first seed of each scenario's exploration (default 0)")
    c.add_argument("-v", "--verbose", action="store_true",
                   help="print the full report of every scenario, not only of mismatches")
    c.add_argument("--findings", default=_FINDINGS, metavar="DIR", type=_path,
                   help="where failing traces are saved, so each replay command works "
                        "(default .vmemu/findings)")
    # Many schedules of many scenarios: the direct driver is the fast one (same traces).
    _add_common(c, scenario=False, driver="direct")


def _add_lockdep(sub: Any) -> None:
    ld = sub.add_parser("lockdep", help="predict lock-order and reclaim deadlock cycles")
    _add_common(ld)
    ld.add_argument("--runs", type=_pos_int, default=None, help="schedules to learn from")
    ld.add_argument("--confirm", type=_nonneg_int, default=None, metavar="N",
                    help="schedules of the targeted search that tries to make each "
                         "unconfirmed prediction deadlock for real (default 200; 0: none)")
    ld.add_argument("--findings", default=_FINDINGS, metavar="DIR", type=_path,
                    help="where confirmed predictions' traces are saved "
                         "(default .vmemu/findings)")
    ld.add_argument("--seed", type=_seed, default=0,
                    help="first seed of the learning schedules (default 0)")
    _add_viz(ld, perfetto=False)


def _add_measure(sub: Any) -> None:
    from ._measure import add_parser as add_measure
    add_measure(sub, _add_common, _seed)


#: The subcommands, in the order ``--help`` lists them.
_SUBPARSERS = {"run": _add_run, "explore": _add_explore, "campaigns": _add_campaigns,
               "replay": _add_replay, "check": _add_check, "lockdep": _add_lockdep,
               "measure": _add_measure}


def _add_viz(p: argparse.ArgumentParser, perfetto: bool = True) -> None:
    """``--html FILE`` / ``--perfetto FILE`` (``vmemu/_viz/cli.py`` writes them)."""
    from ._viz.cli import add_options
    add_options(p, perfetto=perfetto)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    from ._output import Stderr, Stdout, write_error
    out, err = Stdout(sys.stdout), sys.stderr
    sys.stdout, sys.stderr = out, Stderr(err)
    try:
        code = _main(argv)
        try:
            out.inner.flush()
        except BrokenPipeError:
            out.gone()
        except OSError as e:    # `--json > /dev/full`
            out.gone()
            print(f"vmemu: error: {write_error(e)}", file=sys.stderr)
            code = EXIT_USAGE
        return code
    finally:
        sys.stdout, sys.stderr = out.inner, err


def _main(argv: Sequence[str] | None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser(argv[0] if argv else None).parse_args(argv)
        from ._kernel.lockup import ENV, env_error
        if (problem := env_error()) is not None:
            raise UserError(problem + "; unset it or fix it", key=ENV)
        if getattr(args, "faults", None) is not None:
            # Loaded here so that a message about the file names the option it came from.
            from ._faults import load_fault_plan
            args.faults = load_fault_plan(args.faults, key="--faults")
        log = _make_log(getattr(args, "log", None))
        from ._viz.cli import check_outputs
        check_outputs(args)   # --html/--perfetto: refuse an unwritable path before the work
        with _stop_at_a_step():
            return _COMMANDS[args.command](args, log)
    except UserError as e:
        print(f"vmemu: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as e:
        # (SIGTERM while a command sets up, before it handles interruptions itself)
        signum = getattr(e, "signum", 2)
        print(f"vmemu: {'terminated' if signum == 15 else 'interrupted'}", file=sys.stderr)
        return 128 + signum


@contextlib.contextmanager
def _stop_at_a_step() -> Iterator[None]:
    """Ctrl-C and SIGTERM stop a command's run at its next step, on every driver.

    Python raises KeyboardInterrupt at whatever bytecode runs, and that may be emulated
    code whose bare ``except:`` swallows it (the run then went on to its end). A run
    stops at a step instead, which no emulated code sees; outside a run, and at a second
    signal, the handler raises at once. An exploration installs handlers of its own
    for its span. A signal the shell made us ignore stays ignored.
    """
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield       # (called from a thread: signals are not ours to handle)
        return
    seen = [0]

    def stop(signum: int, frame: Any) -> None:
        from ._kernel.kernel import interrupt_running
        if seen[0] or not interrupt_running(signum, later_runs=True):
            raise _Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        seen[0] = signum
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig, was in old.items():
        if was is not signal.SIG_IGN:
            signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, was in old.items():
            if was is not signal.SIG_IGN:
                signal.signal(sig, was if was is not None else signal.SIG_DFL)
        from ._kernel import lockup
        lockup.STOP[0] = 0


def _make_log(kind: str | None) -> Any:
    if kind is None:
        return None
    import structlog
    renderer = (structlog.processors.JSONRenderer(sort_keys=True) if kind == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    logger = structlog.wrap_logger(structlog.PrintLogger(sys.stderr),
                                   processors=[renderer])

    def log(ev: list) -> None:
        tick, task, op, arg, line = ev
        logger.info(op, tick=tick, task=task, arg=arg, line=line)
    # Commands that run many schedules (explore, check) log what they report, not every
    # schedule: a line saying which run follows, then that run's events.
    log.note = logger.info  # type: ignore[attr-defined]
    return log


def _log_result(log: Any, r: Any) -> None:
    """Log the events of ``r``'s schedule under a header line (from its trace: the run
    is over, and re-running it would cost a soft lockup's threshold once more)."""
    log.note("schedule", scenario=r.scenario.name, verdict=r.verdict,
             schedule=r.extra.get("schedule"), replay=r.replay_command())
    for ev in r.trace.events:
        log(ev)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    # Only options the user set: each strategy rejects parameters it does not take.
    names = ("depth", "steps_hint", "bound", "max_bound", "prefix")
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _write_viz(args: argparse.Namespace, **what: Any) -> None:
    from ._viz.cli import write_outputs
    write_outputs(args, **what)


def _emit(result: Any, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        from ._report import print_report
        print_report(result)


def _cmd_run(args: argparse.Namespace, log: Any) -> int:
    from ._run import run
    r = run(args.scenario, seed=args.seed, strategy=args.strategy, faults=args.faults,
            driver=args.driver, log=log, **_params(args))
    if args.trace:
        r.trace_path = r.trace.save(args.trace)
    _write_viz(args, result=r)
    _emit(r, args)
    return EXIT_FOUND if r.failed else EXIT_OK


def findings_dir(path: str | None) -> str | None:
    """``--findings``: the default folder only where it can be made (an exploration in a
    read-only folder still runs, and says its failing traces are not saved; a folder the
    user named that cannot be made is one line, exit 2, from ``explore`` itself). Called
    by each command after its other checks: bad input stays one line."""
    from ._files import check_folder
    if path != _FINDINGS:
        if path is not None:    # (a folder named but unusable: one line, before the work)
            check_folder(path, "--findings")
        return path
    try:
        check_folder(_FINDINGS, "--findings")
    except UserError as e:
        print(f"vmemu: note: failing traces are not saved ({e}); name a folder you can "
              "write with --findings to save them", file=sys.stderr)
        return None
    return _FINDINGS


def _store(path: str) -> str | None:
    """The campaign store to use: the default one only where it can be written (an
    exploration in a read-only folder still runs, and says it keeps no record); one
    the user named must open, or that is the one line this command prints."""
    if not path:
        return None
    from ._explore.store import Store
    try:
        Store(path).close()
    except UserError as e:
        if path != _STORE:
            raise
        print(f"vmemu: note: this campaign is not recorded ({e})", file=sys.stderr)
        return None
    return path


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like a Ctrl-C so that an exploration ends its workers and saves."""

    signum = 15


def _cmd_explore(args: argparse.Namespace, log: Any) -> int:
    # (A SIGTERM while this sets up is _stop_at_a_step's: no run yet, so it raises
    # _Terminated at once; the exploration's own handlers take over while it runs.)
    from ._explore import DEFAULT_RUNS, ExploreInterrupted, WorkersLost, explore
    from ._explore.ui import ProgressBar, explore_json, explore_text
    # --time alone means "as many schedules as fit"; --runs still caps it when given.
    runs = args.runs or (DEFAULT_RUNS if args.time is None else 2**62)
    # No bar under --log: the log's lines go to stderr too, and would tear it.
    bar = ProgressBar.maybe(enabled=not args.json and log is None)

    def found(r: Any) -> None:
        bar.found(r)
        if log is not None:
            _log_result(log, r)
    store = _store(args.store)
    args.findings = findings_dir(args.findings)
    try:
        with bar:
            x = explore(args.scenario, runs=runs, seed=args.seed, strategy=args.strategy,
                        faults=args.faults, driver=args.driver, time_budget=args.time,
                        keep_going=args.all, jobs=args.jobs, cluster=args.cluster,
                        findings_dir=args.findings, progress=bar.update, on_finding=found,
                        store=store, resume=args.resume,
                        # (no folder to save a minimized trace in: the report is the
                        # schedule as found, which its seed replays)
                        minimize=args.findings is not None, **_params(args))
    except ExploreInterrupted as e:
        # The run cut short by Ctrl-C may leave emulated coroutines that never started.
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        saved = "; ".join(f"vmemu replay {p}" for p in e.saved)
        how = "terminated" if e.signum == 15 else "interrupted"
        known = (f"{_plural(e.known_hits, 'schedule')} hit bugs the campaign knew"
                 if e.known_hits else "")
        print(f"vmemu: {how} after {_plural(e.schedules, 'schedule')}; "
              + (f"{_plural(len(e.saved), 'finding')} saved: {saved}" if e.saved
                 else f"no new bug; {known}" if known else "nothing found"),
              file=sys.stderr)
        return 128 + e.signum
    except WorkersLost as e:
        kept = ("; the campaign keeps what it recorded, and --resume goes on from there"
                if store is not None else "")
        print(f"vmemu: error: {e}; gave up after {_plural(e.schedules, 'schedule')}{kept} "
              "(with fewer --jobs, if memory ran out)", file=sys.stderr)
        return EXIT_WORKERS
    if log is not None and not x.findings:
        log.note("explored", scenario=x.result.scenario.name, verdict=x.verdict,
                 schedules=x.schedules)
    _write_viz(args, explore=x)
    if args.json:
        print(json.dumps(explore_json(x), indent=2))
    else:
        print(explore_text(x, args.findings))
    if x.unrecorded:
        print(f"vmemu: note: the campaign store stopped recording this exploration midway "
              f"({x.unrecorded}); the report is complete, but a resume will run the "
              "unrecorded schedules again", file=sys.stderr)
    return EXIT_FOUND if x.failed else EXIT_OK


def _cmd_campaigns(args: argparse.Namespace, log: Any) -> int:
    from ._explore.ui import campaigns_json, campaigns_text
    if not os.path.exists(args.store):
        raise UserError("no campaign store here yet; `vmemu explore` creates it",
                        file=args.store, key="--store")
    from ._explore.store import Store
    db = Store(args.store, readonly=True)
    try:
        rows = db.campaigns()
    finally:
        db.close()
    print(json.dumps(campaigns_json(rows), indent=2) if args.json else campaigns_text(rows))
    return EXIT_OK


def _cmd_replay(args: argparse.Namespace, log: Any) -> int:
    from ._run import replay
    r = replay(args.trace, driver=args.driver, log=log)
    from ._viz.cli import check_outputs
    # (the scenario and fault plan the trace names are inputs too, known only now)
    check_outputs(args, {"trace": args.trace, "scenario": r.scenario.path,
                         "faults": r.faults})
    _write_viz(args, result=r)
    _emit(r, args)
    return EXIT_FOUND if r.failed else EXIT_OK


def scenario_files(paths: Sequence[str]) -> list[Any]:
    """The entries ``check`` runs: named files as they are (they must load), and every
    scenario, negative test and fault plan found in named folders (``_collect``)."""
    from ._collect import Entry, classify, folder_files
    out: list[Any] = []
    for p in paths:
        if os.path.isdir(p):
            found = [classify(f) for f in folder_files(p)]
            if not any(e.kind != "plan" for e in found):
                raise UserError("folder has no scenario files (*.yaml, *.yml, *.py)", file=p)
            out.extend(e for e in found if e.kind != "plan")
        else:
            out.append(Entry(p, "named"))
    return out


def _cmd_check(args: argparse.Namespace, log: Any) -> int:
    from ._collect import matches_expected_error
    from ._explore import DEFAULT_RUNS, explore
    from ._scenario import load_scenario
    entries = scenario_files(args.scenarios)
    loaded: list[tuple[Any, Any, str | None]] = []   # (entry, scenario or None, error)
    bad_named = False
    for e in entries:
        try:
            loaded.append((e, load_scenario(e.path), None))
        except UserError as err:
            if e.kind == "named":   # a file you name must load, as for every command
                print(f"vmemu: error: {err}", file=sys.stderr)
                bad_named = True
            loaded.append((e, None, str(err)))
    if bad_named:
        return EXIT_USAGE           # every bad named file reported, nothing run
    args.findings = findings_dir(args.findings)
    rows = []
    for e, sc, error in loaded:
        if e.kind == "negative":
            ok = error is not None and matches_expected_error(error, e.expect_error)
            got = "it loaded" if error is None else error
            rows.append({"path": e.path, "scenario": sc.name if sc else None,
                         "expect": f"error {e.expect_error!r}", "ok": ok,
                         "verdict": "error" if error else "loaded", "error": error,
                         "text": f"expect error {e.expect_error!r}, " + (
                             "got it" if ok else f"got: {got}")})
            continue
        if sc is None:
            rows.append({"path": e.path, "scenario": None, "expect": None, "ok": False,
                         "verdict": "error", "error": error,
                         "text": f"does not load: {error}"})
            continue
        x = explore(sc, runs=args.runs or DEFAULT_RUNS, seed=args.seed, driver=args.driver,
                    findings_dir=args.findings, minimize=args.findings is not None)
        ok = x.verdict == sc.expect
        rows.append({"path": sc.path, "scenario": sc.name, "expect": sc.expect, "ok": ok,
                     "verdict": x.verdict, "schedules": x.schedules,
                     "replay": x.result.replay_command(), "result": x.result,
                     "text": f"expect {sc.expect}, got {x.verdict} "
                             f"({_plural(x.schedules, 'schedule')})"})
        if log is not None:
            _log_result(log, x.result)
    mismatches = sum(not r["ok"] for r in rows)
    if args.json:
        print(json.dumps({"ok": mismatches == 0, "scenarios": [
            {k: v for k, v in r.items() if k not in ("text", "result")} for r in rows]},
            indent=2))
    else:
        for r in rows:
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['path']}: {r['text']}")
            res = r.get("result")
            if res is not None and (not r["ok"] or (args.verbose and res.failed)):
                print("     " + res.report().replace("\n", "\n     "))
        print(f"{len(rows) - mismatches} of {_plural(len(rows), 'scenario')} as expected")
    return EXIT_FOUND if mismatches else EXIT_OK


def _plural(n: int, word: str) -> str:
    """``1 schedule``, ``2 schedules``."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def _cmd_lockdep(args: argparse.Namespace, log: Any) -> int:
    try:
        from ._lockdep.cli import cmd_lockdep
    except ImportError:  # pragma: no cover - until lockdep lands
        raise UserError("lockdep is not available in this build", key="lockdep")
    return cmd_lockdep(args, log)


def _cmd_measure(args: argparse.Namespace, log: Any) -> int:
    from ._measure import cmd_measure
    return cmd_measure(args, log)


_COMMANDS = {"run": _cmd_run, "explore": _cmd_explore, "replay": _cmd_replay,
             "check": _cmd_check, "lockdep": _cmd_lockdep, "measure": _cmd_measure,
             "campaigns": _cmd_campaigns}
