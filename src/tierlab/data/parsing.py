"""Parse raw file columns into the canonical dtypes: ids, dates, amounts and directions.

Each parser returns the parsed column and, when some rows cannot be parsed, a
:class:`~tierlab.data.failures.Failure` naming the file column, the rule and the first offending
rows (the raw column is returned unchanged then).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from tierlab.data.failures import Failure, rows_failure

Parsed = tuple[pd.Series, Failure | None]


@dataclass(frozen=True)
class Origin:
    """Where a canonical column was read from: table, file and file column."""

    table: str
    file: Path
    source: Hashable

    def failure(self, rule: str, name: str, raw: pd.Series, bad: pd.Series | np.ndarray) -> Failure:
        return rows_failure(self.table, rule, name, self.file, raw, bad, self.source)


def parse_ids(raw: pd.Series, origin: Origin, id_dtype: str | None) -> Parsed:
    """``customer_id`` as ``str`` or ``int``; ``None`` keeps the dtype it was read with.

    Float ids (a Parquet column written from pandas with missing values, say) are accepted when
    they are whole numbers: ``1.0`` becomes ``1`` or ``"1"``.
    """
    if id_dtype is None:
        return raw, None
    column = raw
    if pdt.is_float_dtype(column.dtype):
        column, failure = whole_numbers(column, origin)
        if failure is not None:
            return raw, failure
    if id_dtype == "str":
        if pdt.is_string_dtype(column.dtype) and column.dtype != object:
            return column, None
        return column.astype("str").where(column.notna()), None
    if pdt.is_integer_dtype(column.dtype):
        return column, None
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna() & column.notna()
    if bad.any():
        return raw, origin.failure("integer id", "customer_id", raw, bad)
    if pdt.is_float_dtype(numbers.dtype):
        return whole_numbers(numbers, origin)
    return numbers, None


def whole_numbers(column: pd.Series, origin: Origin) -> Parsed:
    """Float ids that are whole numbers, as nullable integers."""
    values = column.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isnan(values) & (values != np.round(values))
    if bad.any():
        return column, origin.failure("integer id", "customer_id", column, bad)
    return column.astype("Int64"), None


def parse_dates(raw: pd.Series, origin: Origin, name: str, date_format: str | None) -> Parsed:
    """Dates with ``date_format`` (``None``: inferred by pandas); datetimes pass unchanged."""
    if pdt.is_datetime64_dtype(raw.dtype):
        return raw, None
    text = raw if pdt.is_string_dtype(raw.dtype) else raw.astype("str")
    parsed = pd.to_datetime(text, format=date_format, errors="coerce")
    bad = parsed.isna() & raw.notna()
    if bad.any():
        rule = f"date format {date_format}" if date_format else "parseable date"
        return raw, origin.failure(rule, name, raw, bad)
    return parsed, None


def parse_amounts(raw: pd.Series, origin: Origin, name: str) -> Parsed:
    """Amounts as float64; text that is not a number is a failure."""
    column = raw
    if pdt.is_bool_dtype(raw.dtype) or not pdt.is_numeric_dtype(raw.dtype):
        column = pd.to_numeric(raw, errors="coerce")
        bad = column.isna() & raw.notna()
        if bad.any():
            return raw, origin.failure("numeric", name, raw, bad)
    return column.astype("float64"), None


def map_directions(raw: pd.Series, origin: Origin, values: Mapping[Hashable, str]) -> Parsed:
    """File direction values -> ``credit``/``debit``; unmapped values are a failure."""
    mapped = raw.map(dict(values))
    bad = mapped.isna() & raw.notna()
    if bad.any():
        rule = f"in data.{origin.table}.direction_values {sorted(map(str, values))}"
        return raw, origin.failure(rule, "direction", raw, bad)
    return mapped.astype("str"), None


def split_signed(amount: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Signed amounts -> (absolute amount, direction): negative = debit, others credit."""
    direction = np.where(amount < 0, "debit", "credit")
    return amount.abs(), pd.Series(direction, index=amount.index, dtype="str")
