"""Issue 6 end to end, as a user types it: tune -> registered challenger -> promote -> score, each
command in a fresh process on a temporary store."""

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd

from run_helpers import isolated

TIERLAB = str(Path(sys.executable).with_name("tierlab"))


def tierlab(*args: str, env: dict) -> subprocess.CompletedProcess:
    out = subprocess.run([TIERLAB, *args], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, f"tierlab {args[0]} failed:\n{out.stderr[-3000:]}"
    return out


def test_a_tuned_model_is_registered_promoted_and_scored_from_a_fresh_process(tmp_path):
    store = f"sqlite:///{tmp_path}/mlruns.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    common = isolated(tmp_path, f"hydra.run.dir={tmp_path}/hydra")
    tiny = [
        "tuning=lightgbm_tweedie",
        "tuning.n_trials=2",
        "tuning.folds.kind=customers",
        "tuning.folds.n_folds=2",
        f"tuning.storage=sqlite:///{tmp_path}/optuna.db",
        "tuning.model.model.n_estimators=20",
    ]
    tierlab("tune", *common, *tiny, env=env)
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    for name in ("tierlab-clv", "tierlab-tiering"):
        first = client.get_model_version_by_alias(name, "champion")
        assert client.get_model_version_by_alias(name, "challenger").version == first.version
    # rerunning the same command resumes the complete study: no new trial, one more version
    tierlab("tune", *common, *tiny, env=env)
    second = client.get_model_version_by_alias("tierlab-clv", "challenger")
    assert second.version != first.version
    # a promote run on other data would score the models on a holdout they were not made for
    other = subprocess.run(
        [TIERLAB, "promote", *common, "data.n_customers=300"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert other.returncode == 1 and "trained on data with fingerprint" in other.stderr
    promoted = tierlab("promote", *common, env=env)
    assert "tierlab-clv: champion = version" in promoted.stdout
    decided = client.get_model_version("tierlab-clv", second.version).tags
    assert decided["promotion/metric"] == "gini"
    assert {"promotion/challenger_score", "promotion/champion_score"} <= set(decided)
    indicators = pd.read_parquet(next((tmp_path / "hydra").glob("**/indicators.parquet")))
    indicators.head(50).to_parquet(tmp_path / "customers.parquet")
    tierlab(
        "score",
        "--model",
        "models:/tierlab-tiering@champion",
        "--input",
        str(tmp_path / "customers.parquet"),
        "--output",
        str(tmp_path / "scored.parquet"),
        env=env,
    )
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert list(scored.columns) == ["customer_id", "tier", "predicted_clv", "service_level"]
    assert scored["customer_id"].tolist() == indicators["customer_id"].head(50).tolist()
    assert scored["tier"].between(1, 4).all() and scored["service_level"].notna().all()
