"""The indicator definitions run unchanged on Apache Spark (local mode) and give DuckDB's numbers.

One Spark session (``local[2]``, bound to 127.0.0.1, workers on this interpreter) serves the
module and is stopped at its end.  Skipped only when Java is missing.
"""

import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tierlab.config import compose
from tierlab.data.split import CalibrationSplit
from tierlab.data.tables import BankData
from tierlab.features import Context, build_indicators
from tierlab.features.engine import connect, tables
from tierlab.features.targets import build_targets

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java: no java on PATH"),
]

CUTOFF = pd.Timestamp("2024-12-31")  # debug bank: 36 months from 2023-01
PYSPARK_PYTHON_PRESET = "PYSPARK_PYTHON" in os.environ


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """The debug bank (400 customers), its input tables written as Parquet files."""
    tmp = tmp_path_factory.mktemp("bank")
    cfg = compose(["debug=fast", f"data.cache_dir={tmp}"])
    data = instantiate(cfg.data, _convert_="all").load()
    assert data.parquet, "the synthetic bank should come with Parquet files"
    return data


@pytest.fixture(scope="module")
def spark():
    """``features.engine=spark`` as configured, on two cores, with a few shuffle partitions."""
    options = features(
        "features.engine_options.master='local[2]'",
        "+features.engine_options.spark.sql.shuffle.partitions=4",
    )["engine_options"]
    con = connect("spark", options)
    yield con
    con.disconnect()  # stops the session


def features(*overrides: str) -> dict:
    return OmegaConf.to_container(compose(["debug=fast", *overrides]).features, resolve=True)


def both(spark_con, data, build):
    """``build(con, sources)`` on DuckDB, then on the Spark connection."""
    duck_con = connect("duckdb", {"threads": 1})
    return build(duck_con, tables(duck_con, data)), build(spark_con, tables(spark_con, data))


def assert_same(duck: pd.DataFrame, spark: pd.DataFrame, exact: set[str]) -> None:
    """Same customers, columns and dtypes; ``exact`` columns equal, the others to float
    tolerance (Spark sums in another order) with the same missing values."""
    assert len(duck) > 250
    assert duck["customer_id"].tolist() == spark["customer_id"].tolist()
    assert duck.columns.tolist() == spark.columns.tolist()
    assert duck.dtypes.to_dict() == spark.dtypes.to_dict()
    for name in duck.columns:
        a, b = duck[name], spark[name]
        if name in exact or a.dtype.kind not in "f":
            pd.testing.assert_series_equal(a, b, check_exact=True, obj=name)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=name)


def indicators_on_both(spark_con, data, ctx):
    """DuckDB's and Spark's indicator frames, and the names of the whole-number indicators."""
    (duck, docs), (spark, _) = both(
        spark_con, data, lambda con, sources: build_indicators(con, sources, ctx)
    )
    return duck, spark, {d.name for d in docs if d.unit in ("count", "flag")}


def test_the_session_is_local_on_loopback_in_utc(spark):
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    conf = session.sparkContext.getConf()
    assert session.sparkContext.master == "local[2]"
    assert conf.get("spark.driver.host") == conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.ui.enabled") == "false"
    assert session.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    assert session.conf.get("spark.sql.session.timeZone") == "UTC"
    assert session.conf.get("spark.sql.shuffle.partitions") == "4"  # an added property
    if not PYSPARK_PYTHON_PRESET:  # workers run this interpreter (the venv's)
        workers = session.sparkContext.parallelize([0], 1).map(lambda _: sys.executable)
        assert workers.collect() == [sys.executable]


def test_spark_reads_the_parquet_files_itself(spark, bank):
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    sources = tables(spark, bank)
    for name, path in bank.parquet.items():
        files = session.table(sources[name].get_name()).inputFiles()
        assert [os.path.basename(f) for f in files] == [path.name], name


def test_spark_reads_folders_of_part_files_out_of_core(spark, tmp_path):
    from pyspark.sql import SparkSession

    cfg = compose(
        [
            "debug=fast",
            f"data.cache_dir={tmp_path}",
            "data.chunk_size=150",
            "data.partitioned=true",
            "data.out_of_core=true",
        ]
    )
    data = instantiate(cfg.data, _convert_="all").load()
    assert data.transactions is None and data.on_disk
    session = SparkSession.getActiveSession()
    sources = tables(spark, data)
    files = session.table(sources["transactions"].get_name()).inputFiles()
    assert sorted(os.path.basename(f) for f in files) == [f"part-0000{i}.parquet" for i in range(3)]
    ctx = Context.from_config(features(), CUTOFF)
    duck, spark, whole = indicators_on_both(spark, data, ctx)
    assert_same(duck, spark, whole)


def test_indicators_agree_column_by_column(spark, bank):
    ctx = Context.from_config(features(), CUTOFF)
    duck, spark, whole = indicators_on_both(spark, bank, ctx)
    assert len(duck.columns) > 50
    assert_same(duck, spark, whole)


def test_indicators_agree_on_in_memory_tables_with_fractional_seconds(spark, bank):
    # the log and the customers handed over from memory, with fractional seconds just after
    # midnight and just before a day's end, where engines that round epoch seconds instead of
    # truncating them would disagree (the timestamp families only, to keep the test short)
    tx = bank.transactions.copy()
    pick = tx.sample(200, random_state=1).index
    day = tx.loc[pick, "timestamp"].dt.normalize()
    tx.loc[pick[:100], "timestamp"] = day[:100] + pd.Timedelta(milliseconds=600)
    tx.loc[pick[100:], "timestamp"] = day[100:] + pd.Timedelta(hours=23, minutes=59, seconds=59.6)
    data = BankData(
        name="in_memory",
        customers=bank.customers,
        transactions=tx,
        data_start=bank.data_start,
        data_end=bank.data_end,
    )
    ctx = Context.from_config(features("features.btyd_time_unit=D"), CUTOFF)
    duck, spark, whole = indicators_on_both(spark, data, ctx)
    assert {"recency_days", "btyd_recency", "tenure_days", "age_years"} <= set(duck.columns)
    assert_same(duck, spark, whole)


def test_targets_agree_column_by_column(spark, bank):
    settings = features()
    ctx = Context.from_config(settings, CUTOFF)
    split = CalibrationSplit.from_config(CUTOFF, 6, bank.data_start, bank.data_end)
    rate = float(settings["targets"]["discount_rate_monthly"])
    duck, spark = both(
        spark, bank, lambda con, sources: build_targets(con, sources, ctx, split, rate)
    )
    assert duck["holdout_value"].abs().sum() > 0
    assert_same(duck, spark, {"holdout_active", "holdout_transactions"})


def test_unknown_engine_options_are_named():
    with pytest.raises(ValueError, match=r"engine_options has unknown keys \['mastr'\]"):
        connect("spark", {"mastr": "local[2]"})
