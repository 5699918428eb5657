"""Exploration: many schedules of one scenario, in one process, ``--jobs`` or on Dask.

Modules import one way (each only from those before it):

- :mod:`.base`: ``ExploreResult``, ``signature``, ``finding_path``, ``interleaving``,
  ``Spec``;
- :mod:`.minimize`: fewer preemptions and faults, same bug;
- :mod:`.work`: ``run_block``, the work every executor runs;
- :mod:`.executors`: ``--jobs`` processes and Dask behind one interface;
- :mod:`.store`: the SQLite campaign store;
- :mod:`.findings`: one finding per bug, saved as found, minimized once final;
- :mod:`.plan`: blocks, index ranges, signals at safe points;
- :mod:`.coordinator`: the exploration's loop, coverage and hit counts, the answer;
- :mod:`.api`: :func:`explore` itself (arguments, campaign, spec);
- :mod:`.hypothesis` (``--strategy hypothesis``) and :mod:`.ui` (what the CLI prints).

Only :mod:`.base` is imported with the package: ``import vmemu`` stays cheap, and the
coordinator (with concurrent.futures, and sqlite3 or Dask when used) loads on the first
call of :func:`explore`.
"""

from __future__ import annotations

from typing import Any

from .base import (DEFAULT_RUNS, DEFAULT_STRATEGY, ExploreInterrupted, ExploreResult,
                   WorkersLost, finding_path, signature)

__all__ = ["explore", "ExploreResult", "ExploreInterrupted", "WorkersLost", "signature",
           "finding_path", "DEFAULT_RUNS", "DEFAULT_STRATEGY"]


def explore(scenario: Any, **kwargs: Any) -> ExploreResult:
    """Try up to ``runs`` schedules; stop at the first failure unless ``keep_going``.

    See :func:`vmemu._explore.api.explore` for every argument (``runs``,
    ``seed``, ``strategy``, ``faults``, ``driver``, ``time_budget``, ``keep_going``,
    ``jobs``, ``cluster``, ``findings_dir``, ``minimize``, ``progress``,
    ``on_finding``, ``store``, ``resume`` and strategy parameters).
    """
    from .api import explore as _explore
    return _explore(scenario, **kwargs)
