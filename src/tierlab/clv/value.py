"""Customer lifetime value from a purchase-count model and a spend model.

CLV over ``periods`` periods of ``period_length`` time units (the units of the BTYD summary),
discounted per period:

    CLV = sum_{k=1..K} E[spend] x (E[Y(k L)] - E[Y((k-1) L)]) / (1 + d)^k

where ``E[Y(t)]`` is the transaction model's conditional expected number of purchases in
``(T, T + t]`` and ``E[spend]`` the spend model's conditional expected average spend: the
discounted-cash-flow form of Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves
for customer base analysis", Journal of Marketing Research 42(4), 415-430 (Eq. 2, evaluated on a
discrete grid of periods, as in the lifetimes package).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def customer_lifetime_value(
    transaction_model,
    spend_model,
    summary: pd.DataFrame,
    periods: int,
    period_length: float,
    discount_rate: float,
) -> pd.Series:
    """Discounted expected value of each customer over ``periods`` future periods.

    Parameters
    ----------
    transaction_model
        A fitted model with ``expected_transactions(summary, horizon)`` (e.g. BetaGeoModel).
    spend_model
        A fitted model with ``expected_spend(summary)`` (e.g. GammaGammaModel).
    summary
        BTYD summary (``frequency``, ``recency``, ``T``, ``monetary_value``).
    periods
        Number of future periods (e.g. 12 months).
    period_length
        Length of one period in the summary's time unit (a month in weeks: 365.25 / 12 / 7).
    discount_rate
        Discount rate per period (e.g. 0.008 a month).
    """
    if not (isinstance(periods, int | np.integer) and periods >= 1):
        raise ValueError(f"periods={periods!r} should be an integer >= 1")
    if not (np.isfinite(period_length) and period_length > 0):
        raise ValueError(f"period_length={period_length!r} should be a number > 0")
    if not (np.isfinite(discount_rate) and discount_rate > -1):
        raise ValueError(f"discount_rate={discount_rate!r} should be > -1")
    spend = spend_model.expected_spend(summary).to_numpy()
    value = np.zeros(len(summary))
    previous = np.zeros(len(summary))
    for k in range(1, int(periods) + 1):
        cumulative = transaction_model.expected_transactions(summary, k * period_length).to_numpy()
        value += spend * (cumulative - previous) / (1.0 + discount_rate) ** k
        previous = cumulative
    return pd.Series(value, index=summary.index, name="clv")
