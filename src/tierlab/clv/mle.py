"""Maximum-likelihood machinery shared by the CLV models: input checks, row compression, the fit.

Every model in :mod:`tierlab.clv` takes the BTYD summary frame of :mod:`tierlab.features.btyd`
(``frequency``, ``recency``, ``T`` and, for Gamma-Gamma, ``monetary_value``), checks it with
:func:`validate_summary`, and hands a ``loglik_grad(theta) -> (log L, gradient)`` closure to
:func:`fit_and_store`. That minimises the mean negative log-likelihood with L-BFGS-B on the
log-parameters; standard errors come from the inverse Hessian of the negative log-likelihood (in
the natural parameters), analytic where the model provides it, otherwise central finite
differences of the gradient.

Customers with identical sufficient statistics share one likelihood term: :func:`compress`
reduces the data to unique rows with counts before the optimisation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

LoglikGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]
_MAX_KEY = 2**62  # bound on the combined row key of compress(), within int64


# --------------------------------------------------------------------------------------------
# input validation and compression
# --------------------------------------------------------------------------------------------


def first_row(mask: np.ndarray) -> int:
    """Position of the first ``True`` in ``mask`` (for error messages)."""
    return int(np.flatnonzero(mask)[0])


def validate_summary(
    summary: pd.DataFrame, columns: tuple[str, ...], signed: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """Check a BTYD summary frame and return its ``columns`` as float arrays.

    Rules: a non-empty DataFrame with the required numeric columns, all values finite and >= 0
    (any sign for the ``signed`` columns), ``frequency`` a whole number, ``recency <= T``.
    Messages name the column, the count of offending rows and the first (positional) row.
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
                f"(first at row {first_row(bad)}); values must be finite"
            )
        bad = values < 0
        if col not in signed and bad.any():
            raise ValueError(
                f"column {col!r} has {int(bad.sum())} negative values "
                f"(first at row {first_row(bad)}); values must be >= 0"
            )
        out[col] = values
    if "frequency" in out:
        x = out["frequency"]
        bad = x != np.round(x)
        if bad.any():
            i = first_row(bad)
            raise ValueError(
                f"column 'frequency' has {int(bad.sum())} non-integer values (first at row {i}: "
                f"{float(x[i])!r}); frequency counts repeat purchases and must be a whole number"
            )
    if "recency" in out and "T" in out:
        bad = out["recency"] > out["T"]
        if bad.any():
            i = first_row(bad)
            raise ValueError(
                f"{int(bad.sum())} rows have recency > T (first at row {i}: "
                f"recency={float(out['recency'][i])!r}, T={float(out['T'][i])!r}); recency must be <= T"
            )
    return out


def compress(*cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of the columns (sorted) and how many customers share each row.

    Each column is coded by a hash factorisation into integer codes in value order, the codes
    are combined into one int64 key per row, and the keys are counted with ``np.unique``: about
    twice as fast as a pandas group-by on the float columns for a million rows.
    """
    key = np.zeros(len(cols[0]), dtype=np.int64)
    n_keys = 1  # key is in range(n_keys)
    steps = []  # per column: its sorted values, and the distinct keys if re-coded before it
    for col in cols:
        codes, uniques = pd.factorize(np.asarray(col, dtype="float64"), sort=True)
        recoded = None
        if n_keys * len(uniques) > _MAX_KEY:  # re-code the keys so far to their ranks
            recoded, key = np.unique(key, return_inverse=True)
            n_keys = len(recoded)
        key = key * len(uniques) + codes
        n_keys *= len(uniques)
        steps.append((uniques, recoded))
    distinct, counts = np.unique(key, return_counts=True)
    rows = []
    for uniques, recoded in reversed(steps):  # undo the steps, last column first
        distinct, codes = np.divmod(distinct, len(uniques))
        rows.append(uniques[codes])
        if recoded is not None:
            distinct = recoded[distinct]
    return rows[::-1], counts.astype("float64")


# --------------------------------------------------------------------------------------------
# maximum likelihood
# --------------------------------------------------------------------------------------------


def _fit_mle(
    loglik_grad: LoglikGrad, theta0: np.ndarray, n: float, max_iter: int, tol: float
) -> tuple[np.ndarray, float, object]:
    """Maximise the total log-likelihood over log-parameters with L-BFGS-B.

    ``loglik_grad(theta)`` returns the total log-likelihood and its gradient in the natural
    parameters ``theta``; the chain rule d/dlog(theta) = theta * d/dtheta gives the gradient
    on the log scale. The objective is divided by ``n`` so ``tol`` does not depend on data size.
    Returns the estimate, the log-likelihood there (from the optimiser's last value, not a new
    evaluation) and the optimiser result.
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
    return np.exp(res.x), -float(res.fun) * n, res


def finite_difference_hessian(loglik_grad: LoglikGrad, theta: np.ndarray) -> np.ndarray:
    """Hessian of log L at ``theta`` by central differences of the gradient (relative steps),
    symmetrised. Used when a model has no analytic Hessian (2 gradients per parameter)."""
    k = len(theta)
    hess = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * max(abs(theta[j]), 1e-8)
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        hess[:, j] = (loglik_grad(up)[1] - loglik_grad(down)[1]) / (2.0 * h)
    return 0.5 * (hess + hess.T)


def _standard_errors(hess: np.ndarray) -> np.ndarray:
    """Square roots of the diagonal of the inverse of -``hess`` (the observed information).

    NaN where the Hessian is not negative definite.
    """
    try:
        cov = np.linalg.inv(-hess)
    except np.linalg.LinAlgError:
        return np.full(len(hess), np.nan)
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
    loglik_grad: LoglikGrad,
    theta0: np.ndarray,
    n: float,
    names: tuple[str, ...],
    hessian: Callable[[np.ndarray], np.ndarray] | None = None,
) -> None:
    """Maximise the likelihood, check convergence, and set ``params_``,
    ``standard_errors_``, ``log_likelihood_`` and ``n_customers_`` on ``estimator`` (the fitting
    tail every BTYD model shares).

    ``hessian(theta)`` is the Hessian of the total log-likelihood for the standard errors;
    without it, :func:`finite_difference_hessian` of ``loglik_grad``.
    """
    # One BLAS thread: the likelihoods' dot products are short and memory-bound, and idle
    # OpenBLAS workers spinning between them slowed the 1M-customer fits by 10-30 % on 2 cores.
    with threadpool_limits(limits=1, user_api="blas"):
        theta, ll, res = _fit_mle(loglik_grad, theta0, n, estimator.max_iter, estimator.tol)
        _check_converged(res, type(estimator).__name__)
        hess = finite_difference_hessian(loglik_grad, theta) if hessian is None else hessian(theta)
    se = _standard_errors(hess)
    estimator.params_ = dict(zip(names, map(float, theta), strict=True))
    estimator.standard_errors_ = dict(zip(names, map(float, se), strict=True))
    estimator.log_likelihood_ = ll
    estimator.n_customers_ = int(n)
