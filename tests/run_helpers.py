"""Helpers for end-to-end tests: keep a run's MLflow store, cache and outputs in a temp folder."""

from __future__ import annotations

from pathlib import Path

import mlflow


def isolated(tmp_path: Path, *overrides: str, data: str = "synthetic") -> list[str]:
    """Overrides that keep a `debug=fast` run's store, cache and outputs inside tmp_path."""
    cache = [f"data.cache_dir={tmp_path}/cache"] if data == "synthetic" else []
    return [
        f"data={data}",
        "debug=fast",
        f"tracking.uri=sqlite:///{tmp_path}/mlruns.db",
        f"tracking.artifact_root={tmp_path}/artifacts",
        *cache,
        *overrides,
    ]


def all_runs(tmp_path: Path, experiment: str = "tierlab-debug"):
    """Every run of an experiment in the temp store, child runs included."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns.db")
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def finished_runs(tmp_path: Path, experiment: str = "tierlab-debug"):
    """The parent runs of an experiment (each `tierlab run`), without the stages' child runs."""
    return [r for r in all_runs(tmp_path, experiment) if "mlflow.parentRunId" not in r.data.tags]
