"""Lincheck-style interleaving tables in failure reports."""

from __future__ import annotations

import re
import textwrap

from conftest import CONTRACT, seed_reaching, vmemu_cli
from vmemu._run import run
from vmemu._table import MAX_ROWS, render_table

ABBA = str(CONTRACT / "abba.yaml")
ABBA_SEED = seed_reaching(ABBA, "deadlock")  # a schedule that deadlocks
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def body(table: str) -> list[str]:
    """The table's event rows (after the header rule, before the verdict line), a wrapped
    cell's continuation lines (no mark, no tick) joined to their row."""
    lines = table.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("-----")) + 1
    out: list[str] = []
    for ln in lines[start:]:
        if ln.startswith("verdict:"):
            continue
        head, *cells = ln.split("|")
        if head.strip() or not out:
            out.append(ln)
            continue
        prev_head, *prev = out[-1].split("|")
        prev += [""] * (len(cells) - len(prev))
        out[-1] = "|".join([prev_head] + [p.rstrip() + " " + c.strip() if c.strip() else p
                                          for p, c in zip(prev, cells)])
    return out


def column_of(table: str, row: str) -> str:
    """Which task column a row's cell sits in (by the header's column positions)."""
    header = next(ln for ln in table.splitlines() if "tick |" in ln)
    names = [n.strip() for n in header.split("|")[1:]]
    cells = [c.strip() for c in row.split("|")[1:]]
    [name] = [n for n, c in zip(names, cells) if c]
    return name


def scenario(tmp_path, text: str) -> str:
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(p)


def test_deadlock_table_has_a_column_per_task_and_marks_the_blocks():
    r = run(ABBA, seed=ABBA_SEED)
    assert r.verdict == "deadlock"
    table = render_table(r, rich=False)
    header = next(ln for ln in table.splitlines() if "tick |" in ln)
    assert header.split("|")[1].strip() == "t1" and header.split("|")[2].strip() == "t2"
    rows = body(table)
    events = [ev for ev in r.trace.events if ev[2] != "verdict"]
    assert len(rows) == len(events)
    for row, ev in zip(rows, events):
        assert column_of(table, row) == ev[1]
        assert f"{ev[2]} {ev[3]} :{ev[4]}" in row
    # Both tasks block forever: exactly their `block` rows are highlighted.
    forever = [row for row in rows if row.startswith("!!")]
    assert len(forever) == 2 and all("block lock" in row for row in forever)
    assert table.splitlines()[-1].startswith("verdict: deadlock (wait-for cycle")


def test_switch_points_are_marked_where_the_running_task_changes(tmp_path):
    path = scenario(tmp_path, """
        name: switches
        vars: {x: 0}
        tasks:
          a: [{set: {x: 1}}, {set: {x: 2}}, yield, {set: {x: 3}}]
          b: [{set: {x: 4}}, yield, {set: {x: 5}}, {assert: "x == 0"}]
        """)
    r = run(path, seed=3)
    table = render_table(r, rich=False)
    rows = body(table)
    tasks = [ev[1] for ev in r.trace.events if ev[2] != "verdict"]
    switches = [i for i in range(1, len(tasks)) if tasks[i] != tasks[i - 1]]
    assert switches, "this seed must interleave the two tasks"
    marked = [i for i, row in enumerate(rows) if row.startswith("->")]
    if r.verdict == "assertion":
        rows = rows[:-1]       # the failing row is marked XX instead
    assert marked == [i for i in switches if not rows[i].startswith(("!!", "XX"))]


def test_a_bug_gets_a_failing_row_in_the_culprits_column():
    r = run(str(CONTRACT / "sleep_under_spinlock.yaml"))
    table = render_table(r, rich=False)
    last = body(table)[-1]
    assert last.startswith("XX") and column_of(table, last) == "t"
    path = CONTRACT / "sleep_under_spinlock.yaml"
    alloc = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if "alloc:" in ln)
    assert "BUG: sleeping function" in last and last.rstrip().endswith(f":{alloc}")


def test_a_hang_highlights_the_hung_tasks_block(tmp_path):
    path = scenario(tmp_path, """
        name: hang
        locks: {A: mutex}
        tasks:
          holder: [{lock: A}, {sleep: 2000}, {unlock: A}]
          waiter: [{sleep: 1}, {lock: A}, {unlock: A}]
        """)
    r = run(path)
    assert r.verdict == "hang"
    [row] = [row for row in body(render_table(r, rich=False)) if row.startswith("!!")]
    assert "block lock A" in row and column_of(render_table(r, rich=False), row) == "waiter"


def test_long_schedules_show_the_last_rows_with_a_note(tmp_path):
    path = scenario(tmp_path, """
        name: long
        locks: {A: mutex}
        tasks:
          spinner:
            - repeat: 60
              do: [{lock: A}, {unlock: A}]
            - assert: "0 == 1"
        """)
    r = run(path)
    table = render_table(r, rich=False)
    rows = body(table)
    total = len([ev for ev in r.trace.events if ev[2] != "verdict"]) + 1   # + the XX row
    assert len(rows) == MAX_ROWS
    assert f"(the first {total - MAX_ROWS} events are not shown)" in table
    assert rows[-1].startswith("XX") and "assertion failed" in rows[-1]


def test_rich_table_is_styled_and_plain_is_not():
    r = run(ABBA, seed=ABBA_SEED)
    plain = render_table(r, rich=False)
    styled = render_table(r, rich=True)
    assert not ANSI.search(plain)
    assert ANSI.search(styled)
    # Same steps either way: every cell of the plain table appears in the styled one.
    text = ANSI.sub("", styled)
    for row in body(plain):
        cell = next(c.strip() for c in row.split("|")[1:] if c.strip())
        assert cell in text


def test_cli_failure_report_includes_the_plain_table_when_not_a_tty():
    p = vmemu_cli("run", ABBA, "--seed", str(ABBA_SEED))
    assert p.returncode == 1 and not ANSI.search(p.stdout)
    assert "interleaving: 4 events of 2 tasks" in p.stdout
    assert p.stdout.rstrip().splitlines()[-1].startswith("replay: vmemu ")


def test_ok_report_has_no_table():
    r = run(str(CONTRACT / "abba_ordered.yaml"))
    assert r.verdict == "ok" and "interleaving" not in r.report()
