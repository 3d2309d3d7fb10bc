"""Allocation solvers: the exact one is optimal (checked by enumerating every assignment), no
solver breaks a capacity or the budget, and the greedy one's stated gap is a true bound."""

import itertools

import numpy as np
import pytest

from tierlab.allocation.solvers import Problem, solve, solve_exact, solve_greedy


def random_problem(rng, n, L, budget=True):
    gain = rng.normal(0.0, 10.0, (n, L))
    gain[:, -1] = 0.0  # the baseline column
    capacity = np.append(rng.integers(0, n + 1, L - 1).astype(float), np.inf)
    extra = np.append(rng.uniform(1.0, 10.0, L - 1), 0.0)
    cap = float(rng.uniform(0.0, 5.0 * n)) if budget else None
    return Problem(gain, capacity, extra, cap, L - 1)


def brute_force(problem):
    n, L = problem.shape
    best = -np.inf
    for combo in itertools.product(range(L), repeat=n):
        a = np.array(combo)
        if not problem.violations(a):
            best = max(best, problem.value(a))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_exact_solver_matches_brute_force_and_greedy_gap_holds(seed):
    rng = np.random.default_rng(seed)
    problem = random_problem(rng, int(rng.integers(2, 7)), int(rng.integers(2, 4)), seed % 2 == 0)
    optimum = brute_force(problem)
    exact, greedy = solve_exact(problem), solve_greedy(problem)
    assert exact.value == pytest.approx(optimum, abs=1e-9)
    assert problem.violations(exact.assignment) == []
    assert problem.violations(greedy.assignment) == []
    assert exact.bound >= optimum - 1e-9 and greedy.bound >= optimum - 1e-9
    assert greedy.gap == pytest.approx(
        max(0.0, (greedy.bound - greedy.value) / greedy.bound) if greedy.bound > 0 else 0.0
    )
    assert greedy.value >= (1.0 - greedy.gap) * optimum - 1e-9
    assert greedy.value <= optimum + 1e-9


@pytest.mark.parametrize("budget", [False, True])
def test_no_solver_exceeds_capacity_or_budget_on_larger_random_instances(budget):
    rng = np.random.default_rng(7)
    for _ in range(5):
        problem = random_problem(rng, 3000, 4, budget)
        # milp_max_variables=0: the LP-rounding path that serves large budgeted problems
        for solution in (solve_exact(problem, milp_max_variables=0), solve_greedy(problem)):
            counts = problem.counts(solution.assignment)
            assert (counts <= problem.capacity).all()
            if budget:
                assert problem.spend(solution.assignment) <= problem.budget * (1 + 1e-9)
            assert solution.value == pytest.approx(problem.value(solution.assignment))


def test_greedy_certificate_is_tight_on_a_bank_sized_instance_and_bounds_the_exact_optimum():
    rng = np.random.default_rng(3)
    n = 20_000
    gain = np.column_stack([rng.normal(-500, 1500, n), rng.normal(-50, 300, n), np.zeros(n)])
    for budget in (None, 2.5e5):
        problem = Problem(
            gain, np.array([600.0, 2000.0, np.inf]), np.array([720.0, 120.0, 0.0]), budget, 2
        )
        exact, greedy = solve_exact(problem), solve_greedy(problem)
        assert greedy.bound >= exact.value - 1e-6
        assert greedy.gap < 1e-3  # the stated gap on a realistic instance
        assert (exact.value - greedy.value) / exact.value <= greedy.gap + 1e-12


def test_greedy_does_not_give_the_scarce_level_to_the_customer_who_needs_it_least():
    # customer 0 gains 3 at the one-seat level and nothing elsewhere; customer 1 gains 11.8
    # there but 11.1 at an unlimited level: the optimum seats customer 0 and sends 1 on.
    gain = np.array([[3.0, -10.0, 0.0], [11.8, 11.1, 0.0]])
    problem = Problem(gain, np.array([1.0, np.inf, np.inf]), np.zeros(3), None, 2)
    assert solve_greedy(problem).value == pytest.approx(14.1)
    assert solve_exact(problem).value == pytest.approx(14.1)


def test_customers_with_no_gain_stay_at_the_baseline():
    problem = Problem(
        -np.ones((5, 3)) * np.array([1, 2, 0]), np.array([2.0, 2.0, np.inf]), np.zeros(3), None, 2
    )
    for solution in (solve_exact(problem), solve_greedy(problem)):
        assert (solution.assignment == 2).all() and solution.value == 0.0


def test_budget_binds_exactly_as_a_knapsack():
    # three customers, one level costing 10 a year, budget 20: the best two by gain
    gain = np.array([[5.0, 0.0], [9.0, 0.0], [7.0, 0.0]])
    problem = Problem(gain, np.array([np.inf, np.inf]), np.array([10.0, 0.0]), 20.0, 1)
    assert solve_exact(problem).assignment.tolist() == [1, 0, 0]


def test_auto_picks_the_solver_by_size_and_unknown_solvers_are_refused():
    rng = np.random.default_rng(0)
    problem = random_problem(rng, 50, 3)
    assert solve(problem, "auto", 100, 60).solver == "exact"
    assert solve(problem, "auto", 10, 60).solver == "greedy"
    with pytest.raises(
        ValueError, match="allocation.solver='simplex'; expected exact, greedy or auto"
    ):
        solve(problem, "simplex", 10, 60)


def test_violations_name_the_broken_constraint():
    problem = Problem(np.zeros((3, 2)), np.array([1.0, np.inf]), np.array([5.0, 0.0]), 4.0, 1)
    broken = problem.violations(np.array([0, 0, 1]))
    assert broken == ["level 0: 2 customers > capacity 1", "spend 10 > budget 4"]


def test_exact_solver_out_of_time_falls_back_to_the_greedy_one():
    rng = np.random.default_rng(0)
    problem = random_problem(rng, 60_000, 3, budget=True)
    solution = solve_exact(problem, time_limit=0.01)
    assert (
        solution.note.startswith("exact LP relaxation stopped") and "greedy used" in solution.note
    )
    assert problem.violations(solution.assignment) == []
    assert solution.bound >= solution.value
