"""Safe YAML parsing that remembers the line of every mapping key and sequence item.

Errors in scenario files must name the line they are about, so the loader builds
:class:`LineMap` / :class:`LineSeq` (a ``dict`` / ``list`` with line numbers attached)
instead of plain containers.

Only plain YAML is read: mappings, sequences, strings, integers, floats, booleans and
null. Every explicit tag (``!!int ""``, ``!!timestamp x``, ``!!binary``, ``!!python/...``,
custom ``!tags``) is refused where it is written, before a constructor could choke on
it; a date-like ``2024-01-01`` or a bare ``=`` is a string (YAML 1.1's implicit
timestamps and value keys are not resolved). After loading, the document is walked once
more: a value of any other type, or a container that contains itself through an alias,
is refused too, so that every loader downstream sees plain data only.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from .._errors import ScenarioError

__all__ = ["LineMap", "LineSeq", "parse_yaml", "type_name"]

_STD_PREFIX = "tag:yaml.org,2002:"


class LineMap(dict):
    """A mapping from YAML: ``line`` is where it starts, ``lines[key]`` where each key is."""

    line: int
    lines: dict[Any, int]

    def key_line(self, key: Any) -> int:
        """Line of ``key``, or of the mapping itself when the key is absent."""
        return self.lines.get(key, self.line)


class LineSeq(list):
    """A sequence from YAML: ``line`` is where it starts, ``lines[i]`` where item i is."""

    line: int
    lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader whose containers carry line numbers and which rejects every tag."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        # An explicit tag is on the event (resolved tags are only set on the node), so
        # this sees exactly what the user wrote.
        if not self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            tag = getattr(event, "tag", None)
            if tag is not None:
                line = event.start_mark.line + 1
                raise ScenarioError(f"unsupported YAML tag {_show_tag(tag)!r} at line {line}: "
                                    "write the plain value (vmemu reads plain YAML: mappings, "
                                    "lists, strings, numbers, true/false)",
                                    file=self.file, line=line)
        return super().compose_node(parent, index)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as exc:
            # Safe constructors convert scalars with int()/datetime(); e.g. ``!!int abc``.
            # The innermost node catches first, so the line is the offending value's.
            why = str(exc)
            if "integer string conversion" in why:   # (Python's advice is for programs)
                why = (f"a number of {len(str(node.value))} digits; no scenario value is "
                       "that large: write a smaller one")
            raise ScenarioError(f"invalid YAML value at line {_line(node)}: {why}",
                                file=self.file, line=_line(node)) from None


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _construct_map(loader: _Loader, node: Node):  # type: ignore[no-untyped-def]
    data = LineMap()
    data.line = _line(node)
    data.lines = {}
    # Yield first (as SafeLoader does) so that anchors referring to this mapping resolve.
    yield data
    if not isinstance(node, MappingNode):
        raise ScenarioError(f"expected a mapping, got {node.id}", file=loader.file,
                            line=_line(node))
    # Keys written in this mapping may not repeat; keys pulled in by a ``<<`` merge may be
    # overridden (that is what merging is for), so remember which ones are our own.
    own = [k for k, _ in node.value if k.tag != _STD_PREFIX + "merge"]
    loader.flatten_mapping(node)
    n_merged = len(node.value) - len(own)
    seen: set[Any] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise ScenarioError(f"a mapping key must be a plain name, got {type_name(key)}",
                                file=loader.file, line=_line(key_node)) from None
        if index >= n_merged:
            if key in seen:
                raise ScenarioError(f"duplicate key {key!r}", file=loader.file,
                                    line=_line(key_node))
            seen.add(key)
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = _line(key_node)


def _construct_seq(loader: _Loader, node: Node):  # type: ignore[no-untyped-def]
    data = LineSeq()
    data.line = _line(node)
    data.lines = []
    yield data
    if not isinstance(node, SequenceNode):
        raise ScenarioError(f"expected a sequence, got {node.id}", file=loader.file,
                            line=_line(node))
    for child in node.value:
        data.append(loader.construct_object(child, deep=True))
        data.lines.append(_line(child))


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_STD_PREFIX):] if tag.startswith(_STD_PREFIX) else tag


def _construct_undefined(loader: _Loader, node: Node) -> Any:
    raise ScenarioError(f"unsupported YAML tag {_show_tag(str(node.tag))!r} (only plain "
                        "YAML is allowed)", file=loader.file, line=_line(node))


_Loader.add_constructor(_STD_PREFIX + "map", _construct_map)
_Loader.add_constructor(_STD_PREFIX + "seq", _construct_seq)
_Loader.add_constructor(None, _construct_undefined)
# Implicit resolution: no timestamps (a date is a string), no `=` value key, no `!!yaml`.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers
            if tag[len(_STD_PREFIX):] not in ("timestamp", "value", "yaml")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
#: The only types a loaded document may contain.
_PLAIN = (str, int, float, bool, type(None), LineMap, LineSeq)


def _check_plain(doc: Any, file: str) -> None:
    """Refuse any value that is not plain data, and any container inside itself."""
    done: set[int] = set()
    path: set[int] = set()

    def walk(value: Any, line: int) -> None:
        if type(value) not in _PLAIN:
            raise ScenarioError(f"unsupported YAML value of type {type(value).__name__} at "
                                f"line {line} (only plain YAML is allowed)", file=file,
                                line=line)
        if not isinstance(value, (LineMap, LineSeq)) or id(value) in done:
            return
        if id(value) in path:
            raise ScenarioError(f"the YAML alias at line {line} refers to a mapping or list "
                                "that contains it (a recursive structure)", file=file,
                                line=line)
        path.add(id(value))
        if isinstance(value, LineMap):
            for key, item in value.items():
                walk(key, value.key_line(key))
                walk(item, value.key_line(key))
        else:
            for i, item in enumerate(value):
                walk(item, value.lines[i] if i < len(value.lines) else value.line)
        path.discard(id(value))
        done.add(id(value))   # shared by aliases: looked at once (no exponential walk)

    walk(doc, getattr(doc, "line", 1))


def _yaml_error(exc: yaml.YAMLError, text: str, file: str) -> ScenarioError:
    """Turn a PyYAML error into a one-line ScenarioError that names line and column."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        detail = ""
        if exc.context and exc.problem and problem.startswith("but "):
            # The composer splits one sentence: "expected a single document" / "but found".
            problem = f"{exc.context} {problem}"
        elif exc.context and exc.problem and exc.context_mark is not None:
            detail = f" ({exc.context} at line {exc.context_mark.line + 1})"
        if mark is None:
            return ScenarioError(f"invalid YAML: {problem}{detail}", file=file)
        line = mark.line + 1
        return ScenarioError(f"invalid YAML at line {line}, column {mark.column + 1}: "
                             f"{problem}{detail}", file=file, line=line)
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        return ScenarioError(f"invalid YAML at line {line}: character {exc.character!r} "
                             "is not allowed", file=file, line=line)
    return ScenarioError(f"invalid YAML: {exc}", file=file)


def parse_yaml(data: bytes, file: str) -> Any:
    """Parse one YAML document from ``data`` with line-tracking safe constructors.

    Args:
        data: the file's bytes (UTF-8; a BOM is accepted).
        file: the file name used in error messages.

    Returns:
        The document: LineMap / LineSeq / scalars, or None for an empty document.

    Raises:
        ScenarioError: bad encoding, bad YAML (message says ``line N``) or a disallowed tag.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ScenarioError(f"not UTF-8 text at line {line} (byte {exc.start})",
                            file=file, line=line) from None
    try:
        # The constructor already scans the text for unprintable characters (ReaderError).
        loader = _Loader(text, file)
        try:
            doc = loader.get_single_data()
        finally:
            loader.dispose()
        _check_plain(doc, file)
        return doc
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, file) from None
    except RecursionError:
        raise ScenarioError("invalid YAML: nested too deeply", file=file) from None


def type_name(value: Any) -> str:
    """A YAML-ish name for the type of ``value`` in messages (``a list``, ``a string`` ...)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"

