"""Explaining tiers that have no model: a surrogate classifier, its fidelity, its SHAP drivers.

Clusters (k-means, Gaussian mixtures, quantile cuts, RFM rules) have no model whose inputs can be
attributed.  A LightGBM classifier learns indicators -> tier on part of the customers; its
*fidelity* (accuracy and macro-F1 on the customers it did not see) says how far its explanation
can be trusted: an explanation of a surrogate that disagrees with the tiers is worthless, so the
fidelity is reported next to every driver table.  The drivers of tier k are the indicators with
the largest mean |SHAP| of class k among the customers the method put in tier k.

RFM tiers are explained by construction as well: :func:`rfm_rule_table` writes each segment's
rule in indicator units (from the fitted score edges).
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from tierlab.explain.shap_tools import per_tier_table, shap_frame
from tierlab.features.dictionary import Indicator


@dataclass
class SurrogateResult:
    """Fidelity of the surrogate and the drivers of every tier."""

    accuracy: float
    macro_f1: float
    n_train: int
    n_test: int
    drivers: pd.DataFrame  # tier, n_customers, rank, indicator, mean_abs_shap, mean_shap, ...


def explain_tiers(
    X: pd.DataFrame,
    tiers: np.ndarray,
    dictionary: dict[str, Indicator],
    test_share: float,
    sample_size: int,
    seed: int,
    threads: int,
    n_estimators: int = 100,
) -> SurrogateResult:
    """Fit the surrogate on ``1 - test_share`` of the customers (stratified, seeded), score its
    fidelity on the rest, and explain the held-out customers (a seeded sample of at most
    ``sample_size``) with TreeExplainer."""
    tiers = np.asarray(tiers)
    counts = pd.Series(tiers).value_counts()
    stratify = tiers if counts.min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, tiers, test_size=test_share, random_state=seed, stratify=stratify
    )
    model = lightgbm.LGBMClassifier(
        n_estimators=n_estimators,
        num_leaves=15,
        # 0.1 diverges on nearly separable tiers (RFM rules: fidelity 0.33 instead of 0.998)
        learning_rate=0.05,
        min_child_samples=10,
        random_state=seed,
        n_jobs=threads,
        verbose=-1,
    ).fit(X_train, y_train)
    predicted = model.predict(X_test)
    # a tier the surrogate never saw (a one-customer tier that fell in the held-out part) has
    # no class to explain it by: its customers are left out of the driver tables
    known = np.flatnonzero(np.isin(y_test, model.classes_))
    sample = np.random.default_rng(seed).permutation(known)[:sample_size]
    X_sample, y_sample = X_test.iloc[sample], y_test[sample]
    values, seen, _ = shap_frame(model, X_sample)
    classes = list(model.classes_)
    if values.ndim == 2:  # two classes: SHAP gives the log-odds of the second class
        values = np.stack([-values, values], axis=-1)
    # each customer's explanation of *its own* tier: the SHAP values of that class
    own = values[np.arange(len(y_sample)), :, [classes.index(t) for t in y_sample]]
    drivers = per_tier_table(own, seen.columns, y_sample, dictionary)
    return SurrogateResult(
        accuracy=float(accuracy_score(y_test, predicted)),
        macro_f1=float(f1_score(y_test, predicted, average="macro")),
        n_train=len(X_train),
        n_test=len(X_test),
        drivers=drivers,
    )


def rfm_rule_table(estimator, tier_of_segment: dict[str, int]) -> pd.DataFrame | None:
    """Each RFM segment's rule in indicator units, e.g. ``recency_days <= 12.0`` for recency
    scores 4-5, in rule order: a customer belongs to the *first* rule that matches, so a later
    rule reads wider than its members; a missing indicator scores 1 (e.g. no transaction ->
    the lowest recency score).  ``None`` for an estimator without rules (score-based RFM)."""
    rules = getattr(estimator, "rules_", None)
    edges = getattr(estimator, "edges_", None)
    if not rules or edges is None:
        return None
    columns = dict(zip("rfm", estimator.feature_names_in_, strict=True))
    rows = []
    for order, (name, ranges) in enumerate(rules, start=1):
        parts = []
        for axis, (low, high) in ranges.items():
            parts.append(_axis_text(columns[axis], edges[axis], low, high, axis == "r"))
        rows.append(
            {
                "order": order,
                "segment": name,
                "tier": tier_of_segment.get(name),
                "rule": " and ".join(parts) or "any customer not matched above",
            }
        )
    return pd.DataFrame(rows)


def _axis_text(column: str, edges: np.ndarray, low: int, high: int, reverse: bool) -> str:
    """Score range [low, high] of one axis as an indicator range.  Scores are quantile bins of
    the edges; recency is reversed (score 5 = the most recent = the fewest days)."""
    bins = len(edges) + 1
    if reverse:  # score s covers the bin bins - s (0-based) of ascending days
        low, high = bins + 1 - high, bins + 1 - low
    lower = None if low <= 1 else float(edges[low - 2])
    upper = None if high >= bins else float(edges[high - 1])
    if lower is None and upper is None:
        return f"any {column}"
    if lower is None:
        return f"{column} <= {upper:.4g}"
    if upper is None:
        return f"{column} > {lower:.4g}"
    return f"{lower:.4g} < {column} <= {upper:.4g}"
