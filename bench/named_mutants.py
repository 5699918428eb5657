"""Deliberate bugs that once passed the whole suite (issue 13): each must now fail a test.

For every mutant below, a copy of the repository gets that one edit and runs the test
files named for it; the mutant is *killed* when they fail. mutmut (``bench/mutation.sh``)
mutates only code inside functions, so the module-level ``GFP_MASKS`` table is covered
here. A mutant whose source text is no longer in its file (the code was rewritten) is
reported as ``gone`` with its description: write the same bug into the new code by hand.

Usage: ``.venv/bin/python bench/named_mutants.py [NAME...]`` (exit 1 if one survives)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (file, original text, mutated text, test files that must fail). One mutant may
# edit several files: "a.py|b.py", with the texts of each split on " || ".
MUTANTS: dict[str, tuple[str, str, str, list[str]]] = {
    "cycle-from-first-blocked-only": (
        "vmemu/_kernel/watchdog.py",
        "else [t for t in k.tasks if t.state is BLOCKED]",
        "else [t for t in k.tasks if t.state is BLOCKED][:1]",
        ["tests/test_watchdog.py"]),
    "cycle-is-the-whole-path": (
        "vmemu/_kernel/watchdog.py", "return _cycle(path[on_path[nxt.tid]:])",
        "return _cycle(path)",
        ["tests/test_watchdog.py"]),
    # Both places: the kernel's pre-check and the watchdog's scan (either alone changes
    # nothing, as the other still filters; see bench/mutation_equivalent.md).
    "hung-at-exactly-the-timeout": (
        "vmemu/_kernel/watchdog.py|vmemu/_kernel/kernel.py",
        "next_tick - t.blocked_since > limit || "
        "next_tick - oldest.blocked_since > self.limits.hung_task_timeout",
        "next_tick - t.blocked_since >= limit || "
        "next_tick - oldest.blocked_since >= self.limits.hung_task_timeout",
        ["tests/test_watchdog.py"]),
    "hung-youngest-not-oldest": (
        "vmemu/_kernel/watchdog.py", "t.blocked_since < worst.blocked_since",
        "t.blocked_since > worst.blocked_since", ["tests/test_watchdog.py"]),
    "gfp-noio-has-io": (
        "vmemu/_kernel/_gfp.py", '"GFP_NOIO": frozenset({DIRECT_RECLAIM})',
        '"GFP_NOIO": frozenset({DIRECT_RECLAIM, IO})', ["tests/test_gfp.py"]),
    "gfp-nofs-has-fs": (
        "vmemu/_kernel/_gfp.py", '"GFP_NOFS": frozenset({DIRECT_RECLAIM, IO})',
        '"GFP_NOFS": frozenset({DIRECT_RECLAIM, IO, FS})', ["tests/test_gfp.py"]),
    "gfp-atomic-not-high": (
        "vmemu/_kernel/_gfp.py", '"GFP_ATOMIC": frozenset({HIGH})',
        '"GFP_ATOMIC": frozenset()', ["tests/test_gfp.py"]),
    "gfp-kernel-without-fs": (
        "vmemu/_kernel/_gfp.py", '"GFP_KERNEL": frozenset({DIRECT_RECLAIM, IO, FS})',
        '"GFP_KERNEL": frozenset({DIRECT_RECLAIM, IO})', ["tests/test_gfp.py"]),
    "lockdep-trylock-chain-dropped": (
        "vmemu/_lockdep/graph.py", "            if not h.trylock:\n                break",
        "            break", ["tests/test_lockdep_rules.py"]),
    "lockdep-io-reclaim-only-without-fs": (
        "vmemu/_lockdep/graph.py", "may += [IO_RECLAIM] if IO in gfp else []",
        "may += [IO_RECLAIM] if IO in gfp and FS not in gfp else []",
        ["tests/test_lockdep_rules.py"]),
    # Found by mutating the kernel (kernel.py), each a bug a user would see in a trace.
    "timed-out-waiter-stays-queued": (
        "vmemu/_kernel/kernel.py",
        "r.waiters = type(r.waiters)(w for w in r.waiters if w[0] is not t)",
        "r.waiters = type(r.waiters)(w for w in r.waiters if w[1] is not t)",
        ["tests/test_kthreads.py"]),
    "timers-last-in-first-out": (
        "vmemu/_kernel/kernel.py", "self._timer_seq += 1", "self._timer_seq -= 1",
        ["tests/test_kthreads.py"]),
    "certain-fault-asks-the-strategy": (
        "vmemu/_kernel/kernel.py", "if p >= 1.0:", "if p > 1.0:", ["tests/test_faults.py"]),
    "direct-driver-ignores-preempt": (
        "vmemu/_kernel/kernel.py", '        self.detour = True\n        self.emit(t, "preempt")',
        '        self.detour = False\n        self.emit(t, "preempt")',
        ["tests/test_faults.py"]),
    "direct-driver-misses-ctrl-c": (
        "vmemu/_kernel/kernel.py", "    k.detour = True     # the direct driver",
        "    k.detour = False     # the direct driver", ["tests/test_cancellation.py"]),
    "ok-reports-after-unwinding": (
        "vmemu/_kernel/kernel.py", "if outcome is _OK and self._done == len(self.tasks):",
        "if outcome is _OK and self._done != len(self.tasks):", ["tests/test_verdicts.py"]),
    "unwinding-error-ends-the-task": (
        "vmemu/_kernel/kernel.py",
        "if exc is not None and (self.stopping or isinstance(exc, Killed)):",
        "if exc is not None and (self.stopping and isinstance(exc, Killed)):",
        ["tests/test_drivers_equal.py"]),
    # mutmut does not mutate the @types.coroutine methods (checkpoint, block, sleep,
    # stopped): these are written by hand.
    "sleep-zero-sleeps": (
        "vmemu/_kernel/kernel.py", "        if ticks <= 0:", "        if ticks < 0:",
        ["tests/test_kthreads.py"]),
    "idle-kswapd-can-hang": (
        "vmemu/_kernel/kernel.py", "interruptible = interruptible or resource.interruptible",
        "interruptible = interruptible", ["tests/test_watchdog.py"]),
    "trio-cancellation-ignored": (
        "vmemu/_kernel/drivers/trio_driver.py", "        stop.append(raise_cancel)\n",
        "        pass\n", ["tests/test_cancellation.py"]),
}


def _copy() -> Path:
    """A copy of the repo beside the original (so ``../shared`` is found the same way)."""
    dest = Path(tempfile.mkdtemp(prefix=".named-mutants-", dir=ROOT))
    for name in ("vmemu", "tests", "scenarios", "faults", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def main(names: list[str]) -> int:
    todo = names or list(MUTANTS)
    survivors = 0
    for name in todo:
        paths, olds, news, tests = MUTANTS[name]
        edits = list(zip(paths.split("|"), olds.split(" || "), news.split(" || ")))
        gone = [(path, old) for path, old, _ in edits
                if (ROOT / path).read_text().count(old) != 1]
        if gone:
            print(f"gone      {name}: " + "; ".join(f"{p} no longer has {o.strip()!r} once"
                                                   for p, o in gone))
            continue
        work = _copy()
        try:
            for path, old, new in edits:
                (work / path).write_text((ROOT / path).read_text().replace(old, new))
            env = {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
            p = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p",
                                "no:cacheprovider", *tests], cwd=work, env=env,
                               capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            p = None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        killed = p is None or p.returncode != 0
        survivors += not killed
        how = "timeout" if p is None else ("tests failed" if killed else "ALL TESTS PASSED")
        print(f"{'killed' if killed else 'SURVIVED':9} {name}: {how} ({' '.join(tests)})",
              flush=True)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
