"""Shared test helpers: where the contract lives, and how to run the CLI."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]

# Property tests draw the same examples on every run, so the suite is never flaky (a
# failure replays as it was seen); VMEMU_HYPOTHESIS=explore draws fresh random examples
# (500 where a test sets no count) to look for new bugs: pin what it finds with a test.
settings.register_profile("suite", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False, database=None, max_examples=500)
settings.load_profile(os.environ.get("VMEMU_HYPOTHESIS", "suite"))


def _contract() -> Path:
    """``../shared/contract`` beside this checkout, or beside the checkout that holds this
    copy of it (mutation testing runs the tests in a copy inside the checkout)."""
    here = Path(__file__).resolve()
    for up in here.parents[2:4]:
        if (up / "shared" / "contract").is_dir():
            return up / "shared" / "contract"
    return here.parents[2] / "shared" / "contract"


CONTRACT = _contract()
#: Scenarios in the extended syntax (values, kthreads, waits): they join the contract.
LANG = CONTRACT.parent / "lang"


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


def vmemu_cli_all(*calls: tuple, env: dict | None = None,
                  timeout: float = 120) -> list[subprocess.CompletedProcess]:
    """Like :func:`vmemu_cli` for several independent commands, run at the same time
    (the machine has two cores; a test waiting on one process at a time uses one).
    Each call is a tuple of arguments, or ``(args_tuple, env_dict)``."""
    procs = []
    for call in calls:
        args, extra = (call if len(call) == 2 and isinstance(call[1], dict)
                       else (call, None))
        full_env = {**os.environ, **(env or {}), **(extra or {})}
        procs.append((list(args), subprocess.Popen(
            [sys.executable, "-m", "vmemu", *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=full_env, cwd=ROOT)))
    out = []
    try:
        for args, p in procs:
            stdout, stderr = p.communicate(timeout=timeout)
            out.append(subprocess.CompletedProcess(args, p.returncode, stdout, stderr))
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return out


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


class LockLog:
    """An observer (as lockdep's recorder is) writing down every lock operation, as
    ``(hook, task, lock, mode)``. It has no ``bad_unlock`` hook (observers need not)."""

    def __init__(self):
        self.ops = []

    def acquiring(self, t, lock, mode):
        self.ops.append(("acquiring", t.name, lock.name, mode))

    def acquired(self, t, lock, mode):
        self.ops.append(("acquired", t.name, lock.name, mode))

    def released(self, t, lock, mode):
        self.ops.append(("released", t.name, lock.name, mode))


#: ABBA that needs t2 to take B in the one-step window while t1 holds A: under `random`
#: the first failure comes after a hundred-odd schedules, past the first blocks of work.
RARE = """\
name: rare
locks: {A: mutex, B: mutex}
tasks:
  t1: [{lock: A}, yield, {lock: B}, {unlock: B}, {unlock: A}]
  t2: [yield, yield, yield, yield, yield, yield, yield, yield, yield, yield, yield, yield,
       {lock: B}, {lock: A}, {unlock: A}, {unlock: B}]
  t3: [yield, yield, yield, yield, yield, yield, yield, yield, yield, yield]
"""


#: Two different bugs: the ABBA deadlock of t1/t2, and a torn update that `r` observes
#: when it runs between `w`'s two writes; some schedules hit neither.
TWO_BUGS = """\
name: two-bugs
locks: {A: mutex, B: mutex}
vars: {x: 0}
tasks:
  t1: [{lock: A}, yield, {lock: B}, {unlock: B}, {unlock: A}]
  t2: [{lock: B}, yield, {lock: A}, {unlock: A}, {unlock: B}]
  w: [{set: {x: 1}}, {set: {x: 0}}]
  r: [{assert: "x == 0"}]
"""

#: Four tasks taking one mutex 2,000 times each (24,000 steps): long enough to cancel or
#: interrupt mid-run, short enough to run in full as a reference.
SPIN = """
name: spin
expect: ok
limits: {steps: 1000000}
locks: {m: mutex}
tasks:
  t:
    count: 4
    steps:
      - repeat: 2000
        do: [yield, {lock: m}, {unlock: m}]
"""
