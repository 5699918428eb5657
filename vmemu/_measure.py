"""``vmemu measure SCENARIO --vary KEY=V1,V2,... [--vary ...]``: one run per variant, one
row per variant, one column per metric (``metrics`` of every run's JSON: virtual time,
deterministic).

A variant is the scenario file with each varied key set to one of its values (every
combination when ``--vary`` is given more than once, the first ``--vary`` slowest). KEY is
a dotted path into the YAML document: ``memory.swapout``, ``memory.swap.device.queue``,
``tasks.proc.count``, ``tasks.proc.steps.2.touch.order`` (a number indexes a list; so
does ``steps[2]``, which a shell may want quoted). The change is made to the
parsed document, which is then validated by the normal loader, so a variant is checked
exactly as a file would be. A path that does not exist is one line and exit 2, with the
closest existing key; a key absent from the file but valid where it would go (a default
the file leaves out) may be set.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import re
from typing import Any

from ._errors import ScenarioError, UserError, did_you_mean

__all__ = ["add_parser", "cmd_measure", "measure", "parse_vary"]

_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


def add_parser(sub: Any, add_common: Any, seed_type: Any) -> None:
    """Register ``measure`` on the CLI's subparsers (``_cli.build_parser``)."""
    m = sub.add_parser("measure", help="run variants of a scenario and tabulate their "
                       "metrics (swap IO, faults, reclaim)")
    add_common(m, driver="direct")
    m.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a dotted key of the scenario and the values to give it "
                        "(repeat for every combination)")
    m.add_argument("--seed", type=seed_type, default=0, help="the random schedule's seed "
                   "(default 0)")
    m.add_argument("--metrics", default=None, metavar="M1,M2,...",
                   help="only these metric columns (default: all)")
    m.add_argument("--csv", action="store_true", help="print CSV instead of a table")


def parse_vary(text: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2`` -> ``(KEY, [values])``; values are YAML scalars or flow
    collections (commas inside brackets and quotes do not split)."""
    from ._scenario._yaml import parse_yaml
    key, eq, rest = text.partition("=")
    key = key.strip()
    if not eq or not key or not rest.strip():
        raise UserError(f"expected KEY=V1,V2,... like memory.swapout=vmscan,shrink_mmap, "
                        f"got {text!r}", key="--vary")
    if not all(_SEGMENT.fullmatch(seg) for seg in key.split(".")):
        raise UserError(f"{key!r} is not a dotted key like memory.swap.device.queue or "
                        "tasks.proc.steps[2].touch.order", key="--vary")
    values = []
    for raw in _split(rest):
        try:
            values.append(parse_yaml(raw.encode(), "--vary"))
        except ScenarioError as e:
            raise UserError(f"{key}: value {raw!r}: {e.bare}", key="--vary") from None
    return key, values


def _split(text: str) -> list[str]:
    out, depth, quote, cur = [], 0, "", ""
    for c in text:
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += c
    out.append(cur.strip())
    if any(not v for v in out):
        raise UserError(f"an empty value in {text!r}", key="--vary")
    return out


def _set(doc: Any, key: str, value: Any, file: str) -> bool:
    """Set ``key`` in the parsed document; True when the key was absent (inserted)."""
    node: Any = doc
    steps: list[tuple[str, Any]] = []
    for n, seg in enumerate(key.split(".")):
        m = _SEGMENT.fullmatch(seg)
        # A number after a dot indexes a list too (steps.2: no brackets for the shell).
        steps.append((None, int(seg)) if seg.isdigit() and n else (m.group(1), None))
        steps += [(None, int(i)) for i in re.findall(r"\[(\d+)\]", m.group(2))]
    where = ""
    for n, (name, index) in enumerate(steps):
        last = n == len(steps) - 1
        if name is not None:
            if not isinstance(node, dict):
                raise UserError(f"{key}: {where or 'the document'} is not a mapping, so it "
                                f"has no key {name!r}", key="--vary")
            path = f"{where}.{name}" if where else name
            if name not in node:
                if last:
                    node[name] = value
                    return True
                raise UserError(f"no key {path!r} in {file}"
                                + did_you_mean(name, [str(k) for k in node]), key="--vary")
            if last:
                node[name] = value
                return False
            node, where = node[name], path
        else:
            if not isinstance(node, list) or not 0 <= index < len(node):
                size = len(node) if isinstance(node, list) else 0
                raise UserError(f"{key}: {where} has no item [{index}]"
                                + (f" (it has {size}: 0..{size - 1})" if size else
                                   " (it is not a list)"), key="--vary")
            if last:
                node[index] = value
                return False
            node, where = node[index], f"{where}[{index}]"
    return False  # pragma: no cover - the loop always returns


def _brackets(key: str) -> str:
    """``steps.2.touch`` as the loader spells keys: ``steps[2].touch``."""
    return re.sub(r"\.(\d+)(?=\.|\[|$)", r"[\1]", key)


def variants(path: str, vary: list[tuple[str, list[Any]]]) -> list[tuple[dict, Any]]:
    """Every variant: ``(the values set, the loaded Scenario)``, each loaded and
    validated like a file (bad values are one line naming the key)."""
    from ._files import read_user_file
    from ._scenario import load_scenario
    from ._scenario.yaml_loader import _Loader
    if not vary:
        return [({}, load_scenario(path))]
    if not path.endswith((".yaml", ".yml")):
        raise UserError("this is not a YAML scenario, and only the keys of one can be "
                        "varied (measure it without --vary)", file=path, key="--vary")
    data = read_user_file(path, what="scenario file", error=ScenarioError)
    keys = [k for k, _ in vary]
    if len(set(keys)) != len(keys):
        raise UserError("a key is varied twice: give all its values in one --vary",
                        key="--vary")
    out = []
    for combo in itertools.product(*(vals for _, vals in vary)):
        chosen = dict(zip(keys, combo))
        inserted: list[str] = []

        def edit(doc: Any) -> str:
            for k, v in chosen.items():
                if _set(doc, k, v, path):
                    inserted.append(k)
            return json.dumps(chosen, sort_keys=True, default=str)
        try:
            sc = _Loader(path).scenario(data, edit)
        except ScenarioError as e:
            bad = next((k for k in chosen if e.key is not None and
                        (e.key == _brackets(k) or e.key.startswith(_brackets(k) + ".")
                         or e.key.startswith(_brackets(k) + "["))), None)
            if bad is None:
                shown = ", ".join(f"{k}={v!r}" for k, v in chosen.items())
                raise ScenarioError(f"{e.bare} (in the variant {shown})", file=e.file,
                                    line=e.line, key=e.key) from None
            unknown = e.bare.startswith(("unknown key", "unknown option",
                                         "unknown top-level key"))
            what = "not a key the scenario format has" if bad in inserted and unknown \
                else f"{chosen[bad]!r} is not a valid value"
            raise UserError(f"{bad}={chosen[bad]!r}: {what}: {e.bare}", key="--vary") \
                from None
        out.append((chosen, sc))
    return out


def measure(path: str, vary: list[tuple[str, list[Any]]], *, seed: int = 0,
            driver: str = "direct", faults: Any = None, log: Any = None) -> dict[str, Any]:
    """Run every variant once; the ``--json`` object (no driver, no wall time: the same
    on every driver and under any ``PYTHONHASHSEED``)."""
    from ._run import run
    rows = []
    for chosen, sc in variants(path, vary):
        r = run(sc, seed=seed, driver=driver, faults=faults, log=log)
        rows.append({"vary": chosen, "verdict": r.verdict, "steps": r.steps,
                     "ticks": r.ticks, "trace_hash": r.trace_hash,
                     "metrics": r.extra["metrics"]})
    return {"scenario": path, "seed": seed, "strategy": "random",
            "vary": [k for k, _ in vary], "variants": rows}


def _columns(only: str | None) -> list[str]:
    from ._kernel._metrics import METRICS
    if only is None:
        return list(METRICS)
    cols = [c.strip() for c in only.split(",") if c.strip()]
    if not cols:
        raise UserError("names no metric; give one or more, comma-separated: "
                        + ", ".join(METRICS), key="--metrics")
    for c in cols:
        if c not in METRICS:
            raise UserError(f"unknown metric {c!r}" + did_you_mean(c, METRICS)
                            + "; metrics: " + ", ".join(METRICS), key="--metrics")
    return cols


def _cells(out: dict[str, Any], cols: list[str]) -> tuple[list[str], list[list[str]]]:
    head = [*out["vary"], "verdict", *cols]
    body = [[_text(v) for v in row["vary"].values()] + [row["verdict"]]
            + [_text(row["metrics"][c]) for c in cols] for row in out["variants"]]
    return head, body


def _text(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else str(v)


def render(out: dict[str, Any], cols: list[str], *, rich: bool = False) -> str:
    """The table: rich on a terminal, plain aligned text otherwise."""
    head, body = _cells(out, cols)
    if rich:
        from rich.console import Console
        from rich.table import Table
        table = Table(title=f"vmemu measure {out['scenario']} (seed {out['seed']})")
        for i, h in enumerate(head):
            table.add_column(h, justify="left" if i <= len(out["vary"]) else "right")
        for row in body:
            table.add_row(*row)
        buf = io.StringIO()
        Console(file=buf, force_terminal=True, width=200).print(table)
        return buf.getvalue().rstrip("\n")
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
    nv = len(out["vary"]) + 1

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < nv else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


def to_csv(out: dict[str, Any], cols: list[str]) -> str:
    head, body = _cells(out, cols)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    w.writerows(body)
    return buf.getvalue().rstrip("\n")


def cmd_measure(args: argparse.Namespace, log: Any) -> int:
    """``vmemu measure``: exit 1 when a variant's run ended in a failure verdict."""
    from ._report import colour_ok
    import sys
    if args.csv and args.json:
        raise UserError("choose one of --json and --csv", key="--csv")
    vary = [parse_vary(v) for v in args.vary]
    cols = _columns(args.metrics)
    out = measure(args.scenario, vary, seed=args.seed, driver=args.driver,
                  faults=args.faults, log=log)
    if args.json:
        print(json.dumps(out, indent=2))
    elif args.csv:
        print(to_csv(out, cols))
    else:
        print(render(out, cols, rich=colour_ok(sys.stdout)))
    return 1 if any(r["verdict"] != "ok" for r in out["variants"]) else 0
