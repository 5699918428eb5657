"""Standard output while a command runs: a reader that leaves, or a full disk.

``vmemu run S | head`` must still exit with the verdict's code when ``head`` has gone
(a broken pipe is not an error of ours), and ``vmemu run S --json > /dev/full`` must be
one line and exit code 2, not a traceback at interpreter exit.
"""

from __future__ import annotations

import os
from typing import Any

from ._errors import UserError

__all__ = ["Stdout", "Stderr", "write_error"]


def write_error(e: OSError) -> str:
    return f"cannot write the output to standard output ({e.strerror or e})"


class Stdout:
    """``sys.stdout`` while a command runs: a reader that went away (``vmemu run S | head``)
    is not an error, and the command still exits with its verdict's code; any other
    failure to write (a full disk) is one line and exit code 2."""

    def __init__(self, inner: Any) -> None:
        self.broken = inner is None
        # None: started with standard output closed (`vmemu run S >&-`); Python then
        # has no sys.stdout. Nobody reads: the command still exits with its verdict.
        self.inner = open(os.devnull, "w") if inner is None else inner

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.inner.write(text)
            except BrokenPipeError:
                self.gone()
            except OSError as e:
                self.gone()
                raise UserError(write_error(e)) from None
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.inner.flush()
            except BrokenPipeError:
                self.gone()
            except OSError as e:
                self.gone()
                raise UserError(write_error(e)) from None

    def gone(self) -> None:
        """Nothing more can be written: drop what is buffered (point the file descriptor
        at /dev/null, so that the interpreter's last flush does not fail again)."""
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.inner.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass   # not a real file (a test's capture): nothing will flush it at exit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Stderr:
    """``sys.stderr`` while a command runs: a message that cannot be written (standard
    error closed, or a full disk) is dropped, and the command still exits with its code
    (2 for bad input, not 1 for the failed write of its message)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        try:
            return self.inner.write(text)
        except (OSError, ValueError, AttributeError):   # (AttributeError: closed: None)
            self.inner = None
            return len(text)

    def flush(self) -> None:
        try:
            self.inner.flush()
        except (OSError, ValueError, AttributeError):
            self.inner = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
