"""The CLV stage end to end: every model on one holdout, child runs, comparison, plots."""

from types import SimpleNamespace

import pandas as pd
import pytest

from run_helpers import all_runs, finished_runs, isolated
from tierlab.clv.adapters import BTYDRegressor
from tierlab.clv.regressors import TrailingValue
from tierlab.clv.stage import check_horizon
from tierlab.config import compose
from tierlab.run import run

MODELS = (
    "trailing_value",
    "calibration_mean",
    "lightgbm_tweedie",
    "hurdle_lightgbm",
    "bgnbd_gg",
    "mean_value",
    "lightgbm_log",
    "hist_gbm",
    "elastic_net",
    "paretonbd_gg",
)
SUPERVISED = {"lightgbm_tweedie", "hurdle_lightgbm", "mean_value", "lightgbm_log", "hist_gbm"}
SUPERVISED |= {"elastic_net"}
BTYD = {"bgnbd_gg", "paretonbd_gg"}


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clv")
    overrides = isolated(tmp, "experiment=clv_benchmark", "debug=fast")
    metrics = run(compose(overrides, output_dir=tmp / "out"))
    return tmp, metrics


def test_every_model_is_a_child_run_trained_the_honest_way(benchmark):
    tmp, metrics = benchmark
    runs = all_runs(tmp)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = {
        r.info.run_name: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
        and r.info.run_name.startswith("clv-")
    }
    assert set(children) == {f"clv-{m}" for m in MODELS}
    for name, child in children.items():
        assert child.info.status == "FINISHED"
        model = name.removeprefix("clv-")
        expected = "training snapshot" if model in SUPERVISED else "calibration at cut-off"
        assert child.data.tags["trained_on"] == expected
    # the training snapshot is one holdout (6 months in debug) before the cut-off
    assert parent.data.tags["training_cutoff"] < parent.data.tags["split_cutoff"]
    for model in MODELS:
        status = children[f"clv-{model}"].data.tags["status"]
        if model in BTYD:  # BTYD may not fit a bank's transaction log: then failed, with reason
            assert status in ("done", "failed")
        else:
            assert status == "done", model
            assert f"clv/{model}/truth_rmse" in metrics
            # constant predictions have no rank correlation: NaN metrics are not logged
            assert (f"clv/{model}/spearman" in metrics) == (model != "mean_value")
    # a learned model ranks customers better than the population mean (Gini 0 by construction)
    assert metrics["clv/lightgbm_tweedie/gini"] > 0.3
    assert abs(metrics["clv/mean_value/gini"]) < 1e-9


def test_comparison_predictions_and_plots_are_written(benchmark):
    tmp, _ = benchmark
    folder = tmp / "out" / "clv"
    table = pd.read_csv(folder / "comparison.csv")
    assert table["model"].tolist() == [*MODELS, "true_expected_value"]
    reference = table.set_index("model").loc["true_expected_value"]
    assert reference["status"] == "reference"  # the generator's truth scored as a model
    assert reference["rmse"] < table.set_index("model").loc["mean_value", "rmse"]
    assert {"gini", "spearman", "top10_share", "top20_lift", "rmse", "decile_mape"} <= set(
        table.columns
    )
    btyd = table.set_index("model").loc[sorted(BTYD)]
    done = btyd[btyd["status"] == "done"]
    # bank profit is the target, BTYD predicts spend: ranks only, no RMSE
    assert done["rmse"].isna().all()
    assert done["note"].str.contains("ranks only").all()
    failed = btyd[btyd["status"] == "failed"]
    assert failed["note"].str.contains("did not converge").all()
    assert "| model | status |" in (folder / "comparison.md").read_text()
    for plot in ("gain_curves.png", "decile_calibration.png"):
        assert (folder / plot).stat().st_size > 10_000
    predictions = pd.read_parquet(tmp / "out" / "clv_predictions.parquet")
    indicators = pd.read_parquet(tmp / "out" / "indicators.parquet")
    assert predictions["customer_id"].tolist() == indicators["customer_id"].tolist()
    assert set(predictions.columns) - {"customer_id"} == set(
        table.loc[table["status"] == "done", "model"]
    )
    deciles = pd.read_csv(folder / "deciles_lightgbm_tweedie.csv")
    assert deciles["decile"].tolist() == list(range(1, 11))


def test_an_empty_model_list_fails_the_run_with_a_clear_error(tmp_path):
    cfg = compose(isolated(tmp_path), output_dir=tmp_path / "out")
    cfg.clv.models = {}
    with pytest.raises(ValueError, match="clv.models is empty"):
        run(cfg)
    assert [r.info.status for r in finished_runs(tmp_path)] == ["FAILED"]


def test_a_model_predicting_another_horizon_than_the_target_is_refused():
    target = SimpleNamespace(horizon_months=12, discount_rate_monthly=0.008)
    check_horizon("ok", TrailingValue([], 12, 0.008), target)
    check_horizon("ok", BTYDRegressor(horizon_months=12, discount_rate_monthly=0.008), target)
    with pytest.raises(ValueError, match=r"clv.models.long: horizon_months=24 differs"):
        check_horizon("long", TrailingValue([], 24, 0.008), target)
    with pytest.raises(ValueError, match="discount_rate_monthly=0.0 differs"):
        check_horizon("flat", BTYDRegressor(horizon_months=12), target)
