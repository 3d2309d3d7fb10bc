"""The indicator frame as the segmentation methods see it: input checks and the transform.

Every method takes the indicator frame (one row per customer; ``customer_id`` as a column or as
the index) and refuses anything else.  :class:`IndicatorTransform` turns the chosen indicators
into the numeric space k-means and the Gaussian mixture cluster in: median imputation, a signed
log1p on skewed columns, standardisation.  :class:`NotApplicable` is the error a method raises
when a data set lacks what it needs, so a benchmark can skip that method with a note.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

ID_COLUMN = "customer_id"
# |skewness| above which log1p="auto" log-transforms a column (a common rule of thumb:
# money amounts and balances are far above it, shares and scores far below).
SKEW_THRESHOLD = 2.0


class NotApplicable(ValueError):
    """The data lack what a segmentation method needs (e.g. RFM without a recency column).

    Raised by ``fit``; callers that run several methods skip the method and report the message.
    Also importable as ``tierlab.segmentation.methods.NotApplicable``.
    """


def columns_repr(columns, limit: int = 20) -> str:
    """A list of column names for an error message, cut after ``limit`` names."""
    names = [str(c) for c in columns]
    more = f" ... ({len(names)} columns)" if len(names) > limit else ""
    return f"{names[:limit]}{more}"


def check_frame(X, who: str) -> pd.DataFrame:
    """Return ``X`` if it is a non-empty DataFrame, else raise a TypeError/ValueError naming
    ``who``."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"{who} needs a pandas DataFrame of indicators (one row per customer, named "
            f"columns); got {type(X).__name__}"
        )
    if len(X) == 0:
        raise ValueError(f"{who} got an empty indicator frame (0 customers)")
    return X


def require_columns(X: pd.DataFrame, columns: Sequence[str], who: str) -> None:
    """Raise :class:`NotApplicable` naming ``who``, the missing columns and those present."""
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise NotApplicable(
            f"{who} needs the columns {missing}, which the data lack; columns present: "
            f"{columns_repr(X.columns)}"
        )


def numeric_column(X: pd.DataFrame, column: str, who: str) -> np.ndarray:
    """Column ``column`` as float64 (NaN for missing); ValueError if it is not numeric or has
    infinite values."""
    series = X[column]
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        raise ValueError(f"{who}: column '{column}' is not numeric (dtype {series.dtype})")
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    infinite = np.isinf(values)
    if infinite.any():
        raise ValueError(
            f"{who}: column '{column}' has {int(infinite.sum())} infinite values (first at row "
            f"{int(np.flatnonzero(infinite)[0])}); indicators must be finite or missing"
        )
    return values


def requested_columns(features, X: pd.DataFrame, who: str) -> list[str]:
    """The indicator columns ``features`` asks for: ``"all"`` = every numeric (or boolean)
    column except ``customer_id``; a list = those names (absent ones included, for the caller
    to report).  ValueError naming ``who`` for anything else."""
    if isinstance(features, str):
        if features != "all":
            raise ValueError(f"{who}: features={features!r}; expected 'all' or a list of columns")
        return [
            c
            for c in X.columns
            if c != ID_COLUMN
            and (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))
        ]
    if not isinstance(features, Sequence) or not all(isinstance(c, str) for c in features):
        raise ValueError(f"{who}: features={features!r}; expected 'all' or a list of column names")
    return [c for c in features if c != ID_COLUMN]


def check_fitted_columns(X: pd.DataFrame, used: Sequence[str], who: str) -> None:
    """ValueError naming ``who`` and the columns seen in ``fit`` that ``X`` lacks."""
    absent = [c for c in used if c not in X.columns]
    if absent:
        raise ValueError(
            f"{who}: X lacks the indicator columns {absent} seen in fit; columns present: "
            f"{columns_repr(X.columns)}"
        )


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log1p(|x|)``: log-like for large amounts, defined for negative ones
    (profit can be negative), and the identity near 0."""
    return np.sign(x) * np.log1p(np.abs(x))


def _is_flag(values: np.ndarray) -> bool:
    observed = values[~np.isnan(values)]
    return bool(np.isin(observed, (0.0, 1.0)).all())


class IndicatorTransform(TransformerMixin, BaseEstimator):
    """Chosen indicators -> imputed, log-compressed, standardised numeric matrix.

    Steps, all learned in ``fit``: (1) keep the chosen numeric indicators; (2) impute missing
    values with the column median; (3) signed log1p, ``sign(x) * log1p(|x|)``, on the log
    columns; (4) standardise (zero mean, unit variance).  Flag columns (only 0/1 values) are
    imputed but neither logged nor standardised.

    Parameters
    ----------
    features : "all" or list of str
        ``"all"``: every numeric (or boolean) column except ``customer_id``.  A list: those
        columns, in that order; listed columns absent from ``X`` are dropped and remembered in
        ``missing_features_``.
    log1p : "auto", list of str or None
        ``"auto"``: the non-flag columns whose skewness (pandas' bias-corrected sample
        skewness of the observed values, computed in ``fit``) exceeds 2 in absolute value.
        A list: those of the listed columns that are used (others are ignored).  ``None``: no log.
    standardize : bool
        Standardise the non-flag columns after the log (``StandardScaler``).

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        The indicators used, in output order.
    n_features_in_ : int
        Their number.
    missing_features_ : list of str
        Requested indicators left out: absent from ``X`` or without a single observed value.
    flag_columns_ : list of str
        Used columns whose observed values are all 0 or 1.
    log_columns_ : list of str
        Columns that get the signed log1p.
    skewness_ : dict of str to float
        Skewness of every used column (NaN for a constant column).
    medians_ : dict of str to float
        Imputation value of every used column (median of the observed values in ``fit``).
    scaler_ : StandardScaler or None
        Fitted on the non-flag columns after the log; None if ``standardize=False``.

    Examples
    --------
    >>> X = pd.DataFrame({"customer_id": [1, 2, 3], "profit_12m": [1.0, None, 1e4]})
    >>> IndicatorTransform(log1p=None, standardize=False).fit_transform(X).ravel().tolist()
    [1.0, 5000.5, 10000.0]
    """

    def __init__(self, features="all", log1p="auto", standardize=True):
        self.features = features
        self.log1p = log1p
        self.standardize = standardize

    def _requested(self, X: pd.DataFrame) -> list[str]:
        return requested_columns(self.features, X, type(self).__name__)

    def fit(self, X: pd.DataFrame, y=None) -> IndicatorTransform:
        """Learn the used columns, medians, log columns and scaling from the indicators ``X``.

        Parameters
        ----------
        X : pd.DataFrame
            Indicator frame, one row per customer.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        name = type(self).__name__
        X = check_frame(X, name)
        requested = self._requested(X)
        used, missing, columns = [], [], {}
        for c in requested:
            values = numeric_column(X, c, name) if c in X.columns else None
            if values is None or np.isnan(values).all():
                missing.append(c)
            else:
                used.append(c)
                columns[c] = values
        if not used:
            what = "the numeric columns" if isinstance(self.features, str) else str(requested)
            unobserved = [c for c in missing if c in X.columns]
            note = f"; without an observed value: {unobserved}" if unobserved else ""
            raise ValueError(
                f"empty indicator set: none of {what} is in the data "
                f"(columns: {columns_repr(X.columns)}){note}"
            )
        self.feature_names_in_ = np.asarray(used, dtype=object)
        self.n_features_in_ = len(used)
        self.missing_features_ = missing
        self.medians_ = {c: float(np.nanmedian(columns[c])) for c in used}
        self.flag_columns_ = [c for c in used if _is_flag(columns[c])]
        self.skewness_ = {c: float(pd.Series(columns[c]).skew()) for c in used}
        self.log_columns_ = self._log_columns(used)
        self.scaler_ = None
        mask = self._scaled_mask()
        if self.standardize and mask.any():
            Z = self._impute_and_log(columns, used)
            self.scaler_ = StandardScaler().fit(Z[:, mask])
        return self

    def _log_columns(self, used: list[str]) -> list[str]:
        candidates = [c for c in used if c not in self.flag_columns_]
        if self.log1p is None:
            return []
        if isinstance(self.log1p, str):
            if self.log1p != "auto":
                raise ValueError(
                    f"{type(self).__name__}: log1p={self.log1p!r}; expected 'auto', a list of "
                    "columns or None"
                )
            return [c for c in candidates if abs(self.skewness_[c]) > SKEW_THRESHOLD]
        return [c for c in candidates if c in set(self.log1p)]

    def _scaled_mask(self) -> np.ndarray:
        return np.array([c not in self.flag_columns_ for c in self.feature_names_in_])

    def _impute_and_log(self, columns: dict[str, np.ndarray], used: list[str]) -> np.ndarray:
        Z = np.empty((len(columns[used[0]]), len(used)), dtype="float64")
        for j, c in enumerate(used):
            values = np.where(np.isnan(columns[c]), self.medians_[c], columns[c])
            Z[:, j] = signed_log1p(values) if c in self.log_columns_ else values
        return Z

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The transformed indicators, shape ``(n_customers, n_features_in_)``.

        Parameters
        ----------
        X : pd.DataFrame
            Indicator frame with every column in ``feature_names_in_``.

        Returns
        -------
        np.ndarray of float64
        """
        check_is_fitted(self, "feature_names_in_")
        name = type(self).__name__
        X = check_frame(X, name)
        used = list(self.feature_names_in_)
        check_fitted_columns(X, used, name)
        Z = self._impute_and_log({c: numeric_column(X, c, name) for c in used}, used)
        if self.scaler_ is not None:
            mask = self._scaled_mask()
            Z[:, mask] = self.scaler_.transform(Z[:, mask])
        return Z

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The used indicator names (the transform keeps one output column per input column)."""
        check_is_fitted(self, "feature_names_in_")
        return np.asarray(self.feature_names_in_, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
