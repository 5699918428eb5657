"""Small helpers every part of the loader uses to word its one-line errors."""

from __future__ import annotations

from typing import Any

from ._yaml import LineMap, type_name

__all__ = ["shown", "describe", "line_of"]


def shown(value: Any, limit: int = 40) -> str:
    """``repr`` of a user value, shortened so that an error stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(value: Any) -> str:
    """``a string 'abc'``, ``a list [1, 2]``, ``nothing``: a user value for messages."""
    return "nothing" if value is None else f"{type_name(value)} {shown(value)}"


def line_of(container: Any, key: Any, default: int) -> int:
    """Line of ``key`` in a YAML mapping, or ``default`` when unknown."""
    if isinstance(container, LineMap):
        return container.lines.get(key, default)
    return default
