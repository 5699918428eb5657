"""The shipped scenarios (scenarios/*.yaml) and fault plans (faults/*.yaml): each reaches
its `expect`, each fix is what makes its scenario pass, and each plan does what it says."""

from __future__ import annotations

import pytest

import vmemu
from conftest import ROOT, vmemu_cli
from vmemu._faults import load_fault_plan

SCENARIOS = ROOT / "scenarios"
FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_check_scenarios_folder_passes():
    p = vmemu_cli("check", "scenarios/", "--runs", "200")
    assert p.returncode == 0, p.stdout + p.stderr
    # What `check` picks up: the folder, recursively (selftest/, lockdep/, python/ ...).
    n = len(list(SCENARIOS.rglob("*.yaml"))) + len(list(SCENARIOS.rglob("*.py")))
    assert f"{n} of {n} scenarios as expected" in p.stdout
    assert len(FILES) >= 13


def test_readme_first_command_shows_the_1999_deadlock():
    p = vmemu_cli("check", "-v", "scenarios/ext2_bitmap_reclaim.yaml")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "expect deadlock, got deadlock" in p.stdout
    assert "in direct reclaim" in p.stdout and "at writepage_shm" in p.stdout


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_scenario_says_what_it_is_and_where_it_comes_from(path):
    sc = vmemu.load(str(path))
    assert len(sc.description) > 80, "describe the scenario for a reader"
    assert sc.source, "say where the scenario comes from"
    assert sc.memory is not None, "these are the memory scenarios"


# Each fix scenario, with its fix taken out again (text replaced): it must fail. This is
# what shows that the fix, and nothing else in the file, is what makes it pass.
UNFIX = [
    ("ext2_bitmap_reclaim_recursive", "superblock: recursive", "superblock: semaphore",
     "deadlock"),
    ("ext2_bitmap_reclaim_noio_scope",
     "    - flags: [PF_MEMALLOC_NOIO]    # memalloc_noio_save() ... memalloc_noio_restore()\n"
     "      do:\n        - call: bread\n", "    - call: bread\n", "deadlock"),
    ("ext2_bitmap_reclaim_gfp_noio", "gfp: GFP_NOIO", "gfp: GFP_KERNEL", "deadlock"),
    ("ext2_bitmap_reclaim_pf_memalloc", "[PF_MEMALLOC]", "[PF_MEMALLOC_NOFS]", "deadlock"),
    ("mmap_write_truncate_lock", "    - read_lock: i_truncate\n", "    - lock: i_sem\n",
     "deadlock"),
    ("ext2_bitmap_reclaim_drop_retry",
     "        - unlock: superblock       # drop the lock around the IO ...\n"
     "        - call: bread\n        - lock: superblock         # ... retake it\n",
     "        - call: bread\n", "deadlock"),
    ("ext2_bitmap_reclaim_drop_retry",
     '        - if: "bitmap_cached == 0" # and re-check: did someone load it meanwhile?\n'
     "          then:\n", '        - if: "1 == 1"\n          then:\n', "assertion"),
]


@pytest.mark.parametrize("name, fix, unfix, verdict", UNFIX,
                         ids=[f"{u[0]}-{u[3]}" for u in UNFIX])
def test_removing_the_fix_brings_the_failure_back(tmp_path, name, fix, unfix, verdict):
    text = (SCENARIOS / f"{name}.yaml").read_text()
    assert text.count(fix) == 1
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(fix, unfix))
    if name == "mmap_write_truncate_lock":   # its release goes back to i_sem too
        path.write_text(path.read_text().replace("read_unlock: i_truncate", "unlock: i_sem"))
    x = vmemu.explore(str(path), runs=200, driver="direct")
    assert x.verdict == verdict, x.result.report()


def test_every_fault_plan_loads_and_says_what_it_does():
    plans = sorted((ROOT / "faults").glob("*.yaml"))
    assert len(plans) >= 3
    for p in plans:
        plan = load_fault_plan(str(p))
        assert plan.description and plan.rules


def test_fail_atomic_allocs_drops_packets_and_the_accounting_holds():
    sc = str(SCENARIOS / "atomic_rx_may_fail.yaml")
    plan = str(ROOT / "faults" / "fail_atomic_allocs.yaml")
    drops = 0
    for seed in range(10):
        r = vmemu.run(sc, seed=seed, faults=plan, driver="direct")
        assert r.verdict == "ok", r.message          # the assert in the scenario held
        fails = [e for e in r.trace.events if e[2] == "alloc_fail"]
        assert all(e[1] == "net_rx" for e in fails)  # GFP_KERNEL users are spared
        drops += len(fails)
    assert drops > 0
