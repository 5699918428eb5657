"""The scenario model: what a loaded scenario file is, independent of its syntax.

The loader (YAML or Python module) produces these immutable objects; the kernel and the
interpreter consume them. Every step carries its source location so that reports,
divergence errors and lockdep can point at the scenario line that did something.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

#: Lock kinds accepted in ``locks:``.
LOCK_KINDS = ("mutex", "semaphore", "recursive", "rwsem", "spinlock", "rwlock")
#: Event kinds accepted in ``events:``.
EVENT_KINDS = ("waitqueue", "completion")
#: Verdicts, in the order reports list them.
VERDICTS = ("ok", "deadlock", "hang", "livelock", "oom", "assertion", "bug")
#: Task flags accepted in ``flags:``.
TASK_FLAGS = ("PF_MEMALLOC", "PF_MEMALLOC_NOIO", "PF_MEMALLOC_NOFS")
#: GFP mask names accepted in ``gfp:``.
GFP_NAMES = ("GFP_KERNEL", "GFP_NOFS", "GFP_NOIO", "GFP_ATOMIC", "GFP_NOWAIT")
#: Task states a ``wait`` may sleep in (``state:``), as Linux's TASK_* names them.
WAIT_STATES = ("uninterruptible", "interruptible", "killable")
#: Names every expression may read besides variables: per-task, read-only.
TASK_NAMES = ("ok", "should_stop")
#: Values are 64-bit signed integers and wrap on store, as C's s64 does.
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1
_SPAN = 1 << 64


def wrap(value: int) -> int:
    """``value`` as an s64 (two's complement wrap-around): what a store keeps, and what
    every operation of an expression yields (``expr``)."""
    if INT_MIN <= value <= INT_MAX:
        return value
    return (value - INT_MIN) % _SPAN + INT_MIN

#: Swap-out policies of ``memory.swapout`` (docs/swapout.md); the first is the default.
SWAPOUT_POLICIES = ("vmscan", "shrink_mmap", "vmscan_alloc_deferred_io")
#: Orders of ``touch`` (``stride:K`` and ``random:SEED`` take a number after the colon).
TOUCH_ORDERS = ("sequential", "reverse", "random", "stride")


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
class Place:
    """Where a value is read or stored: a variable, or one element of an array.

    Attributes:
        name: the variable (or array) name.
        scope: ``local`` (the frame's locals, parameters and loop indices) or ``shared``
            (the scenario's ``vars``). Resolved at load time: locals shadow shared names.
        index: the element's index expression for ``buf[EXPR]``; None for a scalar.
        text: the place as written, for messages and events.
    """

    name: str
    scope: str
    index: Expr | None = None
    text: str = ""

    @property
    def shared(self) -> bool:
        return self.scope == "shared"

    def __str__(self) -> str:
        return self.text or self.name


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
    - ``n_expr``: the expression ``n`` came from when it is not a constant (evaluated
      when the step runs; ``n`` is then 0).
    - ``assign``: ``((Place, value), ...)`` for ``set`` / ``add`` (value an int or an
      Expr), ``((local Place, shared Place), ...)`` for ``load``.
    - ``place``: the variable of an atomic (``cmpxchg``, ``xchg``, ``fetch_add``).
    - ``expr2``: ``new`` of ``cmpxchg`` (``expr`` is ``old``; ``value`` of ``xchg`` and
      ``fetch_add``; the result of ``return``).
    - ``as_place``: where ``as:`` stores (atomics, ``call``, ``repeat``'s loop index).
    - ``args``: ``((param, Expr), ...)`` of ``call``.
    - ``gfp``, ``as_``, ``may_fail``: options of ``alloc``.
    - ``with_lock``: mutex released while asleep in ``wait``; ``state`` and ``timeout``
      its sleep state and timed-wait expression.
    - ``name_parts``: a task name computed at run time (``spawn: "worker{j}"``): text
      and expressions alternating; ``target`` is then None.
    - ``flags``: task flags of a ``flags`` scope.
    - ``opts``: the options of ``mmap`` (:class:`MapOpts`) and ``touch``
      (:class:`TouchOpts`); ``target`` is then the region.
    - ``shared``: the step reads or writes shared variables (a scheduling point).
    - ``reach``: what the step and its bodies can do that the watchdog cares about
      (``("signal", E)``, ``("up", S)``, ``("call", R)``, ...; see ``_kernel/_reach.py``).
    """

    op: str
    loc: Loc
    target: str | None = None
    n: int = 0
    expr: Expr | None = None
    body: tuple["Step", ...] = ()
    orelse: tuple["Step", ...] = ()
    n_expr: Expr | None = None
    assign: tuple[tuple[Any, Any], ...] = ()
    place: Place | None = None
    expr2: Expr | None = None
    as_place: Place | None = None
    args: tuple[tuple[str, Expr], ...] = ()
    gfp: str = "GFP_KERNEL"
    as_: str | None = None
    may_fail: bool = False
    with_lock: str | None = None
    state: str = "uninterruptible"
    timeout: Expr | None = None
    name_parts: tuple[Any, ...] = ()
    flags: tuple[str, ...] = ()
    shared: bool = False
    opts: Any = None
    reach: frozenset = field(default=frozenset(), compare=False, repr=False)

    @property
    def count(self) -> str:
        """``n`` as written: the number, or the expression's text."""
        return self.n_expr.source if self.n_expr is not None else str(self.n)

    @property
    def name(self) -> str:
        """``target``, or the run-time name template as written (``worker{j}``)."""
        if self.target is not None or not self.name_parts:
            return self.target or ""
        return "".join(p if isinstance(p, str) else "{" + p.source + "}"
                       for p in self.name_parts)

    def describe(self) -> str:
        """A short human description, e.g. ``lock superblock`` or ``alloc 1 (GFP_KERNEL)``."""
        op = self.op
        if op in ("set", "add"):
            return f"{op} " + ", ".join(f"{k}={_text(v)}" for k, v in self.assign)
        if op == "load":
            return "load " + ", ".join(f"{k}={v}" for k, v in self.assign)
        if op in ("if", "while", "assert"):
            return f"{op} {self.expr.source if self.expr else ''}"
        if op == "return":
            return f"return {self.expr.source}" if self.expr is not None else "return"
        if op == "cmpxchg":
            return f"cmpxchg {self.place} {self.expr.source}->{self.expr2.source}"
        if op in ("xchg", "fetch_add"):
            return f"{op} {self.place} {self.expr.source}"
        if op == "alloc":
            return f"alloc {self.count} ({self.gfp})" + (f" as {self.as_}" if self.as_ else "")
        if op == "fill":
            return f"fill {self.count} pages of {self.target}"
        if op in ("io", "sleep", "repeat"):
            return f"{op} {self.count}"
        if op == "flags":
            return "flags " + ",".join(self.flags)
        if op in ("mmap", "touch"):
            return f"{op} {self.target} " + self.opts.describe(self)
        if op == "wait":
            opts = [f"with_lock {self.with_lock}"] if self.with_lock else []
            if self.state != "uninterruptible":
                opts.append(self.state)
            if self.timeout is not None:
                opts.append(f"timeout {self.timeout.source}")
            return f"wait {self.target}" + (f" ({', '.join(opts)})" if opts else "")
        if op == "call" and self.args:
            return (f"call {self.target}("
                    + ", ".join(f"{k}={_text(v)}" for k, v in self.args) + ")")
        if self.target is not None or self.name_parts:
            return f"{op} {self.name}"
        return op


def _text(value: Any) -> str:
    return value.source if isinstance(value, Expr) else str(value)


@dataclass(frozen=True, slots=True)
class Routine:
    """A routine: its parameters, its locals (initial values) and its steps.

    ``reach`` is the union of its steps' (what calling it can do, before expanding the
    routines and tasks it names itself).
    """

    name: str
    steps: tuple[Step, ...]
    params: tuple[str, ...] = ()
    locals: tuple[tuple[str, Any], ...] = ()
    loc: Loc | None = None
    reach: frozenset = field(default=frozenset(), compare=False, repr=False)


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
class SwapDevice:
    """The swap device and its block queue (``memory.swap.device``).

    A request for n contiguous slots costs ``seek + n * per_page`` ticks; requests that
    are adjacent while they wait in the queue merge, up to ``max_request`` pages; at
    most ``queue`` requests wait (the elevator's sorting window), and a task that finds
    the queue full waits for room.
    """

    seek: int = 10
    per_page: int = 1
    max_request: int = 16
    queue: int = 64


@dataclass(frozen=True, slots=True)
class Swap:
    """``memory.swap``: ``slots`` pages of swap space, the device, swap-in ``readahead``."""

    slots: int
    device: SwapDevice = SwapDevice()
    readahead: int = 4


@dataclass(frozen=True, slots=True)
class Memory:
    """The page pool: size, watermarks (min < low < high), kswapd, page classes (in order),
    and the swap device with its swap-out policy (``swap`` None: no swap)."""

    pages: int
    min: int
    low: int
    high: int
    kswapd: bool = False
    classes: tuple[PageClass, ...] = ()
    swap: Swap | None = None
    swapout: str = "vmscan"


@dataclass(frozen=True, slots=True)
class MapOpts:
    """``mmap`` options: ``shared`` regions are one mapping for every task (shm)."""

    shared: bool = False

    def describe(self, step: "Step") -> str:
        return f"{step.count} pages" + (" shared" if self.shared else "")


@dataclass(frozen=True, slots=True)
class TouchOpts:
    """``touch`` options: the page range ``lo..hi`` (ints or expressions; both None: the
    whole region), the ``order`` and its number ``k`` (stride; random's seed, None for a
    new permutation on every touch), ``write``, and ``think``: ticks slept after each
    page (int or expression)."""

    lo: Any = None
    hi: Any = None
    order: str = "sequential"
    k: int | None = 0
    write: bool = False
    think: Any = 0

    def describe(self, step: "Step") -> str:
        def text(v: Any) -> str:
            return v.source if isinstance(v, Expr) else str(v)
        rng = "all" if self.lo is None else (
            text(self.lo) if self.hi is self.lo else f"{text(self.lo)}..{text(self.hi)}")
        order = self.order + (f":{self.k}" if self.order in ("stride", "random")
                              and self.k is not None else "")
        return f"{rng} ({'write' if self.write else 'read'}, {order})"


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
    #: Task-local variables and their initial values (arrays as tuples).
    locals: tuple[tuple[str, Any], ...] = ()
    #: A daemon need not finish for ``ok`` (kthreads that idle until stopped).
    daemon: bool = False
    #: ``start: spawned``: created only by a ``spawn`` step (``kthread_run``).
    spawned: bool = False
    reach: frozenset = field(default=frozenset(), compare=False, repr=False)


@dataclass(frozen=True)
class Scenario:
    """A loaded, validated scenario.

    Attributes:
        path: the file as the user named it.
        content_hash: sha256 of the file bytes (traces pin it).
        locks: lock name -> kind, counted locks expanded, in file order.
        lock_classes: lock name -> lock class (lockdep groups a class into one node).
        events: event name -> kind.
        vars: initial variable values (arrays as tuples of ints).
        routines: routine name -> :class:`Routine`.
        semaphores: semaphore name -> (initial count, max or None for unbounded).
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
    vars: dict[str, Any] = field(default_factory=dict)
    routines: dict[str, Routine] = field(default_factory=dict)
    tasks: tuple[TaskSpec, ...] = ()
    #: lock name -> lockdep class, for locks declared with ``class:`` (others: own name).
    lock_classes: dict[str, str] = field(default_factory=dict)
    #: ``path`` made absolute when the file was loaded (traces record it, so a replay
    #: finds the file from elsewhere; resolved once, not per run).
    abspath: str = ""
    semaphores: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    #: Per-scenario memo of the watchdog's reachability analysis (see _kernel/_reach.py).
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
