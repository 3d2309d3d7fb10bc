"""The BTYD regressor adapter: same numbers as the models it wraps, explicit edge cases."""

import numpy as np
import pandas as pd
import pytest

from test_clv_bgnbd import simulate_bgnbd
from tierlab.clv import BetaGeoModel, GammaGammaModel, customer_lifetime_value
from tierlab.clv.adapters import BTYDRegressor, FitFailed
from tierlab.clv.regressors import needs_target
from tierlab.segmentation.preprocess import NotApplicable

MONTH_WEEKS = 365.25 / 12 / 7


@pytest.fixture(scope="module")
def indicators():
    summary = simulate_bgnbd(3000, {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}, 52.0, seed=3)
    rng = np.random.default_rng(3)
    spend = np.where(summary["frequency"] > 0, rng.gamma(4.0, 5.0, len(summary)), 0.0)
    X = pd.DataFrame(
        {
            "btyd_frequency": summary["frequency"].astype("float64"),
            "btyd_recency": summary["recency"],
            "btyd_T": summary["T"],
            "btyd_monetary_value": spend,
            "profit_12m": rng.normal(0, 1, len(summary)),
        }
    )
    X.loc[:9, ["btyd_frequency", "btyd_recency", "btyd_T", "btyd_monetary_value"]] = np.nan
    return X


def test_adapter_predicts_the_wrapped_models_clv(indicators):
    model = BTYDRegressor("bgnbd", horizon_months=12, discount_rate_monthly=0.01, time_unit="W")
    pred = model.fit(indicators).predict(indicators)
    summary = indicators.iloc[10:, :4].set_axis(
        ["frequency", "recency", "T", "monetary_value"], axis=1
    )
    counts, spend = BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)
    expected = customer_lifetime_value(counts, spend, summary, 12, MONTH_WEEKS, 0.01)
    np.testing.assert_allclose(pred[10:], expected, rtol=1e-6)
    # customers without a purchase before the cut-off: no summary, predicted 0
    assert (pred[:10] == 0).all() and (model.predict_transactions(indicators)[:10] == 0).all()
    assert model.n_fitted_ == len(indicators) - 10
    assert set(model.fitted_params()) >= {"tx_r", "tx_alpha", "tx_a", "tx_b", "spend_p"}


def test_transactions_follow_the_horizon_in_the_summary_time_unit(indicators):
    weeks = BTYDRegressor("bgnbd", horizon_months=6, time_unit="W").fit(indicators)
    expected = weeks.transaction_model_.expected_transactions(
        indicators.iloc[10:, :3].set_axis(["frequency", "recency", "T"], axis=1), 6 * MONTH_WEEKS
    )
    np.testing.assert_allclose(weeks.predict_transactions(indicators)[10:], expected)


def test_pareto_nbd_variant_fits_and_predicts(indicators):
    model = BTYDRegressor("paretonbd", horizon_months=12).fit(indicators)
    pred = model.predict(indicators)
    assert np.isfinite(pred).all() and (pred[10:] > 0).all()
    assert "tx_s" in model.fitted_params()


def test_repeat_customers_with_zero_spend_do_not_stop_the_fit(indicators):
    X = indicators.copy()
    repeaters = np.flatnonzero(X["btyd_frequency"] > 0)
    X.loc[repeaters[:5], "btyd_monetary_value"] = 0.0
    model = BTYDRegressor().fit(X)
    assert model.spend_model_.n_excluded_ == 5
    assert np.isfinite(model.predict(X)).all()


def test_adapter_needs_no_target_and_refuses_what_it_cannot_use(indicators):
    assert not needs_target(BTYDRegressor())
    with pytest.raises(NotApplicable, match="btyd_frequency"):
        BTYDRegressor().fit(indicators[["profit_12m"]])
    with pytest.raises(ValueError, match="transaction_model='nbd'"):
        BTYDRegressor("nbd").fit(indicators)
    no_repeats = indicators.assign(btyd_frequency=0.0, btyd_recency=0.0)
    with pytest.raises(NotApplicable, match="no customer has a repeat purchase"):
        BTYDRegressor().fit(no_repeats)


def test_a_likelihood_without_interior_maximum_is_a_fit_failure():
    # Poisson purchases without dropout: BG/NBD's likelihood rises towards a boundary
    rng = np.random.default_rng(0)
    T = rng.uniform(20, 60, 2000)
    x = rng.poisson(2.0, 2000).astype(float)
    X = pd.DataFrame(
        {
            "btyd_frequency": x,
            "btyd_recency": np.where(x > 0, T * rng.uniform(0.3, 1.0, 2000), 0.0),
            "btyd_T": T,
            "btyd_monetary_value": np.where(x > 0, 10.0, 0.0),
        }
    )
    with pytest.raises(FitFailed, match="did not converge"):
        BTYDRegressor().fit(X)


def test_a_spend_model_without_finite_mean_is_a_fit_failure(indicators):
    # Gamma-Gamma spend with q < 1: the population mean spend p v / (q - 1) does not exist
    rng = np.random.default_rng(5)
    x = indicators["btyd_frequency"].fillna(0).to_numpy()
    nu = rng.gamma(0.7, 1.0 / 10.0, len(x))
    zbar = rng.gamma(np.maximum(4.0 * x, 1e-9), 1.0 / (np.maximum(x, 1) * nu))
    X = indicators.assign(btyd_monetary_value=np.where(x > 0, zbar, 0.0))
    with pytest.raises(FitFailed, match="q=.* <= 1"):
        BTYDRegressor().fit(X)
