"""Tests of the Gamma-Gamma model in tierlab.clv.

Synthetic spend is drawn from the model's generative story with known parameters and fixed
seeds; fitting must recover them. The CDNOW test compares with published estimates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime
from sklearn.exceptions import NotFittedError

from tierlab.clv import GammaGammaModel
from tierlab.clv.gammagamma import _Loglik, gamma_gamma_loglik_grad
from tierlab.clv.mle import finite_difference_hessian

GG_TRUE = {"p": 6.0, "q": 4.0, "v": 15.0}


def simulate_gamma_gamma(n: int, params: dict, seed: int) -> pd.DataFrame:
    """Gamma-Gamma story (Fader & Hardie 2013): nu ~ Gamma(q, rate v), each spend ~ Gamma(p,
    rate nu), so the mean of x spends is Gamma(p x, rate x nu). Some x = 0 rows are added."""
    rng = np.random.default_rng(seed)
    x = rng.poisson(2.0, n).astype(float)
    nu = rng.gamma(params["q"], 1.0 / params["v"], n)
    zbar = np.where(
        x > 0, rng.gamma(np.maximum(params["p"] * x, 1e-9), 1.0 / (np.maximum(x, 1) * nu)), 0.0
    )
    return pd.DataFrame({"frequency": x, "monetary_value": zbar})


def test_gamma_gamma_recovers_parameters():
    """5,000 customers (~4,300 with repeats). q is well identified (relative SE ~4 %); p and v
    are strongly correlated (relative SE ~11 % each). Asserted: < 3 SE and 30 % relative."""
    df = simulate_gamma_gamma(5000, GG_TRUE, seed=3)
    m = GammaGammaModel().fit(df)
    assert m.n_customers_ == int((df["frequency"] > 0).sum())
    for k, true in GG_TRUE.items():
        est, se = m.params_[k], m.standard_errors_[k]
        assert abs(est - true) < 3 * se, (k, est, se, true)
        assert abs(est / true - 1) < 0.30, (k, est, true)


@pytest.mark.parametrize("theta", [(6.25, 3.74, 15.4), (0.8, 1.5, 2.0), (20.0, 10.0, 100.0)])
def test_gamma_gamma_gradient_matches_finite_differences(theta):
    df = simulate_gamma_gamma(500, GG_TRUE, seed=4)
    df = df[df["frequency"] > 0]
    args = (df["frequency"].to_numpy(float), df["monetary_value"].to_numpy(float))
    theta = np.array(theta)
    analytic = gamma_gamma_loglik_grad(theta, *args)[1]
    numeric = approx_fprime(theta, lambda th: gamma_gamma_loglik_grad(th, *args)[0], 1e-7 * theta)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-4 * np.abs(analytic).max())


@pytest.mark.parametrize("theta", [(6.25, 3.74, 15.4), (0.8, 1.5, 2.0), (20.0, 10.0, 100.0)])
def test_gamma_gamma_hessian_matches_finite_differences(theta):
    """The analytic Hessian behind the standard errors equals central differences of the
    analytic gradient (with weights)."""
    df = simulate_gamma_gamma(500, GG_TRUE, seed=4)
    df = df[df["frequency"] > 0]
    x, zbar = df["frequency"].to_numpy(float), df["monetary_value"].to_numpy(float)
    loglik = _Loglik(x, zbar, np.arange(len(x)) % 3 + 1.0)
    theta = np.array(theta)
    hess = loglik.hessian(theta)
    np.testing.assert_allclose(
        hess, finite_difference_hessian(loglik, theta), rtol=1e-6, atol=1e-7 * np.abs(hess).max()
    )


def test_gamma_gamma_expected_spend():
    df = simulate_gamma_gamma(3000, GG_TRUE, seed=6)
    m = GammaGammaModel().fit(df)
    p, q, v = (m.params_[k] for k in ("p", "q", "v"))
    out = m.expected_spend(
        pd.DataFrame({"frequency": [0.0, 1, 50], "monetary_value": [0.0, 100.0, 100.0]})
    ).to_numpy()
    assert out[0] == pytest.approx(p * v / (q - 1))  # population mean for x = 0
    assert out[0] < out[1] < out[2] < 100.0  # shrinkage towards own mean grows with x


# ---------------------------------------------------------------------------------------------
# CDNOW
# ---------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_cdnow_matches_published_estimates(shared_data_dir):
    """Gamma-Gamma on the 946 CDNOW customers with x > 0: p=6.25, q=3.74, v=15.45 (lifetimes
    documentation)."""
    df = pd.read_csv(shared_data_dir / "cdnow" / "cdnow_customers_summary_with_transactions.csv")
    df = df.rename(
        columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"}
    )
    g = GammaGammaModel().fit(df)
    assert g.n_customers_ == 946
    for k, val in {"p": 6.25, "q": 3.74, "v": 15.45}.items():
        assert g.params_[k] == pytest.approx(val, rel=1e-2), k


# ---------------------------------------------------------------------------------------------
# numerical stability
# ---------------------------------------------------------------------------------------------


def test_extreme_inputs_are_finite():
    df = pd.DataFrame(
        {
            "frequency": [200.0, 200, 200, 0, 0, 1, 500],
            "monetary_value": [10.0, 1e-3, 1e6, 0, 0, 5, 1.0],
        }
    )
    g = GammaGammaModel().fit(simulate_gamma_gamma(2000, GG_TRUE, seed=7))
    assert np.isfinite(g.expected_spend(df)).all()
    x = df["frequency"].to_numpy()
    pos = x > 0
    ll_gg, grad_gg = gamma_gamma_loglik_grad(
        np.array(list(g.params_.values())), x[pos], df["monetary_value"].to_numpy()[pos]
    )
    assert np.isfinite(ll_gg) and np.isfinite(grad_gg).all()


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


def test_gamma_gamma_bad_input():
    with pytest.raises(ValueError, match="no customer with frequency > 0"):
        GammaGammaModel().fit(pd.DataFrame({"frequency": [0.0], "monetary_value": [0.0]}))
    with pytest.raises(
        ValueError,
        match="'monetary_value' has 1 values <= 0 among customers with frequency > 0 \\(first at row 1\\)",
    ):
        GammaGammaModel().fit(pd.DataFrame({"frequency": [1.0, 2.0], "monetary_value": [3.0, 0.0]}))
    with pytest.raises(ValueError, match="column 'monetary_value' has 1 negative values"):
        GammaGammaModel().fit(pd.DataFrame({"frequency": [1.0], "monetary_value": [-3.0]}))
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['monetary_value'\]"):
        GammaGammaModel().fit(pd.DataFrame({"frequency": [1.0]}))


def test_not_fitted():
    with pytest.raises(NotFittedError):
        GammaGammaModel().expected_spend(
            pd.DataFrame({"frequency": [1.0], "monetary_value": [1.0]})
        )


# ---------------------------------------------------------------------------------------------
# repeat customers with monetary_value <= 0
# ---------------------------------------------------------------------------------------------


def test_exclude_nonpositive_spend_fits_the_other_customers():
    """Under "exclude", repeat customers with zero or negative mean spend (e.g. net of refunds)
    are left out: the fit equals the fit without them, and expected_spend treats their mean
    spend as 0 (Eq. 5 with zbar = 0, shrinking fully to the population side)."""
    df = simulate_gamma_gamma(3000, GG_TRUE, seed=9)
    repeat = np.flatnonzero(df["frequency"] > 0)
    df.loc[repeat[:5], "monetary_value"] = 0.0
    df.loc[repeat[5:8], "monetary_value"] = -20.0
    m = GammaGammaModel(nonpositive_spend="exclude").fit(df)
    clean = GammaGammaModel().fit(df.drop(index=repeat[:8]))
    assert m.n_excluded_ == 8
    assert m.n_customers_ == clean.n_customers_ == len(repeat) - 8
    assert clean.n_excluded_ == 0
    for k in GG_TRUE:
        assert m.params_[k] == pytest.approx(clean.params_[k], rel=1e-12)
    p, q, v = (m.params_[k] for k in ("p", "q", "v"))
    x = df["frequency"].to_numpy()[repeat[:8]]
    np.testing.assert_allclose(
        m.expected_spend(df.iloc[repeat[:8]]), p * v / (p * x + q - 1), rtol=1e-12
    )
    assert np.isfinite(m.expected_spend(df)).all()


def test_nonpositive_spend_errors():
    with pytest.raises(ValueError, match=r"nonpositive_spend='drop' should be one of \['raise',"):
        GammaGammaModel(nonpositive_spend="drop").fit(simulate_gamma_gamma(100, GG_TRUE, seed=1))
    all_bad = pd.DataFrame({"frequency": [0.0, 1.0, 2.0], "monetary_value": [5.0, 0.0, -1.0]})
    with pytest.raises(
        ValueError, match="all 2 customers with frequency > 0 have monetary_value <= 0"
    ):
        GammaGammaModel(nonpositive_spend="exclude").fit(all_bad)
    # the default still names the count and the first row, and now the way out
    with pytest.raises(ValueError, match=r"1 values <= 0 .* \(or nonpositive_spend='exclude'\)"):
        GammaGammaModel().fit(all_bad.assign(monetary_value=[5.0, 3.0, 0.0]))


def test_init_stores_kwargs_only():
    m = GammaGammaModel(max_iter=7, tol=1e-3, nonpositive_spend="exclude")
    assert m.get_params() == {"max_iter": 7, "tol": 1e-3, "nonpositive_spend": "exclude"}
    assert not hasattr(m, "params_")
