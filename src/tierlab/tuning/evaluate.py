"""Score one configured model on a validation fold, or refit it and score it on the holdout.

The same functions serve every CLV regressor (``tuning.kind=clv``: fitted on the fold's
training rows with their target, scored by :func:`tierlab.clv.metrics.value_metrics`) and every
segmentation method (``kind=segmentation``: fitted on the training indicators, clusters ordered
into tiers by calibration value, validation customers assigned by ``predict`` and scored by
:func:`tierlab.segmentation.metrics.business_metrics` and the internal metrics).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from tierlab.clv.metrics import value_metrics
from tierlab.clv.regressors import needs_target
from tierlab.clv.stage import holdout_frame
from tierlab.data.stage import DataStageResult
from tierlab.features.stage import FeaturesResult
from tierlab.segmentation.metrics import business_metrics, internal_metrics, size_metrics
from tierlab.segmentation.stage import tier_value_column
from tierlab.segmentation.tiers import assign_tiers, order_tiers
from tierlab.tuning.folds import Fold

KINDS = {"clv": "clv", "segmentation": "seg"}
#: Metrics a fold yields, by kind: ``<prefix>/val_<name>`` names one of them.
METRICS = {
    "clv": (
        "gini", "spearman", "rmse", "mae", "top10_share", "top20_share", "top10_lift",
        "top20_lift", "decile_mape", "decile_wape", "mean_predicted", "mean_actual",
    ),
    "segmentation": (
        "spearman", "top_tier_lift", "value_share_tier1", "contradiction_share", "tier_gap",
        "silhouette", "calinski_harabasz", "davies_bouldin", "n_tiers", "smallest_tier_share",
    ),
}  # fmt: skip


def check_metric(kind: str, metric: str) -> str:
    """Check ``<prefix>/val_<name>`` against the kind; return ``<name>``."""
    if kind not in KINDS:
        raise ValueError(f"tuning.kind={kind!r} should be one of {list(KINDS)}")
    prefix = f"{KINDS[kind]}/val_"
    name = metric[len(prefix) :] if metric.startswith(prefix) else None
    if name not in METRICS[kind]:
        known = [f"{prefix}{m}" for m in METRICS[kind]]
        raise ValueError(
            f"metric {metric!r} (optimized_metric, else tuning.metric) is not a validation "
            f"metric of tuning.kind={kind}; tuning never sees the holdout.  Use one of {known}"
        )
    return name


def build(kind: str, node: DictConfig):
    """Instantiate the model node; a CLV model must learn from a target."""
    estimator = instantiate(node, _convert_="all")
    if kind == "clv" and not needs_target(estimator):
        raise ValueError(
            f"tuning.kind=clv tunes supervised regressors; {node.get('_target_')} is fitted "
            "without a target (a baseline or BTYD model) and has no validation target to tune on"
        )
    return estimator


def score_fold(kind: str, node: DictConfig, fold: Fold, cfg: DictConfig) -> dict[str, float]:
    """Fit on the fold's training rows and return the validation metrics (no prefix)."""
    estimator = build(kind, node)
    with threadpool_limits(limits=int(cfg.clv.threads)), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. ConvergenceWarning on every trial: no flood
        if kind == "clv":
            estimator.fit(fold.X_train, fold.y_train)
            predicted = np.asarray(estimator.predict(fold.X_val), dtype="float64")
            bad = ~np.isfinite(predicted)
            if bad.any():
                raise ValueError(f"{int(bad.sum())} validation predictions are not finite")
            return value_metrics(fold.y_val, predicted)
        return _segmentation_scores(estimator, fold.X_train, fold.X_val, fold.y_val, cfg)


def refit_holdout(
    kind: str,
    node: DictConfig,
    cfg: DictConfig,
    data_stage: DataStageResult,
    features: FeaturesResult,
) -> tuple[object, dict[str, float]]:
    """Refit on the whole calibration window and score once on the holdout.

    CLV: fitted on the training snapshot (all customers), applied to the indicators at the
    cut-off.  Segmentation: fitted on the indicators at the cut-off (calibration data, no
    target).  Returns the fitted estimator and the holdout metrics (no prefix; empty when the
    data set has no holdout window).
    """
    estimator = build(kind, node)
    with threadpool_limits(limits=int(cfg.clv.threads)):
        if kind == "clv":
            rate = float(cfg.features.targets.discount_rate_monthly)
            h = holdout_frame(data_stage, features, rate)
            estimator.fit(h.X_train, h.y_train)
            predicted = np.asarray(estimator.predict(h.X), dtype="float64")
            return estimator, value_metrics(h.value, predicted)
        X = features.indicators.set_index("customer_id")
        holdout = None
        if features.targets is not None:
            targets = features.targets.set_index("customer_id")["holdout_value"]
            holdout = targets.reindex(X.index).to_numpy(dtype="float64")
        return estimator, _segmentation_scores(estimator, X, X, holdout, cfg)


def _segmentation_scores(
    estimator, X_train: pd.DataFrame, X_val: pd.DataFrame, y_val, cfg: DictConfig
) -> dict[str, float]:
    settings = cfg.segmentation
    estimator.fit(X_train)
    value_col = tier_value_column(X_train, list(settings.tier_value))
    mapping = order_tiers(estimator.labels_, X_train[value_col].to_numpy())
    labels = estimator.labels_ if X_val is X_train else estimator.predict(X_val)
    for cluster in sorted(set(np.unique(labels).tolist()) - set(mapping)):
        mapping[int(cluster)] = len(mapping) + 1  # a cluster no training customer is in
    tiers = assign_tiers(labels, mapping)
    scores = size_metrics(tiers, estimator.n_clusters_, float(settings.min_tier_share))
    if hasattr(estimator, "embedding"):
        space = estimator.embedding(X_val)
        scores.update(internal_metrics(space, tiers, int(settings.silhouette_sample), cfg.seed))
    if y_val is not None:
        scores.update(business_metrics(tiers, np.asarray(y_val, dtype="float64")))
    return {k: float(v) for k, v in scores.items() if v is not None and not math.isnan(v)}
