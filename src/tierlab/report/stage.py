"""The bootstrap stage of ``tierlab run``: confidence intervals the report shows.

Computed at run time, where the per-customer holdout values and predictions are in memory, and
logged as two small tables (``bootstrap/intervals.csv`` and ``bootstrap/differences.csv``), so
the report is built from the tracking store alone without any customer-level data in it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from omegaconf import DictConfig
from tqdm.auto import tqdm

from tierlab.clv.stage import TRUTH, CLVResult
from tierlab.features.stage import FeaturesResult
from tierlab.report import bootstrap as B
from tierlab.segmentation.stage import SegmentationResult

log = logging.getLogger(__name__)


@dataclass
class BootstrapResult:
    intervals: pd.DataFrame
    differences: pd.DataFrame


def run_bootstrap_stage(
    cfg: DictConfig,
    features: FeaturesResult,
    segmentation: SegmentationResult,
    clv: CLVResult | None,
    output_dir: Path,
) -> BootstrapResult | None:
    """Intervals for every CLV model's and every segmentation method's headline metrics;
    ``None`` without a holdout window or with ``report.bootstrap.n_resamples: 0``."""
    settings = cfg.report.bootstrap
    n_resamples = int(settings.n_resamples)
    if n_resamples < 0:
        raise ValueError(
            f"report.bootstrap.n_resamples={n_resamples} should be >= 0 (0 = no intervals)"
        )
    if features.targets is None or n_resamples == 0:
        log.info("bootstrap: skipped (%s)", "no holdout" if n_resamples else "n_resamples: 0")
        return None
    holdout = features.targets.set_index("customer_id")
    tables, differences = [], []
    progress = tqdm_factory(n_resamples)

    tiers = segmentation.tiers.set_index("customer_id")
    if not tiers.empty:
        value = holdout["holdout_value"].reindex(tiers.index).to_numpy(dtype="float64")

        def segmentation_scorers(rows):
            return {
                name: B.segmentation_scorer(_rows(tiers[name].to_numpy(), rows), _rows(value, rows))
                for name in tiers.columns
            }

        scorers, n, population = _subsampled(segmentation_scorers, len(tiers), settings)
        table, diff = B.intervals(
            scorers, n, n_resamples, float(settings.confidence), int(settings.seed),
            B.SEGMENTATION_METRICS, progress=progress("bootstrap segmentation"),
            population=population,
        )  # fmt: skip
        tables.append(table.assign(kind="segmentation"))
        differences.append(diff.assign(kind="segmentation"))

    if clv is not None and len(clv.predictions.columns) > 1:
        predictions = clv.predictions.set_index("customer_id")
        actual = holdout["holdout_value"].reindex(predictions.index).to_numpy(dtype="float64")
        columns = {name: predictions[name].to_numpy(dtype="float64") for name in predictions}
        if TRUTH in holdout.columns and TRUTH in clv.models:
            columns[TRUTH] = holdout[TRUTH].reindex(predictions.index).to_numpy(dtype="float64")

        def clv_scorers(rows):
            return {
                name: B.clv_scorer(
                    _rows(actual, rows),
                    _rows(column, rows),
                    scale=name == TRUTH or "rmse" in clv.models[name].metrics,
                )
                for name, column in columns.items()
            }

        contenders = [name for name in columns if name != TRUTH]
        scorers, n, population = _subsampled(clv_scorers, len(actual), settings)
        table, diff = B.intervals(
            scorers, n, n_resamples, float(settings.confidence), int(settings.seed),
            B.CLV_METRICS, contenders=contenders, progress=progress("bootstrap CLV"),
            population=population,
        )  # fmt: skip
        tables.append(table.assign(kind="clv"))
        differences.append(diff.assign(kind="clv"))

    if not tables:
        return None
    result = BootstrapResult(
        pd.concat(tables, ignore_index=True)[["kind", *tables[0].columns.drop("kind")]],
        pd.concat(differences, ignore_index=True)[["kind", *B.DIFFERENCE_COLUMNS]],
    )
    folder = output_dir / "bootstrap"
    folder.mkdir(parents=True, exist_ok=True)
    result.intervals.to_csv(folder / "intervals.csv", index=False)
    result.differences.to_csv(folder / "differences.csv", index=False)
    mlflow.log_artifacts(str(folder), "bootstrap")
    for row in result.differences.itertuples():
        log.info(
            "bootstrap %s %s: %s ahead of %s by %.4g [%.4g, %.4g]",
            row.kind, row.metric, row.best, row.runner_up, row.difference, row.ci_low, row.ci_high,
        )  # fmt: skip
    return result


def _rows(values, rows):
    return values if rows is None else values[rows]


def _subsampled(scorers, n: int, settings) -> tuple[dict, int, tuple | None]:
    """``scorers(rows)`` on every customer, or, above ``report.bootstrap.max_customers``, on a
    seeded subsample, with the estimates of every customer (``B.intervals(population=...)``)."""
    rows = B.customer_subsample(n, settings.max_customers, int(settings.seed))
    if rows is None:
        return scorers(None), n, None
    log.info(
        "bootstrap: resamples drawn from a seeded subsample of %d of %d customers "
        "(report.bootstrap.max_customers) and rescaled to all of them by sqrt(m/n); estimates "
        "on every customer",
        len(rows),
        n,
    )
    full = {name: scorer(np.ones(n)) for name, scorer in scorers(None).items()}
    return scorers(rows), len(rows), (full, n)


def tqdm_factory(total: int):
    """A progress-bar wrapper for the resample loop of one table."""

    def factory(description: str):
        return lambda iterator: tqdm(
            iterator, total=total, desc=description, unit="resample", leave=False, mininterval=2.0
        )

    return factory
