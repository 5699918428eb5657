"""Which files of a folder are scenarios: one rule for ``vmemu check`` and ``pytest --vmemu``.

A folder is searched recursively (hidden folders skipped). A file is a candidate when its
suffix is ``.yaml``/``.yml`` (and, for ``vmemu check``, ``.py``: pytest collects Python
files as test modules itself) and its name does not start with ``_`` or ``.``. Of those:

- a **fault plan** (a top-level ``faults:`` and no ``tasks:``) is skipped;
- a file whose first line is ``# expect-error: TEXT`` is a **negative test**: it passes
  when loading fails with an error containing TEXT (case-insensitive), as in the
  contract's ``bad/`` folder;
- every other file is a scenario that must reach its ``expect`` verdict; one that does not
  load is one failing entry, and the others still run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ._errors import UserError
from ._files import read_user_file

__all__ = ["Entry", "classify", "folder_files", "matches_expected_error", "YAML_SUFFIXES"]

YAML_SUFFIXES = (".yaml", ".yml")
_EXPECT_ERROR = re.compile(r"#\s*expect-error:\s*(.*?)\s*$", re.IGNORECASE)
_TOP_FAULTS = re.compile(r"^faults\s*:", re.MULTILINE)
_TOP_TASKS = re.compile(r"^tasks\s*:", re.MULTILINE)


@dataclass(frozen=True)
class Entry:
    """One file found in a folder: ``kind`` is ``scenario``, ``negative`` or ``plan``."""

    path: str
    kind: str
    expect_error: str | None = None


def classify(path: str | os.PathLike[str]) -> Entry:
    """Say what the file at ``path`` is (see the module docstring).

    Reading it never blocks and never fails: a file that cannot be read (a FIFO, a
    device, unreadable) is a scenario, whose loading then reports the problem.
    """
    file = os.fspath(path)
    try:
        text = read_user_file(file, what="scenario file", error=UserError).decode(
            "utf-8", errors="replace")
    except UserError:
        return Entry(file, "scenario")
    first = text.split("\n", 1)[0].strip()
    m = _EXPECT_ERROR.match(first)
    if m and m.group(1):
        return Entry(file, "negative", m.group(1))
    if Path(file).suffix in YAML_SUFFIXES and _TOP_FAULTS.search(text) \
            and not _TOP_TASKS.search(text):
        return Entry(file, "plan")
    return Entry(file, "scenario")


def wanted(name: str, suffixes: tuple[str, ...]) -> bool:
    """Is a file called ``name`` a candidate (suffix, and not hidden or private)?"""
    return name.endswith(suffixes) and not name.startswith(("_", "."))


def folder_files(folder: str, suffixes: tuple[str, ...] = (*YAML_SUFFIXES, ".py")
                 ) -> list[str]:
    """Every candidate file under ``folder``, recursively, sorted by path (hidden folders
    are skipped, as pytest's default ``norecursedirs`` does)."""
    out: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        # Regular files only (a FIFO or a device is passed over, as pytest does).
        out.extend(path for f in sorted(files) if wanted(f, suffixes)
                   and os.path.isfile(path := os.path.join(root, f)))
    return sorted(out)


def matches_expected_error(message: str, expected: str) -> bool:
    """Does a load error's message contain the ``# expect-error:`` text?"""
    return expected.lower() in message.lower()
