"""Indicator families from the monthly balance snapshots: funds, liquidity, trend, credit."""

from __future__ import annotations

import ibis

from tierlab.features.context import Context, Family
from tierlab.features.dictionary import Indicator
from tierlab.features.engine import month_number, seconds

FUNDS = ("demand", "time_deposit", "wealth_management")
BALANCE_AT_CUTOFF = {
    "demand": ("demand_balance", "balances"),
    "time_deposit": ("time_deposit_balance", "balances"),
    "wealth_management": ("wealth_balance", "balances"),
    "consumer_loan": ("consumer_loan_balance", "credit"),
    "mortgage": ("mortgage_balance", "credit"),
}


def balance_family(bal: ibis.Table, ctx: Context) -> Family:
    """Funds (AUM) averages, balances at the cut-off, liquidity, trend, volatility, credit."""
    b = bal.mutate(month_s=seconds(bal.month)).filter(lambda b: b.month_s < ctx.end_s)
    cols = set(b.columns)
    funds_cols = [c for c in FUNDS if c in cols]
    aggs: dict[str, ibis.Value] = {}
    docs: list[Indicator] = []
    at_cut = b.month_s >= ctx.start_s(1)
    if funds_cols:
        funds = sum((b[c] for c in funds_cols[1:]), b[funds_cols[0]])
        b = b.mutate(_funds=funds)
        for w in ctx.windows_months:
            aggs[f"aum_avg_{w}m"] = b._funds.mean(where=b.month_s >= ctx.start_s(w))
            docs.append(
                Indicator(
                    f"aum_avg_{w}m",
                    "balances",
                    f"mean over the month-end snapshots of the {w} months to the cut-off of "
                    f"funds ({' + '.join(funds_cols)})",
                    "currency",
                    "balances",
                )
            )
    for col, (name, family) in BALANCE_AT_CUTOFF.items():
        if col in cols:
            aggs[name] = b[col].mean(where=at_cut)
            docs.append(
                Indicator(
                    name, family, f"{col} balance at the cut-off month end", "currency", "balances"
                )
            )
    if {"card_balance", "card_limit"} <= cols:
        aggs["_card_balance"] = b.card_balance.mean(where=at_cut)
        aggs["_card_limit"] = b.card_limit.mean(where=at_cut)
        docs.append(
            Indicator(
                "card_utilisation",
                "credit",
                "card balance / card limit at the cut-off month end (missing without a card)",
                "share",
                "balances",
            )
        )
    long = ctx.long_window
    in_long = b.month_s >= ctx.start_s(long)
    if "days_past_due" in cols:
        aggs[f"max_days_past_due_{long}m"] = b.days_past_due.max(where=in_long)
        aggs[f"delinquent_months_{long}m"] = b.days_past_due.count(
            where=in_long & (b.days_past_due > 0)
        )
        docs += [
            Indicator(
                f"max_days_past_due_{long}m",
                "credit",
                f"worst days past due in the {long} months to the cut-off",
                "days",
                "balances",
            ),
            Indicator(
                f"delinquent_months_{long}m",
                "credit",
                f"months with days past due > 0 in the {long} months to the cut-off",
                "count",
                "balances",
            ),
        ]
    agg = b.group_by("customer_id").aggregate(**aggs)
    derived = {}
    if {"demand", "time_deposit"} <= cols and "_funds" in b.columns:
        fixed = agg.time_deposit_balance + (
            agg.wealth_balance if "wealth_management" in cols else 0.0
        )
        liquid_plus_fixed = agg.demand_balance + fixed
        derived["liquid_share"] = ibis.ifelse(
            liquid_plus_fixed > 0, agg.demand_balance / liquid_plus_fixed, ibis.null("float64")
        )
        derived["liquid_to_fixed_ratio"] = agg.demand_balance / ibis.greatest(fixed, 1.0)
        docs += [
            Indicator(
                "liquid_share",
                "balances",
                "demand / (demand + time deposit + wealth) at the cut-off (missing without funds)",
                "share",
                "balances",
            ),
            Indicator(
                "liquid_to_fixed_ratio",
                "balances",
                "demand / (time deposit + wealth) at the cut-off, denominator floored at 1",
                "ratio",
                "balances",
            ),
        ]
    if "_card_limit" in aggs:
        derived["card_utilisation"] = ibis.ifelse(
            agg._card_limit > 0, agg._card_balance / agg._card_limit, ibis.null("float64")
        )
    agg = agg.mutate(**derived).drop(*[c for c in aggs if c.startswith("_")])
    if "_funds" in b.columns:
        trend, trend_docs = _trend(b.filter(in_long), long)
        agg = agg.left_join(trend, "customer_id").drop("customer_id_right")
        docs += trend_docs
    return agg, docs


def _trend(b: ibis.Table, months: int) -> Family:
    """Least-squares slope and coefficient of variation of monthly funds (two-pass sums)."""
    b = b.mutate(_t=month_number(b.month).cast("float64"))
    means = b.group_by("customer_id").aggregate(
        t_mean=b._t.mean(), y_mean=b._funds.mean(), n=b._funds.count()
    )
    j = b.join(means, "customer_id")
    j = j.mutate(dt=j._t - j.t_mean, dy=j._funds - j.y_mean)
    sums = j.group_by("customer_id").aggregate(
        sxy=(j.dt * j.dy).sum(),
        sxx=(j.dt * j.dt).sum(),
        syy=(j.dy * j.dy).sum(),
        n=j.n.max(),
        y_mean=j.y_mean.max(),
    )
    out = sums.select(
        "customer_id",
        **{
            f"aum_trend_{months}m": ibis.ifelse(sums.sxx > 0, sums.sxy / sums.sxx, None),
            f"aum_volatility_{months}m": ibis.ifelse(
                (sums.n > 1) & (sums.y_mean > 0),
                (sums.syy / (sums.n - 1)).sqrt() / sums.y_mean,
                None,
            ),
        },
    )
    docs = [
        Indicator(
            f"aum_trend_{months}m",
            "balances",
            f"least-squares slope of month-end funds over the {months} months to the cut-off "
            "(missing with fewer than 2 months)",
            "currency per month",
            "balances",
        ),
        Indicator(
            f"aum_volatility_{months}m",
            "balances",
            f"standard deviation / mean of month-end funds over the {months} months to the "
            "cut-off (coefficient of variation)",
            "ratio",
            "balances",
        ),
    ]
    return out, docs
