"""A scikit-learn regressor around the BTYD models, so they join the CLV evaluation loop.

:class:`BTYDRegressor` reads the BTYD summary columns of the indicator frame (``btyd_frequency``,
``btyd_recency``, ``btyd_T``, ``btyd_monetary_value``), fits a transaction model (BG/NBD or
Pareto/NBD) and the Gamma-Gamma spend model on them, and predicts each customer's discounted
value over the horizon (:func:`tierlab.clv.value.customer_lifetime_value`).  It needs no target:
the models are fitted on the calibration summary at the cut-off.

Two conventions to know:

* customers without a purchase before the cut-off have no summary row (missing ``btyd_*``):
  they are predicted 0 transactions and 0 value;
* the BTYD value is in the unit of the transaction log (spend).  On bank data the holdout target
  is profit, so only the rank metrics of this model compare with the others
  (``value_unit = "transaction_amount"``; the CLV stage drops the scale metrics there).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from tierlab.clv.bgnbd import BetaGeoModel
from tierlab.clv.gammagamma import GammaGammaModel
from tierlab.clv.paretonbd import ParetoNBDModel
from tierlab.clv.value import customer_lifetime_value
from tierlab.features.btyd import BTYD_INDICATORS, unit_days
from tierlab.segmentation.preprocess import NotApplicable, check_frame, require_columns

SUMMARY_COLUMNS = BTYD_INDICATORS
TRANSACTION_MODELS = {"bgnbd": BetaGeoModel, "paretonbd": ParetoNBDModel}


class FitFailed(RuntimeError):
    """A model could not be fitted to these data (e.g. the likelihood has no interior maximum);
    the CLV stage reports the model as failed with this message and goes on."""


def summary_of(X: pd.DataFrame, who: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The BTYD summary of the customers that have one, and the mask of those rows."""
    require_columns(X, list(SUMMARY_COLUMNS), who)
    frame = X[list(SUMMARY_COLUMNS)].rename(columns=SUMMARY_COLUMNS).astype("float64")
    has = frame["frequency"].notna().to_numpy()
    return frame.loc[has], has


class BTYDRegressor(RegressorMixin, BaseEstimator):
    """Discounted BTYD CLV over a horizon: a transaction model times the Gamma-Gamma spend.

    Parameters
    ----------
    transaction_model : {"bgnbd", "paretonbd"}
    horizon_months : int
        Months of future value (the holdout length).
    discount_rate_monthly : float
        Month k of the horizon weighs ``(1 + r)^-k`` (the holdout target's discounting).
    time_unit : {"D", "W", "M"}
        Unit of ``btyd_recency`` and ``btyd_T`` (``features.btyd_time_unit``).
    max_iter, tol
        Passed to the BTYD models.

    Attributes
    ----------
    transaction_model_, spend_model_
        The fitted BTYD models (``params_``, ``standard_errors_``, ``log_likelihood_``).
    n_fitted_ : int
        Customers with a BTYD summary.
    """

    value_unit = "transaction_amount"

    def __init__(
        self,
        transaction_model: str = "bgnbd",
        horizon_months: int = 12,
        discount_rate_monthly: float = 0.0,
        time_unit: str = "W",
        max_iter: int = 1000,
        tol: float = 1e-10,
    ):
        self.transaction_model = transaction_model
        self.horizon_months = horizon_months
        self.discount_rate_monthly = discount_rate_monthly
        self.time_unit = time_unit
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X: pd.DataFrame, y=None) -> BTYDRegressor:
        name = type(self).__name__
        X = check_frame(X, name)
        if self.transaction_model not in TRANSACTION_MODELS:
            raise ValueError(
                f"{name}: transaction_model={self.transaction_model!r}; expected one of "
                f"{sorted(TRANSACTION_MODELS)}"
            )
        summary, _ = summary_of(X, name)
        if len(summary) == 0 or not (summary["frequency"] > 0).any():
            raise NotApplicable(f"{name}: no customer has a repeat purchase before the cut-off")
        model = TRANSACTION_MODELS[self.transaction_model]
        try:
            self.transaction_model_ = model(max_iter=self.max_iter, tol=self.tol).fit(summary)
            self.spend_model_ = GammaGammaModel(
                max_iter=self.max_iter, tol=self.tol, nonpositive_spend="exclude"
            ).fit(summary)
        except RuntimeError as exc:  # no convergence: the data do not fit the model
            raise FitFailed(str(exc)) from exc
        q = self.spend_model_.params_["q"]
        if q <= 1.0:
            raise FitFailed(
                f"Gamma-Gamma q={q:.4g} <= 1: the spend distribution has no finite mean "
                "(Fader & Hardie 2013, Eq. 5 needs q > 1), so no expected spend exists"
            )
        self.period_length_ = unit_days("M") / unit_days(self.time_unit)
        self.n_fitted_ = len(summary)
        self.n_features_in_ = len(SUMMARY_COLUMNS)
        return self

    def _per_customer(self, X: pd.DataFrame, compute) -> np.ndarray:
        """``compute(summary)`` for the customers with a BTYD summary, 0 for the others."""
        check_is_fitted(self, "transaction_model_")
        who = type(self).__name__
        summary, has = summary_of(check_frame(X, who), who)
        out = np.zeros(len(X))
        if len(summary):
            out[has] = compute(summary).to_numpy()
        return out

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Discounted expected value over ``horizon_months`` (0 without a purchase)."""
        return self._per_customer(
            X,
            lambda summary: customer_lifetime_value(
                self.transaction_model_,
                self.spend_model_,
                summary,
                periods=int(self.horizon_months),
                period_length=self.period_length_,
                discount_rate=float(self.discount_rate_monthly),
            ),
        )

    def predict_transactions(self, X: pd.DataFrame) -> np.ndarray:
        """Expected purchases over ``horizon_months`` (0 without a purchase)."""
        horizon = int(self.horizon_months) * self.period_length_
        return self._per_customer(
            X, lambda summary: self.transaction_model_.expected_transactions(summary, horizon)
        )

    def fitted_params(self) -> dict[str, float]:
        """Both models' parameters, prefixed ``tx_`` and ``spend_``, for tracking."""
        check_is_fitted(self, "transaction_model_")
        out = {f"tx_{k}": v for k, v in self.transaction_model_.params_.items()}
        out.update({f"spend_{k}": v for k, v in self.spend_model_.params_.items()})
        out["tx_log_likelihood"] = self.transaction_model_.log_likelihood_
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.allow_nan = True
        return tags
