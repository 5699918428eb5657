"""Lockdep-shaped text reports (``kernel/locking/lockdep.c``'s ``print_circular_bug``,
``print_deadlock_bug`` and ``print_unlock_imbalance_bug``), with scenario lines and
emulated stacks where the kernel prints return addresses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .graph import PSEUDO_LOCKS, BadUnlock, Edge, Held, Occurrence, Recursion, _where

if TYPE_CHECKING:  # pragma: no cover
    from .._result import Result
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
    for r in res.observed:
        out += [""] + observed(r)
    out.append("")
    parts = [_count(len(res.cycles), "possible circular locking dependency",
                    "possible circular locking dependencies"),
             _count(len(g.recursions), "possible recursive locking", "possible recursive "
                    "lockings"),
             _count(len(g.bad_unlocks), "bad unlock balance", "bad unlock balances"),
             _count(len(res.observed), "deadlock seen in a schedule",
                    "deadlocks seen in schedules")]
    if res.found:
        out.append("vmemu lockdep: found " + ", ".join(p for p in parts if p[0] != "0"))
    else:
        out.append("vmemu lockdep: no lock-order problems found")
    return "\n".join(out)


def circular(c: "Cycle", res: "LockdepResult") -> list[str]:
    """One ``possible circular locking dependency detected`` report."""
    kinds = res.graph.kinds
    edges = c.edges
    new = edges[-1]
    occ = new.first
    out = _banner("WARNING: possible circular locking dependency detected")
    if new.src_mode == "signal":
        out += [f"{occ.task} is about to {_verb(kinds, new.src)} event:",
                f"  {_lock(new.src, '', kinds)} at {occ.where()}", "",
                f"but task already {_got(new.dst_mode, kinds, new.dst)}:",
                f"  {_lock(new.dst, new.dst_mode, kinds)} at "
                f"{new.via.where() if new.via else occ.where()}", ""]
    else:
        out += _trying(occ.task, f"{_lock(new.dst, new.dst_mode, kinds)} at {occ.where()}",
                       f"{_lock(new.src, new.src_mode, kinds)} at "
                       f"{_held_where(occ, new.src)}",
                       "wait for event" if new.dst_mode == "wait" else "acquire lock")
    out += ["which lock already depends on the new lock.", "",
            "the existing dependency chain (in reverse order) is:", ""]
    for i, e in enumerate(edges):
        out += [f"-> #{len(edges) - 1 - i} {_lock(e.dst, e.dst_mode, kinds)}:"]
        out += ["       " + line for line in _edge_lines(e, kinds)]
    out += ["", "other info that might help us debug this:", "",
            " Chain exists of:",
            "   " + " --> ".join(c.locks + [c.locks[0]]), "",
            " Possible unsafe locking scenario:", ""]
    # Lockdep's CPU0 is the task closing the cycle; each other edge is one more task. A
    # signaller's column has only the step that blocks it (before it would signal).
    cols = [new] + edges[:-1]
    phase1 = [(i, _op(e.src_mode, e.src, kinds)) for i, e in enumerate(cols)
              if e.src_mode != "signal"]
    phase2 = [(i, _op(e.dst_mode, e.dst, kinds)
               + (f" /* before {_verb(kinds, e.src)}({e.src}) */"
                  if e.src_mode == "signal" else ""))
              for i, e in reversed(list(enumerate(cols)))]
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


def _trying(task: str, wanted: str, held: str, what: str = "acquire lock") -> list[str]:
    """lockdep's opening: the lock a task is trying to take and the one it holds."""
    return [f"{task} is trying to {what}:", f"  {wanted}", "",
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


def observed(r: "Result") -> list[str]:
    """A learning schedule that deadlocked (or hung) in a way no prediction explains."""
    out = _banner(f"WARNING: a schedule ended in {r.verdict}, which no lock-order cycle "
                  "above explains")
    out += [r.message]
    if r.cycle:
        out += ["", "wait-for cycle:"] + [f"  {c['text']}" for c in r.cycle]
    out += ["", f"replay: {r.replay_command()}"]
    return out


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


_EVENTS = ("waitqueue", "completion")


def _lock(name: str, mode: str, kinds: dict[str, str] | None = None) -> str:
    kind = (kinds or {}).get(name)
    if kind in _EVENTS:
        return f"({kind} {name})"
    return f"({name})" + ("{read}" if mode == "read" else "")


def _verb(kinds: dict[str, str], name: str) -> str:
    """What signalling this event is called: ``complete`` or ``wake_up``."""
    return "complete" if kinds.get(name) == "completion" else "wake_up"


def _got(mode: str, kinds: dict[str, str], name: str) -> str:
    if mode == "wait":
        return "waited for event"
    return "passed a reclaim point" if kinds.get(name) == "pseudo" else "took lock"


def _op(mode: str, name: str, kinds: dict[str, str] | None = None) -> str:
    if mode == "wait":
        kind = (kinds or {}).get(name)
        return f"{'wait_for_completion' if kind == 'completion' else 'wait_event'}({name});"
    return f"{'rlock' if mode == 'read' else 'lock'}({name});"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _held_where(occ: Occurrence, lock: str) -> str:
    for h in reversed(occ.held):
        if h.lock == lock:
            return h.where()
    return occ.where()   # pragma: no cover - an edge's source is always held


def _edge_lines(e: Edge, kinds: dict[str, str] | None = None) -> list[str]:
    kinds = kinds or {}
    occ = e.first
    if e.src_mode == "signal":
        got = ("waited for " + _lock(e.dst, "wait", kinds) if e.dst_mode == "wait" else
               f"passed {e.dst} (an allocation that may enter reclaim)"
               if kinds.get(e.dst) == "pseudo" else
               f"{'read-took' if e.dst_mode == 'read' else 'took'} {e.dst}")
        head = (f"{occ.task} {got} before it signalled {_lock(e.src, '', kinds)} "
                f"[{occ.run}]")
        taken = [f"{e.dst} at {e.via.where()}"] if e.via is not None else []
        lines = taken + ["signalled " + ln for ln in _stack_lines(occ)[:1]] + \
            _stack_lines(occ)[1:]
    else:
        verb = ("waited for" if e.dst_mode == "wait" else
                "read-took" if e.dst_mode == "read" else "took")
        dst = _lock(e.dst, e.dst_mode, kinds) if e.dst_mode == "wait" else e.dst
        head = (f"{occ.task} {verb} {dst} while holding {e.src}"
                + (" for read" if e.src_mode == "read" else "") + f" [{occ.run}]")
        lines = _stack_lines(occ)
    seen = [f"schedule: {occ.replay}"] if occ.replay else []
    return [head] + lines + seen


def _stack_lines(occ: Occurrence) -> list[str]:
    out = []
    for depth, (frame, at, step) in enumerate(reversed(occ.stack)):
        out.append(f"{'at' if depth == 0 else 'in'} {_where(frame, at, step)}")
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
