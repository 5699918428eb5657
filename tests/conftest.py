"""Shared test helpers: where the contract lives, and how to run the CLI."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract"
#: Scenarios in the extended syntax (values, kthreads, waits): they join the contract.
LANG = Path(__file__).resolve().parents[2] / "shared" / "lang"


@functools.cache
def seed_reaching(path: str | os.PathLike, verdict: str, start: int = 1) -> int:
    """The first seed (from ``start``) whose ``random`` run of ``path`` ends in ``verdict``.

    Tests choose their schedule by what it does, not by a bare number that a change in how
    seeds map to schedules would silently turn into another schedule.
    """
    import vmemu
    sc = vmemu.load(str(path))
    for seed in range(start, start + 200):
        if vmemu.run(sc, seed=seed, driver="direct").verdict == verdict:
            return seed
    raise AssertionError(f"no seed in {start}..{start + 199} gives {verdict} on {path}")


def contract_files() -> list[Path]:
    """Every contract scenario (must reach its `expect`)."""
    return sorted(CONTRACT.glob("*.yaml"))


def bad_files() -> list[Path]:
    """Every bad input (must be rejected with exit 2 and one line)."""
    return sorted((CONTRACT / "bad").glob("*.yaml"))


def lang_files() -> list[Path]:
    """Every scenario of ../shared/lang (must reach its `expect`, like the contract's)."""
    return sorted(LANG.glob("*.yaml"))


def lang_bad_files() -> list[Path]:
    """Every bad input of ../shared/lang/bad."""
    return sorted((LANG / "bad").glob("*.yaml"))


def vmemu_cli(*args: str, env: dict | None = None, cwd: str | os.PathLike | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m vmemu ARGS`` in a fresh process (as a user would)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "vmemu", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd or ROOT, timeout=timeout)


def cli_json(*args: str, **kw) -> dict:
    """Run the CLI with ``--json`` and parse stdout."""
    p = vmemu_cli(*args, "--json", **kw)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


@pytest.fixture
def write_scenario(tmp_path):
    """Write a YAML scenario into a temp folder and return its path."""
    def write(text: str, name: str = "s.yaml") -> str:
        p = tmp_path / name
        p.write_text(text)
        return str(p)
    return write


def io_retry_scenario(folder: Path, *, repeats: int, probability: float) -> tuple[str, str]:
    """A reader whose IO may fail (`io_error` with ``probability``): the bug is "some IO
    failed", so one fired fault is enough. Returns (scenario path, fault plan path)."""
    sc = folder / "io_retry.yaml"
    sc.write_text(f"""name: io-retry
expect: assertion
vars: {{errors: 0}}
tasks:
  reader:
    - repeat: {repeats}
      do:
        - io: 1
        - if: "ok == 0"
          then: [{{add: {{errors: 1}}}}]
    - assert: "errors == 0"
  other: [yield, yield]
""")
    plan = folder / "flaky.yaml"
    plan.write_text("name: flaky\nfaults:\n"
                    f"  - {{at: io, do: io_error, probability: {probability}}}\n")
    return str(sc), str(plan)
