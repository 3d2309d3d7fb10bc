"""Scoring allocation policies: profit, cost, ROI, coverage, moves, sensitivity, break-even.

Every money figure is over the holdout horizon, discounted like the CLV target, and relative to
the uniform policy (everyone at the baseline level).  Figures from the bank's assumed effects
are named ``assumed_...``; figures from the synthetic bank's true response ``true_...``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from tierlab.allocation.catalogue import Catalogue

#: ASSUMED incremental profit matrix ``(n, L)`` of a catalogue (with scaled effects), for the
#: customers selected by a boolean mask (``None`` = all).
IncrementFn = Callable[[Catalogue, np.ndarray | None], np.ndarray]


def moved(a: np.ndarray, b: np.ndarray) -> int:
    """Customers whose level differs between two assignments."""
    return int(np.count_nonzero(a != b))


def relative(matrix: np.ndarray, assignment: np.ndarray, baseline: int) -> float:
    """``sum_i matrix[i, a_i] - matrix[i, baseline]``."""
    rows = np.arange(len(assignment))
    return float((matrix[rows, assignment] - matrix[:, baseline]).sum())


def policy_row(
    name: str,
    assignment: np.ndarray,
    catalogue: Catalogue,
    assumed: np.ndarray,
    true: np.ndarray | None,
    cost: np.ndarray,
    references: dict[str, np.ndarray],
) -> dict:
    """One row of the comparison table (see ``docs/allocation.md`` for every column)."""
    b = catalogue.baseline
    row: dict = {"policy": name}
    counts = np.bincount(assignment, minlength=len(catalogue.levels))
    for level, count in zip(catalogue.names, counts, strict=True):
        row[f"n_{level}"] = int(count)
    for ref, other in references.items():
        row[f"moved_vs_{ref}"] = moved(assignment, other)
    extra = float((cost[assignment] - cost[b]).sum())
    row["annual_extra_cost"] = float(catalogue.extra_costs_per_year[assignment].sum())
    row["extra_cost"] = extra
    for kind, matrix in (("assumed", assumed), ("true", true)):
        if matrix is None:
            continue
        increment = relative(matrix, assignment, b)
        row[f"{kind}_incremental_profit"] = increment
        row[f"{kind}_net_gain"] = increment - extra
        row[f"{kind}_roi"] = (increment - extra) / extra if extra > 0 else np.nan
    return row


def coverage(
    assignments: dict[str, np.ndarray], tiers: np.ndarray, catalogue: Catalogue
) -> pd.DataFrame:
    """Share of each tier's customers at each level, per policy (long format)."""
    rows = []
    for policy, assignment in assignments.items():
        for tier in np.unique(tiers):
            members = assignment[tiers == tier]
            counts = np.bincount(members, minlength=len(catalogue.levels))
            for level, count in zip(catalogue.names, counts, strict=True):
                rows.append(
                    {
                        "policy": policy,
                        "tier": int(tier),
                        "level": level,
                        "customers": int(count),
                        "share": count / len(members),
                    }
                )
    return pd.DataFrame(rows)


def transitions(a: np.ndarray, b: np.ndarray, names: list[str], labels: tuple[str, str]):
    """Cross-table of customers by level under two policies (rows ``labels[0]``)."""
    table = pd.crosstab(
        pd.Categorical(np.asarray(names)[a], categories=names),
        pd.Categorical(np.asarray(names)[b], categories=names),
        dropna=False,
    )
    table.index.name, table.columns.name = labels
    return table


def sensitivity(
    assignments: dict[str, np.ndarray],
    catalogue: Catalogue,
    increment: IncrementFn,
    cost: np.ndarray,
    scales: list[float],
) -> pd.DataFrame:
    """ASSUMED net gain of every (fixed) policy when every assumed effect is scaled by each
    factor, and the policies' rank at that factor (1 = best)."""
    rows = []
    for scale in scales:
        matrix = increment(catalogue.scaled(scale), None)
        gains = {}
        for policy, assignment in assignments.items():
            extra = float((cost[assignment] - cost[catalogue.baseline]).sum())
            gains[policy] = relative(matrix, assignment, catalogue.baseline) - extra
        ranks = pd.Series(gains).rank(ascending=False, method="min")
        for policy, gain in gains.items():
            rows.append(
                {
                    "effect_scale": scale,
                    "policy": policy,
                    "assumed_net_gain": gain,
                    "rank": int(ranks[policy]),
                }
            )
    return pd.DataFrame(rows)


def break_even_scale(net: Callable[[float], float], upper: float = 64.0) -> float:
    """Smallest effect scale ``f >= 0`` with ``net(f) = 0`` (``net`` increasing in ``f``):
    0 if the level pays even without effect, ``inf`` if it does not pay at ``upper``."""
    if net(0.0) >= 0:
        return 0.0
    hi = 1.0
    while net(hi) < 0:
        if hi >= upper:
            return float("inf")
        hi *= 2.0
    return float(brentq(net, 0.0, hi, xtol=1e-10, rtol=1e-10))


def break_even(
    assignments: dict[str, np.ndarray],
    catalogue: Catalogue,
    increment: IncrementFn,
    cost: np.ndarray,
    tiers: np.ndarray,
) -> pd.DataFrame:
    """Per policy and premium level: the factor on the assumed effects at which the customers
    the policy puts there stop paying for the level's cost (net gain 0), and the effect sizes
    it corresponds to (mean over those customers)."""
    rows = []
    b = catalogue.baseline
    for policy, assignment in assignments.items():
        for s, level in enumerate(catalogue.levels):
            members = assignment == s
            if s == b or not members.any():
                continue
            extra = float((cost[s] - cost[b]) * members.sum())

            def net(scale: float, members=members, s=s, extra=extra) -> float:
                matrix = increment(catalogue.scaled(scale), members)
                return float((matrix[:, s] - matrix[:, b]).sum()) - extra

            factor = break_even_scale(net)
            index = np.clip(tiers[members] - 1, 0, None)
            rho = level.attrition_reduction[np.minimum(index, len(level.attrition_reduction) - 1)]
            gamma = level.profit_growth[np.minimum(index, len(level.profit_growth) - 1)]
            rows.append(
                {
                    "policy": policy,
                    "level": level.name,
                    "customers": int(members.sum()),
                    "assumed_net_gain": net(1.0),
                    "break_even_scale": factor,
                    "assumed_attrition_reduction": float(rho.mean()),
                    # a level that never pays has no break-even effect (NaN, not "100 %")
                    "break_even_attrition_reduction": min(float(rho.mean()) * factor, 1.0)
                    if np.isfinite(factor)
                    else np.nan,
                    "assumed_profit_growth": float(gamma.mean()),
                    "break_even_profit_growth": float(gamma.mean()) * factor
                    if np.isfinite(factor)
                    else np.nan,
                }
            )
    return pd.DataFrame(rows)
