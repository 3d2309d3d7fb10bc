"""Log and register the two registry models: the CLV pipeline and the pyfunc tiering model.

:func:`register_models` is called by the tuning code inside its active parent MLflow run, after
the refit on the whole calibration window and the one holdout evaluation.  Both models get

* a signature: the pipeline's feature columns as ``double`` (integer indicators included, so
  missing values never clash with an integer type); the tiering model also takes an optional
  ``customer_id`` (long) and returns ``customer_id``, ``tier``, ``predicted_clv``,
  ``service_level``;
* a synthetic input example: per-column quantiles of the reference indicators, one row per
  quantile (aggregates, not customers);
* explicit ``pip_requirements`` (``registry.requirements`` pinned to the installed versions;
  inferring them costs 8-15 s).  tierlab itself must be installed where the models are loaded
  (the tiering model's class and the pipeline's steps live in it);
* tags: the holdout metrics (``holdout/<metric>``), the run id, the paired version of the other
  model.

A new version gets alias ``challenger``; the first version of a model (no ``champion`` yet) also
becomes ``champion`` (tag ``promotion/decision = first version``).  Registration is all or
nothing as far as the registry allows: if the tiering model cannot be registered, the CLV
version just created is deleted again, and every error says what exists.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from omegaconf import DictConfig

from tierlab.registry.tiering import CLV_ARTIFACT, build_tiering_model
from tierlab.segmentation.preprocess import ID_COLUMN, columns_repr

log = logging.getLogger(__name__)

#: Artifact names of the two models inside the run.
CLV_MODEL_NAME = "clv_model"
TIERING_MODEL_NAME = "tiering_model"
#: Version tag recording why a version holds (or does not hold) the champion alias.
DECISION_TAG = "promotion/decision"


def feature_columns(clv_model, X_reference: pd.DataFrame) -> list[str]:
    """The pipeline's input columns: ``feature_names_in_`` (set by fitting on a DataFrame), or
    else every column of ``X_reference`` except ``customer_id``; all must be in
    ``X_reference``."""
    names = getattr(clv_model, "feature_names_in_", None)
    if names is None:
        names = [c for c in X_reference.columns if c != ID_COLUMN]
    features = [str(c) for c in names]
    if ID_COLUMN in features:
        raise ValueError(
            f"the CLV model was fitted with '{ID_COLUMN}' as a feature; fit it on the indicator "
            f"frame indexed by {ID_COLUMN} (as the CLV stage does), never on the id itself"
        )
    absent = [c for c in features if c not in X_reference.columns]
    if absent:
        raise ValueError(
            f"X_reference lacks the columns {absent} the CLV model was fitted on; columns "
            f"present: {columns_repr(X_reference.columns)}"
        )
    return features


#: Tags of the training run copied onto every registered version (data and split).
PROVENANCE_TAGS = ("data_fingerprint", "split_cutoff", "split_holdout_end")


def signatures(
    features: Sequence[str], id_type: str = "long"
) -> tuple[ModelSignature, ModelSignature]:
    """Signatures of the CLV model and the tiering model (``customer_id`` of ``id_type``:
    ``long`` for numeric ids, ``string`` for data sets whose loaders read ids as text)."""
    inputs = [ColSpec("double", c) for c in features]
    clv = ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec("double")]))
    tiering = ModelSignature(
        inputs=Schema([ColSpec(id_type, ID_COLUMN, required=False), *inputs]),
        outputs=Schema(
            [
                ColSpec(id_type, ID_COLUMN, required=False),
                ColSpec("long", "tier"),
                ColSpec("double", "predicted_clv"),
                ColSpec("string", "service_level"),
            ]
        ),
    )
    return clv, tiering


def synthetic_example(X: pd.DataFrame, quantiles: Sequence[float]) -> pd.DataFrame:
    """One row per quantile, each column at that quantile of its own observed values.

    Columns are taken independently, so no row is a customer's row; a column with no observed
    value is NaN throughout.
    """
    values = X.to_numpy(dtype="float64")
    rows = []
    for q in quantiles:
        row = []
        for j in range(values.shape[1]):
            observed = values[~np.isnan(values[:, j]), j]
            row.append(float(np.quantile(observed, q)) if len(observed) else np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=X.columns, dtype="float64")


def pinned_requirements(packages: Sequence[str]) -> list[str]:
    """``name==installed version`` for each package (an error names any that is missing)."""
    pins, absent = [], []
    for name in packages:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            absent.append(name)
    if absent:
        raise ValueError(
            f"registry.requirements lists {absent}, which are not installed here; the models' "
            "requirements pin the installed versions"
        )
    return pins


@contextmanager
def _active_run() -> Iterator[mlflow.ActiveRun]:
    """The caller's active run, or a ``register`` run of our own (ended FAILED on error)."""
    active = mlflow.active_run()
    if active is not None:
        yield active
        return
    with mlflow.start_run(run_name="register") as run:
        yield run


def version_by_alias(client: mlflow.MlflowClient, name: str, alias: str):
    """The version holding ``alias``, or None (also when the model does not exist yet)."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def register_models(
    cfg: DictConfig, clv_model, X_reference: pd.DataFrame, holdout_metrics: dict[str, float]
) -> dict[str, str]:
    """Log the CLV pipeline and the tiering model, register both, set their aliases.

    Parameters
    ----------
    cfg
        Composed config (``cfg.registry``; the tracking URI must already be set, as inside
        :func:`tierlab.tracking.parent_run`).
    clv_model
        Fitted CLV pipeline (e.g. ``regressor_pipeline`` refit on the calibration window).
    X_reference
        Indicator frame at the cut-off, with a ``customer_id`` column: the customers whose
        predicted CLV sets the tier thresholds and whose per-column quantiles make the input
        example.  No row of it is stored.
    holdout_metrics
        The model's holdout metrics, recorded as version tags ``holdout/<key>``.

    Returns
    -------
    dict[str, str]
        ``run_id``; per model (prefix ``clv_`` / ``tiering_``): ``name``, ``version``, ``uri``
        (``models:/<name>/<version>``), ``aliases`` (comma-separated).
    """
    reg = cfg.registry
    features = feature_columns(clv_model, X_reference)
    X = X_reference[features].astype("float64")
    tiering = build_tiering_model(
        clv_model, X, features, reg.tiering.cuts, reg.tiering.service_levels
    ).use_pipeline(clv_model)
    example = synthetic_example(X, reg.example_quantiles)
    requirements = pinned_requirements(reg.requirements)
    ids = X_reference[ID_COLUMN] if ID_COLUMN in X_reference.columns else None
    id_type = "long" if ids is None or pd.api.types.is_integer_dtype(ids) else "string"
    clv_signature, tiering_signature = signatures(features, id_type)
    with _active_run() as run, tempfile.TemporaryDirectory() as tmp:
        run_id = run.info.run_id
        clv_info = mlflow.sklearn.log_model(
            clv_model,
            name=CLV_MODEL_NAME,
            signature=clv_signature,
            input_example=example,
            pip_requirements=requirements,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )
        local_clv = Path(tmp) / CLV_ARTIFACT
        mlflow.sklearn.save_model(
            clv_model,
            local_clv,
            signature=clv_signature,
            pip_requirements=requirements,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )
        tiering_info = mlflow.pyfunc.log_model(
            name=TIERING_MODEL_NAME,
            python_model=tiering,
            artifacts={CLV_ARTIFACT: str(local_clv)},
            signature=tiering_signature,
            input_example=example,
            pip_requirements=requirements,
        )
        mlflow.log_dict(
            {
                "thresholds": tiering.thresholds,
                "cuts": tiering.cuts,
                "service_levels": tiering.service_levels,
            },
            "registry/tiering.json",
        )
        tags = {f"holdout/{k}": str(v) for k, v in holdout_metrics.items()}
        tags.update({"run_id": run_id, "registered_by": "tierlab.registry.register_models"})
        # what the model was trained on: promote refuses a holdout the model may have seen
        run_tags = mlflow.MlflowClient().get_run(run_id).data.tags
        tags.update({k: run_tags[k] for k in PROVENANCE_TAGS if k in run_tags})
        return _register_pair(
            reg,
            clv_info.model_uri,
            tiering_info.model_uri,
            tags,
            {"tier_thresholds": json.dumps(tiering.thresholds)},
            run_id,
        )


def _register_pair(
    reg: DictConfig,
    clv_uri: str,
    tiering_uri: str,
    tags: dict[str, str],
    tiering_tags: dict[str, str],
    run_id: str,
) -> dict[str, str]:
    """Register both logged models (rolling the first back if the second fails), tag them
    and set their aliases."""
    client = mlflow.MlflowClient()
    clv = mlflow.register_model(clv_uri, reg.clv_name, tags=tags)
    try:
        tiering = mlflow.register_model(
            tiering_uri, reg.tiering_name, tags={**tags, **tiering_tags}
        )
    except BaseException as exc:
        exc.add_note(_rollback(client, reg.clv_name, clv.version, tiering_uri, run_id))
        raise
    pair = {reg.clv_name: clv, reg.tiering_name: tiering}
    done: list[str] = []
    result = {"run_id": run_id}
    try:
        for prefix, (name, mv) in zip(("clv", "tiering"), pair.items(), strict=True):
            other = next(v for n, v in pair.items() if n != name)
            client.set_model_version_tag(name, mv.version, "paired_version", str(other.version))
            aliases = [reg.aliases.challenger]
            is_first = version_by_alias(client, name, reg.aliases.champion) is None
            if is_first:
                aliases.append(reg.aliases.champion)
                decision = "first version" if str(mv.version) == "1" else "no previous champion"
                client.set_model_version_tag(name, mv.version, DECISION_TAG, decision)
            for alias in aliases:
                client.set_registered_model_alias(name, alias, mv.version)
                done.append(f"{name}@{alias} -> version {mv.version}")
            result.update(
                {
                    f"{prefix}_name": name,
                    f"{prefix}_version": str(mv.version),
                    f"{prefix}_uri": f"models:/{name}/{mv.version}",
                    f"{prefix}_aliases": ",".join(aliases),
                }
            )
    except BaseException as exc:
        exc.add_note(
            f"registered {reg.clv_name} version {clv.version} and {reg.tiering_name} version "
            f"{tiering.version} (run {run_id}); aliases set before the error: "
            f"{done or 'none'}; set the others with MlflowClient.set_registered_model_alias"
        )
        raise
    log.info(
        "registered %s version %s (%s) and %s version %s (%s)",
        reg.clv_name,
        result["clv_version"],
        result["clv_aliases"],
        reg.tiering_name,
        result["tiering_version"],
        result["tiering_aliases"],
    )
    return result


def _rollback(
    client: mlflow.MlflowClient, name: str, version: str, tiering_uri: str, run_id: str
) -> str:
    """Delete the CLV version registered just before the tiering model failed; say what is
    left."""
    kept = f"the logged models stay in run {run_id} (tiering model: {tiering_uri})"
    try:
        client.delete_model_version(name, version)
    except Exception as exc:  # the original error matters more; report both
        return (
            f"registering the tiering model failed, and {name} version {version} (registered "
            f"just before, no alias) could not be deleted again ({exc}): delete it by hand; "
            f"{kept}"
        )
    return (
        f"registering the tiering model failed: {name} version {version}, registered just "
        f"before, was deleted again, so no version was registered and no alias moved; {kept}"
    )
