"""What a study looks like at the end: trials table, best parameters and Optuna's plots."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

log = logging.getLogger(__name__)
TRIAL_COLUMNS = ("number", "value", "state", "datetime_start", "duration", "params", "user_attrs")


def write_summary(study: optuna.Study, folder: Path, metric: str, seed: int) -> list[str]:
    """Write ``trials.csv``, ``best_params.json`` and the plots to ``folder``; return the
    names of the plots that could not be drawn (with the reason logged)."""
    folder.mkdir(parents=True, exist_ok=True)
    study.trials_dataframe(attrs=TRIAL_COLUMNS).to_csv(folder / "trials.csv", index=False)
    best = study.best_trial
    (folder / "best_params.json").write_text(
        json.dumps(
            {"trial": best.number, "metric": metric, "value": best.value, "params": best.params},
            indent=2,
            default=str,
        )
    )
    skipped = []
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    plots = {
        "optimization_history.png": lambda: (
            optuna.visualization.matplotlib.plot_optimization_history(study, target_name=metric)
        ),
        "param_importances.png": lambda: optuna.visualization.matplotlib.plot_param_importances(
            study, evaluator=evaluator, target_name=metric
        ),
    }
    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    for filename, draw in plots.items():
        if filename == "param_importances.png" and n_complete < 2:
            skipped.append(filename)
            log.info("tuning: %s not drawn: it needs 2 complete trials", filename)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                ax = draw()
        except (RuntimeError, ValueError) as exc:  # e.g. no parameter varies
            skipped.append(filename)
            log.info("tuning: %s not drawn: %s", filename, exc)
            continue
        figure = ax.figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        figure.savefig(folder / filename, dpi=90)
        plt.close(figure)
    return skipped
