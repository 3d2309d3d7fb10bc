"""Scoring for registry consumers: ``tierlab score --model URI --input FILE --output FILE``.

Runs in a fresh process where only tierlab (and so its pinned dependencies) is installed.  The
input file is checked against the model's signature *before* the model is loaded: every
missing or mistyped column is listed in one :class:`InputError`.  The output is written to a
temporary file beside the target and moved into place with ``os.replace``, so an error never
leaves a half-written (or stale-looking new) output file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.types import DataType, Schema

from tierlab.segmentation.preprocess import ID_COLUMN

log = logging.getLogger(__name__)

#: File formats by suffix.
PARQUET = (".parquet", ".pq")
CSV = (".csv",)
#: Column name of a model whose prediction is a bare array (the CLV regressor).
PREDICTION_COLUMN = "predicted_clv"


class InputError(ValueError):
    """A user's input cannot be scored (unreadable file, columns that do not fit the model)."""


def file_format(path: Path, role: str) -> str:
    """``"parquet"`` or ``"csv"`` from the file suffix; InputError otherwise."""
    suffix = path.suffix.lower()
    if suffix in PARQUET:
        return "parquet"
    if suffix in CSV:
        return "csv"
    raise InputError(
        f"{role} file '{path.name}' has suffix {suffix!r}; expected one of {PARQUET + CSV}"
    )


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a Parquet or CSV customer file (format from the suffix)."""
    path = Path(path)
    kind = file_format(path, "input")
    if not path.is_file():
        raise InputError(f"input file '{path}' does not exist")
    try:
        frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:  # pyarrow and the CSV parser raise these subclasses
        raise InputError(f"cannot read input file '{path.name}' as {kind}: {exc}") from exc
    if len(frame) == 0:
        raise InputError(f"input file '{path.name}' has no rows")
    return frame


def _accepts(expected: DataType, series: pd.Series) -> bool:
    """Whether a column of this dtype can be passed as ``expected`` without losing meaning."""
    dtype = series.dtype
    if expected in (DataType.double, DataType.float):
        return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
    if expected in (DataType.long, DataType.integer):
        return pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if expected == DataType.boolean:
        return pd.api.types.is_bool_dtype(dtype)
    if expected == DataType.string:
        return pd.api.types.is_string_dtype(dtype)
    if expected == DataType.datetime:
        return pd.api.types.is_datetime64_any_dtype(dtype)
    return True


def check_input(frame: pd.DataFrame, schema: Schema, source: str) -> pd.DataFrame:
    """Check ``frame`` against the model's input schema and return the columns to predict on.

    Numeric columns are cast to the schema's type (integer indicators become float64, so
    missing values can occur); columns the schema does not name are dropped.

    Raises
    ------
    InputError
        Listing every missing required column (with its expected type) and every column whose
        type does not fit (expected and found), naming ``source``.
    """
    missing, mistyped = [], []
    for spec in schema.inputs:
        if spec.name not in frame.columns:
            if spec.required:
                missing.append(f"'{spec.name}' ({spec.type.name})")
            continue
        if not _accepts(spec.type, frame[spec.name]):
            mistyped.append(
                f"'{spec.name}' expected {spec.type.name}, found {frame[spec.name].dtype}"
            )
    if missing or mistyped:
        lines = [f"{source} does not fit the model's input schema:"]
        if missing:
            lines.append(f"  missing columns ({len(missing)}): " + ", ".join(missing))
        if mistyped:
            lines.append(f"  mistyped columns ({len(mistyped)}): " + "; ".join(mistyped))
        raise InputError("\n".join(lines))
    columns = {}
    for spec in schema.inputs:
        if spec.name in frame.columns:
            columns[spec.name] = frame[spec.name].astype(spec.type.to_pandas())
    return pd.DataFrame(columns, index=frame.index)


def input_schema(model_uri: str) -> Schema:
    """The input schema of a logged or registered model (reads its MLmodel file only)."""
    signature = mlflow.models.get_model_info(model_uri).signature
    if signature is None or signature.inputs is None:
        raise InputError(f"model {model_uri} has no input signature; cannot check the input")
    return signature.inputs


def as_frame(prediction, original: pd.DataFrame) -> pd.DataFrame:
    """A model's prediction as an output frame: a DataFrame as is, an array as
    ``predicted_clv`` (after ``customer_id`` when the original input file has one)."""
    if isinstance(prediction, pd.DataFrame):
        return prediction.reset_index(drop=True)
    out = pd.DataFrame({PREDICTION_COLUMN: np.asarray(prediction, dtype="float64").ravel()})
    if ID_COLUMN in original.columns:
        out.insert(0, ID_COLUMN, original[ID_COLUMN].to_numpy())
    return out


def write_atomic(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` (format from the suffix) via a temporary file and ``os.replace``."""
    path = Path(path)
    kind = file_format(path, "output")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if kind == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600: give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def score(model_uri: str, input_path: str | Path, output_path: str | Path) -> pd.DataFrame:
    """Score a customer file with a logged or registered pyfunc model and write the result.

    Parameters
    ----------
    model_uri
        e.g. ``models:/tierlab-tiering@champion`` (tracking/registry URI from
        ``MLFLOW_TRACKING_URI``).
    input_path
        Parquet (``.parquet``, ``.pq``) or CSV (``.csv``) indicator file, one row per customer.
    output_path
        Where to write the scores (format from the suffix); its folder must exist.  For the
        tiering model: ``customer_id`` (when the input has one), ``tier``, ``predicted_clv``,
        ``service_level``; for the CLV model: ``customer_id`` and ``predicted_clv``.

    Returns
    -------
    pd.DataFrame
        The scores written.

    Raises
    ------
    InputError
        Bad file names or formats, an empty input, or columns that do not fit the model's
        signature (all listed); nothing is written.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    file_format(output_path, "output")
    if not output_path.parent.is_dir():
        raise InputError(f"output folder '{output_path.parent}' does not exist")
    frame = read_frame(input_path)
    model_input = check_input(frame, input_schema(model_uri), f"input file '{input_path.name}'")
    model = mlflow.pyfunc.load_model(model_uri)
    scores = as_frame(model.predict(model_input), frame)
    write_atomic(scores, output_path)
    log.info("scored %d customers with %s -> %s", len(scores), model_uri, output_path)
    return scores
