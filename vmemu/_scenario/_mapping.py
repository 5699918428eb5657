"""Step parsing for address spaces: ``mmap`` and ``touch`` (a mixin of
:class:`.steps.StepParser`).

::

    - mmap: {region: heap, pages: 64}              # anonymous, private to the task
    - mmap: {region: ipc, pages: 16, shared: true}  # one mapping for every task (shm)
    - touch: {region: heap, pages: "0..63", order: sequential, write: true, think: 2}

A region's size and a touch's page range may be expressions (``pages: "p"``,
``pages: "0..n-1"``); constants are checked when the file is loaded, the rest when the
step runs. That every region a ``touch`` names is mapped by some ``mmap`` step, and that
a constant range fits a region whose every mapping has a constant size, is checked once
the whole file is parsed (:func:`check_touches`), since a routine may touch a region its
caller maps.
"""

from __future__ import annotations

from typing import Any

from .._bounds import MAX_PAGES
from .._errors import ScenarioError, did_you_mean
from ._text import line_of, shown
from .model import TOUCH_ORDERS, Loc, MapOpts, Step, TouchOpts

__all__ = ["MappingOps", "check_touches"]

_MMAP_KEYS = ("region", "pages", "shared")
_TOUCH_KEYS = ("region", "pages", "order", "write", "think")


class MappingOps:
    """``mmap touch`` (see the module docstring); relies on :class:`.steps.StepParser`."""

    def _map_args(self, item: dict, op: str, key: str, loc: Loc, allowed: tuple[str, ...]
                  ) -> tuple[dict, int, str, str]:
        """The mapping argument of ``op``, its line and key, and its region name."""
        example = ("{region: heap, pages: 64}" if op == "mmap" else
                   '{region: heap, pages: "0..63", write: true}')
        value, line, k = self.operands(item, op, key, loc, ("region",), allowed[1:],
                                       example=example, noun="option")
        region = self.name(value["region"], "a region", line_of(value, "region", line),
                           f"{k}.region")
        return value, line, k, region

    def _flag(self, value: dict, name: str, line: int, key: str) -> bool:
        flag = value.get(name, False)
        if not isinstance(flag, bool):
            raise self.error(f"{name} must be true or false, got {shown(flag)}",
                             line_of(value, name, line), f"{key}.{name}")
        return flag

    def _op_mmap(self, item: dict, key: str, loc: Loc) -> Step:
        value, line, k, region = self._map_args(item, "mmap", key, loc, _MMAP_KEYS)
        if "pages" not in value:
            raise self.error("mmap needs pages: (the region's size in pages)", line, k)
        pline = line_of(value, "pages", line)
        pages, expr = self.count(value["pages"], 1, " of pages", pline, f"{k}.pages")
        if expr is None and pages > MAX_PAGES:
            raise self.error(f"a region has at most {MAX_PAGES:_} pages, got {pages:_}",
                             pline, f"{k}.pages")
        sizes = self.names.regions.setdefault(region, [])
        sizes.append(pages if expr is None else None)
        return Step("mmap", loc, target=region, n=pages, n_expr=expr,
                    opts=MapOpts(shared=self._flag(value, "shared", line, k)))

    def _op_touch(self, item: dict, key: str, loc: Loc) -> Step:
        value, line, k, region = self._map_args(item, "touch", key, loc, _TOUCH_KEYS)
        lo = hi = None
        if "pages" in value:
            lo, hi = self._range(value["pages"], line_of(value, "pages", line), f"{k}.pages")
        order, order_k = self._order(value, line, k)
        think: Any = 0
        if "think" in value:
            tline = line_of(value, "think", line)
            think, texpr = self.count(value["think"], 0, " of ticks", tline, f"{k}.think")
            think = texpr if texpr is not None else think
        self.names.touches.append((region, lo, hi, line, f"{k}.region"))
        return Step("touch", loc, target=region,
                    opts=TouchOpts(lo=lo, hi=hi, order=order, k=order_k,
                                   write=self._flag(value, "write", line, k), think=think))

    def _range(self, raw: Any, line: int, key: str) -> tuple[Any, Any]:
        """``"LO..HI"`` (inclusive), one page (an int or an expression)."""
        if isinstance(raw, str) and ".." in raw:
            parts = raw.split("..")
            if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                raise self.error(f"a page range is FIRST..LAST (both included), like "
                                 f"\"0..63\", got {shown(raw)}", line, key)
            lo, hi = (self._page(p.strip(), line, key) for p in parts)
            if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
                raise self.error(f"page range {raw!r} is empty: its first page is after its "
                                 f"last (write \"{hi}..{lo}\" with order: reverse to go "
                                 "backwards)", line, key)
            return lo, hi
        page = self._page(raw, line, key)
        return page, page

    def _page(self, raw: Any, line: int, key: str) -> Any:
        if isinstance(raw, str):
            text = raw.strip()
            if text.lstrip("-").isdigit():
                raw = int(text)
            else:
                return self.expr(text, line, key)
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise self.error(f"a page number must be a non-negative integer or an "
                             f"expression in quotes, got {shown(raw)}", line, key)
        if raw >= MAX_PAGES:
            raise self.error(f"page {raw:_} is beyond any region (at most {MAX_PAGES:_} "
                             "pages)", line, key)
        return raw

    def _order(self, value: dict, line: int, key: str) -> tuple[str, int | None]:
        raw = value.get("order", "sequential")
        oline, okey = line_of(value, "order", line), f"{key}.order"
        if not isinstance(raw, str):
            raise self.error(f"order is one of {', '.join(TOUCH_ORDERS)} (stride:K, "
                             f"random:SEED), got {shown(raw)}", oline, okey)
        name, _, num = raw.partition(":")
        name = name.strip()
        if name not in TOUCH_ORDERS:
            raise self.error(f"unknown touch order {shown(raw)}"
                             f"{did_you_mean(name, TOUCH_ORDERS)}; orders: sequential, "
                             "reverse, random (or random:SEED), stride:K", oline, okey)
        if name == "stride":
            if not num.strip().isdigit() or int(num) < 1:
                raise self.error(f"stride needs a step of at least 1 after the colon, like "
                                 f"stride:4, got {shown(raw)}", oline, okey)
            return name, int(num)
        if name == "random":
            if not num:
                return name, None        # a new permutation on every touch of the region
            if not num.strip().isdigit():
                raise self.error(f"random:SEED takes a non-negative integer seed, got "
                                 f"{shown(raw)}", oline, okey)
            return name, int(num)
        if num:
            raise self.error(f"order {name} takes no number, got {shown(raw)}", oline, okey)
        return name, 0


def check_touches(names: Any) -> None:
    """Once every step is parsed: each touched region is mapped by some ``mmap`` step,
    and a constant page range fits every constant size that region is mapped with."""
    for region, lo, hi, line, key in names.touches:
        sizes = names.regions.get(region)
        if sizes is None:
            mapped = list(names.regions)
            raise ScenarioError(f"touch of region {region!r}, which no mmap step maps"
                                + (did_you_mean(region, mapped) or
                                   ("; mapped regions: " + ", ".join(mapped) if mapped else
                                    "; map it first: mmap: {region: NAME, pages: N}")),
                                file=names.file, line=line, key=key)
        if None in sizes or not isinstance(hi, int):
            continue       # checked when the step runs
        size = max(sizes)
        if hi >= size:
            what = f"pages {lo}..{hi} are" if isinstance(lo, int) and lo != hi else \
                f"page {hi} is"
            raise ScenarioError(f"{what} out of bounds: region {region!r} "
                                f"has {size} page{'s' if size != 1 else ''} (0..{size - 1})",
                                file=names.file, line=line,
                                key=key.rsplit(".", 1)[0] + ".pages")
