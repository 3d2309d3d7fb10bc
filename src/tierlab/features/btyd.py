"""The buy-till-you-die (BTYD) summary of a transaction log, in the standard convention.

One row per customer with ``customer_id, frequency, recency, T, monetary_value``
(pymc-marketing / lifetimes convention):

* transactions on the same day count as one purchase period (their amounts are added);
* ``frequency``: number of repeat purchase days (purchase days - 1);
* ``recency``: time from the first to the last purchase day;
* ``T``: time from the first purchase day to the end of the calibration period;
* ``monetary_value``: mean value of the repeat purchase days (0 without repeats);

with times in ``time_unit`` (``D`` days, ``W`` weeks = 7 days, ``M`` months = 365.25 / 12 days).

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy way: an
alternative to the Pareto/NBD model. Marketing Science 24(2), 275-284 (the x, t_x, T notation).
"""

from __future__ import annotations

import ibis
import pandas as pd

from tierlab.features.engine import day_seconds, epoch, in_units

TIME_UNITS_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12.0}
BTYD_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary_value")
#: Indicator column -> summary column: the indicator frame carries the summary as ``btyd_*``.
BTYD_INDICATORS = {f"btyd_{c}": c for c in BTYD_COLUMNS if c != "customer_id"}


def unit_days(time_unit: str) -> float:
    """Length of a BTYD time unit in days."""
    try:
        return TIME_UNITS_DAYS[time_unit]
    except KeyError:
        raise ValueError(
            f"time_unit={time_unit!r} is not one of {sorted(TIME_UNITS_DAYS)}"
        ) from None


def btyd_expr(tx: ibis.Table, calibration_end: pd.Timestamp, time_unit: str) -> ibis.Table:
    """The BTYD summary as an Ibis expression over a canonical transaction table.

    ``calibration_end`` is the last calibration day (inclusive): transactions on it count, later
    ones do not, and ``T`` is measured to it.
    """
    unit_s = unit_days(time_unit) * 86400.0
    end_s = epoch(calibration_end)
    days = (
        tx.mutate(day_s=day_seconds(tx.timestamp))
        .filter(lambda t: t.day_s <= end_s)
        .group_by(["customer_id", "day_s"])
        .aggregate(value=lambda t: t.amount.sum())
    )
    first = days.group_by("customer_id").aggregate(
        first_s=days.day_s.min(), last_s=days.day_s.max(), n_days=days.day_s.count()
    )
    joined = days.join(first, "customer_id")
    repeat = joined.group_by("customer_id").aggregate(
        repeat_value=joined.value.sum(where=joined.day_s > joined.first_s)
    )
    out = first.join(repeat, "customer_id")
    frequency = out.n_days - 1
    return out.select(
        customer_id=out.customer_id,
        frequency=frequency.cast("int64"),
        recency=in_units(out.last_s - out.first_s, unit_s),
        T=in_units(ibis.literal(end_s) - out.first_s, unit_s),
        monetary_value=ibis.ifelse(
            frequency > 0, out.repeat_value.fill_null(0.0) / frequency.cast("float64"), 0.0
        ),
    )


def rfm_summary(
    transactions: pd.DataFrame | ibis.Table,
    calibration_end: str | pd.Timestamp,
    time_unit: str = "W",
) -> pd.DataFrame:
    """BTYD summary (``customer_id, frequency, recency, T, monetary_value``) of a transaction log.

    Parameters
    ----------
    transactions
        Canonical transaction frame (``customer_id``, ``timestamp``, ``amount``), as pandas or an
        Ibis table on any backend; any transaction log works, CDNOW included.
    calibration_end
        Last day of the calibration period (inclusive).
    time_unit
        ``"D"``, ``"W"`` (default) or ``"M"``.

    Returns
    -------
    pandas.DataFrame
        One row per customer with a purchase on or before ``calibration_end``, sorted by id.
    """
    missing = {"customer_id", "timestamp", "amount"} - set(transactions.columns)
    if missing:
        raise ValueError(
            f"transactions lack column(s) {sorted(missing)}; rfm_summary needs customer_id, "
            "timestamp and amount"
        )
    end = pd.Timestamp(calibration_end).normalize()
    if isinstance(transactions, pd.DataFrame):
        table = ibis.memtable(transactions[["customer_id", "timestamp", "amount"]])
        summary = ibis.duckdb.connect().execute(btyd_expr(table, end, time_unit))
    else:
        summary = btyd_expr(transactions, end, time_unit).execute()
    return summary.sort_values("customer_id", ignore_index=True)[list(BTYD_COLUMNS)]
