"""Scenario loading: YAML files and Python scenario modules, into the :mod:`.model`.

Public entry points: :func:`load_scenario` (dispatches on the file suffix) and
:func:`compile_expr` (the safe expression language).
"""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import ScenarioError
from .._files import check_user_file
from .expr import compile_expr, expand_template
from .model import Scenario
from .yaml_loader import load_yaml_scenario

__all__ = ["load_scenario", "load_yaml_scenario", "compile_expr", "expand_template"]

_YAML_SUFFIXES = (".yaml", ".yml")


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load a scenario file: ``.yaml``/``.yml`` (DESIGN §4) or ``.py`` (a Python module).

    Args:
        path: the file as the user named it (kept in reports and traces).

    Returns:
        The validated :class:`Scenario`.

    Raises:
        ScenarioError: the file is missing, is not a regular file (a directory, a FIFO, a
            device ...), is too large, has an unknown suffix, or is not a valid scenario.
            The message is one line.
    """
    file = os.fspath(path)
    suffix = Path(file).suffix.lower()
    if suffix in _YAML_SUFFIXES:
        return load_yaml_scenario(file)
    if suffix == ".py":
        # Imported lazily: Python scenarios pull in the sync/ctx API, YAML ones do not.
        from .pymod import load_python_scenario
        return load_python_scenario(file)
    # Say what the path is first (missing, a folder, a FIFO ...): that is the real problem.
    check_user_file(file, what="scenario file", error=ScenarioError)
    raise ScenarioError(f"cannot load scenario file {file!r}: expected a .yaml, .yml or "
                        f".py file, got {suffix or 'no suffix'!r}")
