"""Python scenario modules: the declarative keys of a scenario file, with async tasks.

A module sets the same top-level names a YAML scenario has (``name``, ``expect``,
``limits``, ``memory``, ``locks``, ``events``, ``vars``, ``routines``) and a ``tasks``
mapping from task name to an ``async def task(ctx: vmemu.TaskContext)`` (or to
``{"fn": task, "start": TICK, "flags": [...]}``)::

    expect = "deadlock"
    locks = {"A": "mutex", "B": "mutex"}

    async def t1(ctx):
        async with ctx.lock("A"):
            await ctx.yield_()
            async with ctx.lock("B"):
                pass

    tasks = {"t1": t1, "t2": t2}

The declarative part is validated by the YAML loader itself (one set of rules), so a
Python scenario gets the same one-line errors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

import yaml

from .._errors import ScenarioError, did_you_mean, safe_str
from .._files import read_user_file
from .model import TASK_FLAGS, Loc, Scenario, TaskSpec
from .yaml_loader import TOP_KEYS, _Loader

_DECLARATIVE = tuple(k for k in TOP_KEYS if k != "tasks")


def load_python_scenario(file: str) -> Scenario:
    """Import ``file`` and build a :class:`Scenario` from its top-level names.

    Raises:
        ScenarioError: import failure, missing/invalid ``tasks``, or invalid declarative keys.
    """
    data = read_user_file(file, what="scenario file", error=ScenarioError)
    digest = hashlib.sha256(data).hexdigest()
    module = _import(file, data, digest)
    doc: dict[str, Any] = {}
    for key in _DECLARATIVE:
        if hasattr(module, key):
            doc[key] = getattr(module, key)
    doc.setdefault("name", Path(file).stem)
    raw_tasks = getattr(module, "tasks", None)
    if not isinstance(raw_tasks, dict) or not raw_tasks:
        raise ScenarioError("a Python scenario needs a non-empty `tasks = {NAME: async_fn}`",
                            file=file, key="tasks")
    # Validate the declarative part with the YAML loader (a placeholder task keeps it happy).
    doc["tasks"] = {"__placeholder__": ["yield"]}
    try:
        text = yaml.safe_dump(doc, sort_keys=False)
    except yaml.YAMLError as e:
        raise ScenarioError(f"top-level scenario values must be plain data: {e}".split("\n")[0],
                            file=file) from None
    try:
        base = _Loader(file).scenario(text.encode())
    except ScenarioError as e:
        # Line numbers would point into the generated YAML: keep the key, drop the line.
        raise ScenarioError(e.bare, file=file, key=e.key) from None
    tasks = tuple(_task(file, name, spec) for name, spec in raw_tasks.items())
    return dataclasses.replace(base, content_hash=digest, tasks=tasks)


def _import(file: str, data: bytes, digest: str) -> Any:
    # A deterministic, per-content module name: re-loading a changed file re-imports it.
    name = f"_vmemu_scenario_{digest[:16]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ScenarioError("cannot import this file as a Python module", file=file)
    module = importlib.util.module_from_spec(spec)
    try:
        # The bytes already read (and hashed), not a second read of the path: what runs
        # is what the trace pins, and the path is never opened in a way that could block.
        exec(compile(data, file, "exec", dont_inherit=True), module.__dict__)
    except KeyboardInterrupt:
        raise
    except BaseException as e:   # (sys.exit() or an odd BaseException: not vmemu's exit)
        tb = e.__traceback__
        line = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == file:
                line = tb.tb_lineno
            tb = tb.tb_next
        raise ScenarioError(f"error while importing the scenario: {type(e).__name__}: "
                            f"{safe_str(e)}",
                            file=file, line=line) from None
    sys.modules[name] = module
    return module


_TASK_KEYS = ("fn", "start", "flags", "daemon")


def _task(file: str, name: Any, spec: Any) -> TaskSpec:
    key = f"tasks.{name}"
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ScenarioError(f"task names must be non-empty strings without spaces, got {name!r}",
                            file=file, key="tasks")
    start, flags, daemon, spawned = 0, (), False, False
    fn = spec
    if isinstance(spec, dict):
        unknown = [k for k in spec if k not in _TASK_KEYS]
        if unknown:
            raise ScenarioError(f"unknown key {unknown[0]!r}"
                                + did_you_mean(str(unknown[0]), _TASK_KEYS)
                                + "; allowed: " + ", ".join(_TASK_KEYS), file=file, key=key)
        fn = spec.get("fn")
        start = spec.get("start", 0)
        flags = tuple(spec.get("flags", ()))
        daemon = spec.get("daemon", False)
        if start == "spawned":       # created by ctx.spawn(name), like kthread_run()
            start, spawned = 0, True
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ScenarioError(f"start must be a non-negative integer or 'spawned', got "
                                f"{start!r}", file=file, key=f"{key}.start")
        if not isinstance(daemon, bool):
            raise ScenarioError(f"daemon must be True or False, got {daemon!r}", file=file,
                                key=f"{key}.daemon")
        for f in flags:
            if f not in TASK_FLAGS:
                raise ScenarioError(f"unknown task flag {f!r}" + did_you_mean(str(f), TASK_FLAGS),
                                    file=file, key=f"{key}.flags")
    if not callable(fn) or not (inspect.iscoroutinefunction(fn)
                                or inspect.iscoroutinefunction(getattr(fn, "func", None))):
        raise ScenarioError(f"task {name!r} must be an `async def` function taking ctx, got "
                            f"{type(fn).__name__}", file=file, key=key)
    code = getattr(fn, "__code__", None) or getattr(getattr(fn, "func", None), "__code__", None)
    loc = Loc(file, code.co_firstlineno) if code is not None else None
    return TaskSpec(name=name, fn=fn, start=start, flags=flags, loc=loc, daemon=daemon,
                    spawned=spawned)
