"""A straightforward pandas implementation of tierlab's indicator set: the benchmark's reference.

It mirrors the Ibis definitions of ``tierlab.features`` (``activity.py``, ``btyd.py``,
``funds.py``, ``holdings.py`` and ``build_indicators``) for the synthetic bank's tables, in plain
vectorised pandas: each table is read with ``pandas.read_parquet``, cut at the end of the cut-off
day, and aggregated with one ``groupby().agg()``; a conditional aggregate ("sum of amounts in the
last 3 months") is a masked column (``amount.where(in_window)``) aggregated like any other.

It lives in the benchmark, not in the package: tierlab has one definition of each indicator, the
Ibis one.  ``bench.indicators.check`` compares the two column by column before anything is timed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from tierlab.features import Context
from tierlab.features.btyd import unit_days

DAY = 86400.0
MAX_PRODUCTS = 50
BALANCE_AT_CUTOFF = {
    "demand": "demand_balance",
    "time_deposit": "time_deposit_balance",
    "wealth_management": "wealth_balance",
    "consumer_loan": "consumer_loan_balance",
    "mortgage": "mortgage_balance",
}

#: One family's result: indicators indexed by customer_id, and the columns that are 0 (not
#: missing) for a customer without rows in the family's table.
Part = tuple[pd.DataFrame, list[str]]


def indicators(folder: str | Path, ctx: Context) -> pd.DataFrame:
    """Every indicator for the customers at the cut-off, one row each, sorted by ``customer_id``.

    ``folder`` holds the synthetic bank's Parquet files (``customers``, ``transactions``,
    ``balances``, ``products``, ``profitability``).
    """
    folder = Path(folder)
    end = ctx.cutoff + pd.Timedelta(days=1)  # first instant after the cut-off day
    customers = pd.read_parquet(folder / "customers.parquet")
    tx = pd.read_parquet(
        folder / "transactions.parquet",
        columns=["customer_id", "timestamp", "amount", "direction", "channel", "type"],
    )
    tx = tx[tx["timestamp"] < end]
    balances = pd.read_parquet(folder / "balances.parquet")
    balances = balances[balances["month"] < end]
    products = pd.read_parquet(
        folder / "products.parquet", columns=["customer_id", "product", "open_date", "close_date"]
    )
    profitability = pd.read_parquet(folder / "profitability.parquet")
    profitability = profitability[profitability["month"] < end]

    alive = (customers["open_date"] < end) & (
        customers["close_date"].isna() | (customers["close_date"] >= end)
    )
    result = pd.DataFrame(index=pd.Index(customers.loc[alive, "customer_id"].unique()))
    zero: list[str] = []
    for frame, zero_fill in (
        transaction_family(tx, ctx),
        btyd_family(tx, ctx),
        balance_family(balances, ctx),
        product_family(products, ctx),
        profitability_family(profitability, ctx),
        customer_family(customers, ctx),
    ):
        result = result.join(frame, how="left")
        zero += zero_fill
    result[zero] = result[zero].fillna(0.0)
    result.index.name = "customer_id"
    return result.sort_index().reset_index()


def _start(ctx: Context, months: int) -> pd.Timestamp:
    """First day of the ``months``-month window ending at the cut-off."""
    return pd.Timestamp(ctx.start_s(months), unit="s")


def _month_number(ts: pd.Series) -> pd.Series:
    return ts.dt.year * 12 + ts.dt.month


def transaction_family(tx: pd.DataFrame, ctx: Context) -> Part:
    """Recency, frequency and monetary per window, active months, inflow, digital share, salary."""
    end = ctx.cutoff + pd.Timedelta(days=1)
    long = ctx.long_window
    ts, amount = tx["timestamp"], tx["amount"]
    own = ~tx["type"].isin(ctx.system_types)
    in_long = own & (ts >= _start(ctx, long))
    cols = {"customer_id": tx["customer_id"], "last_own": ts.where(own)}
    named = {"last_own": ("last_own", "max")}
    for w in ctx.windows_months:
        cols[f"amount_{w}m"] = amount.where(own & (ts >= _start(ctx, w)))
        named[f"frequency_{w}m"] = (f"amount_{w}m", "count")
        named[f"monetary_total_{w}m"] = (f"amount_{w}m", "sum")
        named[f"monetary_mean_{w}m"] = (f"amount_{w}m", "mean")
    cols["month_long"] = _month_number(ts).where(in_long)
    cols["inflow"] = amount.where(in_long & (tx["direction"] == "credit"))
    cols["digital"] = in_long & tx["channel"].isin(ctx.digital_channels)
    cols["salary"] = tx["type"].isin(ctx.salary_types) & (ts >= _start(ctx, 3))
    named |= {
        f"active_months_{long}m": ("month_long", "nunique"),
        f"inflow_{long}m": ("inflow", "sum"),
        "digital": ("digital", "sum"),
        "salary": ("salary", "sum"),
    }
    g = pd.DataFrame(cols).groupby("customer_id").agg(**named)
    out = pd.DataFrame(index=g.index)
    out["recency_days"] = (end - g["last_own"].dt.floor("s")).dt.total_seconds() / DAY
    for w in ctx.windows_months:
        for name in ("frequency", "monetary_total", "monetary_mean"):
            out[f"{name}_{w}m"] = g[f"{name}_{w}m"]
    out[f"active_months_{long}m"] = g[f"active_months_{long}m"]
    out[f"inflow_{long}m"] = g[f"inflow_{long}m"]
    n_long = g[f"frequency_{long}m"]
    out[f"digital_share_{long}m"] = (g["digital"] / n_long).where(n_long > 0)
    out["salary_credit_flag"] = (g["salary"] > 0).astype("int64")
    zero = [c for c in out if c.startswith(("frequency_", "monetary_total_", "active_", "inflow_"))]
    return out, [*zero, "salary_credit_flag"]


def btyd_family(tx: pd.DataFrame, ctx: Context) -> Part:
    """BTYD summary of customer-initiated transactions; same-day transactions are one purchase."""
    unit = unit_days(ctx.btyd_time_unit)
    own = tx.loc[~tx["type"].isin(ctx.system_types), ["customer_id", "timestamp", "amount"]]
    days = (
        own.assign(day=own["timestamp"].dt.floor("D"))
        .groupby(["customer_id", "day"], as_index=False)["amount"]
        .sum()
    )
    first_day = days.groupby("customer_id")["day"].transform("min")
    days["repeat"] = days["amount"].where(days["day"] > first_day)
    s = days.groupby("customer_id").agg(
        first=("day", "min"), last=("day", "max"), n_days=("day", "size"), repeat=("repeat", "sum")
    )
    frequency = s["n_days"] - 1
    out = pd.DataFrame(index=s.index)
    out["btyd_frequency"] = frequency
    out["btyd_recency"] = (s["last"] - s["first"]).dt.total_seconds() / DAY / unit
    out["btyd_T"] = (ctx.cutoff - s["first"]).dt.total_seconds() / DAY / unit
    out["btyd_monetary_value"] = (s["repeat"] / frequency).where(frequency > 0, 0.0)
    return out, []  # undefined without a purchase: missing, like the other BTYD columns


def balance_family(b: pd.DataFrame, ctx: Context) -> Part:
    """Funds averages, balances at the cut-off, liquidity, card utilisation, delinquency, trend."""
    long = ctx.long_window
    month = b["month"]
    funds = b["demand"] + b["time_deposit"] + b["wealth_management"]
    at_cut = month >= _start(ctx, 1)
    in_long = month >= _start(ctx, long)
    cols = {"customer_id": b["customer_id"]}
    for w in ctx.windows_months:
        cols[f"aum_avg_{w}m"] = funds.where(month >= _start(ctx, w))
    for col, name in BALANCE_AT_CUTOFF.items():
        cols[name] = b[col].where(at_cut)
    cols["card_balance"] = b["card_balance"].where(at_cut)
    cols["card_limit"] = b["card_limit"].where(at_cut)
    named = {c: (c, "mean") for c in cols if c != "customer_id"}
    cols[f"max_days_past_due_{long}m"] = b["days_past_due"].where(in_long)
    cols[f"delinquent_months_{long}m"] = in_long & (b["days_past_due"] > 0)
    named[f"max_days_past_due_{long}m"] = (f"max_days_past_due_{long}m", "max")
    named[f"delinquent_months_{long}m"] = (f"delinquent_months_{long}m", "sum")
    out = pd.DataFrame(cols).groupby("customer_id").agg(**named)
    out["card_utilisation"] = (out["card_balance"] / out["card_limit"]).where(out["card_limit"] > 0)
    fixed = out["time_deposit_balance"] + out["wealth_balance"]
    funds_at_cut = out["demand_balance"] + fixed
    out["liquid_share"] = (out["demand_balance"] / funds_at_cut).where(funds_at_cut > 0)
    out["liquid_to_fixed_ratio"] = out["demand_balance"] / fixed.clip(lower=1.0)
    out = out.drop(columns=["card_balance", "card_limit"]).join(
        _trend(b.loc[in_long, "customer_id"], month[in_long], funds[in_long], long)
    )
    zero = [c for c in named if c.startswith(("aum_avg_", "delinquent_")) or c.endswith("balance")]
    return out, [c for c in zero if c in out]


def _trend(customer: pd.Series, month: pd.Series, funds: pd.Series, months: int) -> pd.DataFrame:
    """Least-squares slope and coefficient of variation of month-end funds (two passes)."""
    f = pd.DataFrame(
        {"customer_id": customer, "t": _month_number(month).astype("float64"), "y": funds}
    )
    g = f.groupby("customer_id")
    f["dt"] = f["t"] - g["t"].transform("mean")
    f["dy"] = f["y"] - g["y"].transform("mean")
    f["dxy"], f["dxx"], f["dyy"] = f["dt"] * f["dy"], f["dt"] ** 2, f["dy"] ** 2
    s = f.groupby("customer_id").agg(
        sxy=("dxy", "sum"),
        sxx=("dxx", "sum"),
        syy=("dyy", "sum"),
        n=("y", "count"),
        y=("y", "mean"),
    )
    out = pd.DataFrame(index=s.index)
    out[f"aum_trend_{months}m"] = (s["sxy"] / s["sxx"]).where(s["sxx"] > 0)
    volatility = np.sqrt(s["syy"] / (s["n"] - 1)) / s["y"]
    out[f"aum_volatility_{months}m"] = volatility.where((s["n"] > 1) & (s["y"] > 0))
    return out


def product_family(p: pd.DataFrame, ctx: Context) -> Part:
    """Products held at the end of the cut-off day: count, one flag each, cross-sell depth."""
    end = ctx.cutoff + pd.Timedelta(days=1)
    names = sorted(str(v) for v in p["product"].dropna().unique())[:MAX_PRODUCTS]
    held = (p["open_date"] < end) & (p["close_date"].isna() | (p["close_date"] >= end))
    counts = (
        p[held]
        .astype({"product": "str"})
        .groupby(["customer_id", "product"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=names, fill_value=0)
    )
    out = pd.DataFrame({"n_products": counts.sum(axis=1)})
    flags = (counts > 0).astype("int64").add_prefix("has_")
    out = out.join(flags)
    families = {f: [n for n in ns if n in names] for f, ns in ctx.product_families.items()}
    grouped = {n for ns in families.values() for n in ns}
    families |= {n: [n] for n in names if n not in grouped}
    out["cross_sell_depth"] = sum(
        flags[[f"has_{n}" for n in ns]].max(axis=1) for ns in families.values() if ns
    )
    return out, list(out.columns)


def profitability_family(p: pd.DataFrame, ctx: Context) -> Part:
    """Trailing sums of profit and its components (credit loss as expected loss)."""
    long, short = ctx.long_window, min(ctx.windows_months)
    in_long = p["month"] >= _start(ctx, long)
    components = [c for c in p.columns if c != "customer_id" and is_numeric_dtype(p[c])]
    cols = {"customer_id": p["customer_id"]}
    for c in components:
        name = "expected_loss" if c == "credit_loss" else c
        cols[f"{name}_{long}m"] = p[c].where(in_long)
    if short != long:
        cols[f"profit_{short}m"] = p["profit"].where(p["month"] >= _start(ctx, short))
    out = pd.DataFrame(cols).groupby("customer_id").sum()
    return out, list(out.columns)


def customer_family(c: pd.DataFrame, ctx: Context) -> Part:
    """Tenure, age, ordinal and one-hot demographics, numeric attributes."""
    end = ctx.cutoff + pd.Timedelta(days=1)
    out = pd.DataFrame(index=pd.Index(c["customer_id"]))
    values = c.set_index("customer_id")
    out["tenure_days"] = (end - values["open_date"].dt.floor("s")).dt.total_seconds() / DAY
    age = (end - values["birth_date"].dt.floor("s")).dt.total_seconds()
    out["age_years"] = age / (DAY * 365.25)
    for col, levels in ctx.ordinal.items():
        position = {str(v): float(i) for i, v in enumerate(levels)}
        out[f"{col}_ordinal"] = values[col].astype("str").map(position).astype("float64")
    flags = []
    for col in ctx.one_hot:
        text = values[col].astype("str").where(values[col].notna())
        for level in sorted(text.dropna().unique())[: ctx.max_categories]:
            out[f"{col}_{level}"] = (text == level).astype("int64")
            flags.append(f"{col}_{level}")
    used = {"open_date", "close_date", "birth_date", *ctx.ordinal, *ctx.one_hot}
    for col in values.columns:
        if col not in used and is_numeric_dtype(values[col]):  # booleans included
            out[col] = values[col].astype("float64")
    return out, flags
