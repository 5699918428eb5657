"""Writing the outputs: checked before the work starts, written atomically at the end.

A file written here is what ``>`` in a shell would have made: mode ``0666`` less the
umask (``mkstemp`` alone would leave ``0600``), or the old file's mode when it replaces
one. A reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .._errors import UserError
from .._trace import _sigint_deferred


def check_path(path: str, option: str) -> None:
    """Reject at once (one line, exit 2) a path that cannot be written, so that a long
    exploration does not run only to fail at the end."""
    if not path or not path.strip():
        raise UserError("needs a file name, got an empty one", key=option)
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{path} is a folder; give a file name such as {p / 'run.html'}",
                        key=option)
    parent = p.parent if str(p.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"cannot write {path}: {probe} is not a folder", key=option)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: no permission to write in {probe}",
                        key=option)
    if p.exists() and not os.access(p, os.W_OK):
        raise UserError(f"cannot write {path}: the file is read-only", key=option)


def _mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def write_text(path: str, text: str, what: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; a failure is a one-line UserError."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        mode = _mode(p)
        with _sigint_deferred():
            fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, mode)
                os.replace(tmp, p)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
    except OSError as e:
        raise UserError(f"cannot save the {what} there ({e.strerror or e}); choose a file "
                        "you can write", file=str(path)) from None
