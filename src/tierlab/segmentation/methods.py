"""Segmentation methods behind one scikit-learn interface.

Every segmenter is a ``ClusterMixin`` estimator built from ``conf/segmentation/method/*.yaml``,
which is where the pipeline's settings live.  The keyword defaults in ``__init__`` exist because
scikit-learn requires default-constructible estimators (``clone``, ``get_params``); they are
minimal values for direct Python use (e.g. a fixed ``n_clusters`` and ``random_state=0``) and
deliberately do not mirror the YAML, which always passes every parameter.  ``fit(X)`` takes the indicator frame and sets ``labels_`` (int64
cluster ids ``0..n_clusters_ - 1``), ``n_clusters_``, ``feature_names_in_``, ``selection_``
(k-selection curve or None), ``selection_criterion_`` and ``segment_names_``; ``predict(X)``
assigns new customers; ``embedding(X)`` is the numeric space the clusters live in (for
silhouette and friends).  ``fit`` raises :class:`NotApplicable` when the data lack what a method
needs.  Methods: :class:`RFMSegmenter` (``rfm.py``), :class:`KMeansSegmenter` (k-means or
mini-batch k-means), :class:`GMMSegmenter`, :class:`ValueQuantileSegmenter`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from tierlab.sampling import seeded_rows
from tierlab.segmentation.preprocess import (
    IndicatorTransform,
    NotApplicable,
    check_frame,
    numeric_column,
    require_columns,
    signed_log1p,
)
from tierlab.segmentation.rfm import RFMSegmenter

__all__ = [
    "GMMSegmenter",
    "KMeansSegmenter",
    "NotApplicable",
    "RFMSegmenter",
    "ValueQuantileSegmenter",
]

SEED_MAX = np.iinfo(np.int32).max


def _check_choice(who: str, name: str, value, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{who}: {name}={value!r}; expected one of {list(allowed)}")


def _check_int(who: str, name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{who}: {name}={value!r}; expected an integer >= {minimum}")


def _k_values(who: str, k_range, minimum: int, n_rows: int) -> list[int]:
    """The ks of ``k_range = [lo, hi]`` (inclusive), checked against the number of rows."""
    ok = isinstance(k_range, Sequence) and not isinstance(k_range, str) and len(k_range) == 2
    ok = ok and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in k_range)
    if not (ok and minimum <= k_range[0] <= k_range[1]):
        raise ValueError(
            f"{who}: k_range={k_range!r}; expected [lo, hi] with {minimum} <= lo <= hi"
        )
    _check_k_fits(who, int(k_range[1]), n_rows, "k_range upper end ")
    return list(range(int(k_range[0]), int(k_range[1]) + 1))


def _check_k_fits(who: str, k: int, n_rows: int, what: str = "") -> None:
    if k > n_rows:
        raise ValueError(f"{who}: {what}n_clusters={k} should be <= n_customers={n_rows}")


def elbow(ks: Sequence[int], inertia: Sequence[float]) -> int:
    """The k whose point on the inertia curve lies farthest below the chord between its ends.

    Both axes are first scaled to [0, 1] (Kneedle; Satopää et al., 2011), so the choice does
    not depend on the units of the inertia.  A curve with no point below the chord (no bend)
    gives the smallest k.

    References
    ----------
    Satopää, V., Albrecht, J., Irwin, D. & Raghavan, B. (2011). Finding a "Kneedle" in a
    Haystack: Detecting Knee Points in System Behavior. ICDCS Workshops, 166-171.
    """
    x = np.asarray(ks, dtype="float64")
    y = np.asarray(inertia, dtype="float64")
    x = (x - x[0]) / (x[-1] - x[0])
    span = y.max() - y.min()
    y = (y - y.min()) / span if span > 0 else np.zeros_like(y)
    chord = y[0] + (y[-1] - y[0]) * x
    # Perpendicular distance is proportional to this vertical gap, the chord being fixed.
    gap = chord - y
    return int(ks[int(np.argmax(gap))]) if gap.max() > 0 else int(ks[0])


def fit_rows(who: str, n_rows: int, fit_sample, max_customers, seed: int) -> np.ndarray | None:
    """Rows a method that does not scale is fitted on: all (``None``) when ``fit_sample`` is
    null or at least ``n_rows``, else a seeded sample of ``fit_sample`` rows (sorted).  With
    ``fit_sample`` null, more than ``max_customers`` rows is an error that names both settings."""
    if fit_sample is not None:
        _check_int(who, "fit_sample", fit_sample, 2)
    if max_customers is not None:
        _check_int(who, "max_customers", max_customers, 1)
    if fit_sample is not None:  # a sample no smaller than the data is every customer
        return seeded_rows(n_rows, fit_sample, seed)
    if max_customers is not None and n_rows > max_customers:
        raise ValueError(
            f"{who}: n_customers={n_rows:,} is above max_customers={max_customers:,}, beyond "
            "which fitting every customer takes too long (docs/modelling_at_scale.md); set "
            "fit_sample (e.g. 100000) to fit on a seeded sample and assign every customer, or "
            "raise max_customers"
        )
    return None


class _TransformedSegmenter(ClusterMixin, BaseEstimator):
    """Shared plumbing of the methods that cluster the output of :class:`IndicatorTransform`:
    ``transform_`` and ``model_`` are set by ``fit``."""

    def _transform(self, X: pd.DataFrame) -> np.ndarray:
        X = check_frame(X, type(self).__name__)
        self.transform_ = IndicatorTransform(self.features, self.log1p, self.standardize)
        Z = self.transform_.fit_transform(X)
        self.feature_names_in_ = self.transform_.feature_names_in_
        self.n_features_in_ = self.transform_.n_features_in_
        self.segment_names_ = None
        return Z

    def embedding(self, X: pd.DataFrame) -> np.ndarray:
        """The transformed indicators (imputed, logged, standardised) the clusters live in."""
        check_is_fitted(self, "model_")
        return self.transform_.transform(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Cluster id (int64) of each customer in ``X``."""
        check_is_fitted(self, "model_")
        return self.model_.predict(self.embedding(X)).astype(np.int64)


class KMeansSegmenter(_TransformedSegmenter):
    """k-means (or mini-batch k-means) on transformed indicators; k fixed or chosen.

    Parameters
    ----------
    features, log1p, standardize
        The indicators and their transform (see :class:`IndicatorTransform`).
    n_clusters : int
        k when ``k_range`` is None.
    k_range : [lo, hi] or None
        Choose k in ``lo..hi`` (inclusive) by ``criterion``; overrides ``n_clusters``.
    criterion : {"silhouette", "elbow"}
        ``"silhouette"``: the k with the highest silhouette, computed on one seeded sample of
        ``sample_size`` customers (all of them if fewer).  ``"elbow"``: the k farthest below the
        chord of the inertia curve (:func:`elbow`; needs at least 3 values of k).
    sample_size : int
        Customers in the silhouette sample.
    algorithm : {"lloyd", "minibatch"}
        ``sklearn.cluster.KMeans`` (Lloyd) or ``MiniBatchKMeans`` (scales to millions).
    random_state : int, RandomState or None
        Seeds the sample and every k-means run (the same seed for every k).
    n_init : int
        k-means restarts per k (the best inertia is kept).
    batch_size : int
        Mini-batch size (``algorithm="minibatch"`` only).

    Attributes
    ----------
    labels_, n_clusters_, feature_names_in_, segment_names_ (None)
        See the module docstring.
    selection_ : pd.DataFrame or None
        ``k`` and ``score`` (silhouette, or inertia for the elbow) per candidate k; None for a
        fixed k.
    selection_criterion_ : str or None
        What ``score`` holds: ``"silhouette"`` or ``"inertia"``.
    transform_ : IndicatorTransform
    model_ : KMeans or MiniBatchKMeans
        The fitted model of the chosen k; ``predict`` equals ``labels_`` on the fitted frame.
    """

    def __init__(
        self,
        features="all",
        log1p="auto",
        standardize=True,
        n_clusters=4,
        k_range=None,
        criterion="silhouette",
        sample_size=5000,
        algorithm="lloyd",
        random_state=0,
        n_init=4,
        batch_size=4096,
    ):
        self.features = features
        self.log1p = log1p
        self.standardize = standardize
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.criterion = criterion
        self.sample_size = sample_size
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_init = n_init
        self.batch_size = batch_size

    def _model(self, k: int, seed: int):
        if self.algorithm == "minibatch":
            return MiniBatchKMeans(
                k, batch_size=self.batch_size, n_init=self.n_init, random_state=seed
            )
        return KMeans(k, algorithm="lloyd", n_init=self.n_init, random_state=seed)

    def fit(self, X: pd.DataFrame, y=None) -> KMeansSegmenter:
        """Transform the indicators of ``X``, choose k if asked, and cluster.

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
        who = type(self).__name__
        _check_choice(who, "algorithm", self.algorithm, ("lloyd", "minibatch"))
        _check_choice(who, "criterion", self.criterion, ("silhouette", "elbow"))
        _check_int(who, "n_init", self.n_init, 1)
        _check_int(who, "sample_size", self.sample_size, 2)
        _check_int(who, "batch_size", self.batch_size, 1)
        X = check_frame(X, who)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(SEED_MAX))
        if self.k_range is None:
            _check_int(who, "n_clusters", self.n_clusters, 1)
            _check_k_fits(who, int(self.n_clusters), len(X))
            Z = self._transform(X)
            self.model_ = self._model(int(self.n_clusters), seed).fit(Z)
            self.selection_ = self.selection_criterion_ = None
        else:
            minimum = 2 if self.criterion == "silhouette" else 1
            ks = _k_values(who, self.k_range, minimum, len(X))
            if self.criterion == "elbow" and len(ks) < 3:
                raise ValueError(
                    f"{who}: criterion='elbow' needs at least 3 values of k; "
                    f"k_range={list(self.k_range)}"
                )
            Z = self._transform(X)
            models = [self._model(k, seed).fit(Z) for k in ks]
            if self.criterion == "elbow":
                scores = [float(m.inertia_) for m in models]
                best = ks.index(elbow(ks, scores))
            else:
                sample = np.sort(rng.permutation(len(Z))[: self.sample_size])
                scores = [_silhouette(Z[sample], m.labels_[sample]) for m in models]
                if np.isnan(scores).all():
                    raise ValueError(
                        f"{who}: the silhouette is undefined for every k in "
                        f"k_range={list(self.k_range)} (sample of {len(sample)} customers)"
                    )
                best = int(np.nanargmax(scores))
            self.model_ = models[best]
            self.selection_ = pd.DataFrame({"k": ks, "score": scores})
            self.selection_criterion_ = "inertia" if self.criterion == "elbow" else "silhouette"
        self.labels_ = self.model_.labels_.astype(np.int64)
        self.n_clusters_ = int(self.model_.n_clusters)
        return self


def _silhouette(Z: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette of ``labels`` on ``Z``; NaN when undefined (one label, or one per row)."""
    if not 2 <= len(np.unique(labels)) < len(labels):
        return float("nan")
    return float(silhouette_score(Z, labels))


class GMMSegmenter(_TransformedSegmenter):
    """Gaussian mixture on transformed indicators, k chosen by BIC.

    Parameters
    ----------
    features, log1p, standardize
        The indicators and their transform (see :class:`IndicatorTransform`).
    k_range : [lo, hi]
        Components tried (inclusive); the k with the lowest BIC is kept (``[k, k]`` fixes k).
    covariance_type : {"full", "tied", "diag", "spherical"}
    random_state : int, RandomState or None
        Seeds every fit (the same seed for every k).
    n_init : int
        EM restarts per k.
    reg_covar : float
        Added to the covariance diagonals (keeps them positive definite).
    fit_sample : int or None
        Fit the mixtures (and their BIC) on a seeded sample of this many customers, then assign
        every customer to its most probable component; ``None`` = fit on every customer.
    max_customers : int or None
        Without ``fit_sample``, more customers than this is a ValueError naming both settings
        (EM with full covariances over 7 values of k does not finish in minutes on millions);
        ``None`` = no limit.

    Attributes
    ----------
    labels_, n_clusters_, feature_names_in_, segment_names_ (None)
        See the module docstring.  ``labels_`` are the most probable components under the
        final model, so ``predict`` equals ``labels_`` on the fitted frame.
    selection_ : pd.DataFrame
        ``k`` and ``score`` (BIC) per candidate k.
    selection_criterion_ : str
        ``"bic"``.
    n_fit_rows_ : int
        Customers the mixtures were fitted on (``fit_sample`` or all).
    model_ : GaussianMixture
        The mixture of the chosen k.

    References
    ----------
    Schwarz, G. (1978). Estimating the dimension of a model. *Annals of Statistics* 6, 461-464.
    """

    def __init__(
        self,
        features="all",
        log1p="auto",
        standardize=True,
        k_range=(2, 8),
        covariance_type="full",
        random_state=0,
        n_init=1,
        reg_covar=1e-4,
        fit_sample=None,
        max_customers=None,
    ):
        self.features = features
        self.log1p = log1p
        self.standardize = standardize
        self.k_range = k_range
        self.covariance_type = covariance_type
        self.random_state = random_state
        self.n_init = n_init
        self.reg_covar = reg_covar
        self.fit_sample = fit_sample
        self.max_customers = max_customers

    def fit(self, X: pd.DataFrame, y=None) -> GMMSegmenter:
        """Transform the indicators of ``X`` and fit a mixture per k; keep the lowest BIC.

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
        who = type(self).__name__
        kinds = ("full", "tied", "diag", "spherical")
        _check_choice(who, "covariance_type", self.covariance_type, kinds)
        _check_int(who, "n_init", self.n_init, 1)
        if not (isinstance(self.reg_covar, int | float) and self.reg_covar >= 0):
            raise ValueError(f"{who}: reg_covar={self.reg_covar!r}; expected a number >= 0")
        X = check_frame(X, who)
        ks = _k_values(who, self.k_range, 1, len(X))
        seed = int(check_random_state(self.random_state).randint(SEED_MAX))
        rows = fit_rows(who, len(X), self.fit_sample, self.max_customers, seed)
        Z = self._transform(X)
        Z_fit = Z if rows is None else Z[rows]
        self.n_fit_rows_ = len(Z_fit)
        models, bic = [], []
        for k in ks:
            model = GaussianMixture(
                k,
                covariance_type=self.covariance_type,
                n_init=self.n_init,
                reg_covar=self.reg_covar,
                random_state=seed,
            ).fit(Z_fit)
            models.append(model)
            bic.append(float(model.bic(Z_fit)))
        best = int(np.argmin(bic))
        self.model_ = models[best]
        self.selection_ = pd.DataFrame({"k": ks, "score": bic})
        self.selection_criterion_ = "bic"
        self.labels_ = self.model_.predict(Z).astype(np.int64)
        self.n_clusters_ = ks[best]
        return self


def tiers_by_thresholds(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Tier id per value (0 = top): the number of (non-increasing) thresholds the value is
    below, so a value equal to a threshold goes to the higher tier; a missing value goes to the
    last tier."""
    values = np.asarray(values, dtype="float64")
    limits = np.asarray(thresholds, dtype="float64")
    below = (values[:, None] < limits[None, :]).sum(axis=1)
    return np.where(np.isnan(values), len(limits), below).astype(np.int64)


class ValueQuantileSegmenter(ClusterMixin, BaseEstimator):
    """Value tiers: top ``cuts[0]`` share of customers by value, next ``cuts[1]``, ..., rest.

    In ``fit`` customers are sorted by the value column, descending (missing values last).
    With cumulative shares ``c_j = cuts[0] + ... + cuts[j]``, threshold ``t_j`` is the value of
    the ``ceil(c_j * n)``-th customer; a customer's cluster is the number of thresholds its
    value is below, so cluster 0 is the top tier and ``len(cuts)`` the rest.  A value equal to a
    threshold goes to the higher tier (ties can make a tier larger than its share, and a tier
    empty); a missing value goes to the last tier.  ``predict`` reuses the fitted thresholds, so
    it equals ``labels_`` on the fitted frame.

    Parameters
    ----------
    value : str
        Value column (trailing profit, or a CLV prediction).
    cuts : sequence of float
        Shares of the tiers above the last; each > 0, summing to < 1.
    random_state : None
        Unused (the method is deterministic); accepted so every method takes the parameter.

    Attributes
    ----------
    thresholds_ : ndarray of float64
        ``t_j`` per cut (non-increasing).
    fill_value_ : float
        The lowest observed value: stands in for missing values in ``embedding``.
    labels_, n_clusters_ (``len(cuts) + 1``), feature_names_in_ (``[value]``)
        See the module docstring.
    selection_, selection_criterion_, segment_names_ : None
    """

    def __init__(self, value="profit_12m", cuts=(0.05, 0.15, 0.30), random_state=None):
        self.value = value
        self.cuts = cuts
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y=None) -> ValueQuantileSegmenter:
        """Learn the value thresholds of the tiers from ``X``.

        Parameters
        ----------
        X : pd.DataFrame
            Indicator frame with the value column.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        who = type(self).__name__
        cuts = self.cuts
        ok = isinstance(cuts, Sequence) and not isinstance(cuts, str) and len(cuts) > 0
        ok = ok and all(isinstance(c, int | float) and not isinstance(c, bool) for c in cuts)
        if not ok or not all(c > 0 for c in cuts) or sum(cuts) >= 1:
            total = f" (sum {sum(cuts):g})" if ok else ""
            raise ValueError(
                f"{who}: cuts={cuts!r}{total}; expected positive shares of customers summing "
                "to < 1 (the rest is the last tier)"
            )
        X = check_frame(X, who)
        require_columns(X, [self.value], who)
        values = numeric_column(X, self.value, who)
        observed = np.sort(values[~np.isnan(values)])[::-1]
        if len(observed) == 0:
            raise NotApplicable(f"{who}: value column '{self.value}' has no observed value")
        cumulative = np.cumsum(np.asarray(cuts, dtype="float64"))
        # ceil(c * n), guarded against c * n landing a rounding error above an integer
        counts = np.ceil(cumulative * len(values) - 1e-9).astype(np.int64)
        self.thresholds_ = observed[np.clip(counts, 1, len(observed)) - 1]
        self.fill_value_ = float(observed[-1])
        self.feature_names_in_ = np.asarray([self.value], dtype=object)
        self.n_features_in_ = 1
        self.n_clusters_ = len(cuts) + 1
        self.selection_ = self.selection_criterion_ = self.segment_names_ = None
        self.labels_ = self._tiers(values)
        return self

    def _tiers(self, values: np.ndarray) -> np.ndarray:
        return tiers_by_thresholds(values, self.thresholds_)

    def _values(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "thresholds_")
        X = check_frame(X, type(self).__name__)
        require_columns(X, [self.value], type(self).__name__)
        return numeric_column(X, self.value, type(self).__name__)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Tier (cluster id, 0 = top) of each customer in ``X`` by the fitted thresholds."""
        return self._tiers(self._values(X))

    def embedding(self, X: pd.DataFrame) -> np.ndarray:
        """Signed log1p of the value column (missing -> lowest fitted value), shape ``(n, 1)``."""
        values = self._values(X)
        return signed_log1p(np.where(np.isnan(values), self.fill_value_, values))[:, None]
