"""Lockdep-shaped text reports (``kernel/locking/lockdep.c``'s ``print_circular_bug``,
``print_deadlock_bug`` and ``print_unlock_imbalance_bug``), with scenario lines and
emulated stacks where the kernel prints return addresses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .graph import PSEUDO_LOCKS, BadUnlock, Edge, Held, Occurrence, Recursion

if TYPE_CHECKING:  # pragma: no cover
    from .learn import Cycle, LockdepResult


def render(res: "LockdepResult") -> str:
    """The whole text report of a lockdep session."""
    g = res.graph
    sc = res.scenario
    learned = (f"{res.runs} schedule{'s' if res.runs != 1 else ''} "
               f"(exploration seed {res.seed})")
    if res.synthetic:
        learned += " + synthetic writeback of " + ", ".join(res.synthetic)
    shown = ", ".join(f"{v} {n}" for v, n in res.verdicts.items())
    out = [f"vmemu lockdep: {sc.name} ({sc.path})",
           f"  learned from {learned}: {_count(len(g.locks), 'lock', 'locks')}, "
           f"{_count(len(g.edges), 'dependency', 'dependencies')}",
           f"  schedules: {shown}"]
    for c in res.cycles:
        out += [""] + circular(c, res)
    if res.cut:
        out += ["", "(more cycles exist; only the first ones are listed)"]
    for r in g.recursions.values():
        out += [""] + recursive(r, res)
    for b in g.bad_unlocks.values():
        out += [""] + bad_unlock(b)
    out.append("")
    parts = [_count(len(res.cycles), "possible circular locking dependency",
                    "possible circular locking dependencies"),
             _count(len(g.recursions), "possible recursive locking", "possible recursive "
                    "lockings"),
             _count(len(g.bad_unlocks), "bad unlock balance", "bad unlock balances")]
    if res.found:
        out.append("vmemu lockdep: found " + ", ".join(p for p in parts if p[0] != "0"))
    else:
        out.append("vmemu lockdep: no lock-order problems found")
    return "\n".join(out)


def circular(c: "Cycle", res: "LockdepResult") -> list[str]:
    """One ``possible circular locking dependency detected`` report."""
    edges = c.edges
    new = edges[-1]
    occ = new.first
    out = _banner("WARNING: possible circular locking dependency detected")
    out += _trying(occ.task, f"{_lock(new.dst, new.dst_mode)} at {occ.where()}",
                   f"{_lock(new.src, new.src_mode)} at {_held_where(occ, new.src)}")
    out += ["which lock already depends on the new lock.", "",
            "the existing dependency chain (in reverse order) is:", ""]
    for i, e in enumerate(edges):
        out += [f"-> #{len(edges) - 1 - i} {_lock(e.dst, e.dst_mode)}:"]
        out += ["       " + line for line in _edge_lines(e)]
    out += ["", "other info that might help us debug this:", "",
            " Chain exists of:",
            "   " + " --> ".join(c.locks + [c.locks[0]]), "",
            " Possible unsafe locking scenario:", ""]
    # Lockdep's CPU0 is the task closing the cycle; each other edge is one more task.
    cols = [new] + edges[:-1]
    phase1 = [(i, _op(e.src_mode, e.src)) for i, e in enumerate(cols)]
    phase2 = [(i, _op(e.dst_mode, e.dst)) for i, e in reversed(list(enumerate(cols)))]
    out += _scenario_table([e.first.task for e in cols], phase1 + phase2)
    out += ["", " *** DEADLOCK ***", ""]
    out += _held_list(occ)
    out.append("")
    out.append(_outcome(c.replay, c.confirmed_by, "these locks", res,
                        "this is a prediction from the lock order (see docs/lockdep.md)"))
    if c.needs_writer:
        names = ", ".join(c.needs_writer)
        out.append(f"note: no task takes {names} for write; rwsem readers do not recurse, so "
                   "this cycle blocks as soon as a writer queues on it")
    pseudo = [n for n in c.locks if n in PSEUDO_LOCKS]
    if pseudo:
        out.append(f"note: {', '.join(pseudo)} is reclaim as a pseudo-lock: an allocation "
                   "that may enter reclaim under its GFP context takes it, and a writeback "
                   "routine runs holding it; fix with GFP_NOFS/GFP_NOIO or a "
                   "PF_MEMALLOC_NOFS/NOIO scope around the allocation")
    return out


def _trying(task: str, wanted: str, held: str) -> list[str]:
    """lockdep's opening: the lock a task is trying to take and the one it holds."""
    return [f"{task} is trying to acquire lock:", f"  {wanted}", "",
            "but task is already holding lock:", f"  {held}", ""]


def recursive(r: Recursion, res: "LockdepResult") -> list[str]:
    """One ``possible recursive locking detected`` report (AA)."""
    occ = r.first
    out = _banner("WARNING: possible recursive locking detected")
    out += _trying(occ.task, f"{_lock(r.lock, r.mode)} at {occ.where()}",
                   f"{_lock(r.lock, r.held.mode)} at {r.held.where()}")
    out += ["other info that might help us debug this:",
            " Possible unsafe locking scenario:", ""]
    out += _scenario_table([occ.task], [(0, _op(r.held.mode, r.lock)), (0, _op(r.mode, r.lock))])
    out += ["", " *** DEADLOCK ***", ""]
    if r.held.mode == "read" and r.mode == "read":
        out += [" rwsem readers do not recurse: a writer that queues between the two "
                "read_locks blocks the second one behind itself.", ""]
    out += _held_list(occ)
    out += ["", "stack:"] + ["  " + s for s in _stack_lines(occ)]
    out.append("")
    out.append(_outcome(r.replay, r.confirmed_by, r.lock, res,
                        "this is a prediction (see docs/lockdep.md)"))
    return out


def _outcome(replay: str | None, by: str | None, what: str, res: "LockdepResult",
             prediction: str) -> str:
    """The last line of a report: whether some schedule really deadlocked on ``what``."""
    from .learn import CONFIRM_FAULTS
    search = f"{res.confirm} schedules " + (
        "with lock preemptions and low memory"
        if res.confirm_faults == str(CONFIRM_FAULTS) else
        f"under {res.confirm_faults or 'the fault plan'}")
    if replay and by == "targeted":
        return f"reproduced by a targeted search of {search}; replay: {replay}"
    if replay:
        return f"reproduced: a schedule deadlocked on {what}; replay: {replay}"
    tried = f"none of the {res.runs} schedules"
    if res.confirm:
        tried += f" nor of {search}"
    return f"not reproduced: {tried} deadlocked on {what}; {prediction}"


def bad_unlock(b: BadUnlock) -> list[str]:
    """One ``bad unlock balance detected!`` report (double unlock, unlock not held)."""
    occ = b.first
    out = _banner("WARNING: bad unlock balance detected!")
    out += [f"{occ.task} is trying to release lock ({b.lock}) at:",
            f"  {occ.where()}",
            "but there are no more locks to release!", "",
            "other info that might help us debug this:"]
    out += _held_list(occ)
    out += ["", "stack:"] + ["  " + s for s in _stack_lines(occ)]
    out += ["", f"the run ends with: BUG: {occ.task}: {b.message}"]
    if b.replay:
        out.append(f"replay: {b.replay}")
    return out


# ---------------------------------------------------------------- pieces

def _banner(title: str) -> list[str]:
    return ["=" * len(title), title, "-" * len(title)]


def _lock(name: str, mode: str) -> str:
    return f"({name})" + ("{read}" if mode == "read" else "")


def _op(mode: str, name: str) -> str:
    return f"{'rlock' if mode == 'read' else 'lock'}({name});"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _held_where(occ: Occurrence, lock: str) -> str:
    for h in reversed(occ.held):
        if h.lock == lock:
            return h.where()
    return occ.where()   # pragma: no cover - an edge's source is always held


def _edge_lines(e: Edge) -> list[str]:
    occ = e.first
    verb = "read-took" if e.dst_mode == "read" else "took"
    head = (f"{occ.task} {verb} {e.dst} while holding {e.src}"
            + (" for read" if e.src_mode == "read" else "") + f" [{occ.run}]")
    seen = [f"schedule: {occ.replay}"] if occ.replay else []
    return [head] + _stack_lines(occ) + seen


def _stack_lines(occ: Occurrence) -> list[str]:
    out = []
    for depth, (frame, at, step) in enumerate(reversed(occ.stack)):
        where = frame + (f" ({at})" if at else "") + (f": {step}" if step else "")
        out.append(f"{'at' if depth == 0 else 'in'} {where}")
    return out


def _held_list(occ: Occurrence) -> list[str]:
    held: list[Held] = list(occ.held)
    if not held:
        return [f"no locks held by {occ.task}."]
    out = [f"{len(held)} lock{'s' if len(held) != 1 else ''} held by {occ.task}:"]
    for i, h in enumerate(held):
        out.append(f" #{i}: {_lock(h.lock, h.mode)} at {h.where()}")
    return out


def _scenario_table(tasks: list[str], rows: list[tuple[int, str]]) -> list[str]:
    """Lockdep's "unsafe locking scenario", one column per task (names made unique)."""
    heads: list[str] = []
    for name in tasks:
        n, h = 1, name
        while h in heads:
            n += 1
            h = f"{name} #{n}"
        heads.append(h)
    width = max([len(h) for h in heads] + [len(op) for _, op in rows]) + 4
    out = ["  " + "".join(h.ljust(width) for h in heads).rstrip(),
           "  " + "".join(("-" * len(h)).ljust(width) for h in heads).rstrip()]
    for col, op in rows:
        out.append("  " + " " * (width * col) + op)
    return out
