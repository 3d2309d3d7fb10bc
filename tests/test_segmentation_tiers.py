"""Ordered tiers and the metrics that judge them, on hand-made numbers."""

import numpy as np
import pandas as pd
import pytest

from tierlab.segmentation import metrics as M
from tierlab.segmentation.tiers import assign_tiers, order_tiers, tier_profile


def test_tier_one_is_the_cluster_with_the_highest_mean_value():
    labels = np.array([0, 0, 1, 1, 2, 2])
    value = np.array([1.0, 3.0, 10.0, 20.0, -5.0, np.nan])  # means 2, 15, -2.5 (nan = 0)
    mapping = order_tiers(labels, value)
    assert mapping == {1: 1, 0: 2, 2: 3}
    assert assign_tiers(labels, mapping).tolist() == [2, 2, 1, 1, 3, 3]


def test_ties_are_broken_by_cluster_id_so_reruns_agree():
    labels = np.array([2, 0, 1])
    assert order_tiers(labels, np.array([5.0, 5.0, 5.0])) == {0: 1, 1: 2, 2: 3}


def test_labels_and_values_must_align():
    with pytest.raises(ValueError, match=r"labels \(3,\) and value \(2,\) should have one shape"):
        order_tiers(np.array([0, 1, 1]), np.array([1.0, 2.0]))


def test_tier_profile_has_sizes_values_names_and_means():
    tiers = np.array([1, 1, 2])
    indicators = pd.DataFrame({"a": [1.0, 3.0, 10.0], "b": [0, 1, 1]})
    value = pd.Series([4.0, 6.0, 1.0], name="profit_12m")
    profile = tier_profile(tiers, indicators, value, ["a", "b"], {1: "champions", 2: "lost"})
    assert profile.loc[1].to_dict() == {
        "segment": "champions",
        "size": 2,
        "customer_share": 2 / 3,
        "mean_value": 5.0,
        "a": 2.0,
        "b": 0.5,
    }


def test_business_metrics_by_hand():
    tiers = np.array([1, 2, 2, 3, 3, 3, 3, 3, 3, 3])
    holdout = np.array([50.0, 20.0, 10.0, 5.0, 5.0, 5.0, 5.0, 0.0, 0.0, 0.0])
    out = M.business_metrics(tiers, holdout)
    assert out["value_share_tier1"] == 0.5
    assert out["value_share_tier2"] == pytest.approx(0.3)
    assert out["top_tier_lift"] == pytest.approx(0.5 / 0.1)
    expected = pd.Series(-tiers).corr(pd.Series(holdout), method="spearman")
    assert out["spearman"] == pytest.approx(expected) and expected > 0.8
    assert out["contradiction_share"] == 0.0
    assert out["tier_gap"] == pytest.approx(0.0)


def test_realised_tiers_have_the_same_sizes_and_contradictions_count_two_tier_gaps():
    tiers = np.array([1, 2, 2, 3, 3, 3])
    holdout = np.array([0.0, 5.0, 4.0, 3.0, 2.0, 9.0])  # the best is in tier 3, the worst in 1
    realised = M.realised_tiers(tiers, holdout)
    assert realised.tolist() == [3, 2, 2, 3, 3, 1]
    assert M.business_metrics(tiers, holdout)["contradiction_share"] == pytest.approx(2 / 6)


def test_size_metrics_flag_a_degenerate_tier():
    tiers = np.array([1] + [2] * 199)
    out = M.size_metrics(tiers, n_clusters=2, min_share=0.01)
    assert out == {
        "n_tiers": 2.0,
        "n_empty_clusters": 0.0,
        "smallest_tier_share": 0.005,
        "degenerate": 1.0,
    }


def test_size_metrics_flag_clusters_no_customer_is_in():
    out = M.size_metrics(np.array([1, 1, 2, 2]), n_clusters=4, min_share=0.01)
    assert (out["n_tiers"], out["n_empty_clusters"], out["degenerate"]) == (2.0, 2.0, 1.0)


def test_contradictions_do_not_depend_on_row_order_when_values_tie():
    rng = np.random.default_rng(0)
    tiers = rng.integers(1, 5, 200)
    holdout = np.where(rng.random(200) < 0.7, 0.0, rng.exponential(10, 200))
    order = np.argsort(tiers, kind="stable")
    first = M.business_metrics(tiers, holdout)
    again = M.business_metrics(tiers[order], holdout[order])
    assert first["contradiction_share"] == again["contradiction_share"]
    assert first["tier_gap"] == again["tier_gap"]


def test_shares_of_a_loss_are_undefined_not_sign_flipped():
    out = M.business_metrics(np.array([1, 2, 2]), np.array([9.0, -11.0, -11.0]))
    assert np.isnan(out["value_share_tier1"]) and np.isnan(out["top_tier_lift"])
    assert out["spearman"] > 0


def test_tier_gap_is_zero_for_perfect_tiers_and_one_for_reversed():
    tiers = np.array([1, 2, 3, 3])
    assert M.business_metrics(tiers, np.array([9.0, 5.0, 1.0, 0.0]))["tier_gap"] == 0.0
    assert M.business_metrics(tiers, np.array([0.0, 1.0, 5.0, 9.0]))["tier_gap"] > 0.6


def test_separated_blobs_are_stable_under_bootstrap_and_noise_is_not():
    from sklearn.datasets import make_blobs

    from tierlab.segmentation.methods import KMeansSegmenter

    noise = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 2)), columns=["a", "b"])
    km_noise = KMeansSegmenter(features="all", log1p=None, n_clusters=6, random_state=0)
    assert M.stability(km_noise.fit(noise), noise, n_bootstrap=3, seed=0) < 0.9
    assert np.isnan(M.stability(km_noise, noise, n_bootstrap=0, seed=0))
    points, _ = make_blobs(300, centers=3, cluster_std=0.3, random_state=0)
    blobs = pd.DataFrame(points, columns=["a", "b"])
    km = KMeansSegmenter(features="all", log1p=None, k_range=(2, 5), random_state=0).fit(blobs)
    assert km.n_clusters_ == 3
    assert M.fixed_k(km).get_params()["n_clusters"] == 3
    assert M.fixed_k(km).get_params()["k_range"] is None
    assert M.stability(km, blobs, n_bootstrap=3, seed=0) > 0.95


def test_truth_metrics_compare_clusters_to_latent_types():
    latent = pd.Series(["a", "a", "b", "b"])
    assert M.truth_metrics(np.array([1, 1, 0, 0]), latent) == {"latent_ari": 1.0}


def test_internal_metrics_need_two_clusters():
    x = np.random.default_rng(0).normal(size=(20, 2))
    out = M.internal_metrics(x, np.zeros(20, dtype=int), 100, 0)
    assert all(np.isnan(v) for v in out.values())
    labels = (x[:, 0] > 0).astype(int)
    out = M.internal_metrics(x, labels, 100, 0)
    assert -1 <= out["silhouette"] <= 1 and out["calinski_harabasz"] > 0
