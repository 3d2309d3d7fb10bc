"""Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987), fitted by MLE.

While alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, rate alpha); the
unobserved lifetime is exponential with rate mu ~ Gamma(s, rate beta), independent of lambda.
The estimator follows the scikit-learn contract of :class:`tierlab.clv.bgnbd.BetaGeoModel` and
uses the validation, row compression and maximum-likelihood helpers of :mod:`tierlab.clv.mle`.

Numerics. The likelihood (Eq. 22 of Fader & Hardie 2005) contains Gaussian hypergeometric
functions 2F1(r+s+x, b; r+s+x+1; z) with ``b = s+1`` (alpha >= beta) or ``b = r+x``
(alpha < beta) and 0 <= z < 1, so the series converges. Their magnitude grows like (1-z)^-b,
which overflows for large x; the Euler transformation
2F1(A, b; A+1; z) = (1-z)^(1-b) 2F1(1, A+1-b; A+1; z)
leaves a factor 2F1(1, .; .; z) that lies between 1 and (A)/(A-b) (finite at z -> 1), and the
power (1-z)^(1-b) is folded into the log-space terms. Everything else is in logs
(``gammaln``, ``logaddexp``) and vectorised over the unique ``(x, t_x, T)`` rows; the 2F1
terms, functions of ``(x, t)`` alone, over the distinct ``(x, t_x)`` and ``(x, T)`` pairs.

The gradient used by L-BFGS-B is numerical (central differences of the vectorised
log-likelihood); an analytic gradient would need derivatives of 2F1 in its parameters.

References
----------
Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). Counting your customers: who are
they and what will they do next? Management Science 33(1), 1-24.
Fader, P. S. & Hardie, B. G. S. (2005). A note on deriving the Pareto/NBD model and related
expressions. http://brucehardie.com/notes/009/
Fader, P. S. & Hardie, B. G. S. (2014). Deriving the conditional PMF of the Pareto/NBD model.
http://brucehardie.com/notes/028/ (Eq. 9 restates P(alive)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, gammaln, hyp2f1
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from tierlab.clv.mle import compress, fit_and_store, validate_summary

PARETO_NBD_PARAMS = ("r", "alpha", "s", "beta")
_COLUMNS = ("frequency", "recency", "T")


def _log_a0_term(theta: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """log of 2F1(r+s+x, b; r+s+x+1; z(t)) / (max(alpha, beta) + t)^(r+s+x), Eq. 22 of F&H (2005).

    Case split of Eq. 22 (z in [0, 1) in both cases, so the series converges):
      alpha >= beta: b = s+1, z = (alpha-beta)/(alpha+t)
      alpha <  beta: b = r+x, z = (beta-alpha)/(beta+t)
    With 1 - z = (min + t)/(max + t), where min/max are min/max(alpha, beta), the Euler
    transformation 2F1(A, b; A+1; z) = (1-z)^(1-b) 2F1(1, A+1-b; A+1; z) gives
      log term = (1-b) log(min+t) - (A+1-b) log(max+t) + log 2F1(1, A+1-b; A+1; z),
    with A = r+s+x. The remaining 2F1(1, c; A+1; z) has positive terms, equals 1 at z = 0 and
    is at most A / (A-c) < inf, so its log is O(1) even for x in the hundreds.
    """
    r, alpha, s, beta = theta
    A = r + s + x
    if alpha >= beta:
        b = np.full_like(x, s + 1.0)
        lo, hi = beta, alpha
    else:
        b = r + x
        lo, hi = alpha, beta
    z = (hi - lo) / (hi + t)
    c = A + 1.0 - b
    h = np.asarray(hyp2f1(1.0, c, A + 1.0, z), dtype=float)
    bad = ~np.isfinite(h)
    if bad.any():
        # scipy returns NaN near z = 1 when c - a - b = b - 1 is an integer (degenerate
        # transformation); the function is smooth in its third argument, so a relative nudge
        # of 1e-9 leaves it unchanged to ~1e-11 and avoids the degenerate branch
        h[bad] = hyp2f1(1.0, c[bad], (A[bad] + 1.0) * (1.0 + 1e-9), z[bad])
    return (1.0 - b) * np.log(lo + t) - c * np.log(hi + t) + np.log(h)


def _pnbd_terms(
    theta: np.ndarray, x: np.ndarray, T: np.ndarray, l_tx: np.ndarray, l_T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pieces of the Pareto/NBD individual log-likelihood (Eq. 22 in Fader & Hardie 2005).

    L = Gamma(r+x) alpha^r beta^s / Gamma(r)
        { 1 / ((alpha+T)^(r+x) (beta+T)^s) + s / (r+s+x) A_0 },
    A_0 = term(t_x) - term(T) (the two 2F1 terms of Eq. 22, whose logs ``l_tx`` and ``l_T``
    come from :func:`_log_a0_term`). Returns ``c, u, v`` with log L = c + logaddexp(u, v):
      c = log Gamma(r+x) - log Gamma(r) + r log alpha + s log beta
      u = -(r+x) log(alpha+T) - s log(beta+T)          (customer alive at T)
      v = log(s/(r+s+x)) + log A_0                      (customer died in (t_x, T])
    v = -inf when t_x = T (A_0 = 0).
    """
    r, alpha, s, beta = theta
    rx = r + x
    c = gammaln(rx) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    u = -rx * np.log(alpha + T) - s * np.log(beta + T)
    # A_0 = exp(l_tx) - exp(l_T) >= 0 since the term decreases in t; log1p(-exp(.)) form
    delta = np.minimum(l_T - l_tx, 0.0)
    with np.errstate(divide="ignore"):
        log_a0 = l_tx + np.log(-np.expm1(delta))
    v = np.log(s) - np.log(r + s + x) + log_a0
    return c, u, v


class _Rows:
    """Customers' ``(x, t_x, T)`` and the distinct ``(x, t)`` pairs among their ``(x, t_x)``
    and ``(x, T)``.

    The hypergeometric terms of Eq. 22 depend on ``(x, t)`` only, and with purchase days there
    are far fewer distinct pairs than rows (20k pairs against 332k unique rows in bench/clv.py),
    so :meth:`terms` evaluates them once per pair.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
        self.x, self.T = x, T
        x_codes, x_levels = pd.factorize(np.concatenate([x, x]))
        t_codes, t_levels = pd.factorize(np.concatenate([t_x, T]))
        pair, keys = pd.factorize(x_codes.astype(np.int64) * len(t_levels) + t_codes)
        self.pair_x, self.pair_t = x_levels[keys // len(t_levels)], t_levels[keys % len(t_levels)]
        self.at_t_x, self.at_T = pair[: len(x)], pair[len(x) :]

    def terms(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``c, u, v`` of :func:`_pnbd_terms` for every row."""
        log_term = _log_a0_term(theta, self.pair_x, self.pair_t)
        return _pnbd_terms(theta, self.x, self.T, log_term[self.at_t_x], log_term[self.at_T])


def _loglik(theta: np.ndarray, rows: _Rows, w: np.ndarray) -> float:
    theta = np.asarray(theta, dtype=float)
    if not np.all(theta > 0):
        return -np.inf
    c, u, v = rows.terms(theta)
    return float(w @ (c + np.logaddexp(u, v)))


def _loglik_grad(theta: np.ndarray, rows: _Rows, w: np.ndarray) -> tuple[float, np.ndarray]:
    theta = np.asarray(theta, dtype=float)
    ll = _loglik(theta, rows, w)
    grad = np.empty(len(theta))
    for j in range(len(theta)):
        h = 6e-6 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        grad[j] = (_loglik(up, rows, w) - _loglik(down, rows, w)) / (up[j] - down[j])
    return ll, grad


def pnbd_loglik(
    theta: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    """Total Pareto/NBD log-likelihood at ``(r, alpha, s, beta)`` (Eq. 22, Fader & Hardie 2005).

    ``weights`` count customers sharing a row. Returns -inf outside the parameter space.
    """
    w = np.ones_like(x) if weights is None else weights
    return _loglik(theta, _Rows(x, t_x, T), w)


def pnbd_loglik_grad(
    theta: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Total log-likelihood and its numerical gradient in ``(r, alpha, s, beta)``.

    Central differences with relative step eps^(1/3) ~ 6e-6 (truncation and rounding error
    balanced). An analytic gradient would need d 2F1 / d(parameters); not implemented.
    """
    w = np.ones_like(x) if weights is None else weights
    return _loglik_grad(theta, _Rows(x, t_x, T), w)


class ParetoNBDModel(BaseEstimator):
    """Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987), fitted by MLE.

    Same contract as :class:`tierlab.clv.BetaGeoModel`. The likelihood is Eq. 22 of Fader &
    Hardie (2005), evaluated in log space with the alpha >= beta / alpha < beta case split and
    an Euler transformation of the hypergeometric function (see the module docstring). The
    optimiser (L-BFGS-B on log-parameters) uses a numerical gradient: central differences of
    the vectorised log-likelihood. Standard errors come from the inverse Hessian, itself central
    differences of that gradient.

    Parameters
    ----------
    max_iter : int
        Maximum number of L-BFGS-B iterations.
    tol : float
        ``ftol`` and ``gtol`` of L-BFGS-B on the mean negative log-likelihood.

    Attributes
    ----------
    params_ : dict
        ``r, alpha`` (gamma heterogeneity of the purchase rate) and ``s, beta`` (gamma
        heterogeneity of the dropout rate).
    standard_errors_ : dict
        Asymptotic standard errors from the inverse Hessian, same keys as ``params_``.
    log_likelihood_ : float
        Total log-likelihood at the optimum.
    n_customers_, n_unique_rows_ : int
        Sample size and number of distinct ``(frequency, recency, T)`` rows.

    References
    ----------
    Fader & Hardie (2005), http://brucehardie.com/notes/009/: Eq. 22 (likelihood), Eq. 41
    (conditional expectation); P(alive) as restated in Eq. 9 of Fader & Hardie (2014),
    http://brucehardie.com/notes/028/.
    """

    def __init__(self, max_iter: int = 1000, tol: float = 1e-10) -> None:
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, summary: pd.DataFrame, y: None = None) -> ParetoNBDModel:
        """Fit by maximum likelihood on a BTYD summary frame; returns ``self``."""
        d = validate_summary(summary, _COLUMNS)
        # customers with the same (x, t_x, T) share one likelihood term
        (x, t_x, T), counts = compress(d["frequency"], d["recency"], d["T"])
        n = float(counts.sum())
        rows = _Rows(x, t_x, T)

        def loglik_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            return _loglik_grad(theta, rows, counts)

        # start: r = s = 1, alpha and beta on the time scale of the data
        scale = max(float(np.mean(T)), 1e-3)
        theta0 = np.array([1.0, scale, 1.0, scale])
        fit_and_store(self, loglik_grad, theta0, n, PARETO_NBD_PARAMS)
        self.n_unique_rows_ = len(x)
        return self

    def _theta(self) -> np.ndarray:
        check_is_fitted(self, "params_")
        return np.array([self.params_[k] for k in PARETO_NBD_PARAMS])

    def log_likelihood(self, summary: pd.DataFrame) -> pd.Series:
        """Per-customer log-likelihood at the fitted parameters (Eq. 22, F&H 2005)."""
        theta = self._theta()
        d = validate_summary(summary, _COLUMNS)
        c, u, v = _Rows(d["frequency"], d["recency"], d["T"]).terms(theta)
        return pd.Series(c + np.logaddexp(u, v), index=summary.index, name="log_likelihood")

    def probability_alive(self, summary: pd.DataFrame) -> pd.Series:
        """P(alive at T | x, t_x, T).

        The share of the likelihood contributed by the "still alive at T" term (Eq. 9 in Fader
        & Hardie 2014, note 028; the 1/(1 + s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A_0) form of
        F&H 2005): Gamma(r+x) alpha^r beta^s / (Gamma(r) (alpha+T)^(r+x) (beta+T)^s L)
        = expit(u - v). It is exactly 1 when recency = T (A_0 = 0: the customer bought at T),
        in particular for a new customer with x = t_x = T = 0; otherwise it is < 1 and
        decreases as the time since the last purchase T - t_x grows.
        """
        theta = self._theta()
        d = validate_summary(summary, _COLUMNS)
        _, u, v = _Rows(d["frequency"], d["recency"], d["T"]).terms(theta)
        return pd.Series(expit(u - v), index=summary.index, name="probability_alive")

    def expected_transactions(self, summary: pd.DataFrame, horizon: float) -> pd.Series:
        """Expected number of purchases in ``(T, T + horizon]`` given ``(x, t_x, T)``.

        Eq. 41 in Fader & Hardie (2005) (Eq. 22 in SMC 1987):
        E[Y(t) | x, t_x, T] = P(alive) (r+x)(beta+T) / ((alpha+T)(s-1))
                              [1 - ((beta+T)/(beta+T+t))^(s-1)].
        Written as P(alive) (r+x)/(alpha+T) (beta+T) g(s-1) with
        g(k) = -expm1(-k log1p(t/(beta+T))) / k, which is accurate near s = 1 and takes its
        limit log1p(t/(beta+T)) at s = 1 (where the printed form is 0/0).
        """
        if not np.isscalar(horizon) or not np.isfinite(horizon) or horizon < 0:
            raise ValueError(f"horizon={horizon!r} should be a finite number >= 0")
        r, alpha, s, beta = self._theta()
        d = validate_summary(summary, _COLUMNS)
        x, T = d["frequency"], d["T"]
        k = s - 1.0
        log_ratio = np.log1p(float(horizon) / (beta + T))  # log((beta+T+t)/(beta+T))
        if abs(k) < 1e-12:
            g = log_ratio
        else:
            g = -np.expm1(-k * log_ratio) / k
        expected = (r + x) / (alpha + T) * (beta + T) * g  # Eq. 41, F&H (2005)
        p_alive = self.probability_alive(summary).to_numpy()
        return pd.Series(p_alive * expected, index=summary.index, name="expected_transactions")
