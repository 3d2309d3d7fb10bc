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
    assert out["spearman"] > 0.8
    assert out["contradiction_share"] == 0.0


def test_realised_tiers_have_the_same_sizes_and_contradictions_count_two_tier_gaps():
    tiers = np.array([1, 2, 2, 3, 3, 3])
    holdout = np.array([0.0, 5.0, 4.0, 3.0, 2.0, 9.0])  # the best is in tier 3, the worst in 1
    realised = M.realised_tiers(tiers, holdout)
    assert realised.tolist() == [3, 2, 2, 3, 3, 1]
    assert M.business_metrics(tiers, holdout)["contradiction_share"] == pytest.approx(2 / 6)


def test_size_metrics_flag_a_degenerate_tier():
    tiers = np.array([1] + [2] * 199)
    out = M.size_metrics(tiers, min_share=0.01)
    assert out == {"n_tiers": 2.0, "smallest_tier_share": 0.005, "degenerate": 1.0}


def test_internal_metrics_need_two_clusters():
    x = np.random.default_rng(0).normal(size=(20, 2))
    out = M.internal_metrics(x, np.zeros(20, dtype=int), 100, 0)
    assert all(np.isnan(v) for v in out.values())
    labels = (x[:, 0] > 0).astype(int)
    out = M.internal_metrics(x, labels, 100, 0)
    assert -1 <= out["silhouette"] <= 1 and out["calinski_harabasz"] > 0
