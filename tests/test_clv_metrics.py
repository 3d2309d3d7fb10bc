"""CLV evaluation metrics and plots: hand-computed cases, ties, non-positive totals, errors."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tierlab.clv.metrics import (
    decile_table,
    gain_curve,
    transaction_metrics,
    transactions_by_frequency,
    value_metrics,
)
from tierlab.clv.plots import (
    plot_decile_calibration,
    plot_gain_curves,
    plot_transactions_by_frequency,
)

# 10 customers, total holdout value 17, one of them a loss
ACTUAL = np.array([10.0, 0.0, 0.0, 5.0, -2.0, 0.0, 3.0, 0.0, 1.0, 0.0])
SHARE_KEYS = ["gini", "top10_share", "top20_share", "top10_lift", "top20_lift"]


@pytest.fixture(autouse=True)
def no_warnings():
    """Metrics must not flood warnings on degenerate inputs; figures must not pile up."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    plt.close("all")


def tied_sample(n=60, seed=0):
    rng = np.random.default_rng(seed)
    actual = np.where(rng.random(n) < 0.5, 0.0, rng.gamma(2.0, 50.0, n)) - 5.0 * (
        rng.random(n) < 0.1
    )
    predicted = rng.integers(0, 4, n).astype("float64")
    return actual, predicted


# --------------------------------------------------------------------------------------------
# value_metrics
# --------------------------------------------------------------------------------------------


def test_perfect_ranking_with_offset_prediction():
    m = value_metrics(ACTUAL, ACTUAL + 2.0)
    assert m["rmse"] == pytest.approx(2.0)
    assert m["mae"] == pytest.approx(2.0)
    assert m["gini"] == pytest.approx(1.0)
    assert m["spearman"] == pytest.approx(1.0)
    assert m["top10_share"] == pytest.approx(10 / 17)
    assert m["top20_share"] == pytest.approx(15 / 17)
    assert m["top10_lift"] == pytest.approx(10 / 17 / 0.1)
    assert m["top20_lift"] == pytest.approx(15 / 17 / 0.2)
    assert m["mean_actual"] == pytest.approx(1.7)
    assert m["mean_predicted"] == pytest.approx(3.7)
    # each decile is one customer; the 5 zero-actual deciles are skipped: mean of 2/|a|
    assert m["decile_mape"] == pytest.approx(np.mean([2 / 10, 2 / 5, 2 / 3, 2 / 1, 2 / 2]))
    # WAPE: every one of the 10 deciles is off by 2, over the sum of |actual| = 21
    assert m["decile_wape"] == pytest.approx(10 * 2 / 21)


def test_reversed_ranking_has_negative_gini_and_spearman():
    m = value_metrics(ACTUAL, -ACTUAL)
    assert m["gini"] < 0
    assert m["spearman"] == pytest.approx(-1.0)
    assert m["top10_share"] == pytest.approx(-2 / 17)


def test_hand_computed_gini_and_top_shares_with_tied_blocks():
    # blocks {4, 0} and {2, 0} -> ranked values 2, 2, 1, 1 (total 6)
    # Gini = mean(1/3, 2/3, 5/6, 1) - 5/8 = 1/12; oracle 4, 2, 0, 0 -> 7/24; normalized 2/7
    m = value_metrics([4.0, 0.0, 2.0, 0.0], [1.0, 1.0, 0.0, 0.0])
    assert m["gini"] == pytest.approx(2 / 7)
    # top 10 % of 4 customers = 0.4 customer of the first block
    assert m["top10_share"] == pytest.approx(0.4 * 2 / 6)
    assert m["top20_share"] == pytest.approx(0.8 * 2 / 6)


def test_hand_computed_gini_without_ties():
    # order 3, 0, 1, 0 -> mean(.75, .75, 1, 1) - 5/8 = 1/4; oracle 5/16
    m = value_metrics([3.0, 1.0, 0.0, 0.0], [0.9, 0.4, 0.5, 0.1])
    assert m["gini"] == pytest.approx(0.8)


@pytest.mark.parametrize("n", [10, 37])
def test_constant_prediction_captures_its_customer_share(n):
    actual = np.resize(ACTUAL, n)
    m = value_metrics(actual, np.full(n, 3.0))
    assert m["top10_share"] == pytest.approx(0.10, abs=1e-12)
    assert m["top20_share"] == pytest.approx(0.20, abs=1e-12)
    assert m["top10_lift"] == pytest.approx(1.0)
    assert m["gini"] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(m["spearman"])


def test_metrics_do_not_depend_on_row_order_under_ties():
    actual, predicted = tied_sample()
    reference = value_metrics(actual, predicted)
    table = decile_table(actual, predicted)
    curve = gain_curve(actual, predicted)
    rng = np.random.default_rng(1)
    for _ in range(5):
        order = rng.permutation(len(actual))
        shuffled = value_metrics(actual[order], predicted[order])
        for key, value in reference.items():
            assert shuffled[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        pd.testing.assert_frame_equal(decile_table(actual[order], predicted[order]), table)
        pd.testing.assert_frame_equal(gain_curve(actual[order], predicted[order]), curve)


@pytest.mark.parametrize(
    "actual", [[-1.0, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0], [-3.0, -1.0, -2.0, -1.0]]
)
def test_non_positive_total_gives_nan_shares_and_gini(actual):
    m = value_metrics(actual, [0.4, 0.3, 0.2, 0.1])
    for key in SHARE_KEYS:
        assert np.isnan(m[key]), key
    assert np.isfinite(m["rmse"])
    assert gain_curve(actual, [0.4, 0.3, 0.2, 0.1])["share_of_value"].isna().all()
    assert decile_table(actual, [0.4, 0.3, 0.2, 0.1])["share_of_actual"].isna().all()


def test_constant_actual_has_nan_gini_and_spearman_but_defined_shares():
    m = value_metrics(np.full(5, 2.0), [5.0, 4.0, 3.0, 2.0, 1.0])
    assert np.isnan(m["gini"])
    assert np.isnan(m["spearman"])
    assert m["top20_share"] == pytest.approx(0.2)


def test_decile_mape_is_nan_when_every_decile_has_zero_actual():
    m = value_metrics(np.zeros(12), np.arange(12.0))
    assert np.isnan(m["decile_mape"]) and np.isnan(m["decile_wape"])


def test_series_are_taken_by_position():
    actual = pd.Series(ACTUAL, index=range(10, 0, -1))
    assert value_metrics(actual, pd.Series(ACTUAL))["gini"] == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# decile_table and gain_curve
# --------------------------------------------------------------------------------------------


def test_decile_table_splits_ties_into_equal_count_bins():
    actual, _ = tied_sample(n=25)
    table = decile_table(actual, np.zeros(25))
    assert list(table.columns) == [
        "decile",
        "n",
        "mean_predicted",
        "mean_actual",
        "sum_actual",
        "share_of_actual",
    ]
    assert table["decile"].tolist() == list(range(1, 11))
    assert sorted(set(table["n"])) == [2, 3]
    assert table["n"].sum() == 25
    np.testing.assert_allclose(table["mean_actual"], actual.mean())
    assert table["share_of_actual"].sum() == pytest.approx(1.0)


def test_decile_table_with_fewer_customers_than_bins_has_one_bin_per_customer():
    table = decile_table([1.0, 8.0, 3.0, 0.0], [0.2, 0.9, 0.5, 0.1])
    assert table["decile"].tolist() == [1, 2, 3, 4]
    assert table["n"].tolist() == [1, 1, 1, 1]
    assert table["mean_actual"].tolist() == [8.0, 3.0, 1.0, 0.0]  # decile 1 = highest predicted
    assert table["share_of_actual"].tolist() == pytest.approx([8 / 12, 3 / 12, 1 / 12, 0.0])


def test_gain_curve_hand_computed_and_oracle_dominates():
    curve = gain_curve([4.0, 0.0, 2.0, 0.0], [1.0, 1.0, 0.0, 0.0], points=5)
    assert curve["share_of_customers"].tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert curve["share_of_value"].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 5 / 6, 1])
    actual, predicted = tied_sample()
    oracle = gain_curve(actual, actual)["share_of_value"]
    model = gain_curve(actual, predicted)["share_of_value"]
    assert (oracle >= model - 1e-12).all()


# --------------------------------------------------------------------------------------------
# transaction counts
# --------------------------------------------------------------------------------------------


def test_transaction_metrics_hand_computed():
    m = transaction_metrics([0, 1, 2, 3], [0.5, 1.0, 1.5, 3.0])
    assert m["tx_actual_total"] == 6.0
    assert m["tx_predicted_total"] == 6.0
    assert m["tx_total_ratio"] == pytest.approx(1.0)
    assert m["tx_mae"] == pytest.approx(0.25)
    assert m["tx_rmse"] == pytest.approx(np.sqrt(0.125))
    assert m["tx_spearman"] == pytest.approx(1.0)


def test_transaction_metrics_zero_actual_total_gives_nan_ratio():
    m = transaction_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    assert np.isnan(m["tx_total_ratio"])
    assert np.isnan(m["tx_spearman"])


def test_transactions_by_frequency_pools_the_last_group():
    frequency = [0, 0, 1, 2, 7, 8, 12]
    table = transactions_by_frequency(frequency, [0, 1, 1, 2, 4, 6, 8], [0.2, 0.4, 1, 2, 5, 5, 5])
    assert table["frequency"].tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["n"].tolist() == [2, 1, 1, 0, 0, 0, 0, 3]
    assert table["mean_actual"].iloc[-1] == pytest.approx(6.0)
    assert table["mean_predicted"].iloc[0] == pytest.approx(0.3)
    assert table["mean_actual"].iloc[3:7].isna().all()
    small = transactions_by_frequency(frequency, np.ones(7), np.ones(7), max_frequency=2)
    assert small["frequency"].tolist() == ["0", "1", "2+"]
    assert small["n"].tolist() == [2, 1, 4]


# --------------------------------------------------------------------------------------------
# invalid inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "predicted", "match"),
    [
        ([1.0, 2.0], [1.0], "actual has 2 values but predicted has 1"),
        ([], [], "actual is empty"),
        (
            [1.0, 2.0, 3.0],
            [1.0, 2.0, np.nan],
            r"predicted has 1 non-finite values \(first at position 2\)",
        ),
        ([1.0, np.inf, -np.inf], [1.0, 2.0, 3.0], r"actual has 2 non-finite .* position 1\)"),
        ([[1.0, 2.0]], [[1.0, 2.0]], r"actual has shape \(1, 2\); it must be 1-D"),
    ],
)
def test_invalid_value_inputs_raise(actual, predicted, match):
    with pytest.raises(ValueError, match=match):
        value_metrics(actual, predicted)


def test_invalid_options_raise():
    with pytest.raises(ValueError, match="n_bins=0 should be an integer >= 1"):
        decile_table(ACTUAL, ACTUAL, n_bins=0)
    with pytest.raises(ValueError, match="points=1.5 should be an integer >= 2"):
        gain_curve(ACTUAL, ACTUAL, points=1.5)
    with pytest.raises(ValueError, match="max_frequency=-1 should be an integer >= 0"):
        transactions_by_frequency([0, 1], [0, 1], [0, 1], max_frequency=-1)


def test_invalid_counts_raise():
    with pytest.raises(ValueError, match=r"actual_count has 1 negative .* position 1\)"):
        transaction_metrics([0, -1], [0, 1])
    with pytest.raises(ValueError, match="actual_count has 2 values but predicted_count has 3"):
        transaction_metrics([0, 1], [0, 1, 2])
    with pytest.raises(ValueError, match=r"frequency has 1 non-integer .* position 0\)"):
        transactions_by_frequency([0.5, 1], [0, 1], [0, 1])
    with pytest.raises(ValueError, match="frequency has 2 values but predicted_count has 1"):
        transactions_by_frequency([0, 1], [0, 1], [0])


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------


def test_plot_gain_curves_draws_models_oracle_and_diagonal():
    actual, predicted = tied_sample()
    fig = plot_gain_curves(actual, {"tied": predicted, "oracle-like": actual + 1.0})
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 4
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[1] == "oracle-like (Gini 1.00)"
    assert "60 customers" in ax.get_title()


def test_plot_gain_curves_returns_none_without_positive_total_or_models():
    assert plot_gain_curves([-1.0, 0.0, 0.5], {"m": [1.0, 2.0, 3.0]}) is None
    assert plot_gain_curves(ACTUAL, {}) is None


def test_plot_decile_calibration_one_panel_per_model():
    actual, predicted = tied_sample()
    fig = plot_decile_calibration(actual, {f"m{i}": predicted + i for i in range(5)})
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 5
    assert all(len(ax.patches) == 10 and len(ax.get_lines()) == 2 for ax in visible)
    assert visible[0].get_title().startswith("m0: MAPE ")
    assert visible[0].get_yscale() == "symlog"  # means from ~0.5 to > 100
    assert plot_decile_calibration(actual, {}) is None


def test_plot_decile_calibration_caps_panels_and_keeps_linear_scale_for_narrow_values():
    actual = np.linspace(1.0, 2.0, 30)
    fig = plot_decile_calibration(actual, {f"m{i}": actual for i in range(13)})
    assert len([ax for ax in fig.axes if ax.axison]) == 12
    assert "first 12 of 13 models" in fig.get_suptitle()
    assert fig.axes[0].get_yscale() == "linear"


def test_plot_transactions_by_frequency_draws_actual_once():
    frequency = [0, 0, 1, 2, 7, 8, 12]
    actual = [0, 1, 1, 2, 4, 6, 8]
    tables = {
        "bgnbd": transactions_by_frequency(frequency, actual, np.full(7, 2.0)),
        "pareto": transactions_by_frequency(frequency, actual, np.full(7, 3.0)),
    }
    fig = plot_transactions_by_frequency(tables)
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 3
    assert "7 customers" in ax.get_title()
    assert plot_transactions_by_frequency({}) is None


def test_plot_transactions_by_frequency_rejects_tables_of_other_customers():
    tables = {
        "a": transactions_by_frequency([0, 1], [0, 1], [0, 1]),
        "b": transactions_by_frequency([0, 2], [0, 1], [0, 1]),
    }
    with pytest.raises(ValueError, match="table 'b' has other frequency groups"):
        plot_transactions_by_frequency(tables)
