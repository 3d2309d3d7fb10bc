"""The explain stage: which indicators drive predicted CLV, and each tier of every method.

* CLV models (``explain.clv_models``): TreeExplainer on a seeded sample of customers at the
  cut-off; global importance, beeswarm, dependence plots of the top indicators, and the per-tier
  table (mean |SHAP| and mean signed SHAP within each tier of ``explain.tier_method``).  A model
  that is not a tree ensemble is listed with the reason instead.
* Tiers of every segmentation method: a surrogate LightGBM classifier (fidelity on held-out
  customers: accuracy, macro-F1) and its SHAP drivers per tier; RFM also by its rules.

Everything goes to MLflow under ``explain/`` (CSV tables, PNG plots; metrics
``explain/<method>/surrogate_accuracy`` and ``surrogate_macro_f1``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from tierlab.explain.plots import plot_beeswarm, plot_dependence, plot_tier_drivers
from tierlab.explain.shap_tools import (
    NotExplainable,
    importance_table,
    per_tier_table,
    shap_frame,
)
from tierlab.explain.surrogate import explain_tiers, rfm_rule_table
from tierlab.sampling import check_sample_size, seeded_rows

log = logging.getLogger(__name__)


@dataclass
class ExplainResult:
    """Driver tables per segmentation method, importance per CLV model, and the metrics."""

    tier_drivers: dict[str, pd.DataFrame]
    clv_importance: dict[str, pd.DataFrame]
    notes: dict[str, str]
    metrics: dict[str, float]


def run_explain_stage(cfg: DictConfig, features, segmentation, clv, output_dir: Path):
    """Explain the configured CLV models and every segmentation method's tiers."""
    settings = cfg.explain
    started = time.perf_counter()
    folder = output_dir / "explain"
    folder.mkdir(parents=True, exist_ok=True)
    dictionary = {d.name: d for d in features.dictionary}
    X = features.indicators.set_index("customer_id")
    X = X[[c for c in X.columns if c in dictionary]]
    tiers = segmentation.tiers.set_index("customer_id").reindex(X.index)
    seed, threads = int(cfg.seed), int(settings.threads)
    result = ExplainResult({}, {}, {}, {})
    methods = [m for m in tiers.columns if tiers[m].notna().all()]
    with threadpool_limits(limits=threads):
        for method in tqdm(methods, desc="explain tiers", unit="method", leave=False):
            explain_method(
                method,
                X,
                tiers[method].to_numpy(),
                segmentation,
                dictionary,
                settings,
                seed,
                threads,
                folder,
                result,
            )
        if clv is not None:
            for name in settings.clv_models:
                explain_clv(name, X, tiers, clv, dictionary, settings, seed, folder, result)
    if result.notes:
        pd.Series(result.notes, name="note").rename_axis("item").to_csv(folder / "notes.csv")
    mlflow.log_artifacts(str(folder), "explain")
    result.metrics["explain/seconds"] = time.perf_counter() - started
    mlflow.log_metrics(result.metrics)
    log.info(
        "explain: %d methods, %d CLV models in %.1f s",
        len(methods),
        len(result.clv_importance),
        result.metrics["explain/seconds"],
    )
    return result


def explain_method(
    method, X, tiers, segmentation, dictionary, settings, seed, threads, folder, result
) -> None:
    """Surrogate fidelity and tier drivers of one segmentation method (RFM: plus its rules)."""
    tiers = tiers.astype(int)
    if len(np.unique(tiers)) < 2:
        result.notes[f"seg/{method}"] = "a single tier: nothing to explain"
        return
    full_tiers = tiers
    rows = surrogate_rows(len(X), settings.surrogate_sample, seed)
    if rows is not None:
        log.info(
            "explain %s: surrogate fitted and scored on a seeded sample of %d of %d customers "
            "(explain.surrogate_sample)",
            method,
            len(rows),
            len(X),
        )
        X, tiers = X.iloc[rows], tiers[rows]
    fit = explain_tiers(
        X,
        tiers,
        dictionary,
        float(settings.surrogate_test_share),
        int(settings.tier_sample),
        seed,
        threads,
        int(settings.surrogate_estimators),
    )
    result.tier_drivers[method] = fit.drivers
    result.metrics[f"explain/{method}/surrogate_accuracy"] = fit.accuracy
    result.metrics[f"explain/{method}/surrogate_macro_f1"] = fit.macro_f1
    fit.drivers.to_csv(folder / f"tier_drivers_{method}.csv", index=False)
    top = fit.drivers[fit.drivers["rank"] <= int(settings.top_drivers)]
    top.to_csv(folder / f"tier_top_drivers_{method}.csv", index=False)
    title = (
        f"{method}: top drivers of each tier (surrogate fidelity: accuracy "
        f"{fit.accuracy:.2f}, macro-F1 {fit.macro_f1:.2f} on {fit.n_test:,} held-out)"
    )
    save(
        plot_tier_drivers(fit.drivers, title, int(settings.top_drivers)),
        folder / f"tier_drivers_{method}.png",
    )
    estimator = segmentation.methods[method].estimator
    names = getattr(estimator, "segment_names_", None)
    if names:
        labels = estimator.labels_
        tier_of = {names[c]: int(full_tiers[labels == c][0]) for c in names if (labels == c).any()}
        rules = rfm_rule_table(estimator, tier_of)
        if rules is not None:
            rules.to_csv(folder / f"rules_{method}.csv", index=False)


def surrogate_rows(n: int, sample, seed: int) -> np.ndarray | None:
    """Sorted rows of the seeded sample the tier surrogates see (``explain.surrogate_sample``),
    or ``None`` for every customer (null, or not more customers than the sample)."""
    check_sample_size(sample, "explain.surrogate_sample", 100, "every customer")
    return seeded_rows(n, sample, [seed, 2])


def explain_clv(name, X, tiers, clv, dictionary, settings, seed, folder, result) -> None:
    """SHAP importance, plots and per-tier table of one CLV model (or the reason it has none)."""
    model = clv.models.get(name)
    if model is None or model.estimator is None:
        result.notes[f"clv/{name}"] = "not explained: the model is not in this run or did not fit"
        return
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(X))[: int(settings.clv_sample)]
    sample = X.iloc[np.sort(rows)]
    try:
        values, seen, space = shap_frame(model.estimator, sample)
    except NotExplainable as exc:
        result.notes[f"clv/{name}"] = f"not explained: {exc}"
        log.info("explain clv %s: %s", name, exc)
        return
    importance = importance_table(values, seen.columns, dictionary)
    importance.insert(1, "output_space", space)
    result.clv_importance[name] = importance
    importance.to_csv(folder / f"clv_importance_{name}.csv", index=False)
    method = str(settings.tier_method)
    if method in tiers.columns:
        in_tier = tiers[method].reindex(seen.index).to_numpy().astype(int)
        per_tier_table(values, seen.columns, in_tier, dictionary).to_csv(
            folder / f"clv_shap_by_tier_{name}_{method}.csv", index=False
        )
    where = f"{len(seen):,} customers; SHAP in {space}"
    save(
        plot_beeswarm(values, seen, f"{name}: SHAP values ({where})"),
        folder / f"clv_beeswarm_{name}.png",
    )
    top = importance["indicator"].head(int(settings.dependence_plots)).tolist()
    save(
        plot_dependence(values, seen, top, f"{name}: dependence of the top indicators ({where})"),
        folder / f"clv_dependence_{name}.png",
    )


def save(figure, path: Path) -> None:
    if figure is not None:
        figure.savefig(path, dpi=90)
        plt.close(figure)
