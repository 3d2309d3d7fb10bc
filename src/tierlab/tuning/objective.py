"""The tuning plan (what is tuned, on which metric) and the objective one trial evaluates."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import mlflow
import numpy as np
import optuna
from omegaconf import DictConfig

from tierlab.config import CONF_DIR
from tierlab.tuning.evaluate import KINDS, check_metric, score_fold
from tierlab.tuning.folds import Folds
from tierlab.tuning.space import Param, apply, parse_space, suggest

DIRECTIONS = ("maximize", "minimize")
#: Segmentation metrics that need no target (folds without a time axis have none).
UNSUPERVISED = (
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "n_tiers",
    "smallest_tier_share",
)


@dataclass
class Plan:
    """A checked tuning config: the tuned node, its space and the optimised metric."""

    kind: str
    metric: str
    metric_name: str
    direction: str
    space: list[Param]
    node: DictConfig

    @property
    def prefix(self) -> str:
        """``clv`` or ``seg``: the namespace of the metric keys."""
        return KINDS[self.kind]

    def holdout_key(self, name: str) -> str:
        return f"{self.prefix}/holdout_{name}"


def make_plan(cfg: DictConfig) -> Plan:
    """Check ``cfg.tuning`` (before any data is loaded) and parse its space."""
    if cfg.get("tuning") is None:
        options = sorted(p.stem for p in (CONF_DIR / "tuning").glob("*.yaml"))
        raise ValueError(f"no tuning config selected: tierlab tune tuning=<name>, one of {options}")
    tuning = cfg.tuning
    kind, direction = str(tuning.kind), str(tuning.direction)
    if kind not in KINDS:
        raise ValueError(f"tuning.kind={kind!r} should be one of {list(KINDS)}")
    if direction not in DIRECTIONS:
        raise ValueError(f"tuning.direction={direction!r} should be one of {list(DIRECTIONS)}")
    metric = str(cfg.get("optimized_metric") or tuning.metric)
    name = check_metric(kind, metric)
    where = f"conf/tuning/{tuning.name}.yaml: tuning.space"
    space = parse_space(tuning.space, tuning.model, where)
    return Plan(kind, metric, name, direction, space, tuning.model)


def make_objective(plan: Plan, folds: Folds, cfg: DictConfig) -> Callable[[optuna.Trial], float]:
    """The objective: suggest, fit and score fold by fold, report the running mean after each
    fold and let the pruner stop a poor trial early.  Logs the trial's parameters, per-fold
    metrics (``fold/<prefix>/val_<name>``, step = fold) and fold means
    (``<prefix>/val_<name>``) to the active (child) MLflow run."""
    if any(f.y_val is None for f in folds.folds) and plan.metric_name not in UNSUPERVISED:
        raise ValueError(
            f"{plan.metric} needs the value customers realise, and these folds have none "
            f"({folds.reason}); optimise one of {[f'seg/val_{m}' for m in UNSUPERVISED]}"
        )

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, plan.space)
        mlflow.log_params({k: str(v) for k, v in params.items()})
        node = apply(plan.node, params)
        scores: list[dict[str, float]] = []
        for step, fold in enumerate(folds.folds):
            fold_scores = score_fold(plan.kind, node, fold, cfg)
            value = fold_scores.get(plan.metric_name, math.nan)
            finite = {k: v for k, v in fold_scores.items() if math.isfinite(v)}
            mlflow.log_metrics(
                {f"fold/{plan.prefix}/val_{k}": v for k, v in finite.items()}, step=step
            )
            if not math.isfinite(value):
                raise ValueError(f"{plan.metric} is {value} on fold {fold.name}")
            scores.append(fold_scores)
            running = float(np.mean([s[plan.metric_name] for s in scores]))
            trial.report(running, step)
            if trial.should_prune():
                _log_means(plan, scores)
                raise optuna.TrialPruned(
                    f"pruned after fold {step + 1} of {len(folds.folds)}: running mean {running:.4g}"
                )
        return _log_means(plan, scores)[plan.metric_name]

    return objective


def _log_means(plan: Plan, scores: list[dict[str, float]]) -> dict[str, float]:
    """Mean of every metric present in all folds so far, logged as ``<prefix>/val_<name>``."""
    keys = set.intersection(*(set(s) for s in scores))
    means = {k: float(np.mean([s[k] for s in scores])) for k in sorted(keys)}
    mlflow.log_metrics({f"{plan.prefix}/val_{k}": v for k, v in means.items() if math.isfinite(v)})
    return means
