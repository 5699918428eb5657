"""Property tests over generated programs with locals, arrays and atomics.

- An atomic ``fetch_add`` counter shared by N tasks ends at the exact sum of their
  increments on every schedule, whatever local work and yields the tasks do in between,
  and each task's private array slot keeps exactly what it stored.
- The same program with ``counter++`` written as a ``load`` and a ``set`` can lose an
  update, and exploration finds a schedule where it does.
"""

from __future__ import annotations

import textwrap

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vmemu

# One task's program: increments, each with some local-only work before it.
increment = st.tuples(st.integers(-5, 9), st.integers(0, 2), st.booleans())
program = st.lists(increment, min_size=1, max_size=4)


def _scenario(programs: list[list[tuple[int, int, bool]]], atomic: bool) -> str:
    n = len(programs)
    total = sum(v for prog in programs for v, _, _ in prog)
    tasks = []
    for i, prog in enumerate(programs):
        steps = []
        for v, local_work, yields in prog:
            steps += ["- add: {mine: 1}"] * local_work        # locals only
            steps.append('- set: {"scratch[0]": "mine % 3"}')
            if yields:
                steps.append("- yield")
            if atomic:
                steps.append(f"- fetch_add: {{var: counter, value: {v}, as: old}}")
            else:
                steps += ["- load: {old: counter}", f"- set: {{counter: \"old + {v}\"}}"]
        steps.append(f"- set: {{\"slots[{i}]\": \"{i} * 100 + mine\"}}")
        body = textwrap.indent("\n".join(steps), " " * 6)
        tasks.append(f"  w{i}:\n    start: spawned\n"
                     f"    locals: {{mine: 0, old: 0, scratch: [0, 0]}}\n    steps:\n{body}")
    expect_slots = " and ".join(
        f"slots[{i}] == {i * 100 + sum(w for _, w, _ in prog)}"
        for i, prog in enumerate(programs))
    joins = "\n".join(f"      - join: w{i}" for i in range(n))
    spawns = "\n".join(f"      - spawn: w{i}" for i in range(n))
    return f"""
vars: {{counter: 0, slots: [{", ".join("0" for _ in range(n))}]}}
tasks:
  main:
    steps:
{spawns}
{joins}
      - assert: "counter == {total} and {expect_slots}"
""" + "\n".join(tasks) + "\n"


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(programs=st.lists(program, min_size=2, max_size=4))
def test_an_atomic_counter_ends_at_the_exact_sum_on_every_schedule(programs, tmp_path):
    path = tmp_path / "atomic.yaml"
    path.write_text(_scenario(programs, atomic=True))
    sc = vmemu.load(str(path))
    for seed in range(8):
        for strategy in ("random", "pct"):
            r = vmemu.run(sc, seed=seed, strategy=strategy, driver="direct")
            assert r.verdict == "ok", (r.message, path.read_text())


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(programs=st.lists(st.lists(increment.filter(lambda x: x[0] != 0), min_size=1,
                                  max_size=3), min_size=2, max_size=3))
def test_a_load_and_set_counter_loses_updates_and_exploration_finds_it(programs, tmp_path):
    path = tmp_path / "racy.yaml"
    path.write_text(_scenario(programs, atomic=False))
    x = vmemu.explore(str(path), runs=500, driver="direct")
    assert x.verdict == "assertion", path.read_text()
    assert "counter" in x.result.message
    # ... and the finding replays.
    assert vmemu.replay(x.result.trace).trace_hash == x.result.trace_hash
