"""How the synthetic bank's customers really respond to a service level (ground truth).

The generator (:mod:`tierlab.data.generator`) gives every customer a latent segment, a constant
monthly attrition hazard ``h`` and an expected discounted profit ``E`` over the holdout window
(``truth.parquet``).  This module defines what a service level would *really* do to them, so
that an allocation policy can be scored against what the simulated bank would earn, not only
against the bank's own (deliberately imperfect) assumptions.  See ``docs/synthetic_bank.md``,
section "Response to service levels".

The response law, per customer and level, with a relative attrition reduction ``rho`` and a
profit growth ``gamma`` that depend on the latent segment:

    h'       = h x (1 - rho)                                   (hazard under the level)
    A(h)     = sum_{k=1..H} ((1 - h) / (1 + r))^k              (survival-weighted annuity)
    R        = A(h') / A(h)                                    (retention factor, >= 1)
    E_level  = R x (E + gamma x max(E, 0))
    delta    = E_level - E = E x (R - 1) + gamma x max(E, 0) x R

``H`` is the holdout horizon in months and ``r`` the monthly discount rate of the holdout
target.  Longer retention multiplies whatever the customer earns, so keeping a loss-making
customer longer loses money; growth (balances, product uptake) applies to positive profit
only.  ``E x R`` is exact when the customer's expected monthly profit is constant over the
horizon; with the generator's balance growth (a few tenths of a percent a month) it is a close
approximation, and it is by definition the truth the allocation stage scores against.

The response parameters live in ``conf/allocation/default.yaml`` under ``truth:``, not in
``conf/data/synthetic.yaml``: every key of the data config is part of the synthetic data's
cache key (:attr:`tierlab.data.synthetic.SyntheticBank.cache_key`), so adding them there
would regenerate every cached data set although the tables would not change.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

#: Truth columns the response needs.
TRUTH_COLUMNS = ("customer_id", "latent_segment", "monthly_attrition_hazard")
#: Value column of the truth table the response applies to.
VALUE_COLUMN = "expected_holdout_profit"
EFFECTS = ("attrition_reduction", "profit_growth")


def monthly_hazard(annual_attrition: np.ndarray | float) -> np.ndarray:
    """Constant monthly hazard of an annual attrition probability: ``1 - (1 - a)^(1/12)``
    (the generator's definition, ``docs/synthetic_bank.md`` section 2)."""
    a = np.asarray(annual_attrition, dtype="float64")
    return 1.0 - (1.0 - a) ** (1.0 / 12.0)


def survival_annuity(
    hazard: np.ndarray | float, horizon_months: int, discount_rate_monthly: float
) -> np.ndarray:
    """``A(h) = sum_{k=1..H} ((1 - h) / (1 + r))^k``: discounted expected months alive.

    The same survival and discount weights as the generator's ``expected_holdout_profit``
    (``docs/synthetic_bank.md`` section 6), in closed form (geometric series).
    """
    q = (1.0 - np.asarray(hazard, dtype="float64")) / (1.0 + float(discount_rate_monthly))
    H = int(horizon_months)
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = q * (1.0 - q**H) / (1.0 - q)
    return np.where(np.isclose(q, 1.0), float(H), closed)


def incremental_profit(
    value: np.ndarray,
    hazard: np.ndarray,
    attrition_reduction: np.ndarray | float,
    profit_growth: np.ndarray | float,
    horizon_months: int,
    discount_rate_monthly: float,
) -> np.ndarray:
    """Change of expected discounted profit over the horizon when a level applies.

    ``delta = E (R - 1) + gamma max(E, 0) R`` with ``R = A(h (1 - rho)) / A(h)`` (module
    docstring).  Arrays broadcast; ``rho`` must lie in [0, 1] and ``gamma`` be > -1.
    """
    value = np.asarray(value, dtype="float64")
    hazard = np.asarray(hazard, dtype="float64")
    rho = np.asarray(attrition_reduction, dtype="float64")
    gamma = np.asarray(profit_growth, dtype="float64")
    base = survival_annuity(hazard, horizon_months, discount_rate_monthly)
    served = survival_annuity(hazard * (1.0 - rho), horizon_months, discount_rate_monthly)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(base > 0, served / base, 1.0)
    return value * (ratio - 1.0) + gamma * np.maximum(value, 0.0) * ratio


class ServiceResponse:
    """The synthetic bank's true response to each service level, by latent segment.

    Parameters
    ----------
    effects : mapping
        ``{level: {segment: {attrition_reduction: rho, profit_growth: gamma}}}``; a level
        or segment that is absent has no effect (``rho = gamma = 0``).
    where : str
        Config path of ``effects``, named in error messages.
    """

    def __init__(self, effects: Mapping, where: str = "allocation.truth.effects"):
        self.where = where
        self.effects: dict[str, dict[str, tuple[float, float]]] = {}
        for level, by_segment in (effects or {}).items():
            parsed = {}
            for segment, node in (by_segment or {}).items():
                unknown = set(node) - set(EFFECTS)
                if unknown:
                    raise ValueError(
                        f"{where}.{level}.{segment}: unknown keys {sorted(unknown)}; "
                        f"expected {list(EFFECTS)}"
                    )
                rho = float(node.get("attrition_reduction", 0.0))
                gamma = float(node.get("profit_growth", 0.0))
                if not 0.0 <= rho <= 1.0:
                    raise ValueError(
                        f"{where}.{level}.{segment}.attrition_reduction={rho} should be in [0, 1]"
                    )
                if not gamma > -1.0:
                    raise ValueError(
                        f"{where}.{level}.{segment}.profit_growth={gamma} should be > -1"
                    )
                parsed[str(segment)] = (rho, gamma)
            self.effects[str(level)] = parsed

    def check_segments(self, segments: set[str]) -> None:
        """Every configured segment must be a latent segment of the data."""
        for level, parsed in self.effects.items():
            unknown = set(parsed) - segments
            if unknown:
                raise ValueError(
                    f"{self.where}.{level}: segments {sorted(unknown)} are not latent segments "
                    f"of this data set ({sorted(segments)})"
                )

    def incremental_profit(
        self,
        truth: pd.DataFrame,
        level: str,
        horizon_months: int,
        discount_rate_monthly: float,
    ) -> np.ndarray:
        """True change of each customer's expected holdout profit under ``level``.

        Parameters
        ----------
        truth : pd.DataFrame
            Rows of ``truth.parquet`` (one per customer); a missing expected profit (customer
            not at the cut-off) counts as 0.
        level : str
            A service level; one without configured effects returns zeros.
        """
        missing = [c for c in (*TRUTH_COLUMNS, VALUE_COLUMN) if c not in truth.columns]
        if missing:
            raise ValueError(f"truth table lacks columns {missing}; the response needs them")
        column = truth["latent_segment"]
        segment = column.astype(str).to_numpy()
        if isinstance(column.dtype, pd.CategoricalDtype):  # every segment, present or not
            self.check_segments({str(c) for c in column.cat.categories})
        else:
            self.check_segments(set(segment))
        parsed = self.effects.get(level, {})
        rho = np.zeros(len(truth))
        gamma = np.zeros(len(truth))
        for name, (r, g) in parsed.items():
            rho[segment == name] = r
            gamma[segment == name] = g
        value = truth[VALUE_COLUMN].to_numpy(dtype="float64")
        hazard = truth["monthly_attrition_hazard"].to_numpy(dtype="float64")
        unknown = ~(np.isfinite(value) & np.isfinite(hazard))  # no truth row: counts as 0
        value, hazard = np.where(unknown, 0.0, value), np.where(unknown, 0.0, hazard)
        return incremental_profit(
            value,
            hazard,
            rho,
            gamma,
            horizon_months,
            discount_rate_monthly,
        )
