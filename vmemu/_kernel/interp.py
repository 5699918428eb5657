"""The step interpreter: runs a scenario file's steps through a :class:`TaskContext`.

Steps that touch shared state are scheduling points (inside the context's operations,
or here for stores and loads of shared variables); control flow (``if``, ``while``,
``repeat``, ``call``, ``assert``) and work on locals are not, but every executed step is
charged to the step budget so that no loop can spin forever. Expressions read the frame
the steps run in (:class:`~.task.Frame`: locals, shared variables, the task).
"""

from __future__ import annotations

import types
from bisect import bisect_left
from typing import Any, Awaitable, Callable

from .._scenario.model import Step
from ._values import call_routine, evaluate, label, nested, read, show, store, wrap
from .context import TaskContext
from .sync import Lock, Mutex, might_sleep
from .task import BLOCKED, RUNNABLE, VerdictSignal


@types.coroutine
def run_steps(ctx: TaskContext, steps: tuple[Step, ...], times: int = 1,
              charge: bool = False) -> Any:
    """Execute ``steps`` in order in the current frame of ``ctx``'s task, ``times`` times,
    charging a step to the budget before each pass when ``charge`` is set (``repeat``).

    Awaited like a coroutine function (``await run_steps(...)``). It is a generator-based
    coroutine so that the commonest steps, ``yield`` and ``lock``/``unlock`` of a plain
    mutex nobody observes, run inline here, with the very effects of ``Kernel.checkpoint``,
    ``Lock._lock``/``Lock.release`` and the ``Kernel.block``/``wake`` of a contended
    lock (keep them in step): no coroutine of their own,
    which is most of what such a step would cost. Every other step, and these whenever
    a fault plan or an observer (lockdep, the recorder) is attached, goes through its
    handler.

    Loops pass ``times`` rather than calling this once per pass: a coroutine per pass
    would cost more than a short body's steps.
    """
    t = ctx.task
    k = ctx.k
    frame = t.stack[-1]
    faults = k.faults
    handlers = _HANDLERS
    # Fault plans and observers are attached before any task runs: decided once here.
    inline = faults is None and not k.observers
    resources = k.resources
    events = k.events          # (Kernel.emit, inlined below: the lists live for a run)
    log = k.log
    name = t.name
    for _ in range(times):
        if charge:
            k.count_step(t)
        for step in steps:
            frame.loc = step.loc
            frame.step = step
            op = step.op
            if inline:
                lock = None
                if op == "yield" or (op == "lock" or op == "unlock") and \
                        type(lock := resources.get(step.target)) is Mutex:
                    if op == "lock" and t.held:
                        might_sleep(t, "lock " + lock.name)   # type: ignore[union-attr]
                    # Kernel.checkpoint
                    if k.stopping:
                        yield from k.stopped(t)
                    if k.bare_yield:
                        yield
                    else:
                        yield from k.park(t)
                        if k.stopping:
                            yield from k.stopped(t)
                    if lock is None:
                        continue
                    if op == "lock":
                        if lock.owner is None and not lock.waiters:
                            lock.owner = t
                            t.held.append(lock)
                        else:
                            lock.waiters.append((t, "lock"))
                            # Kernel.block(t, lock, "lock"): uninterruptible, no timeout
                            # (checkpoint above: the run is not stopping).
                            k._unrun(t)
                            t.state = BLOCKED
                            t.waiting_for = lock
                            t.wait_what = "lock"
                            t.blocked_since = k.now
                            t.interruptible = False
                            blocked = k._blocked
                            blocked.pop(t.tid, None)
                            blocked[t.tid] = t
                            t.wake_value = None
                            ev = [k.now, name, "block", "lock " + lock.name, step.loc.line]
                            events.append(ev)
                            if log is not None:
                                log(ev)
                            if k.bare_yield:
                                yield
                            else:
                                yield from k.park(t)
                            if k.stopping:
                                yield from k.stopped(t)
                        ev = [k.now, name, "lock", lock.name, step.loc.line]
                        events.append(ev)
                        if log is not None:
                            log(ev)
                        continue
                    if lock.owner is not t:
                        lock._check_release(t)   # raises: not the owner
                    lock.owner = None
                    held = t.held
                    if held[-1] is lock:
                        held.pop()
                    else:
                        Lock._drop(lock, t)
                    ev = [k.now, name, "unlock", lock.name, step.loc.line]
                    events.append(ev)
                    if log is not None:
                        log(ev)
                    if lock.waiters:
                        # Lock._grant for a free mutex: the first waiter (a mutex's
                        # waiters all want it whole) takes it over.
                        w = lock.waiters.popleft()[0]
                        lock.owner = w
                        w.held.append(lock)
                        # Kernel.wake(w) by t, and its make_runnable.
                        w.wake_value = None
                        if w.timer_seq:
                            k._cancel_timer(w)
                        w.state = RUNNABLE
                        w.interruptible = False
                        k._blocked.pop(w.tid, None)
                        w.waiting_for = None
                        w.wait_what = ""
                        tids = k._runnable_tids
                        at = bisect_left(tids, w.tid)
                        tids.insert(at, w.tid)
                        k.runnable.insert(at, w)
                        ev = [k.now, name, "wake", w.name, step.loc.line]
                        events.append(ev)
                        if log is not None:
                            log(ev)
                    continue
            elif faults is not None:
                action = faults.at("step", t)
                if action is not None:
                    yield from k.apply_action(t, action)
            yield from handlers[op](ctx, step)


def _eval(ctx: TaskContext, step: Step) -> int:
    return evaluate(ctx.task.stack[-1], step.expr, step)


def _n(ctx: TaskContext, s: Step) -> int:
    """The step's number: its constant, or its expression's value now."""
    return s.n if s.n_expr is None else evaluate(ctx.task.stack[-1], s.n_expr, s)


def _ticks(ctx: TaskContext, s: Step) -> int:
    n = _n(ctx, s)
    if n < 0:
        raise VerdictSignal("bug", f"BUG: {ctx.name}: {s.op} of {n} ticks at {s.loc}")
    return n


# The hottest handlers return the primitive's awaitable instead of awaiting it in a
# coroutine of their own: one coroutine frame less per lock, unlock and yield step.
# They also look the lock up themselves (ctx.lock() only when that fails, for its error).
def _lock(ctx: TaskContext, s: Step) -> Awaitable[None]:
    lock = ctx.k.resources.get(s.target)
    if not isinstance(lock, Lock):
        lock = ctx.lock(s.target)
    return lock._lock("lock")


def _unlock(ctx: TaskContext, s: Step) -> Awaitable[None]:
    lock = ctx.k.resources.get(s.target)
    if not isinstance(lock, Lock):
        lock = ctx.lock(s.target)
    return lock.release()


def _read_lock(ctx: TaskContext, s: Step) -> Awaitable[None]:
    return ctx.rwsem(s.target)._lock("read_lock")


def _read_unlock(ctx: TaskContext, s: Step) -> Awaitable[None]:
    return ctx.rwsem(s.target).release_read()


async def _trylock(ctx: TaskContext, s: Step) -> None:
    lock = ctx.lock(s.target)
    await ctx.k.checkpoint(ctx.task)
    ctx.task.ok = int(lock.try_acquire())


async def _alloc(ctx: TaskContext, s: Step) -> None:
    h = await ctx.alloc(_n(ctx, s), s.gfp, may_fail=s.may_fail)
    if s.as_ is not None:
        ctx.task.handles[s.as_] = h


async def _free(ctx: TaskContext, s: Step) -> None:
    handles = ctx.task.handles
    if s.target not in handles:
        raise VerdictSignal("bug", f"BUG: {ctx.name}: free of {s.target!r}, which this task "
                            f"does not hold (double free?) at {s.loc}")
    await ctx.free(handles.pop(s.target))


async def _fill(ctx: TaskContext, s: Step) -> None:
    await ctx.fill(s.target, _n(ctx, s))


async def _mmap(ctx: TaskContext, s: Step) -> None:
    await ctx.mmap(s.target, _n(ctx, s), shared=s.opts.shared)


async def _touch(ctx: TaskContext, s: Step) -> None:
    o = s.opts
    frame = ctx.task.stack[-1]

    def value(v: Any) -> Any:
        return v if v is None or isinstance(v, int) else evaluate(frame, v, s)
    lo = value(o.lo)
    hi = lo if o.hi is o.lo else value(o.hi)
    mm = ctx._mm()
    await mm.address_space().touch(ctx.task, s.target, lo, hi, o.order, o.k, o.write,
                                   value(o.think))


async def _io(ctx: TaskContext, s: Step) -> None:
    await ctx.io(_ticks(ctx, s))


async def _sleep(ctx: TaskContext, s: Step) -> None:
    await ctx.sleep(_ticks(ctx, s))


def _yield(ctx: TaskContext, s: Step) -> Awaitable[None]:
    return ctx.k.checkpoint(ctx.task)


async def _call(ctx: TaskContext, s: Step) -> None:
    t = ctx.task
    ctx.k.count_step(t)
    frame = t.stack[-1]
    args = {p: v if isinstance(v, int) else evaluate(frame, v, s) for p, v in s.args}
    result = await call_routine(ctx, ctx.k.scenario.routines[s.target], args, s.loc)
    if s.as_place is not None:
        if s.as_place.shared:
            await ctx.k.checkpoint(t)
            store(frame, s.as_place, result, s)
            ctx.k.emit(t, "set", f"{label(frame, s.as_place, s)}={wrap(result)}")
        else:
            store(frame, s.as_place, result, s)


async def _return(ctx: TaskContext, s: Step) -> None:
    from ._values import Return
    frame = ctx.task.stack[-1]
    raise Return(0 if s.expr is None else evaluate(frame, s.expr, s))


async def _flags(ctx: TaskContext, s: Step) -> None:
    ctx.k.count_step(ctx.task)
    with ctx.flags(*s.flags):
        await run_steps(ctx, s.body)


async def _wait(ctx: TaskContext, s: Step) -> None:
    with_lock = ctx.lock(s.with_lock) if s.with_lock else None
    timeout = None
    if s.timeout is not None:
        timeout = evaluate(ctx.task.stack[-1], s.timeout, s)
        if timeout < 0:
            raise VerdictSignal("bug", f"BUG: {ctx.name}: wait with a timeout of {timeout} "
                                f"ticks at {s.loc}")
    await ctx.event(s.target).wait(with_lock, state=s.state, timeout=timeout)


async def _signal(ctx: TaskContext, s: Step) -> None:
    await ctx.event(s.target).signal()


async def _broadcast(ctx: TaskContext, s: Step) -> None:
    await ctx.event(s.target).broadcast()


async def _complete(ctx: TaskContext, s: Step) -> None:
    await ctx.event(s.target).complete()


async def _set(ctx: TaskContext, s: Step) -> None:
    t = ctx.task
    if not s.shared:
        ctx.k.count_step(t)          # locals only: no scheduling point, no event
        frame = t.stack[-1]
        for place, value in s.assign:
            store(frame, place, value if isinstance(value, int) else
                  evaluate(frame, value, s), s)
        return
    await ctx.k.checkpoint(t)
    frame = t.stack[-1]
    shown = []
    for place, value in s.assign:
        v = wrap(value if isinstance(value, int) else evaluate(frame, value, s))
        shown.append(f"{label(frame, place, s)}={v}")
        store(frame, place, v, s)
    ctx.k.emit(t, "set", ", ".join(shown))


async def _add(ctx: TaskContext, s: Step) -> None:
    t = ctx.task
    if s.shared:
        await ctx.k.checkpoint(t)
    else:
        ctx.k.count_step(t)
    frame = t.stack[-1]
    shown = []
    for place, value in s.assign:
        delta = value if isinstance(value, int) else evaluate(frame, value, s)
        v = wrap(read(frame, place, s) + delta)
        shown.append(f"{label(frame, place, s)}+={delta} -> {v}")
        store(frame, place, v, s)
    if s.shared:
        ctx.k.emit(t, "add", ", ".join(shown))


async def _load(ctx: TaskContext, s: Step) -> None:
    t = ctx.task
    await ctx.k.checkpoint(t)
    frame = t.stack[-1]
    shown = []
    for dst, src in s.assign:
        v = read(frame, src, s)
        store(frame, dst, v, s)
        shown.append(f"{label(frame, src, s)} -> {dst.name}={v}")
    ctx.k.emit(t, "load", ", ".join(shown))


async def _cmpxchg(ctx: TaskContext, s: Step) -> None:
    t = ctx.task
    await ctx.k.checkpoint(t)
    frame = t.stack[-1]
    old, new = evaluate(frame, s.expr, s), wrap(evaluate(frame, s.expr2, s))
    seen = read(frame, s.place, s)
    t.ok = int(seen == old)
    if t.ok:
        store(frame, s.place, new, s)
    if s.as_place is not None:
        store(frame, s.as_place, seen, s)
    ctx.k.emit(t, "cmpxchg", f"{label(frame, s.place, s)} {old}->{new} "
               + ("ok" if t.ok else f"failed (saw {seen})"))


async def _xchg(ctx: TaskContext, s: Step) -> None:
    await _rmw(ctx, s, lambda seen, v: v)


async def _fetch_add(ctx: TaskContext, s: Step) -> None:
    await _rmw(ctx, s, lambda seen, v: seen + v)


async def _rmw(ctx: TaskContext, s: Step, fn: Callable[[int, int], int]) -> None:
    """An atomic read-modify-write: store ``fn(old, value)``, ``as:`` gets the old value."""
    t = ctx.task
    await ctx.k.checkpoint(t)
    frame = t.stack[-1]
    value = evaluate(frame, s.expr, s)
    seen = read(frame, s.place, s)
    new = wrap(fn(seen, value))
    store(frame, s.place, new, s)
    if s.as_place is not None:
        store(frame, s.as_place, seen, s)
    ctx.k.emit(t, s.op, f"{label(frame, s.place, s)} {seen}->{new}")


async def _assert(ctx: TaskContext, s: Step) -> None:
    ctx.k.count_step(ctx.task)
    if not _eval(ctx, s):
        shown = show(ctx.task.stack[-1], s.expr.names)
        raise VerdictSignal("assertion", f"assertion failed: {s.expr.source!r} at {s.loc}"
                            + (f" ({shown})" if shown else ""))


async def _if(ctx: TaskContext, s: Step) -> None:
    t = ctx.task
    ctx.k.count_step(t)
    body = s.body if _eval(ctx, s) else s.orelse
    frame = t.stack[-1]
    nested(t, s.loc)
    try:
        await run_steps(ctx, body)
    finally:
        t.nest -= 1
    frame.loc, frame.step = s.loc, s


async def _repeat(ctx: TaskContext, s: Step) -> None:
    t = ctx.task
    frame = t.stack[-1]
    n = _n(ctx, s)
    nested(t, s.loc)
    try:
        if s.as_place is None:
            await run_steps(ctx, s.body, n, charge=True)
        else:
            index = s.as_place.name
            for i in range(n):
                ctx.k.count_step(t)
                frame.locals[index] = i
                await run_steps(ctx, s.body)
    finally:
        t.nest -= 1
    frame.loc, frame.step = s.loc, s


async def _while(ctx: TaskContext, s: Step) -> None:
    t = ctx.task
    frame = t.stack[-1]
    nested(t, s.loc)
    try:
        while True:
            frame.loc, frame.step = s.loc, s
            ctx.k.count_step(t)
            if not _eval(ctx, s):
                break
            await run_steps(ctx, s.body)
    finally:
        t.nest -= 1


async def _point(ctx: TaskContext, s: Step) -> None:
    await ctx.point(s.target)


def _task_name(ctx: TaskContext, s: Step) -> str:
    if s.target is not None:
        return s.target
    frame = ctx.task.stack[-1]
    return "".join(p if isinstance(p, str) else str(evaluate(frame, p, s))
                   for p in s.name_parts)


async def _spawn(ctx: TaskContext, s: Step) -> None:
    await ctx.spawn(_task_name(ctx, s))


async def _join(ctx: TaskContext, s: Step) -> None:
    await ctx.join(_task_name(ctx, s))


async def _stop(ctx: TaskContext, s: Step) -> None:
    await ctx.stop(_task_name(ctx, s))


_HANDLERS: dict[str, Callable[[TaskContext, Step], Awaitable[Any]]] = {
    "lock": _lock, "unlock": _unlock, "read_lock": _read_lock, "read_unlock": _read_unlock,
    "trylock": _trylock, "alloc": _alloc, "free": _free, "fill": _fill, "mmap": _mmap,
    "touch": _touch, "io": _io,
    "sleep": _sleep, "yield": _yield, "call": _call, "flags": _flags, "wait": _wait,
    "signal": _signal, "broadcast": _broadcast, "complete": _complete, "set": _set,
    "add": _add, "assert": _assert, "if": _if, "repeat": _repeat, "while": _while,
    "point": _point, "load": _load, "cmpxchg": _cmpxchg, "xchg": _xchg,
    "fetch_add": _fetch_add, "return": _return, "spawn": _spawn, "join": _join,
    "stop": _stop,
}
