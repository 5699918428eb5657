"""``vmemu lockdep``: predict deadlocks from runs that never deadlocked.

Like Linux's lockdep (``Documentation/locking/lockdep-design.rst``), an observer attached
to every run records a dependency ``A -> B`` whenever a task takes ``B`` while holding
``A``; the graph is merged over many schedules and every cycle in it is a deadlock that
some schedule could hit, whether or not one did. Reclaim is a pseudo-lock (``fs_reclaim``,
``io_reclaim``, ``reclaim``), so the 1999 superblock/reclaim bug shows up with ample memory.

Modules: :mod:`.graph` (the observer and the merged graph), :mod:`.learn` (runs,
synthetic writeback, confirmation by real deadlocks), :mod:`.report` (lockdep-shaped
text and JSON), :mod:`.cli` (``cmd_lockdep``).
"""

from __future__ import annotations

from .graph import DepGraph, Recorder
from .learn import LockdepResult, lockdep

__all__ = ["DepGraph", "Recorder", "LockdepResult", "lockdep"]
