"""Plots of the explain stage: SHAP beeswarm and dependence of a CLV model, tier drivers."""

from __future__ import annotations

import math
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap


def plot_beeswarm(values: np.ndarray, seen: pd.DataFrame, title: str, max_display: int = 15):
    """SHAP's beeswarm (summary) plot: one row per indicator, one dot per customer."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shap.summary_plot(values, seen, max_display=max_display, show=False, plot_size=(9, 7))
    fig = plt.gcf()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_dependence(values: np.ndarray, seen: pd.DataFrame, indicators: list[str], title: str):
    """SHAP value against the indicator's value for the top indicators (one panel each)."""
    if not indicators:
        return None
    fig, axes = plt.subplots(1, len(indicators), figsize=(4.5 * len(indicators), 3.8))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, indicators, strict=True):
        j = list(seen.columns).index(name)
        x = seen[name].to_numpy(dtype="float64")
        ax.scatter(x, values[:, j], s=6, alpha=0.5)
        ax.axhline(0, color="grey", lw=0.8)
        if np.nanmin(x) >= 0 and np.nanmax(x) > 100 * max(np.nanmedian(x), 1e-9):
            ax.set_xscale("symlog")
        ax.set_xlabel(name)
        ax.set_ylabel("SHAP value")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_tier_drivers(drivers: pd.DataFrame, title: str, top: int = 8):
    """Per tier, the top indicators by mean |SHAP|; bars coloured by the sign of the mean SHAP
    (red: the indicator pushes customers into the tier on average, blue: away)."""
    tiers = sorted(drivers["tier"].unique())
    if not tiers:
        return None
    cols = min(4, len(tiers))
    rows = math.ceil(len(tiers) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 0.35 * top * rows + 1.4 * rows))
    axes = np.atleast_1d(axes).ravel()
    for ax, tier in zip(axes, tiers, strict=False):
        part = drivers[drivers["tier"] == tier].nsmallest(top, "rank").iloc[::-1]
        colours = np.where(part["mean_shap"] >= 0, "#c0392b", "#2e86c1")
        ax.barh(part["indicator"], part["mean_abs_shap"], color=colours)
        n = int(part["n_customers"].iloc[0]) if len(part) else 0
        ax.set_title(f"tier {tier} ({n:,} explained)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("mean |SHAP| (log-odds of the tier)", fontsize=7)
    for ax in axes[len(tiers) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
