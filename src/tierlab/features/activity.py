"""Indicator families from the transaction log: RFM, activity, channel mix, BTYD summary."""

from __future__ import annotations

import ibis

from tierlab.features.btyd import btyd_expr
from tierlab.features.context import DAY, Context, Family
from tierlab.features.dictionary import Indicator
from tierlab.features.engine import month_number, seconds


def transaction_family(tx: ibis.Table, ctx: Context) -> Family:
    """RFM over the configured windows, activity, channel mix and salary credit."""
    t = tx.mutate(ts_s=seconds(tx.timestamp)).filter(lambda t: t.ts_s < ctx.end_s)
    cols = set(t.columns)
    own = ~t.type.isin(list(ctx.system_types)) if "type" in cols and ctx.system_types else True
    own_note = (
        f" (customer-initiated: type not in {list(ctx.system_types)})"
        if "type" in cols and ctx.system_types
        else ""
    )
    aggs: dict[str, ibis.Value] = {}
    docs: list[Indicator] = []
    aggs["recency_days"] = (ctx.end_s - t.ts_s.max(where=own)) / DAY
    docs.append(
        Indicator(
            "recency_days",
            "rfm",
            f"days from the last transaction{own_note} to the end of the cut-off day "
            "(missing without transactions)",
            "days",
            "transactions",
        )
    )
    for w in ctx.windows_months:
        in_w = own & (t.ts_s >= ctx.start_s(w))
        aggs[f"frequency_{w}m"] = t.amount.count(where=in_w)
        aggs[f"monetary_total_{w}m"] = t.amount.sum(where=in_w)
        aggs[f"monetary_mean_{w}m"] = t.amount.mean(where=in_w)
        docs += [
            Indicator(
                f"frequency_{w}m",
                "rfm",
                f"number of transactions{own_note} in the {w} months to the cut-off",
                "count",
                "transactions",
            ),
            Indicator(
                f"monetary_total_{w}m",
                "rfm",
                f"sum of transaction amounts (both directions: business volume){own_note} in "
                f"the {w} months to the cut-off",
                "currency",
                "transactions",
            ),
            Indicator(
                f"monetary_mean_{w}m",
                "rfm",
                f"mean transaction amount{own_note} in the {w} months to the cut-off "
                "(missing without transactions)",
                "currency",
                "transactions",
            ),
        ]
    long = ctx.long_window
    in_long = own & (t.ts_s >= ctx.start_s(long))
    aggs[f"active_months_{long}m"] = month_number(t.timestamp).nunique(where=in_long)
    docs.append(
        Indicator(
            f"active_months_{long}m",
            "relationship",
            f"calendar months with at least one transaction{own_note} in the {long} months to "
            "the cut-off",
            "count",
            "transactions",
        )
    )
    aggs["first_transaction_s"] = t.ts_s.min()
    if "direction" in cols:
        aggs[f"inflow_{long}m"] = t.amount.sum(where=in_long & (t.direction == "credit"))
        docs.append(
            Indicator(
                f"inflow_{long}m",
                "rfm",
                f"sum of credit (money in) amounts{own_note} in the {long} months to the cut-off",
                "currency",
                "transactions",
            )
        )
    if "channel" in cols and ctx.digital_channels:
        digital = t.channel.isin(list(ctx.digital_channels))
        aggs["_digital"] = t.amount.count(where=in_long & digital)
        docs.append(
            Indicator(
                f"digital_share_{long}m",
                "relationship",
                f"share of transactions{own_note} in the {long} months to the cut-off made "
                f"through {list(ctx.digital_channels)} (missing without transactions)",
                "share",
                "transactions",
            )
        )
    if "type" in cols and ctx.salary_types:
        aggs["_salary"] = t.amount.count(
            where=t.type.isin(list(ctx.salary_types)) & (t.ts_s >= ctx.start_s(3))
        )
        docs.append(
            Indicator(
                "salary_credit_flag",
                "relationship",
                f"1 if a transaction of type {list(ctx.salary_types)} was received in the 3 "
                "months to the cut-off, else 0",
                "flag",
                "transactions",
            )
        )
    agg = t.group_by("customer_id").aggregate(**aggs)
    derived = {}
    if "_digital" in aggs:
        n_long = agg[f"frequency_{long}m"] if long in ctx.windows_months else None
        if n_long is not None:
            derived[f"digital_share_{long}m"] = ibis.ifelse(
                n_long > 0, agg["_digital"] / n_long.cast("float64"), ibis.null("float64")
            )
    if "_salary" in aggs:
        derived["salary_credit_flag"] = (agg["_salary"] > 0).cast("int64")
    agg = agg.mutate(**derived).drop(*[c for c in aggs if c.startswith("_")])
    return agg, docs


def btyd_family(tx: ibis.Table, ctx: Context) -> Family:
    """The BTYD summary (``btyd_frequency``, ``btyd_recency``, ``btyd_T``,
    ``btyd_monetary_value``)."""
    t = tx
    if "type" in tx.columns and ctx.system_types:
        t = tx.filter(~tx.type.isin(list(ctx.system_types)))
    summary = btyd_expr(t, ctx.cutoff, ctx.btyd_time_unit)
    unit = {"D": "days", "W": "weeks", "M": "months"}.get(ctx.btyd_time_unit, "?")
    renamed = summary.rename(
        btyd_frequency="frequency",
        btyd_recency="recency",
        btyd_T="T",
        btyd_monetary_value="monetary_value",
    )
    src = "transactions"
    docs = [
        Indicator(
            "btyd_frequency",
            "btyd",
            "repeat purchase days (days with a transaction, minus 1); same-day transactions "
            "are one purchase",
            "count",
            src,
        ),
        Indicator(
            "btyd_recency", "btyd", "time from the first to the last purchase day", unit, src
        ),
        Indicator(
            "btyd_T", "btyd", "time from the first purchase day to the cut-off day", unit, src
        ),
        Indicator(
            "btyd_monetary_value",
            "btyd",
            "mean value of the repeat purchase days (0 without repeats)",
            "currency",
            src,
        ),
    ]
    return renamed, docs
