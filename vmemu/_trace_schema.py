"""The trace file's schema: one typed msgspec schema per readable version.

Imported only when a trace is read (msgspec costs start-up time every command would
otherwise pay). The one place to add or retire a trace version is :data:`SCHEMAS`, next
to ``TRACE_VERSION`` and ``READABLE_VERSIONS`` in :mod:`._trace`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import msgspec

from ._errors import TraceError
from ._bounds import MAX_STEPS
from ._trace import (READABLE_VERSIONS, TRACE_FORMAT, TRACE_VERSION, decode_events,
                     decode_ints, events_hash, max_encoded_chars)

if TYPE_CHECKING:  # pragma: no cover
    from ._trace import Trace

# One typed schema per readable version, checked by msgspec in one pass: a missing field,
# a field of the wrong type, an unknown field or a value out of range is one line naming
# the field. What the schema cannot say (the encoded tape and events decode, and the
# events hash to trace_hash) is checked right after, in from_json.
_Hash = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
_Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
_Name = Annotated[str, msgspec.Meta(min_length=1)]
_Verdict = Literal["ok", "deadlock", "hang", "livelock", "oom", "assertion", "bug"]
_Params = dict[Annotated[str, msgspec.Meta(pattern="^[a-z_]+$")], Union[int, str]]


class _Header(msgspec.Struct):
    """Just enough to say whether this is a trace, and which version."""

    format: Any = None
    version: Any = None


class _Events2(msgspec.Struct, forbid_unknown_fields=True):
    rows: list[tuple[str, str, Any, _Count]]
    stream: str


class _Fields(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The fields every version has (a Trace's, but tape and events as stored)."""

    format: str
    version: int
    scenario: _Name
    scenario_hash: _Hash
    scenario_name: str
    strategy: _Name
    seed: Union[_Count, None]
    verdict: _Verdict
    trace_hash: _Hash
    steps: _Count = 0
    ticks: _Count = 0
    params: _Params = {}
    faults: Union[_Name, None] = None
    faults_hash: Union[_Hash, None] = None
    scenario_abspath: str = ""
    faults_abspath: str = ""


class _V1(_Fields, kw_only=True):
    tape: list[_Count]
    events: list[tuple[_Count, str, str, Any, _Count]]


class _V2(_Fields, kw_only=True):
    tape: str
    events: _Events2


#: The schema of each version this vmemu reads: the one place to add or retire one.
SCHEMAS: dict[int, type[_Fields]] = {3: _V2}   # (3 is stored as 2 was)
assert TRACE_VERSION in SCHEMAS and tuple(SCHEMAS) == READABLE_VERSIONS


def _check_version(data: bytes | str, p: str) -> type[_Fields]:
    """The schema for this file's version, or one line saying why there is none."""
    try:
        head = msgspec.json.decode(data, type=_Header)
    except msgspec.ValidationError:   # not an object at all (before DecodeError, its base)
        head = _Header()
    except msgspec.DecodeError as e:
        raise TraceError(f"not a vmemu trace: {_json_problem(e)}", file=p) from None
    except RecursionError:   # (msgspec's own, past ~1000 levels of arrays or objects)
        raise TraceError(_TOO_DEEP, file=p) from None
    if head.format != TRACE_FORMAT:
        raise TraceError(f"not a vmemu trace (no \"format\": \"{TRACE_FORMAT}\")", file=p)
    version = head.version
    if version in (1, 2) and type(version) is int:
        raise TraceError(f"trace version {version} was written by an older vmemu, whose "
                         "exploration seeds meant other schedules; re-record it with "
                         "this vmemu", file=p, key="version")
    if type(version) is not int or version not in SCHEMAS:
        raise TraceError(f"trace version {repr(version)[:20]} is not supported (this vmemu "
                         f"reads versions {', '.join(map(str, READABLE_VERSIONS))}); "
                         "re-record it", file=p, key="version")
    return SCHEMAS[version]


_TOO_DEEP = ("not a vmemu trace: its JSON is nested too deeply (the file is damaged or "
             "is not a trace; re-record it)")


def from_json(cls: "type[Trace]", data: bytes | str, p: str) -> "Trace":
    # A BOM (an editor that saves "UTF-8 with BOM") is not part of the JSON: skip it, as
    # the scenario loader does.
    if isinstance(data, str):
        data = data.removeprefix("\ufeff")
    elif data[:3] == b"\xef\xbb\xbf":
        data = memoryview(data)[3:]
    elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise TraceError("not a vmemu trace: the file is UTF-16 text (its BOM says so); "
                         "save it as UTF-8", file=p)
    schema = _check_version(data, p)
    try:
        raw = msgspec.json.decode(data, type=schema)
    except msgspec.ValidationError as e:
        text, _, where = str(e).partition(" - at `$")
        key = where.rstrip("`").lstrip(".") or None
        raise TraceError(f"{text[:1].lower()}{text[1:]} (the file is damaged or was edited; "
                         "re-record it)", file=p, key=key) from None
    except msgspec.DecodeError as e:
        raise TraceError(f"not a vmemu trace: {_json_problem(e)}", file=p) from None
    except RecursionError:
        raise TraceError(_TOO_DEEP, file=p) from None
    d = {f: getattr(raw, f) for f in raw.__struct_fields__ if f not in ("format", "version")}
    if isinstance(raw, _V2):
        # Before decoding: a string longer than the run can have written is refused
        # at once, whatever its length (see _trace.max_encoded_chars). Without a fault
        # plan the tape holds one decision a step; a plan's coin flips are not bounded
        # by steps. A livelock may be a soft lockup: Python code that emitted events for
        # seconds without a step.
        steps = raw.steps
        _check_length(raw.tape, "tape", "decisions",
                      steps if raw.faults is None and raw.faults_hash is None else MAX_STEPS,
                      p)
        _check_length(raw.events.stream, "events.stream", "events",
                      steps if raw.verdict != "livelock" else MAX_STEPS, p)
        try:
            d["tape"] = decode_ints(raw.tape)
        except ValueError as e:
            raise TraceError(f"damaged decision tape: {e}", file=p, key="tape") from None
        try:
            d["events"] = decode_events({"rows": [list(r) for r in raw.events.rows],
                                         "stream": raw.events.stream})
        except ValueError as e:
            raise TraceError(f"damaged event list: {e}", file=p, key="events") from None
        if events_hash(d["events"]) != raw.trace_hash:
            raise TraceError("the events do not match trace_hash: the file is damaged or "
                             "was edited; re-record it", file=p, key="events")
    else:
        d["events"] = [list(e) for e in raw.events]
    return cls(**d)


def _check_length(text: str, key: str, what: str, steps: int, p: str) -> None:
    """One line if ``text`` is longer than a run of ``steps`` steps writes."""
    limit = max_encoded_chars(steps)
    if len(text) > limit:
        raise TraceError(f"{len(text):,} characters of {what}, more than a run of "
                         f"{steps:,} steps records (at most {limit:,}): the file is damaged "
                         "or was edited; re-record it", file=p, key=key)


def _json_problem(e: Exception) -> str:
    """msgspec's "JSON is malformed: X (byte N)" as "invalid JSON: X (byte N)"."""
    text = str(e)
    return "invalid JSON: " + text.split(": ", 1)[1] if text.startswith("JSON is malformed") \
        else text
