"""Tuning end to end on `debug=fast`: nested trial runs, best params, plots, one holdout
evaluation, folds inside the calibration window, resume, failed trials, and two worker
processes on one study."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

import tierlab.tuning.objective as objective_module
import tierlab.tuning.tune as tune_module
from postgres_fixture import postgres_url  # noqa: F401  (a fixture)
from run_helpers import all_runs, finished_runs, isolated
from tierlab import tracking
from tierlab.config import PROJECT_ROOT, compose
from tierlab.tuning.folds import Fold, Folds
from tierlab.tuning.objective import make_objective, make_plan
from tierlab.tuning.runner import claim, run_trials
from tierlab.tuning.storage import open_storage
from tierlab.tuning.study import Study, counts, top_up
from tierlab.tuning.tune import prepare_study, tune, tune_worker

CUTOFF = pd.Timestamp("2025-06-30")  # debug=fast: 36 months, holdout 6


def overrides(tmp: Path, *extra: str, storage: str | None = None) -> list[str]:
    """A tiny LightGBM study kept in tmp: 3 trials, 2 customer folds, 20 trees, no registry."""
    return isolated(
        tmp,
        "tuning=lightgbm_tweedie",
        "tuning.n_trials=3",
        "tuning.folds.kind=customers",
        "tuning.folds.n_folds=2",
        "tuning.model.model.n_estimators=20",
        "tuning.register=false",
        f"tuning.storage={storage or f'sqlite:///{tmp}/optuna/tierlab.db'}",
        *extra,
    )


def trials_of(cfg) -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(str(cfg.tuning.storage))
    study = optuna.load_study(study_name=cfg.tuning.study_name, storage=storage)
    return study.get_trials()


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One tuning run; the folds the objective saw and the holdout refits are recorded."""
    tmp = tmp_path_factory.mktemp("tuned")
    seen, refits = [], []
    score_fold, refit_holdout = objective_module.score_fold, tune_module.refit_holdout

    def spy_fold(kind, node, fold, cfg):
        seen.append(fold)
        return score_fold(kind, node, fold, cfg)

    def spy_refit(*args):
        refits.append(args)
        return refit_holdout(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(objective_module, "score_fold", spy_fold)
        mp.setattr(tune_module, "refit_holdout", spy_refit)
        result = tune(compose(overrides(tmp), output_dir=tmp / "out"))
    return tmp, result, seen, refits


def test_tune_runs_every_trial_as_a_nested_child_run(tuned):
    tmp, result, _, _ = tuned
    assert (result.n_trials, result.n_ran, result.counts["counted"]) == (3, 3, 3)
    (parent,) = finished_runs(tmp)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tuning_folds"] == "customers"
    children = [r for r in all_runs(tmp) if r.data.tags.get("mlflow.parentRunId")]
    trials = {r.data.tags["optuna_trial"]: r for r in children if "optuna_trial" in r.data.tags}
    assert sorted(trials) == ["0", "1", "2"]
    for run in trials.values():
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert "model.learning_rate" in run.data.params
        assert "clv/val_gini" in run.data.metrics
        history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "fold/clv/val_gini")
        assert sorted(m.step for m in history) == [0, 1]  # one value per fold
        assert run.data.metrics["clv/val_gini"] == pytest.approx(
            np.mean([m.value for m in history])
        )


def test_tune_logs_best_params_summary_and_plots(tuned):
    tmp, result, _, _ = tuned
    (parent,) = finished_runs(tmp)
    study_trials = trials_of(compose(overrides(tmp), output_dir=tmp / "x"))
    best = max((t for t in study_trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert result.best_params == best.params
    assert parent.data.metrics["tuning/best_value"] == pytest.approx(best.value)
    for path, value in best.params.items():
        assert parent.data.params[f"best/{path}"] == str(value)
    # the running mean over folds is what the pruner saw
    assert set(best.intermediate_values) == {0, 1}
    assert best.intermediate_values[1] == pytest.approx(best.value)
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "tuning")}
    assert {
        "tuning/trials.csv",
        "tuning/best_params.json",
        "tuning/best_model.yaml",
        "tuning/folds.csv",
        "tuning/optimization_history.png",
        "tuning/param_importances.png",
    } <= logged
    assert (tmp / "out" / "tuning" / "optimization_history.png").stat().st_size > 5_000
    trials = pd.read_csv(tmp / "out" / "tuning" / "trials.csv")
    assert len(trials) == 3 and set(trials["state"]) == {"COMPLETE"}


def test_holdout_is_evaluated_once_after_tuning_and_never_by_the_objective(tuned):
    tmp, result, seen, refits = tuned
    assert len(refits) == 1
    (parent,) = finished_runs(tmp)
    history = mlflow.MlflowClient().get_metric_history(parent.info.run_id, "clv/holdout_gini")
    assert len(history) == 1
    assert result.holdout_metrics["clv/holdout_gini"] == pytest.approx(history[0].value)
    children = [r for r in all_runs(tmp) if r.data.tags.get("mlflow.parentRunId")]
    assert not any(k.startswith("clv/holdout") for r in children for k in r.data.metrics)
    # every fold the objective scored comes from the training snapshot: the value it is
    # judged on ends at the cut-off, where the holdout starts
    assert len(seen) == 3 * 2
    for fold in seen:
        assert fold.val_target_end <= CUTOFF and fold.train_target_end <= CUTOFF
        assert fold.val_origin == CUTOFF - pd.offsets.MonthEnd(6)
    folds = result.folds.folds
    customers = [set(f.X_val.index) for f in folds]
    assert customers[0].isdisjoint(customers[1])
    assert customers[0] | customers[1] == set(folds[0].X_train.index) | customers[0]


def test_rerunning_a_complete_study_runs_no_trial(tuned):
    tmp, first, _, _ = tuned
    again = tune(compose(overrides(tmp), output_dir=tmp / "again"))
    assert again.n_ran == 0
    assert again.counts == first.counts
    assert again.best_params == first.best_params
    assert len(trials_of(compose(overrides(tmp), output_dir=tmp / "x"))) == 3


def test_an_interrupted_study_is_completed_by_rerunning_the_command(tmp_path, monkeypatch):
    ov = overrides(tmp_path)
    calls = []
    score_fold = objective_module.score_fold

    def interrupt_second_trial(*args):
        calls.append(1)
        if len(calls) == 3:  # first fold of trial 1 (two folds a trial)
            raise KeyboardInterrupt
        return score_fold(*args)

    monkeypatch.setattr(objective_module, "score_fold", interrupt_second_trial)
    with pytest.raises(KeyboardInterrupt):
        tune(compose(ov, output_dir=tmp_path / "1"))
    monkeypatch.setattr(objective_module, "score_fold", score_fold)
    cfg = compose(ov, output_dir=tmp_path / "2")
    states = [(t.number, t.state) for t in trials_of(cfg)]
    assert states == [(0, TrialState.COMPLETE), (1, TrialState.FAIL), (2, TrialState.WAITING)]

    result = tune(cfg)
    assert result.n_ran == 2
    assert result.counts["counted"] == 3 and result.counts["interrupted"] == 1
    trials = trials_of(cfg)
    assert trials[1].user_attrs["interrupted"] == "KeyboardInterrupt"
    assert all(t.state == TrialState.COMPLETE for t in trials if t.number != 1)
    assert [
        r.info.status for r in sorted(finished_runs(tmp_path), key=lambda r: r.info.start_time)
    ] == [
        "KILLED",
        "FINISHED",
    ]


def test_failed_nan_and_pruned_trials_are_recorded_and_the_study_goes_on(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns.db")
    mlflow.set_experiment("tierlab-debug")
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    handle = Study(study, storage, storage.get_study_id_from_name("s"), "memory")
    cfg = OmegaConf.create(
        {"tuning": {"n_trials": 4, "timeout": None, "sampler": {"seed": 0, "n_startup_trials": 2}}}
    )

    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 0:
            raise ValueError("LightGBM: bad parameter")
        if trial.number == 1:
            return math.nan
        if trial.number == 2:
            raise optuna.TrialPruned("pruned after fold 1")
        return x

    top_up(handle, 4)
    with mlflow.start_run(run_name="parent"):
        assert run_trials(handle, objective, cfg, role="tune") == 4
    trials = study.get_trials()
    assert [t.state for t in trials] == [
        TrialState.FAIL, TrialState.FAIL, TrialState.PRUNED, TrialState.COMPLETE,
    ]  # fmt: skip
    assert trials[0].user_attrs["fail_reason"] == "ValueError: LightGBM: bad parameter"
    assert trials[1].user_attrs["fail_reason"] == "objective value is nan"
    assert counts(handle)["counted"] == 4
    runs = {r.data.tags.get("optuna_trial"): r for r in all_runs(tmp_path)}
    assert (
        runs["0"].info.status == "FAILED" and "bad parameter" in runs["0"].data.tags["fail_reason"]
    )
    assert runs["2"].data.tags["optuna_state"] == "PRUNED" and runs["3"].info.status == "FINISHED"


def test_timeout_stops_claiming_and_leaves_the_rest_for_a_rerun(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns.db")
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s")
    handle = Study(study, storage, storage.get_study_id_from_name("s"), "memory")
    top_up(handle, 3)
    cfg = OmegaConf.create(
        {"tuning": {"n_trials": 3, "timeout": 0.0, "sampler": {"seed": 0, "n_startup_trials": 1}}}
    )
    assert run_trials(handle, lambda trial: 1.0, cfg, role="tune") == 0
    assert counts(handle)["waiting"] == 3


def test_objective_prunes_across_folds_and_fails_on_a_nan_fold_metric(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns.db")
    mlflow.set_experiment("tierlab-debug")
    cfg = compose(
        ["tuning=elastic_net", "tuning.pruner.kind=none", "tuning.folds.n_folds=2"],
        output_dir=tmp_path,
    )
    plan = make_plan(cfg)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    y = np.exp(X["a"].to_numpy()) + rng.normal(0, 0.1, 120)

    def fold(name, y_val):
        return Fold(name, X[:80], y[:80], X[80:], y_val, None, None, None, None)

    folds = Folds("customers", "test", [fold("f1", y[80:]), fold("f2", y[80:])])
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0)
    )
    trial = study.ask()
    with mlflow.start_run(), pytest.raises(optuna.TrialPruned, match="pruned after fold 1 of 2"):
        make_objective(plan, folds, cfg)(trial)
    assert list(study.trials[0].intermediate_values) == [0]  # the second fold never ran

    flat = Folds("customers", "test", [fold("f1", y[80:]), fold("f2", np.zeros(40))])
    study = optuna.create_study(direction="maximize")
    with mlflow.start_run(), pytest.raises(ValueError, match=r"clv/val_gini is nan on fold f2"):
        make_objective(plan, flat, cfg)(study.ask())

    # segmentation folds without a target (no time axis) only serve target-free metrics
    seg = make_plan(compose(["tuning=kmeans"], output_dir=tmp_path))
    unlabelled = Folds("customers", "no target", [fold("f1", None)])
    with pytest.raises(ValueError, match=r"seg/val_tier_gap needs the value .*seg/val_silhouette"):
        make_objective(seg, unlabelled, cfg)


def test_a_study_refuses_another_objective_and_a_worker_needs_a_study(tmp_path):
    base = compose(overrides(tmp_path), output_dir=tmp_path)
    other = compose(overrides(tmp_path, "tuning.model.model.n_estimators=50"), output_dir=tmp_path)
    prepare_study(base)
    prepare_study(other)  # no trial has finished (an attempt that failed early): re-keyed
    handle, _ = prepare_study(base)
    handle.study.tell(claim(handle, base.tuning.sampler), 0.5)
    with pytest.raises(ValueError, match=r"was created for another objective .* tuning.study_name"):
        prepare_study(other)
    # the space, n_trials and the sampler may change: same study, topped up
    more = compose(overrides(tmp_path, "tuning.n_trials=5"), output_dir=tmp_path)
    assert prepare_study(more)[1] == 2
    lonely = compose(overrides(tmp_path, "tuning.study_name=nobody"), output_dir=tmp_path / "w")
    with pytest.raises(ValueError, match=r"study 'nobody' does not exist .* run `tierlab tune"):
        tune_worker(lonely)
    (run,) = [r for r in finished_runs(tmp_path) if r.data.tags["tuning_role"] == "tune-worker"]
    assert run.info.status == "FAILED"


def test_trials_of_a_dead_local_worker_are_marked_interrupted_and_run_again(tmp_path):
    cfg = compose(overrides(tmp_path), output_dir=tmp_path)
    handle, _ = prepare_study(cfg)
    trial = claim(handle, cfg.tuning.sampler)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    trial.set_user_attr("worker", f"{socket.gethostname()}:{int(finished.stdout)}")  # killed -9
    handle, added = prepare_study(cfg)  # what a rerun of `tierlab tune` does first
    assert added == 1
    first = handle.study.get_trials()[0]
    assert first.state == TrialState.FAIL and first.user_attrs["interrupted"].endswith(" gone")
    assert counts(handle) == {
        "complete": 0, "pruned": 0, "failed": 0, "interrupted": 1, "running": 0, "waiting": 3,
        "counted": 0,
    }  # fmt: skip


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_concurrent_claims_take_each_slot_once(tmp_path, kind):
    url = {"journal": f"journal://{tmp_path}/optuna.log", "sqlite": f"sqlite:///{tmp_path}/o.db"}[
        kind
    ]
    study = optuna.create_study(storage=open_storage(url), study_name="s", direction="maximize")
    sampler = OmegaConf.create({"seed": 0, "n_startup_trials": 1})
    for _ in range(12):
        study.enqueue_trial({})
    claimed: list[list[int]] = [[], [], []]

    def worker(i):  # its own storage object, like a separate process
        storage = open_storage(url)
        handle = Study(
            optuna.load_study(study_name="s", storage=storage), storage,
            storage.get_study_id_from_name("s"), url,
        )  # fmt: skip
        while (trial := claim(handle, sampler)) is not None:
            claimed[i].append(trial.number)
            handle.study.tell(trial, 1.0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = sorted(n for c in claimed for n in c)
    assert numbers == list(range(12))
    assert len(study.get_trials()) == 12


@pytest.mark.parametrize("backend", ["journal", "postgresql"])
def test_two_worker_processes_finish_one_study_with_no_trial_lost_or_duplicated(
    tmp_path, request, backend
):
    """Two ``tune-worker`` processes share one study: a journal file (a shared file system) or
    a PostgreSQL database (a server on this machine; skipped, with the reason, without one)."""
    n_trials = 6
    if backend == "postgresql":
        storage = request.getfixturevalue("postgres_url")
    else:
        storage = f"journal://{tmp_path}/optuna/tierlab.log"
    ov = overrides(
        tmp_path,
        f"tuning.n_trials={n_trials}",
        "tuning.model.model.n_estimators=300",
        storage=storage,
    )
    cfg = compose(ov, output_dir=tmp_path / "out")
    prepare_study(cfg)  # the study and its slots exist before any worker starts
    tracking.configure(cfg.tracking)  # so does the MLflow store (first-time creation races too)
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONPATH": str(PROJECT_ROOT / "src"),
    }
    command = [sys.executable, "-m", "tierlab.cli", "tune-worker", *ov]
    workers = [
        subprocess.Popen(
            [*command, f"hydra.run.dir={tmp_path}/worker{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=240)[0] for w in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
    trials = trials_of(cfg)
    assert sorted(t.number for t in trials) == list(range(n_trials))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert len({t.user_attrs["mlflow_run_id"] for t in trials}) == n_trials
    parents = finished_runs(tmp_path)
    assert sorted(r.data.tags["tuning_role"] for r in parents) == ["tune-worker", "tune-worker"]
    assert all(r.info.status == "FINISHED" for r in parents)
    children = [r for r in all_runs(tmp_path) if "optuna_trial" in r.data.tags]
    assert sorted(int(r.data.tags["optuna_trial"]) for r in children) == list(range(n_trials))


def test_tune_a_segmentation_method_on_time_folds(tmp_path):
    ov = isolated(
        tmp_path,
        "tuning=kmeans",
        "tuning.n_trials=2",
        "tuning.folds.n_folds=2",
        f"tuning.storage=sqlite:///{tmp_path}/optuna.db",
    )
    result = tune(compose(ov, output_dir=tmp_path / "out"))
    # auto folds are time folds on debug=fast (36 months cover their history): each fold
    # trains on value ending at its validation origin and validates on value ending by the
    # cut-off
    assert result.folds.kind == "time"
    for fold in result.folds.folds:
        assert fold.train_target_end <= fold.val_origin < fold.val_target_end <= CUTOFF
    assert result.counts["complete"] == 2 and result.registered is None
    assert 0 <= result.holdout_metrics["seg/holdout_tier_gap"] <= 1
    (parent,) = finished_runs(tmp_path)
    assert "seg/holdout_tier_gap" in parent.data.metrics
    assert parent.data.params["best/n_clusters"] == str(result.best_params["n_clusters"])
