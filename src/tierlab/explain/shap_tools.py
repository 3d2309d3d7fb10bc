"""SHAP values of tree models on the indicator frame, and the tables built from them.

A CLV model is a scikit-learn Pipeline (indicator step, then the regressor, possibly inside a
TransformedTargetRegressor); :func:`tree_parts` finds the fitted tree model and the frame it
sees.  SHAP values are in the tree model's *output space*: value for squared-error models, the
signed log for ``lightgbm_log``, the log link for LightGBM's Tweedie and gamma objectives.  A
model without a tree at its end (ElasticNet, the hurdle model, baselines, BTYD) is reported as
not explainable by TreeExplainer, with the reason; it is never an error.
"""

from __future__ import annotations

import warnings

import lightgbm
import numpy as np
import pandas as pd
import shap
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from tierlab.features.dictionary import Indicator

TREE_MODELS = (
    lightgbm.LGBMModel,
    HistGradientBoostingRegressor,
    HistGradientBoostingClassifier,
)


class NotExplainable(ValueError):
    """The model has no tree ensemble TreeExplainer can read; the message says what it is."""


def tree_parts(model) -> tuple[object, Pipeline | None, str]:
    """The fitted tree model, the preprocessing that feeds it (or None) and its output space."""
    prep = None
    final = model
    if isinstance(model, Pipeline):
        prep, final = model[:-1], model[-1]
    space = "value"
    if isinstance(final, TransformedTargetRegressor):
        name = getattr(final.func, "__name__", "a transform")
        space = f"{name}(value)"
        final = final.regressor_
    if not isinstance(final, TREE_MODELS):
        raise NotExplainable(
            f"{type(final).__name__} is not a tree ensemble: TreeExplainer does not apply "
            "(its indicators are not ranked here)"
        )
    objective = getattr(final, "objective_", None) or getattr(final, "objective", None)
    if isinstance(final, lightgbm.LGBMModel) and objective in ("tweedie", "gamma", "poisson"):
        space = "log E[value] (log link)"
    return final, prep, space


def shap_frame(model, X: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame, str]:
    """SHAP values of ``model`` on ``X``: (values, the frame the tree saw, output space).

    Values have shape (rows, features) for a regressor and (rows, features, classes) for a
    classifier.
    """
    tree, prep, space = tree_parts(model)
    seen = prep.transform(X) if prep is not None and len(prep) else X
    if not isinstance(seen, pd.DataFrame):
        names = prep.get_feature_names_out() if prep is not None else None
        seen = pd.DataFrame(seen, index=X.index, columns=names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LightGBM/SHAP chatter on categorical and NaN
        values = shap.TreeExplainer(tree).shap_values(seen)
    if isinstance(values, list):  # older SHAP: a list per class
        values = np.stack(values, axis=-1)
    return np.asarray(values, dtype="float64"), seen, space


def importance_table(values: np.ndarray, columns, dictionary: dict[str, Indicator]):
    """Global importance: mean |SHAP| and mean SHAP per indicator, with unit and description,
    sorted by importance (rank 1 = most important)."""
    table = pd.DataFrame(
        {
            "indicator": list(columns),
            "mean_abs_shap": np.abs(values).mean(axis=0),
            "mean_shap": values.mean(axis=0),
        }
    )
    return _ranked(table, dictionary)


def per_tier_table(
    values: np.ndarray, columns, tiers: np.ndarray, dictionary: dict[str, Indicator]
) -> pd.DataFrame:
    """Mean |SHAP| and mean signed SHAP of every indicator within each tier (long format,
    ranked within the tier)."""
    parts = []
    for tier in np.unique(tiers):
        inside = tiers == tier
        table = pd.DataFrame(
            {
                "indicator": list(columns),
                "mean_abs_shap": np.abs(values[inside]).mean(axis=0),
                "mean_shap": values[inside].mean(axis=0),
            }
        )
        table = _ranked(table, dictionary)
        table.insert(0, "n_customers", int(inside.sum()))
        table.insert(0, "tier", int(tier))
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def _ranked(table: pd.DataFrame, dictionary: dict[str, Indicator]) -> pd.DataFrame:
    table = table.sort_values(["mean_abs_shap", "indicator"], ascending=[False, True])
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table["unit"] = [dictionary[c].unit if c in dictionary else "" for c in table["indicator"]]
    table["description"] = [
        dictionary[c].formula if c in dictionary else "" for c in table["indicator"]
    ]
    return table.reset_index(drop=True)
