"""Where indicator definitions run: Ibis backends, in-process by default.

The indicator definitions (``indicators.py``, ``btyd.py``, ``targets.py``) are Ibis expressions.
They run on DuckDB in-process by default (reading Parquet files directly when the data set has
them) and on Polars as a second engine; Ibis's PySpark backend runs them unchanged on Spark.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import pandas as pd

from tierlab.data.tables import BankData

ENGINES = ("duckdb", "polars")


def connect(engine: str, options: Mapping[str, Any] | None = None) -> ibis.BaseBackend:
    """An Ibis backend by name: ``duckdb`` (default, ``memory_limit``/``threads`` options) or
    ``polars``."""
    options = dict(options or {})
    if engine == "duckdb":
        return ibis.duckdb.connect(**options)
    if engine == "polars":
        return ibis.polars.connect()
    raise ValueError(f"features.engine={engine!r} is not one of {ENGINES}")


def tables(con: ibis.BaseBackend, data: BankData) -> dict[str, ibis.Table]:
    """The data set's input tables as Ibis tables on ``con``.

    Tables whose Parquet file holds exactly the in-memory frame (``data.parquet``) are read from
    the file by the engine; the others are handed over from memory.
    """
    out = {}
    for name, frame in data.tables().items():
        path = data.parquet.get(name)
        out[name] = con.read_parquet(path) if path is not None else ibis.memtable(_plain(frame))
    return out


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as plain strings (every backend handles those the same way)."""
    cats = [c for c, t in frame.dtypes.items() if isinstance(t, pd.CategoricalDtype)]
    return frame.astype(dict.fromkeys(cats, "str")) if cats else frame


def seconds(column: ibis.Value) -> ibis.Value:
    """Epoch seconds of a timestamp, truncated to whole seconds on every engine.

    ``epoch_seconds()`` rounds on DuckDB but truncates on Spark and Polars; truncating first makes
    them agree.
    """
    return column.cast("timestamp").truncate("s").epoch_seconds()


def day_seconds(column: ibis.Value) -> ibis.Value:
    """Epoch seconds of the start of the timestamp's day."""
    return column.cast("timestamp").truncate("D").epoch_seconds()


def month_number(column: ibis.Value) -> ibis.Value:
    """Months since year 0 (``year * 12 + month``): consecutive months differ by 1."""
    return column.year() * 12 + column.month()


def epoch(day: pd.Timestamp) -> int:
    """Epoch seconds of a day (midnight)."""
    return int(pd.Timestamp(day).normalize().timestamp())
