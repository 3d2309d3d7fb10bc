"""Holdout targets: discounted realised value, activity, ground truth, kept apart from features."""

import dataclasses

import numpy as np
import pytest
from hydra.utils import instantiate

from features_fixture import CUTOFF, context, tiny_bank
from tierlab.config import compose
from tierlab.data.split import CalibrationSplit
from tierlab.features.engine import connect, tables
from tierlab.features.targets import build_targets

RATE = 0.01


def targets(data, holdout_months=3, rate=RATE):
    split = CalibrationSplit.from_config(CUTOFF, holdout_months, data.data_start, data.data_end)
    con = connect("duckdb")
    return build_targets(con, tables(con, data), context(), split, rate, data.truth)


def test_value_is_discounted_holdout_profit_and_activity_is_own_transactions():
    frame = targets(tiny_bank()).set_index("customer_id")
    assert frame.index.tolist() == [1, 2]
    assert frame.columns.tolist() == ["holdout_value", "holdout_active", "holdout_transactions"]
    # 2025-01-31 is month 1 of the holdout: profit 1000 weighs 1 / 1.01
    assert frame.loc[1, "holdout_value"] == pytest.approx(1000 / 1.01)
    assert frame.loc[1, "holdout_active"] == 1  # card purchase on 2025-01-01
    assert frame.loc[1, "holdout_transactions"] == 1
    assert (frame.loc[2, "holdout_value"], frame.loc[2, "holdout_active"]) == (0.0, 0)
    assert frame.loc[2, "holdout_transactions"] == 0


def test_without_a_profit_table_value_is_discounted_spend():
    data = dataclasses.replace(tiny_bank(), profitability=None)
    frame = targets(data).set_index("customer_id")
    assert frame.loc[1, "holdout_value"] == pytest.approx(999 / 1.01)


def test_a_negative_discount_rate_below_minus_one_is_refused():
    with pytest.raises(ValueError, match=r"discount_rate_monthly=-1.5 should be > -1"):
        targets(tiny_bank(), rate=-1.5)


def test_on_the_synthetic_bank_targets_match_the_generators_truth(tmp_path):
    cfg = compose(["debug=fast", "split.holdout_months=12", f"data.cache_dir={tmp_path}"])
    data = instantiate(cfg.data, _convert_="all").load()
    rate = cfg.features.targets.discount_rate_monthly
    frame = targets(data, holdout_months=12, rate=rate).set_index("customer_id")
    truth = data.truth.set_index("customer_id").loc[frame.index]
    assert truth["alive_at_cutoff"].all()  # the population is the customers open at the cut-off
    # the profit table is stored to 4 decimals: 12 months of rounding stay below 1e-3
    np.testing.assert_allclose(
        frame["holdout_value"], truth["realised_holdout_profit"], rtol=0, atol=1e-3
    )
    np.testing.assert_allclose(frame["true_expected_value"], truth["expected_holdout_profit"])
    assert frame["holdout_value"].corr(frame["true_expected_value"]) > 0.8
    assert 0.3 < frame["holdout_active"].mean() < 1.0
