"""RFM scoring: quantile scores for recency, frequency and monetary value, and named segments.

Scores are 1..``bins`` per axis, cut at quantile edges learned on the calibration customers and
reused unchanged by ``predict``.  A rule table maps score patterns to named segments (the
default table is in ``conf/segmentation/method/rfm.yaml``); each segment that occurs is one
cluster.  Also importable as ``tierlab.segmentation.methods.RFMSegmenter``.

References
----------
Hughes, A. M. (1994). *Strategic Database Marketing*. Probus.  (RFM quintile scoring.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from tierlab.segmentation.preprocess import (
    NotApplicable,
    check_frame,
    numeric_column,
    require_columns,
)

AXES = ("r", "f", "m")
OTHER = "other"


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """The ``bins - 1`` inner quantile edges of the observed ``values`` (``np.quantile``,
    linear interpolation)."""
    return np.quantile(values[~np.isnan(values)], np.arange(1, bins) / bins)


def quantile_scores(values: np.ndarray, edges: np.ndarray, reverse: bool = False) -> np.ndarray:
    """Scores 1..``len(edges) + 1``: 1 + the number of edges strictly below the value.

    A value equal to an edge falls in the lower bin (right-closed bins, as in ``pd.qcut``), so
    tied values always share a score and a customer's score does not depend on who else is
    scored.  ``reverse`` flips the scale (recency: smaller is better).  Missing values score 1
    (the worst) on either scale.
    """
    bins = len(edges) + 1
    below = np.searchsorted(edges, values, side="left")
    scores = bins - below if reverse else 1 + below
    return np.where(np.isnan(values), 1, scores).astype(np.int64)


def parse_rules(rules, bins: int) -> list[tuple[str, dict[str, tuple[int, int]]]]:
    """Validate a rule table: ``[(name, {axis: (lo, hi)}), ...]`` in table order."""
    if isinstance(rules, str | Mapping) or not isinstance(rules, Sequence) or not rules:
        raise ValueError(
            f"RFMSegmenter: rules={rules!r}; expected a non-empty list of "
            "{name, r, f, m} mappings, or None for total-score bands"
        )
    parsed = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping) or not isinstance(rule.get("name"), str):
            raise ValueError(f"RFMSegmenter: rule {i} ({rule!r}) needs a string 'name'")
        name = rule["name"]
        unknown = sorted(set(rule) - {"name", *AXES})
        if unknown:
            raise ValueError(
                f"RFMSegmenter: rule '{name}' has unknown keys {unknown}; allowed: name, r, f, m"
            )
        ranges = {}
        for axis in AXES:
            span = rule.get(axis)
            if span is None:
                continue
            ok = isinstance(span, Sequence) and len(span) == 2
            ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in span)
            if not (ok and 1 <= span[0] <= span[1] <= bins):
                raise ValueError(
                    f"RFMSegmenter: rule '{name}': {axis}={list(span) if ok else span!r} is not "
                    f"a score range [lo, hi] with 1 <= lo <= hi <= bins={bins}"
                )
            ranges[axis] = (span[0], span[1])
        parsed.append((name, ranges))
    return parsed


class RFMSegmenter(ClusterMixin, BaseEstimator):
    """Quantile R/F/M scores and rule-based named segments, one cluster per segment.

    Each axis is scored 1..``bins`` at quantile edges of the calibration data (see
    :func:`quantile_scores`): frequency and monetary value ascending, recency reversed (the
    most recent customers score ``bins``).  Missing values score 1.

    Parameters
    ----------
    recency, frequency, monetary : str
        Indicator columns (days since the last purchase; purchases and amount in a window).
    bins : int
        Scores per axis (5: quintiles).
    rules : list of dict or None
        Ordered rule table ``[{name, r: [lo, hi], f: [lo, hi], m: [lo, hi]}, ...]`` (inclusive
        score ranges; an omitted axis matches any score).  The first matching rule names a
        customer's segment; customers matching none are ``"other"``.  Cluster ids follow the
        table order (then ``"other"``), counting only segments that occur in ``fit``.
        ``None``: segments are bands of the total score ``R + F + M``: band
        ``round((R + F + M) / 3)`` (the rounded mean score, 1..``bins``), named by its totals
        (``"total 14-15"`` ... ``"total 3-4"`` for 5 bins), best band first.

    Attributes
    ----------
    edges_ : dict of str to ndarray
        Quantile edges per axis (``"r"``, ``"f"``, ``"m"``), ``bins - 1`` each.
    scores_ : pd.DataFrame
        Columns ``r``, ``f``, ``m`` (int64) of the fitted rows, with ``X``'s index.
    labels_ : ndarray of int64
        Cluster (segment) id per fitted row.
    n_clusters_ : int
        Number of segments that occur in the fitted data.
    segment_names_ : dict of int to str
        Cluster id -> segment name.
    feature_names_in_ : ndarray of str
        ``[recency, frequency, monetary]``.
    selection_, selection_criterion_ : None
        RFM does not choose a number of clusters.

    Notes
    -----
    ``predict`` scores new customers with the fitted edges; a customer whose segment did not
    occur in ``fit`` gets cluster id -1 (it has no cluster).  On the fitted frame ``predict``
    equals ``labels_``.
    """

    def __init__(
        self,
        recency="recency_days",
        frequency="frequency_12m",
        monetary="monetary_total_12m",
        bins=5,
        rules=None,
    ):
        self.recency = recency
        self.frequency = frequency
        self.monetary = monetary
        self.bins = bins
        self.rules = rules

    def _columns(self) -> dict[str, str]:
        return {"r": self.recency, "f": self.frequency, "m": self.monetary}

    def fit(self, X: pd.DataFrame, y=None) -> RFMSegmenter:
        """Learn the quantile edges and the segments of the indicator frame ``X``.

        Parameters
        ----------
        X : pd.DataFrame
            Indicator frame with the recency, frequency and monetary columns.
        y : None
            Ignored.

        Returns
        -------
        self

        Raises
        ------
        NotApplicable
            If ``X`` lacks one of the three columns or has no observed value in one.
        """
        X = check_frame(X, "RFMSegmenter")
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 2:
            raise ValueError(f"RFMSegmenter: bins={self.bins!r}; expected an integer >= 2")
        self.rules_ = None if self.rules is None else parse_rules(self.rules, self.bins)
        columns = self._columns()
        require_columns(X, list(columns.values()), "RFMSegmenter")
        self.edges_ = {}
        for axis, column in columns.items():
            values = numeric_column(X, column, "RFMSegmenter")
            if np.isnan(values).all():
                raise NotApplicable(f"RFMSegmenter: column '{column}' has no observed value")
            self.edges_[axis] = quantile_edges(values, self.bins)
        self.feature_names_in_ = np.asarray(list(columns.values()), dtype=object)
        self.n_features_in_ = 3
        self.scores_ = self.score(X)
        names = self._segments(self.scores_)
        occurring = set(names)
        order = [n for n in self._segment_order() if n in occurring]
        self.segment_names_ = dict(enumerate(order))
        self.n_clusters_ = len(order)
        self.labels_ = self._ids(names)
        self.selection_ = None
        self.selection_criterion_ = None
        return self

    def _segment_order(self) -> list[str]:
        if self.rules_ is None:
            return [_band_name(band, self.bins) for band in range(self.bins, 0, -1)]
        return list(dict.fromkeys([name for name, _ in self.rules_] + [OTHER]))

    def _segments(self, scores: pd.DataFrame) -> np.ndarray:
        """Segment name per row of a score frame."""
        s = {axis: scores[axis].to_numpy() for axis in AXES}
        if self.rules_ is None:
            band = np.rint((s["r"] + s["f"] + s["m"]) / 3).astype(np.int64)
            names = np.array([_band_name(b, self.bins) for b in range(self.bins + 1)], dtype=object)
            return names[band]
        names = np.full(len(scores), OTHER, dtype=object)
        free = np.ones(len(scores), dtype=bool)
        for name, ranges in self.rules_:
            match = free.copy()
            for axis, (lo, hi) in ranges.items():
                match &= (s[axis] >= lo) & (s[axis] <= hi)
            names[match] = name
            free &= ~match
        return names

    def _ids(self, names: np.ndarray) -> np.ndarray:
        ids = pd.Series(
            list(self.segment_names_.keys()),
            index=list(self.segment_names_.values()),
            dtype="int64",
        )
        codes = ids.reindex(pd.Index(names, dtype=object)).to_numpy(dtype="float64")
        return np.where(np.isnan(codes), -1, codes).astype(np.int64)

    def score(self, X: pd.DataFrame) -> pd.DataFrame:
        """R, F and M scores of the customers in ``X`` with the fitted edges.

        Unlike most scikit-learn ``score`` methods this returns the RFM scores, not a
        goodness-of-fit number.

        Parameters
        ----------
        X : pd.DataFrame
            Indicator frame with the recency, frequency and monetary columns.

        Returns
        -------
        pd.DataFrame
            Columns ``r``, ``f``, ``m`` (int64, 1..``bins``), indexed like ``X``.
        """
        check_is_fitted(self, "edges_")
        X = check_frame(X, "RFMSegmenter")
        columns = self._columns()
        require_columns(X, list(columns.values()), "RFMSegmenter")
        return pd.DataFrame(
            {
                axis: quantile_scores(
                    numeric_column(X, column, "RFMSegmenter"), self.edges_[axis], axis == "r"
                )
                for axis, column in columns.items()
            },
            index=X.index,
        )

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Segment cluster id of each customer (-1 for a segment not seen in ``fit``)."""
        check_is_fitted(self, "labels_")
        return self._ids(self._segments(self.score(X)))

    def segments(self, X: pd.DataFrame) -> pd.Series:
        """Segment name of each customer in ``X``, indexed like ``X``."""
        check_is_fitted(self, "labels_")
        return pd.Series(self._segments(self.score(X)), index=X.index, name="segment")

    def embedding(self, X: pd.DataFrame) -> np.ndarray:
        """The R/F/M score matrix (float64, shape ``(n, 3)``) the segments are drawn in."""
        return self.score(X).to_numpy(dtype="float64")


def _band_name(band: int, bins: int) -> str:
    """Name of a total-score band: the totals ``R + F + M`` whose rounded mean is ``band``."""
    lo, hi = max(3, 3 * band - 1), min(3 * bins, 3 * band + 1)
    return f"total {lo}-{hi}"
