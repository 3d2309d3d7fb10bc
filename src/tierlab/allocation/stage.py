"""The allocation stage: differentiated service, i.e. who gets the scarce service levels.

Given each customer's predicted value (a CLV model of this run), value tier (a segmentation
method) and RFM segment, the stage assigns every customer to one level of the service catalogue
(``conf/allocation``) under four policies (uniform, RFM rules, top-down by tier, optimised),
scores them under the bank's ASSUMED effects and, on the synthetic bank, under its TRUE
response (:mod:`tierlab.data.service_response`), and tests how the ranking holds when the
assumed effects are off.  Outputs go to ``output_dir/allocation/`` and to the MLflow artifact
path ``allocation/``; metrics are ``allocation/<policy>/<metric>`` and
``allocation/solver/...``.  See ``docs/allocation.md``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from tierlab.allocation import evaluate as E
from tierlab.allocation import policies as P
from tierlab.allocation.catalogue import (
    Catalogue,
    assumed_increment,
    by_tier,
    horizon_cost,
    net_gain,
)
from tierlab.allocation.plots import plot_coverage, plot_gains, plot_sensitivity
from tierlab.allocation.solvers import Problem, Solution, solve, solve_greedy
from tierlab.clv.stage import CLVResult
from tierlab.data.service_response import ServiceResponse
from tierlab.data.stage import DataStageResult
from tierlab.features.stage import FeaturesResult
from tierlab.segmentation.stage import SegmentationResult, comparison_markdown

log = logging.getLogger(__name__)
SOLVERS = ("exact", "greedy", "auto")


@dataclass
class AllocationResult:
    """What the stage returns: the comparison table, assignments per policy and metrics."""

    comparison: pd.DataFrame
    assignments: pd.DataFrame
    solution: Solution | None
    metrics: dict[str, float]


@dataclass
class Inputs:
    """Per customer, aligned on the indicators' customers: id, predicted value, tier."""

    ids: np.ndarray
    value: np.ndarray
    tiers: np.ndarray


def gather(
    settings: dict,
    features: FeaturesResult,
    segmentation: SegmentationResult,
    clv,
    target_unit: str = "profit",
) -> Inputs:
    """Predicted value and tier per customer, with clear errors when a source is missing.

    ``target_unit`` is what the CLV target measures (``profit`` when the data set has a
    profitability table); a model predicting another unit (BTYD models predict transaction
    value) cannot be weighed against service costs and is refused.
    """
    ids = features.indicators["customer_id"].to_numpy()
    model = settings["value_model"]
    if clv is None:
        raise ValueError(
            f"allocation.value_model={model!r}: the allocation stage needs the CLV stage's "
            "predictions, and this run has none (the data set has no holdout window)"
        )
    predictions = clv.predictions.set_index("customer_id")
    if model not in predictions.columns:
        raise ValueError(
            f"allocation.value_model={model!r} has no predictions in this run; CLV models with "
            f"predictions: {list(predictions.columns)}"
        )
    estimator = getattr(getattr(clv, "models", {}).get(model), "estimator", None)
    unit = getattr(estimator, "value_unit", target_unit)
    if unit != "profit":
        raise ValueError(
            f"allocation.value_model={model!r} predicts {unit}, not profit: service costs can "
            "only be weighed against predicted profit; choose a model trained on the profit "
            "target (e.g. hurdle_lightgbm)"
        )
    value = predictions[model].reindex(ids).to_numpy(dtype="float64")
    method = settings["tier_method"]
    tiers = segmentation.tiers.set_index("customer_id")
    if method not in tiers.columns:
        raise ValueError(
            f"allocation.tier_method={method!r} has no tiers in this run; segmentation methods "
            f"with tiers: {list(tiers.columns)}"
        )
    tier = tiers[method].reindex(ids).to_numpy(dtype="float64")
    untiered = ~np.isfinite(tier)
    if untiered.any():
        raise ValueError(
            f"allocation.tier_method={method!r}: {int(untiered.sum())} customers have no tier "
            f"(first customer_id {ids[untiered.argmax()]})"
        )
    bad = ~np.isfinite(value)
    if bad.any():
        raise ValueError(
            f"allocation.value_model={model!r}: {int(bad.sum())} customers have no finite "
            f"prediction (first customer_id {ids[bad.argmax()]})"
        )
    return Inputs(ids, value, tier.astype(np.int64))


def check_settings(settings: dict) -> None:
    """Value rules of ``allocation.*`` that the catalogue parser does not cover."""
    if settings["solver"] not in SOLVERS:
        raise ValueError(f"allocation.solver={settings['solver']!r}; expected one of {SOLVERS}")
    unknown = [p for p in settings["policies"] if p not in P.POLICIES]
    if unknown or not settings["policies"]:
        raise ValueError(
            f"allocation.policies={settings['policies']}: {unknown or 'empty'}; "
            f"choose from {list(P.POLICIES)}"
        )
    budget = settings["budget_per_year"]
    if budget is not None and (isinstance(budget, bool) or not budget >= 0):
        raise ValueError(f"allocation.budget_per_year={budget!r} should be >= 0 or null")
    scales = settings["sensitivity_scales"]
    if not scales or any(not s > 0 for s in scales):
        raise ValueError(f"allocation.sensitivity_scales={scales} should be non-empty and > 0")


def run_allocation_stage(
    cfg: DictConfig,
    data_stage: DataStageResult,
    features: FeaturesResult,
    segmentation: SegmentationResult,
    clv: CLVResult | None,
    output_dir: Path,
) -> AllocationResult:
    """Assign service levels under every configured policy, compare and log them."""
    settings = OmegaConf.to_container(cfg.allocation, resolve=True)
    check_settings(settings)
    catalogue = Catalogue.from_config(settings["levels"], settings["baseline_level"])
    unit = "profit" if data_stage.data.has("profitability") else "transaction_amount"
    data = gather(settings, features, segmentation, clv, unit)
    horizon = int(data_stage.split.holdout_months)
    rate = float(cfg.features.targets.discount_rate_monthly)
    attrition = by_tier(
        settings["assumed_attrition_annual"], "allocation.assumed_attrition_annual", 0.0, 1.0, False
    )

    def increment(cat: Catalogue, mask: np.ndarray | None) -> np.ndarray:
        keep = slice(None) if mask is None else mask
        return assumed_increment(cat, data.value[keep], data.tiers[keep], attrition, horizon, rate)

    assumed = increment(catalogue, None)
    true = true_increment(settings, data_stage, data.ids, catalogue, horizon, rate)
    cost = horizon_cost(catalogue.costs_per_year, horizon, rate)
    budget = settings["budget_per_year"]
    problem = Problem(
        net_gain(assumed, catalogue, horizon, rate),
        catalogue.capacities,
        catalogue.extra_costs_per_year,
        None if budget is None else float(budget),
        catalogue.baseline,
    )
    assignments, notes, seconds, solver_metrics, solution = {}, {}, {}, {}, None
    for name in settings["policies"]:
        started = time.perf_counter()
        try:
            if name == "optimised":
                solution = solve(
                    problem,
                    settings["solver"],
                    int(settings["exact_max_customers"]),
                    float(settings["time_limit_seconds"]),
                )
                assignments[name] = solution.assignment
                notes[name] = f"{solution.solver}: {solution.note}; stated gap {solution.gap:.2e}"
                solver_metrics = solver_report(problem, solution, settings)
            else:
                assignments[name] = run_policy(name, catalogue, data, segmentation, settings)
                notes[name] = ""
        except P.Skipped as exc:
            log.info("allocation %s skipped: %s", name, exc)
            notes[name] = f"skipped: {exc}"
            continue
        broken = problem.violations(assignments[name])
        if broken:
            raise RuntimeError(f"allocation policy {name!r} broke its constraints: {broken}")
        seconds[name] = time.perf_counter() - started

    references = {"uniform": P.uniform(catalogue, len(data.ids))}
    if "top_down" in assignments:
        references["top_down"] = assignments["top_down"]
    rows = [
        {
            **E.policy_row(n, a, catalogue, assumed, true, cost, references),
            "seconds": seconds[n],
            "note": notes[n],
        }
        for n, a in assignments.items()
    ]
    rows += [{"policy": n, "note": note} for n, note in notes.items() if n not in assignments]
    comparison = pd.DataFrame(rows)
    scales = [float(s) for s in settings["sensitivity_scales"]]
    sensitivity = E.sensitivity(
        assignments, catalogue, increment, cost, tqdm(scales, desc="allocation sensitivity")
    )
    break_even = E.break_even(assignments, catalogue, increment, cost, data.tiers)
    coverage = E.coverage(assignments, data.tiers, catalogue)
    table = pd.DataFrame({"customer_id": data.ids, "tier": data.tiers, "value": data.value})
    for n, a in assignments.items():
        table[n] = np.asarray(catalogue.names)[a]
    write_outputs(
        output_dir / "allocation",
        catalogue,
        comparison,
        sensitivity,
        break_even,
        coverage,
        table,
        assignments,
    )
    metrics = collect_metrics(comparison, break_even, solver_metrics)
    mlflow.log_metrics(metrics)
    for _, row in comparison.iterrows():
        log.info("allocation %s: %s", row["policy"], _brief(row))
    return AllocationResult(comparison, table, solution, metrics)


def run_policy(name, catalogue, data: Inputs, segmentation, settings) -> np.ndarray:
    """Assignment of one of the non-optimised policies."""
    budget = settings["budget_per_year"]
    if name == "uniform":
        return P.uniform(catalogue, len(data.ids))
    if name == "top_down":
        return P.top_down(catalogue, data.tiers, data.value, budget)
    method = segmentation.methods.get(settings["rfm_method"])
    estimator = None if method is None else method.estimator
    if estimator is None or not hasattr(estimator, "segment_names_"):
        raise P.Skipped(
            f"allocation.rfm_method={settings['rfm_method']!r} has no fitted RFM segments here"
        )
    names = np.asarray([estimator.segment_names_.get(k, "other") for k in estimator.labels_])
    segments = pd.Series(names, index=estimator.scores_.index).reindex(data.ids)
    scores = estimator.scores_.sum(axis=1).reindex(data.ids).to_numpy()
    return P.rfm_rules(catalogue, segments, scores, settings["rfm_rules"], budget)


def true_increment(settings, data_stage, ids, catalogue, horizon, rate) -> np.ndarray | None:
    """TRUE incremental profit ``(n, L)`` under the synthetic bank's response, or ``None``
    when the data set has no ground truth or no true response is configured."""
    truth = data_stage.data.truth
    effects = (settings.get("truth") or {}).get("effects")
    if truth is None or not effects or "latent_segment" not in truth.columns:
        return None
    unknown = set(effects) - set(catalogue.names)
    if unknown:
        raise ValueError(
            f"allocation.truth.effects: levels {sorted(unknown)} are not in {catalogue.names}"
        )
    response = ServiceResponse(effects)
    aligned = truth.set_index("customer_id").reindex(ids).reset_index()
    aligned["latent_segment"] = aligned["latent_segment"].astype(truth["latent_segment"].dtype)
    return np.column_stack(
        [response.incremental_profit(aligned, name, horizon, rate) for name in catalogue.names]
    )


def solver_report(problem: Problem, solution: Solution, settings: dict) -> dict[str, float]:
    """Solver metrics; with the exact solver also the greedy's certificate and realised gap."""
    out = {
        "seconds": solution.seconds,
        "stated_gap": solution.gap,
        "objective": solution.value,
        "bound": solution.bound,
        "exact": float(solution.solver == "exact"),
    }
    if solution.solver == "exact" and settings["greedy_check"]:
        greedy = solve_greedy(problem)
        out["greedy_seconds"] = greedy.seconds
        out["greedy_gap_certificate"] = greedy.gap
        if solution.value > 0:
            out["greedy_gap_realised"] = (solution.value - greedy.value) / solution.value
    return out


def write_outputs(
    folder, catalogue, comparison, sensitivity, break_even, coverage, table, assignments
):
    """CSV, Markdown and PNG files in ``folder``, logged under the artifact path allocation/;
    the per-customer assignments go beside it (``allocation_assignments.parquet``), not to MLflow."""
    folder.mkdir(parents=True, exist_ok=True)
    comparison.to_csv(folder / "comparison.csv", index=False)
    (folder / "comparison.md").write_text(comparison_markdown(comparison))
    sensitivity.to_csv(folder / "sensitivity.csv", index=False)
    break_even.to_csv(folder / "break_even.csv", index=False)
    (folder / "break_even.md").write_text(comparison_markdown(break_even))
    coverage.to_csv(folder / "coverage_by_tier.csv", index=False)
    # per-customer levels stay in the run's output folder, out of the tracking store
    table.to_parquet(folder.parent / "allocation_assignments.parquet", index=False)
    if "optimised" in assignments and "top_down" in assignments:
        moves = E.transitions(
            assignments["top_down"],
            assignments["optimised"],
            catalogue.names,
            ("top_down", "optimised"),
        )
        moves.to_csv(folder / "transitions_top_down_to_optimised.csv")
    baseline = catalogue.names[catalogue.baseline]
    done = comparison.dropna(subset=["extra_cost"]) if "extra_cost" in comparison else comparison
    for filename, figure in (
        ("sensitivity.png", plot_sensitivity(sensitivity, done)),
        ("coverage_by_tier.png", plot_coverage(coverage, baseline)),
        ("net_gain.png", plot_gains(done)),
    ):
        figure.savefig(folder / filename, dpi=90)
        plt.close(figure)
    mlflow.log_artifacts(str(folder), "allocation")


def collect_metrics(comparison, break_even, solver_metrics) -> dict[str, float]:
    """``allocation/<policy>/<metric>``, ``allocation/break_even/<policy>/<level>`` and
    ``allocation/solver/<metric>``; non-finite values are left out."""
    metrics = {}
    for _, row in comparison.iterrows():
        for key, value in row.items():
            if key in ("policy", "note") or not isinstance(value, int | float | np.number):
                continue
            metrics[f"allocation/{row['policy']}/{key}"] = float(value)
    for _, row in break_even.iterrows():
        metrics[f"allocation/break_even/{row['policy']}/{row['level']}"] = row["break_even_scale"]
    metrics.update({f"allocation/solver/{k}": float(v) for k, v in solver_metrics.items()})
    return {k: v for k, v in metrics.items() if math.isfinite(v)}


def _brief(row: pd.Series) -> str:
    keys = ("assumed_net_gain", "true_net_gain", "extra_cost", "moved_vs_uniform")
    parts = [f"{k}={row[k]:.4g}" for k in keys if k in row and pd.notna(row[k])]
    return ", ".join(parts + ([row["note"]] if row.get("note") else []))
