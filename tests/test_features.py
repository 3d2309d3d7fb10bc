"""Value indicators: hand-computed values per family, the dictionary, and clear errors."""

import math

import numpy as np
import pandas as pd
import pytest

from features_fixture import CUTOFF, context, indicators, tiny_bank
from tierlab.data.tables import BankData
from tierlab.features import build_indicators, dictionary_frame
from tierlab.features.dictionary import FAMILIES, Indicator
from tierlab.features.engine import connect, tables

END = pd.Timestamp("2025-01-01")  # first instant after the cut-off day


@pytest.fixture(scope="module")
def tiny():
    return indicators(tiny_bank())


def test_population_is_the_customers_open_at_the_cutoff(tiny):
    frame, _ = tiny
    assert frame.index.tolist() == [1, 2]  # 3 closed before, 4 opens after


def test_rfm_family(tiny):
    one, two = tiny[0].loc[1], tiny[0].loc[2]
    assert one["recency_days"] == pytest.approx(1 / 86400)  # 23:59:59 on the cut-off day
    # own transactions only (the fee is booked by the bank); windows start on Oct 1 / Jul 1 / Jan 1
    assert (one["frequency_3m"], one["monetary_total_3m"], one["monetary_mean_3m"]) == (
        2,
        150.0,
        75.0,
    )
    assert (one["frequency_6m"], one["monetary_total_6m"]) == (3, 180.0)
    assert (one["frequency_12m"], one["monetary_total_12m"]) == (4, 1180.0)
    assert one["monetary_mean_12m"] == 295.0
    assert one["inflow_12m"] == 1050.0
    assert two["recency_days"] == 199.5
    assert (two["frequency_3m"], two["monetary_total_3m"]) == (0, 0.0)
    assert math.isnan(two["monetary_mean_3m"])  # undefined, not 0


def test_relationship_family(tiny):
    one, two = tiny[0].loc[1], tiny[0].loc[2]
    assert one["active_months_12m"] == 4  # Jan, Sep, Oct, Dec
    assert one["digital_share_12m"] == 0.5  # mobile + online of pos, mobile, branch, online
    assert one["salary_credit_flag"] == 0  # last salary more than 3 months ago
    assert one["tenure_days"] == (END - pd.Timestamp("2023-01-15")).days
    assert two["tenure_days"] == (END - pd.Timestamp("2024-03-01")).days


def test_btyd_family(tiny):
    one, two = tiny[0].loc[1], tiny[0].loc[2]
    # purchase days 2023-12-31, 2024-01-01, 2024-09-30, 2024-10-01, 2024-12-31
    assert one["btyd_frequency"] == 4
    assert one["btyd_recency"] == pytest.approx(366 / 7)
    assert one["btyd_T"] == pytest.approx(366 / 7)
    assert one["btyd_monetary_value"] == pytest.approx((1000 + 30 + 50 + 100) / 4)
    assert (two["btyd_frequency"], two["btyd_recency"], two["btyd_monetary_value"]) == (0, 0, 0)
    assert two["btyd_T"] == pytest.approx(199 / 7)


def test_btyd_of_a_customer_without_purchases_is_missing_not_zero():
    data = tiny_bank()
    data.transactions = data.transactions.loc[data.transactions["customer_id"] != 2]
    frame, _ = indicators(data)
    assert frame.loc[2, "frequency_12m"] == 0
    assert frame.loc[2, ["btyd_frequency", "btyd_recency", "btyd_T"]].isna().all()


def test_balance_family(tiny):
    one = tiny[0].loc[1]
    funds = np.array([200.0, 300.0, 500.0])  # month ends Oct, Nov, Dec (Jan is after)
    assert one["aum_avg_3m"] == pytest.approx(funds.mean())
    assert one["aum_avg_12m"] == pytest.approx(funds.mean())
    assert (one["demand_balance"], one["time_deposit_balance"], one["wealth_balance"]) == (
        300.0,
        100.0,
        100.0,
    )
    assert one["liquid_share"] == pytest.approx(0.6)
    assert one["liquid_to_fixed_ratio"] == pytest.approx(1.5)
    assert one["aum_trend_12m"] == pytest.approx(150.0)  # least squares over months 0, 1, 2
    assert one["aum_volatility_12m"] == pytest.approx(funds.std(ddof=1) / funds.mean())


def test_credit_family(tiny):
    one, two = tiny[0].loc[1], tiny[0].loc[2]
    assert one["card_utilisation"] == 0.25
    assert (one["max_days_past_due_12m"], one["delinquent_months_12m"]) == (30, 1)
    assert one["expected_loss_12m"] == 12.0
    assert one["risk_grade"] == 3
    assert math.isnan(two["card_utilisation"])  # no balances at all
    assert two["expected_loss_12m"] == 0.0


def test_products_family(tiny):
    one, two = tiny[0].loc[1], tiny[0].loc[2]
    # the loan opens after the cut-off, the mortgage closed on the cut-off day
    assert (one["n_products"], one["has_current_account"], one["has_time_deposit"]) == (2, 1, 1)
    assert (one["has_consumer_loan"], one["has_mortgage"], one["cross_sell_depth"]) == (0, 0, 1)
    assert (two["n_products"], two["has_credit_card"], two["cross_sell_depth"]) == (1, 1, 1)


def test_profitability_family(tiny):
    one, two = tiny[0].loc[1], tiny[0].loc[2]
    assert (one["profit_12m"], one["profit_3m"]) == (120.0, 30.0)
    assert two["profit_12m"] == 0.0  # no profitability rows: zero, not missing


def test_demographics_family(tiny):
    one = tiny[0].loc[1]
    assert one["age_years"] == pytest.approx((END - pd.Timestamp("1980-06-30")).days / 365.25)
    assert one["income_band_ordinal"] == 2
    assert (one["region_north"], one["region_south"]) == (1, 0)
    assert (one["occupation_employee"], one["occupation_student"]) == (1, 0)


def test_the_dictionary_documents_every_indicator(tiny):
    frame, docs = tiny
    assert [d.name for d in docs] == frame.columns.tolist()
    assert len(docs) >= 25
    table = dictionary_frame(docs)
    assert table.columns.tolist() == ["name", "family", "formula", "unit", "source", "if_no_rows"]
    assert table["formula"].str.len().min() > 10
    assert set(table["family"]) <= set(FAMILIES)
    families = set(table["family"])
    assert families >= {
        "rfm",
        "btyd",
        "balances",
        "products",
        "relationship",
        "profitability",
        "credit",
        "demographics",
    }


def test_a_transaction_log_alone_gives_only_what_it_can(tmp_path):
    full = tiny_bank()
    log_only = BankData(
        name="log",
        transactions=full.transactions[["customer_id", "timestamp", "amount"]],
        data_start=full.data_start,
        data_end=full.data_end,
    )
    frame, docs = indicators(log_only)
    assert frame.index.tolist() == [1, 2, 3]  # customers with a transaction by the cut-off
    families = {d.family for d in docs}
    assert families == {"rfm", "btyd", "relationship"}
    assert "aum_avg_3m" not in frame and "digital_share_12m" not in frame
    # without a type column every transaction counts, the fee included
    assert frame.loc[1, "frequency_3m"] == 3
    # tenure from the first transaction when there is no open date
    assert frame.loc[2, "tenure_days"] == 199.5


def test_a_later_cutoff_moves_the_indicators_with_it():
    data = tiny_bank()
    earlier, _ = indicators(data, pd.Timestamp("2024-11-30"))
    one = earlier.loc[1]
    assert one["recency_days"] == (pd.Timestamp("2024-12-01") - pd.Timestamp("2024-10-01")).days
    assert (one["frequency_3m"], one["monetary_total_3m"]) == (2, 80.0)  # Sep 30 and Oct 1
    assert one["demand_balance"] == 200.0
    assert one["tenure_days"] == (pd.Timestamp("2024-12-01") - pd.Timestamp("2023-01-15")).days


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("features.windows_months=[]", r"features.windows_months=\[\] should be months >= 1"),
        ("features.windows_months=[0,3]", r"should be months >= 1"),
        ("features.btyd_time_unit=Y", r"time_unit='Y' is not one of \['D', 'M', 'W'\]"),
    ],
)
def test_bad_feature_settings_are_named(override, match):
    with pytest.raises(ValueError, match=match):
        context(CUTOFF, override)


def test_unknown_engine_is_named():
    with pytest.raises(ValueError, match=r"features.engine='spark2' is not one of"):
        connect("spark2")


def test_indicators_need_a_log_or_a_customer_table():
    data = tiny_bank()
    only_balances = BankData(name="b", balances=data.balances, data_end=data.data_end)
    con = connect("duckdb")
    with pytest.raises(ValueError, match=r"need a transaction log or a customer table"):
        build_indicators(con, tables(con, only_balances), context())


def test_indicator_families_are_checked():
    with pytest.raises(ValueError, match=r"family 'misc' not in"):
        Indicator("x", "misc", "formula", "unit", "table")
