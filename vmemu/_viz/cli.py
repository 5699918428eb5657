"""The ``--html FILE`` and ``--perfetto FILE`` options of ``run``, ``replay``, ``explore``
(both) and ``lockdep`` (``--html``). ``vmemu/_cli.py`` calls :func:`add_options` for each
command and :func:`write_outputs` once the command has its result."""

from __future__ import annotations

import argparse
from typing import Any


def add_options(p: argparse.ArgumentParser, *, perfetto: bool = True) -> None:
    """Add ``--html`` (and ``--perfetto``) to a command's parser."""
    what = ("a self-contained HTML timeline of the reported run" if perfetto
            else "the dependency graph and its cycles as a self-contained HTML page")
    p.add_argument("--html", metavar="FILE", default=None, help=f"write {what} to FILE")
    if perfetto:
        p.add_argument("--perfetto", metavar="FILE", default=None,
                       help="write the reported run as Chrome Trace Event JSON (opens in "
                            "Perfetto UI and chrome://tracing) to FILE")


def check_outputs(args: argparse.Namespace, inputs: dict[str, Any] | None = None) -> None:
    """Refuse, before any work is done, output paths that cannot be written or that
    would overwrite an input (the scenario, fault plan or trace) or each other.

    Args:
        args: the command's options: ``--html``, ``--perfetto`` and ``run``'s
            ``--trace`` are its outputs.
        inputs: the files that must survive, by what they are, when not the command's
            own options (``replay``: the scenario and fault plan its trace names).
    """
    # `run --trace` is an output; `replay TRACE` an input.
    outputs = (("html", "perfetto", "trace") if getattr(args, "command", None) == "run"
               else ("html", "perfetto"))
    if all(getattr(args, opt, None) is None for opt in outputs):
        return
    import os

    from .._errors import UserError
    from .output import check_path
    if inputs is None:
        inputs = {k: getattr(args, k, None) for k in ("scenario", "faults", "trace")
                  if k not in outputs}
    seen: dict[str, str] = {}
    for opt in outputs:
        path = getattr(args, opt, None)
        if path is None:
            continue
        check_path(path, f"--{opt}")
        real = os.path.realpath(path)
        if os.path.exists(real) and not os.path.isfile(real):
            continue        # (a device or FIFO, written through: /dev/null for all)
        for what, given in inputs.items():
            given = getattr(given, "path", given)     # (a loaded fault plan)
            if isinstance(given, str) and given and os.path.realpath(given) == real:
                raise UserError(f"{path} is the {what} file; writing there would destroy "
                                "it: choose another name", key=f"--{opt}")
        if real in seen:
            raise UserError(f"{path} is also the {seen[real]} file; give each its own "
                            "name", key=f"--{opt}")
        seen[real] = f"--{opt}"


def write_outputs(args: argparse.Namespace, *, result: Any = None, explore: Any = None,
                  lockdep: Any = None) -> None:
    """Write what the options ask for, from the command's result (exactly one of
    ``result`` (a run), ``explore`` (an ExploreResult) or ``lockdep`` is given)."""
    html, perf = getattr(args, "html", None), getattr(args, "perfetto", None)
    if html is None and perf is None:
        return          # (before any import: most commands draw nothing)
    from . import lockdep_html, perfetto_json, run_html, timeline, write
    from .pages import explore_page
    if lockdep is not None:
        write(html, lockdep_html(lockdep), "HTML report")
        return
    r = explore.result if explore is not None else result
    tl = timeline(r)
    if html is not None:
        if explore is not None:
            write(html, explore_page(explore, tl, html), "HTML report")
        else:
            write(html, run_html(r, tl), "HTML report")
    if perf is not None:
        write(perf, perfetto_json(r, tl), "Perfetto trace")
