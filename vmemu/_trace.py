"""Traces: the versioned JSON record of one run, enough to replay it byte for byte.

A trace pins the scenario (path and content hash), the fault plan, the strategy and seed,
the *decision tape* (every answer the strategy gave, in order) and the canonical event
list. ``trace_hash`` is the sha256 of the canonical JSON of the event list, so two runs
with equal hashes did the same things in the same order at the same ticks.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._errors import TraceError

TRACE_FORMAT = "vmemu-trace"
TRACE_VERSION = 1


def canonical_json(obj: Any) -> str:
    """Compact JSON with sorted keys: the one spelling we hash."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=True)


def events_hash(events: list) -> str:
    """sha256 of the canonical event list."""
    return hashlib.sha256(canonical_json(events).encode()).hexdigest()


@dataclass
class Trace:
    """One run, as saved on disk."""

    scenario: str
    scenario_hash: str
    scenario_name: str
    strategy: str
    seed: int | None
    tape: list[int]
    events: list[list]
    verdict: str
    trace_hash: str
    steps: int = 0
    ticks: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    faults: str | None = None
    faults_hash: str | None = None
    scenario_abspath: str = ""
    faults_abspath: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {"format": TRACE_FORMAT, "version": TRACE_VERSION}
        d.update(asdict(self))
        return d

    def save(self, path: str | os.PathLike) -> str:
        """Write atomically (temp file in the same folder, then rename); returns the path."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), separators=(",", ":")) + "\n")
        return str(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Trace":
        """Read and validate a trace file; any problem is a one-line :class:`TraceError`."""
        p = str(path)
        try:
            text = Path(p).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TraceError("no such trace file; save one with `vmemu run S --trace OUT.json`",
                             file=p)
        except (OSError, UnicodeDecodeError) as e:
            raise TraceError(f"cannot read trace: {e}", file=p)
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise TraceError(f"not a vmemu trace: invalid JSON at line {e.lineno}, column "
                             f"{e.colno} ({e.msg})", file=p, line=e.lineno)
        if not isinstance(d, dict) or d.get("format") != TRACE_FORMAT:
            raise TraceError(f"not a vmemu trace (no \"format\": \"{TRACE_FORMAT}\")", file=p)
        if d.get("version") != TRACE_VERSION:
            raise TraceError(f"trace version {d.get('version')!r} is not supported (this vmemu "
                             f"reads version {TRACE_VERSION}); re-record it", file=p)
        d.pop("format")
        d.pop("version")
        required = {"scenario": str, "scenario_hash": str, "scenario_name": str,
                    "strategy": str, "tape": list, "events": list, "verdict": str,
                    "trace_hash": str}
        for key, typ in required.items():
            if not isinstance(d.get(key), typ):
                raise TraceError(f"missing or malformed field (expected {typ.__name__})",
                                 file=p, key=key)
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in d["tape"]):
            raise TraceError("decision tape must be a list of non-negative integers",
                             file=p, key="tape")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise TraceError(f"unknown field {unknown[0]!r}", file=p, key=unknown[0])
        return cls(**d)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new, never half.

    Nothing a user saved is lost: the temp file is renamed over the target only when fully
    written and flushed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
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
