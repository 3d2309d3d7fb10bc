"""Does a bank data set have the shapes of a real retail bank?  Metrics, checks and a plot.

The shapes come from ``../shared/BANKING.md``: heavy-tailed balances, extreme profit
concentration with a loss-making tail (the "whale curve"), product penetration and activity in
plausible ranges, annual attrition of a few percent to ~15 %, and demand-heavy customers worth
more than time-deposit-heavy ones with the same funds.  Every metric is computed over the last
12 months of the data (or at the data end), from the tables alone, never from ground truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tierlab.data.tables import BankData

FUNDS = ("demand", "time_deposit", "wealth_management")
#: transaction types the bank books by itself: they do not show that a customer is active
SYSTEM_TYPES = ("fee", "interest", "loan_repayment")


def _trailing_profit(data: BankData, column: str = "profit") -> pd.Series:
    pr = data.profitability
    start = data.data_end - pd.DateOffset(months=12)
    return pr.loc[pr["month"] > start].groupby("customer_id")[column].sum()


def _funds_margin(data: BankData) -> pd.Series:
    """12-month margin the bank earns on a customer's funds: deposit spread + wealth fees."""
    columns = [c for c in ("nii_deposits", "wealth_fees") if c in data.profitability.columns]
    return sum(_trailing_profit(data, c) for c in columns)


def _open_at_end(data: BankData) -> pd.Index:
    cu = data.customers
    still_open = cu["close_date"].isna() | (cu["close_date"] > data.data_end)
    return pd.Index(cu.loc[still_open & (cu["open_date"] <= data.data_end), "customer_id"])


def _liquidity_premium(data: BankData, profit: pd.Series) -> tuple[float, pd.DataFrame]:
    """Value per unit of funds of demand-heavy vs fixed-heavy customers with equal funds.

    Customers are binned into octiles of funds (demand + time deposit + wealth management) at
    the data end.  Within each bin with at least 10 customers in both groups, the mean 12-month
    value per unit of funds of demand-heavy (>= 70 % of funds on demand) and fixed-heavy
    (<= 30 %) customers is compared; the premium is the mean over those bins of
    ``demand-heavy mean / fixed-heavy mean``: > 1 when liquid funds are worth more, as
    BANKING.md says they are.
    """
    bal = data.balances
    last = bal.loc[bal["month"] == bal["month"].max()].set_index("customer_id")
    deposits = last[[c for c in FUNDS if c in last.columns]].sum(axis=1)
    frame = pd.DataFrame(
        {
            "deposits": deposits,
            "liquid_share": last["demand"] / deposits.where(deposits > 0),
            "profit": profit.reindex(last.index) / deposits.where(deposits > 0),
        }
    ).dropna()
    frame["group"] = np.select(
        [frame["liquid_share"] >= 0.7, frame["liquid_share"] <= 0.3],
        ["demand-heavy", "fixed-heavy"],
        default="mixed",
    )
    frame["funds_bin"] = pd.qcut(np.log(frame["deposits"]), 8, labels=False, duplicates="drop")
    table = (
        frame.loc[frame["group"] != "mixed"]
        .groupby(["funds_bin", "group"])["profit"]
        .agg(["mean", "size"])
        .unstack("group")
    )
    both = table[("size", "demand-heavy")].ge(10) & table[("size", "fixed-heavy")].ge(10)
    table = table.loc[both]
    if table.empty:
        return float("nan"), table
    fixed_heavy = table[("mean", "fixed-heavy")]
    if (fixed_heavy <= 0).any():
        return float("nan"), table  # a ratio to a loss is meaningless
    return float((table[("mean", "demand-heavy")] / fixed_heavy).mean()), table


def realism_metrics(data: BankData) -> dict[str, Any]:
    """Shape metrics of a data set; only those its tables can supply.

    Returns
    -------
    dict
        ``top20_profit_share``, ``loss_making_share``, ``annual_attrition``,
        ``cross_sell_depth``, ``active_share``, ``penetration`` (dict by product),
        ``top5_aum_share``, ``aum_skewness_log``, ``demand_heavy_premium`` (margin on funds,
        deposit spread + wealth fees, per unit of funds, of demand-heavy / fixed-heavy customers
        with equal funds; total profit is not used because loans and the segment mix confound
        it).
    """
    out: dict[str, Any] = {}
    if data.profitability is not None and data.data_end is not None:
        profit = _trailing_profit(data).sort_values(ascending=False)
        top = profit.iloc[: max(1, int(round(0.2 * len(profit))))]
        total = profit.sum()
        out["top20_profit_share"] = float(top.sum() / total) if total > 0 else float("inf")
        out["loss_making_share"] = float((profit < 0).mean())
    if data.customers is not None and "close_date" in data.customers and data.data_end is not None:
        cu = data.customers
        start = data.data_end - pd.DateOffset(months=12)
        at_start = cu.loc[(cu["open_date"] <= start) & ~(cu["close_date"] <= start)]
        closed = at_start["close_date"].between(start, data.data_end, inclusive="right")
        out["annual_attrition"] = float(closed.mean())
    if data.products is not None and data.customers is not None:
        open_ids = _open_at_end(data)
        held = data.products.loc[data.products["customer_id"].isin(open_ids)]
        held = held.loc[held["close_date"].isna() | (held["close_date"] > data.data_end)]
        per_customer = held.groupby("customer_id").size().reindex(open_ids, fill_value=0)
        out["cross_sell_depth"] = float(per_customer.mean())
        counts = held.groupby("product", observed=True)["customer_id"].nunique()
        out["penetration"] = {str(k): float(v / len(open_ids)) for k, v in counts.items()}
    if data.transactions is not None and data.customers is not None and data.data_end is not None:
        tx = data.transactions
        recent = tx["timestamp"] > data.data_end - pd.DateOffset(months=3)
        if "type" in tx:
            recent &= ~tx["type"].isin(SYSTEM_TYPES)
        open_ids = _open_at_end(data)
        active = pd.Index(tx.loc[recent, "customer_id"].unique()).intersection(open_ids)
        out["active_share"] = float(len(active) / max(1, len(open_ids)))
    if data.balances is not None and set(FUNDS) <= set(data.balances.columns):
        bal = data.balances
        aum = bal.loc[bal["month"] == bal["month"].max(), list(FUNDS)].sum(axis=1)
        aum = aum.sort_values(ascending=False)
        out["top5_aum_share"] = float(aum.iloc[: max(1, int(0.05 * len(aum)))].sum() / aum.sum())
        out["aum_skewness_log"] = float(pd.Series(np.log1p(aum)).skew())
        if data.profitability is not None:
            out["demand_heavy_premium"], _ = _liquidity_premium(data, _funds_margin(data))
    return out


def flat_metrics(metrics: Mapping[str, Any], prefix: str = "data/") -> dict[str, float]:
    """Flatten nested metrics to slash-namespaced keys for MLflow."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            flat.update(flat_metrics(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = float(value)
    return flat


def check_targets(metrics: Mapping[str, Any], targets: Mapping[str, Any]) -> list[str]:
    """Names and values of metrics outside their configured ``[low, high]`` ranges."""
    failures = []
    for key, bounds in targets.items():
        if isinstance(bounds, Mapping):
            failures += [f"{key}/{f}" for f in check_targets(metrics.get(key, {}), bounds)]
            continue
        if key not in metrics or np.isnan(metrics[key]):
            continue  # not measurable on this data set (e.g. too few customers per bin)
        low, high = bounds
        value = metrics[key]
        if not (low <= value <= high):
            failures.append(f"{key}={value:.3f} outside [{low}, {high}]")
    return failures


def plot_realism(
    data: BankData,
    targets: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> plt.Figure:
    """Four panels: whale curve, funds distribution, product penetration, liquidity premium.

    ``metrics`` are :func:`realism_metrics` of ``data`` when the caller has them already.
    """
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    metrics = realism_metrics(data) if metrics is None else metrics
    ax = axes[0, 0]
    if data.profitability is not None:
        profit = _trailing_profit(data).sort_values(ascending=False).to_numpy()
        cum = np.cumsum(profit) / profit.sum()
        x = np.arange(1, len(profit) + 1) / len(profit)
        ax.plot(x * 100, cum * 100, color="tab:blue")
        ax.axhline(100, color="grey", lw=0.8, ls="--")
        ax.axvline(20, color="tab:red", lw=0.8, ls=":")
        ax.set_title(
            f"Whale curve: top 20 % earn {metrics['top20_profit_share']:.0%} of profit, "
            f"{metrics['loss_making_share']:.0%} lose money",
            fontsize=10,
        )
        ax.set_xlabel("customers ranked by 12-month profit (%)")
        ax.set_ylabel("cumulative share of total profit (%)")
    ax = axes[0, 1]
    if data.balances is not None:
        bal = data.balances
        aum = bal.loc[bal["month"] == bal["month"].max(), list(FUNDS)].sum(axis=1)
        ax.hist(np.log10(aum[aum > 0]), bins=60, color="tab:green")
        ax.set_xlabel("log10 funds (demand + time deposits + wealth) at data end")
        ax.set_ylabel("customers")
        ax.set_title(
            f"Heavy-tailed funds: top 5 % hold {metrics.get('top5_aum_share', np.nan):.0%}",
            fontsize=10,
        )
    ax = axes[1, 0]
    pen = metrics.get("penetration", {})
    if pen:
        names = list(pen)
        ax.barh(names, [pen[n] * 100 for n in names], color="tab:purple")
        ranges = (targets or {}).get("penetration", {})
        for i, name in enumerate(names):
            if name in ranges:
                lo, hi = ranges[name]
                ax.plot([lo * 100, hi * 100], [i, i], color="black", lw=3, alpha=0.4)
        ax.set_xlabel("% of open customers holding the product (bars: configured range)")
        ax.set_title(
            f"Products: {metrics['cross_sell_depth']:.2f} per customer, "
            f"{metrics.get('active_share', np.nan):.0%} active in 3 months",
            fontsize=10,
        )
    ax = axes[1, 1]
    if data.balances is not None and data.profitability is not None:
        premium, table = _liquidity_premium(data, _funds_margin(data))
        if not table.empty:
            idx = np.arange(len(table))
            ax.bar(idx - 0.2, table[("mean", "demand-heavy")], 0.4, label="demand-heavy (>=70 %)")
            ax.bar(idx + 0.2, table[("mean", "fixed-heavy")], 0.4, label="fixed-heavy (<=30 %)")
            ax.set_xticks(idx, [f"q{int(b) + 1}" for b in table.index])
            ax.legend(fontsize=8)
        ax.set_xlabel("bins of equal funds (low to high)")
        ax.set_ylabel("12-month margin per unit of funds")
        ax.set_title(f"Equal funds, liquid ones earn more (x{premium:.2f})", fontsize=10)
    fig.suptitle(f"Realism of data set '{data.name}'")
    fig.tight_layout()
    return fig
