"""Plots of the segmentation comparison: value share by tier, tier profiles, k selection."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _grid(n: int, cols: int = 3, size=(4.2, 3.2)):
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes.ravel()


def plot_value_share(results: dict, holdout: pd.Series | None, value: pd.Series):
    """Per method: each tier's share of customers and of value (holdout value when there is a
    holdout window, else the calibration value that orders the tiers)."""
    if not results:
        return None
    target = holdout if holdout is not None else value
    label = "holdout value" if holdout is not None else f"calibration {value.name}"
    fig, axes = _grid(len(results))
    values = np.nan_to_num(target.to_numpy(dtype="float64"))
    total = values.sum()
    for ax, (name, r) in zip(axes, results.items(), strict=False):
        tiers = np.unique(r.tiers)
        customers = [np.mean(r.tiers == t) for t in tiers]
        # a share of a non-positive total is meaningless: show customers only
        shares = [values[r.tiers == t].sum() / total if total > 0 else 0.0 for t in tiers]
        x = np.arange(len(tiers))
        ax.bar(x - 0.2, customers, 0.4, label="customers", color="tab:gray")
        ax.bar(x + 0.2, shares, 0.4, label=label, color="tab:blue")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(x, [f"T{t}" for t in tiers])
        ax.set_title(name, fontsize=10)
        ax.set_ylabel("share")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Share of customers and of {label} by tier (tier 1 = most valuable)")
    fig.tight_layout()
    return fig


def plot_tier_profiles(results: dict):
    """Per method: tier means of the profile indicators as z-scores across tiers (heatmap)."""
    shown = {n: r for n, r in results.items() if r.profile is not None and len(r.profile) > 1}
    if not shown:
        return None
    fig, axes = _grid(len(shown), cols=2, size=(6.5, 3.6))
    for ax, (name, r) in zip(axes, shown.items(), strict=False):
        means = r.profile.drop(columns=["segment", "size", "customer_share"], errors="ignore")
        z = (means - means.mean()) / means.std(ddof=0).replace(0, np.nan)
        image = ax.imshow(
            z.to_numpy(dtype="float64"), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto"
        )
        labels = [f"T{t}" for t in z.index]
        if "segment" in r.profile:
            labels = [f"T{t} {s}" for t, s in zip(z.index, r.profile["segment"], strict=True)]
        ax.set_yticks(range(len(z)), labels, fontsize=7)
        ax.set_xticks(range(z.shape[1]), z.columns, rotation=60, ha="right", fontsize=7)
        ax.set_title(name, fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.03, label="z across tiers")
    fig.suptitle("Tier profiles: indicator means by tier (red = high, blue = low)")
    fig.tight_layout()
    return fig


def plot_k_selection(results: dict):
    """The criterion curves of the methods that chose k (silhouette, elbow inertia, BIC)."""
    curves = {
        n: r for n, r in results.items() if getattr(r.estimator, "selection_", None) is not None
    }
    if not curves:
        return None
    fig, axes = _grid(len(curves), cols=3, size=(4.0, 3.0))
    for ax, (name, r) in zip(axes, curves.items(), strict=False):
        sel = r.estimator.selection_
        ax.plot(sel["k"], sel["score"], marker="o")
        ax.axvline(r.estimator.n_clusters_, color="tab:red", ls=":", label="chosen k")
        ax.set_xlabel("k")
        ax.set_ylabel(getattr(r.estimator, "selection_criterion_", "score"))
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("Choosing the number of clusters")
    fig.tight_layout()
    return fig
