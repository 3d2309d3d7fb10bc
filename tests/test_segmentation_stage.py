"""The segmentation stage end to end: every method, child runs, comparison, clear errors."""

import numpy as np
import pandas as pd
import pytest
from hydra.errors import ConfigCompositionException

from run_helpers import all_runs, finished_runs, isolated
from tierlab.config import compose
from tierlab.run import run


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seg")
    overrides = isolated(tmp, "experiment=segmentation_benchmark", "debug=fast")
    metrics = run(compose(overrides, output_dir=tmp / "out"))
    return tmp, metrics


def test_every_method_is_a_child_run_with_its_metrics(benchmark):
    tmp, metrics = benchmark
    methods = {"value_quantile", "rfm", "kmeans", "rfm_score", "gmm", "minibatch_kmeans"}
    runs = all_runs(tmp)  # debug=fast names the experiment
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [
        r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
        and r.info.run_name.startswith("seg-")
    ]
    assert {r.info.run_name for r in children} == {f"seg-{m}" for m in methods}
    for child in children:
        assert child.info.status == "FINISHED"
        assert {"seg/silhouette", "seg/stability_ari", "seg/top_tier_lift"} <= set(
            child.data.metrics
        )
    for m in methods:
        assert f"seg/{m}/spearman" in metrics and f"seg/{m}/latent_ari" in metrics
    # the value-quantile tiers earn most of the holdout value in their top tier
    assert metrics["seg/value_quantile/top_tier_lift"] > 2


def test_comparison_table_plots_and_tiers_are_written(benchmark):
    tmp, _ = benchmark
    folder = tmp / "out" / "segmentation"
    table = pd.read_csv(folder / "comparison.csv")
    assert table["method"].tolist() == [
        "value_quantile",
        "rfm",
        "kmeans",
        "rfm_score",
        "gmm",
        "minibatch_kmeans",
    ]
    assert (table["status"] == "done").all()
    for method, row in table.set_index("method").iterrows():  # k at an edge of its range
        if method in ("kmeans", "gmm", "minibatch_kmeans") and row["n_tiers"] in (2, 8):
            assert "of the range searched" in str(row["note"])
    assert "| method | status |" in (folder / "comparison.md").read_text()
    for plot in ("value_share_by_tier.png", "tier_profiles.png", "k_selection.png"):
        assert (folder / plot).stat().st_size > 10_000
    tiers = pd.read_parquet(tmp / "out" / "tiers.parquet")
    indicators = pd.read_parquet(tmp / "out" / "indicators.parquet")
    assert tiers["customer_id"].tolist() == indicators["customer_id"].tolist()
    profit = indicators.set_index("customer_id")["profit_12m"]
    for method in tiers.columns.drop("customer_id"):
        means = profit.groupby(tiers.set_index("customer_id")[method]).mean()
        assert means.is_monotonic_decreasing, method  # tier 1 = most valuable


def test_same_seed_same_tiers(tmp_path, benchmark):
    first_tmp, _ = benchmark
    run(
        compose(
            isolated(tmp_path, "experiment=segmentation_benchmark", "debug=fast"),
            output_dir=tmp_path / "out",
        )
    )
    first = pd.read_parquet(first_tmp / "out" / "tiers.parquet")
    second = pd.read_parquet(tmp_path / "out" / "tiers.parquet")
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.shared_data
def test_benchmark_on_the_credit_card_data_skips_what_it_cannot_measure(tmp_path, shared_data_dir):
    overrides = isolated(
        tmp_path, "experiment=segmentation_benchmark_cc", "debug=fast", data="cc_general"
    )
    metrics = run(compose(overrides, output_dir=tmp_path / "out"))
    table = pd.read_csv(tmp_path / "out" / "segmentation" / "comparison.csv").set_index("method")
    for rfm in ("rfm", "rfm_score"):
        assert table.loc[rfm, "status"] == "skipped"
        assert "recency" in table.loc[rfm, "note"]
    done = table.loc[table["status"] == "done"]
    assert set(done.index) == {"value_quantile", "kmeans", "gmm", "minibatch_kmeans"}
    assert done["note"].str.contains("no holdout window").all()
    assert not any(k.endswith("/spearman") for k in metrics)
    assert np.isfinite(done["silhouette"]).all()


def test_unknown_method_is_a_composition_error():
    with pytest.raises(ConfigCompositionException, match="nonexistent"):
        compose(["+segmentation/method@segmentation.methods.extra=nonexistent"])


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("segmentation.indicators=[no_such_indicator]", r"empty indicator set"),
        ("segmentation.methods.kmeans.k_range=[2,5000]", r"should be <= n_customers="),
        ("segmentation.tier_value=[no_such_value]", r"segmentation.tier_value=\['no_such_value'\]"),
    ],
)
def test_bad_segmentation_configs_fail_clearly(tmp_path, override, match):
    cfg = compose(isolated(tmp_path, override), output_dir=tmp_path / "out")
    with pytest.raises(ValueError, match=match):
        run(cfg)
    (failed,) = finished_runs(tmp_path)
    assert failed.info.status == "FAILED"
