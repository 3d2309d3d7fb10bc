"""Plots of the allocation stage (matplotlib, Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def plot_sensitivity(table: pd.DataFrame, comparison: pd.DataFrame) -> plt.Figure:
    """Net gain of every policy when the ASSUMED effects are scaled, with the true net gain
    (synthetic data) as a dashed line of the same colour."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    true = comparison.set_index("policy").get("true_net_gain")
    for k, (policy, rows) in enumerate(table.groupby("policy", sort=False)):
        color = f"C{k}"
        ax.plot(rows["effect_scale"], rows["assumed_net_gain"], "o-", color=color, label=policy)
        if true is not None and np.isfinite(true.get(policy, np.nan)):
            ax.axhline(true[policy], color=color, linestyle="--", linewidth=1)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.axvline(1.0, color="grey", linewidth=0.6, linestyle=":")
    ax.set_xlabel("scale applied to every ASSUMED effect (1 = as configured)")
    ax.set_ylabel("net gain over uniform (horizon, discounted)")
    title = "Policy net gain if the ASSUMED service effects are off"
    if true is not None:
        title += "\n(dashed: TRUE net gain under the synthetic bank's response)"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_coverage(table: pd.DataFrame, baseline: str) -> plt.Figure:
    """Share of each tier served at each premium level, one panel per level, bars by policy."""
    levels = [lv for lv in table["level"].unique() if lv != baseline]
    policies = list(table["policy"].unique())
    tiers = sorted(table["tier"].unique())
    fig, axes = plt.subplots(1, max(len(levels), 1), figsize=(4.5 * max(len(levels), 1), 3.8))
    axes = np.atleast_1d(axes)
    width = 0.8 / max(len(policies), 1)
    x = np.arange(len(tiers))
    for ax, level in zip(axes, levels, strict=False):
        for k, policy in enumerate(policies):
            rows = table[(table["level"] == level) & (table["policy"] == policy)]
            share = rows.set_index("tier")["share"].reindex(tiers).fillna(0.0)
            ax.bar(x + (k - (len(policies) - 1) / 2) * width, share, width, label=policy)
        ax.set_xticks(x, [str(t) for t in tiers])
        ax.set_xlabel("value tier (1 = most valuable)")
        ax.set_ylabel("share of the tier's customers")
        ax.set_title(level, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle("Coverage of each value tier by premium service level", fontsize=11)
    fig.tight_layout()
    return fig


def plot_gains(comparison: pd.DataFrame) -> plt.Figure:
    """ASSUMED vs TRUE net gain and extra cost per policy."""
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(comparison))
    columns = [c for c in ("assumed_net_gain", "true_net_gain", "extra_cost") if c in comparison]
    width = 0.8 / len(columns)
    for k, column in enumerate(columns):
        ax.bar(x + (k - (len(columns) - 1) / 2) * width, comparison[column], width, label=column)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xticks(x, comparison["policy"])
    ax.set_ylabel("over the horizon, discounted, vs uniform")
    ax.set_title(
        "Net gain under the ASSUMED effects and (synthetic) the TRUE response", fontsize=10
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
