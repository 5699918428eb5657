"""``explore()``: check the arguments, open the campaign, build the spec, and hand over to
the coordinator (:mod:`vmemu._explore.coordinator`), or to Hypothesis's engine."""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from .._errors import UserError
from .._result import Result
from .._run import _as_scenario, _check_driver, _load_faults
from .._scenario.model import Scenario
from .._strategies import is_exhaustive, schedules
from . import work
from .base import DEFAULT_RUNS, DEFAULT_STRATEGY, ExploreResult, Spec
from .coordinator import _Exploration
from .store import Store, sig_from_text


def explore(scenario: Scenario | str | os.PathLike, *, runs: int = DEFAULT_RUNS,
            seed: int | None = None, strategy: str | None = None, faults: Any = None,
            driver: str = "direct", time_budget: float | None = None,
            keep_going: bool = False, jobs: int = 1, cluster: str | None = None,
            findings_dir: str | os.PathLike | None = None, minimize: bool = True,
            progress: Callable[..., None] | None = None,
            on_finding: Callable[[Result], None] | None = None,
            store: str | os.PathLike | None = None, resume: bool = False,
            **params: Any) -> ExploreResult:
    """Try up to ``runs`` schedules; stop at the first failure unless ``keep_going``.

    Args:
        scenario: a loaded scenario or a path.
        runs: most schedules to run.
        seed: schedule ``i`` of a seeded strategy uses ``schedule_seed(seed, i)``
            (default 0).
        strategy: ``portfolio`` (random and pct alternating; the default), ``random``,
            ``pct``, ``dfs``, ``hypothesis`` (Hypothesis's engine generates and shrinks).
        faults: a fault plan path or object.
        driver: how each schedule runs (``direct`` is the fastest; traces are the same).
        time_budget: stop starting schedules after this many wall-clock seconds.
        keep_going: keep every distinct failure instead of stopping at the first.
        jobs: parallel workers on this machine (this process and ``jobs - 1`` others).
            ``dfs`` is sequential by nature and always runs in this process.
        cluster: ``tcp://HOST:PORT`` of a dask.distributed scheduler, or ``local:N``
            for a LocalCluster of N worker processes (needs ``vmemu[dask]``).
        findings_dir: save each finding there as it is found (None: do not save).
        minimize: replace each finding by its minimized schedule.
        progress: called with (schedules done, findings, interleavings) as it goes.
        on_finding: called with each finding's final Result (saved, minimized).
        store: record the campaign in this SQLite file (None: no record).
        resume: continue the newest campaign in ``store`` of this scenario and fault
            plan (and of ``strategy``/``seed``/``params`` where given) at its next unrun
            index; failures it already knows are not findings again.
        **params: strategy parameters (``depth``, ``steps_hint``, ``bound`` ...).

    Raises:
        ExploreInterrupted: on Ctrl-C, after saving every finding reported so far.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    sc = _as_scenario(scenario)
    plan = _load_faults(faults)
    params = {k: v for k, v in params.items() if v is not None}
    _check_driver(driver)
    if cluster:
        from .executors import check_cluster
        check_cluster(cluster)
    if findings_dir is not None:
        from .._files import check_folder
        check_folder(findings_dir, "--findings")
    db = Store(store) if store is not None else None
    campaign = None
    if resume:
        if db is None:
            raise UserError("--resume needs a campaign store", key="--resume")
        want: dict[str, Any] = {k: v for k, v in (("strategy", strategy), ("seed", seed))
                                if v is not None}
        if params:
            want["params"] = params
        campaign = db.find(sc.content_hash, getattr(plan, "content_hash", None), want)
        if campaign is None:
            raise UserError(_why_no_campaign(db, sc, plan, want), key="--resume")
        strategy, seed, params = campaign["strategy"], campaign["seed"], campaign["params"]
    strategy = strategy or DEFAULT_STRATEGY
    seed = 0 if seed is None else seed
    # Bad strategy names and parameters fail here, before any worker starts; this also
    # loads every strategy module, so PARAMS (hence the epochs) is complete.
    schedules(strategy, seed, **params)
    if resume and (strategy == "hypothesis" or is_exhaustive(strategy)):
        # Each schedule comes from the ones before it: there is no index to go on from.
        raise UserError(f"a {strategy} search cannot be resumed; run it again with a larger "
                        "--runs or --time", key="--resume")
    if strategy == "hypothesis":     # (never resumed: refused above)
        if db is not None:
            db.close()       # (Hypothesis's engine keeps its own record: none here)
        from .hypothesis import explore_hypothesis
        return explore_hypothesis(sc, plan, runs=runs, seed=seed, time_budget=time_budget,
                                  keep_going=keep_going, findings_dir=findings_dir,
                                  progress=progress, on_finding=on_finding)
    if campaign is not None:
        try:
            # Claimed before anything of it is read (its findings, ranges ...): a resume
            # that ended just now has recorded all it ran, one running now is refused.
            db.reopen(campaign["id"])
        except BaseException:
            db.close()
            raise
    try:
        spec = Spec(scenario_path=sc.path, scenario_hash=sc.content_hash,
                    scenario_text=_content(sc), faults_path=getattr(plan, "path", None),
                    faults_hash=getattr(plan, "content_hash", None),
                    faults_text=_plan_content(plan), strategy=strategy, seed=seed,
                    params=params, driver=driver, keep_going=keep_going,
                    known=frozenset(sig_from_text(f["signature"]) for f in
                                    (db.findings(campaign["id"]) if campaign else ())))
        work.remember(spec, sc, plan)
        parallel = (jobs > 1 or cluster) and not is_exhaustive(strategy)
        if parallel and (spec.scenario_text is None
                         or (plan is not None and spec.faults_text is None)):
            if cluster:
                raise UserError("--cluster needs the scenario and fault plan as files",
                                key="--cluster")
            parallel = False      # an object without (matching) files: run it here
        if spec.scenario_text is None:
            spec = _replace(spec, scenario_text=b"")
        ex = _Exploration(spec, sc, plan, runs, findings_dir, progress, on_finding, minimize,
                          db, campaign)
    except BaseException:
        if db is not None:
            if campaign is not None:    # claimed, but nothing ran: as it was
                db.release(campaign["id"], campaign["status"])
            db.close()
        raise
    deadline = None if time_budget is None else time.time() + time_budget
    return ex.go(deadline, jobs if parallel else 1, cluster if parallel else None)


def _replace(spec: Spec, **kw: Any) -> Spec:
    import dataclasses
    return dataclasses.replace(spec, **kw)


def _content(sc: Scenario) -> bytes | None:
    """The scenario file's bytes, if the file still holds what was loaded."""
    import hashlib
    try:
        data = open(sc.path, "rb").read()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sc.content_hash else None


def _plan_content(plan: Any) -> bytes | None:
    if plan is None or not getattr(plan, "path", None):
        return None
    import hashlib
    try:
        data = open(plan.path, "rb").read()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == plan.content_hash else None


def _why_no_campaign(db: Store, sc: Any, plan: Any, want: dict[str, Any]) -> str:
    """``--resume`` found no campaign to go on with: say why, in one line. A campaign
    covers one version of a scenario and fault plan (their schedules differ), so an
    edited file starts a new one."""
    old = db.newest_of(sc.path)
    new_one = "; explore without --resume to start a new campaign"
    if old is not None and old["scenario_hash"] != sc.content_hash:
        return (f"{sc.path} changed since its campaign {old['id']} ran (its content "
                f"differs){new_one}")
    if old is not None and old["faults_hash"] != getattr(plan, "content_hash", None):
        was = old["faults"] or "no fault plan"
        return (f"campaign {old['id']} of {sc.path} ran with {was}, not with "
                f"{getattr(plan, 'path', None) or 'no fault plan'} (or that plan changed)"
                + new_one)
    if old is not None and want:
        ran = f"--strategy {old['strategy']} --seed {old['seed']}" + "".join(
            f" --{k.replace('_', '-')} {v}" for k, v in sorted(old["params"].items()))
        return (f"campaign {old['id']} of {sc.path} ran with {ran}, not these options; "
                "--resume alone goes on with the campaign's own" + new_one.replace(";", ", or"))
    return (f"no campaign of {sc.path} to resume in {db.path}"
            + (" with these options" if want else "") + "; run it once without --resume")
