"""The scenario model: what a loaded scenario file is, independent of its syntax.

The loader (YAML or Python module) produces these immutable objects; the kernel and the
interpreter consume them. Every step carries its source location so that reports,
divergence errors and lockdep can point at the scenario line that did something.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

#: Lock kinds accepted in ``locks:``.
LOCK_KINDS = ("mutex", "semaphore", "recursive", "rwsem", "spinlock")
#: Event kinds accepted in ``events:``.
EVENT_KINDS = ("waitqueue", "completion")
#: Verdicts, in the order reports list them.
VERDICTS = ("ok", "deadlock", "hang", "livelock", "oom", "assertion", "bug")
#: Task flags accepted in ``flags:``.
TASK_FLAGS = ("PF_MEMALLOC", "PF_MEMALLOC_NOIO", "PF_MEMALLOC_NOFS")
#: GFP mask names accepted in ``gfp:``.
GFP_NAMES = ("GFP_KERNEL", "GFP_NOFS", "GFP_NOIO", "GFP_ATOMIC", "GFP_NOWAIT")


@dataclass(frozen=True, slots=True)
class Loc:
    """Where a step was written: file (as given by the user) and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Expr:
    """A compiled expression of the safe expression language.

    Attributes:
        source: the text as written.
        fn: evaluates the expression against a mapping of variable names to ints.
        names: variable names the expression reads (validated at load time).
    """

    source: str
    fn: Callable[[Any], int] = field(compare=False, repr=False)
    names: tuple[str, ...] = ()

    def __call__(self, env: Any) -> int:
        return self.fn(env)


@dataclass(frozen=True, slots=True)
class Step:
    """One scenario step.

    ``op`` is the step keyword (``lock``, ``alloc``, ``if`` ...). Which other fields are
    used depends on ``op``:

    - ``target``: lock / event / routine / var-free name / page handle / fault point / class.
    - ``n``: ticks for ``io``/``sleep``, pages for ``alloc``/``fill``, count for ``repeat``.
    - ``expr``: condition of ``if``/``while``/``assert``.
    - ``body``: ``then`` of ``if``, ``do`` of ``repeat``/``while``/``flags``.
    - ``orelse``: ``else`` of ``if``.
    - ``assign``: ``((var, value), ...)`` for ``set`` / ``add``.
    - ``gfp``, ``as_``, ``may_fail``: options of ``alloc``.
    - ``with_lock``: mutex released while asleep in ``wait``.
    - ``flags``: task flags of a ``flags`` scope.
    """

    op: str
    loc: Loc
    target: str | None = None
    n: int = 0
    expr: Expr | None = None
    body: tuple["Step", ...] = ()
    orelse: tuple["Step", ...] = ()
    assign: tuple[tuple[str, int], ...] = ()
    gfp: str = "GFP_KERNEL"
    as_: str | None = None
    may_fail: bool = False
    with_lock: str | None = None
    flags: tuple[str, ...] = ()

    def describe(self) -> str:
        """A short human description, e.g. ``lock superblock`` or ``alloc 1 (GFP_KERNEL)``."""
        op = self.op
        if op in ("set", "add"):
            return f"{op} " + ", ".join(f"{k}={v}" for k, v in self.assign)
        if op in ("if", "while", "assert"):
            return f"{op} {self.expr.source if self.expr else ''}"
        if op == "alloc":
            return f"alloc {self.n} ({self.gfp})" + (f" as {self.as_}" if self.as_ else "")
        if op == "fill":
            return f"fill {self.n} pages of {self.target}"
        if op in ("io", "sleep", "repeat"):
            return f"{op} {self.n}"
        if op == "flags":
            return "flags " + ",".join(self.flags)
        if op == "wait" and self.with_lock:
            return f"wait {self.target} (with_lock {self.with_lock})"
        if self.target is not None:
            return f"{op} {self.target}"
        return op


@dataclass(frozen=True, slots=True)
class Limits:
    """Budgets that bound every run (the tool never hangs)."""

    steps: int = 20_000
    ticks: int = 1_000_000
    hung_task_timeout: int = 1_000


@dataclass(frozen=True, slots=True)
class PageClass:
    """A class of pages: clean when ``writeback`` is None, else dirty."""

    name: str
    writeback: str | None = None
    needs: tuple[str, ...] = ()  # subset of ("io", "fs")


@dataclass(frozen=True, slots=True)
class Memory:
    """The page pool: size, watermarks (min < low < high), kswapd, page classes (in order)."""

    pages: int
    min: int
    low: int
    high: int
    kswapd: bool = False
    classes: tuple[PageClass, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One emulated task (counted tasks are already expanded).

    ``steps`` is a tuple of Steps for scenario files; for Python scenarios ``fn`` is an
    ``async def fn(ctx)`` and ``steps`` is empty.
    """

    name: str
    steps: tuple[Step, ...] = ()
    flags: tuple[str, ...] = ()
    start: int = 0
    fn: Callable[..., Any] | None = None
    loc: Loc | None = None


@dataclass(frozen=True)
class Scenario:
    """A loaded, validated scenario.

    Attributes:
        path: the file as the user named it.
        content_hash: sha256 of the file bytes (traces pin it).
        locks: lock name -> kind, counted locks expanded, in file order.
        lock_classes: lock name -> lock class (lockdep groups a class into one node).
        events: event name -> kind.
        vars: initial variable values.
        routines: routine name -> steps.
        tasks: expanded tasks in file order.
    """

    name: str
    path: str
    content_hash: str
    description: str = ""
    source: str = ""
    expect: str = "ok"
    limits: Limits = Limits()
    memory: Memory | None = None
    locks: dict[str, str] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)
    vars: dict[str, int] = field(default_factory=dict)
    routines: dict[str, tuple[Step, ...]] = field(default_factory=dict)
    tasks: tuple[TaskSpec, ...] = ()
    #: lock name -> lockdep class, for locks declared with ``class:`` (others: own name).
    lock_classes: dict[str, str] = field(default_factory=dict)
    #: ``path`` made absolute when the file was loaded (traces record it, so a replay
    #: finds the file from elsewhere; resolved once, not per run).
    abspath: str = ""
