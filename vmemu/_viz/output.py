"""Writing the outputs: checked before the work starts, written atomically at the end.

A file written here is what ``>`` in a shell would have made: mode ``0666`` less the
umask (``mkstemp`` alone would leave ``0600``), or the old file's mode when it replaces
one. A reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

from pathlib import Path

from .._errors import UserError
from .._files import atomic_write_text, check_output_file


def check_path(path: str, option: str) -> None:
    """Reject at once (one line, exit 2) a path that cannot be written, so that a long
    exploration does not run only to fail at the end."""
    check_output_file(path, option, "run.html" if option == "--html" else "run.json")


def write_text(path: str, text: str, what: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; a failure is a one-line UserError."""
    try:
        atomic_write_text(Path(path), text)
    except OSError as e:
        raise UserError(f"cannot save the {what} there ({e.strerror or e}); choose a file "
                        "you can write", file=str(path)) from None
