"""Indicator families from the transaction log: RFM, activity, channel mix, BTYD summary."""

from __future__ import annotations

import ibis

from tierlab.features.btyd import BTYD_INDICATORS, btyd_expr
from tierlab.features.context import DAY, Context, Family
from tierlab.features.dictionary import Indicator
from tierlab.features.engine import in_units, month_number, seconds


def customer_initiated(tx: ibis.Table, ctx: Context) -> tuple[ibis.Table, str]:
    """The transactions a customer made (bank-booked types left out) and a note saying so."""
    if "type" in tx.columns and ctx.system_types:
        note = f" (customer-initiated: type not in {list(ctx.system_types)})"
        return tx.filter(~tx.type.isin(list(ctx.system_types))), note
    return tx, ""


def transaction_family(tx: ibis.Table, ctx: Context, first_transaction: bool = False) -> Family:
    """RFM over the configured windows, activity, channel mix and salary credit.

    With ``first_transaction`` the table also has ``first_transaction_s`` (epoch seconds of the
    first customer-initiated transaction), for tenure when the data has no open dates.
    """
    t, own_note = customer_initiated(tx, ctx)
    t = t.mutate(ts_s=seconds(t.timestamp)).filter(lambda t: t.ts_s < ctx.end_s)
    cols = set(t.columns)
    aggs: dict[str, ibis.Value] = {}
    docs: list[Indicator] = []
    aggs["recency_days"] = in_units(ctx.end_s - t.ts_s.max(), DAY)
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
        in_w = t.ts_s >= ctx.start_s(w)
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
    in_long = t.ts_s >= ctx.start_s(long)
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
    if first_transaction:
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
    if "_digital" in aggs:  # the longest window is one of the RFM windows
        n_long = agg[f"frequency_{long}m"]
        derived[f"digital_share_{long}m"] = ibis.ifelse(
            n_long > 0, agg["_digital"] / n_long.cast("float64"), ibis.null("float64")
        )
    if "_salary" in aggs:
        derived["salary_credit_flag"] = (agg["_salary"] > 0).cast("int64")
    agg = agg.mutate(**derived).drop(*[c for c in aggs if c.startswith("_")])
    # active months in two steps (customer-months, then a count): cheaper than COUNT(DISTINCT)
    months = (
        t.filter(in_long)
        .group_by(["customer_id", month_number(t.timestamp).name("month_number")])
        .aggregate()
        .group_by("customer_id")
        .aggregate(**{f"active_months_{long}m": lambda m: m.count()})
    )
    agg = agg.left_join(months, "customer_id").drop("customer_id_right")
    columns = ["customer_id", *[d.name for d in docs]]
    if first_transaction:
        columns.append("first_transaction_s")
    return agg.select(*columns), docs


def btyd_family(tx: ibis.Table, ctx: Context) -> Family:
    """The BTYD summary (``btyd_frequency``, ``btyd_recency``, ``btyd_T``,
    ``btyd_monetary_value``)."""
    t, _ = customer_initiated(tx, ctx)
    summary = btyd_expr(t, ctx.cutoff, ctx.btyd_time_unit)
    unit = {"D": "days", "W": "weeks", "M": "months"}.get(ctx.btyd_time_unit, "?")
    renamed = summary.rename(**BTYD_INDICATORS)
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
