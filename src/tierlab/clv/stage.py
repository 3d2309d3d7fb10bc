"""The CLV stage: every configured model predicts the same holdout, judged alike.

Supervised models learn from the training snapshot of the features stage (indicators one horizon
before the cut-off, value over the horizon that ends at the cut-off) and are applied to the
indicators at the cut-off; calibration-only models (naive baselines, BTYD) are fitted on the
indicators at the cut-off without a target.  Either way the holdout is seen only by the metrics.

Each model is a child MLflow run (``clv-<name>``) with its parameters and ``clv/...`` metrics; the
parent run gets ``clv/<name>/<metric>``, the comparison table (CSV and Markdown), the predictions
and the plots (gain curves, decile calibration, transactions by calibration frequency).  A
model that does not apply (BTYD without a transaction log, supervised models without history
for a training snapshot) is listed as skipped, one whose fit fails on these data as failed, both
with the reason.
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
from threadpoolctl import threadpool_limits

from tierlab.clv import metrics as M
from tierlab.clv.adapters import FitFailed
from tierlab.clv.plots import (
    plot_decile_calibration,
    plot_gain_curves,
    plot_transactions_by_frequency,
)
from tierlab.clv.regressors import needs_target
from tierlab.data.stage import DataStageResult
from tierlab.features.stage import FeaturesResult
from tierlab.segmentation.preprocess import NotApplicable
from tierlab.segmentation.stage import comparison_markdown
from tierlab.tracking import flatten_config

log = logging.getLogger(__name__)

#: Name of the reference row scoring the generator's true expected value (synthetic data).
TRUTH = "true_expected_value"
#: Metrics in the unit of the target: meaningless for a model predicting another unit.
SCALE_METRICS = ("rmse", "mae", "decile_mape", "decile_wape", "mean_predicted")
TABLE_COLUMNS = (
    "model",
    "status",
    "trained_on",
    "gini",
    "spearman",
    "top10_share",
    "top20_share",
    "top10_lift",
    "top20_lift",
    "rmse",
    "mae",
    "decile_mape",
    "decile_wape",
    "mean_predicted",
    "mean_actual",
    "truth_rmse",
    "truth_mae",
    "truth_spearman",
    "tx_total_ratio",
    "tx_mae",
    "seconds",
    "note",
)


@dataclass
class ModelResult:
    """One model's fitted estimator, predictions and metrics."""

    name: str
    status: str
    trained_on: str = ""
    estimator: object | None = None
    predictions: np.ndarray | None = None
    transactions: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass
class CLVResult:
    """What later stages receive: predictions per model (one column each) and the comparison."""

    predictions: pd.DataFrame
    comparison: pd.DataFrame
    models: dict[str, ModelResult]
    metrics: dict[str, float]


@dataclass
class Holdout:
    """The customers at the cut-off, their indicators and everything the metrics compare with."""

    X: pd.DataFrame
    value: np.ndarray
    truth: np.ndarray | None
    transactions: np.ndarray | None
    value_unit: str
    X_train: pd.DataFrame | None
    y_train: np.ndarray | None
    horizon_months: int
    discount_rate_monthly: float


def holdout_frame(
    data_stage: DataStageResult, features: FeaturesResult, discount_rate_monthly: float
) -> Holdout:
    """Align indicators, targets and the training snapshot on the customers at the cut-off."""
    X = features.indicators.set_index("customer_id")
    targets = features.targets.set_index("customer_id").reindex(X.index)
    value_unit = "profit" if data_stage.data.has("profitability") else "transaction_amount"
    X_train = y_train = None
    if features.training is not None:
        train = features.training.indicators.set_index("customer_id")
        absent = [c for c in X.columns if c not in train.columns]
        if absent:
            log.info("clv: indicators missing in the training snapshot (left NaN): %s", absent)
        X_train = train.reindex(columns=X.columns)
        y_train = (
            features.training.targets.set_index("customer_id")["holdout_value"]
            .reindex(X_train.index)
            .to_numpy(dtype="float64")
        )

    def column(name: str) -> np.ndarray | None:
        return targets[name].to_numpy(dtype="float64") if name in targets else None

    return Holdout(
        X,
        column("holdout_value"),
        column("true_expected_value"),
        column("holdout_transactions"),
        value_unit,
        X_train,
        y_train,
        data_stage.split.holdout_months,
        discount_rate_monthly,
    )


def check_horizon(name: str, estimator, h: Holdout) -> None:
    """A model's own horizon and discount rate (baselines, BTYD) must be the target's."""
    params = estimator.get_params(deep=True)
    expected = {
        "horizon_months": h.horizon_months,
        "discount_rate_monthly": h.discount_rate_monthly,
    }
    for key, value in expected.items():
        ours = [v for k, v in params.items() if k == key or k.endswith(f"__{key}")]
        if any(not np.isclose(float(v), float(value)) for v in ours):
            raise ValueError(
                f"clv.models.{name}: {key}={ours[0]} differs from the holdout target's {value} "
                "(split.holdout_months, features.targets.discount_rate_monthly); a model must "
                "predict the quantity it is scored on"
            )


def evaluate(name: str, node: DictConfig, h: Holdout) -> ModelResult:
    """Fit one model the honest way for its kind, predict the holdout, compute the metrics."""
    started = time.perf_counter()
    estimator = instantiate(node, _convert_="all")
    check_horizon(name, estimator, h)
    supervised = needs_target(estimator)
    trained_on = "training snapshot" if supervised else "calibration at cut-off"
    if supervised and h.X_train is None:
        return ModelResult(
            name, "skipped", trained_on, note="skipped: no training snapshot (too little history)"
        )
    try:
        if supervised:
            estimator.fit(h.X_train, h.y_train)
        else:
            estimator.fit(h.X)
    except NotApplicable as exc:
        log.info("clv %s skipped: %s", name, exc)
        return ModelResult(name, "skipped", trained_on, note=f"skipped: {exc}")
    except FitFailed as exc:
        log.warning("clv %s failed: %s", name, exc)
        return ModelResult(name, "failed", trained_on, note=f"failed: {exc}")
    try:
        predictions = np.asarray(estimator.predict(h.X), dtype="float64")
    except Exception as exc:
        exc.add_note(f"while predicting the holdout with CLV model {name!r}")
        raise
    bad = ~np.isfinite(predictions)
    if bad.any():
        note = f"failed: {int(bad.sum())} predictions are not finite (first at row {bad.argmax()})"
        log.warning("clv %s %s", name, note)
        return ModelResult(name, "failed", trained_on, note=note)
    result = ModelResult(name, "done", trained_on, estimator, predictions)
    result.metrics = M.value_metrics(h.value, predictions)
    notes = []
    same_unit = getattr(estimator, "value_unit", h.value_unit) == h.value_unit
    if not same_unit:
        for key in SCALE_METRICS:
            result.metrics.pop(key, None)
        notes.append(f"predicts {estimator.value_unit}, target is {h.value_unit}: ranks only")
    if h.truth is not None:
        truth = M.value_metrics(h.truth, predictions)
        kept = ("rmse", "mae", "spearman") if same_unit else ("spearman",)
        result.metrics.update({f"truth_{k}": truth[k] for k in kept})
    if hasattr(estimator, "predict_transactions") and h.transactions is not None:
        result.transactions = np.asarray(estimator.predict_transactions(h.X), dtype="float64")
        result.metrics.update(M.transaction_metrics(h.transactions, result.transactions))
    if hasattr(estimator, "fitted_params"):
        result.metrics.update({f"param_{k}": v for k, v in estimator.fitted_params().items()})
    if not np.sum(h.value) > 0:
        notes.append("total holdout value <= 0: Gini and value shares undefined")
    result.metrics["seconds"] = time.perf_counter() - started
    result.note = "; ".join(notes)
    return result


def run_clv_stage(
    cfg: DictConfig,
    data_stage: DataStageResult,
    features: FeaturesResult,
    output_dir: Path,
) -> CLVResult | None:
    """Run every model in ``cfg.clv.models`` and log the comparison; ``None`` without a
    holdout window (nothing to predict against)."""
    settings = cfg.clv
    if not settings.models:
        raise ValueError("clv.models is empty: configure at least one model (conf/clv/model)")
    if features.targets is None:
        log.info("clv: skipped, the data set has no time axis and so no holdout")
        return None
    h = holdout_frame(data_stage, features, float(cfg.features.targets.discount_rate_monthly))
    results: dict[str, ModelResult] = {}
    for name, node in settings.models.items():
        with mlflow.start_run(run_name=f"clv-{name}", nested=True):
            mlflow.log_params(flatten_config(node, int(cfg.tracking.max_param_length)))
            with threadpool_limits(limits=int(settings.threads)):
                result = evaluate(name, node, h)
            mlflow.set_tags({"status": result.status, "trained_on": result.trained_on})
            if result.note:
                mlflow.set_tag("note", result.note[:5000])
            mlflow.log_metrics(_finite({f"clv/{k}": v for k, v in result.metrics.items()}))
        results[name] = result
        log.info("clv %s: %s", name, "; ".join(filter(None, [_brief(result), result.note])))

    done = {n: r for n, r in results.items() if r.predictions is not None}
    predictions = pd.DataFrame({n: r.predictions for n, r in done.items()}, index=h.X.index)
    if h.truth is not None:
        results[TRUTH] = truth_reference(h)
    comparison = comparison_table(results)
    folder = output_dir / "clv"
    folder.mkdir(parents=True, exist_ok=True)
    predictions.reset_index().to_parquet(output_dir / "clv_predictions.parquet", index=False)
    comparison.to_csv(folder / "comparison.csv", index=False)
    (folder / "comparison.md").write_text(comparison_markdown(comparison))
    write_plots(folder, h, done, features)
    mlflow.log_artifacts(str(folder), "clv")
    metrics = _finite({f"clv/{n}/{k}": v for n, r in results.items() for k, v in r.metrics.items()})
    mlflow.log_metrics(metrics)
    return CLVResult(predictions.reset_index(), comparison, results, metrics)


def truth_reference(h: Holdout) -> ModelResult:
    """The generator's true expected value scored like a model: the noise floor of the
    realised holdout (no model can beat its RMSE on average), on synthetic data only."""
    result = ModelResult(TRUTH, "reference", "generator truth", predictions=h.truth)
    result.metrics = M.value_metrics(h.value, h.truth)
    result.note = (
        "not a model: the generator's true expected value; no model beats its RMSE on average"
    )
    if not np.sum(h.value) > 0:
        result.note += "; total holdout value <= 0: Gini and value shares undefined"
    return result


def write_plots(
    folder: Path, h: Holdout, done: dict[str, ModelResult], features: FeaturesResult
) -> None:
    """Gain curves and decile calibration of every model; transactions by calibration
    frequency for the transaction-count models."""
    same_unit = {
        n: r.predictions
        for n, r in done.items()
        if getattr(r.estimator, "value_unit", h.value_unit) == h.value_unit
    }
    figures = {
        "gain_curves.png": plot_gain_curves(h.value, {n: r.predictions for n, r in done.items()}),
        "decile_calibration.png": plot_decile_calibration(h.value, same_unit)
        if same_unit
        else None,
    }
    counted = {n: r for n, r in done.items() if r.transactions is not None}
    if counted and "btyd_frequency" in h.X.columns:
        frequency = h.X["btyd_frequency"].to_numpy(dtype="float64")
        has = ~np.isnan(frequency)
        tables = {
            n: M.transactions_by_frequency(frequency[has], h.transactions[has], r.transactions[has])
            for n, r in counted.items()
        }
        for n, table in tables.items():
            table.to_csv(folder / f"transactions_by_frequency_{n}.csv", index=False)
        figures["transactions_by_frequency.png"] = plot_transactions_by_frequency(tables)
    for n, r in done.items():
        M.decile_table(h.value, r.predictions).to_csv(folder / f"deciles_{n}.csv", index=False)
    for filename, figure in figures.items():
        if figure is not None:
            figure.savefig(folder / filename, dpi=90)
            plt.close(figure)


def comparison_table(results: dict[str, ModelResult]) -> pd.DataFrame:
    """One row per model: status, what it was trained on, every headline metric, the note."""
    rows = []
    for name, r in results.items():
        row = {"model": name, "status": r.status, "trained_on": r.trained_on, "note": r.note}
        row.update(r.metrics)
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.reindex(columns=[c for c in TABLE_COLUMNS if c in table.columns])


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}


def _brief(result: ModelResult) -> str:
    keys = ("gini", "spearman", "top10_share", "rmse", "tx_total_ratio")
    return ", ".join(f"{k}={result.metrics[k]:.3g}" for k in keys if k in result.metrics)
