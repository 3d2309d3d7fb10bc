"""MLflow tracking: parameter flattening, tags, artifacts, FAILED runs."""

import subprocess
import sys

import mlflow
import pytest
from omegaconf import OmegaConf

from tierlab import tracking
from tierlab.config import compose


def test_flatten_config_nests_keys_and_truncates_long_values():
    cfg = OmegaConf.create({"a": {"b": 1, "c": [1, 2]}, "long": "x" * 10_000, "empty": {}})
    flat = tracking.flatten_config(cfg, max_length=500)
    assert flat["a.b"] == "1"
    assert flat["a.c"] == "[1, 2]"
    assert flat["empty"] == "{}"
    assert len(flat["long"]) == 500
    assert flat["long"].endswith(tracking.TRUNCATION_MARK)


@pytest.mark.parametrize("limit", [5, 7000])
def test_flatten_config_rejects_limits_outside_mlflows(limit):
    with pytest.raises(ValueError, match=rf"max_param_length={limit} should be > 14 and <= 6000"):
        tracking.flatten_config({"a": 1}, max_length=limit)


def test_git_state_outside_a_repository_is_unknown(tmp_path):
    assert tracking.git_state(tmp_path) == {"git_commit": "unknown", "git_dirty": "unknown"}


def test_git_state_of_this_checkout():
    state = tracking.git_state()
    assert state["git_dirty"] in {"true", "false", "unknown"}
    if state["git_commit"] != "unknown":
        assert len(state["git_commit"]) == 40


@pytest.fixture
def cfg(tmp_path):
    return compose(
        [
            "debug=fast",
            f"tracking.uri=sqlite:///{tmp_path}/mlruns.db",
            f"tracking.artifact_root={tmp_path}/artifacts",
            "+data.note=" + "y" * 9000,  # longer than MLflow's 6000-character value limit
        ],
        output_dir=tmp_path / "out",
    )


def test_parent_run_logs_params_tags_config_and_finishes(cfg, tmp_path):
    with tracking.parent_run(cfg, "ok") as run:
        pass
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params["data.n_customers"] == "400"
    assert got.data.params["seed"] == "42"
    assert len(got.data.params["data.note"]) == cfg.tracking.max_param_length
    for tag in ("git_commit", "git_dirty", "tierlab_version", "seed"):
        assert tag in got.data.tags
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "config")]
    assert artifacts == ["config/resolved_config.yaml"]
    assert str(tmp_path / "artifacts") in got.info.artifact_uri


def test_ctrl_c_ends_the_run_killed(cfg):
    with pytest.raises(KeyboardInterrupt), tracking.parent_run(cfg, "stopped") as run:
        raise KeyboardInterrupt
    assert mlflow.get_run(run.info.run_id).info.status == "KILLED"


def test_parent_run_is_failed_and_the_error_re_raised(cfg):
    with pytest.raises(ZeroDivisionError), tracking.parent_run(cfg, "boom") as run:
        1 / 0  # noqa: B018
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


def test_parallel_processes_can_open_a_fresh_sqlite_store_together(tmp_path):
    # without the store lock, 9 of 12 such processes failed on the schema migration race
    script = (
        "import sys; from omegaconf import OmegaConf; from tierlab.tracking import configure; "
        "configure(OmegaConf.create({'uri': sys.argv[1], 'experiment_name': 'x', "
        "'artifact_root': sys.argv[2]})); print('ok')"
    )
    uri = f"sqlite:///{tmp_path}/fresh.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, uri, str(tmp_path / "art")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-2000:] for _, err in outputs]
