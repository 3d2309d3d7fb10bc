"""The search space of a tuning config: parsing, errors naming the key, conditional parameters;
and the storage URL forms."""

import optuna
import pytest
from omegaconf import OmegaConf

from tierlab.config import compose
from tierlab.tuning.objective import make_plan
from tierlab.tuning.space import apply, parse_space, suggest
from tierlab.tuning.storage import mask, open_storage

WHERE = "conf/tuning/test.yaml: tuning.space"
NODE = OmegaConf.create(
    {
        "_target_": "tierlab.clv.regressors.regressor_pipeline",
        "target": "raw",
        "model": {"_target_": "x.Model", "alpha": 1.0, "objective": "tweedie", "power": 1.5},
    }
)


def space(**specs):
    return parse_space(specs, NODE, WHERE)


def test_nested_and_dotted_paths_parse_alike():
    nested = space(model={"alpha": {"type": "float", "low": 0.1, "high": 10, "log": True}})
    dotted = space(**{"model.alpha": {"type": "float", "low": 0.1, "high": 10, "log": True}})
    assert nested == dotted
    (param,) = nested
    assert (param.path, param.type, param.low, param.high, param.log) == (
        "model.alpha", "float", 0.1, 10, True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"model.alpah": {"type": "float", "low": 0, "high": 1}}, r"test.yaml: tuning.space.model.alpah: the model node .* has no parameter 'model.alpah'"),
        ({"model.alpha": {"type": "double", "low": 0, "high": 1}}, r"model.alpha: type='double' should be one of \['int', 'float', 'categorical'\]"),
        ({"model.alpha": {"type": "float", "low": 2, "high": 1}}, r"model.alpha: low=2 should be <= high=1"),
        ({"model.alpha": {"type": "float", "low": 0, "high": 1, "log": True}}, r"model.alpha: log=true needs low > 0; got low=0"),
        ({"model.alpha": {"type": "float", "low": 1, "high": 9, "log": True, "step": 1}}, r"log=true and step=1 cannot be combined"),
        ({"model.alpha": {"type": "float", "low": 0, "high": 1, "step": -1}}, r"step=-1 should be > 0"),
        ({"model.alpha": {"type": "float", "high": 1}}, r"model.alpha: type=float needs low and high"),
        ({"model.alpha": {"type": "int", "low": 0.5, "high": 3}}, r"model.alpha: low=0.5 should be an integer"),
        ({"model.alpha": {"type": "float", "low": 0, "high": 1, "choices": [1]}}, r"unknown keys \['choices'\] for type=float"),
        ({"target": {"type": "categorical", "choices": []}}, r"target: type=categorical needs a non-empty list of choices"),
        ({"target": {"type": "categorical", "choices": [[1, 2], "raw"]}}, r"target: choices \[\[1, 2\]\] are not numbers"),
        ({"target": {"type": "categorical", "choices": ["raw", "raw"]}}, r"choices=\['raw', 'raw'\] has duplicates"),
        ({"model.alpha": 0.5}, r"tuning.space.model.alpha: expected a parameter spec"),
        ({"model.power": {"type": "float", "low": 1, "high": 2, "condition": {"model.objective": "tweedie"}}}, r"model.power.condition: 'model.objective' is not a parameter of the space"),
        ({"model.power": {"type": "float", "low": 1, "high": 2, "condition": "tweedie"}}, r"model.power.condition: expected a mapping"),
        ({"model.objective": {"type": "categorical", "choices": ["tweedie"]}, "model.power": {"type": "float", "low": 1, "high": 2, "condition": {"model.objective": "gamma"}}}, r"condition: model.objective=\['gamma'\] is never suggested; its choices are \['tweedie'\]"),
        ({"model.alpha": {"type": "float", "low": 1, "high": 2, "condition": {"model.power": 1.5}}, "model.power": {"type": "float", "low": 1, "high": 2, "condition": {"model.alpha": 1.5}}}, r"conditions form a cycle: model.alpha -> model.power -> model.alpha"),
        ({}, r"tuning.space is empty"),
        ({"model": {"alpha": {"type": "float", "low": 0, "high": 1}}, "model.alpha": {"type": "float", "low": 0, "high": 2}}, r"tuning.space.model.alpha is declared twice"),
    ],
)  # fmt: skip
def test_space_errors_name_the_key(spec, match):
    with pytest.raises(ValueError, match=match):
        space(**spec)


def test_conditional_parameter_is_suggested_only_when_its_condition_holds():
    params = space(
        **{
            # declared before the parameter it depends on: suggested after it anyway
            "model.power": {
                "type": "float", "low": 1.1, "high": 1.9,
                "condition": {"model.objective": ["tweedie"]},
            },
            "model.objective": {"type": "categorical", "choices": ["tweedie", "poisson"]},
        }
    )  # fmt: skip
    assert [p.path for p in params] == ["model.objective", "model.power"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        values = suggest(trial, params)
        seen.add(values["model.objective"])
        assert ("model.power" in values) == (values["model.objective"] == "tweedie")
        assert set(trial.params) == set(values)
        node = apply(NODE, values)
        assert node.model.power == values.get("model.power", 1.5)  # else the node's own value
        study.tell(trial, 0.0)
    assert seen == {"tweedie", "poisson"}


def test_int_step_and_categorical_null_choice():
    params = space(
        **{
            "model.alpha": {"type": "int", "low": 2, "high": 10, "step": 2},
            "target": {"type": "categorical", "choices": ["raw", None]},
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(10):
        trial = study.ask()
        values = suggest(trial, params)
        assert values["model.alpha"] in (2, 4, 6, 8, 10)
        assert values["target"] in ("raw", None)
        study.tell(trial, 0.0)


def test_apply_leaves_the_original_node_alone():
    tuned = apply(NODE, {"model.alpha": 3.0, "target": "signed_log1p"})
    assert (tuned.model.alpha, tuned.target) == (3.0, "signed_log1p")
    assert (NODE.model.alpha, NODE.target) == (1.0, "raw")


@pytest.mark.parametrize("name", ["lightgbm_tweedie", "elastic_net", "kmeans"])
def test_shipped_tuning_configs_parse(tmp_path, name):
    plan = make_plan(compose([f"tuning={name}"], output_dir=tmp_path))
    assert plan.space and plan.metric.split("/")[1].startswith("val_")


def test_plan_errors(tmp_path):
    with pytest.raises(ValueError, match=r"no tuning config selected: tierlab tune tuning=<name>"):
        make_plan(compose([], output_dir=tmp_path))
    cfg = compose(
        ["tuning=lightgbm_tweedie", "optimized_metric=clv/holdout_gini"], output_dir=tmp_path
    )
    with pytest.raises(ValueError, match=r"'clv/holdout_gini' .* tuning never sees the holdout"):
        make_plan(cfg)
    cfg = compose(["tuning=kmeans", "tuning.metric=clv/val_gini"], output_dir=tmp_path)
    with pytest.raises(ValueError, match=r"not a validation metric of tuning.kind=segmentation"):
        make_plan(cfg)
    cfg = compose(["tuning=kmeans", "tuning.direction=max"], output_dir=tmp_path)
    with pytest.raises(ValueError, match=r"tuning.direction='max' should be one of"):
        make_plan(cfg)
    cfg = compose(["tuning=kmeans", "optimized_metric=seg/val_spearman"], output_dir=tmp_path)
    assert make_plan(cfg).metric == "seg/val_spearman"  # the top-level key wins


def test_storage_urls(tmp_path):
    journal = open_storage(f"journal://{tmp_path}/sub/optuna.log")
    assert isinstance(journal, optuna.storages.JournalStorage)
    assert (tmp_path / "sub").is_dir()
    sqlite = open_storage(f"sqlite:///{tmp_path}/db/optuna.db")
    assert isinstance(sqlite, optuna.storages.RDBStorage)
    with pytest.raises(ValueError, match=r"a journal storage needs an absolute path"):
        open_storage("journal://relative/file.log")
    with pytest.raises(ValueError, match=r"tuning.storage='optuna.db' is not a storage URL"):
        open_storage("optuna.db")
    assert mask("postgresql+psycopg2://me:secret@db:5432/optuna") == (
        "postgresql+psycopg2://me:***@db:5432/optuna"
    )
    assert mask("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_missing_database_driver_is_named(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_psycopg2(name, *args, **kwargs):
        if name.split(".")[0] == "psycopg2":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psycopg2)
    with pytest.raises(
        ModuleNotFoundError, match=r"needs the database driver 'psycopg2'.*psycopg2-binary"
    ):
        open_storage("postgresql+psycopg2://me:secret@127.0.0.1:1/optuna")
