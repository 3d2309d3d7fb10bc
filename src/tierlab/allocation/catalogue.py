"""The service catalogue and the bank's ASSUMED response to it.

A catalogue is the ordered list of service levels in ``allocation.levels`` (most premium
first), each with a capacity (customers it can serve), a cost per customer per year and the
bank's *assumed* effect on a served customer: a relative reduction of attrition and a growth of
profit, optionally by value tier.  The assumed effects are assumptions, not measurements: the
allocation stage labels every number derived from them ``assumed_...`` and scores the policies
also against the synthetic bank's true response (:mod:`tierlab.data.service_response`).

The assumed incremental profit of level ``s`` for customer ``i`` uses the same response law as
the synthetic bank (:func:`tierlab.data.service_response.incremental_profit`) with the
customer's predicted value over the horizon in place of the true expected profit, an assumed
annual attrition in place of the true hazard, and the assumed effects in place of the true
ones.  Costs are paid monthly over the horizon and discounted like the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tierlab.data.service_response import (
    EFFECTS,
    incremental_profit,
    monthly_hazard,
    survival_annuity,
)

LEVEL_KEYS = ("capacity", "managers", "portfolio_size", "cost_per_year", "assumed")


def by_tier(value, where: str, low: float, high: float, closed_high: bool = True) -> np.ndarray:
    """A scalar or a per-tier list (tier 1 first) as a float array, every entry in range."""
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    if not values:
        raise ValueError(f"{where}=[] is empty; give a number or one number per tier")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"{where}={value!r}: {v!r} is not a number")
        ok = low <= v <= high if closed_high else low <= v < high
        if not ok:
            bracket = "]" if closed_high else ")"
            raise ValueError(f"{where}={v} should be in [{low}, {high}{bracket}")
        out.append(float(v))
    return np.asarray(out)


def per_customer(table: np.ndarray, tiers: np.ndarray) -> np.ndarray:
    """Per-tier values for each customer (tier 1 = first entry; tiers past the end take the
    last entry)."""
    index = np.clip(np.asarray(tiers, dtype=np.int64) - 1, 0, len(table) - 1)
    return table[index]


@dataclass
class Level:
    """One service level: capacity (``inf`` = unlimited), annual cost per customer and the
    ASSUMED effects (arrays by tier, tier 1 first)."""

    name: str
    capacity: float
    cost_per_year: float
    attrition_reduction: np.ndarray
    profit_growth: np.ndarray


@dataclass
class Catalogue:
    """The ordered service levels (most premium first) and the index of the baseline."""

    levels: list[Level]
    baseline: int

    @property
    def names(self) -> list[str]:
        return [lv.name for lv in self.levels]

    @property
    def capacities(self) -> np.ndarray:
        return np.array([lv.capacity for lv in self.levels])

    @property
    def costs_per_year(self) -> np.ndarray:
        return np.array([lv.cost_per_year for lv in self.levels])

    @property
    def extra_costs_per_year(self) -> np.ndarray:
        """Annual cost per customer above the baseline's (what the budget pays for)."""
        costs = self.costs_per_year
        return costs - costs[self.baseline]

    @classmethod
    def from_config(cls, levels: Mapping, baseline: str, where: str = "allocation") -> Catalogue:
        """Parse ``allocation.levels`` and ``allocation.baseline_level``.

        Raises ``ValueError`` naming the key and the rule for: no levels, unknown keys, both or
        neither-but-partial capacity forms, negative capacities or costs, effects out of range,
        a baseline that is not a level, is capacity-limited or is not the cheapest level.
        """
        if not levels:
            raise ValueError(f"{where}.levels is empty: configure at least two service levels")
        parsed = []
        for name, node in levels.items():
            key = f"{where}.levels.{name}"
            node = dict(node or {})
            unknown = set(node) - set(LEVEL_KEYS)
            if unknown:
                raise ValueError(f"{key}: unknown keys {sorted(unknown)}; expected {LEVEL_KEYS}")
            parsed.append(
                Level(
                    str(name),
                    _capacity(node, key),
                    _non_negative(node.get("cost_per_year"), f"{key}.cost_per_year"),
                    *_assumed(node.get("assumed") or {}, f"{key}.assumed"),
                )
            )
        names = [lv.name for lv in parsed]
        if len(parsed) < 2:
            raise ValueError(f"{where}.levels has only {names}: allocation needs >= 2 levels")
        if baseline not in names:
            raise ValueError(f"{where}.baseline_level={baseline!r} is not a level ({names})")
        base = parsed[names.index(baseline)]
        if np.isfinite(base.capacity):
            raise ValueError(
                f"{where}.levels.{baseline}.capacity={base.capacity:g}: the baseline level "
                "must be unlimited (capacity: null), so that every customer can be served"
            )
        cheaper = [lv.name for lv in parsed if lv.cost_per_year < base.cost_per_year]
        if cheaper:
            raise ValueError(
                f"{where}.baseline_level={baseline!r} costs {base.cost_per_year:g} a year but "
                f"{cheaper} cost less; the baseline must be the cheapest level"
            )
        return cls(parsed, names.index(baseline))

    def scaled(self, factor: float) -> Catalogue:
        """The catalogue with every assumed effect times ``factor`` (reductions capped at 1)."""
        levels = [
            Level(
                lv.name,
                lv.capacity,
                lv.cost_per_year,
                np.minimum(lv.attrition_reduction * factor, 1.0),
                lv.profit_growth * factor,
            )
            for lv in self.levels
        ]
        return Catalogue(levels, self.baseline)


def horizon_cost(costs_per_year: np.ndarray, horizon: int, discount_rate_monthly: float):
    """Cost of a level over the horizon: ``cost / 12`` a month, discounted like value."""
    months = float(survival_annuity(0.0, horizon, discount_rate_monthly))
    return np.asarray(costs_per_year, dtype="float64") / 12.0 * months


def assumed_increment(
    catalogue: Catalogue,
    value: np.ndarray,
    tiers: np.ndarray,
    attrition_annual: np.ndarray,
    horizon: int,
    discount_rate_monthly: float,
) -> np.ndarray:
    """ASSUMED incremental profit (before cost) of every level for every customer, ``(n, L)``.

    Parameters
    ----------
    value : ndarray
        Predicted value of each customer over the horizon (a CLV model's prediction).
    tiers : ndarray
        Value tier of each customer (1 = most valuable): selects per-tier assumed effects.
    attrition_annual : ndarray
        ASSUMED annual attrition, a scalar or one value per tier (tier 1 first).
    """
    hazard = monthly_hazard(per_customer(np.atleast_1d(attrition_annual), tiers))
    columns = [
        incremental_profit(
            value,
            hazard,
            per_customer(lv.attrition_reduction, tiers),
            per_customer(lv.profit_growth, tiers),
            horizon,
            discount_rate_monthly,
        )
        for lv in catalogue.levels
    ]
    return np.column_stack(columns)


def net_gain(
    increment: np.ndarray, catalogue: Catalogue, horizon: int, discount_rate_monthly: float
) -> np.ndarray:
    """Net gain over the baseline level: ``(increment - cost) - (baseline's)``, ``(n, L)``.

    The baseline column is 0: the objective of every solver is the net gain over serving
    everyone at the baseline (the uniform policy).
    """
    cost = horizon_cost(catalogue.costs_per_year, horizon, discount_rate_monthly)
    net = increment - cost[None, :]
    return net - net[:, [catalogue.baseline]]


def _capacity(node: dict, key: str) -> float:
    managers, size = node.get("managers"), node.get("portfolio_size")
    if (managers is None) != (size is None):
        raise ValueError(f"{key}: give both managers and portfolio_size, or neither")
    if managers is not None:
        if node.get("capacity") is not None:
            raise ValueError(f"{key}: give capacity or managers x portfolio_size, not both")
        return _count(managers, f"{key}.managers") * _count(size, f"{key}.portfolio_size")
    capacity = node.get("capacity")
    return float("inf") if capacity is None else _count(capacity, f"{key}.capacity")


def _count(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key}={value!r} should be an integer >= 0")
    return float(value)


def _non_negative(value, key: str) -> float:
    if value is None:
        raise ValueError(f"{key} is missing: every level needs a cost per customer per year")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key}={value!r} should be a number >= 0")
    return float(value)


def _assumed(node: Mapping, key: str) -> tuple[np.ndarray, np.ndarray]:
    unknown = set(node) - set(EFFECTS)
    if unknown:
        raise ValueError(f"{key}: unknown keys {sorted(unknown)}; expected {list(EFFECTS)}")
    rho = by_tier(node.get("attrition_reduction", 0.0), f"{key}.attrition_reduction", 0.0, 1.0)
    gamma = by_tier(node.get("profit_growth", 0.0), f"{key}.profit_growth", -1.0, np.inf)
    if (gamma <= -1.0).any():
        raise ValueError(f"{key}.profit_growth={gamma.tolist()} should be > -1")
    return rho, gamma
