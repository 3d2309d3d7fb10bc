"""How good are a method's tiers?  Internal, stability, business and ground-truth metrics.

Every function returns plain floats keyed by the metric name used under ``seg/`` in MLflow and
in the comparison table.  Metrics that need what a data set does not have (a holdout window,
latent types) are left out by the caller, never faked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr
from sklearn.base import clone
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from tierlab.sampling import check_sample_size


def internal_metrics(
    embedding: np.ndarray, labels: np.ndarray, sample_size: int, seed: int
) -> dict[str, float]:
    """Silhouette (on a seeded sample of ``sample_size`` rows when n is larger),
    Calinski-Harabasz and Davies-Bouldin of ``labels`` in the space ``embedding``.  The stage
    passes one shared space for every method (the standardised ``segmentation.indicators``), so
    the numbers compare methods.  NaN with fewer than two clusters or as many as customers."""
    n, k = len(labels), len(np.unique(labels))
    if not 2 <= k < n:
        return {"silhouette": np.nan, "calinski_harabasz": np.nan, "davies_bouldin": np.nan}
    sample = min(sample_size, n)
    return {
        "silhouette": float(
            silhouette_score(embedding, labels, sample_size=sample, random_state=seed)
        ),
        "calinski_harabasz": float(calinski_harabasz_score(embedding, labels)),
        "davies_bouldin": float(davies_bouldin_score(embedding, labels)),
    }


def fixed_k(estimator):
    """A clone that refits with the number of clusters the fitted estimator chose (stability
    is about the partition, not about choosing k again)."""
    params = estimator.get_params()
    k = int(estimator.n_clusters_)
    fixed = clone(estimator)
    if "k_range" in params and params["k_range"] is not None:
        if "n_clusters" in params:
            fixed.set_params(k_range=None, n_clusters=k)
        else:
            fixed.set_params(k_range=(k, k))
    return fixed


def stability(
    estimator, X: pd.DataFrame, n_bootstrap: int, seed: int, sample_size: int | None = None
) -> float:
    """Mean adjusted Rand index between the fitted partition and the partitions of ``B``
    refits on bootstrap resamples, all predicted on the full data.

    Each resample draws ``len(X)`` customers with replacement, or ``sample_size`` when that is
    smaller (``segmentation.stability_sample``: a refit then costs a sample-sized fit instead of
    a full one; ``None`` or ``>= len(X)`` gives the full-size resamples).
    """
    if n_bootstrap < 1:
        return np.nan
    setting = "segmentation.stability_sample"
    check_sample_size(sample_size, setting, 2, "bootstrap resamples of every customer")
    size = len(X) if sample_size is None else min(int(sample_size), len(X))
    rng = np.random.default_rng(seed)
    reference = estimator.labels_
    scores = []
    for b in range(n_bootstrap):
        rows = rng.integers(0, len(X), size)
        refit = fixed_k(estimator)
        if "random_state" in refit.get_params() and refit.get_params()["random_state"] is not None:
            refit.set_params(random_state=seed + 1 + b)
        refit.fit(X.iloc[rows])
        scores.append(adjusted_rand_score(reference, refit.predict(X)))
    return float(np.mean(scores))


def realised_tiers(tiers: np.ndarray, holdout_value: np.ndarray) -> np.ndarray:
    """The tier each customer's realised value earns, with the same tier sizes: the
    ``size(tier 1)`` highest holdout values are tier 1, and so on.  Tied values share their
    average rank, so the result does not depend on the order of the rows."""
    sizes = np.bincount(tiers)[1:]
    ranks = rankdata(-np.asarray(holdout_value, dtype="float64"), method="average")
    bounds = np.cumsum(sizes)
    return np.searchsorted(bounds, ranks, side="left").astype(np.int64) + 1


def business_metrics(tiers: np.ndarray, holdout_value: np.ndarray) -> dict[str, float]:
    """Value the tiers capture in the holdout window.

    * ``value_share_tier<k>``: share of total holdout value earned by tier k;
    * ``top_tier_lift``: top tier's value share / its customer share;
    * ``spearman``: rank correlation between tier rank (1 = best) and holdout value, signed so
      that higher is better;
    * ``contradiction_share``: share of customers whose realised value puts them two or more
      tiers away from their tier (realised tiers have the same sizes; 0 by construction with
      two tiers);
    * ``tier_gap``: mean distance between realised and assigned tier / (number of tiers - 1),
      0 = perfect, comparable between methods with different numbers of tiers.

    Value shares and the lift are undefined (NaN) when the total holdout value is not
    positive: a share of a loss has no meaning.
    """
    value = np.nan_to_num(np.asarray(holdout_value, dtype="float64"))
    total = value.sum()
    out: dict[str, float] = {}
    for tier in np.unique(tiers):
        share = value[tiers == tier].sum() / total if total > 0 else np.nan
        out[f"value_share_tier{tier}"] = float(share)
    customer_share = (tiers == 1).mean()
    out["top_tier_lift"] = float(out.get("value_share_tier1", np.nan) / customer_share)
    rho = spearmanr(-tiers, value).statistic if len(np.unique(tiers)) > 1 else np.nan
    out["spearman"] = float(rho)
    gap = np.abs(realised_tiers(tiers, value) - tiers)
    out["contradiction_share"] = float((gap >= 2).mean())
    n_tiers = len(np.bincount(tiers)) - 1
    out["tier_gap"] = float(gap.mean() / (n_tiers - 1)) if n_tiers > 1 else np.nan
    return out


def size_metrics(tiers: np.ndarray, n_clusters: int, min_share: float) -> dict[str, float]:
    """Number of (non-empty) tiers, clusters the method made that no customer is in, the
    smallest tier's customer share, and ``degenerate`` = 1 when a cluster is empty or a tier is
    smaller than ``min_share``."""
    shares = np.bincount(tiers)[1:] / len(tiers)
    n_tiers = int((shares > 0).sum())
    smallest = float(shares[shares > 0].min())
    empty = max(int(n_clusters) - n_tiers, 0)
    return {
        "n_tiers": float(n_tiers),
        "n_empty_clusters": float(empty),
        "smallest_tier_share": smallest,
        "degenerate": float(empty > 0 or smallest < min_share),
    }


def truth_metrics(labels: np.ndarray, latent: pd.Series) -> dict[str, float]:
    """Adjusted Rand index of the clusters against the generator's latent types."""
    return {"latent_ari": float(adjusted_rand_score(latent.to_numpy(), labels))}
