"""End to end: `tierlab run` composes the config, runs the stages and tracks one MLflow run."""

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from hydra.errors import ConfigCompositionException

from run_helpers import all_runs, finished_runs, isolated
from tierlab.config import compose
from tierlab.run import run


def test_run_returns_metrics_and_tracks_one_finished_run(tmp_path):
    cfg = compose(isolated(tmp_path), output_dir=tmp_path / "out")
    metrics = run(cfg)
    assert metrics["data/n_customers"] == 400
    assert metrics["data/n_transactions"] > 10_000
    assert all(isinstance(v, float) for v in metrics.values())
    (found,) = finished_runs(tmp_path)
    assert found.info.status == "FINISHED"
    assert found.data.metrics["data/n_customers"] == 400
    assert found.data.params["split.holdout_months"] == "6"
    assert len(found.data.tags["data_fingerprint"]) == 16
    assert found.data.tags["split_cutoff"] == "2025-06-30"
    client = mlflow.MlflowClient()
    logged = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"config", "data", "metrics.json"} <= logged
    data_artifacts = {a.path for a in client.list_artifacts(found.info.run_id, "data")}
    assert data_artifacts == {"data/data_summary.json", "data/realism.png"}
    assert (tmp_path / "out" / "realism.png").stat().st_size > 10_000
    # the features stage: indicators, targets, data dictionary and summary
    assert metrics["features/n_indicators"] >= 25
    assert metrics["features/n_customers"] == metrics["targets/n_customers"]
    feature_artifacts = {a.path for a in client.list_artifacts(found.info.run_id, "features")}
    assert feature_artifacts == {
        "features/data_dictionary.csv",
        "features/data_dictionary.md",
        "features/summary.csv",
        "features/distributions.png",
    }
    indicators = pd.read_parquet(tmp_path / "out" / "indicators.parquet")
    targets = pd.read_parquet(tmp_path / "out" / "targets.parquet")
    assert indicators["customer_id"].tolist() == targets["customer_id"].tolist()
    assert not set(targets.columns) & (set(indicators.columns) - {"customer_id"})
    btyd = pd.read_parquet(tmp_path / "out" / "btyd_summary.parquet")
    assert btyd.columns.tolist() == ["customer_id", "frequency", "recency", "T", "monetary_value"]


def test_same_config_and_seed_give_the_same_numbers(tmp_path):
    first = run(compose(isolated(tmp_path), output_dir=tmp_path / "1"))
    # a second cache folder forces a fresh generation
    second = run(
        compose(isolated(tmp_path, f"data.cache_dir={tmp_path}/cache2"), output_dir=tmp_path / "2")
    )
    timings = {k for k in first if k.endswith("seconds")}  # wall-clock, not a result
    assert {k: v for k, v in first.items() if k not in timings} == {
        k: v for k, v in second.items() if k not in timings
    }
    fingerprints = {r.data.tags["data_fingerprint"] for r in finished_runs(tmp_path)}
    assert len(fingerprints) == 1


def test_a_failing_stage_leaves_the_run_failed_not_running(tmp_path):
    cfg = compose(isolated(tmp_path, "split.holdout_months=40"), output_dir=tmp_path / "out")
    with pytest.raises(ValueError, match="should be after the data start"):
        run(cfg)
    (found,) = finished_runs(tmp_path)
    assert found.info.status == "FAILED"


def test_unknown_config_keys_are_errors():
    with pytest.raises(ConfigCompositionException, match="n_customer"):
        compose(["data.n_customer=10"])


def test_cli_runs_an_experiment_in_a_subprocess(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    overrides = isolated(tmp_path, f"hydra.run.dir={tmp_path}/hydra")
    tierlab = Path(sys.executable).with_name("tierlab")
    out = subprocess.run(
        [str(tierlab), "run", *overrides], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MLflow run" in out.stderr + out.stdout
    assert (tmp_path / "hydra" / "metrics.json").exists()
    assert (tmp_path / "hydra" / ".hydra" / "config.yaml").exists()
    (found,) = finished_runs(tmp_path)
    assert found.info.status == "FINISHED"


def test_cli_help_lists_the_commands():
    from tierlab.cli import main

    assert main(["--help"]) == 0
    assert main(["no-such-command"]) == 2


@pytest.mark.shared_data
@pytest.mark.parametrize("data", ["cdnow", "cc_general"])
def test_run_on_real_data_sets(tmp_path, shared_data_dir, data):
    # the credit-card data has none of the default clustering indicators: cluster on all of them
    extra = ["segmentation.indicators=all"] if data == "cc_general" else []
    metrics = run(compose(isolated(tmp_path, *extra, data=data), output_dir=tmp_path / "out"))
    if data == "cdnow":  # debug=fast keeps the first 400 customers of the log
        assert 400 < metrics["data/n_transactions"] < 69_659
    else:
        assert metrics["data/n_customers"] == 400
    (found,) = finished_runs(tmp_path)
    assert found.data.tags["data_name"] == data
    assert ("split_cutoff" in found.data.tags) == (data == "cdnow")


def test_module_entry_point_prints_the_composed_config():
    out = subprocess.run(
        [sys.executable, "-m", "tierlab.run", "--cfg", "job", "data.n_customers=123"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "n_customers: 123" in out.stdout


def test_importing_tierlab_turns_mlflow_telemetry_off():
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_DISABLE_TELEMETRY",)}
    code = "import tierlab, os; print(os.environ['MLFLOW_DISABLE_TELEMETRY'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "true"


def test_a_multirun_sweep_on_the_joblib_launcher_gives_one_run_per_job(tmp_path):
    overrides = isolated(
        tmp_path,
        f"hydra.sweep.dir={tmp_path}/sweep",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "clv=lightgbm,elastic_net",
        "segmentation=kmeans,gmm",
    )
    tierlab = Path(sys.executable).with_name("tierlab")
    out = subprocess.run(
        [str(tierlab), "run", "--multirun", *overrides],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = finished_runs(tmp_path)
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4
    assert {r.data.tags["hydra_job_num"] for r in runs} == {"0", "1", "2", "3"}
    chosen = {
        tuple(o for o in r.data.tags["hydra_overrides"].split() if o.startswith(("clv=", "seg")))
        for r in runs
    }
    assert chosen == {
        (f"clv={c}", f"segmentation={m}")
        for c in ("lightgbm", "elastic_net")
        for m in ("kmeans", "gmm")
    }
    children = {r.info.run_name for r in all_runs(tmp_path) if "mlflow.parentRunId" in r.data.tags}
    assert {"seg-kmeans", "seg-gmm", "clv-elastic_net", "clv-lightgbm_tweedie"} <= children
