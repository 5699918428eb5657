"""Same answers everywhere: every contract scenario gives the same trace on every driver.

The matrix runs each contract scenario under 10 seeds on the trio, direct and asyncio
drivers, plus the anyio driver hosted by trio (what ``arun(driver="asyncio")`` does in a
trio program), and checks verdict, steps, ticks and trace hash agree. A trace saved under
one driver must replay to the same hash under every other.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import trio

import vmemu
from conftest import contract_files, lang_files, seed_reaching

SEEDS = range(10)
DRIVERS = ("trio", "direct", "asyncio")
# The contract and the extended syntax (spawned tasks, timed waits, atomics ...).
SCENARIOS = contract_files() + lang_files()


def _fingerprint(r: vmemu.Result) -> tuple:
    return (r.verdict, r.steps, r.ticks, r.trace_hash, tuple(r.trace.tape))


def test_the_matrix_covers_the_contract():
    # If the contract folder moved, the matrix would silently test nothing.
    assert len(SCENARIOS) >= 9 + 12
    from vmemu._kernel.drivers import DRIVERS as ALL   # (a lazy module: import it)
    assert set(DRIVERS) <= set(ALL)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_driver_gives_the_same_trace(path: Path):
    sc = vmemu.load(str(path))
    verdicts = set()
    for seed in SEEDS:
        base = vmemu.run(sc, seed=seed, driver="direct")
        verdicts.add(base.verdict)
        for driver in DRIVERS:
            r = vmemu.run(sc, seed=seed, driver=driver)
            assert r.driver == driver
            assert _fingerprint(r) == _fingerprint(base), (driver, seed)
        # The anyio driver on a trio host: the host's scheduling must not matter either.
        hosted = trio.run(partial(vmemu.arun, sc, seed=seed, driver="asyncio"))
        assert _fingerprint(hosted) == _fingerprint(base), ("anyio-on-trio", seed)
    # The scenario really exercises the scheduler (not one trivially identical run).
    assert base.steps > 1


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_a_trace_saved_under_one_driver_replays_under_every_other(path: Path, tmp_path):
    sc = vmemu.load(str(path))
    # Prefer a failing schedule: its trace is the one a user would replay.
    runs = [vmemu.run(sc, seed=s, driver="direct") for s in SEEDS]
    seed = next((r.seed for r in runs if r.failed), 0)
    for saver in DRIVERS:
        rec = vmemu.run(sc, seed=seed, driver=saver)
        saved = rec.trace.save(tmp_path / f"{path.stem}-{saver}.json")
        for player in DRIVERS:
            rep = vmemu.replay(saved, driver=player)
            assert (rep.verdict, rep.trace_hash) == (rec.verdict, rec.trace_hash), \
                (saver, player)


def test_the_asyncio_driver_is_a_cli_choice(tmp_path):
    from vmemu._cli import main
    abba = str(next(p for p in contract_files() if p.stem == "abba"))
    out = tmp_path / "t.json"
    seed = str(seed_reaching(abba, "deadlock"))
    assert main(["run", abba, "--seed", seed, "--driver", "asyncio", "--trace", str(out),
                 "--json"]) == 1
    assert main(["replay", str(out), "--driver", "asyncio", "--json"]) == 1
    assert main(["explore", abba, "--driver", "asyncio", "--runs", "20", "--json",
                 "--findings", str(tmp_path / "f")]) == 1


def test_an_unknown_driver_is_one_line_naming_the_choices(capsys):
    from vmemu._cli import main
    abba = str(contract_files()[0])
    assert main(["run", abba, "--driver", "asyncoi"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "asyncio" in err
    with pytest.raises(vmemu.UserError, match="did you mean 'asyncio'"):
        vmemu.run(abba, driver="asyncoi")
