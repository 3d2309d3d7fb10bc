"""Data contracts: every canonical table passes when valid, and every kind of bad input raises one
DataValidationError whose message names the table, file, column, rule and first offending rows."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tierlab.data.schemas import SCHEMAS, DataValidationError, validate_bank, validate_table
from tierlab.data.tables import BankData


def transactions(**columns) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": ["001", "002", "003", "001"],
            "timestamp": pd.to_datetime(["1997-01-01", "1997-01-02", "1997-02-01", "1997-03-05"]),
            "amount": [11.77, 12.0, 0.0, 20.76],
            "direction": ["debit", "debit", "credit", "debit"],
            "channel": ["online", "branch", None, "atm"],
        }
    )
    return frame.assign(**columns)


def customers(**columns) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": ["001", "002", "003"],
            "open_date": pd.to_datetime(["1996-05-01", "1997-01-02", "1997-01-15"]),
            "close_date": pd.to_datetime([None, "1998-01-01", None]),
            "segment": ["mass", "affluent", "mass"],
        }
    )
    return frame.assign(**columns)


def balances(**columns) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "month": pd.to_datetime(["1997-01-31", "1997-02-28", "1997-01-31"]),
            "demand": [100.0, 250.5, 0.0],
            "mortgage": [0.0, 0.0, 120_000.0],
            "days_past_due": [0, 0, 30],
        }
    )
    return frame.assign(**columns)


def products(**columns) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "product": pd.Categorical(["demand", "credit_card", "mortgage"]),
            "open_date": pd.to_datetime(["1996-01-01", "1996-06-01", "1997-01-01"]),
            "close_date": pd.to_datetime([None, "1997-06-01", None]),
        }
    )
    return frame.assign(**columns)


def profitability(**columns) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "month": pd.to_datetime(["1997-01-31", "1997-01-31"]),
            "fees": [3.0, 0.0],
            "credit_loss": [-1.5, -40.0],
            "profit": [1.5, -40.0],
        }
    )
    return frame.assign(**columns)


VALID = {
    "transactions": transactions,
    "customers": customers,
    "balances": balances,
    "products": products,
    "profitability": profitability,
}


def bank(**tables) -> BankData:
    defaults = {
        "customers": customers(),
        "transactions": transactions(),
        "data_start": pd.Timestamp("1997-01-01"),
        "data_end": pd.Timestamp("1997-03-31"),
    }
    return BankData(name="test", **{**defaults, **tables})


# ---------------------------------------------------------------------------------- valid input


def test_every_table_has_a_schema():
    assert set(SCHEMAS) == set(VALID)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_table_passes_unchanged(name):
    frame = VALID[name]()
    assert validate_table(name, frame) is frame


def test_ids_may_be_integers_or_strings_and_attributes_any_dtype():
    validate_table("transactions", transactions(customer_id=[1, 2, 3, 1]))
    validate_table("transactions", transactions(customer_id=pd.array([1, 2, 3, 1], "Int64")))
    validate_table("transactions", transactions(customer_id=pd.Categorical(["a", "b", "c", "a"])))
    validate_table("transactions", transactions(customer_id=np.array(["a", "b", "c", "a"], object)))
    # categorical strings for the string columns, any dtype for extra attributes
    validate_table(
        "transactions",
        transactions(direction=pd.Categorical(["debit"] * 4), number_of_cds=[1, 2, 3, 4]),
    )


def test_timestamps_of_any_unit_pass():
    stamps = transactions()["timestamp"].astype("datetime64[s]")
    validate_table("transactions", transactions(timestamp=stamps))


def test_valid_bank_passes_and_is_returned():
    data = bank(balances=balances(customer_id=["001", "001", "002"]))
    assert validate_bank(data) is data


def test_timestamps_on_the_data_end_day_are_inside():
    late_in_day = transactions(timestamp=pd.to_datetime(["1997-03-31 23:59:59"] * 4))
    validate_bank(bank(transactions=late_in_day))


# ---------------------------------------------------------------------------------- bad input


def test_missing_column_names_table_column_and_rule():
    with pytest.raises(
        DataValidationError,
        match=r"table 'transactions' \(file tx\.csv\): column 'amount' is missing, failing rule "
        r"'column_in_dataframe'; columns present: \['customer_id', 'timestamp'",
    ):
        validate_table("transactions", transactions().drop(columns="amount"), source="/x/tx.csv")


def test_wrong_dtype_timestamp_as_text():
    frame = transactions(timestamp=["1997-01-01", "1997-01-02", "1997-02-01", "1997-03-05"])
    with pytest.raises(
        DataValidationError,
        match=r"table 'transactions': column 'timestamp' has dtype str, failing rule "
        r"'datetime64 dtype \(timezone-naive\)'",
    ):
        validate_table("transactions", frame)


def test_wrong_dtype_amount_as_text_reports_dtype_only():
    frame = transactions(amount=["1", "2", "3", "4"])
    with pytest.raises(DataValidationError) as info:
        validate_table("transactions", frame)
    assert str(info.value) == (
        "table 'transactions': column 'amount' has dtype str, failing rule 'float dtype'"
    )


def test_nan_ids():
    frame = transactions(customer_id=["001", None, "003", np.nan])
    with pytest.raises(
        DataValidationError,
        match=r"table 'transactions': column 'customer_id' has 2 values failing rule "
        r"'not_nullable' \(at rows \[1, 3\]: nan, nan\)",
    ):
        validate_table("transactions", frame)


def test_duplicate_customer_ids():
    frame = customers(customer_id=["001", "002", "001"])
    with pytest.raises(
        DataValidationError,
        match=r"table 'customers': column 'customer_id' has 2 values failing rule "
        r"'field_uniqueness' \(at rows \[0, 2\]: '001', '001'\)",
    ):
        validate_table("customers", frame)


def test_negative_amounts_in_sklearn_style():
    frame = transactions(amount=[1.0, -5.0, 2.0, -0.3])
    with pytest.raises(DataValidationError) as info:
        validate_table("transactions", frame, source="x.csv")
    assert str(info.value) == (
        "table 'transactions' (file x.csv): column 'amount' has 2 values failing rule "
        "'greater_than_or_equal_to(0)' (at rows [1, 3]: -5.0, -0.3)"
    )


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_amounts(bad):
    rule = "not_nullable" if np.isnan(bad) else "finite"
    with pytest.raises(
        DataValidationError,
        match=rf"column 'amount' has 1 value failing rule '{rule}' \(at row 2: {bad}\)",
    ):
        validate_table("transactions", transactions(amount=[1.0, 2.0, bad, 3.0]))


def test_float_typed_customer_id_says_how_to_read_ids():
    frame = customers(customer_id=[1.0, 2.0, 3.0])
    with pytest.raises(
        DataValidationError,
        match=r"table 'customers': column 'customer_id' has dtype float64, failing rule "
        r"'integer or string dtype'; read ids as strings or integers",
    ):
        validate_table("customers", frame)


def test_boolean_ids_are_not_integers():
    with pytest.raises(DataValidationError, match=r"'customer_id' has dtype bool"):
        validate_table("customers", customers(customer_id=[True, False, True]))


def test_unknown_direction():
    frame = transactions(direction=["debit", "in", "credit", "out"])
    with pytest.raises(
        DataValidationError,
        match=r"column 'direction' has 2 values failing rule 'isin\(credit, debit\)' "
        r"\(at rows \[1, 3\]: 'in', 'out'\)",
    ):
        validate_table("transactions", frame)


def test_close_date_before_open_date():
    frame = customers(close_date=pd.to_datetime([None, "1996-12-31", None]))
    with pytest.raises(
        DataValidationError,
        match=r"table 'customers': column 'close_date' has 1 value failing rule "
        r"'close_date >= open_date' \(at row 1: 1996-12-31\)",
    ):
        validate_table("customers", frame)


def test_balances_rules():
    frame = balances(month=pd.to_datetime(["1997-01-31", "1997-01-31", "1997-01-31"]))
    frame = frame.assign(demand=[1.0, -2.0, 3.0], currency=["EUR", "EUR", "EUR"])
    with pytest.raises(DataValidationError) as info:
        validate_table("balances", frame)
    message = str(info.value)
    assert message.startswith("3 data validation failures:")
    assert (
        "columns (customer_id, month) have 2 rows failing rule 'unique' "
        "(at rows [0, 1]: (1, 1997-01-31), (1, 1997-01-31))" in message
    )
    assert "column 'demand' has 1 value failing rule 'greater_than_or_equal_to(0)'" in message
    assert "column 'currency' has dtype str, failing rule 'numeric dtype'" in message


def test_products_need_a_product_and_an_open_date():
    frame = products(product=["demand", None, "mortgage"], open_date=pd.NaT)
    with pytest.raises(DataValidationError) as info:
        validate_table("products", frame)
    rules = {(f.column, f.rule) for f in info.value.failures}
    assert ("product", "not_nullable") in rules
    assert ("open_date", "not_nullable") in rules


def test_profit_may_be_negative_but_not_infinite():
    with pytest.raises(DataValidationError, match=r"column 'profit' .* rule 'finite'"):
        validate_table("profitability", profitability(profit=[np.inf, -40.0]))


def test_rows_are_positions_and_counts_go_beyond_the_examples():
    n = 1000
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "timestamp": pd.Timestamp("1997-01-01"),
            "amount": np.where(np.arange(n) % 5 == 3, -1.0, 1.0),
        },
        index=np.arange(n) * 10 + 7,  # labels differ from positions
    )
    with pytest.raises(
        DataValidationError,
        match=r"column 'amount' has 200 values failing rule 'greater_than_or_equal_to\(0\)' "
        r"\(first at rows \[3, 8, 13, 18, 23\]: -1.0, -1.0, -1.0, -1.0, -1.0\)",
    ):
        validate_table("transactions", frame)


def test_many_failures_make_one_error_that_lists_every_column():
    frame = balances(**{f"product_{i}": [-1.0, 1.0, 1.0] for i in range(12)})
    with pytest.raises(DataValidationError) as info:
        validate_table("balances", frame)
    message = str(info.value)
    assert message.startswith("12 data validation failures:")
    assert len(info.value.failures) == 12
    assert "... and 2 more failures in table 'balances' columns" in message
    assert all(f"product_{i}" in message for i in range(12))


def test_unknown_table_name():
    with pytest.raises(ValueError, match=r"unknown table 'accounts'; should be one of"):
        validate_table("accounts", transactions())


# ---------------------------------------------------------------------------------- cross-table


def test_timestamps_after_the_data_end():
    data = bank(data_end=pd.Timestamp("1997-02-15"), files={"transactions": "/d/tx.csv"})
    with pytest.raises(
        DataValidationError,
        match=r"table 'transactions' \(file tx\.csv\): column 'timestamp' has 1 value failing "
        r"rule 'on or before data_end 1997-02-15' \(at row 3: 1997-03-05\)",
    ):
        validate_bank(data)


def test_timestamps_before_the_data_start():
    data = bank(data_start=pd.Timestamp("1997-01-02"))
    with pytest.raises(
        DataValidationError,
        match=r"column 'timestamp' has 1 value failing rule 'on or after data_start 1997-01-02' "
        r"\(at row 0: 1997-01-01\)",
    ):
        validate_bank(data)


def test_data_start_after_data_end():
    data = bank(data_start=pd.Timestamp("1998-01-01"), data_end=pd.Timestamp("1997-01-01"))
    with pytest.raises(
        DataValidationError,
        match=r"data set 'test' has data_start 1998-01-01 after data_end 1997-01-01",
    ):
        validate_bank(data)


def test_transactions_of_unknown_customers():
    data = bank(transactions=transactions(customer_id=["001", "009", "003", "010"]))
    with pytest.raises(
        DataValidationError,
        match=r"table 'transactions': column 'customer_id' has 2 values failing rule "
        r"'in customers.customer_id' \(at rows \[1, 3\]: '009', '010'\)",
    ):
        validate_bank(data)


def test_customer_id_dtype_mismatch_between_tables():
    data = bank(balances=balances())  # integer ids, customers have string ids
    with pytest.raises(
        DataValidationError,
        match=r"table 'balances': column 'customer_id' has dtype int64 but customers.customer_id "
        r"has dtype str, failing rule 'same id dtype'",
    ):
        validate_bank(data)


def test_balances_of_unknown_customers():
    data = bank(balances=balances(customer_id=["001", "004", "002"]))
    with pytest.raises(
        DataValidationError,
        match=r"table 'balances': column 'customer_id' has 1 value failing rule "
        r"'in customers.customer_id' \(at row 1: '004'\)",
    ):
        validate_bank(data)


@pytest.mark.parametrize("name", ["customers", "transactions"])
def test_empty_tables(name):
    data = bank(**{name: VALID[name]().iloc[:0]}, files={name: "/d/empty.parquet"})
    with pytest.raises(
        DataValidationError,
        match=rf"table '{name}' \(file empty\.parquet\): has 0 rows, failing rule 'not empty'",
    ):
        validate_bank(data)


def test_a_data_set_without_tables():
    with pytest.raises(DataValidationError, match=r"data set 'none' has no tables"):
        validate_bank(BankData(name="none"))


def test_failures_of_several_tables_in_one_error():
    data = bank(
        customers=customers(customer_id=["001", "001", "003"]),
        transactions=transactions(amount=[-1.0, 1.0, 1.0, 1.0]),
    )
    with pytest.raises(DataValidationError) as info:
        validate_bank(data)
    assert re.search(
        r"table 'customers': column 'customer_id' .*'field_uniqueness'", str(info.value)
    )
    assert re.search(r"table 'transactions': column 'amount' .*'greater_than", str(info.value))
