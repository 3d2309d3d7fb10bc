"""The Optuna study: created once, then filled by one or more processes, trial by trial.

Semantics
---------
* ``tuning.n_trials`` is the size of the study: the number of *counted* trials it must hold.
  Counted = finished as COMPLETE, PRUNED or FAIL (a model that raised or gave a NaN metric, with
  the reason in the trial's ``fail_reason`` attribute).  A trial interrupted by Ctrl-C, SIGTERM
  or the death of its worker is marked FAIL with the ``interrupted`` attribute and does not
  count: its slot is run again.
* ``tierlab tune`` (:func:`open_study` with ``create=True``) creates or loads the study and tops
  it up with WAITING trials (empty "slots" whose parameters the sampler fills in) until
  counted + waiting + running = ``n_trials``.  Rerunning the same command after an interruption
  therefore completes the study, and rerunning it on a complete study runs no trial.
* Every process (``tune`` and any number of ``tune-worker``) claims WAITING trials one at a
  time; the storage makes a claim atomic (RDB row update, journal replay order), so no slot is
  run twice and no trial is created beyond ``n_trials``.  Workers never create slots, so only
  one ``tierlab tune`` may run per study; start it (it creates the study and its tables) before
  the workers.
* The TPE sampler is seeded per trial from ``tuning.sampler.seed`` and the trial number: a serial
  run is reproducible, and parallel workers or a resumed run do not repeat the same draws.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from dataclasses import dataclass

import mlflow
import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from tierlab.tuning.storage import mask, open_storage

log = logging.getLogger(__name__)
PRUNERS = ("median", "successive_halving", "none")
#: Config that defines the objective: a study refuses to mix trials of different objectives.
OBJECTIVE_KEYS = ("data", "split", "features", "seed")


@dataclass
class Study:
    """An open study with its storage and id (the storage API claims trials by id)."""

    study: optuna.Study
    storage: optuna.storages.BaseStorage
    study_id: int
    url: str

    @property
    def name(self) -> str:
        return self.study.study_name


def objective_key(cfg: DictConfig, metric: str) -> str:
    """Hash of what defines the objective: data, split, features, seed, the model node (threads
    aside), the folds, the kind and the metric.  Not the space, sampler, pruner or n_trials."""
    tuning = cfg.tuning
    node = OmegaConf.to_container(tuning.model, resolve=True)
    _drop(node, {"n_jobs", "thread_count", "nthread"})
    parts = {k: _plain(cfg[k]) for k in OBJECTIVE_KEYS}
    _drop(parts["data"], {"cache_dir"})
    _drop(parts["features"], {"engine_options"})
    parts |= {"model": node, "folds": OmegaConf.to_container(tuning.folds, resolve=True)}
    parts |= {"kind": str(tuning.kind), "metric": metric}
    if str(tuning.kind) == "segmentation":  # tier value, tier-size rule, samples score trials
        parts["segmentation"] = _plain(cfg.segmentation)
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def open_study(cfg: DictConfig, metric: str, create: bool) -> Study:
    """Create (``tune``) or load (``tune-worker``) the study of ``cfg.tuning``.

    Raises
    ------
    ValueError
        When a worker's study does not exist, or an existing study was created for another
        objective or direction.
    """
    tuning = cfg.tuning
    url, name, direction = str(tuning.storage), str(tuning.study_name), str(tuning.direction)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # tierlab logs its own line per trial
    pruner = make_pruner(tuning.pruner)  # a config error before anything is created
    storage = open_storage(url)
    key = objective_key(cfg, metric)
    if create:
        study = optuna.create_study(
            storage=storage, study_name=name, direction=direction, load_if_exists=True
        )
        if "objective_key" not in study.user_attrs:
            study.set_user_attr("objective_key", key)
            study.set_user_attr("metric", metric)
            study.set_user_attr("tuning", str(tuning.name))
    else:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            raise ValueError(
                f"study {name!r} does not exist in {mask(url)}: run `tierlab tune "
                f"tuning={tuning.name} ...` first (with the same overrides) to create it, then "
                "start the workers"
            ) from None
    found = study.user_attrs.get("objective_key")
    if found != key and create and not _finished(study):
        # an earlier attempt failed before any trial ran (e.g. on its data): nothing to mix
        log.info("study %r had no finished trial: re-keyed for the current objective", name)
        study.set_user_attr("objective_key", key)
        study.set_user_attr("metric", metric)
        found = key
    if found != key:
        raise ValueError(
            f"study {name!r} in {mask(url)} was created for another objective (objective key "
            f"{found} vs {key} now: data, split, features, seed, model node, folds or metric "
            f"differ); rerun with the original settings or name a new study with "
            f"tuning.study_name=<name>"
        )
    if study.direction.name.lower() != direction:
        raise ValueError(
            f"study {name!r} maximises or minimises differently: it was created with "
            f"direction={study.direction.name.lower()}, tuning.direction={direction}"
        )
    study.pruner = pruner
    return Study(study, storage, storage.get_study_id_from_name(name), url)


def _finished(study: optuna.Study) -> bool:
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return any(t.state in done for t in study.get_trials(deepcopy=False))


def make_pruner(settings: DictConfig) -> optuna.pruners.BasePruner:
    """``tuning.pruner``: ``kind`` picks the pruner, its block holds the arguments."""
    kind = str(settings.kind)
    if kind not in PRUNERS:
        raise ValueError(f"tuning.pruner.kind={kind!r} should be one of {list(PRUNERS)}")
    if kind == "none":
        return optuna.pruners.NopPruner()
    kwargs = OmegaConf.to_container(settings[kind], resolve=True) if kind in settings else {}
    cls = {
        "median": optuna.pruners.MedianPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    }[kind]
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tuning.pruner.{kind}={kwargs}: {exc}") from exc


def make_sampler(settings: DictConfig, number: int) -> optuna.samplers.TPESampler:
    """The TPE sampler of trial ``number``, seeded from ``tuning.sampler.seed`` and the number."""
    seed = (int(settings.seed) * 1_000_003 + number) % 2**32
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=int(settings.n_startup_trials))


def counts(handle: Study) -> dict[str, int]:
    """Trials by state; ``counted`` is what ``n_trials`` is measured against."""
    out = dict.fromkeys(("complete", "pruned", "failed", "interrupted", "running", "waiting"), 0)
    for trial in handle.study.get_trials(deepcopy=False):
        if trial.state == TrialState.FAIL:
            out["interrupted" if "interrupted" in trial.user_attrs else "failed"] += 1
        else:
            out[trial.state.name.lower()] += 1
    out["counted"] = out["complete"] + out["pruned"] + out["failed"]
    return out


def reap(handle: Study) -> int:
    """Mark RUNNING trials of dead worker processes on this machine as interrupted FAILs."""
    host, reaped = socket.gethostname(), 0
    for trial in handle.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get("worker", ""))
        worker_host, _, pid = worker.rpartition(":")
        if worker_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        trial_id = handle.storage.get_trial_id_from_study_id_trial_number(
            handle.study_id, trial.number
        )
        try:
            handle.storage.set_trial_user_attr(trial_id, "interrupted", f"worker {worker} gone")
            handle.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue
        reaped += 1
        log.warning("trial %d: its worker %s is gone; marked interrupted", trial.number, worker)
        _end_orphan_runs(trial.user_attrs.get("mlflow_run_id"))
    return reaped


def _end_orphan_runs(run_id: str | None) -> None:
    """Mark the MLflow runs a killed worker left RUNNING (its trial and parent run) KILLED."""
    if not run_id:
        return
    try:
        client = mlflow.MlflowClient()
        child = client.get_run(run_id)
        ids = [run_id, child.data.tags.get("mlflow.parentRunId")]
        for found in filter(None, ids):
            if client.get_run(found).info.status == "RUNNING":
                client.set_terminated(found, status="KILLED")
    except Exception:  # another tracking store, or the run is gone: nothing to tidy
        log.debug("could not end the MLflow runs of trial run %s", run_id, exc_info=True)


def top_up(handle: Study, n_trials: int) -> int:
    """Enqueue WAITING slots until counted + waiting + running = ``n_trials``; return how many."""
    if n_trials < 1:
        raise ValueError(f"tuning.n_trials={n_trials} should be >= 1")
    c = counts(handle)
    missing = n_trials - c["counted"] - c["waiting"] - c["running"]
    for _ in range(max(missing, 0)):
        handle.study.enqueue_trial({})
    return max(missing, 0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _plain(value):
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _drop(node, keys: set[str]) -> None:
    """Remove ``keys`` from a nested container in place."""
    if isinstance(node, dict):
        for key in list(node):
            if key in keys:
                del node[key]
            else:
                _drop(node[key], keys)
    elif isinstance(node, list):
        for item in node:
            _drop(item, keys)
