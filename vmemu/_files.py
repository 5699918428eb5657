"""Reading a file the user named: regular files only, up to a size cap, never blocking;
and writing one atomically (:func:`atomic_write_text`).

Every loader (YAML and Python scenarios, fault plans, traces) reads through
:func:`read_user_file`, so a FIFO, a device, a folder, a symlink loop or a huge file is
one line that says what the path is, instead of a hang (a FIFO without a writer), a
read of ``/dev/zero`` until memory runs out, or "no such file" for a loop.

The path is looked at with ``os.stat`` first and opened with ``O_NONBLOCK`` (so even a
FIFO put there in between cannot block the open); the open file is checked again with
``fstat`` before a byte is read, and the read stops one byte past the cap.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ._errors import UserError

__all__ = ["read_user_file", "check_user_file", "MAX_TEXT_BYTES", "MAX_TRACE_BYTES", "describe_path",
           "atomic_write_text", "check_output_file"]

#: Scenario files, Python scenarios and fault plans: far above any real one (the bundled
#: ones are a few KiB), far below what would take long to parse.
MAX_TEXT_BYTES = 1 << 20
#: Traces store a few bytes per decision: 256 MiB is a run of tens of millions of steps.
MAX_TRACE_BYTES = 256 << 20

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1 << 10 \
        else f"{n} bytes"


def describe_path(mode: int) -> str | None:
    """What a file of ``mode`` is, when it is not a regular file (else None)."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def check_writable_place(path: str, option: str, place: Path) -> None:
    """Refuse (one line, exit 2) to go on when ``path`` could not be written: the nearest
    existing folder at or above ``place`` must be a folder this process may write in."""
    if not os.path.isabs(place):
        try:
            os.getcwd()
        except OSError:     # (a deleted folder still answers stat and access)
            raise UserError(f"cannot write {path}: the current folder no longer exists; "
                            "cd to one that does, or give a full path", key=option) from None
    probe = place
    while _stat_output(probe, path, option) is None and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"cannot write {path}: {probe} is not a folder", key=option)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: no permission to write in {probe}",
                        key=option)


_NUL = "not a valid file name (it contains a NUL byte)"


def _stat_output(p: str | Path, path: str, option: str) -> os.stat_result | None:
    """``os.stat(p)`` on the way to writing ``path``: None when nothing is there (yet);
    one line for what else stops it (a name too long, a symlink loop, no permission)."""
    try:
        return os.stat(p)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise UserError(f"cannot write {path}: {_stat_error(str(p), e, 'file')}",
                        key=option) from None
    except ValueError:
        raise UserError(f"cannot write {path}: {_NUL}", key=option) from None


def check_output_file(path: str, option: str, example: str) -> None:
    """Refuse at once (one line, exit 2) an output file that could not be written: a
    folder, a socket, a read-only file, a name too long, a place that cannot be written.
    A character device or a FIFO (``/dev/null``, ``/dev/stdout``) is written through
    (:func:`atomic_write_text`), never replaced."""
    if not path or not path.strip():
        raise UserError("needs a file name, got an empty one", key=option)
    st = _stat_output(path, path, option)
    if st is not None:
        kind = describe_path(st.st_mode)
        if kind == "a directory":
            raise UserError(f"{path} is a folder; give a file name such as "
                            f"{os.path.join(path, example)}", key=option)
        if kind is not None and not _written_through(st.st_mode):
            raise UserError(f"cannot write {path}: it is {kind}; give a file name",
                            key=option)
        if not os.access(path, os.W_OK):
            raise UserError(f"cannot write {path}: the file is read-only", key=option)
        if kind is not None:
            return
    parent = os.path.dirname(path)
    check_writable_place(path, option, Path(parent) if parent else Path("."))


def _written_through(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _own_fd(path: Path) -> int | None:
    """N when ``path`` is a link (or chain of links) to ``/proc/self/fd/N`` or
    ``/dev/fd/N``: one of this process's open files, such as ``/dev/stdout``."""
    p = os.fspath(path)
    for _ in range(8):
        try:
            p = os.path.join(os.path.dirname(p), os.readlink(p))
        except OSError:
            return None
        for prefix in ("/proc/self/fd/", "/dev/fd/"):
            if p.startswith(prefix) and p[len(prefix):].isdigit():
                return int(p[len(prefix):])
    return None


def _through_proc(path: Path) -> bool:
    """A link into /proc (``/dev/stdout`` -> ``/proc/self/fd/1``, with standard output
    sent to a file): it names an open file, not a place to rename a new file to, and a
    rename would replace the link itself."""
    if not path.is_symlink():
        return False
    real = os.path.realpath(path)
    return real.startswith("/proc/") or os.path.islink(real) or \
        real == os.path.abspath(path)


def check_folder(path: str | os.PathLike[str], option: str) -> None:
    """Refuse at once a folder that could not be made or written in (``--findings``): an
    overnight exploration must not run for hours to fail at its first finding."""
    path = os.fspath(path)
    if not path.strip():
        raise UserError("needs a folder name, got an empty one", key=option)
    try:
        kind = describe_path(os.stat(path).st_mode)
    except (OSError, ValueError):
        kind = "a directory"      # (none yet: where it would be made is checked below)
    if kind != "a directory":
        raise UserError(f"{path} is {kind or 'a file'}, not a folder; name a folder (it is "
                        "made if need be)", key=option)
    check_writable_place(path, option, Path(path))


def _stat_error(path: str, e: OSError, what: str) -> str:
    """Why ``os.stat(path)`` failed, in words that name what the path is."""
    if e.errno == errno.ENOENT:
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return f"is a symlink to a missing file ({os.readlink(path)!r})"
        except OSError:
            pass
        return f"no such {what}"
    if e.errno == errno.ELOOP:
        return "is a symlink loop (following its links leads back to one of them)"
    if e.errno == errno.ENOTDIR:
        return f"no such {what} (a part of the path is not a folder)"
    if e.errno == errno.EACCES:
        return "permission denied"
    if e.errno == errno.ENAMETOOLONG:
        return "the file name is too long"
    return f"cannot read it: {e.strerror or e}"


def check_user_file(path: str | os.PathLike[str], *, what: str, error: type[UserError],
                    key: str | None = None) -> None:
    """Raise what :func:`read_user_file` would for anything but a regular file."""
    file = os.fspath(path)
    _regular(file, what, lambda m: error(m, file=file or "''", key=key))


def _regular(file: str, what: str, fail: Any) -> os.stat_result:
    if not file:
        raise fail(f"no file name given; name a {what}")
    try:
        st = os.stat(file)
    except (OSError, ValueError) as e:   # ValueError: a NUL byte in the name
        raise fail(_stat_error(file, e, what) if isinstance(e, OSError)
                   else _NUL) from None
    kind = describe_path(st.st_mode)
    if kind is not None:
        raise fail(f"is {kind}, not a {what} (only regular files are read)")
    return st


def read_user_file(path: str | os.PathLike[str], *, what: str, error: type[UserError],
                   limit: int = MAX_TEXT_BYTES, key: str | None = None) -> bytes:
    """The bytes of the regular file ``path``, or one-line ``error``.

    Args:
        path: as the user gave it (it is named in the message).
        what: the kind of file expected, for messages (``scenario file``).
        error: the UserError subclass to raise.
        limit: the largest size accepted, in bytes.
        key: the option or key the path came from (``--faults``), if any.

    Raises:
        error: the path is empty, missing, a symlink loop, a directory, a FIFO, a device,
            a socket, unreadable or larger than ``limit``; the message says which.
    """
    file = os.fspath(path)

    def fail(message: str) -> UserError:
        return error(message, file=file or "''", key=key)

    st = _regular(file, what, fail)
    if st.st_size > limit:
        raise fail(f"is {_size(st.st_size)}, larger than the {_size(limit)} a {what} may be")
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise fail(_stat_error(file, e, what)) from None
    try:
        # The path may have been replaced since the stat: check what was opened.
        kind = describe_path(os.fstat(fd).st_mode)
        if kind is not None:
            raise fail(f"is {kind}, not a {what} (only regular files are read)")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise fail(f"is larger than the {_size(limit)} a {what} may be")
        return b"".join(chunks)
    except OSError as e:
        raise fail(f"cannot read it: {e.strerror or e}") from None
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new, never half.

    Nothing a user saved is lost: the temp file is renamed over the target only when fully
    written and flushed. A new file gets mode ``0666`` less the umask, a replaced one keeps
    its mode. A Ctrl-C meanwhile takes effect once the file is complete (it
    could otherwise strike between creating the temp file and cleaning it up).
    """
    path = Path(path)
    try:            # replacing a file keeps its mode, as `>` in a shell would
        st = path.stat()
        mode = stat.S_IMODE(st.st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    else:
        if (own := _own_fd(path)) is not None:
            # /dev/stdout (-> /proc/self/fd/1): the stream itself, after what it already
            # holds (a new open of a file it names would write from its start).
            if own in (1, 2):
                (sys.stdout if own == 1 else sys.stderr).flush()
            with os.fdopen(os.dup(own), "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            return
        if _written_through(st.st_mode) or _through_proc(path):
            # /dev/null, a FIFO, a device: written to, never replaced by a file (as root,
            # a rename over /dev/null would break it for the whole machine). A FIFO
            # nobody reads is an error (ENXIO), not a wait.
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_TRUNC
                         | getattr(os, "O_CLOEXEC", 0))
            os.set_blocking(fd, True)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            return
    if path.is_symlink():
        path = Path(os.path.realpath(path))   # (the file it names, not the link)
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile   # (late: only writing needs it, and it imports random)
    with _sigint_deferred():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            # mkstemp makes the file 0600; a saved file gets what the user's umask gives
            # any new file (a trace is shared with colleagues, like a log).
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


_umask_lock = threading.Lock()


def _umask() -> int:
    """The process's umask (reading it means setting it: guarded against other threads)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a SIGINT that arrives inside the block until the block ends (main thread
    only: elsewhere Python delivers no KeyboardInterrupt anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    try:
        old = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    except ValueError:  # pragma: no cover - no signals here (embedded interpreter)
        yield
        return
    try:
        yield
    finally:
        # None: the handler was not set from Python; the default is the closest thing.
        signal.signal(signal.SIGINT, old if old is not None else signal.SIG_DFL)
        if caught:
            if callable(old):
                old(signal.SIGINT, sys._getframe(0))
            elif old != signal.SIG_IGN:
                raise KeyboardInterrupt
