"""Segmentation methods: recovery of known clusters, hand-computed RFM scores and value tiers,
determinism, the indicator transform, the scikit-learn contract and errors that name the
culprit (tierlab.segmentation.methods, .rfm, .preprocess)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.utils import estimator_checks as checks

from tierlab.config import CONF_DIR
from tierlab.segmentation.methods import (
    GMMSegmenter,
    KMeansSegmenter,
    NotApplicable,
    RFMSegmenter,
    ValueQuantileSegmenter,
    elbow,
)
from tierlab.segmentation.preprocess import IndicatorTransform, signed_log1p

RFM_YAML = CONF_DIR / "segmentation" / "method" / "rfm.yaml"
# Corners of a regular tetrahedron, 11 standard deviations apart, every coordinate varying
# between the first three too (a coordinate that is pure noise would be blown up to unit
# variance by the standardisation and split).
CENTERS = 8.0 * np.array([[0, 0, 0], [1, 1, 0], [0, 1, 1], [1, 0, 1]])


def blobs(k: int, n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` customers drawn from ``k`` spherical Gaussians (unit sd) around CENTERS."""
    Z, truth = make_blobs(n_samples=n, centers=CENTERS[:k], cluster_std=1.0, random_state=seed)
    X = pd.DataFrame(Z, columns=["x0", "x1", "x2"])
    X.insert(0, "customer_id", np.arange(1, n + 1))
    return X, truth


def indicator_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Indicator-like customers: skewed money, counts, shares, a flag, some missing values."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60.0, n)
    recency[rng.random(n) < 0.1] = np.nan  # never active in the window
    liquid = rng.random(n)
    liquid[rng.random(n) < 0.2] = np.nan  # no balances
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "recency_days": recency,
            "frequency_12m": rng.poisson(6, n).astype(np.int64),
            "monetary_total_12m": rng.lognormal(6.0, 1.5, n),
            "aum_avg_12m": rng.lognormal(8.0, 1.5, n),
            "liquid_share": liquid,
            "n_products": rng.integers(1, 6, n),
            "has_mortgage": (rng.random(n) < 0.3).astype(np.int64),
            "profit_12m": rng.lognormal(4.0, 1.5, n) - 30.0,  # some customers cost money
            "region": rng.choice(["north", "south"], n),
        }
    )


# ---------------------------------------------------------------- recovery of known clusters

RECOVERY = {
    "kmeans_fixed_k": lambda k: KMeansSegmenter(n_clusters=k),
    "kmeans_silhouette": lambda k: KMeansSegmenter(k_range=[2, 8], criterion="silhouette"),
    "kmeans_silhouette_sample": lambda k: KMeansSegmenter(k_range=[2, 8], sample_size=120),
    "minibatch_elbow": lambda k: KMeansSegmenter(
        k_range=[2, 8], criterion="elbow", algorithm="minibatch", batch_size=64, n_init=3
    ),
    "gmm_bic": lambda k: GMMSegmenter(k_range=(2, 8)),
}


@pytest.mark.parametrize("true_k", [3, 4])
@pytest.mark.parametrize("method", sorted(RECOVERY))
def test_well_separated_clusters_are_recovered(method, true_k):
    X, truth = blobs(true_k)
    seg = RECOVERY[method](true_k).fit(X)
    assert seg.n_clusters_ == true_k
    assert adjusted_rand_score(truth, seg.labels_) > 0.9
    assert seg.labels_.dtype == np.int64 and len(seg.labels_) == len(X)
    assert set(seg.labels_) == set(range(true_k))
    assert list(seg.feature_names_in_) == ["x0", "x1", "x2"]  # customer_id is not a feature
    assert seg.embedding(X).shape == (len(X), 3)
    assert seg.segment_names_ is None
    if method == "kmeans_fixed_k":
        assert seg.selection_ is None and seg.selection_criterion_ is None
    else:
        assert list(seg.selection_.columns) == ["k", "score"]
        assert seg.selection_["k"].tolist() == list(range(2, 9))


def test_selection_curves_hold_the_criterion():
    X, _ = blobs(4)
    sil = KMeansSegmenter(k_range=[2, 8]).fit(X)
    assert sil.selection_criterion_ == "silhouette"
    assert sil.selection_.loc[sil.selection_["score"].idxmax(), "k"] == sil.n_clusters_
    gmm = GMMSegmenter(k_range=[2, 8]).fit(X)
    assert gmm.selection_criterion_ == "bic"
    assert gmm.selection_.loc[gmm.selection_["score"].idxmin(), "k"] == gmm.n_clusters_
    bic = gmm.selection_.set_index("k")["score"]
    assert bic[4] == pytest.approx(gmm.model_.bic(gmm.embedding(X)))
    el = KMeansSegmenter(k_range=[2, 8], criterion="elbow").fit(X)
    assert el.selection_criterion_ == "inertia"
    assert el.selection_["score"].is_monotonic_decreasing


def test_elbow_is_the_point_farthest_below_the_chord():
    # Normalised: x = 0, .25, .5, .75, 1; y = 1, .3, .1, .05, 0; chord y = 1 - x.
    # Gaps: 0, .45, .4, .2, 0 -> k = 3.
    assert elbow([2, 3, 4, 5, 6], [100.0, 30.0, 10.0, 5.0, 0.0]) == 3
    assert elbow([2, 3, 4], [3.0, 2.0, 1.0]) == 2  # a straight line has no elbow: smallest k


def test_gmm_k_range_of_one_value_fixes_k():
    X, _ = blobs(3)
    gmm = GMMSegmenter(k_range=[5, 5], covariance_type="diag").fit(X)
    assert gmm.n_clusters_ == 5 and len(gmm.selection_) == 1


# ---------------------------------------------------------------- RFM on a hand fixture


def rfm_customers() -> pd.DataFrame:
    """Ten customers whose scores follow from the quantile edges (5 bins):

    recency 1..10        -> edges 2.8, 4.6, 6.4, 8.2 -> R 5,5,4,4,3,3,2,2,1,1 (reversed)
    frequency {0x4,1,1,2,3,5,8} -> edges 0, 0.6, 1.4, 3.4 -> 0:1, 1:3, 2:4, 3:4, 5:5, 8:5
    monetary 10..100     -> edges 28, 46, 64, 82 -> 10,20:1, 30,40:2, 50,60:3, 70,80:4, 90,100:5
    """
    return pd.DataFrame(
        {
            "recency_days": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            "frequency_12m": np.array([8, 5, 1, 0, 2, 1, 0, 3, 0, 0], dtype=np.int64),
            "monetary_total_12m": [100.0, 90, 60, 10, 70, 20, 30, 80, 40, 50],
        },
        index=pd.Index(list("ABCDEFGHIJ"), name="customer_id"),
    )


RFM_SCORES = {
    "r": [5, 5, 4, 4, 3, 3, 2, 2, 1, 1],
    "f": [5, 5, 3, 1, 4, 3, 1, 4, 1, 1],
    "m": [5, 5, 3, 1, 4, 1, 2, 4, 2, 3],
}


def test_rfm_scores_follow_the_quantile_edges():
    X = rfm_customers()
    rfm = RFMSegmenter().fit(X)
    np.testing.assert_allclose(rfm.edges_["r"], [2.8, 4.6, 6.4, 8.2])
    np.testing.assert_allclose(rfm.edges_["f"], [0.0, 0.6, 1.4, 3.4])
    np.testing.assert_allclose(rfm.edges_["m"], [28.0, 46.0, 64.0, 82.0])
    expected = pd.DataFrame(RFM_SCORES, index=X.index)
    pd.testing.assert_frame_equal(rfm.scores_, expected, check_dtype=False)
    assert (rfm.scores_.dtypes == np.int64).all()
    pd.testing.assert_frame_equal(rfm.score(X), rfm.scores_)
    np.testing.assert_array_equal(rfm.embedding(X), expected.to_numpy(dtype=float))
    assert list(rfm.feature_names_in_) == ["recency_days", "frequency_12m", "monetary_total_12m"]
    assert rfm.selection_ is None and rfm.selection_criterion_ is None
    # Scores depend on the fitted edges only, not on who else is scored.
    pd.testing.assert_frame_equal(rfm.score(X.iloc[[7, 2]]), rfm.scores_.iloc[[7, 2]])


def test_rfm_new_customers_are_scored_with_the_fitted_edges():
    rfm = RFMSegmenter().fit(rfm_customers())
    new = pd.DataFrame(
        {
            # below all edges, on an edge (-> better bin), missing (-> 1), beyond all edges
            "recency_days": [0.0, 2.8, np.nan, 100.0],
            # on the edge 0 (-> lower bin), just above it, missing, beyond all edges
            "frequency_12m": [0.0, 0.1, np.nan, 100.0],
            "monetary_total_12m": [28.0, 28.01, np.nan, 1e6],
        }
    )
    scores = rfm.score(new)
    assert scores["r"].tolist() == [5, 5, 1, 1]
    assert scores["f"].tolist() == [1, 2, 1, 5]
    assert scores["m"].tolist() == [1, 2, 1, 5]


def test_rfm_small_rule_table_names_segments_in_rule_order():
    rules = [{"name": "best", "r": [4, 5], "f": [4, 5]}, {"name": "gone", "r": [1, 2]}]
    X = rfm_customers()
    rfm = RFMSegmenter(rules=rules).fit(X)
    assert rfm.segment_names_ == {0: "best", 1: "gone", 2: "other"}
    assert rfm.labels_.tolist() == [0, 0, 2, 2, 2, 2, 1, 1, 1, 1]
    assert rfm.n_clusters_ == 3
    assert rfm.segments(X).tolist() == ["best"] * 2 + ["other"] * 4 + ["gone"] * 4
    np.testing.assert_array_equal(rfm.predict(X), rfm.labels_)


def test_rfm_default_rule_table_from_rfm_yaml():
    rules = OmegaConf.load(RFM_YAML).rules  # a ListConfig, as Hydra passes it without _convert_
    X = rfm_customers()
    rfm = RFMSegmenter(rules=rules).fit(X)
    expected = [
        "champions",  # A 5 5 5
        "champions",  # B 5 5 5
        "loyal",  # C 4 3 3
        "potential",  # D 4 1 1
        "loyal",  # E 3 4 4
        "need attention",  # F 3 3 1
        "hibernating",  # G 2 1 2
        "cannot lose",  # H 2 4 4
        "lost",  # I 1 1 2
        "lost",  # J 1 1 3
    ]
    assert rfm.segments(X).tolist() == expected
    # Segments that occur get ids in table order ("new" and "at risk" do not occur here).
    assert list(rfm.segment_names_.values()) == [
        "champions",
        "loyal",
        "potential",
        "need attention",
        "cannot lose",
        "hibernating",
        "lost",
    ]
    assert rfm.labels_.tolist() == [0, 0, 1, 2, 1, 3, 5, 4, 6, 6]
    plain = RFMSegmenter(rules=OmegaConf.to_container(rules)).fit(X)
    np.testing.assert_array_equal(plain.labels_, rfm.labels_)


def test_rfm_default_rule_table_names_every_score_triple():
    rfm = RFMSegmenter(rules=OmegaConf.load(RFM_YAML).rules).fit(rfm_customers())
    grid = pd.DataFrame(
        [(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)],
        columns=["r", "f", "m"],
    )
    names = pd.Series(rfm._segments(grid))  # the rule table applied to all 125 triples
    assert "other" not in set(names)
    assert names[(grid.r == 5) & (grid.f == 1) & (grid.m == 1)].tolist() == ["new"]
    assert names[(grid.r == 1) & (grid.f == 4) & (grid.m == 4)].tolist() == ["cannot lose"]
    assert names[(grid.r == 2) & (grid.f == 3) & (grid.m == 1)].tolist() == ["at risk"]


def test_rfm_without_rules_bands_the_total_score():
    X = rfm_customers()
    rfm = RFMSegmenter().fit(X)
    # totals 15 15 10 6 11 7 5 10 4 5 -> bands round(total / 3) = 5 5 3 2 4 2 2 3 1 2
    assert rfm.segment_names_ == {
        0: "total 14-15",
        1: "total 11-13",
        2: "total 8-10",
        3: "total 5-7",
        4: "total 3-4",
    }
    assert rfm.labels_.tolist() == [0, 0, 2, 3, 1, 3, 3, 2, 4, 3]


def test_rfm_segment_unseen_in_fit_predicts_minus_one():
    rules = [{"name": "top", "f": [5, 5], "m": [5, 5]}, {"name": "rest"}]
    # D, G, I, J: nobody buys, every F edge is 0, so nobody is "top"
    rfm = RFMSegmenter(rules=rules).fit(rfm_customers().iloc[[3, 6, 8, 9]])
    assert rfm.segment_names_ == {0: "rest"} and rfm.n_clusters_ == 1
    big = pd.DataFrame({"recency_days": [1.0], "frequency_12m": [99], "monetary_total_12m": [1e9]})
    assert rfm.segments(big).tolist() == ["top"]
    assert rfm.predict(big).tolist() == [-1]


# ---------------------------------------------------------------- value-quantile tiers


def test_value_tiers_take_the_top_shares():
    X = pd.DataFrame({"profit_12m": np.arange(20.0, 0.0, -1.0)})  # 20, 19, ..., 1
    seg = ValueQuantileSegmenter(cuts=(0.05, 0.15, 0.30)).fit(X)
    # cumulative shares .05 .20 .50 of 20 customers -> the 1st, 4th and 10th highest values
    np.testing.assert_array_equal(seg.thresholds_, [20.0, 17.0, 11.0])
    assert np.bincount(seg.labels_).tolist() == [1, 3, 6, 10]
    assert seg.labels_[:4].tolist() == [0, 1, 1, 1]  # sorted descending: tiers in order
    assert seg.n_clusters_ == 4 and list(seg.feature_names_in_) == ["profit_12m"]
    assert seg.selection_ is None and seg.segment_names_ is None


def test_value_tiers_ties_missing_and_new_customers():
    X = pd.DataFrame({"profit_12m": [9.0, 8, 8, 8, 5, 4, 3, 2, 1, np.nan]})
    seg = ValueQuantileSegmenter(value="profit_12m", cuts=[0.1, 0.2]).fit(X)
    np.testing.assert_array_equal(seg.thresholds_, [9.0, 8.0])
    # all three 8s reach the second tier (ties go up); the missing value is in the last tier
    assert seg.labels_.tolist() == [0, 1, 1, 1, 2, 2, 2, 2, 2, 2]
    new = pd.DataFrame({"profit_12m": [100.0, 9.0, 8.5, 8.0, 7.99, np.nan, -5.0]})
    assert seg.predict(new).tolist() == [0, 0, 1, 1, 2, 2, 2]
    emb = seg.embedding(X)
    assert emb.shape == (10, 1)
    assert emb[-1, 0] == pytest.approx(np.log1p(1.0))  # missing -> lowest fitted value
    assert emb[0, 0] == pytest.approx(np.log1p(9.0))


def test_value_tiers_all_tied_leave_lower_tiers_empty():
    seg = ValueQuantileSegmenter(cuts=[0.1, 0.2]).fit(pd.DataFrame({"profit_12m": [5.0] * 10}))
    assert seg.labels_.tolist() == [0] * 10 and seg.n_clusters_ == 3


def test_value_tiers_guard_against_rounding():
    # 0.1 + 0.2 is 0.30000000000000004: 30 % of 10 customers is still 3, not 4
    seg = ValueQuantileSegmenter(cuts=[0.1, 0.2]).fit(
        pd.DataFrame({"profit_12m": np.arange(10.0, 0.0, -1.0)})
    )
    assert np.bincount(seg.labels_).tolist() == [1, 2, 7]


# ---------------------------------------------------------------- determinism and predict

ALL_METHODS = {
    "rfm": lambda seed: RFMSegmenter(rules=OmegaConf.load(RFM_YAML).rules),
    "kmeans": lambda seed: KMeansSegmenter(k_range=[2, 5], random_state=seed),
    "minibatch": lambda seed: KMeansSegmenter(
        k_range=[2, 5], criterion="elbow", algorithm="minibatch", batch_size=32, random_state=seed
    ),
    "gmm": lambda seed: GMMSegmenter(k_range=[2, 4], random_state=seed),
    "value_quantile": lambda seed: ValueQuantileSegmenter(random_state=seed),
}


@pytest.mark.parametrize("method", sorted(ALL_METHODS))
def test_same_seed_same_labels_and_predict_equals_labels(method):
    X = indicator_frame()
    first = ALL_METHODS[method](7).fit(X)
    again = ALL_METHODS[method](7).fit(X)
    np.testing.assert_array_equal(first.labels_, again.labels_)
    # Every method's definition makes predict on the fitted frame equal labels_: k-means ends
    # on an assignment step, GMM labels are its predictions, RFM and value tiers reuse the
    # fitted edges and thresholds.
    np.testing.assert_array_equal(first.predict(X), first.labels_)
    assert first.labels_.dtype == np.int64
    assert set(first.labels_) <= set(range(first.n_clusters_))
    assert len(first.embedding(X)) == len(X)


@pytest.mark.parametrize("method", sorted(ALL_METHODS))
def test_dataframe_versions_of_the_sklearn_contract(method):
    """What the array-based estimator checks would verify, on indicator frames."""
    X = indicator_frame(120, seed=1)
    before = X.copy()
    seg = ALL_METHODS[method](3)
    params = seg.get_params()
    assert seg.fit(X) is seg  # fit returns self
    pd.testing.assert_frame_equal(X, before)  # X untouched
    assert seg.get_params().keys() == params.keys()  # fit does not change parameters
    refit = clone(seg).fit(X)  # a clone is unfitted and refits to the same result
    np.testing.assert_array_equal(refit.labels_, seg.labels_)
    np.testing.assert_array_equal(seg.fit(X).labels_, refit.labels_)  # fit is idempotent
    restored = pickle.loads(pickle.dumps(seg))
    np.testing.assert_array_equal(restored.predict(X), seg.predict(X))
    np.testing.assert_array_equal(seg.fit_predict(X), seg.labels_)


# ---------------------------------------------------------------- the indicator transform


def test_transform_all_takes_numeric_columns_except_the_id():
    X = indicator_frame()
    tf = IndicatorTransform().fit(X)
    numeric = [c for c in X.columns if c not in ("customer_id", "region")]
    assert list(tf.feature_names_in_) == numeric
    assert tf.n_features_in_ == len(numeric) and tf.missing_features_ == []
    assert tf.transform(X).shape == (len(X), len(numeric))
    assert list(tf.get_feature_names_out()) == numeric


def test_transform_listed_features_drop_the_missing_ones():
    X = indicator_frame()
    X["all_missing"] = np.nan
    listed = ["aum_avg_12m", "not_an_indicator", "frequency_12m", "all_missing"]
    tf = IndicatorTransform(features=listed).fit(X)
    assert list(tf.feature_names_in_) == ["aum_avg_12m", "frequency_12m"]  # listed order
    assert tf.missing_features_ == ["not_an_indicator", "all_missing"]
    assert tf.transform(X.drop(columns=["region", "profit_12m"])).shape == (len(X), 2)


def test_transform_imputes_the_fitted_median():
    X = pd.DataFrame({"a": [1.0, np.nan, 3.0, 10.0], "b": [np.nan, 2.0, 2.0, 4.0]})
    tf = IndicatorTransform(log1p=None, standardize=False).fit(X)
    assert tf.medians_ == {"a": 3.0, "b": 2.0}
    np.testing.assert_array_equal(tf.transform(X), [[1, 2], [3, 2], [3, 2], [10, 4]])
    new = pd.DataFrame({"b": [np.nan], "a": [np.nan]})  # column order does not matter
    np.testing.assert_array_equal(tf.transform(new), [[3.0, 2.0]])


def test_transform_logs_the_skewed_columns_and_keeps_flags():
    X = indicator_frame(400)
    tf = IndicatorTransform().fit(X)
    assert {"monetary_total_12m", "aum_avg_12m", "profit_12m"} <= set(tf.log_columns_)
    assert not {"liquid_share", "n_products", "has_mortgage"} & set(tf.log_columns_)
    assert all(abs(tf.skewness_[c]) > 2 for c in tf.log_columns_)
    assert all(
        abs(tf.skewness_[c]) <= 2 or c in tf.flag_columns_
        for c in tf.feature_names_in_
        if c not in tf.log_columns_
    )
    assert tf.flag_columns_ == ["has_mortgage"]
    Z = pd.DataFrame(tf.transform(X), columns=tf.feature_names_in_)
    np.testing.assert_array_equal(Z["has_mortgage"], X["has_mortgage"])  # flags as they are
    scaled = Z.drop(columns="has_mortgage")
    np.testing.assert_allclose(scaled.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(scaled.std(ddof=0), 1.0)
    # a signed log: negative profits stay negative
    listed = IndicatorTransform(["profit_12m"], log1p=["profit_12m"], standardize=False).fit(X)
    profit = X["profit_12m"].to_numpy()
    np.testing.assert_allclose(listed.transform(X)[:, 0], signed_log1p(profit))
    assert (listed.transform(X)[:, 0] < 0).sum() == (profit < 0).sum()
    assert IndicatorTransform(log1p=None).fit(X).log_columns_ == []


# ---------------------------------------------------------------- the sklearn estimator checks

# parametrize_with_checks cannot pass: nearly every check feeds numpy arrays (or sparse
# matrices, memmaps) to fit, and these estimators require indicator DataFrames with named
# columns by design, raising a TypeError otherwise (32 of 46 checks fail on that alone).  The
# checks that do not depend on the input type run here, for every estimator; the array-based
# ones are covered on DataFrames by test_dataframe_versions_of_the_sklearn_contract.
API_CHECKS = [
    checks.check_estimator_cloneable,
    checks.check_estimator_tags_renamed,
    checks.check_valid_tag_types,
    checks.check_estimator_repr,
    checks.check_no_attributes_set_in_init,
    checks.check_estimators_unfitted,
    checks.check_do_not_raise_errors_in_init_or_set_params,
    checks.check_mixin_order,
    checks.check_get_params_invariance,
    checks.check_set_params,
]
ESTIMATORS = [
    IndicatorTransform(),
    KMeansSegmenter(),
    GMMSegmenter(),
    RFMSegmenter(),
    ValueQuantileSegmenter(),
]


@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_sklearn_api_checks(estimator, check):
    check(type(estimator).__name__, clone(estimator))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_sklearn_parameters_default_constructible(estimator):
    checks.check_parameters_default_constructible(type(estimator).__name__, clone(estimator))


# ---------------------------------------------------------------- errors name the culprit


def test_k_larger_than_the_customers_is_named():
    X, _ = blobs(3, n=40)
    with pytest.raises(ValueError, match="n_clusters=50 should be <= n_customers=40"):
        KMeansSegmenter(n_clusters=50).fit(X)
    with pytest.raises(ValueError, match=r"k_range upper end n_clusters=50 should be <= n_cus"):
        KMeansSegmenter(k_range=[2, 50]).fit(X)
    with pytest.raises(ValueError, match="GMMSegmenter: k_range upper end n_clusters=41 should"):
        GMMSegmenter(k_range=[2, 41]).fit(X)


def test_empty_indicator_set_is_named():
    X = indicator_frame(30)
    with pytest.raises(
        ValueError, match=r"empty indicator set: none of \['nope', 'nada'\] is in the data"
    ):
        KMeansSegmenter(features=["nope", "nada"]).fit(X)
    X["all_missing"] = np.nan
    with pytest.raises(ValueError, match=r"without an observed value: \['all_missing'\]"):
        IndicatorTransform(features=["all_missing"]).fit(X)
    with pytest.raises(ValueError, match="empty indicator set: none of the numeric columns"):
        GMMSegmenter().fit(X[["customer_id", "region"]])


@pytest.mark.parametrize("absent", ["recency_days", "monetary_total_12m"])
def test_rfm_without_its_columns_is_not_applicable(absent):
    X = rfm_customers().drop(columns=absent)
    with pytest.raises(NotApplicable, match=rf"RFMSegmenter needs the columns \['{absent}'\]"):
        RFMSegmenter().fit(X)
    assert issubclass(NotApplicable, ValueError)
    with pytest.raises(NotApplicable, match="columns present: \\['"):
        RFMSegmenter().fit(X)


def test_missing_value_column_is_not_applicable():
    with pytest.raises(NotApplicable, match=r"needs the columns \['clv'\].*present: \['a'\]"):
        ValueQuantileSegmenter(value="clv").fit(pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(NotApplicable, match="value column 'profit_12m' has no observed value"):
        ValueQuantileSegmenter().fit(pd.DataFrame({"profit_12m": [np.nan, np.nan]}))
    X = rfm_customers().assign(recency_days=np.nan)
    with pytest.raises(NotApplicable, match="column 'recency_days' has no observed value"):
        RFMSegmenter().fit(X)


@pytest.mark.parametrize(
    ("cuts", "match"),
    [
        ((0.5, 0.6), r"cuts=\(0.5, 0.6\) \(sum 1.1\); expected positive shares"),
        ([0.0, 0.1], r"cuts=\[0.0, 0.1\] \(sum 0.1\)"),
        ([-0.1], r"cuts=\[-0.1\]"),
        ([], r"cuts=\[\]"),
        ("top", "cuts='top'"),
    ],
)
def test_bad_cuts_are_named(cuts, match):
    with pytest.raises(ValueError, match=match):
        ValueQuantileSegmenter(cuts=cuts).fit(pd.DataFrame({"profit_12m": [1.0, 2.0]}))


@pytest.mark.parametrize(
    "estimator", [*ESTIMATORS, KMeansSegmenter(algorithm="minibatch")], ids=repr
)
def test_non_dataframe_input_is_refused(estimator):
    X = indicator_frame(30)
    with pytest.raises(TypeError, match="needs a pandas DataFrame of indicators.*got ndarray"):
        estimator.fit(X.drop(columns="region").to_numpy())
    with pytest.raises(ValueError, match="got an empty indicator frame"):
        estimator.fit(X.iloc[:0])


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_use_before_fit_raises_not_fitted(estimator):
    X = indicator_frame(30)
    for method in ("predict", "embedding", "transform", "score"):
        if hasattr(estimator, method):
            with pytest.raises(NotFittedError, match="not fitted yet"):
                getattr(estimator, method)(X)


@pytest.mark.parametrize(
    ("estimator", "match"),
    [
        (KMeansSegmenter(algorithm="elkan"), r"algorithm='elkan'; expected one of \['lloyd'"),
        (KMeansSegmenter(criterion="gap"), r"criterion='gap'; expected one of"),
        (KMeansSegmenter(n_init=0), r"n_init=0; expected an integer >= 1"),
        (KMeansSegmenter(sample_size=1), r"sample_size=1; expected an integer >= 2"),
        (KMeansSegmenter(batch_size=0.5), r"batch_size=0.5; expected an integer >= 1"),
        (KMeansSegmenter(n_clusters=0), r"n_clusters=0; expected an integer >= 1"),
        (KMeansSegmenter(k_range=[1, 4]), r"k_range=\[1, 4\]; expected \[lo, hi\] with 2 <="),
        (KMeansSegmenter(k_range=[4, 3]), r"k_range=\[4, 3\]"),
        (KMeansSegmenter(k_range=[2, 3, 4]), r"k_range=\[2, 3, 4\]"),
        (KMeansSegmenter(k_range=[2, 3], criterion="elbow"), "elbow' needs at least 3 values"),
        (GMMSegmenter(covariance_type="banded"), r"covariance_type='banded'; expected one of"),
        (GMMSegmenter(reg_covar=-1.0), r"reg_covar=-1.0; expected a number >= 0"),
        (GMMSegmenter(k_range=4), r"GMMSegmenter: k_range=4; expected \[lo, hi\]"),
        (IndicatorTransform(features="some"), r"features='some'; expected 'all' or a list"),
        (IndicatorTransform(features=[1, 2]), r"features=\[1, 2\]; expected 'all' or a list"),
        (IndicatorTransform(log1p="skewed"), r"log1p='skewed'; expected 'auto', a list"),
        (IndicatorTransform(features=["region"]), "column 'region' is not numeric"),
        (RFMSegmenter(bins=1), r"bins=1; expected an integer >= 2"),
        (RFMSegmenter(rules=[]), r"rules=\[\]; expected a non-empty list"),
        (RFMSegmenter(rules=[{"r": [1, 2]}]), "rule 0 .* needs a string 'name'"),
        (RFMSegmenter(rules=[{"name": "a", "x": [1]}]), r"rule 'a' has unknown keys \['x'\]"),
        (RFMSegmenter(rules=[{"name": "a", "r": [0, 2]}]), r"rule 'a': r=\[0, 2\] is not a"),
        (RFMSegmenter(rules=[{"name": "a", "f": [3]}]), r"rule 'a': f=\[3\] is not a score"),
        (RFMSegmenter(recency="region"), "RFMSegmenter: column 'region' is not numeric"),
    ],
    ids=repr,
)
def test_bad_settings_are_named(estimator, match):
    X = indicator_frame(30)
    with pytest.raises(ValueError, match=match):
        estimator.fit(X)


def test_default_rule_table_needs_five_bins():
    rules = OmegaConf.load(RFM_YAML).rules
    with pytest.raises(ValueError, match=r"rule 'champions': r=\[4, 5\] .* <= bins=3"):
        RFMSegmenter(bins=3, rules=rules).fit(rfm_customers())


def test_infinite_indicators_are_named():
    X = indicator_frame(30)
    X.loc[4, "aum_avg_12m"] = np.inf
    with pytest.raises(ValueError, match="column 'aum_avg_12m' has 1 infinite values .*row 4"):
        KMeansSegmenter(n_clusters=2).fit(X)


def test_transform_needs_the_fitted_columns():
    X = indicator_frame(30)
    tf = IndicatorTransform(features=["aum_avg_12m", "n_products"]).fit(X)
    with pytest.raises(ValueError, match=r"X lacks the indicator columns \['n_products'\]"):
        tf.transform(X.drop(columns="n_products"))


def test_undefined_silhouette_for_every_k_is_named():
    X = pd.DataFrame({"a": [0.0, 1.0]})  # k = 2 on 2 customers: one customer per cluster
    with pytest.raises(ValueError, match="silhouette is undefined for every k"):
        KMeansSegmenter(k_range=[2, 2]).fit(X)
