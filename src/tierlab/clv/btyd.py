"""Buy-till-you-die (BTYD) models fitted by maximum likelihood: BG/NBD and Gamma-Gamma.

Both estimators take the BTYD summary frame of :mod:`tierlab.features.btyd`
(``frequency``, ``recency``, ``T`` and, for Gamma-Gamma, ``monetary_value``) and follow the
scikit-learn contract: ``__init__`` only stores keyword arguments, ``fit`` validates and returns
``self``, learned state ends in ``_``.

Fitting minimises the mean negative log-likelihood with L-BFGS-B on the log-parameters, with an
analytic gradient. Customers with identical sufficient statistics share one likelihood term, so
the data are compressed to unique rows with counts before the optimisation. Standard errors come
from the inverse Hessian of the negative log-likelihood (in the natural parameters), obtained by
central finite differences of the analytic gradient.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005a). "Counting your customers" the easy way: an
alternative to the Pareto/NBD model. Marketing Science 24(2), 275-284.
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005b). Computing P(alive) using the BG/NBD model.
http://brucehardie.com/notes/021/
Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
http://brucehardie.com/notes/025/
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

BGNBD_PARAMS = ("r", "alpha", "a", "b")
GAMMA_GAMMA_PARAMS = ("p", "q", "v")


# --------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def validate_summary(summary: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Check a BTYD summary frame and return its ``columns`` as float arrays.

    Rules: a non-empty DataFrame with the required numeric columns, all values finite and >= 0,
    ``frequency`` a whole number, ``recency <= T``. Messages name the column, the count of
    offending rows and the first (positional) row.
    """
    if not isinstance(summary, pd.DataFrame):
        raise TypeError(f"summary must be a pandas DataFrame, got {type(summary).__name__}")
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise ValueError(
            f"summary is missing required column(s) {missing}; "
            f"got columns {list(map(str, summary.columns))}"
        )
    if len(summary) == 0:
        raise ValueError("summary has 0 rows; at least one customer is needed")
    out: dict[str, np.ndarray] = {}
    for col in columns:
        if not pd.api.types.is_numeric_dtype(summary[col]) or pd.api.types.is_bool_dtype(
            summary[col]
        ):
            raise TypeError(f"column {col!r} has dtype {summary[col].dtype}; it must be numeric")
        values = summary[col].to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(
                f"column {col!r} has {int(bad.sum())} missing or non-finite values "
                f"(first at row {_first_row(bad)}); values must be finite"
            )
        bad = values < 0
        if bad.any():
            raise ValueError(
                f"column {col!r} has {int(bad.sum())} negative values "
                f"(first at row {_first_row(bad)}); values must be >= 0"
            )
        out[col] = values
    if "frequency" in out:
        x = out["frequency"]
        bad = x != np.round(x)
        if bad.any():
            i = _first_row(bad)
            raise ValueError(
                f"column 'frequency' has {int(bad.sum())} non-integer values (first at row {i}: "
                f"{float(x[i])!r}); frequency counts repeat purchases and must be a whole number"
            )
    if "recency" in out and "T" in out:
        bad = out["recency"] > out["T"]
        if bad.any():
            i = _first_row(bad)
            raise ValueError(
                f"{int(bad.sum())} rows have recency > T (first at row {i}: "
                f"recency={float(out['recency'][i])!r}, T={float(out['T'][i])!r}); recency must be <= T"
            )
    return out


def _compress(*cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of the columns (sorted) and how many customers share each row.

    A hash group-by: about ten times faster than ``np.unique(..., axis=0)`` on a million rows.
    """
    frame = pd.DataFrame({j: np.asarray(c, dtype="float64") for j, c in enumerate(cols)})
    counts = frame.groupby(list(frame.columns), sort=True).size()
    uniq = counts.index.to_frame(index=False).to_numpy(dtype="float64")
    return [uniq[:, j] for j in range(uniq.shape[1])], counts.to_numpy(dtype="float64")


# --------------------------------------------------------------------------------------------
# maximum likelihood machinery shared by the models
# --------------------------------------------------------------------------------------------


def _fit_mle(
    loglik_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    theta0: np.ndarray,
    n: float,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, float, object]:
    """Maximise the total log-likelihood over log-parameters with L-BFGS-B.

    ``loglik_grad(theta)`` returns the total log-likelihood and its gradient in the natural
    parameters ``theta``; the chain rule d/dlog(theta) = theta * d/dtheta gives the gradient
    on the log scale. The objective is divided by ``n`` so ``tol`` does not depend on data size.
    """

    def objective(log_theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(log_theta)
        ll, grad = loglik_grad(theta)
        if not np.isfinite(ll):
            return np.inf, np.zeros_like(theta)
        return -ll / n, -grad * theta / n

    res = minimize(
        objective,
        np.log(theta0),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-25.0, 25.0)] * len(theta0),
        options={"maxiter": max_iter, "ftol": tol, "gtol": tol},
    )
    theta = np.exp(res.x)
    return theta, float(loglik_grad(theta)[0]), res


def _standard_errors(
    loglik_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], theta: np.ndarray
) -> np.ndarray:
    """Square roots of the diagonal of the inverse Hessian of -log L at ``theta``.

    The Hessian is obtained by central differences of the analytic gradient (relative steps),
    then symmetrised. NaN where the Hessian is not positive definite.
    """
    k = len(theta)
    hess = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * max(abs(theta[j]), 1e-8)
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        hess[:, j] = -(loglik_grad(up)[1] - loglik_grad(down)[1]) / (2.0 * h)
    hess = 0.5 * (hess + hess.T)
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return np.full(k, np.nan)
    diag = np.diag(cov)
    return np.where(diag > 0, np.sqrt(np.abs(diag)), np.nan)


def _check_converged(res: object, name: str) -> None:
    if res.success:  # type: ignore[attr-defined]
        return
    theta = np.exp(res.x)  # type: ignore[attr-defined]
    hint = ""
    if np.any(theta > 1e6) or np.any(theta < 1e-6):
        hint = (
            f"; the likelihood rises towards a boundary (parameters {np.round(theta, 6).tolist()}"
            "): the data do not look like this model's process, so no interior estimate exists"
        )
    raise RuntimeError(f"{name} fit did not converge: {res.message}{hint}")  # type: ignore[attr-defined]


def fit_and_store(
    estimator: BaseEstimator,
    loglik_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    theta0: np.ndarray,
    n: float,
    names: tuple[str, ...],
) -> None:
    """Maximise the likelihood, check convergence, and set ``params_``,
    ``standard_errors_``, ``log_likelihood_`` and ``n_customers_`` on ``estimator`` (the fitting
    tail every BTYD model shares)."""
    theta, ll, res = _fit_mle(loglik_grad, theta0, n, estimator.max_iter, estimator.tol)
    _check_converged(res, type(estimator).__name__)
    se = _standard_errors(loglik_grad, theta)
    estimator.params_ = dict(zip(names, map(float, theta), strict=True))
    estimator.standard_errors_ = dict(zip(names, map(float, se), strict=True))
    estimator.log_likelihood_ = ll
    estimator.n_customers_ = int(n)


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------


def _bgnbd_terms(theta: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
    """Pieces of the BG/NBD individual log-likelihood (Eq. 6 in Fader, Hardie & Lee 2005a).

    log L = c + log(exp(u) + [x > 0] exp(v)) with
    c = log Gamma(r+x) - log Gamma(r) + r log(alpha) + log B(a, b+x) - log B(a, b)
    u = -(r+x) log(alpha+T)
    v = log(a) - log(b+x-1) - (r+x) log(alpha+t_x)    (x > 0 only)
    using B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1).
    """
    r, alpha, a, b = theta
    rx = r + x
    c = gammaln(rx) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    u = -rx * np.log(alpha + T)
    pos = x > 0
    # b + x - 1 > 0 whenever x >= 1; the max() keeps the x = 0 rows (masked out) finite
    bx1 = np.maximum(b + x - 1.0, 1e-300)
    v = np.where(pos, np.log(a) - np.log(bx1) - rx * np.log(alpha + t_x), -np.inf)
    return c, u, v, pos, bx1


def bgnbd_loglik_grad(
    theta: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Total BG/NBD log-likelihood and its analytic gradient in ``(r, alpha, a, b)``.

    Eq. 6 in Fader, Hardie & Lee (2005a); ``weights`` count customers sharing a row.
    """
    r, alpha, a, b = theta
    w = np.ones_like(x) if weights is None else weights
    c, u, v, pos, bx1 = _bgnbd_terms(theta, x, t_x, T)
    ll = c + np.logaddexp(u, v)
    # weight of each of the two likelihood components (softmax of u, v)
    w_v = expit(v - u)
    w_u = 1.0 - w_v
    rx = r + x
    log_at, log_atx = np.log(alpha + T), np.log(alpha + t_x)
    d_r = digamma(rx) - digamma(r) + np.log(alpha) - w_u * log_at - w_v * log_atx
    d_alpha = r / alpha - rx * (w_u / (alpha + T) + w_v / (alpha + t_x))
    d_ab = digamma(a + b) - digamma(a + b + x)
    d_a = d_ab + np.where(pos, w_v / a, 0.0)
    d_b = d_ab + digamma(b + x) - digamma(b) - np.where(pos, w_v / bx1, 0.0)
    grad = np.array([w @ d_r, w @ d_alpha, w @ d_a, w @ d_b])
    return float(w @ ll), grad


class BetaGeoModel(BaseEstimator):
    """BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005a), fitted by MLE.

    Parameters
    ----------
    max_iter : int
        Maximum number of L-BFGS-B iterations.
    tol : float
        ``ftol`` and ``gtol`` of L-BFGS-B on the mean negative log-likelihood.

    Attributes
    ----------
    params_ : dict
        ``r, alpha`` (gamma heterogeneity of the purchase rate) and ``a, b`` (beta
        heterogeneity of the dropout probability).
    standard_errors_ : dict
        Asymptotic standard errors from the inverse Hessian, same keys as ``params_``.
    log_likelihood_ : float
        Total log-likelihood at the optimum.
    n_customers_, n_unique_rows_ : int
        Sample size and number of distinct ``(frequency, recency, T)`` rows.

    References
    ----------
    Fader, Hardie & Lee (2005a), Eq. 6 (likelihood) and Eq. 10 (conditional expectation);
    Fader, Hardie & Lee (2005b) for P(alive).
    """

    def __init__(self, max_iter: int = 1000, tol: float = 1e-10) -> None:
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, summary: pd.DataFrame, y: None = None) -> BetaGeoModel:
        """Fit by maximum likelihood on a BTYD summary frame; returns ``self``."""
        d = validate_summary(summary, ("frequency", "recency", "T"))
        # customers with the same (x, t_x, T) share one likelihood term
        (x, t_x, T), counts = _compress(d["frequency"], d["recency"], d["T"])
        n = float(counts.sum())

        def loglik_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            return bgnbd_loglik_grad(theta, x, t_x, T, counts)

        # start: r = 1, alpha on the time scale of the data, a = b = 1
        theta0 = np.array([1.0, max(float(np.mean(T)), 1e-3), 1.0, 1.0])
        fit_and_store(self, loglik_grad, theta0, n, BGNBD_PARAMS)
        self.n_unique_rows_ = len(x)
        return self

    def _theta(self) -> np.ndarray:
        check_is_fitted(self, "params_")
        return np.array([self.params_[k] for k in BGNBD_PARAMS])

    def log_likelihood(self, summary: pd.DataFrame) -> pd.Series:
        """Per-customer log-likelihood at the fitted parameters (Eq. 6, FHL 2005a)."""
        theta = self._theta()
        d = validate_summary(summary, ("frequency", "recency", "T"))
        c, u, v, _, _ = _bgnbd_terms(theta, d["frequency"], d["recency"], d["T"])
        return pd.Series(c + np.logaddexp(u, v), index=summary.index, name="log_likelihood")

    def probability_alive(self, summary: pd.DataFrame) -> pd.Series:
        """P(alive at T | x, t_x, T).

        Eq. 1 in Fader, Hardie & Lee (2005b): 1 / (1 + [x > 0] a / (b+x-1) ((alpha+T) /
        (alpha+t_x))^(r+x)) = expit(u - v) in the notation of the likelihood terms. Customers
        without repeat purchases (x = 0) are alive with probability 1: in the BG/NBD, dropout
        can only happen right after a repeat purchase.
        """
        theta = self._theta()
        d = validate_summary(summary, ("frequency", "recency", "T"))
        _, u, v, _, _ = _bgnbd_terms(theta, d["frequency"], d["recency"], d["T"])
        return pd.Series(expit(u - v), index=summary.index, name="probability_alive")

    def expected_transactions(self, summary: pd.DataFrame, horizon: float) -> pd.Series:
        """Expected number of purchases in ``(T, T + horizon]`` given ``(x, t_x, T)``.

        Eq. 10 in Fader, Hardie & Lee (2005a):
        E[Y(t) | x, t_x, T] = P(alive) (a+b+x-1)/(a-1)
            [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)],  z = t/(alpha+T+t).
        The Euler transformation 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns
        (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z) into (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z),
        whose arguments stay O(1) for large x (no overflow times underflow).
        """
        if not np.isscalar(horizon) or not np.isfinite(horizon) or horizon < 0:
            raise ValueError(f"horizon={horizon!r} should be a finite number >= 0")
        r, alpha, a, b = self._theta()
        d = validate_summary(summary, ("frequency", "recency", "T"))
        if abs(a - 1.0) < 1e-8:
            # limit a -> 1 of (1 - tail) / (a - 1); not reached for fitted a in practice
            raise ValueError(f"a={a!r} is too close to 1 for Eq. 10 of Fader, Hardie & Lee (2005a)")
        x, T = d["frequency"], d["T"]
        t = float(horizon)
        z = t / (alpha + T + t)
        tail = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(
            a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z
        )
        expected = (a + b + x - 1.0) / (a - 1.0) * (1.0 - tail)
        p_alive = self.probability_alive(summary).to_numpy()
        return pd.Series(p_alive * expected, index=summary.index, name="expected_transactions")


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------


def gamma_gamma_loglik_grad(
    theta: np.ndarray,
    x: np.ndarray,
    zbar: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Total Gamma-Gamma log-likelihood and its analytic gradient in ``(p, q, v)``.

    Eq. 3 in Fader & Hardie (2013), for customers with x >= 1 repeat purchases of mean zbar:
    f(zbar | p, q, v, x) = Gamma(px+q) / (Gamma(px) Gamma(q)) v^q zbar^(px-1) x^(px)
                           / (v + x zbar)^(px+q).
    """
    p, q, v = theta
    w = np.ones_like(x) if weights is None else weights
    px = p * x
    log_vxz = np.log(v + x * zbar)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(zbar)
        + px * np.log(x)
        - (px + q) * log_vxz
    )
    psi_pxq = digamma(px + q)
    d_p = x * (psi_pxq - digamma(px) + np.log(zbar) + np.log(x) - log_vxz)
    d_q = psi_pxq - digamma(q) + np.log(v) - log_vxz
    d_v = q / v - (px + q) / (v + x * zbar)
    return float(w @ ll), np.array([w @ d_p, w @ d_q, w @ d_v])


class GammaGammaModel(BaseEstimator):
    """Gamma-Gamma model of average spend per purchase (Fader & Hardie 2013), fitted by MLE.

    Only customers with at least one repeat purchase (``frequency > 0``) carry information on
    spend and enter the fit; their ``monetary_value`` (mean repeat spend) must be > 0, because
    the model puts all its mass on positive amounts. Rows with ``frequency == 0`` are ignored
    by ``fit`` and get the population mean in :meth:`expected_spend`.

    Parameters
    ----------
    max_iter : int
        Maximum number of L-BFGS-B iterations.
    tol : float
        ``ftol`` and ``gtol`` of L-BFGS-B on the mean negative log-likelihood.

    Attributes
    ----------
    params_ : dict
        ``p`` (shape of the spend per purchase), ``q, v`` (gamma heterogeneity of its rate).
    standard_errors_ : dict
    log_likelihood_ : float
    n_customers_ : int
        Number of customers with ``frequency > 0`` used in the fit.

    References
    ----------
    Fader & Hardie (2013), Eq. 3 (likelihood) and Eq. 5 (conditional expectation).
    """

    def __init__(self, max_iter: int = 1000, tol: float = 1e-10) -> None:
        self.max_iter = max_iter
        self.tol = tol

    @staticmethod
    def _repeaters(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        d = validate_summary(summary, ("frequency", "monetary_value"))
        x, m = d["frequency"], d["monetary_value"]
        pos = x > 0
        if not pos.any():
            raise ValueError(
                "summary has no customer with frequency > 0; Gamma-Gamma needs repeat purchases"
            )
        bad = pos & (m <= 0)
        if bad.any():
            raise ValueError(
                f"column 'monetary_value' has {int(bad.sum())} values <= 0 among customers "
                f"with frequency > 0 (first at row {_first_row(bad)}); Gamma-Gamma needs "
                "monetary_value > 0 for repeat customers"
            )
        return x[pos], m[pos]

    def fit(self, summary: pd.DataFrame, y: None = None) -> GammaGammaModel:
        """Fit by maximum likelihood on the customers with ``frequency > 0``; returns ``self``."""
        x_all, m_all = self._repeaters(summary)
        (x, zbar), counts = _compress(x_all, m_all)
        n = float(counts.sum())

        def loglik_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            return gamma_gamma_loglik_grad(theta, x, zbar, counts)

        # start: p = 1, q = 2, v = mean spend (then E[spend] = p v / (q - 1) = mean spend)
        theta0 = np.array([1.0, 2.0, float(np.average(zbar, weights=counts))])
        fit_and_store(self, loglik_grad, theta0, n, GAMMA_GAMMA_PARAMS)
        return self

    def expected_spend(self, summary: pd.DataFrame) -> pd.Series:
        """Conditional expected average spend per purchase, E[Z | p, q, v, x, zbar].

        Eq. 5 in Fader & Hardie (2013): p (v + x zbar) / (p x + q - 1), a weighted mean of the
        population mean p v / (q - 1) and the customer's own zbar. For x = 0 it is the
        population mean. Needs q > 1 (finite population mean).
        """
        check_is_fitted(self, "params_")
        p, q, v = (self.params_[k] for k in GAMMA_GAMMA_PARAMS)
        if q <= 1.0:
            raise ValueError(f"q={q!r} should be > 1 for the expected spend to be finite")
        d = validate_summary(summary, ("frequency", "monetary_value"))
        x = d["frequency"]
        zbar = np.where(x > 0, d["monetary_value"], 0.0)
        out = p * (v + x * zbar) / (p * x + q - 1.0)
        return pd.Series(out, index=summary.index, name="expected_spend")
