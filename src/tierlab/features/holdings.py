"""Indicator families from the products, profitability and customer tables."""

from __future__ import annotations

import ibis

from tierlab.features.context import DAY, Context, Family
from tierlab.features.dictionary import Indicator
from tierlab.features.engine import in_units, seconds

DATE_ATTRIBUTES = ("open_date", "close_date", "birth_date")


def distinct_values(con: ibis.BaseBackend, column: ibis.Value, limit: int) -> list[str]:
    """Sorted distinct non-null values of a (small-cardinality) column."""
    values = con.execute(column.name("v").as_table().distinct().limit(limit + 1))["v"]
    out = sorted(str(v) for v in values.dropna())
    return out[:limit]


def product_family(products: ibis.Table, ctx: Context, product_names: list[str]) -> Family:
    """Products held at the cut-off: count, one flag per product, cross-sell depth."""
    p = products.mutate(open_s=seconds(products.open_date), close_s=seconds(products.close_date))
    held = (p.open_s < ctx.end_s) & (p.close_s.isnull() | (p.close_s >= ctx.end_s))
    aggs = {"n_products": p.product.count(where=held)}
    docs = [
        Indicator(
            "n_products",
            "products",
            "number of product holdings open at the end of the cut-off day",
            "count",
            "products",
        )
    ]
    for name in product_names:
        aggs[f"has_{name}"] = (p.product.count(where=held & (p.product == name)) > 0).cast("int64")
        docs.append(
            Indicator(
                f"has_{name}",
                "products",
                f"1 if a {name} is held at the cut-off, else 0",
                "flag",
                "products",
            )
        )
    agg = p.group_by("customer_id").aggregate(**aggs)
    families = {
        f: [n for n in names if n in product_names] for f, names in ctx.product_families.items()
    }
    grouped = {n for names in families.values() for n in names}
    families.update({n: [n] for n in product_names if n not in grouped})  # own family
    families = {f: names for f, names in families.items() if names}
    if families:
        depth = sum(
            (_any([agg[f"has_{n}"] for n in names]) for names in families.values()),
            ibis.literal(0, "int64"),
        )
        agg = agg.mutate(cross_sell_depth=depth.cast("int64"))
        docs.append(
            Indicator(
                "cross_sell_depth",
                "products",
                "number of product families held at the cut-off, families: "
                + "; ".join(f"{f} = {names}" for f, names in families.items()),
                "count",
                "products",
            )
        )
    return agg, docs


def _any(flags: list[ibis.Value]) -> ibis.Value:
    """1 if any of the 0/1 flags is 1.  A single flag is itself: Spark's ``greatest`` needs two
    or more arguments."""
    return flags[0] if len(flags) == 1 else ibis.greatest(*flags)


def profitability_family(prof: ibis.Table, ctx: Context) -> Family:
    """Trailing profit and every profit component over the longest window (and profit over 3m)."""
    p = prof.mutate(month_s=seconds(prof.month)).filter(lambda p: p.month_s < ctx.end_s)
    long = ctx.long_window
    in_long = p.month_s >= ctx.start_s(long)
    components = [
        c for c, t in prof.schema().items() if t.is_numeric() and c not in ("customer_id",)
    ]
    aggs, docs = {}, []
    for col in components:
        name = "expected_loss" if col == "credit_loss" else col
        family = "credit" if col == "credit_loss" else "profitability"
        aggs[f"{name}_{long}m"] = p[col].sum(where=in_long)
        docs.append(
            Indicator(
                f"{name}_{long}m",
                family,
                f"sum of monthly {col} over the {long} months to the cut-off",
                "currency",
                "profitability",
            )
        )
    if "profit" in components:
        short = min(ctx.windows_months)
        if short != long:
            aggs[f"profit_{short}m"] = p.profit.sum(where=p.month_s >= ctx.start_s(short))
            docs.append(
                Indicator(
                    f"profit_{short}m",
                    "profitability",
                    f"sum of monthly profit over the {short} months to the cut-off",
                    "currency",
                    "profitability",
                )
            )
    return p.group_by("customer_id").aggregate(**aggs), docs


def customer_family(con: ibis.BaseBackend, customers: ibis.Table, ctx: Context) -> Family:
    """Tenure, age, risk grade, encoded demographics and other numeric attributes."""
    c = customers
    cols = c.schema()
    out: dict[str, ibis.Value] = {}
    docs: list[Indicator] = []
    if "open_date" in cols:
        out["tenure_days"] = in_units(ctx.end_s - seconds(c.open_date), DAY)
        docs.append(
            Indicator(
                "tenure_days",
                "relationship",
                "days from the relationship's open date to the end of the cut-off day",
                "days",
                "customers",
            )
        )
    if "birth_date" in cols:
        out["age_years"] = in_units(ctx.end_s - seconds(c.birth_date), DAY * 365.25)
        docs.append(
            Indicator("age_years", "demographics", "age at the cut-off", "years", "customers")
        )
    for col, levels in ctx.ordinal.items():
        if col in cols:
            cases = [(c[col].cast("string") == str(v), i) for i, v in enumerate(levels)]
            out[f"{col}_ordinal"] = ibis.cases(*cases, else_=None).cast("float64")
            docs.append(
                Indicator(
                    f"{col}_ordinal",
                    "demographics",
                    f"position of {col} in {list(levels)} (0 = first; missing if unlisted)",
                    "ordinal",
                    "customers",
                )
            )
    for col in ctx.one_hot:
        if col in cols:
            for level in distinct_values(con, c[col].cast("string"), ctx.max_categories):
                name = f"{col}_{level}"
                out[name] = (c[col].cast("string") == level).fill_null(False).cast("int64")
                docs.append(
                    Indicator(
                        name,
                        "demographics",
                        f"1 if {col} is {level!r}, else 0",
                        "flag",
                        "customers",
                    )
                )
    used = {"customer_id", *DATE_ATTRIBUTES, *ctx.ordinal, *ctx.one_hot}
    for col, dtype in cols.items():
        if col in used or not (dtype.is_numeric() or dtype.is_boolean()):
            continue
        family = "credit" if col == "risk_grade" else "attributes"
        out[col] = c[col].cast("float64")
        docs.append(
            Indicator(
                col, family, f"{col} as recorded in the customer table", "as recorded", "customers"
            )
        )
    return c.select("customer_id", **out), docs
