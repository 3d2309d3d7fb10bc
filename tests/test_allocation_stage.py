"""The allocation stage in a run: `tierlab run experiment=allocation` on small data."""

from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest

from run_helpers import finished_runs, isolated
from tierlab.allocation.stage import check_settings, gather
from tierlab.config import compose
from tierlab.run import run

SMALL = (
    "experiment=allocation",
    "tracking.experiment_name=tierlab-debug",
    "allocation.levels.relationship_manager.managers=1",
    "allocation.levels.relationship_manager.portfolio_size=12",
    "allocation.levels.priority.capacity=40",
)


def test_run_compares_policies_under_assumed_and_true_response(tmp_path):
    metrics = run(compose(isolated(tmp_path, *SMALL), output_dir=tmp_path / "out"))
    folder = tmp_path / "out" / "allocation"
    table = pd.read_csv(folder / "comparison.csv").set_index("policy")
    assert list(table.index) == ["uniform", "rfm_rules", "top_down", "optimised"]
    assert (table["n_relationship_manager"] <= 12).all() and (table["n_priority"] <= 40).all()
    assert table.loc["uniform", "moved_vs_uniform"] == 0
    # the optimised policy is the best under the assumptions it optimises
    assert (table.loc["optimised", "assumed_net_gain"] >= table["assumed_net_gain"] - 1e-6).all()
    assert table["true_net_gain"].notna().all()  # the synthetic bank's truth is scored
    assert table.loc["uniform", "true_net_gain"] == 0.0
    assert metrics["allocation/optimised/assumed_net_gain"] == pytest.approx(
        table.loc["optimised", "assumed_net_gain"]
    )
    assert metrics["allocation/solver/exact"] == 1.0
    assert metrics["allocation/solver/stated_gap"] < 1e-9
    assert (
        metrics["allocation/solver/greedy_gap_certificate"]
        >= metrics["allocation/solver/greedy_gap_realised"] - 1e-12
    )
    sens = pd.read_csv(folder / "sensitivity.csv")
    assert sorted(sens["effect_scale"].unique()) == [0.5, 0.75, 1.0, 1.25, 1.5]
    at_one = sens[sens["effect_scale"] == 1.0].set_index("policy")["assumed_net_gain"]
    assert at_one.to_dict() == pytest.approx(table["assumed_net_gain"].to_dict())
    even = pd.read_csv(folder / "break_even.csv")
    assert {"top_down", "optimised"} <= set(even["policy"])
    assignments = pd.read_parquet(folder.parent / "allocation_assignments.parquet")
    assert not (folder / "assignments.parquet").exists()  # no customer rows in MLflow
    assert set(assignments["optimised"]) <= {"relationship_manager", "priority", "standard_digital"}
    for name in ("sensitivity.png", "coverage_by_tier.png", "net_gain.png"):
        assert (folder / name).stat().st_size > 10_000
    assert "assumed_net_gain" in (folder / "comparison.md").read_text()
    (parent,) = finished_runs(tmp_path)
    client = mlflow.MlflowClient()
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "allocation")}
    assert {
        "allocation/comparison.csv",
        "allocation/comparison.md",
        "allocation/sensitivity.png",
    } <= logged
    assert "allocation/optimised/true_net_gain" in parent.data.metrics


SETTINGS = {
    "value_model": "hurdle_lightgbm",
    "tier_method": "value_quantile",
    "solver": "auto",
    "policies": ["uniform"],
    "budget_per_year": None,
    "sensitivity_scales": [1.0],
}


def test_missing_sources_and_bad_settings_are_named():
    features = SimpleNamespace(indicators=pd.DataFrame({"customer_id": [1, 2]}))
    seg = SimpleNamespace(tiers=pd.DataFrame({"customer_id": [1, 2], "rfm": [1, 2]}))
    clv = SimpleNamespace(
        predictions=pd.DataFrame({"customer_id": [1, 2], "trailing_value": [1.0, np.nan]})
    )
    with pytest.raises(
        ValueError, match="allocation.value_model='hurdle_lightgbm': the allocation stage needs"
    ):
        gather(SETTINGS, features, seg, None)
    with pytest.raises(
        ValueError,
        match=r"has no predictions in this run; CLV models with predictions: \['trailing_value'\]",
    ):
        gather(SETTINGS, features, seg, clv)
    with pytest.raises(ValueError, match=r"tier_method='value_quantile' has no tiers in this run"):
        gather({**SETTINGS, "value_model": "trailing_value"}, features, seg, clv)
    with pytest.raises(ValueError, match="1 customers have no finite prediction"):
        gather(
            {**SETTINGS, "value_model": "trailing_value", "tier_method": "rfm"}, features, seg, clv
        )
    btyd = SimpleNamespace(
        predictions=pd.DataFrame({"customer_id": [1, 2], "bgnbd_gg": [1.0, 2.0]}),
        models={
            "bgnbd_gg": SimpleNamespace(estimator=SimpleNamespace(value_unit="transaction_amount"))
        },
    )
    with pytest.raises(ValueError, match="predicts transaction_amount, not profit"):
        gather({**SETTINGS, "value_model": "bgnbd_gg", "tier_method": "rfm"}, features, seg, btyd)
    with pytest.raises(ValueError, match="predicts transaction_amount, not profit"):
        gather(
            {**SETTINGS, "value_model": "trailing_value"}, features, seg, clv, "transaction_amount"
        )
    gapped = SimpleNamespace(tiers=pd.DataFrame({"customer_id": [1], "rfm": [1]}))
    ok = SimpleNamespace(predictions=pd.DataFrame({"customer_id": [1, 2], "m": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="1 customers have no tier"):
        gather({**SETTINGS, "value_model": "m", "tier_method": "rfm"}, features, gapped, ok)
    with pytest.raises(ValueError, match="allocation.solver='fast'"):
        check_settings({**SETTINGS, "solver": "fast"})
    with pytest.raises(ValueError, match=r"allocation.policies=\['best'\]"):
        check_settings({**SETTINGS, "policies": ["best"]})
    with pytest.raises(ValueError, match="allocation.budget_per_year=-1 should be >= 0"):
        check_settings({**SETTINGS, "budget_per_year": -1})
    with pytest.raises(ValueError, match=r"allocation.sensitivity_scales=\[0\] should be"):
        check_settings({**SETTINGS, "sensitivity_scales": [0]})
