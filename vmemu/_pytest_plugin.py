"""A pytest plugin: scenario files become test items (registered as the ``vmemu`` plugin).

Opt in with ``pytest --vmemu PATH...`` or ``vmemu = true`` in the ini file. Then every
``*.yaml``/``*.yml`` file pytest meets under the given paths is one test item that explores
the scenario (``--vmemu-runs``, ``--vmemu-seed``, ``--vmemu-driver``) and passes when the
verdict equals the file's ``expect``. A mismatch fails with vmemu's report and the command
that replays the run. A file that does not load is a failing item carrying the one-line
error, never a collection crash.

Which files are scenarios is decided as ``vmemu check`` decides for a folder
(:mod:`vmemu._collect`): folders are searched recursively; a file whose first line is
``# expect-error: TEXT`` is a negative test that passes when loading fails with an error
containing TEXT (case-insensitive), as in the contract's ``bad/`` folder; fault plans
(top-level ``faults:`` and no ``tasks:``) and files whose names start with ``_`` or ``.``
are not collected. Python scenarios (``*.py``) are left to pytest, which collects Python
files as test modules: check them with ``vmemu check``.

Without the opt-in the plugin does nothing, so installing vmemu never changes what an
unrelated test suite collects.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any, Iterator

import pytest

from ._collect import YAML_SUFFIXES, classify, matches_expected_error, wanted


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vmemu", "vmemu scenario files as tests")
    group.addoption("--vmemu", action="store_true", default=None,
                    help="collect *.yaml scenario files as tests (verdict must equal expect)")
    group.addoption("--vmemu-runs", type=int, default=None, metavar="N",
                    help="schedules explored per scenario (default: vmemu's default budget)")
    group.addoption("--vmemu-seed", type=int, default=None, metavar="S",
                    help="first seed of each exploration (default 0)")
    group.addoption("--vmemu-driver", default=None, metavar="D",
                    help="driver: direct (default; fastest), trio or asyncio; same verdicts")
    group.addoption("--vmemu-findings", default=None, metavar="DIR",
                    help="where traces of mismatching runs are saved (default .vmemu/findings)")
    parser.addini("vmemu", type="bool", default=False,
                  help="collect *.yaml scenario files as tests, like --vmemu")
    parser.addini("vmemu_runs", default="", help="schedules explored per scenario")
    parser.addini("vmemu_seed", default="", help="first seed of each exploration")
    parser.addini("vmemu_driver", default="", help="driver: direct, trio or asyncio")
    parser.addini("vmemu_findings", default="", help="where traces of mismatches are saved")


_SETTINGS = pytest.StashKey[tuple[int, int, str, str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vmemu: a vmemu scenario file collected as a test")
    if _enabled(config):
        # Bad settings are a usage error up front, not one failure per scenario.
        config.stash[_SETTINGS] = _settings(config)


def _enabled(config: pytest.Config) -> bool:
    opt = config.getoption("vmemu")
    return bool(opt) if opt is not None else bool(config.getini("vmemu"))


def _setting(config: pytest.Config, name: str) -> str | None:
    """A command-line option, else the ini value, else None (as text)."""
    opt = config.getoption(f"vmemu_{name}")
    if opt is not None:
        return str(opt)
    ini = str(config.getini(f"vmemu_{name}")).strip()
    return ini or None


def _int_setting(config: pytest.Config, name: str, default: int, minimum: int) -> int:
    text = _setting(config, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise pytest.UsageError(f"vmemu_{name}: expected a whole number >= {minimum}, "
                                f"got {text!r}; fix --vmemu-{name} or the ini option")
    return value


def _settings(config: pytest.Config) -> tuple[int, int, str, str]:
    from ._explore import DEFAULT_RUNS
    from ._kernel.drivers import DRIVERS
    runs = _int_setting(config, "runs", DEFAULT_RUNS, 1)
    seed = _int_setting(config, "seed", 0, 0)
    driver = _setting(config, "driver") or "direct"
    if driver not in DRIVERS:
        raise pytest.UsageError(f"vmemu_driver: unknown driver {driver!r}; choose one of "
                                f"{', '.join(DRIVERS)} (--vmemu-driver or the ini option)")
    findings = _setting(config, "findings") or os.path.join(".vmemu", "findings")
    return runs, seed, driver, findings


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> "ScenarioFile | None":
    if not wanted(file_path.name, YAML_SUFFIXES) or not _enabled(parent.config):
        return None
    if classify(file_path).kind == "plan":
        return None  # a fault plan, not a scenario
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.File):
    """One scenario file; it holds one item, named after the file."""

    def collect(self) -> Iterator["ScenarioItem"]:
        item = ScenarioItem.from_parent(self, name=self.path.stem)
        item.add_marker("vmemu")
        yield item


class ScenarioFailure(Exception):
    """A scenario item failed; the message is the whole failure report."""


class ScenarioItem(pytest.Item):
    """Explore one scenario; pass when the verdict equals ``expect``."""

    def _shown_path(self) -> str:
        # Paths in reports and replay commands are relative to where pytest was started,
        # so the printed command works when pasted into the same shell (absolute if some
        # test has changed the working directory since).
        start = self.config.invocation_params.dir
        if Path.cwd() != start:
            return str(self.path)
        try:
            return os.path.relpath(self.path, start)
        except ValueError:  # pragma: no cover - another drive on Windows
            return str(self.path)

    def runtest(self) -> None:
        from ._errors import UserError
        from ._explore import explore
        from ._scenario import load_scenario
        runs, seed, driver, findings = self.config.stash[_SETTINGS]
        path = self._shown_path()
        expect_error = classify(self.path).expect_error
        try:
            sc = load_scenario(path)
        except UserError as e:
            if expect_error is not None and matches_expected_error(str(e), expect_error):
                return
            raise ScenarioFailure(str(e)) from None
        if expect_error is not None:
            raise ScenarioFailure(f"{path}: loaded, but its first line expects an error "
                                  f"containing {expect_error!r}")
        try:
            x = explore(sc, runs=runs, seed=seed, driver=driver)
        except UserError as e:
            raise ScenarioFailure(str(e)) from None
        if x.verdict != sc.expect:
            _save(x.result, findings)
            raise ScenarioFailure(_mismatch_text(sc, x, runs, seed))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"vmemu scenario {self._shown_path()}"


def _save(r: Any, folder: str) -> None:
    """Save the run's trace (as ``vmemu explore`` saves findings) so it can be replayed.

    A minimized finding has no seed that rebuilds it: the saved tape is the only exact way
    back, so the report's replay command names the file.
    """
    from ._explore import finding_path
    try:
        r.trace_path = r.trace.save(finding_path(folder, r.scenario.name, r.trace))
    except OSError:
        pass   # a read-only tree: the report still says how to reproduce it without the file


def _mismatch_text(sc: Any, x: Any, runs: int, seed: int) -> str:
    r = x.result
    head = (f"{sc.path}: expected {sc.expect}, got {x.verdict} "
            f"({x.schedules} of {runs} schedules explored from seed {seed})")
    lines = [head, "", r.report()]
    if not r.failed:
        # An `ok` report has no replay line; the last run is still worth replaying, and a
        # failure that was expected may need a bigger budget.
        lines.append(f"replay: {r.replay_command()}")
        lines.append("search further: vmemu explore " + " ".join(
            shlex.quote(a) for a in (sc.path, "--runs", str(runs * 10), "--seed", str(seed))))
    return "\n".join(lines)
