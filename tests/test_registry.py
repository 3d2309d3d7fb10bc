"""The registry: register -> champion/challenger -> promote -> score, on the debug=fast bank.

One module store (temporary SQLite + artifacts): each test registers its own model names
(``registry.clv_name=...``), so tests do not see each other's versions.  Customer ids are
replaced by sentinels (987654321xxx) to prove that no logged file holds a customer row.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMRegressor
from sklearn.dummy import DummyRegressor

from run_helpers import isolated
from tierlab import tracking
from tierlab.clv.metrics import value_metrics
from tierlab.clv.regressors import regressor_pipeline
from tierlab.clv.stage import holdout_frame
from tierlab.config import compose
from tierlab.data.stage import run_data_stage
from tierlab.features.stage import run_features_stage
from tierlab.registry.promote import NoChallenger, PromotionError, is_better, promote
from tierlab.registry.register import (
    feature_columns,
    pinned_requirements,
    register_models,
    synthetic_example,
)
from tierlab.registry.score import InputError, score, write_atomic
from tierlab.registry.tiering import (
    TieringModel,
    assign_tiers,
    build_tiering_model,
    tier_thresholds,
)

SENTINEL = 987654321
TIERLAB = Path(sys.executable).with_name("tierlab")
SERVICE_LEVELS = [
    "dedicated_relationship_manager",
    "priority_service",
    "standard_digital",
    "standard_digital",
]


@dataclass
class Bank:
    """The module's store, the holdout and two fitted CLV pipelines (good and null)."""

    root: Path
    X: pd.DataFrame  # indicators at the cut-off, customer_id column (sentinel ids)
    value: np.ndarray  # holdout value, aligned with X
    lightgbm: object
    dummy: object

    def cfg(self, name: str, *overrides: str):
        """Config on the module store with registered model names <name>-clv, <name>-tiering."""
        names = [f"registry.clv_name={name}-clv", f"registry.tiering_name={name}-tiering"]
        return compose(isolated(self.root, *names, *overrides), output_dir=self.root / "out" / name)

    def register(self, cfg, model) -> dict[str, str]:
        """Register ``model`` inside a parent run, as the tuning code does."""
        metrics = value_metrics(self.value, model.predict(self.X))
        with tracking.parent_run(cfg, "tune"):
            return register_models(cfg, model, self.X, metrics)


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Bank:
    root = tmp_path_factory.mktemp("registry")
    cfg = compose(isolated(root), output_dir=root / "out" / "fixture")
    with tracking.parent_run(cfg, "fixture"):
        data_stage = run_data_stage(cfg, root / "out" / "fixture")
        features = run_features_stage(cfg, data_stage, root / "out" / "fixture")
    h = holdout_frame(data_stage, features, float(cfg.features.targets.discount_rate_monthly))
    X_train = h.X_train.set_axis(SENTINEL * 1000 + np.arange(len(h.X_train)))
    lightgbm = regressor_pipeline(
        LGBMRegressor(objective="tweedie", n_estimators=20, n_jobs=1, verbose=-1, random_state=0),
        target="clip_at_zero",
    ).fit(X_train, h.y_train)
    dummy = regressor_pipeline(DummyRegressor()).fit(X_train, h.y_train)
    X = h.X.reset_index()
    X["customer_id"] = SENTINEL * 1000 + 500 + np.arange(len(X))
    return Bank(root, X, h.value, lightgbm, dummy)


def tags(name: str, version: str) -> dict[str, str]:
    return mlflow.MlflowClient().get_model_version(name, version).tags


def alias(name: str, which: str) -> str:
    return str(mlflow.MlflowClient().get_model_version_by_alias(name, which).version)


# ------------------------------------------------------------------------------------------
# tiering rule
# ------------------------------------------------------------------------------------------


def test_tiers_take_the_value_quantile_shares_of_predicted_clv():
    predicted = np.arange(100, dtype="float64")[::-1]
    thresholds = tier_thresholds(predicted, [0.05, 0.15, 0.30])
    np.testing.assert_array_equal(thresholds, [95.0, 80.0, 50.0])
    tiers = assign_tiers(predicted, thresholds)
    assert np.bincount(tiers)[1:].tolist() == [5, 15, 30, 50]
    assert assign_tiers(np.array([np.nan, 95.0, 94.9]), thresholds).tolist() == [4, 1, 2]


def test_service_levels_must_match_the_tiers(bank):
    with pytest.raises(ValueError, match=r"service_levels has 2 entries .* make 4 tiers"):
        build_tiering_model(bank.dummy, bank.X, ["recency_days"], [0.05, 0.15, 0.3], ["a", "b"])


def test_synthetic_example_is_column_quantiles_not_customer_rows(bank):
    X = bank.X.drop(columns="customer_id").astype("float64")
    example = synthetic_example(X, [0.1, 0.5, 0.9])
    assert example.shape == (3, X.shape[1])
    pd.testing.assert_series_equal(example.iloc[1], X.median(), check_names=False)
    assert not (example.to_numpy()[:, None, :] == X.to_numpy()[None, :, :]).all(axis=2).any()


def test_is_better_keeps_the_champion_on_ties_and_nan():
    assert is_better(0.5, 0.4, "maximize") and not is_better(0.4, 0.5, "maximize")
    assert is_better(1.0, 2.0, "minimize") and not is_better(2.0, 2.0, "minimize")
    assert not is_better(0.5, 0.5, "maximize")
    assert not is_better(float("nan"), 0.1, "maximize")
    assert is_better(0.1, float("nan"), "maximize")
    with pytest.raises(PromotionError, match=r"direction='up'; expected one of"):
        is_better(0.1, 0.2, "up")


# ------------------------------------------------------------------------------------------
# registration
# ------------------------------------------------------------------------------------------


def test_first_version_is_champion_and_the_next_is_challenger(bank, tmp_path):
    cfg = bank.cfg("reg")
    first = bank.register(cfg, bank.lightgbm)
    assert first["clv_version"] == first["tiering_version"] == "1"
    assert first["clv_aliases"] == first["tiering_aliases"] == "challenger,champion"
    assert first["tiering_uri"] == "models:/reg-tiering/1"
    second = bank.register(cfg, bank.lightgbm)
    assert second["clv_aliases"] == "challenger"
    for name in ("reg-clv", "reg-tiering"):
        assert alias(name, "champion") == "1"
        assert alias(name, "challenger") == "2"
        one, two = tags(name, "1"), tags(name, "2")
        assert one["promotion/decision"] == "first version"
        assert "promotion/decision" not in two
        gini = value_metrics(bank.value, bank.lightgbm.predict(bank.X))["gini"]
        assert float(one["holdout/gini"]) == pytest.approx(gini)
        assert one["run_id"] == first["run_id"] and one["paired_version"] == "1"

    features = list(bank.lightgbm.feature_names_in_)
    clv_info = mlflow.models.get_model_info("models:/reg-clv/1")
    assert clv_info.signature.inputs.input_names() == features
    assert {s.type.name for s in clv_info.signature.inputs.inputs} == {"double"}
    tiering = mlflow.models.get_model_info("models:/reg-tiering@champion").signature
    assert tiering.inputs.input_names() == ["customer_id", *features]
    assert tiering.inputs.required_input_names() == features
    assert tiering.outputs.input_names() == [
        "customer_id",
        "tier",
        "predicted_clv",
        "service_level",
    ]

    folder = mlflow.artifacts.download_artifacts("models:/reg-tiering/1", dst_path=str(tmp_path))
    requirements = (Path(folder) / "requirements.txt").read_text().split()
    assert "scikit-learn==1.9.1" in requirements and "lightgbm==4.7.0" in requirements
    assert all("==" in line for line in requirements)
    example = json.loads((Path(folder) / "input_example.json").read_text())
    assert example["columns"] == features and len(example["data"]) == 3


def test_failed_tiering_registration_leaves_no_clv_version(bank, monkeypatch):
    cfg = bank.cfg("half")
    register = mlflow.register_model

    def fail_for_tiering(model_uri, name, **kwargs):
        if name == "half-tiering":
            raise mlflow.exceptions.MlflowException("registry is read-only (test)")
        return register(model_uri, name, **kwargs)

    monkeypatch.setattr(mlflow, "register_model", fail_for_tiering)
    with pytest.raises(mlflow.exceptions.MlflowException, match="half-clv version 1, registered"):
        bank.register(cfg, bank.lightgbm)
    assert mlflow.MlflowClient().search_model_versions("name='half-clv'") == []


# ------------------------------------------------------------------------------------------
# promotion
# ------------------------------------------------------------------------------------------


def test_promote_moves_champion_only_when_the_challenger_is_better(bank):
    cfg = bank.cfg("duel")
    bank.register(cfg, bank.dummy)  # version 1: the null model, champion by default
    bank.register(cfg, bank.lightgbm)  # version 2: better
    better = promote(cfg)
    for key, name in (("clv", "duel-clv"), ("tiering", "duel-tiering")):
        result = better[key]
        assert result["promoted"] and result["champion"] == "2"
        assert alias(name, "champion") == "2"
        assert result["challenger_score"] > result["champion_score"] == pytest.approx(0.0)
        recorded = tags(name, "2")
        assert recorded["promotion/decision"].startswith("promoted over version 1: gini")
        assert float(recorded["promotion/challenger_score"]) == result["challenger_score"]
        assert float(recorded["promotion/champion_score"]) == result["champion_score"]
        assert recorded["promotion/champion_version"] == "1"
        run = mlflow.get_run(recorded["promotion/run_id"])
        assert run.info.run_name == "promote" and run.info.status == "FINISHED"
        assert run.data.metrics[f"promote/{key}/promoted"] == 1.0
        assert run.data.metrics[f"promote/{key}/challenger_gini"] == result["challenger_score"]
    assert better["clv"]["challenger_score"] == pytest.approx(better["tiering"]["challenger_score"])

    bank.register(cfg, bank.dummy)  # version 3: worse
    worse = promote(cfg)
    assert not worse["clv"]["promoted"] and alias("duel-clv", "champion") == "2"
    assert alias("duel-tiering", "champion") == "2"
    assert tags("duel-tiering", "3")["promotion/decision"].startswith("kept champion version 2")
    run = mlflow.get_run(tags("duel-clv", "3")["promotion/run_id"])
    assert run.data.metrics["promote/clv/promoted"] == 0.0

    bank.register(cfg, bank.lightgbm)  # version 4: the champion's twin, an exact tie
    tie = promote(cfg)
    assert tie["clv"]["challenger_score"] == tie["clv"]["champion_score"]
    assert not tie["clv"]["promoted"] and alias("duel-clv", "champion") == "2"


def test_promote_without_a_challenger_says_so(bank):
    with pytest.raises(NoChallenger, match=r"no '@challenger' version of \['none-clv', "):
        promote(bank.cfg("none"))


def test_promote_rejects_an_unknown_metric_before_any_work(bank):
    cfg = bank.cfg("metric", "registry.promotion.metric=accuracy")
    with pytest.raises(PromotionError, match=r"metric='accuracy' is not a holdout metric"):
        promote(cfg)


# ------------------------------------------------------------------------------------------
# scoring
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def champion(bank) -> dict[str, str]:
    """The default names (tierlab-clv, tierlab-tiering) with one version, the champion."""
    return bank.register(bank.cfg("tierlab"), bank.lightgbm)


def store_env(bank: Bank) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{bank.root}/mlruns.db"}


def test_score_cli_writes_tier_clv_and_service_level_per_customer(bank, champion, tmp_path):
    bank.X.to_parquet(tmp_path / "customers.parquet", index=False)
    done = subprocess.run(
        [str(TIERLAB), "score", "--model", "models:/tierlab-tiering@champion",
         "--input", str(tmp_path / "customers.parquet"),
         "--output", str(tmp_path / "scored.parquet")],
        env=store_env(bank), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert scored.columns.tolist() == ["customer_id", "tier", "predicted_clv", "service_level"]
    assert scored["customer_id"].tolist() == bank.X["customer_id"].tolist()
    np.testing.assert_allclose(scored["predicted_clv"], bank.lightgbm.predict(bank.X))
    assert set(scored["tier"]) <= {1, 2, 3, 4} and scored["tier"].min() == 1
    assert (scored["service_level"] == [SERVICE_LEVELS[t - 1] for t in scored["tier"]]).all()
    assert (scored.groupby("tier")["predicted_clv"].min().diff().dropna() < 0).all()

    # the CLV model, from CSV to CSV, in this process
    bank.X.to_csv(tmp_path / "customers.csv", index=False)
    clv = score("models:/tierlab-clv@champion", tmp_path / "customers.csv", tmp_path / "clv.csv")
    assert clv.columns.tolist() == ["customer_id", "predicted_clv"]
    written = pd.read_csv(tmp_path / "clv.csv")
    np.testing.assert_allclose(written["predicted_clv"], bank.lightgbm.predict(bank.X))


def test_score_rejects_missing_and_mistyped_columns_and_writes_nothing(bank, champion, tmp_path):
    bad = bank.X.drop(columns=["recency_days", "profit_12m"])
    bad["frequency_3m"] = "many"
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    message = (
        r"input file 'bad.parquet' does not fit the model's input schema:\n"
        r"  missing columns \(2\): 'recency_days' \(double\), 'profit_12m' \(double\)\n"
        r"  mistyped columns \(1\): 'frequency_3m' expected double, found str"
    )
    with pytest.raises(InputError, match=message):
        score("models:/tierlab-tiering@champion", tmp_path / "bad.parquet", tmp_path / "out.pq")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet"]

    done = subprocess.run(
        [str(TIERLAB), "score", "--model", "models:/tierlab-tiering@champion",
         "--input", str(tmp_path / "bad.parquet"), "--output", str(tmp_path / "out.parquet")],
        env=store_env(bank), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    assert "tierlab score: input file 'bad.parquet'" in done.stderr
    assert "'frequency_3m' expected double, found str" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet"]


def test_score_rejects_unknown_formats_and_files(tmp_path):
    with pytest.raises(InputError, match=r"output file 'scores.xlsx' has suffix '.xlsx'"):
        score("models:/any@champion", tmp_path / "in.parquet", tmp_path / "scores.xlsx")
    with pytest.raises(InputError, match=r"input file '.*in.parquet' does not exist"):
        score("models:/any@champion", tmp_path / "in.parquet", tmp_path / "scores.parquet")


def test_write_is_atomic(tmp_path, monkeypatch):
    frame = pd.DataFrame({"customer_id": [1, 2], "tier": [1, 2]})
    write_atomic(frame, tmp_path / "scores.parquet")

    def broken(self, path, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError("disk full (test)")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(frame.iloc[:1], tmp_path / "scores.parquet")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "scores.parquet"), frame)


# ------------------------------------------------------------------------------------------
# privacy: no customer rows in the registered models
# ------------------------------------------------------------------------------------------


def large_frames(obj, limit: int, seen=None, path="model") -> list[str]:
    """Paths of every DataFrame/Series over 5 rows or array over ``limit`` rows inside obj."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, str | bytes | int | float | type) or callable(obj):
        return []
    seen.add(id(obj))
    if isinstance(obj, pd.DataFrame | pd.Series):
        return [f"{path}: {type(obj).__name__} of {len(obj)} rows"] if len(obj) > 5 else []
    if isinstance(obj, np.ndarray):
        return [f"{path}: array {obj.shape}"] if obj.ndim and obj.shape[0] >= limit else []
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list | tuple | set):
        items = enumerate(obj)
    elif hasattr(obj, "__dict__"):
        items = vars(obj).items()
    else:
        return []
    return [f for k, v in items for f in large_frames(v, limit, seen, f"{path}.{k}")]


def test_registered_models_hold_no_customer_rows(bank, tmp_path):
    cfg = bank.cfg("rows")
    tracking.configure(cfg.tracking)
    result = register_models(cfg, bank.lightgbm, bank.X, {"gini": 0.5})  # opens its own run
    assert mlflow.get_run(result["run_id"]).info.run_name == "register"
    for uri in (result["clv_uri"], result["tiering_uri"]):
        mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / uri.split("/")[1]))
    mlflow.artifacts.download_artifacts(run_id=result["run_id"], dst_path=str(tmp_path / "run"))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "python_model.pkl" for p in files)
    ids = np.r_[bank.X["customer_id"].to_numpy(), SENTINEL * 1000 + np.arange(len(bank.X))]
    patterns = [str(SENTINEL).encode()]
    for i in ids.tolist():
        patterns += [struct.pack("<q", i)[:5], struct.pack("<d", float(i))]
    contents = {p: p.read_bytes() for p in files}
    leaks = [(p.name, pat) for p, data in contents.items() for pat in patterns if pat in data]
    assert leaks == []

    tiering = mlflow.pyfunc.load_model(result["tiering_uri"]).unwrap_python_model()
    assert tiering.thresholds == sorted(tiering.thresholds, reverse=True)
    assert large_frames(tiering, limit=100) == []
    clv = mlflow.sklearn.load_model(result["clv_uri"])
    assert large_frames(clv, limit=100) == []


# ------------------------------------------------------------------------------------------
# error messages
# ------------------------------------------------------------------------------------------


def test_registration_inputs_are_checked(bank):
    with pytest.raises(ValueError, match=r"X_reference lacks the columns \['recency_days'\]"):
        feature_columns(bank.lightgbm, bank.X.drop(columns="recency_days"))
    dummy = DummyRegressor().fit(bank.X[["customer_id", "recency_days"]], bank.value)
    with pytest.raises(ValueError, match=r"fitted with 'customer_id' as a feature"):
        feature_columns(dummy, bank.X)
    with pytest.raises(ValueError, match=r"lists \['no-such-package-tierlab'\], which are not"):
        pinned_requirements(["numpy", "no-such-package-tierlab"])


def test_tiering_model_needs_its_pipeline_and_columns(bank):
    model = TieringModel(["recency_days", "profit_12m"], [2.0, 1.0], ["a", "b", "c"], [0.1, 0.2])
    with pytest.raises(RuntimeError, match="has no CLV pipeline"):
        model.predict(None, bank.X)
    model.use_pipeline(bank.dummy)
    with pytest.raises(ValueError, match=r"lacks the indicator columns \['profit_12m'\]"):
        model.predict(None, bank.X.drop(columns="profit_12m"))


def test_score_names_bad_files(bank, champion, tmp_path):
    uri = "models:/tierlab-tiering@champion"
    with pytest.raises(InputError, match=r"output folder '.*nowhere' does not exist"):
        score(uri, tmp_path / "in.parquet", tmp_path / "nowhere" / "out.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"cannot read input file 'broken.parquet' as parquet"):
        score(uri, tmp_path / "broken.parquet", tmp_path / "out.parquet")
    bank.X.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(InputError, match=r"input file 'empty.parquet' has no rows"):
        score(uri, tmp_path / "empty.parquet", tmp_path / "out.parquet")
    tracking.configure(bank.cfg("bare").tracking)
    with mlflow.start_run():
        bare = mlflow.sklearn.log_model(
            bank.dummy, name="bare", pip_requirements=["numpy"], serialization_format="cloudpickle"
        )
    bank.X.to_parquet(tmp_path / "x.parquet")
    with pytest.raises(InputError, match=r"model models:/.* has no input signature"):
        score(bare.model_uri, tmp_path / "x.parquet", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
