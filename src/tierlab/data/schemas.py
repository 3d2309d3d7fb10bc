"""Data contracts: one pandera schema per canonical table, checked where data enters tierlab.

The canonical tables and their columns are described in :mod:`tierlab.data.tables`. Each schema
checks the canonical columns only; data sets may carry any other attribute columns beside them
(except in ``balances`` and ``profitability``, where every other column is a numeric amount).

Rules, by table (``id`` = integer or string dtype, never float, never null):

* transactions: ``customer_id`` id; ``timestamp`` datetime64, not null; ``amount`` float, finite,
  >= 0; optional ``direction`` in {credit, debit}; optional ``channel``, ``type`` strings.
* customers: ``customer_id`` id, unique; optional ``open_date``, ``close_date``, ``birth_date``
  datetime64 (nullable), ``close_date >= open_date`` where both are present.
* balances: ``customer_id`` id; ``month`` datetime64; every other column numeric, finite, >= 0;
  ``(customer_id, month)`` unique.
* products: ``customer_id`` id; ``product`` string; ``open_date`` datetime64; ``close_date``
  datetime64 or null, ``close_date >= open_date`` where present.
* profitability: ``customer_id`` id; ``month`` datetime64; every other column numeric and finite.

:func:`validate_bank` adds the rules that span tables: no table is empty, every ``customer_id``
appears in the customer table (when there is one), and transaction timestamps lie inside
``data_start .. data_end`` (whole days).

Every violation is reported in one :class:`DataValidationError`, one line per column and rule::

    table 'transactions' (file x.csv): column 'amount' has 12 values failing rule
    'greater_than_or_equal_to(0)' (first at rows [3, 7, 9]: -5.0, -1.2, -0.3)

Rows are 0-based positions in the table (for a file: data rows after the header).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandas.api import types as pdt
from pandera.errors import SchemaErrors

from tierlab.data.failures import (
    N_EXAMPLES,
    Failure,
    format_failures,
    from_failure_cases,
    rows_failure,
)
from tierlab.data.tables import BankData

DIRECTIONS = ("credit", "debit")
ID_HINT = (
    "read ids as strings or integers (id_dtype: str in the data config, "
    "or dtype={'customer_id': str} in pandas)"
)


class DataValidationError(ValueError):
    """A table breaks its data contract.

    Attributes
    ----------
    failures
        One :class:`Failure` per column and rule, in the order they are reported.
    """

    def __init__(self, message: str, failures: Iterable[Failure] = ()) -> None:
        super().__init__(message)
        self.failures = tuple(failures)


def raise_failures(failures: list[Failure]) -> None:
    """Raise one :class:`DataValidationError` for all failures (nothing when empty)."""
    if failures:
        raise DataValidationError(format_failures(failures), failures)


# ----------------------------------------------------------------------------------------------
# dtype predicates and checks

ID_RULE = "integer or string dtype"
DATETIME_RULE = "datetime64 dtype (timezone-naive)"


def is_string_like(s: pd.Series) -> bool:
    """String dtype, an object column holding only strings (and nulls), or string categories."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return pdt.infer_dtype(s.cat.categories, skipna=True) in ("string", "empty")
    if pdt.is_string_dtype(s.dtype) and s.dtype != object:
        return True
    return s.dtype == object and pdt.infer_dtype(s, skipna=True) in ("string", "empty")


def is_integer(s: pd.Series) -> bool:
    dtype = s.cat.categories.dtype if isinstance(s.dtype, pd.CategoricalDtype) else s.dtype
    return pdt.is_integer_dtype(dtype) and not pdt.is_bool_dtype(dtype)


def is_id(s: pd.Series) -> bool:
    """Customer ids are integers or strings; a float column means ids were mangled on reading."""
    return is_integer(s) or is_string_like(s)


def is_numeric(s: pd.Series) -> bool:
    return pdt.is_numeric_dtype(s.dtype) and not pdt.is_bool_dtype(s.dtype)


def is_float(s: pd.Series) -> bool:
    return pdt.is_float_dtype(s.dtype)


def is_datetime(s: pd.Series) -> bool:
    """Timezone-naive datetime64 of any unit (pandas 3 parses to ``us`` by default)."""
    return pdt.is_datetime64_dtype(s.dtype)


def dtype_check(predicate: Callable[[pd.Series], bool], rule: str) -> pa.Check:
    """A whole-column dtype rule (one boolean, so no per-row failure cases)."""
    return pa.Check(lambda s: bool(predicate(s)), name=rule, error=rule, ignore_na=False)


def value_check(
    fn: Callable[[pd.Series], pd.Series], rule: str, accepts: Callable[[pd.Series], bool]
) -> pa.Check:
    """A vectorised per-row rule, skipped (passes) when the dtype rule already fails."""

    def check(s: pd.Series) -> pd.Series | bool:
        return fn(s) if accepts(s) else True

    return pa.Check(check, name=rule, error=rule, n_failure_cases=N_EXAMPLES)


def finite(s: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(s.to_numpy(dtype=float, na_value=np.nan)), index=s.index)


GE0 = value_check(lambda s: s >= 0, "greater_than_or_equal_to(0)", is_numeric)
FINITE = value_check(finite, "finite", is_numeric)
DIRECTION = value_check(
    lambda s: s.isin(DIRECTIONS), f"isin({', '.join(DIRECTIONS)})", lambda s: True
)
CLOSE_AFTER_OPEN = "close_date >= open_date"


def close_after_open(df: pd.DataFrame) -> pd.Series | bool:
    """``close_date >= open_date`` where both are present (and both are datetimes)."""
    if not {"open_date", "close_date"} <= set(df.columns):
        return True
    if not (is_datetime(df["open_date"]) and is_datetime(df["close_date"])):
        return True
    return ~(df["close_date"] < df["open_date"])


#: Data-frame-wide checks, and the column their failures are reported under.
FRAME_CHECK_COLUMN = {CLOSE_AFTER_OPEN: "close_date"}


def id_column(*, unique: bool = False) -> pa.Column:
    return pa.Column(nullable=False, unique=unique, checks=[dtype_check(is_id, ID_RULE)])


def datetime_column(*, nullable: bool = False, required: bool = True) -> pa.Column:
    checks = [dtype_check(is_datetime, DATETIME_RULE)]
    return pa.Column(nullable=nullable, required=required, checks=checks)


def string_column(*, nullable: bool = True, required: bool = False, checks=()) -> pa.Column:
    rule = "string dtype"
    return pa.Column(
        nullable=nullable,
        required=required,
        checks=[dtype_check(is_string_like, rule), *checks],
    )


def other_columns(*, non_negative: bool) -> dict[str, pa.Column]:
    """Every column except ``customer_id`` and ``month``: numeric and finite (and maybe >= 0)."""
    checks = [dtype_check(is_numeric, "numeric dtype"), FINITE]
    if non_negative:
        checks.insert(1, GE0)
    column = pa.Column(nullable=False, regex=True, required=False, checks=checks)
    return {r"^(?!(?:customer_id|month)$).+$": column}


SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "transactions": pa.DataFrameSchema(
        {
            "customer_id": id_column(),
            "timestamp": datetime_column(),
            "amount": pa.Column(
                nullable=False, checks=[dtype_check(is_float, "float dtype"), GE0, FINITE]
            ),
            "direction": string_column(nullable=False, checks=[DIRECTION]),
            "channel": string_column(),
            "type": string_column(),
        },
        name="transactions",
    ),
    "customers": pa.DataFrameSchema(
        {
            "customer_id": id_column(unique=True),
            "open_date": datetime_column(nullable=True, required=False),
            "close_date": datetime_column(nullable=True, required=False),
            "birth_date": datetime_column(nullable=True, required=False),
        },
        checks=[pa.Check(close_after_open, name=CLOSE_AFTER_OPEN, n_failure_cases=N_EXAMPLES)],
        name="customers",
    ),
    "balances": pa.DataFrameSchema(
        {
            "customer_id": id_column(),
            "month": datetime_column(),
            **other_columns(non_negative=True),
        },
        unique=["customer_id", "month"],
        name="balances",
    ),
    "products": pa.DataFrameSchema(
        {
            "customer_id": id_column(),
            "product": string_column(nullable=False, required=True),
            "open_date": datetime_column(),
            "close_date": datetime_column(nullable=True),
        },
        checks=[pa.Check(close_after_open, name=CLOSE_AFTER_OPEN, n_failure_cases=N_EXAMPLES)],
        name="products",
    ),
    "profitability": pa.DataFrameSchema(
        {
            "customer_id": id_column(),
            "month": datetime_column(),
            **other_columns(non_negative=False),
        },
        unique=["customer_id", "month"],
        name="profitability",
    ),
}

#: Date columns of each table (loaders parse these).
DATE_COLUMNS = {
    name: tuple(
        c for c, col in schema.columns.items() if any(k.name == DATETIME_RULE for k in col.checks)
    )
    for name, schema in SCHEMAS.items()
}


def canonical_columns(table: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (required, optional) canonical column names of a table."""
    columns = [(n, c) for n, c in schema_for(table).columns.items() if not c.regex]
    return (
        tuple(n for n, c in columns if c.required),
        tuple(n for n, c in columns if not c.required),
    )


def schema_for(table: str) -> pa.DataFrameSchema:
    if table not in SCHEMAS:
        raise ValueError(f"unknown table {table!r}; should be one of {list(SCHEMAS)}")
    return SCHEMAS[table]


def table_failures(name: str, df: pd.DataFrame, source: str | Path | None = None) -> list[Failure]:
    """Validate one table against its schema and return its failures (empty when it passes)."""
    schema = schema_for(name)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"table {name!r} should be a pandas DataFrame, got {type(df).__name__}")
    frame = df
    if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1):
        frame = df.reset_index(drop=True)  # so that rows are reported as positions
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        return from_failure_cases(
            name,
            schema,
            frame,
            exc.failure_cases,
            source,
            frame_check_columns=FRAME_CHECK_COLUMN,
            hints={ID_RULE: ID_HINT},
        )
    return []


# ----------------------------------------------------------------------------------------------
# public API


def validate_table(
    name: str, df: pd.DataFrame, *, source: str | Path | None = None
) -> pd.DataFrame:
    """Check one canonical table against its schema.

    Parameters
    ----------
    name
        Table name: ``transactions``, ``customers``, ``balances``, ``products`` or
        ``profitability``.
    df
        The table. Columns beyond the canonical ones are allowed.
    source
        File the table was read from, named in error messages.

    Returns
    -------
    pd.DataFrame
        ``df`` itself, unchanged.

    Raises
    ------
    DataValidationError
        One error listing every broken rule (table, file, column, rule, count, first rows).
    """
    raise_failures(table_failures(name, df, source))
    return df


def validate_bank(data: BankData) -> BankData:
    """Check every table of a data set, then the rules that span tables.

    Cross-table rules: no table is empty; every ``customer_id`` of another table is in the
    customer table (when there is one); transaction timestamps lie on or after the day of
    ``data_start`` and on or before the day of ``data_end``.  On-disk tables (out of core) are
    checked batch by batch (:func:`tierlab.data.out_of_core.on_disk_failures`).

    Returns
    -------
    BankData
        ``data`` itself, unchanged.

    Raises
    ------
    DataValidationError
        One error listing every broken rule of every table.
    """
    tables = data.tables()
    if not tables and not data.on_disk:
        raise DataValidationError(f"data set {data.name!r} has no tables")
    failures: list[Failure] = []
    for name, table in tables.items():
        file = data.files.get(name)
        if len(table) == 0:
            detail = "has 0 rows, failing rule 'not empty'"
            failures.append(Failure(name, "not empty", None, file, detail=detail))
        else:
            failures += table_failures(name, table, file)
    broken = {(f.table, f.column) for f in failures}
    failures += _unknown_customers(data, broken)
    failures += _time_range(data, broken)
    if data.on_disk:  # out of core: the same rules, one batch at a time
        from tierlab.data.out_of_core import on_disk_failures

        failures += on_disk_failures(data, broken)
    raise_failures(failures)
    return data


def _unknown_customers(data: BankData, broken: set) -> list[Failure]:
    customers = data.customers
    if customers is None or ("customers", "customer_id") in broken or not len(customers):
        return []
    known = customers["customer_id"]
    failures = []
    for name, table in data.tables().items():
        if name == "customers" or (name, "customer_id") in broken or not len(table):
            continue
        ids = table["customer_id"]
        file = data.files.get(name)
        if is_integer(ids) != is_integer(known):
            detail = (
                f"has dtype {ids.dtype} but customers.customer_id has dtype {known.dtype}, "
                "failing rule 'same id dtype'; read both with the same id_dtype"
            )
            failures.append(Failure(name, "same id dtype", "customer_id", file, detail=detail))
            continue
        unknown = ~ids.isin(known).to_numpy()
        if unknown.any():
            failures.append(
                rows_failure(name, "in customers.customer_id", "customer_id", file, ids, unknown)
            )
    return failures


def _time_range(data: BankData, broken: set) -> list[Failure]:
    start = None if data.data_start is None else pd.Timestamp(data.data_start).normalize()
    end = None if data.data_end is None else pd.Timestamp(data.data_end).normalize()
    if start is not None and end is not None and start > end:
        detail = (
            f"{data.name!r} has data_start {start.date()} after data_end {end.date()}, "
            "failing rule 'data_start <= data_end'"
        )
        return [Failure(None, "data_start <= data_end", None, detail=detail)]
    table = data.transactions
    if table is None or not len(table) or ("transactions", "timestamp") in broken:
        return []
    file = data.files.get("transactions")
    stamps = table["timestamp"]
    failures = []
    if start is not None:
        early = (stamps < start).to_numpy()
        if early.any():
            rule = f"on or after data_start {start.date()}"
            failures.append(rows_failure("transactions", rule, "timestamp", file, stamps, early))
    if end is not None:
        late = (stamps >= end + pd.Timedelta(days=1)).to_numpy()
        if late.any():
            rule = f"on or before data_end {end.date()}"
            failures.append(rows_failure("transactions", rule, "timestamp", file, stamps, late))
    return failures


__all__ = [
    "DataValidationError",
    "Failure",
    "SCHEMAS",
    "canonical_columns",
    "validate_bank",
    "validate_table",
]
