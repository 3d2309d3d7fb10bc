"""Gamma-Gamma model of average spend per purchase (Fader & Hardie 2013), fitted by MLE.

The estimator follows the scikit-learn contract (see :mod:`tierlab.clv.bgnbd`) and fits with
the shared machinery of :mod:`tierlab.clv.mle`, with an analytic gradient.

Only the term log(v + x zbar) of the likelihood (Eq. 3) couples a parameter with a customer's
spend; the gamma functions depend on ``x`` only and are evaluated once per distinct ``x``,
and sums of log(zbar) and x log(x zbar) are data-only constants computed once per fit. The
per-customer work of one evaluation is then one logarithm and one division. The rows are not
compressed to unique ``(x, zbar)``: with a continuous spend nearly every row is unique, and a
group-by would cost more than the evaluations it saves.

References
----------
Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
http://brucehardie.com/notes/025/
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln, polygamma
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from tierlab.clv.mle import first_row, fit_and_store, validate_summary

GAMMA_GAMMA_PARAMS = ("p", "q", "v")
_COLUMNS = ("frequency", "monetary_value")
_NONPOSITIVE_SPEND = ("raise", "exclude")


class _Loglik:
    """Total Gamma-Gamma log-likelihood, analytic gradient and Hessian over fixed weighted rows.

    Eq. 3 in Fader & Hardie (2013), for customers with x >= 1 repeat purchases of mean zbar:
    f(zbar | p, q, v, x) = Gamma(px+q) / (Gamma(px) Gamma(q)) v^q zbar^(px-1) x^(px)
                           / (v + x zbar)^(px+q),
    where zbar^(px-1) x^(px) = exp(p x log(x zbar) - log(zbar)).
    """

    def __init__(self, x: np.ndarray, zbar: np.ndarray, w: np.ndarray) -> None:
        codes, self.x_levels = pd.factorize(x)
        self.w_x = np.bincount(codes, weights=w)
        self.w, self.wx = w, w * x
        self.spend = x * zbar  # x zbar, total repeat spend
        self.sum_log_zbar = float(w @ np.log(zbar))
        self.sum_x_log_spend = float(self.wx @ np.log(self.spend))

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, v = theta
        xs, w_x = self.x_levels, self.w_x
        n = w_x.sum()
        px = p * xs
        v_spend = v + self.spend
        log_v_spend, inv_v_spend = np.log(v_spend), 1.0 / v_spend
        # sums over customers of log(v + x zbar) and x log(v + x zbar)
        s_log, s_x_log = self.w @ log_v_spend, self.wx @ log_v_spend
        ll = (
            w_x @ (gammaln(px + q) - gammaln(px))
            - n * gammaln(q)
            + n * q * np.log(v)
            + p * self.sum_x_log_spend
            - self.sum_log_zbar
            - p * s_x_log
            - q * s_log
        )
        psi_pxq = digamma(px + q)
        d_p = w_x @ (xs * (psi_pxq - digamma(px))) + self.sum_x_log_spend - s_x_log
        d_q = w_x @ psi_pxq - n * digamma(q) + n * np.log(v) - s_log
        d_v = n * q / v - p * (self.wx @ inv_v_spend) - q * (self.w @ inv_v_spend)
        return float(ll), np.array([d_p, d_q, d_v])

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """Hessian of the total log-likelihood in ``(p, q, v)`` (psi1 = trigamma)."""
        p, q, v = theta
        xs, w_x = self.x_levels, self.w_x
        n = w_x.sum()
        psi1_pxq = polygamma(1, p * xs + q)
        inv_v_spend = 1.0 / (v + self.spend)
        inv2 = inv_v_spend**2
        s_inv, s_x_inv = self.w @ inv_v_spend, self.wx @ inv_v_spend
        h_pp = w_x @ (xs**2 * (psi1_pxq - polygamma(1, p * xs)))
        h_pq = w_x @ (xs * psi1_pxq)
        h_qq = w_x @ psi1_pxq - n * polygamma(1, q)
        h_vv = -n * q / v**2 + p * (self.wx @ inv2) + q * (self.w @ inv2)
        return np.array(
            [[h_pp, h_pq, -s_x_inv], [h_pq, h_qq, n / v - s_inv], [-s_x_inv, n / v - s_inv, h_vv]]
        )


def gamma_gamma_loglik_grad(
    theta: np.ndarray,
    x: np.ndarray,
    zbar: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Total Gamma-Gamma log-likelihood and its analytic gradient in ``(p, q, v)``.

    Eq. 3 in Fader & Hardie (2013), for customers with x >= 1 repeat purchases of mean
    zbar > 0; ``weights`` count customers sharing a row.
    """
    w = np.ones_like(x) if weights is None else weights
    return _Loglik(x, zbar, w)(theta)


class GammaGammaModel(BaseEstimator):
    """Gamma-Gamma model of average spend per purchase (Fader & Hardie 2013), fitted by MLE.

    Only customers with at least one repeat purchase (``frequency > 0``) carry information on
    spend and enter the fit; the model puts all its mass on positive amounts, so their
    ``monetary_value`` (mean repeat spend) must be > 0. Rows with ``frequency == 0`` are
    ignored by ``fit`` and get the population mean in :meth:`expected_spend`.

    Parameters
    ----------
    max_iter : int
        Maximum number of L-BFGS-B iterations.
    tol : float
        ``ftol`` and ``gtol`` of L-BFGS-B on the mean negative log-likelihood.
    nonpositive_spend : {"raise", "exclude"}
        What ``fit`` does with repeat customers whose ``monetary_value`` is <= 0 (e.g. net of
        refunds): ``"raise"`` a ValueError naming their count and first row, or ``"exclude"``
        them from the fit (negative values are then accepted as input too).
        :meth:`expected_spend` treats their mean spend as 0.

    Attributes
    ----------
    params_ : dict
        ``p`` (shape of the spend per purchase), ``q, v`` (gamma heterogeneity of its rate).
    standard_errors_ : dict
    log_likelihood_ : float
    n_customers_ : int
        Number of customers used in the fit (``frequency > 0``, ``monetary_value > 0``).
    n_excluded_ : int
        Number of repeat customers left out because ``monetary_value <= 0`` (0 under
        ``nonpositive_spend="raise"``).

    References
    ----------
    Fader & Hardie (2013), Eq. 3 (likelihood) and Eq. 5 (conditional expectation).
    """

    def __init__(
        self, max_iter: int = 1000, tol: float = 1e-10, nonpositive_spend: str = "raise"
    ) -> None:
        self.max_iter = max_iter
        self.tol = tol
        self.nonpositive_spend = nonpositive_spend

    def _validate(self, summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``frequency`` and ``monetary_value``; the latter may be negative under "exclude"."""
        if self.nonpositive_spend not in _NONPOSITIVE_SPEND:
            raise ValueError(
                f"nonpositive_spend={self.nonpositive_spend!r} should be one of "
                f"{list(_NONPOSITIVE_SPEND)}"
            )
        signed = ("monetary_value",) if self.nonpositive_spend == "exclude" else ()
        d = validate_summary(summary, _COLUMNS, signed=signed)
        return d["frequency"], d["monetary_value"]

    def fit(self, summary: pd.DataFrame, y: None = None) -> GammaGammaModel:
        """Fit by maximum likelihood on the customers with ``frequency > 0``; returns ``self``."""
        x, m = self._validate(summary)
        repeat = x > 0
        if not repeat.any():
            raise ValueError(
                "summary has no customer with frequency > 0; Gamma-Gamma needs repeat purchases"
            )
        bad = repeat & (m <= 0)
        n_bad = int(bad.sum())
        if n_bad and self.nonpositive_spend == "raise":
            raise ValueError(
                f"column 'monetary_value' has {n_bad} values <= 0 among customers "
                f"with frequency > 0 (first at row {first_row(bad)}); Gamma-Gamma needs "
                "monetary_value > 0 for repeat customers (or nonpositive_spend='exclude')"
            )
        if n_bad == int(repeat.sum()):
            raise ValueError(
                f"all {n_bad} customers with frequency > 0 have monetary_value <= 0; "
                "nothing is left to fit after excluding them"
            )
        keep = repeat & ~bad
        x, zbar = x[keep], m[keep]
        # start: p = 1, q = 2, v = mean spend (then E[spend] = p v / (q - 1) = mean spend)
        theta0 = np.array([1.0, 2.0, float(np.mean(zbar))])
        loglik = _Loglik(x, zbar, np.ones_like(x))
        fit_and_store(
            self, loglik, theta0, float(len(x)), GAMMA_GAMMA_PARAMS, hessian=loglik.hessian
        )
        self.n_excluded_ = n_bad
        return self

    def expected_spend(self, summary: pd.DataFrame) -> pd.Series:
        """Conditional expected average spend per purchase, E[Z | p, q, v, x, zbar].

        Eq. 5 in Fader & Hardie (2013): p (v + x zbar) / (p x + q - 1), a weighted mean of the
        population mean p v / (q - 1) and the customer's own zbar, here max(zbar, 0). For
        x = 0 it is the population mean. Needs q > 1 (finite population mean).
        """
        check_is_fitted(self, "params_")
        p, q, v = (self.params_[k] for k in GAMMA_GAMMA_PARAMS)
        if q <= 1.0:
            raise ValueError(f"q={q!r} should be > 1 for the expected spend to be finite")
        x, m = self._validate(summary)
        zbar = np.where(x > 0, np.maximum(m, 0.0), 0.0)
        out = p * (v + x * zbar) / (p * x + q - 1.0)  # Eq. 5, Fader & Hardie (2013)
        return pd.Series(out, index=summary.index, name="expected_spend")
