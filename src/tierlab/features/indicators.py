"""Value indicators per customer as of the cut-off: one definition, any Ibis engine.

Each family (``activity.py``, ``funds.py``, ``holdings.py``) is a function returning an Ibis
table keyed by ``customer_id`` plus the dictionary of its columns; it reads only rows dated on or
before the cut-off day.  Families whose tables a data set does not have are skipped: nothing is
faked.  :func:`build_indicators` left-joins them onto the customer population at the cut-off and
executes the whole plan once on the engine (DuckDB by default).
"""

from __future__ import annotations

import ibis
import pandas as pd

from tierlab.features.activity import btyd_family, transaction_family
from tierlab.features.context import DAY, Context, Family
from tierlab.features.dictionary import Indicator
from tierlab.features.engine import in_units, seconds
from tierlab.features.funds import balance_family
from tierlab.features.holdings import (
    customer_family,
    distinct_values,
    product_family,
    profitability_family,
)

MAX_PRODUCTS = 50


def population(tables: dict[str, ibis.Table], ctx: Context) -> ibis.Table:
    """Customers of the bank at the end of the cut-off day.

    With a customer table that has open and close dates: relationships opened on or before the
    cut-off day and not closed by its end.  With a customer table without dates: every customer.
    With a transaction log only: customers with a transaction on or before the cut-off day.
    """
    customers = tables.get("customers")
    if customers is not None:
        c = customers
        if "open_date" in c.columns:
            c = c.filter(seconds(c.open_date) < ctx.end_s)
        if "close_date" in c.columns:
            close_s = seconds(c.close_date)
            c = c.filter(close_s.isnull() | (close_s >= ctx.end_s))
        return c.select("customer_id").distinct()
    tx = tables["transactions"]
    return tx.filter(seconds(tx.timestamp) < ctx.end_s).select("customer_id").distinct()


def families(con: ibis.BaseBackend, tables: dict[str, ibis.Table], ctx: Context) -> list[Family]:
    """Every family the data set's tables can supply."""
    out = []
    if "transactions" in tables:
        customers = tables.get("customers")
        no_open_dates = customers is None or "open_date" not in customers.columns
        out.append(transaction_family(tables["transactions"], ctx, no_open_dates))
        out.append(btyd_family(tables["transactions"], ctx))
    if "balances" in tables:
        out.append(balance_family(tables["balances"], ctx))
    if "products" in tables:
        names = distinct_values(con, tables["products"].product, MAX_PRODUCTS)
        out.append(product_family(tables["products"], ctx, names))
    if "profitability" in tables:
        out.append(profitability_family(tables["profitability"], ctx))
    if "customers" in tables:
        out.append(customer_family(con, tables["customers"], ctx))
    return out


def build_indicators(
    con: ibis.BaseBackend, tables: dict[str, ibis.Table], ctx: Context
) -> tuple[pd.DataFrame, list[Indicator]]:
    """The indicator frame (one row per customer at the cut-off, sorted by id) and its
    dictionary."""
    if not ({"transactions", "customers"} & set(tables)):
        raise ValueError(
            "indicators need a transaction log or a customer table; the data set has "
            f"{sorted(tables)}"
        )
    result = population(tables, ctx)
    docs: list[Indicator] = []
    has_tenure = False
    for table, family_docs in families(con, tables, ctx):
        result = result.left_join(table, "customer_id").drop("customer_id_right")
        docs += family_docs
        has_tenure |= any(d.name == "tenure_days" for d in family_docs)
    if "first_transaction_s" in result.columns:
        if not has_tenure:
            result = result.mutate(
                tenure_days=in_units(ctx.end_s - result.first_transaction_s, DAY)
            )
            docs.append(
                Indicator(
                    "tenure_days",
                    "relationship",
                    "days from the first (customer-initiated) transaction to the end of the "
                    "cut-off day (no open date in the data)",
                    "days",
                    "transactions",
                )
            )
        result = result.drop("first_transaction_s")
    filled = {}
    for doc in docs:
        column = result[doc.name]
        if doc.fill is None:
            continue
        if doc.unit in ("count", "flag"):  # whole numbers stay whole on every engine
            filled[doc.name] = column.fill_null(0).cast("int64")
        else:
            filled[doc.name] = column.fill_null(doc.fill)
    result = result.mutate(**filled)
    frame = con.execute(result.select("customer_id", *[d.name for d in docs]))
    return frame.sort_values("customer_id", ignore_index=True), docs
