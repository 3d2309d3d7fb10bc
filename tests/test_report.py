"""The research report: built from the tracking store alone, self-contained, reproducible.

One `debug=fast` run in a temporary local store serves most tests; one more runs through the
command line against a real tracking server (the reproducibility block then has the command).
"""

from __future__ import annotations

import filecmp
import re
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from run_helpers import finished_runs, isolated
from test_registry_server import BIN, server  # noqa: F401  (the tracking-server fixture)
from tierlab.config import compose
from tierlab.report.build import build_report
from tierlab.report.cli import report_main
from tierlab.run import run

EXPERIMENT = "tierlab-debug"


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> tuple[Path, str, dict[str, float]]:
    """A finished debug run: (its temp folder, run id, metrics)."""
    tmp_path = tmp_path_factory.mktemp("report")
    metrics = run(compose(isolated(tmp_path), output_dir=tmp_path / "out"))
    (parent,) = finished_runs(tmp_path)
    return tmp_path, parent.info.run_id, metrics


def same_tree(first: Path, second: Path) -> bool:
    comparison = filecmp.dircmp(first, second)
    files = [p.relative_to(first) for p in first.rglob("*") if p.is_file()]
    return (
        sorted(files) == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
        and all(filecmp.cmp(first / f, second / f, shallow=False) for f in files)
        and not comparison.left_only
    )


def test_run_writes_a_self_contained_report_and_logs_it(tracked):
    tmp_path, run_id, _ = tracked
    page = (tmp_path / "out" / "report" / "report.html").read_text()
    for heading in ("Question and setup", "Key findings", "Segmentation",
                    "Customer lifetime value", "Drivers (SHAP)", "Reproducibility"):  # fmt: skip
        assert f">{heading}</h2>" in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) >= 8
    assert all(s.startswith("data:image/png;base64,") for s in sources)  # nothing external
    assert "<link" not in page and "<script" not in page
    run_record = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlruns.db").get_run(run_id)
    for value in (run_id, run_record.data.tags["git_commit"],
                  run_record.data.tags["data_fingerprint"]):  # fmt: skip
        assert value in page
    assert re.search(r"<td>pandas</td><td>\d+\.\d+", page)  # package versions
    assert "no overrides were recorded" in page  # started from Python, not the command line
    markdown = (tmp_path / "out" / "report" / "report.md").read_text()
    links = re.findall(r"\]\((report_files/[^)]+\.png)\)", markdown)
    assert len(links) == len(sources)
    assert all((tmp_path / "out" / "report" / link).is_file() for link in links)
    logged = {
        a.path
        for a in mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlruns.db").list_artifacts(
            run_id, "report"
        )
    }
    assert {"report/report.html", "report/report.md"} <= logged


def test_regenerating_from_the_store_gives_identical_files(tracked, tmp_path):
    store, run_id, _ = tracked
    uri = f"sqlite:///{store}/mlruns.db"
    build_report(uri, EXPERIMENT, [run_id], tmp_path / "a")
    build_report(uri, EXPERIMENT, None, tmp_path / "b")  # the latest run: the same one
    assert same_tree(tmp_path / "a", tmp_path / "b")
    assert same_tree(tmp_path / "a", store / "out" / "report")  # and as the run wrote it


def test_bootstrap_tables_hold_every_model_and_the_logged_estimates(tracked):
    tmp_path, _, metrics = tracked
    intervals = pd.read_csv(tmp_path / "out" / "bootstrap" / "intervals.csv")
    differences = pd.read_csv(tmp_path / "out" / "bootstrap" / "differences.csv")
    clv = intervals[intervals["kind"] == "clv"]
    compared = 0
    for row in clv.itertuples():
        logged = metrics.get(f"clv/{row.name}/{row.metric}")
        if logged is not None:
            assert row.estimate == pytest.approx(logged, rel=1e-9), (row.name, row.metric)
            compared += 1
    models = {k.split("/")[1] for k in metrics if k.startswith("clv/") and k.endswith("/gini")}
    assert set(clv["name"]) == models and compared >= 3 * len(models)
    seg = intervals[intervals["kind"] == "segmentation"]
    for row in seg.itertuples():
        assert row.estimate == pytest.approx(metrics[f"seg/{row.name}/{row.metric}"], rel=1e-9)
    assert {"clv", "segmentation"} <= set(differences["kind"])
    assert (intervals["n_resamples"] == 200).all()
    finite = intervals.dropna(subset=["ci_low"])
    assert (finite["ci_low"] <= finite["estimate"] + 1e-12).all()
    assert "true_expected_value" not in set(differences["best"]) | set(differences["runner_up"])


def test_cli_writes_the_report_and_names_what_is_missing(tracked, tmp_path, capsys):
    store, run_id, _ = tracked
    uri = f"sqlite:///{store}/mlruns.db"
    argv = ["--experiment", EXPERIMENT, "--tracking-uri", uri, "--output", str(tmp_path / "r")]
    assert report_main(argv) == 0
    assert (tmp_path / "r" / "report.html").is_file()
    assert report_main(["--experiment", "nope", "--tracking-uri", uri]) == 1
    assert "no MLflow experiment named 'nope'" in capsys.readouterr().err
    assert report_main(["--experiment", EXPERIMENT, "--tracking-uri", uri,
                        "--run-id", "0" * 32]) == 1  # fmt: skip
    assert "not found" in capsys.readouterr().err
    mlflow.set_tracking_uri(uri)
    other = mlflow.create_experiment("elsewhere")
    with mlflow.start_run(experiment_id=other) as foreign:
        pass
    assert report_main(["--experiment", EXPERIMENT, "--tracking-uri", uri,
                        "--run-id", foreign.info.run_id]) == 1  # fmt: skip
    assert "not to 'tierlab-debug'" in capsys.readouterr().err
    assert report_main(["--experiment", "elsewhere", "--tracking-uri", uri]) == 1
    assert "has no finished `tierlab run` run" in capsys.readouterr().err


def test_command_line_run_on_a_tracking_server_reports_the_rerun_command(server, tmp_path):  # noqa: F811
    overrides = [
        o for o in isolated(tmp_path, f"hydra.run.dir={tmp_path}/out") if "tracking" not in o
    ] + [f"tracking.uri={server}"]
    done = subprocess.run(
        [str(BIN / "tierlab"), "run", *overrides],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    written = Path(re.search(r"^report: (.+)$", done.stdout, re.M).group(1))
    assert written == tmp_path / "out" / "report" / "report.html"
    page = written.read_text()
    task = [o for o in overrides if not o.startswith("hydra.")]  # hydra.* don't change numbers
    assert f".venv/bin/tierlab run {' '.join(task)}\n" in page
    build_report(server, EXPERIMENT, None, tmp_path / "again")
    assert same_tree(tmp_path / "again", tmp_path / "out" / "report")


PNG = (  # a valid 1x1 PNG
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18"
    b"\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def fake_run(experiment_id: str, tags: dict[str, str], files: dict[str, str | bytes]) -> str:
    with mlflow.start_run(experiment_id=experiment_id) as active:
        mlflow.set_tags(tags)
        for name, content in files.items():
            if isinstance(content, bytes):
                folder = Path(mlflow.get_artifact_uri().removeprefix("file://"))
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(content)
            else:
                mlflow.log_text(content, name)
    return active.info.run_id


def test_hostile_text_quoting_masking_no_holdout_and_later_tuning(tmp_path):
    uri = f"sqlite:///{tmp_path}/store.db"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("hostile", artifact_location=(tmp_path / "art").as_uri())
    tuning_tags = {"tuning_role": "tune", "data_fingerprint": "abc", "optuna_study": "a/b"}
    before = fake_run(exp, tuning_tags, {"tuning/optimization_history.png": PNG})
    config = (
        "report:\n  question: <script>alert(1)</script> **which** ```wins```?\n"
        "tuning:\n  storage: postgresql://tierlab:s3cret@db.example:5432/optuna\n"
    )
    overrides = "'report.question=\"Which (if any) wins?\"' seed=7"
    main = fake_run(
        exp,
        {"tierlab_command": "run", "data_fingerprint": "abc", "hydra_overrides": overrides,
         "git_commit": "0" * 40, "git_dirty": "false"},
        {"config/resolved_config.yaml": config,
         "segmentation/comparison.csv": "method,status,silhouette\nkmeans,done,0.25\n"},
    )  # fmt: skip
    fake_run(
        exp, {**tuning_tags, "optuna_study": "later"}, {"tuning/optimization_history.png": PNG}
    )
    html_path, md_path = build_report(uri, "hostile", [main], tmp_path / "out")
    page, markdown = html_path.read_text(), md_path.read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    prose = re.sub(r"(`{3,})[a-z]*\n.*?\n\1", "", markdown, flags=re.S)  # code fences out
    assert "<script>" not in prose and "&lt;script&gt;alert(1)" in prose
    assert "\n````yaml\n" in markdown  # a fence longer than the backticks inside it
    assert "s3cret" not in page and "s3cret" not in markdown and "tierlab:***@" in page
    assert "No bootstrap intervals: the data set has no holdout window." in markdown
    # the recorded overrides are pasted as shell words: bash gives Hydra the quoted value back
    line = next(x for x in markdown.splitlines() if x.startswith(".venv/bin/tierlab run"))
    words = subprocess.run(
        ["bash", "-c", f'printf "%s\\n" {line.removeprefix(".venv/bin/tierlab run ")}'],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert words == ['report.question="Which (if any) wins?"', "seed=7"]
    # the tuning study run before the reported run is shown, the later one is not
    assert "Study a/b" in markdown and "later" not in markdown
    assert (tmp_path / "out" / "report_files" / "r0_a_b_tuning_optimization_history.png").is_file()
    assert str(before) in markdown
    # several runs: an overview table, then one section per run with its own images
    other = fake_run(exp, {"tierlab_command": "run"}, {"config/resolved_config.yaml": config})
    _, both = build_report(uri, "hostile", [main, other], tmp_path / "both")
    text = both.read_text()
    assert "2 runs of the MLflow experiment `hostile`." in text
    assert f"({main[:8]})" in text and f"({other[:8]})" in text
    assert text.count("### Reproducibility") == 2
