"""Bootstrap confidence intervals for the headline holdout metrics.

Customers are resampled with replacement ``n_resamples`` times (seeded).  Every CLV model and
every segmentation method is scored on the *same* resamples, so the difference between two of
them is a paired bootstrap: its interval says whether the better one is better beyond the luck
of which customers happened to be in the holdout.  Intervals are percentile intervals.

A resample is represented by its multiplicities ``w`` (how often each customer was drawn).
Every metric below is computed from ``w`` in O(n) with the orderings sorted once, and equals the
metric of :mod:`tierlab.clv.metrics` or :mod:`tierlab.segmentation.metrics` on the materialised
resample (tested), with the same tie and NaN rules: tied values share their average rank, a
block of customers tied in predicted value shares its mean actual value, and shares of a
non-positive total are NaN.

Only the holdout sampling is resampled: models are not refitted, so the intervals do not
include the variance of training.

On millions of customers (``report.bootstrap.max_customers``) the resamples are an ordinary
bootstrap of one seeded subsample of ``m`` customers, rescaled by ``sqrt(m / n)``: the point
estimates stay those of all customers, and each resample's metric is mapped back to the scale
of ``n`` customers, ``theta_n + sqrt(m / n) * (theta*_m - theta_m)`` (the rescaling of the
m-out-of-n bootstrap of Bickel, Götze & van Zwet 1997, which draws m afresh from all n each
time; here one subsample serves every resample so that the cost stays that of m customers).
It assumes the spread shrinks like ``1 / sqrt(n)``; it holds well for the rank metrics
(Spearman, Gini, top shares), but RMSE and MAE on heavy-tailed values depend on which
customers the subsample caught: a review measured interval widths between 0.7x and 1.7x of the
full bootstrap's for three subsample seeds at m/n = 1/10.  The tables say on how many customers
the resamples were drawn.

References
----------
Bickel, P. J., Götze, F. & van Zwet, W. R. (1997). Resampling fewer than n observations: gains,
losses, and remedies for losses. *Statistica Sinica* 7, 1-31.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from tierlab.sampling import check_sample_size, seeded_rows

#: Headline metrics and whether higher is better.
CLV_METRICS = {
    "spearman": True,
    "gini": True,
    "top20_share": True,
    "rmse": False,
    "mae": False,
}
#: Lift and top-tier share favour methods with a small top tier, so they get intervals but no
#: "best": only Spearman ranks methods whose tiers differ in number and size.
SEGMENTATION_METRICS = {"spearman": True, "top_tier_lift": None, "value_share_tier1": None}
#: Metrics on a scale the model may not share with the target (dropped for "ranks only").
SCALE_METRICS = ("rmse", "mae")
BOUNDS = ("ci_low", "ci_high")
DIFFERENCE_COLUMNS = [
    "metric",
    "higher_is_better",
    "best",
    "runner_up",
    "difference",
    "ci_low",
    "ci_high",
    "share_best_ahead",
]

#: A function of the resample multiplicities ``w`` returning ``{metric: value}``.
Scorer = Callable[[np.ndarray], dict[str, float]]


class Groups:
    """Tie groups of ``values`` in ascending order, to rank any resample in O(n)."""

    def __init__(self, values: np.ndarray):
        order = np.argsort(values, kind="stable")
        ordered = values[order]
        starts = np.r_[True, ordered[1:] != ordered[:-1]]
        self.group = np.empty(len(values), dtype=np.int64)
        self.group[order] = np.cumsum(starts) - 1
        self.n_groups = int(self.group.max()) + 1 if len(values) else 0

    def weights(self, w: np.ndarray) -> np.ndarray:
        return np.bincount(self.group, weights=w, minlength=self.n_groups)

    def ranks(self, w: np.ndarray) -> np.ndarray:
        """Average rank (1-based) of each customer in the resample ``w``."""
        size = self.weights(w)
        return (np.cumsum(size) - size + (size + 1) / 2)[self.group]


def weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Pearson correlation of the resample; NaN when either side is constant in it."""
    drawn = w > 0
    if np.ptp(x[drawn]) == 0 or np.ptp(y[drawn]) == 0:
        return np.nan
    total = w.sum()
    dx = x - (w * x).sum() / total
    dy = y - (w * y).sum() / total
    vx, vy = (w * dx * dx).sum(), (w * dy * dy).sum()
    return float((w * dx * dy).sum() / np.sqrt(vx * vy))


class Gain:
    """Gain curve of ``actual`` ordered by ``score`` (highest first, ties as one block)."""

    def __init__(self, score: np.ndarray, actual: np.ndarray):
        self.groups = Groups(-score)  # group 0 = highest score
        self.actual = actual

    def blocks(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per block of the resample: customers, value, customers ranked before it."""
        size = self.groups.weights(w)
        value = np.bincount(self.groups.group, weights=w * self.actual, minlength=len(size))
        kept = size > 0
        size, value = size[kept], value[kept]
        return size, value, np.cumsum(size) - size

    @staticmethod
    def gini(size: np.ndarray, value: np.ndarray, before: np.ndarray) -> float:
        """Gini of the gain curve: mean captured share over positions - (n + 1) / 2n."""
        total, n = value.sum(), size.sum()
        if total <= 0:
            return np.nan
        area = (value * (n + 1 - before - (size + 1) / 2)).sum()
        return float(area / total / n - (n + 1) / (2 * n))

    @staticmethod
    def share_at(size: np.ndarray, value: np.ndarray, before: np.ndarray, fraction: float) -> float:
        """Share of value captured by the top ``fraction`` of customers (interpolated)."""
        total = value.sum()
        if total <= 0:
            return np.nan
        position = fraction * size.sum()
        block = min(int(np.searchsorted(before + size, position, side="left")), len(size) - 1)
        captured = value[:block].sum() + value[block] / size[block] * (position - before[block])
        return float(captured / total)


def clv_scorer(actual: np.ndarray, predicted: np.ndarray, scale: bool) -> Scorer:
    """The CLV headline metrics of a resample ``w``; ``scale=False`` drops RMSE and MAE (a
    model that predicts another unit than the target: ranks only)."""
    by_prediction, by_actual = Gain(predicted, actual), Gain(actual, actual)
    rank_actual, rank_predicted = Groups(actual), Groups(predicted)
    error = predicted - actual

    def score(w: np.ndarray) -> dict[str, float]:
        blocks = by_prediction.blocks(w)
        constant = np.ptp(actual[w > 0]) == 0  # the oracle's Gini is 0: undefined
        oracle = np.nan if constant else Gain.gini(*by_actual.blocks(w))
        out = {
            "spearman": weighted_pearson(rank_actual.ranks(w), rank_predicted.ranks(w), w),
            "gini": Gain.gini(*blocks) / oracle if np.isfinite(oracle) else np.nan,
            "top20_share": Gain.share_at(*blocks, 0.20),
        }
        if scale:
            out["rmse"] = float(np.sqrt((w * error * error).sum() / w.sum()))
            out["mae"] = float((w * np.abs(error)).sum() / w.sum())
        return out

    return score


def segmentation_scorer(tiers: np.ndarray, holdout_value: np.ndarray) -> Scorer:
    """The segmentation headline metrics of a resample ``w`` (tiers fixed)."""
    value = np.nan_to_num(np.asarray(holdout_value, dtype="float64"))
    top = tiers == 1
    rank_tier, rank_value = Groups(-tiers.astype("float64")), Groups(value)

    def score(w: np.ndarray) -> dict[str, float]:
        total, covered = (w * value).sum(), (w * top).sum() / w.sum()
        # no tier-1 customer drawn: the stage has no tier 1 and so no share (NaN)
        share = float((w * value * top).sum() / total) if total > 0 and covered > 0 else np.nan
        return {
            "spearman": weighted_pearson(rank_tier.ranks(w), rank_value.ranks(w), w),
            "top_tier_lift": share / covered if covered > 0 else np.nan,
            "value_share_tier1": share,
        }

    return score


def customer_subsample(n: int, max_customers: int | None, seed: int) -> np.ndarray | None:
    """Sorted rows of the seeded subsample the resamples draw from when ``n`` is above
    ``max_customers`` (``report.bootstrap.max_customers``), else ``None`` (all customers)."""
    setting = "report.bootstrap.max_customers"
    check_sample_size(max_customers, setting, 100, "resample every customer")
    # a stream of its own, so the resamples of the subsample do not depend on this draw
    return seeded_rows(n, max_customers, [seed, 1])


def resamples(n: int, n_resamples: int, seed: int):
    """Multiplicity vectors of ``n_resamples`` bootstrap resamples of ``n`` customers."""
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        yield np.bincount(rng.integers(0, n, n), minlength=n).astype("float64")


def intervals(
    scorers: Mapping[str, Scorer],
    n: int,
    n_resamples: int,
    confidence: float,
    seed: int,
    higher_is_better: Mapping[str, bool | None],
    contenders: list[str] | None = None,
    progress: Callable | None = None,
    population: tuple[Mapping[str, dict[str, float]], int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Point estimates, percentile intervals and paired differences of the best two.

    Parameters
    ----------
    scorers
        ``{name: scorer}``, e.g. one entry per CLV model; all share the same resamples.
    n, n_resamples, confidence, seed
        Customers, resamples, interval level (e.g. 0.95) and the seed of the resampling.
    higher_is_better
        Direction of each metric; ``None`` = no direction (no difference is computed).
    contenders
        Names that compete for "best" (default: all); reference rows are left out.
    progress
        Optional wrapper of the resample iterator (a progress bar).
    population
        ``(estimates, n_population)`` when the scorers see a subsample of ``n`` of
        ``n_population`` customers (:func:`customer_subsample`): ``estimates`` are the metrics
        of all customers (``{name: scorer(ones)}`` of scorers built on all of them), and every
        resample's metric is rescaled to ``n_population`` (subsample bootstrap, module
        docstring).  ``None``: the scorers see every customer.

    Returns
    -------
    (intervals, differences)
        ``intervals``: one row per name and metric (``estimate``, ``ci_low``, ``ci_high``,
        ``n_customers`` = customers of the estimate, ``resampled_customers`` = customers the
        resamples were drawn from).
        ``differences``: per directed metric, the best and the runner-up by point estimate,
        ``difference`` = best - runner-up with its interval, and ``share_best_ahead``, the
        share of resamples in which the best is still ahead.  An interval is NaN when more
        than 10 % of the resamples leave the metric undefined.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"report.bootstrap.confidence={confidence} should be in (0, 1)")
    if n_resamples < 1:
        raise ValueError(f"report.bootstrap.n_resamples={n_resamples} should be >= 1")
    estimate = {name: scorer(np.ones(n)) for name, scorer in scorers.items()}
    draws = {(s, m): np.empty(n_resamples) for s, metrics in estimate.items() for m in metrics}
    iterator = resamples(n, n_resamples, seed)
    for b, w in enumerate(progress(iterator) if progress else iterator):
        for name, scorer in scorers.items():
            for metric, value in scorer(w).items():
                draws[name, metric][b] = value
    n_population = n
    if population is not None:
        full, n_population = population
        shrink = np.sqrt(n / n_population)
        for (s, m), d in draws.items():  # theta_N + sqrt(m / N) (theta*_m - theta_m)
            draws[s, m] = full[s][m] + shrink * (d - estimate[s][m])
        estimate = {s: dict(full[s]) for s in estimate}
    alpha = (1 - confidence) / 2

    def bounds(values: np.ndarray) -> tuple[float, float]:
        finite = values[np.isfinite(values)]
        if len(finite) == 0 or len(finite) < 0.9 * len(values):
            return np.nan, np.nan
        low, high = np.quantile(finite, [alpha, 1 - alpha])
        return float(low), float(high)

    rows = [
        {
            "name": s,
            "metric": m,
            "estimate": estimate[s][m],
            **dict(zip(BOUNDS, bounds(d), strict=True)),
        }
        for (s, m), d in draws.items()
    ]
    table = pd.DataFrame(rows, columns=["name", "metric", "estimate", *BOUNDS])
    table["n_resamples"], table["confidence"] = n_resamples, confidence
    table["n_customers"], table["resampled_customers"] = n_population, n

    competing = list(scorers) if contenders is None else contenders
    diff_rows = []
    for metric, higher in higher_is_better.items():
        ranked = [s for s in competing if np.isfinite(estimate[s].get(metric, np.nan))]
        if higher is None or len(ranked) < 2:
            continue
        ranked.sort(key=lambda s: -estimate[s][metric] if higher else estimate[s][metric])
        best, second = ranked[:2]
        delta = draws[best, metric] - draws[second, metric]
        finite = delta[np.isfinite(delta)]
        diff_rows.append(
            {
                "metric": metric,
                "higher_is_better": higher,
                "best": best,
                "runner_up": second,
                "difference": estimate[best][metric] - estimate[second][metric],
                **dict(zip(BOUNDS, bounds(delta), strict=True)),
                "share_best_ahead": float(np.mean(finite > 0 if higher else finite < 0))
                if len(finite)
                else np.nan,
            }
        )
    return table, pd.DataFrame(diff_rows, columns=DIFFERENCE_COLUMNS)
