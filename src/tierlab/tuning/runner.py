"""Running trials: claim a WAITING slot, evaluate it as a nested MLflow child run, record it.

Any number of processes run :func:`run_trials` on one study (see :mod:`tierlab.tuning.study` for
the slot semantics).  A trial that raises or yields a NaN is recorded as FAIL with its reason
and the study goes on; Ctrl-C or SIGTERM marks the running trial interrupted (its slot is run
again on resume) and propagates.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable

import mlflow
import optuna
from omegaconf import DictConfig
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from tierlab.tuning.storage import claim_lock
from tierlab.tuning.study import Study, counts, make_sampler

log = logging.getLogger(__name__)


def claim(handle: Study, sampler: DictConfig) -> optuna.Trial | None:
    """Atomically take one WAITING trial (None when there is none left)."""
    storage, study = handle.storage, handle.study
    with claim_lock(handle.url):
        trial_id = number = None
        for waiting in storage.get_all_trials(handle.study_id, states=(TrialState.WAITING,)):
            candidate = storage.get_trial_id_from_study_id_trial_number(
                handle.study_id, waiting.number
            )
            try:
                if storage.set_trial_state_values(candidate, state=TrialState.RUNNING):
                    trial_id, number = candidate, waiting.number
                    break
            except UpdateFinishedTrialError:
                pass  # another worker was first and is done already
    if trial_id is None:
        return None
    study.sampler = make_sampler(sampler, number)
    trial = optuna.Trial(study, trial_id)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    return trial


def run_trials(
    handle: Study,
    objective: Callable[[optuna.Trial], float],
    cfg: DictConfig,
    role: str,
) -> int:
    """Claim and run trials until none is left, the study is full or ``tuning.timeout``
    seconds have passed; return how many this process ran."""
    tuning = cfg.tuning
    n_trials, timeout = int(tuning.n_trials), tuning.timeout
    started, ran = time.monotonic(), 0
    while timeout is None or time.monotonic() - started < float(timeout):
        if counts(handle)["counted"] >= n_trials:
            break
        trial = claim(handle, tuning.sampler)
        if trial is None:
            break
        frozen = run_trial(handle, trial, objective, role)
        ran += 1
        _progress(handle, frozen, n_trials)
    else:
        log.info("tuning: timeout of %s s reached; rerun the command to continue", timeout)
    return ran


def run_trial(
    handle: Study, trial: optuna.Trial, objective: Callable[[optuna.Trial], float], role: str
) -> FrozenTrial:
    """One trial as a nested MLflow child run; failures are recorded, never raised (except an
    interruption, which marks the trial interrupted and propagates)."""
    study, started = handle.study, time.perf_counter()
    child = mlflow.start_run(run_name=f"trial-{trial.number}", nested=True)
    trial.set_user_attr("mlflow_run_id", child.info.run_id)
    mlflow.set_tags(
        {"optuna_study": handle.name, "optuna_trial": str(trial.number), "tuning_role": role}
    )
    value, reason = None, ""
    try:
        value = objective(trial)
        state = TrialState.COMPLETE
        if value is None or not math.isfinite(value):
            state, reason = TrialState.FAIL, f"objective value is {value}"
    except optuna.TrialPruned as exc:
        state, reason = TrialState.PRUNED, str(exc)
    except Exception as exc:  # a bad configuration of the model: record it, go on
        state, reason = TrialState.FAIL, f"{type(exc).__name__}: {exc}"
        log.debug("trial %d failed", trial.number, exc_info=True)
    except BaseException as exc:  # Ctrl-C, SIGTERM (SystemExit): the slot is run again later
        trial.set_user_attr("interrupted", type(exc).__name__)
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        mlflow.set_tag("optuna_state", "INTERRUPTED")
        mlflow.end_run(status="KILLED")
        raise
    if state == TrialState.FAIL:
        trial.set_user_attr("fail_reason", reason[:2000])
        mlflow.set_tag("fail_reason", reason[:5000])
    seconds = time.perf_counter() - started
    trial.set_user_attr("seconds", seconds)
    frozen = study.tell(
        trial, value if state == TrialState.COMPLETE else None, state=state, skip_if_finished=True
    )
    mlflow.log_metric("trial/seconds", seconds)
    mlflow.set_tag("optuna_state", frozen.state.name)
    mlflow.end_run(status="FAILED" if frozen.state == TrialState.FAIL else "FINISHED")
    return frozen


def wait_for_others(handle: Study, seconds: float, poll: float = 2.0) -> None:
    """Wait (up to ``seconds``) for trials other workers are still running."""
    deadline, announced = time.monotonic() + float(seconds), False
    while (running := counts(handle)["running"]) and time.monotonic() < deadline:
        if not announced:
            log.info("tuning: waiting for %d trial(s) running in other workers", running)
            announced = True
        time.sleep(poll)
    if running:
        log.warning(
            "tuning: %d trial(s) still running after %s s (tuning.wait_for_workers); "
            "refitting on the best finished trial",
            running,
            seconds,
        )


def _progress(handle: Study, frozen: FrozenTrial, n_trials: int) -> None:
    c = counts(handle)
    value = "" if frozen.value is None else f" value={frozen.value:.4g}"
    best = ""
    if c["complete"]:
        b = handle.study.best_trial
        best = f"; best {b.value:.4g} (trial {b.number})"
    reason = frozen.user_attrs.get("fail_reason", "")
    log.log(
        logging.WARNING if reason else logging.INFO,
        "trial %d %s%s in %.1f s [%d/%d done%s]%s %s",
        frozen.number,
        frozen.state.name,
        value,
        frozen.user_attrs.get("seconds", 0.0),
        c["counted"],
        n_trials,
        best,
        f" ({reason})" if reason else "",
        ", ".join(f"{k}={v}" for k, v in frozen.params.items()),
    )
