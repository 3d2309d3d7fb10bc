"""How good is a CLV model on the holdout window?  Value, ranking and transaction-count metrics.

Inputs are 1-D arrays (or Series, taken by position, not by index) with one value per customer:
the realised holdout value ``actual`` (bank profit: it can be negative, and is zero for many
customers) and a model's ``predicted`` value.

Ranking metrics order customers by ``predicted``, highest first.  Customers tied in predicted
value form a block whose total actual value is spread evenly over its rank positions (each gets
the block's mean actual value), so no metric depends on the order of the rows: a constant
prediction captures exactly its customer share of the value and has a Gini of 0.

Shares of a non-positive total value have no meaning: every share, lift and Gini is NaN then.

References
----------
Frees, E. W., Meyers, G. & Cummings, A. D. (2011). Summarizing insurance scores using a Gini
index. Journal of the American Statistical Association 106(495), 1085-1098.
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy way: an
alternative to the Pareto/NBD model. Marketing Science 24(2), 275-284.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

TOP_FRACTIONS = {"top10": 0.10, "top20": 0.20}


# --------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------


def _as_values(name: str, values) -> np.ndarray:
    """``values`` as a non-empty 1-D float array of finite numbers, or a ValueError naming it."""
    array = np.asarray(values, dtype="float64")
    if array.ndim != 1:
        raise ValueError(f"{name} has shape {array.shape}; it must be 1-D (one value a customer)")
    if array.size == 0:
        raise ValueError(f"{name} is empty; at least one customer is needed")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite values (first at position "
            f"{int(np.flatnonzero(bad)[0])}); values must be finite"
        )
    return array


def _as_pair(names: tuple[str, str], first, second) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_values(names[0], first), _as_values(names[1], second)
    if len(a) != len(b):
        raise ValueError(
            f"{names[0]} has {len(a)} values but {names[1]} has {len(b)}; "
            "they must have one value per customer each"
        )
    return a, b


def _non_negative(name: str, array: np.ndarray) -> None:
    negative = array < 0
    if negative.any():
        raise ValueError(
            f"{name} has {int(negative.sum())} negative values (first at position "
            f"{int(np.flatnonzero(negative)[0])}); counts must be >= 0"
        )


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}={value!r} should be an integer >= {minimum}")
    return int(value)


# --------------------------------------------------------------------------------------------
# ranking by predicted value, ties averaged
# --------------------------------------------------------------------------------------------


def _ranked(actual: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and actual values in rank order (highest predicted first), each actual value
    replaced by the mean actual value of its block of customers tied in predicted value.

    Ties are broken by actual value before averaging, so even the float rounding of the block
    sums does not depend on the row order.
    """
    order = np.lexsort((actual, -predicted))
    ranked_predicted, ranked_actual = predicted[order], actual[order]
    starts = np.flatnonzero(np.r_[True, ranked_predicted[1:] != ranked_predicted[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    block_means = np.add.reduceat(ranked_actual, starts) / sizes
    return ranked_predicted, np.repeat(block_means, sizes)


def _captured(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray | None:
    """Cumulative share of total actual value captured by the top 0, 1, ..., n customers by
    predicted value (n + 1 points), or None when the total is not positive."""
    total = actual.sum()
    if total <= 0:
        return None
    _, ranked_actual = _ranked(actual, predicted)
    return np.r_[0.0, np.cumsum(ranked_actual) / total]


def _share_at(captured: np.ndarray | None, fraction: float) -> float:
    """Share of value captured by the top ``fraction`` of customers, linearly interpolated
    between whole customers (so a constant prediction captures exactly ``fraction``)."""
    if captured is None:
        return np.nan
    n = len(captured) - 1
    return float(np.interp(fraction * n, np.arange(n + 1), captured))


def _gini(captured: np.ndarray | None) -> float:
    """Gini of the gain curve: twice the area between it and the diagonal, from the n customer
    positions (Frees, Meyers & Cummings 2011, Sec. 2, on the ordered sample)."""
    if captured is None:
        return np.nan
    n = len(captured) - 1
    return float(captured[1:].mean() - (n + 1) / (2 * n))


def _normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of ``actual`` ordered by ``predicted`` / Gini of ``actual`` ordered by itself:
    1 = perfect ranking, 0 = random, < 0 worse than random.  NaN when the total actual value is
    not positive or all actual values are equal (the oracle's Gini is 0)."""
    if np.ptp(actual) == 0:
        return np.nan
    return _gini(_captured(actual, predicted)) / _gini(_captured(actual, actual))


def _spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return np.nan
    return float(spearmanr(first, second).statistic)


# --------------------------------------------------------------------------------------------
# value metrics
# --------------------------------------------------------------------------------------------


def decile_table(actual, predicted, n_bins: int = 10) -> pd.DataFrame:
    """Customers in ``n_bins`` equal-count bins of predicted value (decile 1 = highest).

    Bins are filled by rank position: customer ``i`` (0-based, highest predicted first) goes to
    bin ``1 + floor(i * n_bins / n)``, so bin sizes differ by at most one and ties never leave a
    bin empty.  A block of customers tied in predicted value that straddles a bin boundary is
    split by position, each of its customers counting with the block's mean actual value, so
    the table does not depend on the row order.  With fewer customers than bins, each customer
    is a bin.

    Parameters
    ----------
    actual, predicted
        Realised holdout value and predicted value per customer.
    n_bins
        Number of bins (an integer >= 1).

    Returns
    -------
    pd.DataFrame
        One row per bin: ``decile``, ``n``, ``mean_predicted``, ``mean_actual``,
        ``sum_actual`` and ``share_of_actual`` (of the total actual value; NaN when the total
        is not positive).
    """
    actual, predicted = _as_pair(("actual", "predicted"), actual, predicted)
    n_bins = min(_check_int("n_bins", n_bins, 1), len(actual))
    ranked_predicted, ranked_actual = _ranked(actual, predicted)
    ranked = pd.DataFrame(
        {
            "decile": np.arange(len(actual)) * n_bins // len(actual) + 1,
            "predicted": ranked_predicted,
            "actual": ranked_actual,
        }
    )
    table = ranked.groupby("decile", as_index=False).agg(
        n=("actual", "size"),
        mean_predicted=("predicted", "mean"),
        mean_actual=("actual", "mean"),
        sum_actual=("actual", "sum"),
    )
    total = actual.sum()
    table["share_of_actual"] = table["sum_actual"] / total if total > 0 else np.nan
    return table


def _decile_mape(table: pd.DataFrame) -> float:
    """Mean over bins of |mean predicted - mean actual| / |mean actual|, skipping bins whose
    mean actual value is 0; NaN when no bin is left."""
    kept = table[table["mean_actual"] != 0]
    if kept.empty:
        return np.nan
    errors = (kept["mean_predicted"] - kept["mean_actual"]).abs() / kept["mean_actual"].abs()
    return float(errors.mean())


def _decile_wape(table: pd.DataFrame) -> float:
    """Sum over bins of |mean predicted - mean actual| over the sum of |mean actual|: the
    decile error weighted by each bin's size of value, so that bins with a mean near 0 (common
    with bank profit) do not dominate as they do in the MAPE; NaN when every bin mean is 0."""
    scale = table["mean_actual"].abs().sum()
    if scale == 0:
        return np.nan
    return float((table["mean_predicted"] - table["mean_actual"]).abs().sum() / scale)


def value_metrics(actual, predicted) -> dict[str, float]:
    """Accuracy, ranking and calibration of predicted customer value against the holdout.

    Parameters
    ----------
    actual, predicted
        Realised holdout value and predicted value per customer (finite, same length).

    Returns
    -------
    dict[str, float]
        * ``rmse``, ``mae``: errors per customer;
        * ``gini``: normalized Gini (1 = perfect ranking, 0 = random; NaN when the total actual
          value is not positive or all actual values are equal);
        * ``spearman``: rank correlation (NaN when either side is constant);
        * ``top10_share``, ``top20_share``: share of total actual value earned by the top 10 % /
          20 % of customers by predicted value, interpolated between whole customers (NaN when
          the total is not positive); ``top10_lift``, ``top20_lift``: share / fraction;
        * ``decile_mape``: mean relative error of the mean prediction in predicted deciles
          (bins of :func:`decile_table`; bins with mean actual 0 are skipped; NaN if none left);
        * ``decile_wape``: the same errors weighted by |mean actual| (sum of absolute errors
          over the sum of |mean actual|), robust to bins whose mean is near 0;
        * ``mean_predicted``, ``mean_actual``.
    """
    actual, predicted = _as_pair(("actual", "predicted"), actual, predicted)
    error = predicted - actual
    captured = _captured(actual, predicted)
    out = {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "gini": _normalized_gini(actual, predicted),
        "spearman": _spearman(actual, predicted),
    }
    for name, fraction in TOP_FRACTIONS.items():
        out[f"{name}_share"] = _share_at(captured, fraction)
    for name, fraction in TOP_FRACTIONS.items():
        out[f"{name}_lift"] = out[f"{name}_share"] / fraction
    deciles = decile_table(actual, predicted)
    out["decile_mape"] = _decile_mape(deciles)
    out["decile_wape"] = _decile_wape(deciles)
    out["mean_predicted"] = float(predicted.mean())
    out["mean_actual"] = float(actual.mean())
    return out


def gain_curve(actual, predicted, points: int = 101) -> pd.DataFrame:
    """Cumulative share of total actual value captured by the top customers by predicted value.

    Pass ``predicted=actual`` for the oracle curve.  Tied predictions are averaged (see the
    module docstring) and the curve is interpolated linearly between whole customers.

    Parameters
    ----------
    actual, predicted
        Realised holdout value and predicted value per customer.
    points
        Number of evenly spaced customer shares from 0 to 1 (an integer >= 2).

    Returns
    -------
    pd.DataFrame
        ``share_of_customers`` (0..1) and ``share_of_value`` (NaN throughout when the total
        actual value is not positive).
    """
    actual, predicted = _as_pair(("actual", "predicted"), actual, predicted)
    grid = np.linspace(0.0, 1.0, _check_int("points", points, 2))
    captured = _captured(actual, predicted)
    if captured is None:
        value = np.full(len(grid), np.nan)
    else:
        value = np.interp(grid, np.linspace(0.0, 1.0, len(captured)), captured)
    return pd.DataFrame({"share_of_customers": grid, "share_of_value": value})


# --------------------------------------------------------------------------------------------
# transaction-count metrics
# --------------------------------------------------------------------------------------------


def transaction_metrics(actual_count, predicted_count) -> dict[str, float]:
    """Totals, errors and rank correlation of predicted holdout transaction counts.

    Parameters
    ----------
    actual_count, predicted_count
        Realised and predicted number of holdout transactions per customer (finite, >= 0).

    Returns
    -------
    dict[str, float]
        ``tx_actual_total``, ``tx_predicted_total``, ``tx_total_ratio`` (predicted / actual
        total; NaN when the actual total is 0), ``tx_mae``, ``tx_rmse`` and ``tx_spearman``
        (NaN when either side is constant).
    """
    actual, predicted = _as_pair(("actual_count", "predicted_count"), actual_count, predicted_count)
    _non_negative("actual_count", actual)
    _non_negative("predicted_count", predicted)
    actual_total, predicted_total = float(actual.sum()), float(predicted.sum())
    error = predicted - actual
    return {
        "tx_actual_total": actual_total,
        "tx_predicted_total": predicted_total,
        "tx_total_ratio": predicted_total / actual_total if actual_total > 0 else np.nan,
        "tx_mae": float(np.mean(np.abs(error))),
        "tx_rmse": float(np.sqrt(np.mean(error**2))),
        "tx_spearman": _spearman(actual, predicted),
    }


def transactions_by_frequency(
    frequency, actual_count, predicted_count, max_frequency: int = 7
) -> pd.DataFrame:
    """Mean actual and predicted holdout transactions by calibration repeat frequency.

    The conditional-expectation check of Fader, Hardie & Lee (2005), Fig. 4: customers are
    grouped by their calibration-period repeat frequency ``0, 1, ..., max_frequency - 1``, and
    the last group ``"<max_frequency>+"`` pools everyone with ``max_frequency`` or more.

    Parameters
    ----------
    frequency
        Calibration repeat transactions per customer (whole numbers >= 0).
    actual_count, predicted_count
        Realised and predicted holdout transactions per customer (finite, >= 0).
    max_frequency
        First frequency pooled into the last group (an integer >= 0).

    Returns
    -------
    pd.DataFrame
        ``max_frequency + 1`` rows, always all groups: ``frequency`` (string labels
        ``"0"``, ``"1"``, ..., ``"7+"``), ``n``, ``mean_actual`` and ``mean_predicted`` (NaN
        for an empty group).
    """
    frequency, actual = _as_pair(("frequency", "actual_count"), frequency, actual_count)
    _, predicted = _as_pair(("frequency", "predicted_count"), frequency, predicted_count)
    for name, values in (
        ("frequency", frequency),
        ("actual_count", actual),
        ("predicted_count", predicted),
    ):
        _non_negative(name, values)
    fractional = frequency != np.round(frequency)
    if fractional.any():
        raise ValueError(
            f"frequency has {int(fractional.sum())} non-integer values (first at position "
            f"{int(np.flatnonzero(fractional)[0])}); repeat frequencies must be whole numbers"
        )
    max_frequency = _check_int("max_frequency", max_frequency, 0)
    labels = [str(f) for f in range(max_frequency)] + [f"{max_frequency}+"]
    group = np.minimum(frequency, max_frequency).astype(np.int64)
    table = (
        pd.DataFrame({"group": group, "actual": actual, "predicted": predicted})
        .groupby("group")
        .agg(
            n=("actual", "size"),
            mean_actual=("actual", "mean"),
            mean_predicted=("predicted", "mean"),
        )
        .reindex(range(max_frequency + 1))
    )
    table["n"] = table["n"].fillna(0).astype(np.int64)
    table.insert(0, "frequency", labels)
    return table.reset_index(drop=True)
