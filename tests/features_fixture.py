"""A tiny hand-made bank whose indicators are computed by hand in the tests.

Cut-off 2024-12-31.  Customer 1 is a full relationship; customer 2 opened in 2024 and closes
after the cut-off; customer 3 closed before it and customer 4 opens after it (neither is in the
population).  Every table also has rows after the cut-off that must not count.
"""

from __future__ import annotations

import pandas as pd
from omegaconf import OmegaConf

from tierlab.config import compose
from tierlab.data.schemas import validate_bank
from tierlab.data.tables import BankData
from tierlab.features import Context, build_indicators
from tierlab.features.engine import connect, tables

CUTOFF = pd.Timestamp("2024-12-31")
T = pd.Timestamp


def tiny_bank() -> BankData:
    customers = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "open_date": [T("2023-01-15"), T("2024-03-01"), T("2022-01-01"), T("2025-01-05")],
            "close_date": [pd.NaT, T("2025-03-10"), T("2024-06-30"), pd.NaT],
            "birth_date": [T("1980-06-30"), T("1999-01-01"), T("1970-01-01"), T("2000-01-01")],
            "region": ["north", "south", "north", "south"],
            "income_band": ["middle", "low", "high", "low"],
            "occupation": ["employee", "student", "retired", "employee"],
            "risk_grade": [3, 7, 1, 5],
        }
    )
    tx = [
        # customer, timestamp, amount, direction, channel, type
        (1, "2024-12-31 23:59:59", 100.0, "debit", "pos", "card_purchase"),
        (1, "2024-12-31 10:00:00", 2.5, "debit", "system", "fee"),
        (1, "2024-10-01 00:00:00", 50.0, "credit", "mobile", "transfer"),
        (1, "2024-09-30 23:59:59", 30.0, "debit", "branch", "transfer"),
        (1, "2024-01-01 00:00:01", 1000.0, "credit", "online", "salary"),
        (1, "2023-12-31 12:00:00", 1000.0, "credit", "online", "salary"),
        (1, "2025-01-01 00:00:00", 999.0, "debit", "pos", "card_purchase"),  # after the cut-off
        (2, "2024-06-15 12:00:00", 40.0, "debit", "online", "transfer"),
        (3, "2024-05-01 09:00:00", 70.0, "debit", "branch", "transfer"),
        (4, "2025-02-01 09:00:00", 10.0, "debit", "mobile", "transfer"),
    ]
    transactions = pd.DataFrame(
        tx, columns=["customer_id", "timestamp", "amount", "direction", "channel", "type"]
    )
    transactions["timestamp"] = pd.to_datetime(transactions["timestamp"])
    months = pd.to_datetime(["2024-10-31", "2024-11-30", "2024-12-31", "2025-01-31"])
    balances = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1],
            "month": months,
            "demand": [100.0, 200.0, 300.0, 9999.0],
            "time_deposit": [100.0, 100.0, 100.0, 9999.0],
            "wealth_management": [0.0, 0.0, 100.0, 9999.0],
            "card_balance": [0.0, 0.0, 50.0, 9999.0],
            "card_limit": [200.0, 200.0, 200.0, 200.0],
            "days_past_due": [0, 30, 0, 90],
        }
    )
    products = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2],
            "product": [
                "current_account",
                "time_deposit",
                "consumer_loan",
                "mortgage",
                "credit_card",
            ],
            "open_date": [
                T("2023-01-15"),
                T("2024-05-01"),
                T("2025-02-01"),
                T("2020-01-01"),
                T("2024-03-01"),
            ],
            "close_date": [pd.NaT, pd.NaT, pd.NaT, T("2024-12-31"), T("2025-03-10")],
        }
    )
    prof_months = pd.date_range("2023-12-31", "2025-01-31", freq="ME")
    profitability = pd.DataFrame(
        {
            "customer_id": 1,
            "month": prof_months,
            "profit": [500.0] + [10.0] * 12 + [1000.0],
            "credit_loss": [0.0] + [1.0] * 12 + [50.0],
        }
    )
    data = BankData(
        name="tiny",
        customers=customers,
        transactions=transactions,
        balances=balances,
        products=products,
        profitability=profitability,
        data_start=T("2023-01-01"),
        data_end=T("2025-03-31"),
    )
    return validate_bank(data)


def context(cutoff: pd.Timestamp = CUTOFF, *overrides: str) -> Context:
    features = compose(list(overrides)).features
    return Context.from_config(OmegaConf.to_container(features, resolve=True), cutoff)


def indicators(
    data: BankData, cutoff: pd.Timestamp = CUTOFF, engine: str = "duckdb", *overrides: str
) -> tuple[pd.DataFrame, list]:
    con = connect(engine, {"threads": 1} if engine == "duckdb" else {})
    frame, docs = build_indicators(con, tables(con, data), context(cutoff, *overrides))
    return frame.set_index("customer_id"), docs
