"""Seeing a run: a self-contained HTML page and a Perfetto (Chrome Trace Event) file.

- :func:`timeline` replays a result's decision tape with a recorder and returns the
  :class:`~.model.Timeline` both outputs are drawn from (``record.py``, ``model.py``);
- :func:`run_html`, :func:`explore_html`, :func:`lockdep_html` build the pages
  (``pages.py``, ``html.py``, ``graph.py``, ``viz.js``, ``viz.css``);
- :func:`perfetto_json` builds the trace (``perfetto.py``);
- :func:`write` saves either atomically (``output.py``).

See ``docs/visualizing.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - the CLI imports this package to add its options
    from .model import Timeline


def timeline(result: Any, faults: Any = None) -> "Timeline":
    """The timeline of a finished run (replays its tape once, on the trio driver)."""
    from .model import build
    from .record import record
    return build(record(result, faults), result.scenario.memory)


def run_html(result: Any, tl: "Timeline | None" = None, *, faults: Any = None) -> str:
    """The HTML page of one run."""
    from .pages import run_page
    return run_page(result, tl or timeline(result, faults))


def explore_html(x: Any, out_path: str, *, faults: Any = None) -> str:
    """The HTML page of an exploration (``ExploreResult``): summary, findings, and the
    reported run's timeline. ``out_path`` is where it goes (links to traces are relative)."""
    from .pages import explore_page
    return explore_page(x, timeline(x.result, faults), out_path)


def lockdep_html(res: Any) -> str:
    """The HTML page of a lockdep session (``LockdepResult``)."""
    from .pages import lockdep_page
    return lockdep_page(res)


def perfetto_json(result: Any, tl: "Timeline | None" = None, *, faults: Any = None) -> str:
    """The run as Chrome Trace Event JSON text."""
    from .perfetto import dumps, trace_events
    return dumps(trace_events(tl or timeline(result, faults), result))


def write(path: str, text: str, what: str) -> None:
    """Save ``text`` at ``path`` atomically, with the user's umask (see output.py)."""
    from .output import write_text
    write_text(path, text, what)
