"""A real ``mlflow server`` on loopback: log -> register -> alias -> load -> score through it.

The server gets a random free port, a SQLite backend store and served artifacts in a temporary
folder (as ``make mlflow-server`` does in the project folder); it is stopped by PID (SIGTERM to
its process group) at the end, whatever happened.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMRegressor

from run_helpers import isolated
from tierlab import tracking
from tierlab.clv.metrics import value_metrics
from tierlab.clv.regressors import regressor_pipeline
from tierlab.config import compose
from tierlab.registry.register import register_models

BIN = Path(sys.executable).parent
HEALTH_TIMEOUT = 90  # seconds; 20-40 s is usual on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"mlflow server exited with {server.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"mlflow server not healthy after {HEALTH_TIMEOUT} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def server(tmp_path) -> Iterator[str]:
    """URL of a fresh tracking server; its store and artifacts live in tmp_path."""
    port = free_port()
    log = tmp_path / "server.log"
    command = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
        "--serve-artifacts", "--artifacts-destination", str(tmp_path / "served"),
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": f"{BIN}:{os.environ['PATH']}"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process, log)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def indicator_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A small seeded indicator frame (integer and float indicators, some missing) and a
    non-negative value that grows with frequency and spend."""
    rng = np.random.default_rng(seed)
    frequency = rng.poisson(6, n)
    spend = rng.gamma(2.0, 50.0, n)
    aum = rng.lognormal(8, 1, n)
    aum[rng.random(n) < 0.1] = np.nan
    X = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "frequency_12m": frequency,
            "monetary_total_12m": frequency * spend,
            "aum_avg_12m": aum,
            "tenure_days": rng.integers(30, 4000, n).astype("float64"),
        }
    )
    value = np.maximum(0.0, 0.3 * X["monetary_total_12m"] + rng.normal(0, 40, n))
    return X, value.to_numpy()


def test_log_register_alias_load_and_score_through_a_tracking_server(server, tmp_path):
    cfg = compose(
        isolated(tmp_path, f"tracking.uri={server}", "registry.clv_name=srv-clv",
                 "registry.tiering_name=srv-tiering"),
        output_dir=tmp_path / "out",
    )  # fmt: skip
    X, value = indicator_frame(300, seed=7)
    model = regressor_pipeline(
        LGBMRegressor(objective="tweedie", n_estimators=20, n_jobs=1, verbose=-1, random_state=0),
        target="clip_at_zero",
    ).fit(X.drop(columns="customer_id"), value)
    metrics = value_metrics(value, model.predict(X))
    with tracking.parent_run(cfg, "server-register") as run:
        result = register_models(cfg, model, X, metrics)
    assert mlflow.get_tracking_uri() == server
    experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    served = {p.name for p in (tmp_path / "served").rglob("*")}
    assert {"python_model.pkl", "model.pkl", "MLmodel"} <= served

    client = mlflow.MlflowClient()
    for name in ("srv-clv", "srv-tiering"):
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    client.set_registered_model_alias("srv-tiering", "production", "1")
    assert str(client.get_model_version_by_alias("srv-tiering", "production").version) == "1"
    assert result["tiering_uri"] == "models:/srv-tiering/1"

    loaded = mlflow.pyfunc.load_model("models:/srv-tiering@production")
    expected = loaded.predict(X.astype({c: "float64" for c in X.columns if c != "customer_id"}))
    np.testing.assert_allclose(expected["predicted_clv"], model.predict(X))

    X.to_csv(tmp_path / "customers.csv", index=False)
    done = subprocess.run(
        [str(BIN / "tierlab"), "score", "--model", "models:/srv-tiering@champion",
         "--input", str(tmp_path / "customers.csv"), "--output", str(tmp_path / "scored.parquet")],
        env={**os.environ, "MLFLOW_TRACKING_URI": server}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    pd.testing.assert_frame_equal(scored, expected)
    assert scored["tier"].value_counts().sort_index().index.tolist() == [1, 2, 3, 4]
