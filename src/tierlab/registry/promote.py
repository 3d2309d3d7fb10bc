"""Champion/challenger: ``tierlab promote`` moves ``champion`` to the challenger if it is better.

For each registered model (the CLV pipeline and the tiering model) the versions behind the
``challenger`` and ``champion`` aliases are loaded and scored on the same holdout: the
indicators at the cut-off of the configured data against the realised ``holdout_value``, with
``registry.promotion.metric`` (a key of :func:`tierlab.clv.metrics.value_metrics`; the tiering
model is scored on its ``predicted_clv``).  The champion moves only when the challenger is
strictly better in ``registry.promotion.direction``; ties and a NaN challenger score keep it.
Both scores and the decision are tags of the challenger version (``promotion/...``) and metrics
of the ``promote`` MLflow run.  Without a champion the challenger becomes champion; without a
challenger nothing happens and :class:`NoChallenger` says so.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from tierlab import tracking
from tierlab.clv.metrics import value_metrics
from tierlab.clv.stage import holdout_frame
from tierlab.data.stage import run_data_stage
from tierlab.features.stage import run_features_stage
from tierlab.registry.register import DECISION_TAG, version_by_alias
from tierlab.registry.score import check_input, input_schema

log = logging.getLogger(__name__)

DIRECTIONS = ("maximize", "minimize")


class PromotionError(ValueError):
    """``tierlab promote`` cannot decide: a user-facing error (no traceback on the CLI)."""


class NoChallenger(PromotionError):
    """A registered model has no version with the challenger alias (nothing to promote)."""


@dataclass
class Contest:
    """One registered model's challenger and champion versions (champion None if absent)."""

    key: str
    name: str
    challenger: str
    champion: str | None
    column: str | None  # output column holding predicted CLV (None: the prediction itself)


def is_better(challenger: float, champion: float, direction: str) -> bool:
    """Whether the challenger's score strictly beats the champion's (NaN is the worst score;
    a tie keeps the champion)."""
    if direction not in DIRECTIONS:
        raise PromotionError(
            f"registry.promotion.direction={direction!r}; expected one of {DIRECTIONS}"
        )
    if math.isnan(challenger):
        return False
    if math.isnan(champion):
        return True
    return challenger > champion if direction == "maximize" else challenger < champion


def check_provenance(client, name: str, version: str, data_stage) -> None:
    """Refuse to score a version on a holdout it may have seen, or on other data.

    A version records the data fingerprint and cut-off of its training run (tags copied at
    registration).  Scoring it needs the same data and a cut-off no earlier than its own: a
    model trained up to a later cut-off has learnt from part of this holdout.  Versions without
    those tags (registered by other tools) are scored as they are.
    """
    tags = client.get_model_version(name, version).tags
    fingerprint = data_stage.data.fingerprint()
    cutoff = str(data_stage.split.cutoff.date())
    trained = tags.get("data_fingerprint")
    if trained is not None and trained != fingerprint:
        raise PromotionError(
            f"{name} version {version} was trained on data with fingerprint {trained}, this "
            f"promote run loaded {fingerprint}: promote with the data config of the tuning run"
        )
    trained_cutoff = tags.get("split_cutoff")
    if trained_cutoff is not None and trained_cutoff > cutoff:
        raise PromotionError(
            f"{name} version {version} was trained with cut-off {trained_cutoff}, after this "
            f"promote run's cut-off {cutoff}: it has seen part of this holdout; promote with "
            "the split of the tuning run"
        )


def contests(cfg: DictConfig) -> list[Contest]:
    """Look up both models' aliases; NoChallenger (naming them) when a challenger is missing."""
    reg = cfg.registry
    client = mlflow.MlflowClient()
    found, missing = [], []
    for key, name, column in (
        ("clv", reg.clv_name, None),
        ("tiering", reg.tiering_name, "predicted_clv"),
    ):
        challenger = version_by_alias(client, name, reg.aliases.challenger)
        if challenger is None:
            missing.append(name)
            continue
        champion = version_by_alias(client, name, reg.aliases.champion)
        champion_version = None if champion is None else str(champion.version)
        found.append(Contest(key, name, str(challenger.version), champion_version, column))
    if missing:
        raise NoChallenger(
            f"no '@{reg.aliases.challenger}' version of {missing} in the registry at "
            f"{mlflow.get_registry_uri()}: nothing to promote; register a model first "
            "(tierlab tune ..., which calls tierlab.registry.register_models)"
        )
    return found


def predicted_clv(name: str, version: str, column: str | None, X: pd.DataFrame) -> np.ndarray:
    """Load one registered version and predict CLV for the customers in ``X``."""
    uri = f"models:/{name}/{version}"
    model_input = check_input(X, input_schema(uri), "the holdout indicator frame")
    prediction = mlflow.pyfunc.load_model(uri).predict(model_input)
    values = prediction[column] if column is not None else prediction
    return np.asarray(values, dtype="float64").ravel()


def promote(cfg: DictConfig) -> dict:
    """Compare challenger and champion of both registered models; move ``champion`` when the
    challenger is better.

    Runs as its own MLflow run (``promote``): the data and features stages of ``cfg`` give the
    holdout both versions are scored on.

    Returns
    -------
    dict
        Per model key (``clv``, ``tiering``): ``name``, ``challenger`` and ``champion``
        versions (after the decision: ``champion`` is the version holding the alias now),
        ``decision``, ``promoted`` (bool), ``challenger_score``, ``champion_score`` (NaN when
        not evaluated) and ``metric``.

    Raises
    ------
    NoChallenger
        When a model has no challenger version (checked before any work is done).
    """
    reg = cfg.registry
    metric, direction = str(reg.promotion.metric), str(reg.promotion.direction)
    is_better(0.0, 0.0, direction)  # validate direction and metric before any work
    _metric(np.array([0.0, 1.0]), np.array([0.0, 1.0]), metric)
    tracking.configure(cfg.tracking)
    found = contests(cfg)
    client = mlflow.MlflowClient()
    output_dir = Path(cfg.paths.output_dir)
    results: dict[str, dict] = {}
    with tracking.parent_run(cfg, "promote") as run:
        to_score = [c for c in found if c.champion not in (None, c.challenger)]
        if to_score:
            data_stage = run_data_stage(cfg, output_dir)
            features = run_features_stage(cfg, data_stage, output_dir)
            if features.targets is None:
                raise PromotionError(
                    f"data '{cfg.data.name}' has no holdout window (no time axis): cannot score "
                    "challenger and champion; promote on a data set with transactions"
                )
            for c in to_score:
                for version in (c.challenger, c.champion):
                    check_provenance(client, c.name, version, data_stage)
            rate = float(cfg.features.targets.discount_rate_monthly)
            h = holdout_frame(data_stage, features, rate)
            X = h.X.reset_index()
        for c in found:
            result = {"name": c.name, "metric": metric, "challenger": c.challenger}
            scores = {"challenger": math.nan, "champion": math.nan}
            if c.champion is None:
                promoted, decision = True, "no previous champion"
            elif c.champion == c.challenger:
                promoted, decision = False, f"version {c.challenger} is already the champion"
            else:
                with threadpool_limits(limits=int(cfg.clv.threads)):
                    for role in scores:
                        version = getattr(c, role)
                        predicted = predicted_clv(c.name, version, c.column, X)
                        scores[role] = _metric(h.value, predicted, metric)
                promoted = is_better(scores["challenger"], scores["champion"], direction)
                verb = "promoted over" if promoted else "kept champion"
                decision = (
                    f"{verb} version {c.champion}: {metric} {scores['challenger']:.6g} "
                    f"(challenger) vs {scores['champion']:.6g} (champion), {direction}"
                )
            if promoted:
                client.set_registered_model_alias(c.name, reg.aliases.champion, c.challenger)
            tags = {
                DECISION_TAG: decision,
                "promotion/metric": metric,
                "promotion/direction": direction,
                "promotion/challenger_score": str(scores["challenger"]),
                "promotion/champion_score": str(scores["champion"]),
                "promotion/champion_version": str(c.champion),
                "promotion/run_id": run.info.run_id,
            }
            for key, value in tags.items():
                client.set_model_version_tag(c.name, c.challenger, key, value)
            mlflow.log_metrics(
                {
                    f"promote/{c.key}/challenger_{metric}": scores["challenger"],
                    f"promote/{c.key}/champion_{metric}": scores["champion"],
                    f"promote/{c.key}/promoted": float(promoted),
                }
            )
            mlflow.set_tag(f"promote/{c.key}", f"{c.name}: {decision}")
            log.info("%s version %s: %s", c.name, c.challenger, decision)
            result.update(
                decision=decision,
                promoted=promoted,
                champion=c.challenger if promoted else c.champion,
                challenger_score=scores["challenger"],
                champion_score=scores["champion"],
            )
            results[c.key] = result
    return results


def _metric(actual: np.ndarray, predicted: np.ndarray, metric: str) -> float:
    metrics = value_metrics(actual, predicted)
    if metric not in metrics:
        raise PromotionError(
            f"registry.promotion.metric={metric!r} is not a holdout metric; choose one of "
            f"{sorted(metrics)}"
        )
    return float(metrics[metric])
