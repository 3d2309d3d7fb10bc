"""Ordered value tiers: any method's clusters, ranked so that tier 1 is the most valuable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def order_tiers(labels: np.ndarray, value: np.ndarray) -> dict[int, int]:
    """Map each cluster id to a tier: 1 = highest mean calibration value, 2 = next, ...

    Missing values count as 0.  Ties in mean value are broken by cluster id, so the mapping is
    a pure function of the labels and values: the same seed gives the same tiers.
    """
    labels = np.asarray(labels)
    value = np.nan_to_num(np.asarray(value, dtype="float64"), nan=0.0)
    if labels.shape != value.shape:
        raise ValueError(f"labels {labels.shape} and value {value.shape} should have one shape")
    frame = pd.DataFrame({"cluster": labels, "value": value})
    means = frame.groupby("cluster")["value"].mean()
    ranked = sorted(means.index, key=lambda c: (-means[c], c))
    return {int(c): tier for tier, c in enumerate(ranked, start=1)}


def assign_tiers(labels: np.ndarray, mapping: Mapping[int, int]) -> np.ndarray:
    """Tier of every customer from its cluster id (a table lookup, not a Python loop: the
    stage assigns millions of customers)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return np.empty(0, dtype=np.int64)
    clusters = np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping))
    tiers = np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping))
    order = np.argsort(clusters)
    clusters, tiers = clusters[order], tiers[order]
    at = np.clip(np.searchsorted(clusters, labels), 0, len(clusters) - 1)
    unknown = clusters[at] != labels
    if unknown.any():
        raise KeyError(int(labels[np.flatnonzero(unknown)[0]]))
    return tiers[at]


def tier_profile(
    tiers: np.ndarray,
    indicators: pd.DataFrame,
    value: pd.Series,
    columns: Sequence[str],
    names: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """One row per tier: size, customer share, mean value, the segment name(s) of its clusters
    (RFM) and the mean of each indicator in ``columns``."""
    frame = indicators[list(columns)].astype("float64").copy()
    frame["_value"] = value.to_numpy(dtype="float64")
    frame["tier"] = tiers
    grouped = frame.groupby("tier")
    profile = pd.DataFrame(
        {
            "size": grouped.size(),
            "customer_share": grouped.size() / len(frame),
            "mean_value": grouped["_value"].mean(),
        }
    )
    if names is not None:
        profile.insert(0, "segment", pd.Series(names).reindex(profile.index))
    return profile.join(grouped[list(columns)].mean())
