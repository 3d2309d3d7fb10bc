"""The features stage of a run: indicators and targets, written and logged to MLflow."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from tierlab.data.split import CalibrationSplit
from tierlab.data.stage import DataStageResult
from tierlab.features.btyd import BTYD_INDICATORS
from tierlab.features.context import Context
from tierlab.features.dictionary import Indicator, dictionary_frame, dictionary_markdown
from tierlab.features.engine import connect, tables
from tierlab.features.indicators import build_indicators
from tierlab.features.targets import build_targets

log = logging.getLogger(__name__)
MONEY_UNITS = ("currency", "currency per month")


@dataclass
class TrainingSnapshot:
    """Indicators and targets one holdout length earlier (see
    :meth:`CalibrationSplit.training_split`): what supervised CLV models learn from."""

    indicators: pd.DataFrame
    targets: pd.DataFrame
    split: CalibrationSplit


@dataclass
class FeaturesResult:
    """What later stages receive: indicators, targets (``None`` without a time axis), the
    data dictionary and the training snapshot (``None`` when disabled or without history)."""

    indicators: pd.DataFrame
    targets: pd.DataFrame | None
    dictionary: list[Indicator]
    metrics: dict[str, float]
    training: TrainingSnapshot | None = None


def run_features_stage(
    cfg: DictConfig, data_stage: DataStageResult, output_dir: Path
) -> FeaturesResult:
    """Compute indicators as of the cut-off and holdout targets; log them to the active run.

    Artifacts: ``features/data_dictionary.csv`` and ``.md``, ``features/summary.csv``,
    ``features/distributions.png``; files ``indicators.parquet``, ``targets.parquet`` and
    ``btyd_summary.parquet`` in the run's output folder.  Metrics ``features/...`` and
    ``targets/...``.
    """
    data, split = data_stage.data, data_stage.split
    features = OmegaConf.to_container(cfg.features, resolve=True)
    cutoff = split.cutoff if split is not None else data.data_end
    if cutoff is None:  # no time axis at all: attributes as recorded
        cutoff = pd.Timestamp("2100-01-01")
    ctx = Context.from_config(features, cutoff)
    started = time.perf_counter()
    con = connect(features["engine"], features["engine_options"])
    sources = tables(con, data)
    try:
        indicators, dictionary = build_indicators(con, sources, ctx)
        targets = None
        if split is not None:
            targets = build_targets(
                con,
                sources,
                ctx,
                split,
                float(features["targets"]["discount_rate_monthly"]),
                data.truth,
            )
        training = None
        if split is not None and features["training_snapshot"]:
            training = training_snapshot(con, sources, features, split, data.data_start)
    except duckdb.OutOfMemoryException as exc:
        raise MemoryError(out_of_memory_advice(features["engine_options"], exc)) from exc
    seconds = time.perf_counter() - started

    output_dir.mkdir(parents=True, exist_ok=True)
    indicators.to_parquet(output_dir / "indicators.parquet", index=False)
    if targets is not None:
        targets.to_parquet(output_dir / "targets.parquet", index=False)
    btyd = btyd_summary(indicators)
    if btyd is not None:
        btyd.to_parquet(output_dir / "btyd_summary.parquet", index=False)
    if training is not None:
        training.indicators.to_parquet(output_dir / "train_indicators.parquet", index=False)
        training.targets.to_parquet(output_dir / "train_targets.parquet", index=False)
        mlflow.set_tag("training_cutoff", str(training.split.cutoff.date()))
    folder = output_dir / "features"
    folder.mkdir(exist_ok=True)
    dictionary_frame(dictionary).to_csv(folder / "data_dictionary.csv", index=False)
    (folder / "data_dictionary.md").write_text(dictionary_markdown(dictionary))
    summary = indicator_summary(indicators, dictionary)
    summary.to_csv(folder / "summary.csv")
    fig = plot_distributions(indicators, dictionary)
    fig.savefig(folder / "distributions.png", dpi=90)
    plt.close(fig)
    mlflow.log_artifacts(str(folder), "features")

    values = indicators.drop(columns="customer_id")
    metrics = {
        "features/n_customers": float(len(indicators)),
        "features/n_indicators": float(values.shape[1]),
        "features/missing_share": float(values.isna().to_numpy().mean()) if len(values) else 0.0,
        "features/seconds": seconds,
    }
    if targets is not None and len(targets):
        metrics["targets/n_customers"] = float(len(targets))
        metrics["targets/active_share"] = float(targets["holdout_active"].mean())
        metrics["targets/mean_holdout_value"] = float(targets["holdout_value"].mean())
        if "true_expected_value" in targets:
            corr = targets["holdout_value"].corr(targets["true_expected_value"])
            if math.isfinite(corr):
                metrics["targets/truth_correlation"] = float(corr)
    if training is not None:
        metrics["features/training_n_customers"] = float(len(training.indicators))
    mlflow.log_metrics(metrics)
    log.info(
        "features: %d indicators for %d customers in %.1f s on %s",
        values.shape[1],
        len(indicators),
        seconds,
        features["engine"],
    )
    return FeaturesResult(indicators, targets, dictionary, metrics, training)


def out_of_memory_advice(options: dict, exc: Exception) -> str:
    """What to change when DuckDB could not stay within its memory limit."""
    first = str(exc).splitlines()[0]
    return (
        f"features: DuckDB ran out of memory under features.engine_options.memory_limit="
        f"{options.get('memory_limit')} with threads={options.get('threads')} ({first}). "
        "Raise memory_limit (it bounds DuckDB's buffers, not the result frames), lower threads "
        "(each thread holds its own buffers), or point temp_directory at a disk with room to "
        "spill (the 100M-transaction bank of bench/RESULTS_SCALE.md ran within 2GB)."
    )


def training_snapshot(
    con, sources: dict, features: dict, split: CalibrationSplit, data_start: pd.Timestamp | None
) -> TrainingSnapshot | None:
    """Indicators at the training cut-off and targets over its holdout (which ends at the
    real cut-off); ``None`` (logged) when the data do not cover the longest indicator window
    before the training cut-off."""
    history = max(int(w) for w in features["windows_months"])
    earlier = split.training_split(data_start, history)
    if earlier is None:
        log.info(
            "features: no training snapshot: the data (from %s) do not cover %d months of "
            "indicator history before %d months ahead of the cut-off %s; supervised CLV models "
            "will be skipped",
            None if data_start is None else pd.Timestamp(data_start).date(),
            history,
            split.holdout_months,
            split.cutoff.date(),
        )
        return None
    ctx = Context.from_config(features, earlier.cutoff)
    indicators, _ = build_indicators(con, sources, ctx)
    rate = float(features["targets"]["discount_rate_monthly"])
    targets = build_targets(con, sources, ctx, earlier, rate, truth=None)
    return TrainingSnapshot(indicators, targets, earlier)


def btyd_summary(indicators: pd.DataFrame) -> pd.DataFrame | None:
    """The BTYD summary in the standard column names, for customers with a purchase."""
    names = BTYD_INDICATORS
    if not set(names) <= set(indicators.columns):
        return None
    frame = indicators[["customer_id", *names]].rename(columns=names)
    return frame.dropna(subset=["frequency"]).reset_index(drop=True)


def indicator_summary(indicators: pd.DataFrame, dictionary: list[Indicator]) -> pd.DataFrame:
    """Family, unit, missing share, mean and quantiles of every indicator."""
    values = indicators[[d.name for d in dictionary]].astype("float64")
    summary = values.describe(percentiles=[0.05, 0.5, 0.95]).T
    summary.insert(0, "family", [d.family for d in dictionary])
    summary.insert(1, "unit", [d.unit for d in dictionary])
    summary.insert(2, "missing_share", values.isna().mean().to_numpy())
    return summary


def plot_distributions(
    indicators: pd.DataFrame, dictionary: list[Indicator], max_panels: int = 36
) -> plt.Figure:
    """Histograms of the indicators (money on a signed log scale), coloured by family."""
    shown = [d for d in dictionary if d.unit not in ("flag",)][:max_panels]
    cols = 6
    rows = max(1, math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.3 * rows), squeeze=False)
    colours = dict(zip(sorted({d.family for d in dictionary}), plt.cm.tab10.colors, strict=False))
    for ax, ind in zip(axes.ravel(), shown, strict=False):
        x = indicators[ind.name].astype("float64").dropna().to_numpy()
        label = ind.name
        if ind.unit in MONEY_UNITS:
            x = np.sign(x) * np.log10(1.0 + np.abs(x))
            label += " (signed log10)"
        if len(x):
            ax.hist(x, bins=40, color=colours[ind.family])
        ax.set_title(label, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[len(shown) :]:
        ax.axis("off")
    fig.suptitle(
        f"Indicator distributions at the cut-off ({len(indicators):,} customers; "
        f"{len(shown)} of {len(dictionary)} indicators, flags omitted)"
    )
    fig.tight_layout()
    return fig
