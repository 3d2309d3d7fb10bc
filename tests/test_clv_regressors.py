"""CLV regressors and baselines: targets of any sign, the hurdle split, the naive baselines."""

import lightgbm
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression

from tierlab.clv.regressors import (
    HurdleRegressor,
    IndicatorColumns,
    TrailingValue,
    annuity,
    needs_target,
    regressor_pipeline,
    signed_expm1,
)
from tierlab.segmentation.preprocess import NotApplicable, signed_log1p

PROFIT = {"column": "profit_12m", "months": 12, "unit": "profit"}
SPEND = {"column": "monetary_total_12m", "months": 12, "unit": "transaction_amount"}


def frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "profit_12m": rng.normal(100, 300, n),
            "tenure_days": rng.uniform(30, 2000, n),
            "n_products": rng.integers(1, 5, n).astype(float),
        }
    )
    X.loc[::7, "n_products"] = np.nan
    y = 0.9 * X["profit_12m"].to_numpy() + rng.normal(0, 20, n)
    return X, y


def test_annuity_is_the_sum_of_monthly_discount_factors():
    assert annuity(12, 0.0) == 12.0
    assert annuity(2, 0.01) == pytest.approx(1 / 1.01 + 1 / 1.01**2)


def test_signed_log_target_round_trips_negative_values():
    y = np.array([-5000.0, -1.0, 0.0, 0.5, 1e6])
    np.testing.assert_allclose(signed_expm1(signed_log1p(y)), y)


@pytest.mark.parametrize("target", ["raw", "signed_log1p", "clip_at_zero"])
def test_pipelines_fit_negative_targets_and_keep_missing_values(target):
    X, y = frame()
    model = lightgbm.LGBMRegressor(n_estimators=20, n_jobs=1, verbose=-1)
    pipe = regressor_pipeline(model, features="all", target=target).fit(X, y)
    pred = pipe.predict(X)
    assert pred.shape == (len(X),) and np.isfinite(pred).all()
    if target == "clip_at_zero":
        assert pred.min() >= 0  # E[max(y, 0)] cannot be negative
    else:
        assert pred.min() < 0  # losses are predicted as losses
    assert np.corrcoef(pred, y)[0, 1] > 0.7
    assert list(pipe[0].get_feature_names_out()) == ["profit_12m", "tenure_days", "n_products"]


def test_transform_preprocess_feeds_linear_models_without_missing_values():
    X, y = frame()
    pipe = regressor_pipeline(LinearRegression(), preprocess="transform").fit(X, y)
    assert np.isfinite(pipe.predict(X)).all()


def test_bad_pipeline_options_are_refused():
    with pytest.raises(ValueError, match="target='log'"):
        regressor_pipeline(LinearRegression(), target="log")
    with pytest.raises(ValueError, match="preprocess="):
        regressor_pipeline(LinearRegression(), preprocess="scale")


def test_indicator_columns_name_what_is_missing_at_predict_time():
    X, _ = frame()
    step = IndicatorColumns(features=["profit_12m", "age_years"]).fit(X)
    assert step.missing_features_ == ["age_years"]
    with pytest.raises(ValueError, match=r"lacks the indicator columns \['profit_12m'\]"):
        step.transform(X.drop(columns="profit_12m"))
    with pytest.raises(ValueError, match="none of the requested indicators"):
        IndicatorColumns(features=["age_years"]).fit(X)


def test_hurdle_combines_probability_and_both_conditional_means():
    rng = np.random.default_rng(1)
    n = 2000
    x = rng.uniform(0, 1, n)
    positive = rng.uniform(0, 1, n) < x  # P(y > 0) = x
    y = np.where(positive, 100.0, -10.0)
    X = pd.DataFrame({"x": x})
    # a classifier that only knows the share: E[y] = share * 100 + (1 - share) * -10 exactly
    prior = HurdleRegressor(DummyClassifier(), DummyRegressor(), DummyRegressor()).fit(X, y)
    share = positive.mean()
    np.testing.assert_allclose(prior.predict(X[:3]), share * 100 - (1 - share) * 10)
    assert prior.positive_share_ == pytest.approx(share)
    # a real classifier: predictions follow P(y > 0) = x
    model = HurdleRegressor(
        classifier=lightgbm.LGBMClassifier(
            n_estimators=30, min_child_samples=200, n_jobs=1, verbose=-1
        ),
        positive=DummyRegressor(),
        nonpositive=DummyRegressor(),
    ).fit(X, y)
    grid = pd.DataFrame({"x": [0.1, 0.5, 0.9]})
    expected = grid["x"] * 100 + (1 - grid["x"]) * -10
    np.testing.assert_allclose(model.predict(grid), expected, atol=20)
    assert np.corrcoef(model.predict(X), x)[0, 1] > 0.9


def test_hurdle_without_a_second_class_uses_the_share_and_the_mean():
    X = pd.DataFrame({"x": np.arange(100.0)})
    y = np.linspace(1, 2, 100)  # every value positive
    model = HurdleRegressor(DummyRegressor(), DummyRegressor(), DummyRegressor()).fit(X, y)
    assert model.classifier_ is None and model.nonpositive_ == 0.0
    np.testing.assert_allclose(model.predict(X), np.full(100, 1.5))


def test_trailing_value_scales_the_window_to_the_discounted_horizon():
    X = pd.DataFrame({"profit_12m": [120.0, -24.0, np.nan], "tenure_days": [1000, 1000, 1000]})
    model = TrailingValue([PROFIT], horizon_months=6, discount_rate_monthly=0.01)
    pred = model.fit(X).predict(X)
    np.testing.assert_allclose(pred, np.array([10.0, -2.0, 0.0]) * annuity(6, 0.01))


def test_calibration_mean_divides_by_the_months_observed():
    month = 365.25 / 12
    X = pd.DataFrame({"profit_12m": [120.0, 120.0], "tenure_days": [3 * month, 0.2 * month]})
    model = TrailingValue([PROFIT], horizon_months=12, per_month="observed")
    # 3 months observed -> 40 a month; under a month counts as one month
    np.testing.assert_allclose(model.fit(X).predict(X), [480.0, 1440.0])


def test_trailing_value_takes_the_first_column_present_and_its_unit():
    X = pd.DataFrame({"monetary_total_12m": [12.0]})
    model = TrailingValue([PROFIT, SPEND]).fit(X)
    assert (model.column_, model.value_unit) == ("monetary_total_12m", "transaction_amount")
    both = X.assign(profit_12m=1.0)
    assert TrailingValue([PROFIT, SPEND]).fit(both).value_unit == "profit"
    with pytest.raises(NotApplicable, match="needs one of the value columns"):
        TrailingValue([PROFIT]).fit(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(ValueError, match="needs column, months and unit"):
        TrailingValue([{"column": "profit_12m"}]).fit(X)


def test_baselines_need_no_target_and_regressors_do():
    pipe = regressor_pipeline(LinearRegression())
    assert needs_target(pipe) and needs_target(DummyRegressor())
    assert not needs_target(TrailingValue([PROFIT]))
