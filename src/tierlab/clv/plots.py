"""Plots of the CLV evaluation: gain curves, decile calibration, transactions by frequency.

Each function returns a matplotlib Figure (Agg backend, never shown), or None when there is
nothing to draw.  The numbers come from :mod:`tierlab.clv.metrics`, so ties and NaN rules are
the same as in the metric table.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tierlab.clv.metrics import decile_table, gain_curve, value_metrics

MAX_PANELS = 12


def _grid(n: int, cols: int, size: tuple[float, float]):
    rows = max(1, math.ceil(n / cols))
    cols = min(cols, n)
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes.ravel()


def _symlog_threshold(values: np.ndarray) -> float | None:
    """Linear range of a symlog axis when the non-zero magnitudes span two orders of magnitude
    or more, else None: the power of ten at or below the smallest magnitude, but no more than
    three decades below the largest (so the axis keeps readable ticks)."""
    magnitudes = np.abs(values[np.isfinite(values) & (values != 0)])
    if magnitudes.size == 0 or magnitudes.max() < 100 * magnitudes.min():
        return None
    return float(10 ** np.floor(np.log10(max(magnitudes.min(), magnitudes.max() / 1e3))))


def plot_gain_curves(actual, predictions: dict[str, np.ndarray]):
    """Share of holdout value captured by the top customers, ordered by each model's prediction.

    One line per model (its normalized Gini in the legend), the oracle (customers ordered by
    their actual value) and the random diagonal.  None when there is no model or the total
    actual value is not positive (a share of a loss has no meaning).
    """
    if not predictions:
        return None
    oracle = gain_curve(actual, actual)
    if oracle["share_of_value"].isna().any():
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    for name, predicted in predictions.items():
        curve = gain_curve(actual, predicted)
        gini = value_metrics(actual, predicted)["gini"]
        ax.plot(
            curve["share_of_customers"], curve["share_of_value"], label=f"{name} (Gini {gini:.2f})"
        )
    ax.plot(oracle["share_of_customers"], oracle["share_of_value"], color="black", label="oracle")
    ax.plot([0, 1], [0, 1], color="tab:gray", ls=":", label="random")
    ax.set_xlabel("share of customers (by predicted value, highest first)")
    ax.set_ylabel("share of holdout value captured")
    ax.legend(fontsize=7)
    n = len(np.asarray(actual))
    ax.set_title(f"Gain curves on the holdout window ({n:,} customers)")
    fig.tight_layout()
    return fig


def plot_decile_calibration(actual, predictions: dict[str, np.ndarray]):
    """Per model (first ``MAX_PANELS``): mean actual holdout value (bars) and mean prediction
    (line) in each predicted decile (1 = highest), with the decile MAPE in the panel title.

    The y-axis is symlog when the decile means span two orders of magnitude or more.  None
    when there is no model.
    """
    if not predictions:
        return None
    shown = dict(list(predictions.items())[:MAX_PANELS])
    tables = {name: decile_table(actual, predicted) for name, predicted in shown.items()}
    means = np.concatenate(
        [t[["mean_actual", "mean_predicted"]].to_numpy() for t in tables.values()]
    )
    threshold = _symlog_threshold(means.ravel())
    fig, axes = _grid(len(tables), cols=4, size=(3.6, 2.9))
    for ax, (name, table) in zip(axes, tables.items(), strict=False):
        mape = value_metrics(actual, shown[name])["decile_mape"]
        ax.bar(table["decile"], table["mean_actual"], color="tab:gray", label="mean actual")
        ax.plot(
            table["decile"],
            table["mean_predicted"],
            color="tab:blue",
            marker="o",
            ms=3,
            label="mean predicted",
        )
        ax.axhline(0, color="black", lw=0.6)
        if threshold is not None:
            ax.set_yscale("symlog", linthresh=threshold)
        ax.set_xticks(table["decile"])
        ax.set_xlabel("predicted decile (1 = highest)", fontsize=8)
        ax.set_title(f"{name}: MAPE " + (f"{mape:.0%}" if np.isfinite(mape) else "n/a"), fontsize=9)
    axes[0].set_ylabel("holdout value per customer")
    axes[0].legend(fontsize=7)
    n = len(np.asarray(actual))
    more = (
        f", first {len(shown)} of {len(predictions)} models"
        if len(predictions) > len(shown)
        else ""
    )
    fig.suptitle(f"Decile calibration: mean actual vs predicted value ({n:,} customers{more})")
    fig.tight_layout()
    return fig


def plot_transactions_by_frequency(tables: dict[str, pd.DataFrame]):
    """Mean actual (drawn once) and each model's mean predicted holdout transactions by
    calibration repeat frequency: the check of Fader, Hardie & Lee (2005), Fig. 4.

    ``tables`` maps a model name to its :func:`tierlab.clv.metrics.transactions_by_frequency`
    table; all must describe the same customers (same groups, sizes and actual means).  None
    when there is no table.
    """
    if not tables:
        return None
    first_name, first = next(iter(tables.items()))
    for name, table in tables.items():
        same = (
            table["frequency"].tolist() == first["frequency"].tolist()
            and table["n"].tolist() == first["n"].tolist()
            and np.allclose(table["mean_actual"], first["mean_actual"], equal_nan=True)
        )
        if not same:
            raise ValueError(
                f"table {name!r} has other frequency groups or actual counts than table "
                f"{first_name!r}; all tables must describe the same customers"
            )
    x = np.arange(len(first))
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot(x, first["mean_actual"], color="black", marker="o", label="actual")
    for name, table in tables.items():
        ax.plot(x, table["mean_predicted"], ls="--", marker=".", label=name)
    ax.set_xticks(x, first["frequency"])
    ax.set_xlabel("repeat transactions in the calibration period")
    ax.set_ylabel("mean holdout transactions")
    ax.legend(fontsize=7)
    n = int(first["n"].sum())
    ax.set_title(f"Holdout transactions by calibration frequency ({n:,} customers)")
    fig.tight_layout()
    return fig
