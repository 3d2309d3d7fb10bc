"""Where indicator definitions run: Ibis backends, in-process by default.

The indicator definitions (``indicators.py``, ``btyd.py``, ``targets.py``) are Ibis expressions.
They run on DuckDB in-process by default (reading Parquet files directly when the data set has
them), on Polars as a second engine, and unchanged on Apache Spark through Ibis's PySpark
backend (``engine=spark``: local on this machine or on a cluster, :func:`spark_session`).
Where engines disagree on an expression (epoch-second rounding, decimal literals, ``greatest``
of one argument), the helpers here or the definitions are written so that all engines agree.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

import ibis
import pandas as pd

from tierlab.data.tables import BankData, parquet_source

ENGINES = ("duckdb", "polars", "spark")
# engine_options is one mapping shared by the engines; each takes its own keys.
ENGINE_KEYS = {
    "duckdb": ("memory_limit", "threads", "temp_directory"),
    "polars": (),
    "spark": ("master", "app_name", "spark"),
}
LOOPBACK = "127.0.0.1"

log = logging.getLogger(__name__)


def connect(engine: str, options: Mapping[str, Any] | None = None) -> ibis.BaseBackend:
    """An Ibis backend by name.

    Parameters
    ----------
    engine
        ``duckdb`` (in-process, default), ``polars`` (in-process) or ``spark`` (Apache Spark,
        local or on a cluster, see :func:`spark_session`).
    options
        ``features.engine_options``: one mapping for all engines; each engine takes its own keys
        (``ENGINE_KEYS``) and ignores the others'; a key no engine takes is an error.
        DuckDB: ``memory_limit``, ``threads``, ``temp_directory`` (where operators that do not
        fit in ``memory_limit`` spill; ``None``: DuckDB's default).  Spark: ``master``,
        ``app_name`` and ``spark``
        (Spark properties without the ``spark.`` prefix, nested or dotted:
        ``{"sql": {"shuffle.partitions": 8}}`` is ``spark.sql.shuffle.partitions=8``).
    """
    if engine not in ENGINES:
        raise ValueError(f"features.engine={engine!r} is not one of {ENGINES}")
    options = dict(options or {})
    known = sorted({key for keys in ENGINE_KEYS.values() for key in keys})
    if unknown := sorted(set(options) - set(known)):
        raise ValueError(
            f"features.engine_options has unknown keys {unknown}; the engines take {known}"
        )
    own = {key: value for key, value in options.items() if key in ENGINE_KEYS[engine]}
    if engine == "duckdb":
        if own.get("temp_directory") is None:
            own.pop("temp_directory", None)
        return ibis.duckdb.connect(**own)
    if engine == "polars":
        return ibis.polars.connect()
    return ibis.pyspark.connect(spark_session(**own))


def spark_session(
    master: str | None = None,
    app_name: str | None = None,
    spark: Mapping[str, Any] | None = None,
) -> Any:
    """The Spark session the indicators run on: the running one, or a new one.

    Under ``spark-submit``, or when the caller already started a session, that session is used
    as configured: master, driver host, resources and UI are the platform's business; only the
    ``spark.sql.*`` properties (runtime settings) are applied to it.  Otherwise a session is
    built with ``master``, ``app_name`` and the ``spark`` properties; for a local master
    (``local``, ``local[*]``, ``local[2]``) the driver binds to the loopback interface
    (``SPARK_LOCAL_IP``, ``spark.driver.host``, ``spark.driver.bindAddress``) and Python workers
    run this interpreter (``PYSPARK_PYTHON``, ``PYSPARK_DRIVER_PYTHON``; environment variables
    already set are kept).  The session time zone is always UTC, so timestamps without a time
    zone mean what they mean on DuckDB.

    Parameters
    ----------
    master
        ``local[*]``, ``yarn``, ``k8s://https://host:443``, ``spark://host:7077``; ``None``:
        ``spark.master`` among the properties, else ``local[*]`` (Spark's own default).
    app_name
        Application name shown by the cluster manager; ``None``: Spark's default.
    spark
        Spark properties, keys without the ``spark.`` prefix, nested or dotted.
    """
    from pyspark.sql import SparkSession

    conf = {f"spark.{key}": _spark_value(v) for key, v in _flatten(spark or {}).items()}
    conf["spark.sql.session.timeZone"] = "UTC"
    master = master or conf.pop("spark.master", None) or "local[*]"
    session = SparkSession.getActiveSession()
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started this interpreter
    if session is not None or submitted:
        session = session or SparkSession.builder.getOrCreate()
        if master != session.sparkContext.master:
            log.info(
                "features: Spark runs on the session's master %s, not engine_options.master=%s",
                session.sparkContext.master,
                master,
            )
        for key, value in conf.items():
            if key.startswith("spark.sql."):
                session.conf.set(key, value)
        return session
    builder = SparkSession.builder.master(master)
    if app_name is not None:
        builder = builder.appName(app_name)
    if master.split("[")[0] == "local":
        os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        conf = {"spark.driver.host": LOOPBACK, "spark.driver.bindAddress": LOOPBACK} | conf
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"sql": {"shuffle.partitions": 8}}`` as ``{"sql.shuffle.partitions": 8}``."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def _spark_value(value: Any) -> str:
    """A Spark property value as Spark spells it (``true``, not ``True``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def tables(con: ibis.BaseBackend, data: BankData) -> dict[str, ibis.Table]:
    """The data set's input tables as Ibis tables on ``con``.

    Tables on disk (``data.on_disk``, out of core) and tables whose Parquet file holds exactly
    the in-memory frame (``data.parquet``) are read from the file, or the folder's part files, by
    the engine; the others are handed over from memory.
    """
    out = {}
    for name in data.names():
        path = data.on_disk.get(name) or data.parquet.get(name)
        if path is not None:
            # Spark reads a folder of part files as one table (a glob makes it log a warning
            # with a stack trace); DuckDB and Polars take a glob of the parts
            source = str(path) if con.name == "pyspark" else parquet_source(path)
            out[name] = con.read_parquet(source)
        else:
            out[name] = ibis.memtable(_plain(getattr(data, name)))
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


def in_units(span: ibis.Value, unit_seconds: float) -> ibis.Value:
    """A span of (integer) epoch seconds in a unit of ``unit_seconds`` (days, weeks, years).

    The span is cast to float64 before dividing: Spark reads a literal such as ``86400.0`` as a
    DECIMAL, and an integer divided by a decimal is a decimal of a few digits (1 s / 86400.0 gives
    1.16e-05 instead of 1.1574074e-05); a float64 span keeps the division in doubles everywhere.
    """
    return span.cast("float64") / unit_seconds


def month_number(column: ibis.Value) -> ibis.Value:
    """Months since year 0 (``year * 12 + month``): consecutive months differ by 1."""
    return column.year() * 12 + column.month()


def epoch(day: pd.Timestamp) -> int:
    """Epoch seconds of a day (midnight)."""
    return int(pd.Timestamp(day).normalize().timestamp())
