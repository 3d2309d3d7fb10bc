"""CLV from a purchase-count model and a spend model."""

import numpy as np
import pandas as pd
import pytest

from tierlab.clv import customer_lifetime_value


class Counts:
    """A stand-in transaction model: a constant purchase rate per time unit."""

    def __init__(self, rate):
        self.rate = rate

    def expected_transactions(self, summary, horizon):
        return pd.Series(self.rate * horizon, index=summary.index)


class Spend:
    def __init__(self, spend):
        self.spend = spend

    def expected_spend(self, summary):
        return pd.Series(self.spend, index=summary.index)


SUMMARY = pd.DataFrame(
    {"frequency": [0, 3], "recency": [0.0, 10.0], "T": [20.0, 30.0], "monetary_value": [0, 5.0]}
)


def test_undiscounted_clv_is_spend_times_expected_purchases():
    clv = customer_lifetime_value(Counts(0.5), Spend([10.0, 20.0]), SUMMARY, 12, 4.0, 0.0)
    np.testing.assert_allclose(clv, [10.0 * 0.5 * 48, 20.0 * 0.5 * 48])


def test_discounting_weighs_period_k_by_one_over_one_plus_d_to_the_k():
    clv = customer_lifetime_value(Counts(1.0), Spend(1.0), SUMMARY, 3, 1.0, 0.1)
    expected = sum(1.0 / 1.1**k for k in (1, 2, 3))
    np.testing.assert_allclose(clv, [expected, expected])


def test_bg_nbd_and_gamma_gamma_give_positive_increasing_clv():
    from test_clv_bgnbd import simulate_bgnbd
    from tierlab.clv import BetaGeoModel, GammaGammaModel

    summary = simulate_bgnbd(3000, {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}, 52.0, seed=1)
    rng = np.random.default_rng(1)
    summary["monetary_value"] = np.where(summary["frequency"] > 0, rng.gamma(4.0, 5.0, 3000), 0.0)
    counts, spend = BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)
    month = 365.25 / 12 / 7  # the summary is in weeks
    short = customer_lifetime_value(counts, spend, summary, 6, month, 0.01)
    long = customer_lifetime_value(counts, spend, summary, 12, month, 0.01)
    assert (short > 0).all() and (long > short).all()
    # undiscounted 12-month CLV = expected spend x expected purchases in 12 months
    flat = customer_lifetime_value(counts, spend, summary, 12, month, 0.0)
    expected = spend.expected_spend(summary) * counts.expected_transactions(summary, 12 * month)
    np.testing.assert_allclose(flat, expected, rtol=1e-10)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 1.0, 0.0), r"periods=0 should be an integer >= 1"),
        ((3, 0.0, 0.0), r"period_length=0.0 should be a number > 0"),
        ((3, 1.0, -1.0), r"discount_rate=-1.0 should be > -1"),
    ],
)
def test_bad_arguments_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        customer_lifetime_value(Counts(1.0), Spend(1.0), SUMMARY, *args)
