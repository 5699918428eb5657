"""The ``vmemu`` command line: run, explore, replay, check, lockdep (DESIGN §5).

Exit codes: 0 nothing found (``check``: all as expected), 1 a failure verdict (``check``:
a mismatch), 2 bad input or usage. Bad input is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from ._errors import UserError

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
_STORE = os.path.join(".vmemu", "campaigns.sqlite")


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
        p.add_argument("--faults", metavar="F", help="fault plan (faults/*.yaml)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--driver", default=driver, choices=["trio", "direct", "asyncio"],
                   help=f"how tasks are resumed (same traces either way; default {driver})")
    p.add_argument("--log", choices=["json", "console"], help="structured event log on stderr")


def _add_strategy(p: argparse.ArgumentParser, default: str, resumable: bool = False) -> None:
    # explore: None means "the default, or the resumed campaign's"
    p.add_argument("--strategy", default=None if resumable else default,
                   help=f"scheduling strategy (default {default})")
    p.add_argument("--seed", type=_nonneg_int, default=None if resumable else 0,
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    p = _Parser(prog="vmemu", description="Find and replay concurrency hangs in emulated "
                "kernels: deadlocks, hung tasks, livelocks, low-memory lock inversions.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser("run", help="run one schedule of a scenario")
    _add_common(r)
    _add_strategy(r, "random")
    r.add_argument("--trace", metavar="OUT.json", help="save the trace here")
    _add_viz(r)

    e = sub.add_parser("explore", help="search many schedules for a failure")
    # Explore runs thousands of schedules: the direct driver is the fast one (same traces).
    _add_common(e, driver="direct")
    _add_strategy(e, "portfolio", resumable=True)
    e.add_argument("--runs", type=_pos_int, default=None,
                   help="schedules to try (default 1000, or no limit with --time)")
    e.add_argument("--time", type=_pos_float, default=None, metavar="S",
                   help="stop starting new schedules after S wall-clock seconds")
    e.add_argument("--jobs", type=_pos_int, default=1, metavar="J",
                   help="worker processes (the findings do not depend on J)")
    e.add_argument("--all", action="store_true",
                   help="keep going after the first failure; one finding per distinct bug")
    e.add_argument("--findings", default=".vmemu/findings", metavar="DIR",
                   help="where failing traces are saved as found (default .vmemu/findings)")
    _add_viz(e)
    e.add_argument("--cluster", metavar="ADDR", help="run on Dask: tcp://HOST:PORT of a "
                   "scheduler, or local:N for N local worker processes (vmemu[dask])")
    e.add_argument("--store", default=_STORE, metavar="FILE",
                   help=f"campaign store, SQLite (default {_STORE})")
    e.add_argument("--resume", action="store_true", help="continue this scenario's last "
                   "campaign at its next unrun schedule")

    cp = sub.add_parser("campaigns", help="list the campaigns in the store")
    cp.add_argument("--store", default=_STORE, metavar="FILE", help=f"default {_STORE}")
    cp.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    rp = sub.add_parser("replay", help="replay a saved trace")
    rp.add_argument("trace", help="trace file saved by run --trace or explore")
    _add_common(rp, scenario=False)
    _add_viz(rp)

    c = sub.add_parser("check", help="check that each scenario reaches its `expect` verdict")
    c.add_argument("scenarios", nargs="+", help="scenario files or folders")
    c.add_argument("--runs", type=_pos_int, default=None, help="schedules per scenario")
    c.add_argument("--seed", type=_nonneg_int, default=0)
    c.add_argument("-v", "--verbose", action="store_true",
                   help="print the full report of every scenario, not only of mismatches")
    c.add_argument("--findings", default=".vmemu/findings", metavar="DIR",
                   help="where failing traces are saved, so each replay command works "
                        "(default .vmemu/findings)")
    _add_common(c, scenario=False)

    ld = sub.add_parser("lockdep", help="predict lock-order and reclaim deadlock cycles")
    _add_common(ld)
    ld.add_argument("--runs", type=_pos_int, default=None, help="schedules to learn from")
    ld.add_argument("--confirm", type=_nonneg_int, default=None, metavar="N",
                    help="schedules of the targeted search that tries to make each "
                         "unconfirmed prediction deadlock for real (default 200; 0: none)")
    ld.add_argument("--findings", default=".vmemu/findings", metavar="DIR",
                    help="where confirmed predictions' traces are saved "
                         "(default .vmemu/findings)")
    ld.add_argument("--seed", type=_nonneg_int, default=0)
    _add_viz(ld, perfetto=False)
    return p


def _add_viz(p: argparse.ArgumentParser, perfetto: bool = True) -> None:
    """``--html FILE`` / ``--perfetto FILE`` (``vmemu/_viz/cli.py`` writes them)."""
    from ._viz.cli import add_options
    add_options(p, perfetto=perfetto)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        from ._kernel.lockup import ENV, env_error
        if (problem := env_error()) is not None:
            raise UserError(problem + "; unset it or fix it", key=ENV)
        log = _make_log(getattr(args, "log", None))
        from ._viz.cli import check_outputs
        check_outputs(args)   # --html/--perfetto: refuse an unwritable path before the work
        return _COMMANDS[args.command](args, log)
    except UserError as e:
        print(f"vmemu: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("vmemu: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `vmemu replay T | head`: the reader left; that is not an error of ours.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK


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


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like a Ctrl-C so that an exploration ends its workers and saves."""

    signum = 15


def _sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def _cmd_explore(args: argparse.Namespace, log: Any) -> int:
    import signal

    from ._explore import DEFAULT_RUNS, ExploreInterrupted, explore
    from ._explore.ui import ProgressBar, explore_json, explore_text
    # --time alone means "as many schedules as fit"; --runs still caps it when given.
    runs = args.runs or (DEFAULT_RUNS if args.time is None else 2**62)
    # No bar under --log: the log's lines go to stderr too, and would tear it.
    bar = ProgressBar.maybe(enabled=not args.json and log is None)

    def found(r: Any) -> None:
        bar.found(r)
        if log is not None:
            _log_result(log, r)
    old_term = signal.signal(signal.SIGTERM, _sigterm)
    try:
        with bar:
            x = explore(args.scenario, runs=runs, seed=args.seed, strategy=args.strategy,
                        faults=args.faults, driver=args.driver, time_budget=args.time,
                        keep_going=args.all, jobs=args.jobs, cluster=args.cluster,
                        findings_dir=args.findings, progress=bar.update, on_finding=found,
                        store=args.store or None, resume=args.resume, **_params(args))
    except ExploreInterrupted as e:
        # The run cut short by Ctrl-C may leave emulated coroutines that never started.
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        saved = "; ".join(f"vmemu replay {p}" for p in e.saved)
        how = "terminated" if e.signum == 15 else "interrupted"
        print(f"vmemu: {how} after {e.schedules} schedules; "
              + (f"{len(e.saved)} finding(s) saved: {saved}" if e.saved else "nothing found"),
              file=sys.stderr)
        return 128 + e.signum
    finally:
        signal.signal(signal.SIGTERM, old_term)
    if log is not None and not x.findings:
        log.note("explored", scenario=x.result.scenario.name, verdict=x.verdict,
                 schedules=x.schedules)
    _write_viz(args, explore=x)
    if args.json:
        print(json.dumps(explore_json(x), indent=2))
    else:
        print(explore_text(x, args.findings))
    return EXIT_FOUND if x.findings else EXIT_OK


def _cmd_campaigns(args: argparse.Namespace, log: Any) -> int:
    from ._explore.ui import campaigns_json, campaigns_text
    if not os.path.exists(args.store):
        raise UserError("no campaign store here yet; `vmemu explore` creates it",
                        file=args.store, key="--store")
    from ._explore.store import Store
    db = Store(args.store)
    try:
        rows = db.campaigns()
    finally:
        db.close()
    print(json.dumps(campaigns_json(rows), indent=2) if args.json else campaigns_text(rows))
    return EXIT_OK


def _cmd_replay(args: argparse.Namespace, log: Any) -> int:
    from ._run import replay
    r = replay(args.trace, driver=args.driver, log=log)
    _write_viz(args, result=r)
    _emit(r, args)
    return EXIT_FOUND if r.failed else EXIT_OK


def scenario_files(paths: Sequence[str]) -> list[str]:
    """Expand folders into their ``*.yaml``/``*.yml``/``*.py`` scenario files, sorted."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(str(q) for q in Path(p).iterdir()
                           if q.suffix in (".yaml", ".yml", ".py") and q.is_file()
                           and not q.name.startswith(("_", ".")))
            if not found:
                raise UserError("folder has no scenario files (*.yaml, *.py)", file=p)
            out.extend(found)
        else:
            out.append(p)
    return out


def _cmd_check(args: argparse.Namespace, log: Any) -> int:
    from ._explore import DEFAULT_RUNS, explore
    from ._scenario import load_scenario
    files = scenario_files(args.scenarios)
    scenarios = [load_scenario(f) for f in files]   # all bad input is reported up front
    rows = []
    mismatches = 0
    for sc in scenarios:
        x = explore(sc, runs=args.runs or DEFAULT_RUNS, seed=args.seed, driver=args.driver,
                    findings_dir=args.findings)
        ok = x.verdict == sc.expect
        mismatches += not ok
        rows.append((sc, x, ok))
        if log is not None:
            _log_result(log, x.result)
    if args.json:
        print(json.dumps({"ok": mismatches == 0, "scenarios": [
            {"scenario": sc.name, "path": sc.path, "expect": sc.expect, "verdict": x.verdict,
             "ok": ok, "schedules": x.schedules, "replay": x.result.replay_command()}
            for sc, x, ok in rows]}, indent=2))
    else:
        for sc, x, ok in rows:
            mark = "ok  " if ok else "FAIL"
            print(f"{mark} {sc.path}: expect {sc.expect}, got {x.verdict} "
                  f"({x.schedules} schedules)")
            if not ok or (args.verbose and x.result.failed):
                print("     " + x.result.report().replace("\n", "\n     "))
        print(f"{len(rows) - mismatches} of {len(rows)} scenarios as expected")
    return EXIT_FOUND if mismatches else EXIT_OK


def _cmd_lockdep(args: argparse.Namespace, log: Any) -> int:
    try:
        from ._lockdep.cli import cmd_lockdep
    except ImportError:  # pragma: no cover - until lockdep lands
        raise UserError("lockdep is not available in this build", key="lockdep")
    return cmd_lockdep(args, log)


_COMMANDS = {"run": _cmd_run, "explore": _cmd_explore, "replay": _cmd_replay,
             "check": _cmd_check, "lockdep": _cmd_lockdep, "campaigns": _cmd_campaigns}
