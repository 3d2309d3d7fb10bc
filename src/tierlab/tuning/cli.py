"""``tierlab tune`` and ``tierlab tune-worker``: Hydra apps around :mod:`tierlab.tuning.tune`.

``tune_main`` only calls :func:`~tierlab.tuning.tune.tune`, ``tune_worker_main`` only
:func:`~tierlab.tuning.tune.tune_worker`; tests import those two functions.
"""

from __future__ import annotations

import signal
import sys
import threading

import hydra
from omegaconf import DictConfig

from tierlab.config import CONF_DIR, register_resolvers
from tierlab.tuning.tune import tune, tune_worker

register_resolvers()


def _unwind_on_sigterm() -> None:
    """SIGTERM (a scheduler stopping the job) unwinds like an error: the running trial is
    marked interrupted (its slot runs again on resume) and the MLflow run ends FAILED."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def tune_main(cfg: DictConfig) -> float | None:
    """``tierlab tune tuning=<name> [overrides]``; returns the best validation value."""
    _unwind_on_sigterm()
    return tune(cfg).best_value


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def tune_worker_main(cfg: DictConfig) -> None:
    """``tierlab tune-worker tuning=<name> [same overrides as tune]``."""
    _unwind_on_sigterm()
    tune_worker(cfg)


if __name__ == "__main__":
    tune_main()
