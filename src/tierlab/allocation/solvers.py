"""Solvers of the allocation problem: assign each customer to exactly one service level.

The problem (:class:`Problem`): maximise ``sum_i gain[i, s(i)]`` (net gain over the baseline
level, so the baseline column is 0) subject to ``#{i: s(i) = s} <= capacity[s]`` for every
level and, optionally, ``sum_i extra_cost[s(i)] <= budget`` (annual cost above the baseline).

* :func:`solve_exact`: the assignment programme with ``scipy.optimize.milp`` (HiGHS).  Without a
  budget the constraint matrix (one assignment row per customer, one capacity row per level) is
  totally unimodular, so the LP relaxation has an integral optimal vertex: solved as an LP.
  With a budget it is a MILP: the LP relaxation has at most a few fractional customers, which
  are rounded (the LP optimum certifies the gap), and small problems are then solved to
  optimality by branch and bound.  Customers whose gain
  is <= 0 at every level are fixed to the baseline first (that never loses value, capacity or
  budget, because the baseline is unlimited and the cheapest level).
* :func:`solve_greedy`: Lagrangian prices per level (and for the budget) by exact coordinate
  minimisation of the dual bound, each customer takes its best level at those prices, then a
  capacity/budget repair and a greedy fill.  ``O(n L)`` per pass: it scales to millions.
  Its certificate is the Lagrangian (LP dual) bound ``UB >= optimum`` it computes on the way,
  so its stated gap ``(UB - value) / UB`` bounds the true optimality gap on any instance.

References
----------
Fisher, M. L. (1981). The Lagrangian relaxation method for solving integer programming
problems. Management Science 27(1), 1-18.
Schrijver, A. (2003). Combinatorial Optimization, ch. 19 (total unimodularity of network and
interval matrices; the assignment/transportation polytope is integral).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

#: Relative tolerance of budget checks (floating-point sums of costs).
BUDGET_RTOL = 1e-9


@dataclass
class Problem:
    """An allocation instance: ``gain`` ``(n, L)`` with a zero baseline column, capacity per
    level (``inf`` = unlimited), annual extra cost per level (0 at the baseline), the budget
    (``None`` = no budget) and the baseline's column."""

    gain: np.ndarray
    capacity: np.ndarray
    extra_cost: np.ndarray
    budget: float | None
    baseline: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.gain.shape

    def value(self, assignment: np.ndarray) -> float:
        """Objective of an assignment."""
        return float(self.gain[np.arange(len(assignment)), assignment].sum())

    def counts(self, assignment: np.ndarray) -> np.ndarray:
        return np.bincount(assignment, minlength=self.shape[1])

    def spend(self, assignment: np.ndarray) -> float:
        return float(self.extra_cost[assignment].sum())

    def violations(self, assignment: np.ndarray) -> list[str]:
        """Broken constraints of an assignment, in words (empty = feasible)."""
        out = []
        n, L = self.shape
        if (
            assignment.shape != (n,)
            or assignment.min(initial=0) < 0
            or assignment.max(initial=0) >= L
        ):
            return [f"assignment must hold one level index in 0..{L - 1} per customer"]
        for s, (count, cap) in enumerate(zip(self.counts(assignment), self.capacity, strict=True)):
            if count > cap:
                out.append(f"level {s}: {count} customers > capacity {cap:g}")
        if self.budget is not None and self.spend(assignment) > self.budget * (1 + BUDGET_RTOL):
            out.append(f"spend {self.spend(assignment):.6g} > budget {self.budget:.6g}")
        return out


@dataclass
class Solution:
    """An assignment with its value, an upper bound on the optimum and the stated gap."""

    assignment: np.ndarray
    value: float
    bound: float
    solver: str
    seconds: float
    note: str = ""

    @property
    def gap(self) -> float:
        """Stated optimality gap ``(bound - value) / bound`` (0 when the bound is <= 0)."""
        return max(0.0, (self.bound - self.value) / self.bound) if self.bound > 0 else 0.0


def solve(problem: Problem, method: str, exact_max_customers: int, time_limit: float) -> Solution:
    """Solve with ``method`` = ``exact``, ``greedy`` or ``auto`` (exact up to
    ``exact_max_customers`` customers, greedy beyond)."""
    if method == "auto":
        method = "exact" if problem.shape[0] <= exact_max_customers else "greedy"
    if method == "exact":
        return solve_exact(problem, time_limit)
    if method == "greedy":
        return solve_greedy(problem)
    raise ValueError(f"allocation.solver={method!r}; expected exact, greedy or auto")


def solve_exact(
    problem: Problem, time_limit: float | None = None, milp_max_variables: int = 10_000
) -> Solution:
    """Optimal assignment with HiGHS, or one within a certified gap.

    The LP relaxation is solved first.  Without a budget its optimum is integral (total
    unimodularity): optimal.  With a budget a basic LP optimum has at most a handful of
    fractional customers; they are rounded to the baseline and spare capacity is filled
    greedily, and the LP optimum bounds the gap.  If the rounded solution is not provably
    optimal and the problem has at most ``milp_max_variables`` (non-fixed) variables, the MILP
    is solved by branch and bound (``time_limit`` seconds at most, keeping the better one).
    """
    started = time.perf_counter()
    n, L = problem.shape
    assignment = np.full(n, problem.baseline, dtype=np.int64)
    active = np.flatnonzero((problem.gain > 0).any(axis=1))
    m = len(active)
    if m == 0:
        return Solution(
            assignment, 0.0, 0.0, "exact", time.perf_counter() - started, "all gains <= 0"
        )
    constraint = _constraints(problem, m)
    options = {"disp": False}
    if time_limit:
        options["time_limit"] = float(time_limit)
    cost = -problem.gain[active].ravel()

    def solve_program(integral: bool):
        """The assignment programme as an LP relaxation or a MILP, with the current options."""
        return milp(
            cost,
            constraints=constraint,
            integrality=np.full(m * L, int(integral)),
            bounds=Bounds(0.0, 1.0),
            options=options,
        )

    relaxed = solve_program(integral=False)
    if relaxed.status != 0 or relaxed.x is None:  # time limit or solver trouble: fall back
        fallback = solve_greedy(problem)
        fallback.note = f"exact LP relaxation stopped ({relaxed.message}): greedy used"
        fallback.seconds = time.perf_counter() - started
        return fallback
    bound = -float(relaxed.fun)
    x = relaxed.x.reshape(m, L)
    fractional = (np.abs(x - np.rint(x)) > 1e-6).any(axis=1)
    choice = np.argmax(x, axis=1)
    choice[fractional] = problem.baseline
    assignment[active] = choice
    repair_budget(problem, assignment)  # at the LP's feasibility tolerance only
    note = "LP relaxation integral: optimal"
    if fractional.any():
        fill(problem, assignment)
        note = f"LP had {int(fractional.sum())} fractional customers: rounded and filled"
    value = problem.value(assignment)
    left = None if not time_limit else float(time_limit) - (time.perf_counter() - started)
    if (
        bound - value > 1e-9 * max(1.0, abs(bound))
        and m * L <= milp_max_variables
        and (left is None or left > 0)
    ):
        options.update(mip_rel_gap=1e-9, presolve=False)
        if left is not None:
            options["time_limit"] = left  # the limit covers relaxation and MILP together
        result = solve_program(integral=True)
        if result.x is not None:
            candidate = np.full(n, problem.baseline, dtype=np.int64)
            candidate[active] = np.argmax(result.x.reshape(m, L), axis=1)
            repair_budget(problem, candidate)
            if problem.value(candidate) >= value:
                assignment, value = candidate, problem.value(candidate)
            if result.status == 0:
                bound = min(bound, value)
                note = "MILP (budget): optimal"
            else:
                note += f"; MILP stopped early: {result.message}"
    return Solution(
        assignment, value, max(bound, value), "exact", time.perf_counter() - started, note
    )


def _constraints(problem: Problem, m: int) -> LinearConstraint:
    """One assignment row per (non-fixed) customer, a capacity row per limited level, the
    budget row; variables ordered customer-major (``i * L + s``)."""
    L = problem.shape[1]
    rows = [sp.csr_array((np.ones(m * L), np.arange(m * L), np.arange(0, m * L + 1, L)))]
    lower, upper = [np.ones(m)], [np.ones(m)]
    for s in range(L):
        if np.isfinite(problem.capacity[s]) and problem.capacity[s] < m:
            rows.append(_level_row(m, L, s, 1.0))
            lower.append([0.0])
            upper.append([problem.capacity[s]])
    if problem.budget is not None:
        rows.append(sp.csr_array(np.tile(problem.extra_cost, m)[None, :]))
        lower.append([0.0])
        upper.append([problem.budget])
    return LinearConstraint(sp.vstack(rows).tocsr(), np.concatenate(lower), np.concatenate(upper))


def _level_row(m: int, L: int, s: int, weight: float) -> sp.csr_array:
    return sp.csr_array(
        (np.full(m, weight), np.arange(m) * L + s, np.array([0, m])), shape=(1, m * L)
    )


# ---------------------------------------------------------------- greedy with dual prices
def lagrangian_bound(problem: Problem, prices: np.ndarray, mu: float) -> float:
    """``sum_i max_s (gain - price_s - mu extra_s)^+ + sum_s price_s cap_s + mu budget``.

    Weak duality: an upper bound on the optimum (of the LP relaxation and so of the integer
    problem) for any ``prices >= 0`` (0 on unlimited levels) and ``mu >= 0``.
    """
    reduced = problem.gain - prices[None, :] - mu * problem.extra_cost[None, :]
    total = float(np.maximum(reduced.max(axis=1), 0.0).sum())
    limited = np.isfinite(problem.capacity)
    total += float((prices[limited] * problem.capacity[limited]).sum())
    if problem.budget is not None:
        total += mu * problem.budget
    return total


def dual_prices(problem: Problem, max_passes: int = 50, rtol: float = 1e-9):
    """Prices per level and for the budget that (approximately) minimise the dual bound, by
    exact coordinate minimisation; returns ``(prices, mu, bound)``.  Any stopping point gives
    a valid bound; a loose one only makes the stated gap larger."""
    n, L = problem.shape
    prices, mu = np.zeros(L), 0.0
    limited = [s for s in range(L) if np.isfinite(problem.capacity[s]) and s != problem.baseline]
    best = lagrangian_bound(problem, prices, mu)
    for _ in range(max_passes):
        for s in limited:
            reduced = problem.gain - prices - mu * problem.extra_cost
            other = np.maximum(np.delete(reduced, s, axis=1).max(axis=1), 0.0)
            a = problem.gain[:, s] - mu * problem.extra_cost[s] - other
            k = int(problem.capacity[s])
            # UB(p) = const + sum_i (a_i - p)^+ + p k is minimised at the (k+1)-th largest a_i
            prices[s] = 0.0 if k >= n else max(0.0, float(np.partition(a, n - k - 1)[n - k - 1]))
        if problem.budget is not None:
            mu = _best_mu(problem, prices)
        bound = lagrangian_bound(problem, prices, mu)
        if best - bound <= rtol * max(1.0, abs(best)):
            best = min(best, bound)
            break
        best = bound
    return prices, mu, best


def _best_mu(problem: Problem, prices: np.ndarray, steps: int = 60) -> float:
    """Minimise the (convex, piecewise linear) bound over the budget price by bisection on
    its slope ``budget - extra cost of the customers' best levels``."""

    def slope(mu: float) -> float:
        reduced = problem.gain - prices - mu * problem.extra_cost
        choice = np.where(reduced.max(axis=1) > 0, reduced.argmax(axis=1), problem.baseline)
        return problem.budget - float(problem.extra_cost[choice].sum())

    if slope(0.0) >= 0:
        return 0.0
    costly = problem.extra_cost > 0
    hi = float(
        ((problem.gain[:, costly] - prices[costly]).max(axis=0) / problem.extra_cost[costly]).max()
    )
    lo, hi = 0.0, max(hi, 0.0) + 1.0
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if slope(mid) >= 0 else (mid, hi)
    return min((lo, hi), key=lambda mu: lagrangian_bound(problem, prices, mu))


def solve_greedy(problem: Problem, max_passes: int = 50, subgradient_steps: int = 100) -> Solution:
    """Dual-price greedy: best level at the Lagrangian prices, repair, greedy fill.

    Prices start from exact coordinate minimisation of the dual bound
    (:func:`dual_prices`), then take Polyak subgradient steps towards the best primal value
    found (Fisher 1981, section 4), which escapes the corners where coordinate descent stalls.
    The best primal assignment and the lowest bound seen are kept.
    """
    started = time.perf_counter()
    prices, mu, bound = dual_prices(problem, max_passes)
    assignment = price_assignment(problem, prices, mu)
    value = problem.value(assignment)
    limited = np.isfinite(problem.capacity)
    limited[problem.baseline] = False
    for step in range(subgradient_steps):
        if bound - value <= 1e-9 * max(1.0, abs(bound)):
            break
        reduced = problem.gain - prices - mu * problem.extra_cost
        choice = np.where(reduced.max(axis=1) > 0, reduced.argmax(axis=1), problem.baseline)
        counts = np.bincount(choice, minlength=problem.shape[1]).astype("float64")
        grad = np.where(limited, np.where(limited, problem.capacity, 0.0) - counts, 0.0)
        grad_mu = 0.0
        if problem.budget is not None:
            grad_mu = problem.budget - float(problem.extra_cost[choice].sum())
        norm = float(grad @ grad) + grad_mu**2
        if norm == 0:
            break
        size = 2.0 * (1.0 - step / subgradient_steps) * (bound - value) / norm  # Polyak step
        prices = np.maximum(prices - size * grad, 0.0)
        mu = max(mu - size * grad_mu, 0.0)
        bound = min(bound, lagrangian_bound(problem, prices, mu))
        if step % 10 == 9:
            candidate = price_assignment(problem, prices, mu)
            if problem.value(candidate) > value:
                assignment, value = candidate, problem.value(candidate)
    note = f"dual prices {np.round(prices, 2).tolist()}, budget price {mu:.4g}"
    return Solution(
        assignment, value, max(bound, value), "greedy", time.perf_counter() - started, note
    )


def price_assignment(problem: Problem, prices: np.ndarray, mu: float) -> np.ndarray:
    """Each customer's best level at the prices, repaired to capacity and budget, then the
    spare capacity filled greedily."""
    reduced = problem.gain - prices - mu * problem.extra_cost
    best = reduced.argmax(axis=1)
    assignment = np.where(reduced.max(axis=1) > 0, best, problem.baseline).astype(np.int64)
    assignment[problem.gain[np.arange(len(best)), assignment] <= 0] = problem.baseline
    second = np.sort(reduced, axis=1)[:, -2]
    regret = reduced.max(axis=1) - np.maximum(second, 0.0)
    for s in range(problem.shape[1]):  # capacity repair: keep the customers who lose most
        members = np.flatnonzero(assignment == s)
        if len(members) > problem.capacity[s]:
            order = members[np.argsort(-regret[members], kind="stable")]
            assignment[order[int(problem.capacity[s]) :]] = problem.baseline
    repair_budget(problem, assignment)
    fill(problem, assignment)
    for _ in range(3):
        swap(problem, assignment)
        fill(problem, assignment)
    return assignment


def swap(problem: Problem, assignment: np.ndarray) -> None:
    """Pairwise exchanges into every full level (in place): the member who loses least by
    falling back to the baseline gives its place to the outsider who gains most by taking
    it, while the gain exceeds the loss.  Never raises the spend: the member frees the
    level's extra cost, the outsider pays it less whatever it paid before."""
    for s in range(problem.shape[1]):
        if s == problem.baseline or not np.isfinite(problem.capacity[s]):
            continue
        members = np.flatnonzero(assignment == s)
        if len(members) < problem.capacity[s] or not len(members):
            continue
        outsiders = np.flatnonzero(assignment != s)
        gain_in = problem.gain[outsiders, s] - problem.gain[outsiders, assignment[outsiders]]
        outsiders, gain_in = outsiders[gain_in > 0], gain_in[gain_in > 0]
        loss = problem.gain[members, s]
        order_in = np.argsort(-gain_in, kind="stable")
        order_out = np.argsort(loss, kind="stable")
        k = min(len(order_in), len(order_out))
        take = int(np.count_nonzero(gain_in[order_in[:k]] > loss[order_out[:k]]))
        if take:
            assignment[members[order_out[:take]]] = problem.baseline
            assignment[outsiders[order_in[:take]]] = s


def repair_budget(problem: Problem, assignment: np.ndarray) -> None:
    """Move customers back to the baseline, least gain per unit of extra cost first, until the
    spend is within the budget (in place)."""
    if problem.budget is None:
        return
    excess = problem.spend(assignment) - problem.budget
    if excess <= problem.budget * BUDGET_RTOL:
        return
    rows = np.flatnonzero(problem.extra_cost[assignment] > 0)
    cost = problem.extra_cost[assignment[rows]]
    ratio = problem.gain[rows, assignment[rows]] / cost
    order = np.argsort(ratio, kind="stable")
    freed = np.cumsum(cost[order])
    drop = order[: int(np.searchsorted(freed, excess - problem.budget * BUDGET_RTOL)) + 1]
    assignment[rows[drop]] = problem.baseline


def fill(problem: Problem, assignment: np.ndarray) -> None:
    """Greedy fill of spare capacity and budget, most premium level first (in place): move
    the customers who gain most by the move, while capacity and budget last."""
    n, L = problem.shape
    rows = np.arange(n)
    for s in range(L):
        spare = problem.capacity[s] - np.count_nonzero(assignment == s)
        if spare < 1:
            continue
        improvement = problem.gain[:, s] - problem.gain[rows, assignment]
        candidates = np.flatnonzero(improvement > 0)
        if not len(candidates):
            continue
        candidates = candidates[np.argsort(-improvement[candidates], kind="stable")]
        if np.isfinite(spare):
            candidates = candidates[: int(spare)]
        if problem.budget is not None:
            left = problem.budget - problem.spend(assignment)
            delta = problem.extra_cost[s] - problem.extra_cost[assignment[candidates]]
            candidates = candidates[np.cumsum(delta) <= left + abs(problem.budget) * BUDGET_RTOL]
        assignment[candidates] = s
