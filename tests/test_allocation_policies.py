"""Service catalogue, response law, policies, sensitivity and break-even on hand-computable
cases."""

import numpy as np
import pandas as pd
import pytest

from tierlab.allocation import evaluate as E
from tierlab.allocation import policies as P
from tierlab.allocation.catalogue import Catalogue, assumed_increment, horizon_cost, net_gain
from tierlab.data.service_response import (
    ServiceResponse,
    incremental_profit,
    monthly_hazard,
    survival_annuity,
)

LEVELS = {
    "rm": {
        "managers": 1,
        "portfolio_size": 2,
        "cost_per_year": 120,
        "assumed": {"profit_growth": 0.1},
    },
    "priority": {
        "capacity": 3,
        "cost_per_year": 12,
        "assumed": {"attrition_reduction": [0.5, 0.2]},
    },
    "standard": {"capacity": None, "cost_per_year": 0},
}


def catalogue():
    return Catalogue.from_config(LEVELS, "standard")


def test_catalogue_reads_capacity_forms_costs_and_per_tier_effects():
    cat = catalogue()
    assert cat.names == ["rm", "priority", "standard"]
    assert cat.capacities.tolist() == [2.0, 3.0, np.inf]
    assert cat.extra_costs_per_year.tolist() == [120.0, 12.0, 0.0]
    assert cat.levels[1].attrition_reduction.tolist() == [0.5, 0.2]
    scaled = cat.scaled(3.0)
    assert scaled.levels[1].attrition_reduction.tolist() == [1.0, pytest.approx(0.6)]
    assert scaled.levels[0].profit_growth.tolist() == [pytest.approx(0.3)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"rm": {"cost_per_year": 1, "colour": "red"}},
            r"allocation.levels.rm: unknown keys \['colour'\]",
        ),
        ({"rm": {"managers": 2, "cost_per_year": 1}}, "give both managers and portfolio_size"),
        (
            {"rm": {"capacity": 5, "managers": 1, "portfolio_size": 2, "cost_per_year": 1}},
            "not both",
        ),
        (
            {"rm": {"capacity": -1, "cost_per_year": 1}},
            r"allocation.levels.rm.capacity=-1 should be an integer >= 0",
        ),
        ({"rm": {"capacity": 1}}, "allocation.levels.rm.cost_per_year is missing"),
        ({"rm": {"capacity": 1, "cost_per_year": -5}}, r"cost_per_year=-5 should be a number >= 0"),
        (
            {"rm": {"capacity": 1, "cost_per_year": 1, "assumed": {"attrition_reduction": 1.5}}},
            r"allocation.levels.rm.assumed.attrition_reduction=1.5 should be in \[0.0, 1.0\]",
        ),
        (
            {"rm": {"capacity": 1, "cost_per_year": 1, "assumed": {"profit_growth": []}}},
            r"profit_growth=\[\] is empty",
        ),
        (
            {"standard": {"capacity": 10, "cost_per_year": 0}},
            "the baseline level must be unlimited",
        ),
        (
            {"standard": {"capacity": None, "cost_per_year": 500}},
            "the baseline must be the cheapest level",
        ),
    ],
)
def test_bad_catalogues_are_refused_with_the_key_and_the_rule(change, message):
    with pytest.raises(ValueError, match=message):
        Catalogue.from_config({**LEVELS, **change}, "standard")


def test_baseline_must_be_a_level_and_two_levels_are_needed():
    with pytest.raises(ValueError, match=r"baseline_level='gold' is not a level"):
        Catalogue.from_config(LEVELS, "gold")
    with pytest.raises(ValueError, match="allocation needs >= 2 levels"):
        Catalogue.from_config({"standard": LEVELS["standard"]}, "standard")
    with pytest.raises(ValueError, match="allocation.levels is empty"):
        Catalogue.from_config({}, "standard")


def test_response_law_by_hand():
    H, r = 12, 0.01
    h = monthly_hazard(0.2)
    assert (1 - h) ** 12 == pytest.approx(0.8)
    direct = sum(((1 - h) / (1 + r)) ** k for k in range(1, H + 1))
    assert survival_annuity(h, H, r) == pytest.approx(direct)
    # growth only: delta = gamma * max(E, 0); a loss-maker gains nothing from growth
    assert incremental_profit(np.array([100.0, -50.0]), h, 0.0, 0.1, H, r) == pytest.approx(
        [10.0, 0.0]
    )
    # no attrition at all under the level: R = A(0) / A(h); a loss-maker kept longer loses more
    R = survival_annuity(0.0, H, r) / direct
    assert incremental_profit(np.array([100.0, -50.0]), h, 1.0, 0.0, H, r) == pytest.approx(
        [100 * (R - 1), -50 * (R - 1)]
    )


def test_true_response_by_segment_and_its_errors():
    truth = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "latent_segment": pd.Categorical(["a", "b", "a"], categories=["a", "b", "c"]),
            "monthly_attrition_hazard": [0.01, 0.01, 0.01],
            "expected_holdout_profit": [100.0, 200.0, np.nan],
        }
    )
    response = ServiceResponse({"rm": {"a": {"profit_growth": 0.5}, "c": {"profit_growth": 1.0}}})
    assert response.incremental_profit(truth, "rm", 12, 0.0).tolist() == [50.0, 0.0, 0.0]
    assert response.incremental_profit(truth, "other", 12, 0.0).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"truth.effects.rm: segments \['z'\] are not latent"):
        ServiceResponse({"rm": {"z": {"profit_growth": 0.1}}}).incremental_profit(
            truth, "rm", 12, 0.0
        )
    with pytest.raises(ValueError, match=r"rm.a.attrition_reduction=2.0 should be in \[0, 1\]"):
        ServiceResponse({"rm": {"a": {"attrition_reduction": 2.0}}})
    with pytest.raises(ValueError, match=r"rm.a: unknown keys \['uplift'\]"):
        ServiceResponse({"rm": {"a": {"uplift": 2.0}}})


def test_top_down_fills_the_dearest_level_with_the_best_tier_first():
    cat = catalogue()
    tiers = np.array([2, 1, 1, 3, 2, 1, 3])
    value = np.array([50.0, 10.0, 30.0, 99.0, 60.0, 20.0, 1.0])
    a = P.top_down(cat, tiers, value, budget=None)
    # order: tier 1 by value (2, 5, 1), tier 2 (4, 0), tier 3 (3, 6)
    assert a.tolist() == [1, 1, 0, 2, 1, 0, 2]
    # a budget of 130 a year pays one rm seat (120) and no more than 10 for priority: none
    assert P.top_down(cat, tiers, value, budget=130.0).tolist() == [2, 2, 0, 2, 2, 2, 2]


def test_rfm_rules_follow_the_table_and_overflow_to_cheaper_levels():
    cat = catalogue()
    segments = pd.Series(["champions", "champions", "champions", "loyal", "lost", "loyal"])
    scores = np.array([15, 14, 13, 12, 3, 11])
    rules = {"champions": "rm", "loyal": "priority"}
    a = P.rfm_rules(cat, segments, scores, rules, budget=None)
    assert a.tolist() == [0, 0, 1, 1, 2, 1]  # the third champion falls to priority
    with pytest.raises(ValueError, match=r"levels \['gold'\] are not in"):
        P.rfm_rules(cat, segments, scores, {"champions": "gold"}, None)
    with pytest.raises(P.Skipped, match="none of the rule segments"):
        P.rfm_rules(cat, segments, scores, {"hibernating": "rm"}, None)


def test_rules_give_the_wanted_level_first_even_at_equal_cost_or_after_the_baseline():
    levels = {
        "a": {"capacity": 5, "cost_per_year": 100, "assumed": {"profit_growth": 0.1}},
        "b": {"capacity": 5, "cost_per_year": 100, "assumed": {"profit_growth": 0.1}},
        "std": {"capacity": None, "cost_per_year": 0},
        "chat": {"capacity": 5, "cost_per_year": 0, "assumed": {"profit_growth": 0.01}},
    }
    cat = Catalogue.from_config(levels, "std")
    segments = pd.Series(["y", "x", "z"])
    rules = {"y": "b", "x": "a", "z": "chat"}
    a = P.rfm_rules(cat, segments, np.array([3, 2, 1]), rules, budget=None)
    assert [cat.names[i] for i in a] == ["b", "a", "chat"]


def growth_only():
    levels = {
        "rm": {"capacity": 10, "cost_per_year": 120, "assumed": {"profit_growth": 0.1}},
        "standard": {"capacity": None, "cost_per_year": 0},
    }
    return Catalogue.from_config(levels, "standard")


def test_break_even_and_sensitivity_by_hand():
    # growth only, no discounting: incremental profit = f * 0.1 * max(v, 0), cost 120 over 12
    # months; the two served customers (v = 1000, 500) earn 150 at f = 1 against a cost of 240:
    # break-even f* = 240 / 150 = 1.6
    cat = growth_only()
    value = np.array([1000.0, 500.0, -100.0])
    tiers = np.array([1, 1, 2])

    def increment(c, mask):
        keep = slice(None) if mask is None else mask
        return assumed_increment(c, value[keep], tiers[keep], np.array([0.1]), 12, 0.0)

    cost = horizon_cost(cat.costs_per_year, 12, 0.0)
    assert cost.tolist() == [120.0, 0.0]
    served = {"top": np.array([0, 0, 1]), "uniform": np.array([1, 1, 1])}
    table = E.break_even(served, cat, increment, cost, tiers)
    assert table.loc[0, "break_even_scale"] == pytest.approx(1.6)
    assert table.loc[0, "break_even_profit_growth"] == pytest.approx(0.16)
    assert table.loc[0, "assumed_net_gain"] == pytest.approx(150.0 - 240.0)
    sens = E.sensitivity(served, cat, increment, cost, [1.0, 2.0]).set_index(
        ["effect_scale", "policy"]
    )
    assert sens.loc[(1.0, "top"), "assumed_net_gain"] == pytest.approx(-90.0)
    assert sens.loc[(2.0, "top"), "assumed_net_gain"] == pytest.approx(60.0)
    assert sens.loc[(1.0, "top"), "rank"] == 2 and sens.loc[(2.0, "top"), "rank"] == 1
    assert E.break_even_scale(lambda f: -1.0) == float("inf")
    assert E.break_even_scale(lambda f: 1.0) == 0.0


def test_policy_row_counts_moves_cost_and_roi():
    cat = growth_only()
    value = np.array([1000.0, 500.0, -100.0])
    inc = assumed_increment(cat, value, np.array([1, 1, 2]), np.array([0.1]), 12, 0.0)
    cost = horizon_cost(cat.costs_per_year, 12, 0.0)
    gain = net_gain(inc, cat, 12, 0.0)
    assert gain[:, 1].tolist() == [0.0, 0.0, 0.0] and gain[0, 0] == pytest.approx(-20.0)
    a = np.array([0, 1, 1])
    row = E.policy_row("x", a, cat, inc, 2 * inc, cost, {"uniform": np.array([1, 1, 1])})
    assert row["n_rm"] == 1 and row["moved_vs_uniform"] == 1
    assert row["extra_cost"] == 120.0 and row["assumed_incremental_profit"] == pytest.approx(100.0)
    assert row["assumed_roi"] == pytest.approx(-20.0 / 120.0)
    assert row["true_net_gain"] == pytest.approx(80.0)
    cov = E.coverage({"x": a}, np.array([1, 1, 2]), cat).set_index(["tier", "level"])["share"]
    assert cov[(1, "rm")] == 0.5 and cov[(2, "rm")] == 0.0
