"""Error types. User errors (bad input) are distinct from internal errors (our bugs).

A :class:`UserError` is printed by the CLI as exactly one line and exits with code 2;
anything else escaping is an internal error and keeps its traceback.
"""

from __future__ import annotations

from typing import Iterable


#: Longest message a UserError keeps whole (one line a person can read).
_MAX_LINE = 1000


class UserError(Exception):
    """Bad input from the user: a scenario, fault plan, trace or CLI option.

    The message is one line that names the file (and line/key when known) and a fix.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.bare = message
        where = ""
        if file is not None:
            where = file + (f":{line}" if line is not None else "") + ": "
        if key is not None:
            message = f"{key}: {message}"
        text = (where + message).replace("\n", " ")
        if len(text) > _MAX_LINE:
            # A user value quoted whole (a 10,000-character expression) would bury the
            # fix at the end of the line: keep the start (file, line, key) and the end.
            text = text[:_MAX_LINE * 2 // 3] + " [...] " + text[-(_MAX_LINE // 3):]
        super().__init__(text)


class ScenarioError(UserError):
    """A scenario file or Python scenario module is invalid."""


class FaultPlanError(UserError):
    """A fault plan file is invalid."""


class TraceError(UserError):
    """A trace file is unreadable, or belongs to a different scenario."""


class DivergenceError(TraceError):
    """Replay reached a decision the saved trace cannot answer (the scenario changed)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest choice, or ``""`` if none is close."""
    import difflib   # (only when there is a mistake to name)
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def safe_str(obj: object) -> str:
    """``str(obj)``, or a stand-in when its ``__str__`` raises: a report must never fail
    (an exception whose ``__str__`` raised ended a run with a traceback, or hung trio)."""
    try:
        return str(obj)
    except Exception:
        return f"<unprintable {type(obj).__name__}>"
