"""The explain stage: SHAP drivers that find the indicator deciding a tier, surrogate fidelity,
RFM rules in indicator units, CLV models with and without trees."""

import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import ElasticNet

from run_helpers import finished_runs, isolated
from tierlab.clv.regressors import regressor_pipeline
from tierlab.config import compose
from tierlab.explain.shap_tools import NotExplainable, shap_frame, tree_parts
from tierlab.explain.surrogate import explain_tiers, rfm_rule_table
from tierlab.features.dictionary import Indicator
from tierlab.run import run
from tierlab.segmentation.methods import RFMSegmenter


def latent_types(n=3000, seed=0):
    """Six indicators; type 1 is decided by x3 alone (x3 > 1), types 2 and 3 by the sign of x0."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"x{j}" for j in range(6)])
    tiers = np.where(X["x3"] > 1.0, 1, np.where(X["x0"] > 0, 2, 3))
    return X, tiers


DICTIONARY = {
    f"x{j}": Indicator(f"x{j}", "attributes", f"indicator {j}", "units", "test") for j in range(6)
}


def test_the_indicator_that_decides_a_tier_ranks_first_among_its_drivers():
    X, tiers = latent_types()
    fit = explain_tiers(X, tiers, DICTIONARY, 0.3, 500, seed=1, threads=1)
    assert fit.accuracy > 0.95 and fit.macro_f1 > 0.9  # the surrogate agrees with the tiers
    top = fit.drivers[fit.drivers["rank"] == 1].set_index("tier")["indicator"]
    assert top[1] == "x3"
    assert top[2] == "x0" and top[3] == "x0"
    tier1 = fit.drivers[fit.drivers["tier"] == 1].set_index("indicator")
    assert tier1.loc["x3", "mean_shap"] > 0  # x3 pushes customers into tier 1
    assert tier1.loc["x3", "unit"] == "units"


def test_a_one_customer_tier_does_not_stop_the_explanation():
    X, tiers = latent_types(300)
    tiers = tiers.copy()
    tiers[int(np.argmax(X["x5"]))] = 9  # a tier of one customer: seen by the surrogate or not
    for seed in range(6):
        fit = explain_tiers(X, tiers, DICTIONARY, 0.3, 200, seed=seed, threads=1)
        assert {1, 2, 3} <= set(fit.drivers["tier"])


def test_a_surrogate_that_cannot_follow_the_tiers_shows_a_low_fidelity():
    X, _ = latent_types()
    noise = np.random.default_rng(3).integers(1, 4, len(X))  # tiers unrelated to X
    fit = explain_tiers(X, noise, DICTIONARY, 0.3, 300, seed=1, threads=1)
    assert fit.accuracy < 0.45


def test_clv_pipelines_are_explained_in_their_output_space_or_refused_with_a_reason():
    X, _ = latent_types(800)
    y = np.exp(X["x1"]) * 10
    tweedie = lightgbm.LGBMRegressor(objective="tweedie", n_estimators=30, verbose=-1, n_jobs=1)
    pipe = regressor_pipeline(tweedie, target="clip_at_zero").fit(X, y)
    values, seen, space = shap_frame(pipe, X.head(100))
    assert values.shape == (100, 6) and list(seen.columns) == list(X.columns)
    assert space == "log E[value] (log link)"
    assert np.argmax(np.abs(values).mean(axis=0)) == 1  # x1 drives the value
    hgb = regressor_pipeline(HistGradientBoostingRegressor(max_iter=30)).fit(X, y)
    assert tree_parts(hgb)[2] == "value"
    linear = regressor_pipeline(ElasticNet(), preprocess="transform").fit(X, y)
    with pytest.raises(NotExplainable, match="ElasticNet is not a tree ensemble"):
        shap_frame(linear, X.head(10))


def test_rfm_rules_in_indicator_units_select_exactly_the_segments_customers():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "recency_days": rng.integers(0, 200, 2000).astype(float),
            "frequency_12m": rng.integers(0, 60, 2000).astype(float),
            "monetary_total_12m": rng.gamma(2.0, 500.0, 2000),
        }
    )
    rules = [
        {"name": "recent", "r": [4, 5]},
        {"name": "middle", "r": [2, 3], "f": [3, 5]},
        {"name": "rest", "r": [1, 5]},
    ]
    model = RFMSegmenter(rules=rules, bins=5).fit(X)
    table = rfm_rule_table(model, {"recent": 1, "middle": 2, "rest": 3}).set_index("segment")
    names = model.segments(X)
    for segment in ("recent", "middle"):
        rule = table.loc[segment, "rule"]
        selected = X.query(rule.replace(" and ", " & ").replace("<=", "<="))
        assert set(selected.index) >= set(names[names == segment].index), rule
    assert table.loc["recent", "rule"].startswith("recency_days <= ")
    assert table.loc["rest", "rule"] == "any recency_days"


def test_run_logs_tier_drivers_and_clv_explanations(tmp_path):
    overrides = isolated(tmp_path, "explain.clv_models=[lightgbm_tweedie,trailing_value]")
    metrics = run(compose(overrides, output_dir=tmp_path / "out"))
    for method in ("value_quantile", "rfm", "kmeans"):
        assert metrics[f"explain/{method}/surrogate_accuracy"] > 0.8
    folder = tmp_path / "out" / "explain"
    drivers = pd.read_csv(folder / "tier_top_drivers_value_quantile.csv")
    assert drivers.groupby("tier")["rank"].min().eq(1).all()
    assert (folder / "tier_drivers_kmeans.png").stat().st_size > 10_000
    assert (folder / "clv_beeswarm_lightgbm_tweedie.png").stat().st_size > 10_000
    assert (folder / "rules_rfm.csv").exists()
    notes = pd.read_csv(folder / "notes.csv").set_index("item")["note"]
    assert "not a tree ensemble" in notes["clv/trailing_value"]
    (parent,) = finished_runs(tmp_path)
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "explain")}
    assert "explain/clv_importance_lightgbm_tweedie.csv" in logged
