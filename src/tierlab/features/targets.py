"""Holdout targets, kept in their own frame so no model can read them as features.

* ``holdout_value``: value realised in the holdout window, discounted monthly at
  ``features.targets.discount_rate_monthly`` (month k after the cut-off weighs
  ``(1 + r)^-k``): the sum of monthly profit when the data set has a profitability table,
  else the sum of (customer-initiated) transaction amounts;
* ``holdout_active``: 1 if the customer made a (customer-initiated) transaction in the holdout;
* ``holdout_transactions``: number of purchase days in the holdout (days with a
  customer-initiated transaction; same-day transactions count once, as in the BTYD summary), the
  quantity the BTYD transaction models predict;
* ``true_expected_value`` (synthetic data only): the generator's expected discounted profit
  over the same window, given each customer's latent state at the cut-off.
"""

from __future__ import annotations

import math

import ibis
import pandas as pd

from tierlab.data.split import CalibrationSplit
from tierlab.features.context import Context
from tierlab.features.engine import day_seconds, epoch, month_number, seconds
from tierlab.features.indicators import population

TARGET_COLUMNS = ("holdout_value", "holdout_active", "holdout_transactions", "true_expected_value")


def build_targets(
    con: ibis.BaseBackend,
    tables: dict[str, ibis.Table],
    ctx: Context,
    split: CalibrationSplit,
    discount_rate_monthly: float,
    truth: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per customer of the cut-off population, sorted by id."""
    if discount_rate_monthly <= -1:
        raise ValueError(
            f"features.targets.discount_rate_monthly={discount_rate_monthly} should be > -1"
        )
    stop_s = epoch(split.holdout_end) + 86400
    cut_month = split.cutoff.year * 12 + split.cutoff.month
    log_discount = -math.log1p(discount_rate_monthly)
    spine = population(tables, ctx)
    parts = []
    tx = tables.get("transactions")
    if tx is not None:
        t = tx.mutate(ts_s=seconds(tx.timestamp))
        t = t.filter((t.ts_s >= ctx.end_s) & (t.ts_s < stop_s))
        if "type" in t.columns and ctx.system_types:
            t = t.filter(~t.type.isin(list(ctx.system_types)))
        k = (month_number(t.timestamp) - cut_month).cast("float64")
        aggs = {
            "holdout_active": (t.amount.count() > 0).cast("int64"),
            "holdout_transactions": day_seconds(t.timestamp).nunique().cast("int64"),
        }
        if "profitability" not in tables:
            aggs["holdout_value"] = (t.amount * (k * log_discount).exp()).sum()
        parts.append(t.group_by("customer_id").aggregate(**aggs))
    if "profitability" in tables:
        p = tables["profitability"]
        p = p.mutate(month_s=seconds(p.month))
        p = p.filter((p.month_s >= ctx.end_s) & (p.month_s < stop_s))
        k = (month_number(p.month) - cut_month).cast("float64")
        parts.append(
            p.group_by("customer_id").aggregate(
                holdout_value=(p.profit * (k * log_discount).exp()).sum()
            )
        )
    result = spine
    for part in parts:
        result = result.left_join(part, "customer_id").drop("customer_id_right")
    result = result.mutate(
        **{
            c: result[c].fill_null(0)
            for c in ("holdout_value", "holdout_active", "holdout_transactions")
            if c in result.columns
        }
    )
    frame = con.execute(result).sort_values("customer_id", ignore_index=True)
    if truth is not None and "expected_holdout_profit" in truth.columns:
        expected = truth.set_index("customer_id")["expected_holdout_profit"]
        frame["true_expected_value"] = frame["customer_id"].map(expected).astype("float64")
    return frame[[c for c in ("customer_id", *TARGET_COLUMNS) if c in frame.columns]]
