"""Modelling on millions of customers (issue 10): every guard names its config key, every
sampling option is seeded and reproducible, and with sampling off the results are the old
ones (tierlab.segmentation, tierlab.explain, tierlab.report.bootstrap; docs/modelling_at_scale.md).
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state

from tierlab.config import compose
from tierlab.explain.stage import ExplainResult, explain_method, surrogate_rows
from tierlab.features.dictionary import Indicator
from tierlab.report import bootstrap as B
from tierlab.report.stage import run_bootstrap_stage
from tierlab.segmentation import metrics as M
from tierlab.segmentation import stage as seg_stage
from tierlab.segmentation.methods import SEED_MAX, GMMSegmenter, KMeansSegmenter, RFMSegmenter
from tierlab.segmentation.tiers import assign_tiers

CENTERS = 6.0 * np.array([[0, 0, 0], [1, 1, 0], [0, 1, 1]])


def blobs(n: int, seed: int = 0, sd: float = 1.0) -> pd.DataFrame:
    """Three spherical clusters (sd ``sd``) in three indicators, with a customer id column."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n)
    Z = CENTERS[truth] + sd * rng.standard_normal((n, 3))
    X = pd.DataFrame(Z, columns=["x0", "x1", "x2"])
    return X.assign(customer_id=np.arange(n), truth=truth)


def gmm(**params) -> GMMSegmenter:
    base = dict(features=["x0", "x1", "x2"], log1p=None, k_range=[2, 4], random_state=3)
    return GMMSegmenter(**{**base, **params})


# --------------------------------------------------------------------------------------------
# Gaussian mixture: fit_sample and max_customers
# --------------------------------------------------------------------------------------------


def test_gmm_without_sample_is_the_plain_mixture_on_every_customer():
    X = blobs(600)
    fitted = gmm(k_range=[3, 3]).fit(X)
    Z = fitted.transform_.transform(X)
    seed = int(check_random_state(3).randint(SEED_MAX))
    plain = GaussianMixture(3, reg_covar=1e-4, random_state=seed).fit(Z)
    np.testing.assert_array_equal(fitted.labels_, plain.predict(Z))
    assert fitted.n_fit_rows_ == len(X)
    # a sample at least as large as the data is no sample
    same = gmm(fit_sample=len(X), max_customers=10).fit(X)
    np.testing.assert_array_equal(same.labels_, gmm().fit(X).labels_)
    assert same.selection_.equals(gmm().fit(X).selection_)


def test_gmm_fit_sample_is_seeded_assigns_everyone_and_recovers_the_clusters():
    X = blobs(3000)
    first = gmm(fit_sample=500, max_customers=1000).fit(X)
    again = gmm(fit_sample=500, max_customers=1000).fit(X)
    other = gmm(fit_sample=500, random_state=4).fit(X)
    assert first.n_fit_rows_ == 500 and len(first.labels_) == len(X)
    np.testing.assert_array_equal(first.labels_, again.labels_)
    assert first.selection_.equals(again.selection_)
    assert not first.selection_["score"].equals(other.selection_["score"])
    assert first.n_clusters_ == 3
    assert adjusted_rand_score(X["truth"], first.labels_) > 0.95
    np.testing.assert_array_equal(first.predict(X), first.labels_)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"max_customers": 100}, r"n_customers=600 is above max_customers=100.*set fit_sample"),
        ({"fit_sample": 1}, r"fit_sample=1; expected an integer >= 2"),
        ({"max_customers": 0}, r"max_customers=0; expected an integer >= 1"),
    ],
)
def test_gmm_guards_name_the_setting(params, match):
    with pytest.raises(ValueError, match=match):
        gmm(**params).fit(blobs(600))


def test_the_stage_names_the_method_config_node_of_a_guard(tmp_path):
    cfg = compose(["segmentation=gmm"], output_dir=tmp_path)
    node = cfg.segmentation.methods.gmm
    node.features, node.log1p, node.max_customers = ["x0", "x1", "x2"], None, 100
    X = blobs(600).set_index("customer_id")
    value, space = X["x0"], X[["x0", "x1", "x2"]].to_numpy()
    with pytest.raises(ValueError, match=r"^segmentation\.methods\.gmm: GMMSegmenter: .*"):
        seg_stage.evaluate("gmm", node, X, space, value, None, None, cfg.segmentation, 0)
    node.fit_sample = 200  # the sample lifts the guard
    result = seg_stage.evaluate("gmm", node, X, space, value, None, None, cfg.segmentation, 0)
    assert result.estimator.n_fit_rows_ == 200 and len(result.tiers) == 600


def test_default_configs_keep_gmm_unsampled_and_scale_leaves_it_out(tmp_path):
    node = compose(["segmentation=benchmark"], output_dir=tmp_path).segmentation.methods.gmm
    assert node.fit_sample is None and node.max_customers >= 20_000  # the default run's bank
    scale = compose(["experiment=scale"], output_dir=tmp_path)
    assert set(scale.segmentation.methods) == {"value_quantile", "rfm", "minibatch_kmeans"}
    assert scale.segmentation.stability_sample is not None
    assert scale.report.bootstrap.max_customers is not None
    assert scale.explain.surrogate_sample is not None


# --------------------------------------------------------------------------------------------
# stability refits on a sample
# --------------------------------------------------------------------------------------------


def _old_stability(estimator, X, n_bootstrap, seed):
    """The stability metric as it was before ``stability_sample`` (full-size resamples)."""
    rng = np.random.default_rng(seed)
    scores = []
    for b in range(n_bootstrap):
        rows = rng.integers(0, len(X), len(X))
        refit = M.fixed_k(estimator)
        refit.set_params(random_state=seed + 1 + b)
        refit.fit(X.iloc[rows])
        scores.append(adjusted_rand_score(estimator.labels_, refit.predict(X)))
    return float(np.mean(scores))


def test_stability_without_sample_is_the_old_metric_and_the_sample_is_seeded():
    X = blobs(800, seed=1, sd=2.5)[["x0", "x1", "x2"]]  # overlapping: refits differ
    fitted = KMeansSegmenter(log1p=None, n_clusters=3, n_init=1, random_state=0).fit(X)
    old = _old_stability(fitted, X, 3, 5)
    assert M.stability(fitted, X, 3, 5) == old
    assert M.stability(fitted, X, 3, 5, sample_size=None) == old
    assert M.stability(fitted, X, 3, 5, sample_size=10 * len(X)) == old
    sampled = M.stability(fitted, X, 3, 5, sample_size=200)
    assert sampled == M.stability(fitted, X, 3, 5, sample_size=200)
    assert sampled != M.stability(fitted, X, 3, 6, sample_size=200)
    assert 0.5 < sampled < 1


def test_stability_sample_refits_on_that_many_customers():
    X = blobs(500, seed=2)[["x0", "x1", "x2"]]
    fitted = RFMSegmenter(recency="x0", frequency="x1", monetary="x2", bins=3).fit(X)
    seen = []

    class Spy(RFMSegmenter):
        def fit(self, X, y=None):
            seen.append(len(X))
            return super().fit(X, y)

    spy = Spy(**fitted.get_params()).fit(X)
    seen.clear()
    M.stability(spy, X, 2, 0, sample_size=120)
    assert seen == [120, 120]
    with pytest.raises(ValueError, match=r"segmentation\.stability_sample=1 should be"):
        M.stability(clone(fitted).fit(X), X, 2, 0, sample_size=1)


def test_assign_tiers_is_the_mapping_of_every_label():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, 1000)
    mapping = {c: t for c, t in zip(range(6), [3, 1, 6, 2, 5, 4], strict=True)}
    expected = np.array([mapping[int(c)] for c in labels], dtype=np.int64)
    np.testing.assert_array_equal(assign_tiers(labels, mapping), expected)
    assert assign_tiers(np.array([], dtype=np.int64), mapping).shape == (0,)
    with pytest.raises(KeyError):
        assign_tiers(np.array([0, 7]), mapping)


# --------------------------------------------------------------------------------------------
# bootstrap: m-out-of-n resamples above report.bootstrap.max_customers
# --------------------------------------------------------------------------------------------


def test_customer_subsample_is_seeded_and_off_below_the_limit():
    assert B.customer_subsample(5000, None, 1) is None
    assert B.customer_subsample(5000, 5000, 1) is None
    rows = B.customer_subsample(5000, 1000, 1)
    assert len(rows) == 1000 == len(np.unique(rows)) and (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(rows, B.customer_subsample(5000, 1000, 1))
    assert not np.array_equal(rows, B.customer_subsample(5000, 1000, 2))
    for bad in (50, 1.5, True):
        with pytest.raises(ValueError, match=r"report\.bootstrap\.max_customers="):
            B.customer_subsample(5000, bad, 1)


def test_m_out_of_n_intervals_keep_the_full_estimates_and_the_full_width():
    rng = np.random.default_rng(0)
    n = 20_000
    actual = np.round(rng.gamma(0.4, 300, n) - 40, 0)
    predicted = 0.6 * actual + rng.normal(0, 80, n)
    full = {"model": B.clv_scorer(actual, predicted, scale=True)}
    exact, _ = B.intervals(full, n, 300, 0.9, 3, B.CLV_METRICS)
    rows = B.customer_subsample(n, 2000, 3)
    sub = {"model": B.clv_scorer(actual[rows], predicted[rows], scale=True)}
    estimates = {"model": full["model"](np.ones(n))}
    approx, _ = B.intervals(sub, 2000, 300, 0.9, 3, B.CLV_METRICS, population=(estimates, n))
    np.testing.assert_allclose(approx["estimate"], exact["estimate"], rtol=1e-12)
    assert (approx["n_customers"] == n).all() and (approx["resampled_customers"] == 2000).all()
    assert (exact["resampled_customers"] == n).all()
    width = (approx["ci_high"] - approx["ci_low"]) / (exact["ci_high"] - exact["ci_low"])
    assert width.between(0.6, 1.6).all(), width.tolist()
    assert (approx["ci_low"] <= approx["estimate"]).all()
    assert (approx["estimate"] <= approx["ci_high"]).all()


def test_a_population_equal_to_the_sample_changes_nothing():
    rng = np.random.default_rng(1)
    actual = rng.gamma(0.5, 200, 1500)
    scorers = {
        "a": B.clv_scorer(actual, actual + rng.normal(0, 50, 1500), scale=True),
        "b": B.clv_scorer(actual, actual + rng.normal(0, 300, 1500), scale=True),
    }
    plain, plain_diff = B.intervals(scorers, 1500, 100, 0.95, 2, B.CLV_METRICS)
    estimates = {name: scorer(np.ones(1500)) for name, scorer in scorers.items()}
    same, same_diff = B.intervals(
        scorers, 1500, 100, 0.95, 2, B.CLV_METRICS, population=(estimates, 1500)
    )
    pd.testing.assert_frame_equal(plain, same, rtol=1e-12)
    pd.testing.assert_frame_equal(plain_diff, same_diff, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# explain: the tier surrogates on a sample
# --------------------------------------------------------------------------------------------


def test_surrogate_rows_are_seeded_and_off_below_the_sample():
    assert surrogate_rows(5000, None, 0) is None
    assert surrogate_rows(5000, 5000, 0) is None
    rows = surrogate_rows(5000, 800, 0)
    assert len(rows) == 800 == len(np.unique(rows)) and (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(rows, surrogate_rows(5000, 800, 0))
    assert not np.array_equal(rows, surrogate_rows(5000, 800, 1))
    for bad in (10, 2.5, True):
        with pytest.raises(ValueError, match=r"explain\.surrogate_sample="):
            surrogate_rows(5000, bad, 0)


def _explain(X, tiers, tmp_path, sample):
    settings = OmegaConf.create(
        {
            "surrogate_sample": sample,
            "surrogate_test_share": 0.3,
            "tier_sample": 200,
            "surrogate_estimators": 20,
            "top_drivers": 3,
        }
    )
    dictionary = {c: Indicator(c, "rfm", c, "count", "test") for c in X.columns}
    segmentation = SimpleNamespace(methods={"m": SimpleNamespace(estimator=None)})
    result = ExplainResult({}, {}, {}, {})
    explain_method("m", X, tiers, segmentation, dictionary, settings, 0, 1, tmp_path, result)
    return result


def test_surrogate_sample_bounds_the_customers_the_surrogate_sees(tmp_path, caplog):
    X = blobs(3000, sd=1.5)[["x0", "x1", "x2"]]
    tiers = np.where(X["x0"] > 3, 1, 2)
    full = _explain(X, tiers, tmp_path, None)
    pd.testing.assert_frame_equal(
        full.tier_drivers["m"], _explain(X, tiers, tmp_path, 5000).tier_drivers["m"]
    )
    with caplog.at_level(logging.INFO, logger="tierlab.explain.stage"):
        sampled = _explain(X, tiers, tmp_path, 1000)
    assert "seeded sample of 1000 of 3000 customers (explain.surrogate_sample)" in caplog.text
    again = _explain(X, tiers, tmp_path, 1000)
    pd.testing.assert_frame_equal(sampled.tier_drivers["m"], again.tier_drivers["m"])
    assert sampled.metrics == again.metrics
    assert not sampled.tier_drivers["m"].equals(full.tier_drivers["m"])
    assert sampled.metrics["explain/m/surrogate_accuracy"] > 0.95
    # the held-out 30 % of the sample: 300 customers, of whom tier_sample=200 are explained
    assert sampled.tier_drivers["m"].groupby("tier")["n_customers"].first().sum() == 200


def test_bootstrap_stage_subsamples_above_max_customers_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(mlflow, "log_artifacts", lambda *args, **kwargs: None)
    rng = np.random.default_rng(4)
    n = 3000
    ids = np.arange(n)
    value = np.round(rng.gamma(0.4, 300, n) - 40, 0)
    targets = pd.DataFrame({"customer_id": ids, "holdout_value": value})
    features = SimpleNamespace(targets=targets)
    tiers = pd.DataFrame({"customer_id": ids, "q": np.where(value > 100, 1, 2)})
    segmentation = SimpleNamespace(tiers=tiers)
    predictions = pd.DataFrame(
        {"customer_id": ids, "a": value + rng.normal(0, 50, n), "b": value + rng.normal(0, 300, n)}
    )
    models = {m: SimpleNamespace(metrics={"rmse": 1.0}) for m in ("a", "b")}
    clv = SimpleNamespace(predictions=predictions, models=models)

    def intervals(max_customers):
        cfg = compose(
            ["report.bootstrap.n_resamples=100", f"report.bootstrap.max_customers={max_customers}"],
            output_dir=tmp_path,
        )
        return run_bootstrap_stage(cfg, features, segmentation, clv, tmp_path).intervals

    full = intervals("null")
    with caplog.at_level(logging.INFO, logger="tierlab.report.stage"):
        sampled = intervals(500)
    assert "seeded subsample of 500 of 3000 customers (report.bootstrap.max_customers)" in (
        caplog.text
    )
    np.testing.assert_allclose(sampled["estimate"], full["estimate"], rtol=1e-12)
    assert (sampled["resampled_customers"] == 500).all() and (sampled["n_customers"] == n).all()
    assert (full["resampled_customers"] == n).all()
    pd.testing.assert_frame_equal(sampled, intervals(500))
    assert intervals(n).equals(full)  # a limit at or above n is no subsample
