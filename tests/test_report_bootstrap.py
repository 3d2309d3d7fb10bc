"""Bootstrap intervals: the O(n) weighted metrics equal the stage metrics on the materialised
resample, and the paired differences tell a real gap from none."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tierlab.clv.metrics import value_metrics
from tierlab.report import bootstrap as B
from tierlab.segmentation.metrics import business_metrics


def bank_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Skewed values with losses and many ties (rounded), and a noisy prediction of them."""
    rng = np.random.default_rng(seed)
    actual = np.round(rng.gamma(0.4, 300, n) - 40, 0)
    predicted = np.round(0.6 * actual + rng.normal(0, 80, n), -1)
    return actual, predicted


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clv_scorer_equals_value_metrics_on_the_materialised_resample(seed):
    actual, predicted = bank_like(1500, seed)
    score = B.clv_scorer(actual, predicted, scale=True)
    rng = np.random.default_rng(seed + 10)
    for _ in range(4):
        drawn = rng.integers(0, len(actual), len(actual))
        w = np.bincount(drawn, minlength=len(actual)).astype("float64")
        expected = value_metrics(actual[drawn], predicted[drawn])
        got = score(w)
        assert set(got) == set(B.CLV_METRICS)
        for metric, value in got.items():
            assert value == pytest.approx(expected[metric], rel=1e-10, abs=1e-12), metric


def test_point_estimate_is_the_stage_metric_and_ranks_only_drops_scale():
    actual, predicted = bank_like(800, 5)
    expected = value_metrics(actual, predicted)
    got = B.clv_scorer(actual, predicted, scale=False)(np.ones(len(actual)))
    assert set(got) == {"spearman", "gini", "top20_share"}
    for metric, value in got.items():
        assert value == pytest.approx(expected[metric], rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_segmentation_scorer_equals_business_metrics_on_the_materialised_resample(seed):
    actual, _ = bank_like(1200, seed)
    rng = np.random.default_rng(seed)
    tiers = rng.integers(1, 5, len(actual))
    score = B.segmentation_scorer(tiers, actual)
    for _ in range(4):
        drawn = rng.integers(0, len(actual), len(actual))
        w = np.bincount(drawn, minlength=len(actual)).astype("float64")
        expected = business_metrics(tiers[drawn], actual[drawn])
        for metric, value in score(w).items():
            assert value == pytest.approx(expected[metric], rel=1e-10), metric


def test_undefined_metrics_are_nan_like_the_stage_metrics():
    actual = np.array([-5.0, -1.0, 0.0, 2.0])  # total value <= 0: shares and Gini undefined
    got = B.clv_scorer(actual, np.array([1.0, 2.0, 3.0, 4.0]), scale=True)(np.ones(4))
    assert np.isnan(got["gini"]) and np.isnan(got["top20_share"])
    assert got["spearman"] == pytest.approx(1.0)
    constant = B.clv_scorer(actual, np.zeros(4), scale=True)(np.ones(4))
    assert np.isnan(constant["spearman"])


def test_intervals_are_seeded_and_cover_the_estimate():
    actual, predicted = bank_like(2000, 3)
    scorers = {"model": B.clv_scorer(actual, predicted, scale=True)}
    first, _ = B.intervals(scorers, len(actual), 200, 0.9, 7, B.CLV_METRICS)
    again, _ = B.intervals(scorers, len(actual), 200, 0.9, 7, B.CLV_METRICS)
    other, _ = B.intervals(scorers, len(actual), 200, 0.9, 8, B.CLV_METRICS)
    assert first.equals(again)
    assert not first[["ci_low", "ci_high"]].equals(other[["ci_low", "ci_high"]])
    assert (first["ci_low"] <= first["estimate"]).all()
    assert (first["estimate"] <= first["ci_high"]).all()
    assert (first["ci_high"] - first["ci_low"] > 0).all()


def test_paired_difference_separates_a_real_gap_and_not_a_tie():
    rng = np.random.default_rng(0)
    n = 3000
    actual = rng.gamma(0.5, 200, n)
    good = actual + rng.normal(0, 50, n)
    worse = actual + rng.normal(0, 400, n)
    twin = good.copy()
    scorers = {
        "good": B.clv_scorer(actual, good, scale=True),
        "worse": B.clv_scorer(actual, worse, scale=True),
    }
    _, diff = B.intervals(scorers, n, 300, 0.95, 1, B.CLV_METRICS)
    rmse = diff.set_index("metric").loc["rmse"]
    assert rmse["best"] == "good" and rmse["runner_up"] == "worse"
    assert rmse["ci_high"] < 0 and rmse["share_best_ahead"] == 1.0
    spearman = diff.set_index("metric").loc["spearman"]
    assert spearman["best"] == "good" and spearman["ci_low"] > 0

    tied = {"good": scorers["good"], "twin": B.clv_scorer(actual, twin, scale=True)}
    _, diff = B.intervals(tied, n, 100, 0.95, 1, B.CLV_METRICS)
    assert (diff["difference"] == 0).all()
    assert (diff["ci_low"] == 0).all() and (diff["ci_high"] == 0).all()


def test_reference_rows_do_not_compete_and_bad_settings_are_named():
    actual, predicted = bank_like(500, 1)
    scorers = {
        "model": B.clv_scorer(actual, predicted, scale=True),
        "truth": B.clv_scorer(actual, actual, scale=True),
        "other": B.clv_scorer(actual, predicted * 0.5, scale=True),
    }
    _, diff = B.intervals(scorers, 500, 50, 0.95, 1, B.CLV_METRICS, contenders=["model", "other"])
    assert "truth" not in set(diff["best"]) | set(diff["runner_up"])
    with pytest.raises(ValueError, match="report.bootstrap.confidence"):
        B.intervals(scorers, 500, 50, 1.5, 1, B.CLV_METRICS)
    with pytest.raises(ValueError, match="report.bootstrap.n_resamples"):
        B.intervals(scorers, 500, 0, 0.95, 1, B.CLV_METRICS)


def test_edge_resamples_follow_the_stage_nan_rules():
    # every drawn customer has the same holdout value: the oracle Gini is 0, Gini undefined
    score = B.clv_scorer(np.array([0.1, 0.1, 5.0]), np.array([0.0, 1.0, 2.0]), scale=True)
    drawn = np.array([0, 1, 1])
    assert np.isnan(score(np.bincount(drawn, minlength=3).astype(float))["gini"])
    assert np.isnan(value_metrics(np.array([0.1, 0.1, 0.1]), np.array([0.0, 1.0, 1.0]))["gini"])
    # no tier-1 customer drawn: the stage has no tier-1 share (NaN), nor a lift
    tiers = np.array([1, 2, 2, 3, 3, 3])
    value = np.array([9.0, 4.0, 3.0, 1.0, 1.0, 0.5])
    got = B.segmentation_scorer(tiers, value)(np.array([0, 1, 1, 1, 1, 1], dtype=float))
    expected = business_metrics(tiers[1:], value[1:])
    assert "value_share_tier1" not in expected
    assert np.isnan(got["value_share_tier1"]) and np.isnan(got["top_tier_lift"])
    assert got["spearman"] == pytest.approx(expected["spearman"])


def test_segmentation_has_a_best_only_for_spearman():
    # lift and top-tier share favour a small top tier: intervals, but no "best" method
    rng = np.random.default_rng(4)
    value = rng.gamma(0.5, 100, 1000)
    order = np.argsort(-value)
    small_top, big_top = np.full(1000, 2), np.full(1000, 2)
    small_top[order[:10]] = 1
    big_top[order[:300]] = 1
    scorers = {n: B.segmentation_scorer(t, value) for n, t in
               {"small": small_top, "big": big_top}.items()}  # fmt: skip
    table, diff = B.intervals(scorers, 1000, 50, 0.95, 1, B.SEGMENTATION_METRICS)
    assert list(diff["metric"]) == ["spearman"]
    assert set(table["metric"]) == {"spearman", "top_tier_lift", "value_share_tier1"}


class _Bundle:
    """The two bootstrap tables of a run, as :func:`findings_section` reads them."""

    def __init__(self, **tables):
        self.tables = tables

    def csv(self, name):
        return self.tables.get(name.removeprefix("bootstrap/").removesuffix(".csv"))


def test_findings_say_when_resamples_were_drawn_from_a_subsample():
    from tierlab.report.build import _interval_table, findings_section

    intervals = pd.DataFrame(
        {
            "kind": ["clv", "clv"],
            "name": ["a", "b"],
            "metric": ["spearman", "spearman"],
            "estimate": [0.8, 0.7],
            "ci_low": [0.79, 0.69],
            "ci_high": [0.81, 0.71],
            "n_resamples": [1000, 1000],
            "confidence": [0.95, 0.95],
            "n_customers": [900_000, 900_000],
            "resampled_customers": [100_000, 100_000],
        }
    )
    differences = pd.DataFrame(
        {
            "kind": ["clv"],
            "metric": ["spearman"],
            "higher_is_better": [True],
            "best": ["a"],
            "runner_up": ["b"],
            "difference": [0.1],
            "ci_low": [0.09],
            "ci_high": [0.11],
            "share_best_ahead": [1.0],
        }
    )
    _, blocks = findings_section(_Bundle(intervals=intervals, differences=differences))
    text = blocks[0].text
    assert "draws 100,000 customers from a seeded subsample of 100,000 of the 900,000" in text
    (table,) = _interval_table(_Bundle(intervals=intervals), "clv", "model")
    assert (
        "a seeded subsample of 100,000 of 900,000 customers rescaled by sqrt(m/n)" in table.caption
    )
    full = intervals.assign(resampled_customers=900_000)
    _, blocks = findings_section(_Bundle(intervals=full, differences=differences))
    assert "subsample" not in blocks[0].text
    (table,) = _interval_table(_Bundle(intervals=full), "clv", "model")
    assert "subsample" not in table.caption
