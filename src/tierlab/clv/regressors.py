"""CLV regressors and naive baselines: scikit-learn estimators on the indicator frame.

Every CLV predictor takes the indicator frame (one row per customer, indicator columns, optional
``customer_id``) and predicts the customer's discounted value over the holdout horizon.  Two
kinds, told apart by scikit-learn's ``target_tags.required``:

* supervised (``required=True``): LightGBM, HistGradientBoosting, ElasticNet, the hurdle model,
  the population mean.  The CLV stage fits them on the *training snapshot* (indicators one
  horizon before the cut-off, value over the horizon ending at the cut-off), so no holdout value
  is ever seen;
* calibration-only (``required=False``): the naive baselines here and the BTYD adapter
  (:mod:`tierlab.clv.adapters`), fitted on the indicators at the cut-off without a target.

Zero and negative values (bank profit is negative for most customers) are handled explicitly:
``signed_log1p`` targets are defined for any sign; ``clip_at_zero`` targets (Tweedie, which needs
y >= 0) model E[max(y, 0)] and say so; the hurdle model splits customers at y > 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from tierlab.features.btyd import unit_days
from tierlab.segmentation.preprocess import (
    IndicatorTransform,
    NotApplicable,
    check_fitted_columns,
    check_frame,
    columns_repr,
    numeric_column,
    requested_columns,
    signed_log1p,
)

TARGETS = ("raw", "signed_log1p", "clip_at_zero")
PREPROCESS = ("columns", "transform")


def needs_target(estimator) -> bool:
    """Whether ``fit`` needs y (a Pipeline answers for its final step)."""
    while isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return bool(get_tags(estimator).target_tags.required)


def signed_expm1(z: np.ndarray) -> np.ndarray:
    """Inverse of :func:`signed_log1p`: ``sign(z) * expm1(|z|)``."""
    return np.sign(z) * np.expm1(np.abs(z))


def clip_at_zero(y: np.ndarray) -> np.ndarray:
    """``max(y, 0)``: the target of models that need non-negative values (Tweedie)."""
    return np.maximum(y, 0.0)


def identity(y: np.ndarray) -> np.ndarray:
    """The identity (inverse of :func:`clip_at_zero` on the values it produces)."""
    return y


def annuity(horizon_months: int, discount_rate_monthly: float) -> float:
    """``sum_{k=1..H} (1 + r)^-k``: discounted months in the horizon (month k weighs
    ``(1 + r)^-k``, as in the holdout target)."""
    k = np.arange(1, int(horizon_months) + 1, dtype="float64")
    return float(np.sum((1.0 + discount_rate_monthly) ** -k))


class IndicatorColumns(TransformerMixin, BaseEstimator):
    """Select the model's indicator columns as a float64 DataFrame (missing values kept).

    For models that handle missing values themselves (LightGBM, HistGradientBoosting); the
    column names survive, for importances and SHAP.

    Parameters
    ----------
    features : "all" or list of str
        ``"all"``: every numeric or boolean column except ``customer_id``.  A list: those
        columns present in ``X`` (absent ones are remembered in ``missing_features_``).
    """

    def __init__(self, features="all"):
        self.features = features

    def fit(self, X: pd.DataFrame, y=None) -> IndicatorColumns:
        name = type(self).__name__
        X = check_frame(X, name)
        requested = requested_columns(self.features, X, name)
        used = [c for c in requested if c in X.columns]
        if not used:
            raise ValueError(
                f"{name}: none of the requested indicators is in the data "
                f"(columns: {columns_repr(X.columns)})"
            )
        self.feature_names_in_ = np.asarray(used, dtype=object)
        self.n_features_in_ = len(used)
        self.missing_features_ = [c for c in requested if c not in X.columns]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "feature_names_in_")
        name = type(self).__name__
        X = check_frame(X, name)
        used = list(self.feature_names_in_)
        check_fitted_columns(X, used, name)
        return pd.DataFrame(
            {c: numeric_column(X, c, name) for c in used}, index=X.index, columns=used
        )

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "feature_names_in_")
        return np.asarray(self.feature_names_in_, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def regressor_pipeline(
    model: BaseEstimator,
    features="all",
    target: str = "raw",
    preprocess: str = "columns",
) -> Pipeline:
    """A CLV regressor as a Pipeline: indicator preprocessing, then ``model`` on a target scale.

    Parameters
    ----------
    model
        Any scikit-learn regressor (built by Hydra from ``conf/clv/model/*.yaml``).
    features
        ``"all"`` or a list of indicators (see :class:`IndicatorColumns`).
    target
        ``raw``: y as is.  ``signed_log1p``: fit on ``sign(y) log1p(|y|)`` and invert with
        ``signed_expm1`` (the L2-on-log model; it predicts roughly a median on the log scale, so
        its value totals run low).  ``clip_at_zero``: fit on ``max(y, 0)`` (Tweedie and other
        non-negative objectives; it predicts E[max(y, 0)], ignoring losses).
    preprocess
        ``columns``: select the indicators, missing values kept (tree models).  ``transform``:
        median imputation, signed log1p on skewed indicators, standardisation
        (:class:`tierlab.segmentation.preprocess.IndicatorTransform`; linear models).
    """
    if target not in TARGETS:
        raise ValueError(f"target={target!r} should be one of {TARGETS}")
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess={preprocess!r} should be one of {PREPROCESS}")
    if preprocess == "columns":
        step = IndicatorColumns(features=features)
    else:
        step = IndicatorTransform(features=features, log1p="auto", standardize=True)
    if target == "signed_log1p":
        model = TransformedTargetRegressor(
            regressor=model, func=signed_log1p, inverse_func=signed_expm1
        )
    elif target == "clip_at_zero":
        model = TransformedTargetRegressor(
            regressor=model, func=clip_at_zero, inverse_func=identity, check_inverse=False
        )
    return Pipeline([("indicators", step), ("model", model)])


class HurdleRegressor(RegressorMixin, BaseEstimator):
    """Two-stage value model: E[y] = P(y > 0) E[y | y > 0] + P(y <= 0) E[y | y <= 0].

    A classifier gives the probability of positive value; one regressor learns the value of
    customers with positive value, another that of the rest (zero for inactive spenders, losses
    for loss-making bank customers).  A part with fewer than ``min_samples`` customers is
    replaced by its mean.

    Parameters
    ----------
    classifier, positive, nonpositive : estimators
        Cloned in ``fit``.  ``positive`` may use a strictly positive objective (e.g. LightGBM
        ``gamma``).
    min_samples : int
        Smallest part that gets its own model.
    """

    def __init__(self, classifier, positive, nonpositive, min_samples: int = 50):
        self.classifier = classifier
        self.positive = positive
        self.nonpositive = nonpositive
        self.min_samples = min_samples

    def _part(self, estimator, X, y) -> BaseEstimator | float:
        if len(y) < self.min_samples:
            return float(np.mean(y)) if len(y) else 0.0
        return clone(estimator).fit(X, y)

    def fit(self, X, y) -> HurdleRegressor:
        y = np.asarray(y, dtype="float64")
        positive = y > 0
        self.positive_share_ = float(positive.mean())
        both = min(positive.sum(), (~positive).sum()) >= self.min_samples
        self.classifier_ = clone(self.classifier).fit(X, positive.astype(int)) if both else None
        self.positive_ = self._part(self.positive, X[positive], y[positive])
        self.nonpositive_ = self._part(self.nonpositive, X[~positive], y[~positive])
        return self

    @staticmethod
    def _predict_part(part, X) -> np.ndarray:
        if isinstance(part, float):
            return np.full(len(X), part)
        return np.asarray(part.predict(X), dtype="float64")

    def predict_proba_positive(self, X) -> np.ndarray:
        """P(y > 0) per customer (the training share when one class was too rare)."""
        check_is_fitted(self, "positive_share_")
        if self.classifier_ is None:
            return np.full(len(X), self.positive_share_)
        return self.classifier_.predict_proba(X)[:, 1]

    def predict(self, X) -> np.ndarray:
        p = self.predict_proba_positive(X)
        return p * self._predict_part(self.positive_, X) + (1.0 - p) * self._predict_part(
            self.nonpositive_, X
        )


class TrailingValue(RegressorMixin, BaseEstimator):
    """Naive baseline: the customer's recent monthly value continues over the horizon.

    Prediction = (value over the window / months) x ``annuity(horizon, r)``, where the value
    column is the first of ``columns`` the indicators have (e.g. ``profit_12m`` on bank data,
    ``monetary_total_12m`` on a transaction log) and the months are:

    * ``per_month="window"`` (*trailing period value*): the window length;
    * ``per_month="observed"`` (*calibration-period mean*): the months the customer was
      observed in the window, ``min(window, tenure)`` with ``tenure_days`` (at least one month),
      so a customer who joined three months ago is not diluted over twelve.

    No target is needed (``fit`` only picks the column), so the CLV stage fits it on the
    indicators at the cut-off.  Missing values predict 0.

    Parameters
    ----------
    columns : list of mappings
        Candidate value columns in order of preference, each ``{column, months, unit}``: the
        indicator, its window in months and the unit of its value (``profit`` or
        ``transaction_amount``), exposed as ``value_unit`` after ``fit`` so that the CLV stage
        scores a baseline in another unit than the target on ranks only.
    horizon_months, discount_rate_monthly
        The holdout horizon and its monthly discount rate (the target's).
    per_month : {"window", "observed"}
    """

    def __init__(
        self,
        columns: Sequence[Mapping],
        horizon_months: int = 12,
        discount_rate_monthly: float = 0.0,
        per_month: str = "window",
    ):
        self.columns = columns
        self.horizon_months = horizon_months
        self.discount_rate_monthly = discount_rate_monthly
        self.per_month = per_month

    def fit(self, X: pd.DataFrame, y=None) -> TrailingValue:
        name = type(self).__name__
        X = check_frame(X, name)
        if self.per_month not in ("window", "observed"):
            raise ValueError(f"{name}: per_month={self.per_month!r}; expected window|observed")
        for entry in self.columns:
            if not {"column", "months", "unit"} <= set(entry):
                raise ValueError(
                    f"{name}: each entry of columns needs column, months and unit; got {entry!r}"
                )
        present = [e for e in self.columns if e["column"] in X.columns]
        if not present:
            raise NotApplicable(
                f"{name} needs one of the value columns {[e['column'] for e in self.columns]}; "
                f"columns present: {columns_repr(X.columns)}"
            )
        if self.per_month == "observed" and "tenure_days" not in X.columns:
            raise NotApplicable(f"{name} with per_month='observed' needs tenure_days")
        self.column_ = str(present[0]["column"])
        self.window_months_ = int(present[0]["months"])
        self.value_unit = str(present[0]["unit"])
        self.annuity_ = annuity(self.horizon_months, self.discount_rate_monthly)
        self.n_features_in_ = 1
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "column_")
        name = type(self).__name__
        X = check_frame(X, name)
        value = np.nan_to_num(numeric_column(X, self.column_, name), nan=0.0)
        months = np.full(len(X), float(self.window_months_))
        if self.per_month == "observed":
            tenure = numeric_column(X, "tenure_days", name) / unit_days("M")
            observed = np.clip(np.nan_to_num(tenure, nan=self.window_months_), 1.0, None)
            months = np.minimum(months, observed)
        return value / months * self.annuity_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.allow_nan = True
        return tags
