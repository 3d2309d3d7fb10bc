"""The BTYD summary: the standard convention, hand-checked, and equal to the published CDNOW
calibration summary."""

import ibis
import numpy as np
import pandas as pd
import pytest

from tierlab.features import rfm_summary


def log(*rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame


def test_same_day_purchases_are_one_period_and_only_repeats_set_the_monetary_value():
    tx = log(
        ("a", "2024-01-01 09:00:00", 10.0),
        ("a", "2024-01-01 18:00:00", 5.0),  # same day: one purchase of 15
        ("a", "2024-01-15 00:00:01", 20.0),
        ("a", "2024-01-29 23:59:59", 40.0),
        ("a", "2024-02-01 00:00:00", 99.0),  # after the calibration end
        ("b", "2024-01-22 12:00:00", 7.0),
    )
    summary = rfm_summary(tx, "2024-01-31", time_unit="W").set_index("customer_id")
    assert summary.columns.tolist() == ["frequency", "recency", "T", "monetary_value"]
    assert summary.loc["a"].tolist() == pytest.approx([2, 28 / 7, 30 / 7, 30.0])
    assert summary.loc["b"].tolist() == pytest.approx([0, 0.0, 9 / 7, 0.0])


@pytest.mark.parametrize(("unit", "days"), [("D", 1.0), ("W", 7.0), ("M", 365.25 / 12)])
def test_time_units(unit, days):
    tx = log(("a", "2024-01-01", 1.0), ("a", "2024-03-01", 1.0))
    summary = rfm_summary(tx, "2024-03-31", time_unit=unit)
    assert summary.loc[0, "recency"] == pytest.approx(60 / days)
    assert summary.loc[0, "T"] == pytest.approx(90 / days)


def test_an_ibis_table_on_another_engine_gives_the_same_summary():
    tx = log(("a", "2024-01-01", 1.5), ("a", "2024-01-03", 2.5), ("b", "2024-01-02", 4.0))
    from_pandas = rfm_summary(tx, "2024-01-10")
    table = ibis.polars.connect().create_table("tx", tx)
    pd.testing.assert_frame_equal(from_pandas, rfm_summary(table, "2024-01-10"))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"lack column\(s\) \['amount'\]"):
        rfm_summary(pd.DataFrame({"customer_id": [], "timestamp": []}), "2024-01-01")
    with pytest.raises(ValueError, match=r"time_unit='H' is not one of"):
        rfm_summary(log(("a", "2024-01-01", 1.0)), "2024-01-02", time_unit="H")


@pytest.mark.shared_data
def test_cdnow_summary_equals_the_published_calibration_summary(shared_data_dir, tmp_path):
    """The CDNOW log loaded from config alone, summarised with calibration end 1997-09-30 (39
    weeks), equals the lifetimes/Fader-Hardie summary of the 2,357-customer sample."""
    from tierlab.config import compose
    from tierlab.data import load_data

    data = load_data(compose(["experiment=cdnow_btyd"], output_dir=tmp_path).data)
    sample = pd.read_csv(
        shared_data_dir / "cdnow" / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "sample_id", "date", "cds", "value"],
        dtype={"master_id": str, "sample_id": str},
    )
    ids = sample.drop_duplicates("master_id").set_index("master_id")["sample_id"].astype(int)
    tx = data.transactions.loc[data.transactions["customer_id"].isin(ids.index)]
    summary = rfm_summary(tx, "1997-09-30", time_unit="W")
    summary["ID"] = summary["customer_id"].map(ids)
    published = pd.read_csv(
        shared_data_dir / "cdnow" / "cdnow_customers_summary_with_transactions.csv"
    )
    both = published.merge(summary, on="ID", validate="one_to_one")
    assert len(both) == 2357
    assert (both["x"] == both["frequency"]).all()
    np.testing.assert_allclose(both["t_x"], both["recency"], atol=0.005)
    np.testing.assert_allclose(both["T_x"], both["T_y"], atol=0.005)
    np.testing.assert_allclose(both["zbar"], both["monetary_value"], atol=0.0051)
