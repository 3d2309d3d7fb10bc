"""``tierlab tune``: tune a model with Optuna, refit the best, evaluate it once, register it.

One call is one MLflow parent run (``tune-<study>``): the data and features stages, the folds
(``tuning/folds.csv``), one nested child run per trial, then the study's summary
(``tuning/trials.csv``, ``tuning/best_params.json``, ``tuning/best_model.yaml``, the optimisation
history and parameter importances), the best value (``tuning/best_value``) and parameters
(params ``best/<path>``), and the holdout metrics of the refitted model
(``<clv|seg>/holdout_<name>``), computed once.  ``tierlab tune-worker`` joins the study from
another process: its own parent run (``tune-worker-<study>``) holds its trials; no refit.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from omegaconf import DictConfig, OmegaConf

from tierlab import tracking
from tierlab.config import prepare_output_dir
from tierlab.data.stage import run_data_stage
from tierlab.features.stage import run_features_stage
from tierlab.tuning.evaluate import refit_holdout
from tierlab.tuning.folds import Folds, build_folds
from tierlab.tuning.objective import Plan, make_objective, make_plan
from tierlab.tuning.runner import run_trials, wait_for_others
from tierlab.tuning.space import apply
from tierlab.tuning.storage import mask
from tierlab.tuning.study import Study, counts, open_study, reap, top_up
from tierlab.tuning.summary import write_summary

log = logging.getLogger(__name__)


@dataclass
class TuneResult:
    """What ``tune`` (or ``tune_worker``) did: the study, its best trial and, for ``tune``,
    the holdout metrics of the refitted best model and what was registered."""

    study_name: str
    storage: str
    metric: str
    n_trials: int
    n_ran: int
    counts: dict[str, int]
    folds: Folds
    run_id: str
    best_value: float | None = None
    best_params: dict = field(default_factory=dict)
    holdout_metrics: dict[str, float] = field(default_factory=dict)
    registered: dict[str, str] | None = None


def tune(cfg: DictConfig) -> TuneResult:
    """Create or resume the study of ``cfg.tuning``, run its missing trials, refit the best
    parameters on the calibration window, evaluate once on the holdout and (CLV, when
    ``tuning.register``) register the model."""
    plan = make_plan(cfg)
    with _parent(cfg, "tune") as (active, output_dir):
        handle, added = prepare_study(cfg)  # before loading data: fail fast on a mismatch
        data_stage, features, folds = _stages(cfg, plan, output_dir)
        _announce(handle, plan, cfg, added)
        ran = run_trials(handle, make_objective(plan, folds, cfg), cfg, role="tune")
        wait_for_others(handle, float(cfg.tuning.wait_for_workers))
        result = _result(handle, plan, cfg, folds, active, ran)
        if not result.counts["complete"]:
            raise RuntimeError(_no_complete_trial(handle))
        best = handle.study.best_trial
        result.best_value, result.best_params = best.value, dict(best.params)
        _log_best(handle, plan, cfg, output_dir, best)
        node = apply(plan.node, best.params)
        estimator, holdout = refit_holdout(plan.kind, node, cfg, data_stage, features)
        result.holdout_metrics = {
            plan.holdout_key(k): float(v) for k, v in holdout.items() if math.isfinite(v)
        }
        mlflow.log_metrics(result.holdout_metrics)
        mlflow.set_tag("holdout_evaluated", "once, after tuning")
        log.info("tuning: holdout %s", _brief(result.holdout_metrics))
        if plan.kind == "clv" and cfg.tuning.register:
            from tierlab.registry.register import register_models

            # value_metrics keys (gini, rmse, ...), as registry.promotion.metric names them
            finite = {k: float(v) for k, v in holdout.items() if math.isfinite(v)}
            result.registered = register_models(cfg, estimator, features.indicators, finite)
        elif cfg.tuning.register:
            log.info("tuning: kind=%s models are not registered (CLV only)", plan.kind)
    return result


def prepare_study(cfg: DictConfig) -> tuple[Study, int]:
    """Create or load the study of ``cfg.tuning`` and top it up to ``tuning.n_trials`` slots
    (after marking the trials of dead local workers interrupted); return it and how many slots
    were added.  ``tune`` starts with this; call it alone to create a study for workers."""
    handle = open_study(cfg, make_plan(cfg).metric, create=True)
    reap(handle)
    return handle, top_up(handle, int(cfg.tuning.n_trials))


def tune_worker(cfg: DictConfig) -> TuneResult:
    """Join the existing study of ``cfg.tuning`` and run trials until it is full."""
    plan = make_plan(cfg)
    with _parent(cfg, "tune-worker") as (active, output_dir):
        # fail fast, before loading data, when the study does not exist
        handle = open_study(cfg, plan.metric, create=False)
        _data, _features, folds = _stages(cfg, plan, output_dir)
        _announce(handle, plan, cfg, 0)
        ran = run_trials(handle, make_objective(plan, folds, cfg), cfg, role="tune-worker")
        result = _result(handle, plan, cfg, folds, active, ran)
        if result.counts["complete"]:
            best = handle.study.best_trial
            result.best_value, result.best_params = best.value, dict(best.params)
    return result


@contextmanager
def _parent(cfg: DictConfig, role: str):
    """The parent MLflow run and the output folder of a tune / tune-worker call."""
    output_dir = prepare_output_dir(cfg)
    name = cfg.tracking.run_name or f"{role}-{cfg.tuning.study_name}"
    with tracking.parent_run(cfg, name) as active:
        mlflow.set_tags(
            {
                "tuning_role": role,
                "optuna_study": str(cfg.tuning.study_name),
                "optuna_storage": mask(str(cfg.tuning.storage)),
            }
        )
        yield active, output_dir
    log.info("outputs: %s", output_dir)
    log.info("MLflow run %s: %s", active.info.run_id, tracking.run_url(active))


def _stages(cfg: DictConfig, plan: Plan, output_dir: Path):
    data_stage = run_data_stage(cfg, output_dir)
    features = run_features_stage(cfg, data_stage, output_dir)
    folds = build_folds(cfg.tuning.folds, cfg, data_stage, features)
    folder = output_dir / "tuning"
    folder.mkdir(exist_ok=True)
    folds.table().to_csv(folder / "folds.csv", index=False)
    mlflow.log_artifact(str(folder / "folds.csv"), "tuning")
    mlflow.set_tags({"tuning_folds": folds.kind, "tuning_folds_reason": folds.reason[:5000]})
    return data_stage, features, folds


def _announce(handle: Study, plan: Plan, cfg: DictConfig, added: int) -> None:
    c = counts(handle)
    log.info(
        "tuning: study %r in %s, %s %s; %d of n_trials=%d done, %d waiting (%d new), %d running"
        " elsewhere, %d interrupted earlier",
        handle.name,
        mask(handle.url),
        plan.direction,
        plan.metric,
        c["counted"],
        int(cfg.tuning.n_trials),
        c["waiting"],
        added,
        c["running"],
        c["interrupted"],
    )


def _result(handle: Study, plan, cfg, folds: Folds, active, ran: int) -> TuneResult:
    c = counts(handle)
    mlflow.log_metrics(
        {
            "tuning/n_trials_ran": float(ran),
            **{f"tuning/n_{k}": float(v) for k, v in c.items()},
        }
    )
    return TuneResult(
        handle.name,
        mask(handle.url),
        plan.metric,
        int(cfg.tuning.n_trials),
        ran,
        c,
        folds,
        active.info.run_id,
    )


def _log_best(handle: Study, plan: Plan, cfg: DictConfig, output_dir: Path, best) -> None:
    folder = output_dir / "tuning"
    skipped = write_summary(handle.study, folder, plan.metric, int(cfg.seed))
    node = apply(plan.node, best.params)
    (folder / "best_model.yaml").write_text(OmegaConf.to_yaml(node))
    mlflow.log_artifacts(str(folder), "tuning")
    if skipped:
        mlflow.set_tag("tuning_plots_skipped", ", ".join(skipped))
    mlflow.log_params({f"best/{k}": str(v) for k, v in best.params.items()})
    mlflow.set_tag("best_trial", str(best.number))
    mlflow.log_metrics({"tuning/best_value": float(best.value), plan.metric: float(best.value)})
    log.info(
        "tuning: best %s=%.4g (trial %d): %s",
        plan.metric,
        best.value,
        best.number,
        ", ".join(f"{k}={v}" for k, v in best.params.items()),
    )


def _no_complete_trial(handle: Study) -> str:
    failed = [t for t in handle.study.get_trials(deepcopy=False) if "fail_reason" in t.user_attrs]
    first = ""
    if failed:
        first = f"; first failure (trial {failed[0].number}): {failed[0].user_attrs['fail_reason']}"
    return f"no trial of study {handle.name!r} completed ({counts(handle)})" + first


def _brief(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())[:6])
