"""MLflow tracking: one parent run per ``tierlab run``, never left RUNNING.

* params: the flattened resolved config (values over ``tracking.max_param_length`` characters are
  cut, with a marker, so MLflow's parameter-length limit never fails a run);
* tags: git commit and dirty flag, tierlab version, data fingerprint, seed;
* artifacts: the resolved config as YAML, the Python and package versions
  (``environment/packages.json``), plus whatever the stages log;
* on any exception the run is ended as FAILED and the exception re-raised.
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import re
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from tierlab import __version__
from tierlab.config import PROJECT_ROOT
from tierlab.locking import file_lock

log = logging.getLogger(__name__)

for _noisy in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

#: MLflow's own limits (mlflow.utils.validation): key and value length.
MAX_PARAM_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
TRUNCATION_MARK = "...[truncated]"
MAX_TAG_LENGTH = 5000  # characters kept of a long tag value
#: Tag of the parent runs of `tierlab run`; tuning and promotion runs do not carry it.
COMMAND_TAG = "tierlab_command"


def mask(text: str) -> str:
    """``text`` (a URL, or text holding URLs such as a config) with the password of every
    ``scheme://user:password@host`` replaced by ``***``, for logs, MLflow tags and reports."""
    return re.sub(r"(://[^:/@\s]+:)[^@\s]*@", r"\1***@", str(text))


def flatten_config(cfg: DictConfig | Mapping[str, Any], max_length: int) -> dict[str, str]:
    """Flatten a (resolved) config to ``{"data.n_customers": "20000", ...}``.

    Values longer than ``max_length`` characters are cut and end with ``...[truncated]``, so
    the result always satisfies MLflow's parameter-length limit.
    """
    if not len(TRUNCATION_MARK) < max_length <= MAX_PARAM_VALUE_LENGTH:
        raise ValueError(
            f"max_param_length={max_length} should be > {len(TRUNCATION_MARK)} and <= "
            f"{MAX_PARAM_VALUE_LENGTH} (MLflow's limit) characters"
        )
    container = (
        OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    )
    flat: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping) and node:
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
            return
        text = str(node)
        if len(text) > max_length:
            text = text[: max_length - len(TRUNCATION_MARK)] + TRUNCATION_MARK
        flat[prefix[:MAX_PARAM_KEY_LENGTH]] = text

    walk(container, "")
    return flat


def git_state(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Git commit and dirty flag of the source tree (``unknown`` outside a git checkout).

    Dirty = a tracked file differs from the commit, or an untracked file lies in ``src/`` or
    ``conf/`` (new code or config that the run may have used but the commit does not hold).
    """

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=20, check=True
        )
        return out.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no")) or bool(
            git("status", "--porcelain", "--untracked-files=all", "--", "src", "conf")
        )
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit, "git_dirty": str(dirty).lower()}


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise first-time set-up of a local SQLite store across processes.

    Parallel jobs (``--multirun`` on the joblib launcher, tuning workers) that open a fresh
    store at once race on its schema migration and on creating the experiment; an exclusive
    ``fcntl`` lock on ``<db>.lock`` beside the database makes them take turns.  Other stores
    (servers) do their own locking.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri.removeprefix("sqlite:///"))
    with file_lock(db.parent / f"{db.name}.lock"):
        yield


def configure(tracking: DictConfig) -> str:
    """Point MLflow at the configured store and experiment; return the experiment id."""
    mlflow.set_tracking_uri(tracking.uri)
    with store_lock(str(tracking.uri)):
        return _experiment_id(tracking)


def _experiment_id(tracking: DictConfig) -> str:
    experiment = mlflow.get_experiment_by_name(tracking.experiment_name)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        location = None
        if not str(tracking.uri).startswith(("http://", "https://", "databricks")):
            Path(tracking.artifact_root).mkdir(parents=True, exist_ok=True)
            location = Path(tracking.artifact_root).resolve().as_uri()
        experiment_id = mlflow.create_experiment(
            tracking.experiment_name, artifact_location=location
        )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@contextmanager
def parent_run(cfg: DictConfig, run_name: str) -> Iterator[mlflow.ActiveRun]:
    """The run's MLflow parent run: params, base tags and resolved config logged up front.

    Ends FINISHED on success, KILLED on Ctrl-C and FAILED on any other exception (SIGTERM
    included, see :func:`tierlab.run.main`); the exception is re-raised, so no run is ever left
    RUNNING.
    """
    configure(cfg.tracking)
    run = mlflow.start_run(run_name=run_name)
    try:
        params = flatten_config(cfg, int(cfg.tracking.max_param_length))
        items = list(params.items())
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            mlflow.log_params(dict(items[i : i + 100]))
        mlflow.set_tags(
            {
                **git_state(),
                "tierlab_version": __version__,
                "seed": str(cfg.seed),
                "task_name": str(cfg.task_name),
                **hydra_job_tags(),
            }
        )
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/resolved_config.yaml")
        mlflow.log_dict(environment(), "environment/packages.json")
        yield run
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            mlflow.end_run(status=status)
        except Exception:  # never hide the original error behind a tracking error
            log.exception("could not mark MLflow run %s as %s", run.info.run_id, status)
        raise
    mlflow.end_run(status="FINISHED")


def environment() -> dict[str, Any]:
    """Python version, platform and every installed distribution with its version (sorted),
    so a report can say exactly which packages produced a run."""
    packages = {
        dist.metadata["Name"]: dist.version
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"]
    }
    return {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "packages": dict(sorted(packages.items(), key=lambda item: item[0].lower())),
    }


def hydra_job_tags() -> dict[str, str]:
    """The command-line overrides of this Hydra job, quoted for a POSIX shell (``tierlab run``
    followed by them reruns the job), and its number in a sweep, so runs of a ``--multirun``
    sweep can be told apart; empty outside a Hydra app (tests, notebooks)."""
    if not HydraConfig.initialized():
        return {}
    job = HydraConfig.get()
    overrides = shlex.join(job.overrides.task)  # quoted for a shell: the rerun command
    if len(overrides) > MAX_TAG_LENGTH:
        overrides = overrides[: MAX_TAG_LENGTH - len(TRUNCATION_MARK)] + TRUNCATION_MARK
    tags = {"hydra_overrides": overrides}
    if str(job.mode) == "RunMode.MULTIRUN":
        tags["hydra_job_num"] = str(job.job.num)
    return tags


def run_url(run: mlflow.ActiveRun) -> str:
    """Where to look at a run: the UI path for a local store, the server URL otherwise."""
    info = run.info
    uri = mlflow.get_tracking_uri()
    path = f"#/experiments/{info.experiment_id}/runs/{info.run_id}"
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/{path}"
    return f"{uri} (mlflow ui --backend-store-uri {uri}, then http://127.0.0.1:5000/{path})"
