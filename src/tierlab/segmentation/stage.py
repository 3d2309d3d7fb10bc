"""The segmentation stage: every configured method on the same indicators, judged alike.

Internal metrics (silhouette, Calinski-Harabasz, Davies-Bouldin) are computed for every method in
one shared space, the standardised ``segmentation.indicators``, so that they compare methods.
Each method is a child MLflow run (``seg-<name>``) with its parameters, ``seg/...`` metrics and
tier profile; the parent run gets ``seg/<name>/<metric>`` for every method, the comparison
table (CSV and Markdown) and the plots.  A method that does not apply to the data set (RFM
without a recency column, value tiers without the value column) is listed as skipped with the
reason.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig

from tierlab.data.stage import DataStageResult
from tierlab.features.stage import FeaturesResult
from tierlab.segmentation import metrics as M
from tierlab.segmentation.methods import NotApplicable
from tierlab.segmentation.plots import plot_k_selection, plot_tier_profiles, plot_value_share
from tierlab.segmentation.preprocess import IndicatorTransform
from tierlab.segmentation.tiers import assign_tiers, order_tiers, tier_profile
from tierlab.tracking import flatten_config

log = logging.getLogger(__name__)

#: Columns of the comparison table, in order (those a data set cannot supply stay empty).
TABLE_COLUMNS = (
    "method",
    "status",
    "n_tiers",
    "n_empty_clusters",
    "smallest_tier_share",
    "degenerate",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "stability_ari",
    "value_share_tier1",
    "top_tier_lift",
    "spearman",
    "contradiction_share",
    "tier_gap",
    "latent_ari",
    "seconds",
    "note",
)


@dataclass
class MethodResult:
    """One method's fitted estimator, tiers (1 = most valuable) and metrics."""

    name: str
    estimator: object | None
    tiers: np.ndarray | None
    profile: pd.DataFrame | None
    metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass
class SegmentationResult:
    """What later stages receive: tiers per method (one column each) and the comparison."""

    tiers: pd.DataFrame
    comparison: pd.DataFrame
    methods: dict[str, MethodResult]
    metrics: dict[str, float]


def tier_value_column(indicators: pd.DataFrame, candidates: list[str]) -> str:
    """The first configured calibration-value column the indicators have."""
    for name in candidates:
        if name in indicators.columns:
            return name
    raise ValueError(
        f"segmentation.tier_value={candidates}: none of these value columns is an indicator of "
        f"this data set (indicators: {sorted(indicators.columns)[:20]} ...)"
    )


def evaluate(
    name: str,
    node: DictConfig,
    X: pd.DataFrame,
    space: np.ndarray,
    value: pd.Series,
    holdout: pd.Series | None,
    latent: pd.Series | None,
    settings: DictConfig,
    seed: int,
) -> MethodResult:
    """Fit one method and compute every metric the data set supports."""
    started = time.perf_counter()
    estimator = instantiate(node, _convert_="all")
    try:
        estimator.fit(X)
    except NotApplicable as exc:
        log.info("segmentation %s skipped: %s", name, exc)
        return MethodResult(name, None, None, None, note=f"skipped: {exc}")
    except ValueError as exc:  # a setting that does not fit these data: name its config node
        raise ValueError(f"segmentation.methods.{name}: {exc}") from exc
    rows = getattr(estimator, "n_fit_rows_", len(X))
    if rows < len(X):
        log.info(
            "segmentation %s: fitted on a seeded sample of %d of %d customers (fit_sample), "
            "every customer assigned",
            name,
            rows,
            len(X),
        )
    mapping = order_tiers(estimator.labels_, value.to_numpy())
    tiers = assign_tiers(estimator.labels_, mapping)
    names = getattr(estimator, "segment_names_", None)
    tier_names = None
    if names:
        tier_names = {}
        for cluster, tier in mapping.items():
            tier_names.setdefault(tier, names[cluster])
    columns = [c for c in settings.profile_indicators if c in X.columns]
    profile = tier_profile(tiers, X, value, columns, tier_names)
    result = M.size_metrics(tiers, estimator.n_clusters_, float(settings.min_tier_share))
    result.update(M.internal_metrics(space, tiers, int(settings.silhouette_sample), seed))
    n_refits, stability_sample = int(settings.stability_bootstrap), settings.stability_sample
    result["stability_ari"] = M.stability(estimator, X, n_refits, seed, stability_sample)
    if n_refits > 0 and stability_sample is not None and stability_sample < len(X):
        log.info(
            "segmentation %s: stability refits on seeded resamples of %d of %d customers "
            "(segmentation.stability_sample)",
            name,
            stability_sample,
            len(X),
        )
    notes = []
    selection = getattr(estimator, "selection_", None)
    if selection is not None and len(selection) > 1:
        if estimator.n_clusters_ == selection["k"].max():
            notes.append(f"k={estimator.n_clusters_} is the top of the range searched")
        elif estimator.n_clusters_ == selection["k"].min():
            notes.append(f"k={estimator.n_clusters_} is the bottom of the range searched")
    if holdout is not None:
        result.update(M.business_metrics(tiers, holdout.to_numpy()))
        if not holdout.sum() > 0:
            notes.append("total holdout value <= 0: value shares and lift undefined")
    else:
        notes.append("no holdout window: business metrics skipped")
    if latent is not None:
        result.update(M.truth_metrics(estimator.labels_, latent))
    result["seconds"] = time.perf_counter() - started
    return MethodResult(name, estimator, tiers, profile, result, "; ".join(notes))


def run_segmentation_stage(
    cfg: DictConfig,
    data_stage: DataStageResult,
    features: FeaturesResult,
    output_dir: Path,
) -> SegmentationResult:
    """Run every method in ``cfg.segmentation.methods`` and log the comparison."""
    settings = cfg.segmentation
    if not settings.methods:
        raise ValueError("segmentation.methods is empty: configure at least one method")
    X = features.indicators.set_index("customer_id")
    value = X[tier_value_column(X, list(settings.tier_value))]
    # one space for every method's internal metrics: the standardised clustering indicators
    shared = IndicatorTransform(features=_listed(settings.indicators)).fit(X)
    if shared.missing_features_:
        log.info("segmentation: indicators not in this data set: %s", shared.missing_features_)
    space = shared.transform(X)
    holdout = None
    if features.targets is not None:
        holdout = features.targets.set_index("customer_id")["holdout_value"].reindex(X.index)
    latent = None
    truth = data_stage.data.truth
    if truth is not None and "latent_segment" in truth.columns:
        latent = truth.set_index("customer_id")["latent_segment"].astype(str).reindex(X.index)

    results: dict[str, MethodResult] = {}
    for name, node in settings.methods.items():
        with mlflow.start_run(run_name=f"seg-{name}", nested=True):
            mlflow.log_params(flatten_config(node, int(cfg.tracking.max_param_length)))
            result = evaluate(name, node, X, space, value, holdout, latent, settings, int(cfg.seed))
            mlflow.set_tag("status", "skipped" if result.tiers is None else "done")
            if result.note:
                mlflow.set_tag("note", result.note[:5000])
            finite = {f"seg/{k}": v for k, v in result.metrics.items() if math.isfinite(v)}
            mlflow.log_metrics(finite)
            if result.profile is not None:
                mlflow.log_text(result.profile.to_csv(), f"seg/{name}_tier_profile.csv")
        results[name] = result
        log.info(
            "segmentation %s: %s",
            name,
            "; ".join(filter(None, [_brief(result.metrics), result.note])),
        )

    comparison = comparison_table(results)
    tiers = pd.DataFrame(
        {n: r.tiers for n, r in results.items() if r.tiers is not None}, index=X.index
    ).reset_index()
    folder = output_dir / "segmentation"
    folder.mkdir(parents=True, exist_ok=True)
    tiers.to_parquet(output_dir / "tiers.parquet", index=False)
    comparison.to_csv(folder / "comparison.csv", index=False)
    (folder / "comparison.md").write_text(comparison_markdown(comparison))
    for n, r in results.items():
        if r.profile is not None:
            r.profile.to_csv(folder / f"tier_profile_{n}.csv")
    done = {n: r for n, r in results.items() if r.tiers is not None}
    for filename, figure in (
        ("value_share_by_tier.png", plot_value_share(done, holdout, value)),
        ("tier_profiles.png", plot_tier_profiles(done)),
        ("k_selection.png", plot_k_selection(done)),
    ):
        if figure is not None:
            figure.savefig(folder / filename, dpi=90)
            plt.close(figure)
    mlflow.log_artifacts(str(folder), "segmentation")
    metrics = {
        f"seg/{n}/{k}": v
        for n, r in results.items()
        for k, v in r.metrics.items()
        if math.isfinite(v)
    }
    mlflow.log_metrics(metrics)
    return SegmentationResult(tiers, comparison, results, metrics)


def comparison_table(results: dict[str, MethodResult]) -> pd.DataFrame:
    """One row per method: status, every metric, the note."""
    rows = []
    for name, r in results.items():
        row = {"method": name, "status": "skipped" if r.tiers is None else "done", "note": r.note}
        row.update(r.metrics)
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.reindex(columns=[c for c in TABLE_COLUMNS if c in table.columns])


def comparison_markdown(table: pd.DataFrame) -> str:
    """A comparison table as Markdown (numbers to 3 decimals and right-aligned, missing
    metrics blank, the ``seconds`` column left out)."""
    shown = table.drop(columns=["seconds"], errors="ignore")
    header = "| " + " | ".join(shown.columns) + " |"
    rule = (
        "|"
        + "|".join(
            "---:" if pd.api.types.is_numeric_dtype(shown[c]) else "---" for c in shown.columns
        )
        + "|"
    )
    lines = [header, rule]
    for _, row in shown.iterrows():
        cells = []
        for col in shown.columns:
            v = row[col]
            if isinstance(v, float):
                cells.append("" if math.isnan(v) else f"{v:.3f}")
            else:
                cells.append(str(v) if v == v else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _listed(indicators) -> str | list[str]:
    return indicators if isinstance(indicators, str) else list(indicators)


def _brief(metrics: dict[str, float]) -> str:
    keys = ("n_tiers", "silhouette", "stability_ari", "top_tier_lift", "spearman")
    return ", ".join(f"{k}={metrics[k]:.3g}" for k in keys if k in metrics)
