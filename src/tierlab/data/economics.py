"""How the synthetic bank earns and loses money on a customer in a month.

One linear function of balances and transaction counts (see ``docs/synthetic_bank.md``, section
5), used for the realised profit table and, applied to expected balances and counts, for the
expected-profit ground truth.  Rates are annual and come from ``rates`` in
``conf/data/synthetic.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

PROFIT_COLUMNS = (
    "nii_deposits",
    "wealth_fees",
    "nii_loans",
    "fees",
    "interchange",
    "credit_loss",
    "cost_to_serve",
    "profit",
)


def annual_pd(rates: Mapping, risk_grade: np.ndarray) -> np.ndarray:
    """One-year probability of default: geometric from grade 1 (best) to grade 10 (worst)."""
    best, worst = rates["pd_annual"]
    return best * (worst / best) ** ((np.asarray(risk_grade) - 1) / 9.0)


def monthly_profit(
    rates: Mapping,
    risk_grade: np.ndarray,
    relationship_manager: np.ndarray,
    bal: Mapping[str, np.ndarray],
    counts_by_channel: Mapping[str, np.ndarray],
    fee_income: np.ndarray,
    card_spend: np.ndarray,
) -> dict[str, np.ndarray]:
    """Profit components per customer and month, arrays of shape (customers, months).

    ``bal`` holds the month's balances by product plus ``_active`` (1 while the relationship is
    open, or its probability); ``counts_by_channel`` the customer-initiated transactions by
    channel; ``fee_income`` the fees booked; ``card_spend`` the card purchase volume.
    """
    spread = rates["ftp_spread"]
    nii_dep = bal["demand"] * spread["demand"] + bal["time_deposit"] * spread["time_deposit"]
    nii_loans = (
        bal["mortgage"] * spread["mortgage"]
        + bal["consumer_loan"] * spread["consumer_loan"]
        + bal["card_revolving"] * spread["card_revolving"]
    )
    lgd = rates["lgd"]
    exposure_loss = (
        bal["mortgage"] * lgd["mortgage"]
        + (bal["consumer_loan"] + bal["card_balance"]) * lgd["unsecured"]
    )
    cts = rates["cost_to_serve"]
    rm_cost = np.where(relationship_manager, cts["rm_monthly"], 0.0)[:, None]
    cost = bal["_active"] * (cts["base"] + rm_cost)
    for channel, count in counts_by_channel.items():
        cost = cost + count * cts[channel]
    comp = {
        "nii_deposits": nii_dep / 12.0,
        "wealth_fees": bal["wealth_management"] * rates["wealth_fee"] / 12.0,
        "nii_loans": nii_loans / 12.0,
        "fees": fee_income,
        "interchange": card_spend * rates["interchange"],
        # expected credit loss = PD x LGD x EAD, per month
        "credit_loss": exposure_loss * annual_pd(rates, risk_grade)[:, None] / 12.0,
        "cost_to_serve": cost,
    }
    comp["profit"] = (
        comp["nii_deposits"]
        + comp["wealth_fees"]
        + comp["nii_loans"]
        + comp["fees"]
        + comp["interchange"]
        - comp["credit_loss"]
        - comp["cost_to_serve"]
    )
    return comp
