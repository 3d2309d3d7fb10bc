"""No leakage, proven: rows after the cut-off cannot change an indicator; one definition gives
the same numbers on DuckDB and Polars."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from features_fixture import indicators
from tierlab.config import compose
from tierlab.data.split import CalibrationSplit
from tierlab.features.engine import connect, tables
from tierlab.features.stage import training_snapshot

CUTOFF = pd.Timestamp("2024-12-31")  # debug bank: 36 months from 2023-01, holdout 12 months
AFTER = CUTOFF + pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bank")
    cfg = compose(["debug=fast", "split.holdout_months=12", f"data.cache_dir={tmp}"])
    return instantiate(cfg.data, _convert_="all").load()


def rewrite_the_future(data, seed=0):
    """Mutate, delete and add rows dated after the cut-off in every table."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, time_col in (
        ("transactions", "timestamp"),
        ("balances", "month"),
        ("profitability", "month"),
    ):
        frame = getattr(data, name)
        future = frame[time_col] > CUTOFF + pd.Timedelta(hours=23, minutes=59, seconds=59)
        past, later = frame.loc[~future], frame.loc[future]
        assert len(later) > 100, name
        later = later.sample(frac=0.5, random_state=seed)  # delete half
        numeric = [c for c in later.columns if c != "customer_id" and later[c].dtype.kind in "fi"]
        later[numeric] = later[numeric] * 3 + 1  # mutate
        added = later.copy()
        added[time_col] = added[time_col] + pd.Timedelta(days=3)  # add
        out[name] = pd.concat([past, later, added], ignore_index=True)
    products = data.products.copy()
    closes_later = products["close_date"] > CUTOFF
    products.loc[closes_later, "close_date"] = products.loc[
        closes_later, "close_date"
    ] + pd.Timedelta(days=20)
    new_loans = products.sample(50, random_state=seed).assign(
        product="consumer_loan", open_date=AFTER + pd.Timedelta(days=10), close_date=pd.NaT
    )
    out["products"] = pd.concat([products, new_loans], ignore_index=True)
    customers = data.customers.copy()
    later = customers["close_date"] > CUTOFF
    customers.loc[later, "close_date"] = customers.loc[later, "close_date"] + pd.Timedelta(days=5)
    newcomers = customers.tail(5).assign(
        customer_id=customers["customer_id"].max() + np.arange(1, 6),
        open_date=AFTER,
        close_date=pd.NaT,
    )
    out["customers"] = pd.concat([customers, newcomers], ignore_index=True)
    assert rng is not None
    return dataclasses.replace(data, parquet={}, **out)


def test_rows_after_the_cutoff_change_nothing(bank):
    before, _ = indicators(bank, CUTOFF)
    after, _ = indicators(rewrite_the_future(bank), CUTOFF)
    assert len(before) > 250
    pd.testing.assert_frame_equal(before, after)


def test_and_the_rewrite_does_change_indicators_of_a_later_cutoff(bank):
    later = CUTOFF + pd.offsets.MonthEnd(3)
    before, _ = indicators(bank, later)
    after, _ = indicators(rewrite_the_future(bank), later)
    assert not before.equals(after)


def test_a_month_later_cutoff_ages_recency_and_tenure_by_that_month(bank):
    first, _ = indicators(bank, CUTOFF)
    second, _ = indicators(bank, CUTOFF + pd.offsets.MonthEnd(1))  # 2025-01-31
    both = first.index.intersection(second.index)
    assert len(both) > 200
    np.testing.assert_allclose(
        second.loc[both, "tenure_days"], first.loc[both, "tenure_days"] + 31, rtol=0, atol=1e-9
    )
    tx = bank.transactions
    own = ~tx["type"].isin(["fee", "interest", "loan_repayment"])
    january = tx.loc[own & (tx["timestamp"] >= AFTER) & (tx["timestamp"] < "2025-02-01")]
    quiet = both.difference(january["customer_id"].unique())
    quiet = quiet[first.loc[quiet, "recency_days"].notna()]
    assert len(quiet) > 20
    np.testing.assert_allclose(
        second.loc[quiet, "recency_days"], first.loc[quiet, "recency_days"] + 31, atol=1e-9
    )


def test_duckdb_and_polars_agree_column_by_column(bank):
    # fractional seconds just after midnight and just before the cut-off's end, where engines
    # that round instead of truncating epoch seconds would disagree
    tx = bank.transactions.copy()
    pick = tx.sample(200, random_state=1).index
    day = tx.loc[pick, "timestamp"].dt.normalize()
    tx.loc[pick[:100], "timestamp"] = day[:100] + pd.Timedelta(milliseconds=600)
    tx.loc[pick[100:], "timestamp"] = day[100:] + pd.Timedelta(hours=23, minutes=59, seconds=59.6)
    data = dataclasses.replace(bank, transactions=tx, parquet={})
    duck, docs = indicators(data, CUTOFF, "duckdb")
    polars, _ = indicators(data, CUTOFF, "polars")
    assert duck.columns.tolist() == polars.columns.tolist()
    for doc in docs:
        a, b = duck[doc.name], polars[doc.name]
        if doc.unit in ("count", "flag"):  # whole numbers: exactly equal
            if doc.fill == 0:
                assert a.dtype.kind == "i" and b.dtype.kind == "i", doc.name
            pd.testing.assert_series_equal(a, b, check_exact=True, obj=doc.name)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, equal_nan=True, err_msg=doc.name)


def snapshot(data):
    """The training snapshot of the CLV models for the 12-month split at CUTOFF."""
    features = OmegaConf.to_container(compose(["debug=fast"]).features, resolve=True)
    split = CalibrationSplit.from_config(CUTOFF, 12, data.data_start, data.data_end)
    con = connect("duckdb", {"threads": 1})
    return training_snapshot(con, tables(con, data), features, split, data.data_start)


def test_the_clv_training_snapshot_ends_at_the_cutoff_and_ignores_the_future(bank):
    before = snapshot(bank)
    assert before.split.cutoff == pd.Timestamp("2023-12-31")
    assert before.split.holdout_end == CUTOFF
    assert before.targets["holdout_value"].abs().sum() > 0
    after = snapshot(rewrite_the_future(bank))
    pd.testing.assert_frame_equal(before.indicators, after.indicators)
    pd.testing.assert_frame_equal(before.targets, after.targets)


def test_no_training_snapshot_without_a_window_of_history_before_it(bank):
    split = CalibrationSplit.from_config(CUTOFF, 12, bank.data_start, bank.data_end)
    assert split.training_split(None).cutoff == pd.Timestamp("2023-12-31")
    # 12 months of history before 2023-12-31 start on 2023-01-01
    assert split.training_split(pd.Timestamp("2023-01-01"), 12) is not None
    assert split.training_split(pd.Timestamp("2023-01-02"), 12) is None
    assert split.training_split(pd.Timestamp("2023-01-02"), 6) is not None
    assert split.training_split(pd.Timestamp("2024-01-01")) is None
