"""Traces: the versioned JSON record of one run, enough to replay it byte for byte.

A trace pins the scenario (path and content hash), the fault plan, the strategy and seed,
the *decision tape* (every answer the strategy gave, in order) and the canonical event
list. ``trace_hash`` is the sha256 of the canonical JSON of the event list, so two runs
with equal hashes did the same things in the same order at the same ticks.

In memory ``Trace.tape`` is a list of ints and ``Trace.events`` the list of
``[tick, task, op, arg, line]``. On disk (version 2) both are compact strings, because a
long run has hundreds of thousands of them (see :func:`encode_events`):

- ``tape``: the decisions as base-32 varints, one character for any value below 32;
- ``events``: ``{"rows": [[task, op, arg, line], ...], "stream": "..."}``: every distinct
  row once, then per event its row number and, only when the clock moved, the tick delta.

A 100,000-step run costs a few bytes per decision (``bench/bench_trace.py``). Loading
decodes both and checks the events against ``trace_hash``, so a damaged file is refused
with one line instead of replaying something else. Version 1 files (plain JSON lists)
are still read.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from ._bounds import MAX_STEPS
from ._errors import TraceError, UserError
from ._files import MAX_TRACE_BYTES, atomic_write_text, read_user_file

TRACE_FORMAT = "vmemu-trace"
#: The version this vmemu writes (3: exploration seeds are splitmix64 mixes, so a
#: finding's seed and `found by` command mean another schedule than in version 2).
TRACE_VERSION = 3
#: Versions this vmemu reads (each has a schema in ``_trace_schema.SCHEMAS``).
READABLE_VERSIONS = (3,)

# Varint digits: 5 payload bits, plus 32 when more digits follow. All 64 symbols are
# JSON-safe (no quote, no backslash), so the encoded strings are stored as they are.
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
_DIGIT = {c: i for i, c in enumerate(_ALPHABET)}
# Every value below 32 is one character: precomputed, as most decisions and rows are.
_SMALL = list(_ALPHABET[:32])


# json.dumps with options builds a new encoder at every call; one shared encoder costs
# nothing per call (every run hashes its events, however short the run). No circular
# check: what we hash is plain data (events are lists of scalars), and the check costs
# ~15% of the encoding; the text is the same.
_CANONICAL = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=True,
                              check_circular=False)


def canonical_json(obj: Any) -> str:
    """Compact JSON with sorted keys: the one spelling we hash."""
    return _CANONICAL.encode(obj)


def events_hash(events: list) -> str:
    """sha256 of the canonical event list."""
    return hashlib.sha256(canonical_json(events).encode()).hexdigest()


class LazyField:
    """A dataclass field that may be given as None, and is then computed on first read.

    For ``trace_hash``: hashing the events is a good part of what a short run costs, and
    most runs of an exploration never read it. The class attribute of a field, this
    descriptor receives what ``__init__`` assigns (a dataclass "descriptor-typed field");
    it raises AttributeError when read on the class, so the field has no default.
    Copies, pickles and ``fields()`` see an ordinary field.
    """

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        self.compute = compute

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = "_lazy_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            raise AttributeError(self.key)
        value = obj.__dict__[self.key]
        if value is None:
            value = obj.__dict__[self.key] = self.compute(obj)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.key] = value


def _varint(v: int, out: list[str]) -> None:
    """Append non-negative ``v`` as little-endian base-32 digits."""
    while v >= 32:
        out.append(_ALPHABET[(v & 31) | 32])
        v >>= 5
    out.append(_ALPHABET[v])


def encode_ints(values: list[int]) -> str:
    """Non-negative ints as a varint string (the on-disk decision tape)."""
    small = _SMALL
    out: list[str] = []
    for v in values:
        if 0 <= v < 32:
            out.append(small[v])
        elif v < 0:
            raise ValueError(f"cannot encode negative decision {v}")
        else:
            _varint(v, out)
    return "".join(out)


def decode_ints(text: str) -> list[int]:
    """Inverse of :func:`encode_ints`; ValueError on a character or ending it never writes."""
    digit = _DIGIT
    out: list[int] = []
    v = shift = 0
    for c in text:
        d = digit.get(c)
        if d is None:
            raise ValueError(f"unexpected character {c!r}")
        if d < 32 and not shift:
            out.append(d)
            continue
        v |= (d & 31) << shift
        if d & 32:
            shift += 5
            if shift > 60:   # no decision or event index comes near 2**63
                raise ValueError("a number is too large")
        else:
            out.append(v)
            v = shift = 0
    if shift:
        raise ValueError("the last number is cut short")
    return out


# How long a tape or event stream a run of ``steps`` steps can write, so that a trace
# whose strings are longer is refused before they are decoded (a 10-million-character
# stream decodes to 10 million event lists: 25 s and 1.6 GB). A step is charged for every
# scheduling point and every scenario-file step (``Kernel.count_step``), so what a run
# records grows with its steps: the tape has one decision a step (without a fault plan:
# only a fault's coin flip adds decisions), and a step emits a few events (a lock and
# its block; the waiters a wake-up wakes each took a step to block). A number is at most
# 13 characters (decode_ints stops past 2**60) and an event at most two numbers (row,
# tick delta); every scenario of this repository writes at most 3 characters a step.
# 64 a step is twenty times that, and the constant (a megabyte, which decodes in about
# a second) covers a short run whose end or Python code emits events without steps
# (unwinding, ``try_acquire`` in a loop).
_CHARS_PER_STEP = 64
_CHARS_SLACK = 1 << 20


def max_encoded_chars(steps: int) -> int:
    """The longest tape or event stream a run of ``steps`` steps writes (see above);
    ``steps`` past what any run can take (``limits.steps`` <= MAX_STEPS) counts as that."""
    return _CHARS_PER_STEP * (min(steps, MAX_STEPS + 1) + 1) + _CHARS_SLACK


def encode_events(events: list[list]) -> dict[str, Any]:
    """The compact on-disk form of an event list (see the module docstring).

    Each event becomes ``2 * row`` or, when its tick differs from the previous event's,
    ``2 * row + 1`` followed by the zigzag-encoded tick delta.
    """
    rows: list[list] = []
    index: dict[Any, int] = {}
    out: list[str] = []
    small = _SMALL
    prev = 0
    for tick, task, op, arg, line in events:
        try:
            # The class is part of the key: 1, 1.0 and True are equal (and hash the same)
            # but are written differently, and the trace hash would notice.
            key: Any = (task, op, arg.__class__, arg, line)
            r = index.get(key)
        except TypeError:  # an unhashable arg (a list): key it by its spelling
            key = ("\0", canonical_json([task, op, arg, line]))
            r = index.get(key)
        if r is None:
            r = index[key] = len(rows)
            rows.append([task, op, arg, line])
        d = tick - prev
        if d == 0:
            v = r << 1
            if v < 32:
                out.append(small[v])
            else:
                _varint(v, out)
        else:
            _varint((r << 1) | 1, out)
            _varint(d << 1 if d > 0 else ((-d) << 1) - 1, out)
            prev = tick
    return {"rows": rows, "stream": "".join(out)}


def decode_events(data: Any) -> list[list]:
    """Inverse of :func:`encode_events`; ValueError when ``data`` is not such an encoding."""
    if not isinstance(data, dict) or set(data) != {"rows", "stream"}:
        raise ValueError('expected {"rows": [...], "stream": "..."}')
    rows, stream = data["rows"], data["stream"]
    if not isinstance(rows, list) or not isinstance(stream, str):
        raise ValueError('expected {"rows": [...], "stream": "..."}')
    for row in rows:
        if not (isinstance(row, list) and len(row) == 4 and isinstance(row[0], str)
                and isinstance(row[1], str) and isinstance(row[3], int)):
            raise ValueError(f"malformed row {str(row)[:40]}")
    nums = decode_ints(stream)
    events: list[list] = []
    append = events.append
    tick = 0
    n = len(rows)
    i = 0
    end = len(nums)
    while i < end:
        v = nums[i]
        i += 1
        r = v >> 1
        if r >= n:
            raise ValueError(f"event {len(events) + 1} names row {r} of {n}")
        if v & 1:
            if i >= end:
                raise ValueError("the last tick delta is missing")
            z = nums[i]
            i += 1
            tick += (z >> 1) if not z & 1 else -((z + 1) >> 1)
        task, op, arg, line = rows[r]
        append([tick, task, op, arg, line])
    return events


@dataclass
class Trace:
    """One run, as saved on disk (see the module docstring for the encoding)."""

    scenario: str
    scenario_hash: str
    scenario_name: str
    strategy: str
    seed: int | None
    tape: list[int]
    events: list[list]
    verdict: str
    #: sha256 of the canonical events; None at construction = computed when first read
    #: (the events must not change meanwhile: a finished run's never do).
    trace_hash: str = LazyField(lambda tr: events_hash(tr.events))  # type: ignore[assignment]
    steps: int = 0
    ticks: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    faults: str | None = None
    faults_hash: str | None = None
    scenario_abspath: str = ""
    faults_abspath: str = ""

    def __repr__(self) -> str:
        # Not the dataclass's: a long run's tape and events are megabytes of text.
        return (f"<Trace {self.verdict} of {self.scenario_name} ({self.scenario}): "
                f"strategy {self.strategy}, seed {self.seed}, {len(self.tape)} decisions, "
                f"{len(self.events)} events>")

    def to_dict(self) -> dict[str, Any]:
        """The on-disk JSON object (current version, compact tape and events)."""
        d: dict[str, Any] = {"format": TRACE_FORMAT, "version": TRACE_VERSION}
        # Not dataclasses.asdict: it deep-copies the (long) event list for nothing.
        for f in fields(self):
            d[f.name] = getattr(self, f.name)
        d["params"] = dict(self.params)
        d["tape"] = encode_ints(self.tape)
        d["events"] = encode_events(self.events)
        return d

    def save(self, path: str | os.PathLike) -> str:
        """Write atomically (temp file in the same folder, then rename); returns the path."""
        path = Path(path)
        try:
            atomic_write_text(path, json.dumps(self.to_dict(), separators=(",", ":")) + "\n")
        except OSError as e:   # a findings folder that is a file, a read-only place ...
            raise UserError(f"cannot save a trace there ({e.strerror or e}); choose a "
                            "folder you can write to", file=str(path)) from None
        return str(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Trace":
        """Read and validate a trace file; any problem is a one-line :class:`TraceError`."""
        p = os.fspath(path)
        data = read_user_file(p, what="trace file", error=TraceError, limit=MAX_TRACE_BYTES)
        return cls.from_json(data, p)

    @classmethod
    def from_json(cls, data: bytes | str, p: str = "<trace>") -> "Trace":
        """Validate the JSON text of a trace (any readable version); ``p`` names it."""
        from ._trace_schema import from_json   # late: only loading a trace needs msgspec
        return from_json(cls, data, p)

    @classmethod
    def from_dict(cls, d: Any, p: str = "<trace>") -> "Trace":
        """Validate a parsed trace object (any readable version); ``p`` names it in errors."""
        try:
            data = json.dumps(d)
        except (TypeError, ValueError) as e:
            raise TraceError(f"not a vmemu trace: {e}", file=p) from None
        except RecursionError:
            raise TraceError("not a vmemu trace: nested too deeply", file=p) from None
        return cls.from_json(data, p)


