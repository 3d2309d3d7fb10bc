"""Allocation policies: who gets which service level.

Every policy returns one level index per customer (into the catalogue's levels) that respects
every capacity and the budget:

* ``uniform``: everyone at the baseline level (serve everyone the same: the reference).
* ``rfm_rules``: a rule table from RFM segment to level (``allocation.rfm_rules``); inside a
  segment the highest RFM total score first; a customer whose level is full falls to the next
  cheaper level with room (finally the baseline).
* ``top_down``: the study's recommendation.  Customers ordered by value tier (1 first), then by
  predicted value; the most premium level is filled first, then the next, and so on, until
  capacity or budget runs out.  It ignores the assumed effects and costs.
* ``optimised``: the assignment that maximises the ASSUMED net gain (incremental profit minus
  cost) under capacities and budget (:mod:`tierlab.allocation.solvers`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tierlab.allocation.catalogue import Catalogue

POLICIES = ("uniform", "rfm_rules", "top_down", "optimised")


class Skipped(Exception):
    """A policy that does not apply to this run (e.g. RFM segments missing)."""


def uniform(catalogue: Catalogue, n: int) -> np.ndarray:
    """Everyone at the baseline level."""
    return np.full(n, catalogue.baseline, dtype=np.int64)


def fill_in_order(
    catalogue: Catalogue,
    order: np.ndarray,
    wanted: np.ndarray,
    budget: float | None,
) -> np.ndarray:
    """Place customers in ``order`` at their ``wanted`` level while it has room and the budget
    lasts; otherwise at the next cheaper level that has both (finally the baseline).

    ``wanted`` holds a level index per customer (the baseline = not wanted for any premium
    level).  Levels are "cheaper" by the catalogue's annual cost.
    """
    n = len(wanted)
    assignment = np.full(n, catalogue.baseline, dtype=np.int64)
    left = catalogue.capacities.copy()
    extra = catalogue.extra_costs_per_year
    spend_left = np.inf if budget is None else float(budget)
    costs = catalogue.costs_per_year
    by_cost = np.lexsort((np.arange(len(costs)), -costs))  # dearest first, then by position
    for i in order:
        want = wanted[i]
        if want == catalogue.baseline:
            continue
        # the wanted level first, then the other premium levels that cost no more than it
        fallback = [s for s in by_cost if s != want and costs[s] <= costs[want]]
        for s in [want, *fallback]:
            if s == catalogue.baseline:
                continue
            if left[s] >= 1 and extra[s] <= spend_left:
                assignment[i] = s
                left[s] -= 1
                spend_left -= extra[s]
                break
    return assignment


def top_down(
    catalogue: Catalogue,
    tiers: np.ndarray,
    value: np.ndarray,
    budget: float | None,
) -> np.ndarray:
    """Fill the most premium level with the most valuable tier first (the study's policy):
    order by tier, then predicted value (ties by position); each customer takes the dearest
    level with room and budget left."""
    n = len(tiers)
    order = np.lexsort((np.arange(n), -value, tiers))
    premium = [s for s in np.argsort(-catalogue.costs_per_year, kind="stable")]
    premium = [s for s in premium if s != catalogue.baseline]
    assignment = np.full(n, catalogue.baseline, dtype=np.int64)
    left = catalogue.capacities.copy()
    extra = catalogue.extra_costs_per_year
    spend_left = np.inf if budget is None else float(budget)
    position = 0
    for s in premium:  # a contiguous block of the ranking per level, dearest level first
        while left[s] >= 1 and position < n:
            if extra[s] > spend_left:
                break
            assignment[order[position]] = s
            left[s] -= 1
            spend_left -= extra[s]
            position += 1
    return assignment


def rfm_rules(
    catalogue: Catalogue,
    segments: pd.Series,
    scores: np.ndarray,
    rules: Mapping[str, str],
    budget: float | None,
    where: str = "allocation.rfm_rules",
) -> np.ndarray:
    """Level by RFM segment name (rule table), best RFM total score first inside a segment,
    segments in rule-table order."""
    names = catalogue.names
    unknown = {segment: level for segment, level in rules.items() if level not in names}
    if unknown:
        raise ValueError(f"{where}: levels {sorted(set(unknown.values()))} are not in {names}")
    seen = set(segments.astype(str))
    absent = [s for s in rules if s not in seen]
    wanted = np.full(len(segments), catalogue.baseline, dtype=np.int64)
    rank = np.full(len(segments), len(rules), dtype=np.int64)
    labels = segments.astype(str).to_numpy()
    for k, (segment, level) in enumerate(rules.items()):
        hit = labels == segment
        wanted[hit] = names.index(level)
        rank[hit] = k
    if absent and len(absent) == len(rules):
        raise Skipped(f"none of the rule segments {list(rules)} occurs in the RFM segments")
    order = np.lexsort((np.arange(len(labels)), -np.asarray(scores), rank))
    return fill_in_order(catalogue, order, wanted, budget)
