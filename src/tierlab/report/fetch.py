"""Everything a report needs, read from the MLflow tracking store alone.

Works the same against the local SQLite store and a tracking server: runs are found with
:class:`mlflow.MlflowClient` and their artifacts downloaded into a temporary folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import yaml
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from tierlab.tracking import COMMAND_TAG

log = logging.getLogger(__name__)

#: Top-level artifact folders a report reads (the report itself, logged as ``report/``, is not
#: read back, so a regenerated report never depends on an earlier one).
ARTIFACT_FOLDERS = (
    "allocation",
    "bootstrap",
    "clv",
    "config",
    "data",
    "environment",
    "explain",
    "features",
    "segmentation",
    "tuning",
)


class ReportError(ValueError):
    """What the user asked for is not in the tracking store."""


@dataclass
class RunBundle:
    """One run: its MLflow record, its children and its downloaded artifacts."""

    run: Run
    folder: Path
    children: list[Run] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def tags(self) -> dict[str, str]:
        return self.run.data.tags

    @property
    def metrics(self) -> dict[str, float]:
        return self.run.data.metrics

    def path(self, name: str) -> Path | None:
        path = self.folder / name
        return path if path.is_file() else None

    def csv(self, name: str) -> pd.DataFrame | None:
        path = self.path(name)
        return pd.read_csv(path) if path else None

    def json(self, name: str) -> dict | None:
        path = self.path(name)
        return json.loads(path.read_text()) if path else None

    def png(self, name: str) -> bytes | None:
        path = self.path(name)
        return path.read_bytes() if path else None

    def files(self, folder: str, prefix: str = "", suffix: str = "") -> list[str]:
        """Names (``folder/<prefix>...<suffix>``) of the artifacts in ``folder``, sorted."""
        base = self.folder / folder
        if not base.is_dir():
            return []
        return sorted(f"{folder}/{p.name}" for p in base.glob(f"{prefix}*{suffix}"))

    def pngs(self, folder: str, prefix: str = "") -> list[str]:
        return self.files(folder, prefix, ".png")

    @cached_property
    def config_text(self) -> str:
        path = self.path("config/resolved_config.yaml")
        return path.read_text() if path else ""

    @cached_property
    def config(self) -> dict:
        return (yaml.safe_load(self.config_text) or {}) if self.config_text else {}


def experiment_id(client: MlflowClient, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        known = sorted(e.name for e in client.search_experiments())
        raise ReportError(
            f"no MLflow experiment named {name!r} in this tracking store; it has: "
            + (", ".join(known) or "none")
        )
    return experiment.experiment_id


def select_runs(client: MlflowClient, experiment: str, run_ids: list[str] | None) -> list[Run]:
    """The runs to report: the given ids (each must belong to ``experiment``), else the latest
    finished ``tierlab run`` of the experiment."""
    exp_id = experiment_id(client, experiment)
    if run_ids:
        runs = []
        for run_id in run_ids:
            try:
                run = client.get_run(run_id)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                raise ReportError(f"run {run_id!r} not found in the tracking store") from exc
            if run.info.experiment_id != exp_id:
                raise ReportError(
                    f"run {run_id} belongs to experiment id {run.info.experiment_id}, "
                    f"not to {experiment!r} (id {exp_id})"
                )
            if run.data.tags.get(COMMAND_TAG) != "run" or run.info.status != "FINISHED":
                log.warning(
                    "run %s is not a finished `tierlab run` parent run (status %s): its report "
                    "may have few sections",
                    run_id,
                    run.info.status,
                )
            runs.append(run)
        return runs
    found = client.search_runs(
        [exp_id],
        filter_string=f"tags.{COMMAND_TAG} = 'run' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not found:
        raise ReportError(
            f"experiment {experiment!r} has no finished `tierlab run` run; run one "
            "(tierlab run tracking.experiment_name=...) or pass --run-id"
        )
    return list(found)


def download(client: MlflowClient, run: Run, destination: Path) -> RunBundle:
    """The run's report artifacts and its child runs."""
    destination.mkdir(parents=True, exist_ok=True)
    for entry in client.list_artifacts(run.info.run_id):
        name = entry.path.split("/")[-1]
        if entry.is_dir and name in ARTIFACT_FOLDERS:
            client.download_artifacts(run.info.run_id, entry.path, str(destination))
        elif not entry.is_dir and name == "metrics.json":
            client.download_artifacts(run.info.run_id, entry.path, str(destination))
    children = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}'",
        max_results=1000,
    )
    children = sorted(children, key=lambda r: (r.info.run_name or "", r.info.run_id))
    return RunBundle(run, destination, children)


def tuning_runs(client: MlflowClient, run: Run, destination: Path) -> list[RunBundle]:
    """The latest finished tuning run of each Optuna study in the same experiment on the same
    data (same data fingerprint) that started before ``run``, with its ``tuning/`` artifacts.

    Runs started later are left out, so tuning done after a run never changes its report.
    """
    fingerprint = run.data.tags.get("data_fingerprint")
    if not fingerprint:
        return []
    found = client.search_runs(
        [run.info.experiment_id],
        filter_string=(
            "tags.tuning_role = 'tune' and attributes.status = 'FINISHED' and "
            f"tags.data_fingerprint = '{fingerprint}' and "
            f"attributes.start_time < {run.info.start_time}"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=200,
    )
    latest: dict[str, Run] = {}
    for candidate in found:
        if "mlflow.parentRunId" in candidate.data.tags:
            continue  # a trial
        latest.setdefault(candidate.data.tags.get("optuna_study", ""), candidate)
    bundles = []
    for _, candidate in sorted(latest.items()):
        folder = destination / f"tuning-{candidate.info.run_id}"
        folder.mkdir(parents=True, exist_ok=True)
        names = [e.path for e in client.list_artifacts(candidate.info.run_id)]
        if "tuning" in names:
            client.download_artifacts(candidate.info.run_id, "tuning", str(folder))
        bundles.append(RunBundle(candidate, folder))
    return bundles
