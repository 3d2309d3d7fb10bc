"""Tests of the BG/NBD model in tierlab.clv.

Synthetic data are drawn from the model's generative story with known parameters and fixed
seeds; fitting must recover them. The CDNOW test compares with published estimates. The bad-input
cases exercise ``validate_summary`` of tierlab.clv.mle through ``fit``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime
from scipy.special import hyp2f1
from sklearn.exceptions import NotFittedError

from tierlab.clv import BetaGeoModel
from tierlab.clv.bgnbd import _Loglik, bgnbd_loglik_grad
from tierlab.clv.mle import finite_difference_hessian

BGNBD_TRUE = {"r": 0.8, "alpha": 6.0, "a": 0.7, "b": 2.2}


def simulate_bgnbd(n: int, params: dict, T: np.ndarray | float, seed: int) -> pd.DataFrame:
    """BG/NBD generative story (Fader, Hardie & Lee 2005): lambda ~ Gamma(r, rate alpha),
    p ~ Beta(a, b); exponential inter-purchase times; after each repeat purchase the customer
    drops out with probability p. Observed over (0, T] after a first purchase at 0."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    p = rng.beta(params["a"], params["b"], n)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    t = np.zeros(n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        t[idx] += rng.exponential(1.0 / lam[idx])
        past = t[idx] > T[idx]
        active[idx[past]] = False
        buy = idx[~past]
        x[buy] += 1
        t_x[buy] = t[buy]
        active[buy[rng.random(buy.size) < p[buy]]] = False
    return pd.DataFrame({"customer_id": np.arange(n), "frequency": x, "recency": t_x, "T": T})


@pytest.fixture(scope="module")
def bgnbd_data() -> pd.DataFrame:
    T = np.random.default_rng(1).uniform(26.0, 78.0, 5000)
    return simulate_bgnbd(5000, BGNBD_TRUE, T, seed=2)


@pytest.fixture(scope="module")
def bgnbd_fit(bgnbd_data) -> BetaGeoModel:
    return BetaGeoModel().fit(bgnbd_data)


# ---------------------------------------------------------------------------------------------
# parameter recovery
# ---------------------------------------------------------------------------------------------


def test_bgnbd_recovers_parameters(bgnbd_fit):
    """5,000 customers. Sampling error, not bias, dominates: with these parameters the
    asymptotic relative standard errors (from the fit's Hessian) are about 2.5 % (r), 3.5 %
    (alpha), 8 % (a) and 11 % (b), so a 3-standard-error band is ~32 % for b. We assert |est - true| < 3 SE for every
    parameter and, as a stated relative tolerance, 15 % for r and alpha and 40 % for a, b."""
    rel_tol = {"r": 0.15, "alpha": 0.15, "a": 0.40, "b": 0.40}
    for k, true in BGNBD_TRUE.items():
        est, se = bgnbd_fit.params_[k], bgnbd_fit.standard_errors_[k]
        assert abs(est - true) < 3 * se, (k, est, se, true)
        assert abs(est / true - 1) < rel_tol[k], (k, est, true)
        assert 0 < se < 0.2 * true, (k, se)
    assert bgnbd_fit.n_customers_ == 5000
    assert np.isfinite(bgnbd_fit.log_likelihood_)


def test_bgnbd_compression_matches_uncompressed(bgnbd_data):
    """Duplicated customers (same x, t_x, T) give the same fit as weights."""
    doubled = pd.concat([bgnbd_data, bgnbd_data], ignore_index=True)
    m1 = BetaGeoModel().fit(bgnbd_data)
    m2 = BetaGeoModel().fit(doubled)
    assert m2.n_unique_rows_ == m1.n_unique_rows_
    assert m2.log_likelihood_ == pytest.approx(2 * m1.log_likelihood_, rel=1e-8)
    for k in m1.params_:
        assert m2.params_[k] == pytest.approx(m1.params_[k], rel=1e-4)


# ---------------------------------------------------------------------------------------------
# gradients and formulas
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "theta", [(0.24, 4.4, 0.79, 2.4), (1.5, 0.5, 3.0, 0.6), (0.05, 30.0, 0.2, 8.0)]
)
def test_bgnbd_gradient_matches_finite_differences(bgnbd_data, theta):
    d = bgnbd_data.iloc[:500]
    args = (d["frequency"].to_numpy(float), d["recency"].to_numpy(float), d["T"].to_numpy(float))
    theta = np.array(theta)
    analytic = bgnbd_loglik_grad(theta, *args)[1]
    numeric = approx_fprime(theta, lambda th: bgnbd_loglik_grad(th, *args)[0], 1e-7 * theta)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-4 * np.abs(analytic).max())


@pytest.mark.parametrize(
    "theta", [(0.24, 4.4, 0.79, 2.4), (1.5, 0.5, 3.0, 0.6), (0.05, 30.0, 0.2, 8.0)]
)
def test_bgnbd_hessian_matches_finite_differences(bgnbd_data, theta):
    """The analytic Hessian behind the standard errors equals central differences of the
    analytic gradient, on rows with and without repeat purchases and with weights."""
    d = bgnbd_data.iloc[:500]
    x, tx, T = (d[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    loglik = _Loglik(x, tx, T, np.arange(1.0, 501.0) % 3 + 1)
    theta = np.array(theta)
    hess = loglik.hessian(theta)
    np.testing.assert_allclose(
        hess, finite_difference_hessian(loglik, theta), rtol=1e-6, atol=1e-7 * np.abs(hess).max()
    )


def test_expected_transactions_new_customer_matches_eq9_and_simulation(bgnbd_fit):
    """For x = t_x = T = 0 the conditional expectation (Eq. 10, Euler-transformed in the code)
    reduces to the unconditional E[X(t)] of Eq. 9 in FHL (2005), written here in its original
    form; both agree with the mean count of simulated customers."""
    r, alpha, a, b = (BGNBD_TRUE[k] for k in ("r", "alpha", "a", "b"))
    m = BetaGeoModel()
    m.params_ = dict(BGNBD_TRUE)  # evaluate the formulas at the true parameters
    t = 52.0
    new = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [0.0]})
    got = m.expected_transactions(new, t).iloc[0]
    eq9 = (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    )
    assert got == pytest.approx(eq9, rel=1e-10)
    sim = simulate_bgnbd(200_000, BGNBD_TRUE, t, seed=5)["frequency"].mean()
    assert got == pytest.approx(sim, rel=0.02)  # MC standard error ~0.5 %


def test_expected_transactions_matches_direct_eq10(bgnbd_fit):
    """The Euler-transformed evaluation equals Eq. 10 as printed, where the latter is finite."""
    r, alpha, a, b = (bgnbd_fit.params_[k] for k in ("r", "alpha", "a", "b"))
    df = pd.DataFrame({"frequency": [0.0, 1, 3, 10], "recency": [0.0, 5, 20, 30], "T": [39.0] * 4})
    t = 39.0
    x, tx, T = (df[c].to_numpy() for c in ("frequency", "recency", "T"))
    num = (
        (a + b + x - 1)
        / (a - 1)
        * (
            1
            - ((alpha + T) / (alpha + T + t)) ** (r + x)
            * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        )
    )
    den = 1 + (x > 0) * a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + tx)) ** (r + x)
    np.testing.assert_allclose(bgnbd_fit.expected_transactions(df, t), num / den, rtol=1e-8)
    assert (bgnbd_fit.expected_transactions(df, 0.0) == 0).all()


def test_probability_alive_properties(bgnbd_fit):
    """BG/NBD: x = 0 means alive with probability 1 (dropout only follows a repeat purchase).
    For x > 0 it is in (0, 1), decreases with the time since the last purchase and is 1/(1 +
    a/(b+x-1)) when t_x = T."""
    a, b = bgnbd_fit.params_["a"], bgnbd_fit.params_["b"]
    df = pd.DataFrame(
        {
            "frequency": [0.0, 0, 2, 2, 2],
            "recency": [0.0, 0, 10, 30, 40],
            "T": [40.0, 1e4, 40, 40, 40],
        }
    )
    pa = bgnbd_fit.probability_alive(df).to_numpy()
    assert pa[0] == 1.0 and pa[1] == 1.0
    assert 0 < pa[2] < pa[3] < pa[4] < 1
    assert pa[4] == pytest.approx(1 / (1 + a / (b + 1)), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# CDNOW
# ---------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_cdnow_matches_published_estimates(shared_data_dir):
    """Published BG/NBD MLE on the 2,357-customer CDNOW sample (Fader, Hardie & Lee 2005):
    r=0.243, alpha=4.414, a=0.793, b=2.426, LL=-9582.4 (CLVTools' correctness test:
    0.2425945, 4.4136019, 0.7929199, 2.4258881, LL -9582.429)."""
    df = pd.read_csv(shared_data_dir / "cdnow" / "cdnow_customers_summary_with_transactions.csv")
    df = df.rename(
        columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"}
    )
    m = BetaGeoModel().fit(df)
    published = {"r": 0.2425945, "alpha": 4.4136019, "a": 0.7929199, "b": 2.4258881}
    for k, val in published.items():
        assert m.params_[k] == pytest.approx(val, rel=1e-2), k
    assert m.log_likelihood_ == pytest.approx(-9582.429, abs=0.05)


# ---------------------------------------------------------------------------------------------
# numerical stability
# ---------------------------------------------------------------------------------------------


def test_extreme_inputs_are_finite(bgnbd_fit):
    df = pd.DataFrame(
        {
            "frequency": [200.0, 200, 200, 0, 0, 1, 500],
            "recency": [1e4, 0.0, 50.0, 0, 0, 1e4, 1.0],
            "T": [1e4, 1e4, 50.0, 1e4, 0.0, 1e4, 1e4],
            "monetary_value": [10.0, 1e-3, 1e6, 0, 0, 5, 1.0],
        }
    )
    ll = bgnbd_fit.log_likelihood(df)
    assert np.isfinite(ll).all()
    for horizon in (1.0, 52.0, 1e5):
        e = bgnbd_fit.expected_transactions(df, horizon)
        assert np.isfinite(e).all() and (e >= 0).all()
    pa = bgnbd_fit.probability_alive(df)
    assert np.isfinite(pa).all() and ((pa >= 0) & (pa <= 1)).all()
    assert pa.iloc[0] > 0.9  # bought 200 times, last at T
    assert pa.iloc[1] < 1e-6  # 200 purchases, then silent for 1e4
    x, tx, T = (df[c].to_numpy() for c in ("frequency", "recency", "T"))
    theta = np.array([bgnbd_fit.params_[k] for k in ("r", "alpha", "a", "b")])
    ll_sum, grad = bgnbd_loglik_grad(theta, x, tx, T)
    assert np.isfinite(ll_sum) and np.isfinite(grad).all()


def test_fit_on_extreme_data_converges():
    """A few heavy buyers over a very long window next to the bulk do not break the fit."""
    df = simulate_bgnbd(2000, BGNBD_TRUE, 52.0, seed=8)
    extra = pd.DataFrame({"frequency": [200.0, 150.0], "recency": [1e4, 9e3], "T": [1e4, 1e4]})
    m = BetaGeoModel().fit(pd.concat([df, extra], ignore_index=True))
    assert all(np.isfinite(v) and v > 0 for v in m.params_.values())


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

GOOD = pd.DataFrame({"frequency": [0.0, 2.0], "recency": [0.0, 3.0], "T": [5.0, 5.0]})


@pytest.mark.parametrize(
    ("frame", "exc", "match"),
    [
        (GOOD.drop(columns="T"), ValueError, r"missing required column\(s\) \['T'\]"),
        (GOOD.iloc[:0], ValueError, "0 rows"),
        (
            GOOD.assign(T=[5.0, np.nan]),
            ValueError,
            "column 'T' has 1 missing or non-finite values \\(first at row 1\\)",
        ),
        (
            GOOD.assign(recency=[0.0, -1.0]),
            ValueError,
            "column 'recency' has 1 negative values \\(first at row 1\\); values must be >= 0",
        ),
        (
            GOOD.assign(frequency=[0.0, 1.5]),
            ValueError,
            "column 'frequency' has 1 non-integer values \\(first at row 1",
        ),
        (
            GOOD.assign(recency=[0.0, 6.0]),
            ValueError,
            r"1 rows have recency > T \(first at row 1: recency=6.0, T=5.0\)",
        ),
        (GOOD.assign(T=["5", "5"]), TypeError, r"column 'T' has dtype \w+; it must be numeric"),
        (GOOD.to_numpy(), TypeError, "summary must be a pandas DataFrame, got ndarray"),
    ],
)
def test_bgnbd_bad_input(frame, exc, match):
    with pytest.raises(exc, match=match):
        BetaGeoModel().fit(frame)


def test_not_fitted_and_bad_horizon(bgnbd_fit):
    with pytest.raises(NotFittedError):
        BetaGeoModel().probability_alive(GOOD)
    with pytest.raises(ValueError, match="horizon=-1.0 should be a finite number >= 0"):
        bgnbd_fit.expected_transactions(GOOD, -1.0)


def test_init_stores_kwargs_only():
    m = BetaGeoModel(max_iter=7, tol=1e-3)
    assert m.get_params() == {"max_iter": 7, "tol": 1e-3}
    assert not hasattr(m, "params_")


def test_data_without_dropout_fail_with_a_boundary_hint():
    rng = np.random.default_rng(0)
    T = rng.uniform(20, 60, 2000)
    x = rng.poisson(2.0, 2000)
    summary = pd.DataFrame(
        {"frequency": x, "recency": np.where(x > 0, T * rng.uniform(0.3, 1.0, 2000), 0.0), "T": T}
    )
    with pytest.raises(RuntimeError, match=r"did not converge: .*rises towards a boundary"):
        BetaGeoModel().fit(summary)
