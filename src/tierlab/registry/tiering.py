"""The tiering model: indicator frame -> predicted CLV -> value tier -> service level, in one call.

:class:`TieringModel` is an MLflow pyfunc model.  What it stores is deliberately small: the
fitted CLV pipeline (as a model artifact, loaded in :meth:`TieringModel.load_context`), the
predicted-CLV thresholds between tiers and the tier -> service-level mapping.  The thresholds are
learned once, at registration, from the reference customers' predicted CLV exactly as the
value-quantile segmentation draws its tiers
(:class:`tierlab.segmentation.methods.ValueQuantileSegmenter`); only the numbers are kept, never
a customer row.
"""

from __future__ import annotations

from collections.abc import Sequence

import mlflow
import numpy as np
import pandas as pd

from tierlab.segmentation.methods import ValueQuantileSegmenter, tiers_by_thresholds
from tierlab.segmentation.preprocess import ID_COLUMN, check_frame

#: Name of the CLV pipeline in the pyfunc model's artifacts.
CLV_ARTIFACT = "clv_model"
#: Output columns, in order (``customer_id`` first when the input has one).
OUTPUT_COLUMNS = ("tier", "predicted_clv", "service_level")


def tier_thresholds(predicted: np.ndarray, cuts: Sequence[float]) -> np.ndarray:
    """Predicted-CLV thresholds between tiers (non-increasing, one per cut).

    Tier ``k`` (1 = most valuable) holds the customers whose predicted CLV is below exactly
    ``k - 1`` thresholds: the top ``cuts[0]`` share of customers, the next ``cuts[1]``, ..., the
    rest, as in :class:`~tierlab.segmentation.methods.ValueQuantileSegmenter` (a value equal to
    a threshold goes to the higher tier).
    """
    frame = pd.DataFrame({"predicted_clv": np.asarray(predicted, dtype="float64")})
    segmenter = ValueQuantileSegmenter(value="predicted_clv", cuts=list(cuts)).fit(frame)
    return np.asarray(segmenter.thresholds_, dtype="float64")


def assign_tiers(predicted: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Tier per customer (1 = most valuable): 1 + the number of thresholds the prediction is
    below; a missing prediction goes to the last tier (the segmenter's rule)."""
    return 1 + tiers_by_thresholds(predicted, thresholds)


class TieringModel(mlflow.pyfunc.PythonModel):
    """Predicted CLV, value tier and recommended service level per customer.

    Build it with :func:`build_tiering_model`; log it with the CLV pipeline as the artifact
    ``clv_model`` (an MLflow scikit-learn model directory).

    Parameters
    ----------
    features : sequence of str
        The CLV pipeline's input columns (the indicator columns it was fitted on).
    thresholds : sequence of float
        Predicted-CLV thresholds between tiers, non-increasing (:func:`tier_thresholds`).
    service_levels : sequence of str
        Service level per tier, tier 1 first (``len(thresholds) + 1`` names).
    cuts : sequence of float
        The tier shares the thresholds were learned with (kept for the record).
    """

    def __init__(self, features, thresholds, service_levels, cuts):
        self.features = [str(c) for c in features]
        self.thresholds = [float(t) for t in thresholds]
        self.service_levels = [str(s) for s in service_levels]
        self.cuts = [float(c) for c in cuts]
        self._clv = None

    def __getstate__(self) -> dict:
        # Only numbers and names are pickled: the pipeline travels as the clv_model artifact.
        state = dict(self.__dict__)
        state["_clv"] = None
        return state

    def load_context(self, context) -> None:
        """Load the CLV pipeline from the model's ``clv_model`` artifact."""
        self._clv = mlflow.sklearn.load_model(context.artifacts[CLV_ARTIFACT])

    def use_pipeline(self, clv_model) -> TieringModel:
        """Predict with an in-memory pipeline (before logging); returns self."""
        self._clv = clv_model
        return self

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Tier, predicted CLV and service level for each row of ``model_input``.

        Parameters
        ----------
        context
            MLflow's model context (unused; the pipeline was loaded in ``load_context``).
        model_input : pd.DataFrame
            Indicator frame: the pipeline's feature columns, optionally ``customer_id``; other
            columns are ignored.
        params
            Unused.

        Returns
        -------
        pd.DataFrame
            ``customer_id`` (when given), ``tier`` (int64, 1 = most valuable),
            ``predicted_clv`` (float64) and ``service_level`` (str), one row per input row.
        """
        if self._clv is None:
            raise RuntimeError(
                "TieringModel has no CLV pipeline: load it with mlflow.pyfunc.load_model "
                "(or call use_pipeline before predicting)"
            )
        frame = check_frame(model_input, type(self).__name__)
        absent = [c for c in self.features if c not in frame.columns]
        if absent:
            raise ValueError(f"TieringModel: the input lacks the indicator columns {absent}")
        X = frame[self.features].astype("float64")
        predicted = np.asarray(self._clv.predict(X), dtype="float64")
        tiers = assign_tiers(predicted, self.thresholds)
        out = pd.DataFrame(
            {
                "tier": tiers,
                "predicted_clv": predicted,
                "service_level": np.asarray(self.service_levels, dtype=object)[tiers - 1],
            }
        )
        out["service_level"] = out["service_level"].astype(str)
        if ID_COLUMN in frame.columns:
            out.insert(0, ID_COLUMN, frame[ID_COLUMN].to_numpy())
        return out


def build_tiering_model(
    clv_model, X_reference: pd.DataFrame, features: Sequence[str], cuts, service_levels
) -> TieringModel:
    """Learn the tier thresholds from the reference customers' predicted CLV.

    Parameters
    ----------
    clv_model
        Fitted CLV pipeline (``predict`` on an indicator frame).
    X_reference : pd.DataFrame
        Indicator frame at the cut-off (the customers the tier shares refer to).
    features : sequence of str
        The pipeline's input columns.
    cuts : sequence of float
        Shares of the tiers above the last (``registry.tiering.cuts``).
    service_levels : sequence of str
        One per tier, tier 1 first (``registry.tiering.service_levels``).
    """
    cuts, service_levels = list(cuts), list(service_levels)
    if len(service_levels) != len(cuts) + 1:
        raise ValueError(
            f"registry.tiering.service_levels has {len(service_levels)} entries "
            f"({service_levels}) but cuts={cuts} make {len(cuts) + 1} tiers: give one service "
            "level per tier, tier 1 first"
        )
    predicted = np.asarray(clv_model.predict(X_reference[list(features)]), dtype="float64")
    thresholds = tier_thresholds(predicted, cuts)
    return TieringModel(features, thresholds, service_levels, cuts)
