"""Modelling stages on 1-2M customers (issue 10): every segmentation method, CLV model, the
explain and bootstrap stages, each case in its own subprocess; writes
bench/RESULTS_MODELLING_SCALE.md.

    .venv/bin/python -m bench.modelling_scale                 # 1M and 2M customers
    .venv/bin/python -m bench.modelling_scale --sizes 1000000 --cases seg:kmeans clv:elastic_net

The indicator and target tables are not generated from 100M transactions here: the tables of a
finished default run (``outputs/run/<latest>``, 20k customers; ``--source`` to choose) are
resampled with replacement up to N customers, with new ids, 2 % multiplicative noise on the
continuous indicators and targets, and the BTYD recency and age shifted by whole days (so the
BTYD fits see as many distinct rows as a real base would, not 16k).  The scaled tables are
cached in ``outputs/bench_modelling_scale/n<N>/``.  MLflow logs go to a temporary store.

A case ``seg:<method>`` (``|override`` appends Hydra overrides) times the method's fit, the
tier assignment, its internal metrics (silhouette sample, Calinski-Harabasz, Davies-Bouldin) and
its stability refits; ``clv:<model>`` times fit + predict + metrics (the CLV stage's
``evaluate``); ``stage:pipeline`` runs the segmentation, CLV, explain and bootstrap stages as
``tierlab run`` does, each timed, with the seconds of every method and model inside them.
Settings are ``experiment=scale`` unless the case says ``@default``.  Every child runs with one
thread (``clv.threads=1``, ``OMP_NUM_THREADS=1``); the peak RSS is the child's ``ru_maxrss``,
including the loaded tables (shown apart as "tables").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from bench.run import machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS_MODELLING_SCALE.md"
CACHE = ROOT / "outputs" / "bench_modelling_scale"
SIZES = (1_000_000, 2_000_000)
CASES = (  # the methods and models of experiment=scale are timed inside stage:pipeline
    "seg:kmeans",
    "seg:gmm",
    "seg:gmm|segmentation.methods.gmm.fit_sample=100000",
    "clv:mean_value",
    "clv:lightgbm_log",
    "clv:hist_gbm",
    "clv:elastic_net",
    "clv:paretonbd_gg",
    "stage:pipeline",
)
#: Cases above 1M customers (the rest was measured to grow linearly at 1M).
LARGE_CASES = ("seg:gmm|segmentation.methods.gmm.fit_sample=100000", "stage:pipeline")
TABLES = ("indicators", "targets", "train_indicators", "train_targets")


# --------------------------------------------------------------------------------------------
# scaled tables
# --------------------------------------------------------------------------------------------


def latest_run() -> Path:
    runs = sorted(p.parent for p in (ROOT / "outputs" / "run").glob("*/indicators.parquet"))
    if not runs:
        raise SystemExit("no finished run in outputs/run/: run `tierlab run` first (or --source)")
    return runs[-1]


def _scaled(indicators: pd.DataFrame, targets: pd.DataFrame, n: int, rng) -> tuple:
    rows = rng.integers(0, len(indicators), n)
    out = {"customer_id": np.arange(1, n + 1, dtype=np.int64)}
    for column in indicators.columns.drop("customer_id"):
        values = indicators[column].to_numpy()[rows]
        whole = values.dtype.kind != "f" or np.all(np.isnan(values) | (values == np.round(values)))
        if not whole and not column.startswith("btyd_"):
            values = values * (1 + 0.02 * rng.standard_normal(n))
            if column.endswith("_share"):
                values = np.clip(values, 0, 1)
        out[column] = values
    if "btyd_T" in out:  # shift age and last purchase by whole days; recency <= T, 0 for x = 0
        T, r, x = out["btyd_T"], out["btyd_recency"], out["btyd_frequency"]
        shift = rng.integers(-10, 11, n) / 7
        T2 = np.maximum(T + shift, 1 / 7)
        r2 = np.where(x > 0, np.clip(r + shift + rng.integers(-3, 4, n) / 7, 1 / 7, T2), 0.0)
        out["btyd_T"] = np.where(np.isnan(T), np.nan, T2)
        out["btyd_recency"] = np.where(np.isnan(T), np.nan, r2)
    aligned = targets.set_index("customer_id").reindex(indicators["customer_id"])
    scaled_targets = {"customer_id": out["customer_id"]}
    for column in aligned.columns:
        values = aligned[column].to_numpy()[rows]
        if values.dtype.kind == "f":
            values = values * (1 + 0.02 * rng.standard_normal(n))
        scaled_targets[column] = values
    return pd.DataFrame(out)[indicators.columns], pd.DataFrame(scaled_targets)[targets.columns]


def scaled_tables(source: Path, n: int) -> Path:
    """Write (once) the tables of ``source`` resampled to ``n`` customers; return the folder."""
    folder = CACHE / f"n{n}"
    if all((folder / f"{t}.parquet").exists() for t in TABLES):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for prefix in ("", "train_"):
        indicators = pd.read_parquet(source / f"{prefix}indicators.parquet")
        targets = pd.read_parquet(source / f"{prefix}targets.parquet")
        size = n if not prefix else round(n * len(indicators) / len(pd.read_parquet(
            source / "indicators.parquet", columns=["customer_id"])))  # fmt: skip
        indicators, targets = _scaled(indicators, targets, size, rng)
        indicators.to_parquet(folder / f"{prefix}indicators.parquet", index=False)
        targets.to_parquet(folder / f"{prefix}targets.parquet", index=False)
    (folder / "source.txt").write_text(str(source))
    return folder


# --------------------------------------------------------------------------------------------
# one case, in a child process
# --------------------------------------------------------------------------------------------


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def inputs(folder: Path, source: Path, overrides: list[str], output_dir: Path):
    """Config, a stand-in data stage and the features result the modelling stages take."""
    from tierlab.config import compose
    from tierlab.features.dictionary import Indicator
    from tierlab.features.stage import FeaturesResult, TrainingSnapshot

    cfg = compose(overrides, output_dir=output_dir)
    dictionary = [
        Indicator(r.name, r.family, r.formula, r.unit, r.source)
        for r in pd.read_csv(source / "features" / "data_dictionary.csv").itertuples()
    ]
    table = {t: pd.read_parquet(folder / f"{t}.parquet") for t in TABLES}
    training = TrainingSnapshot(table["train_indicators"], table["train_targets"], None)
    features = FeaturesResult(table["indicators"], table["targets"], dictionary, {}, training)
    split = SimpleNamespace(holdout_months=int(cfg.split.holdout_months))
    data = SimpleNamespace(truth=None, has=lambda table: table == "profitability")
    return cfg, SimpleNamespace(data=data, split=split, metrics={}), features


def child(n: int, case: str, source: Path) -> dict:
    import mlflow

    from tierlab.clv import stage as clv_stage

    case, *extra = case.split("|")
    kind, _, name = case.partition(":")
    name, _, preset = name.partition("@")
    overrides = ["clv.threads=1"] if preset == "default" else ["experiment=scale", "clv.threads=1"]
    group = {"seg": "segmentation", "clv": "clv"}.get(kind)
    if group:  # add the method or model to the configured set unless it is there
        from tierlab.config import compose

        if name not in compose(overrides)[group][{"seg": "methods", "clv": "models"}[kind]]:
            sub = "method" if kind == "seg" else "model"
            overrides.append(f"+{group}/{sub}@{group}.{sub}s.{name}={name}")
    overrides += extra
    tmp = Path(tempfile.mkdtemp(prefix="tierlab-bench-"))
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlruns.db'}")
    mlflow.set_experiment(
        experiment_id=mlflow.create_experiment("bench", artifact_location=str(tmp / "artifacts"))
    )
    cfg, data_stage, features = inputs(scaled_tables(source, n), source, overrides, tmp)
    out: dict = {"tables_gb": peak_gb()}
    with mlflow.start_run():
        if kind == "seg":
            out.update(time_segmentation_method(cfg, data_stage, features, name))
        elif kind == "clv":
            h = clv_stage.holdout_frame(
                data_stage, features, float(cfg.features.targets.discount_rate_monthly)
            )
            started = time.perf_counter()
            result = clv_stage.evaluate(name, cfg.clv.models[name], h)
            out["seconds"] = time.perf_counter() - started
            out["result"] = result.status + (f" gini={result.metrics['gini']:.3f}" if
                                             "gini" in result.metrics else f" {result.note}")  # fmt: skip
        else:
            out.update(time_pipeline(cfg, data_stage, features, tmp))
    out["peak_gb"] = peak_gb()
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def time_pipeline(cfg, data_stage, features, tmp: Path) -> dict:
    """The four modelling stages as ``tierlab run`` runs them, each timed, with the seconds of
    every segmentation method and CLV model inside its stage."""
    from tierlab.clv.stage import run_clv_stage
    from tierlab.explain.stage import run_explain_stage
    from tierlab.report.stage import run_bootstrap_stage
    from tierlab.segmentation.stage import run_segmentation_stage

    out, started = {}, time.perf_counter()
    seg = run_segmentation_stage(cfg, data_stage, features, tmp)
    out["segmentation"], started = time.perf_counter() - started, time.perf_counter()
    out["segmentation_gb"] = peak_gb()
    clv = run_clv_stage(cfg, data_stage, features, tmp)
    out["clv"], started = time.perf_counter() - started, time.perf_counter()
    out["clv_gb"] = peak_gb()
    run_explain_stage(cfg, features, seg, clv, tmp)
    out["explain"], started = time.perf_counter() - started, time.perf_counter()
    out["explain_gb"] = peak_gb()
    run_bootstrap_stage(cfg, features, seg, clv, tmp)
    out["bootstrap"] = time.perf_counter() - started
    out["seconds"] = sum(out[k] for k in ("segmentation", "clv", "explain", "bootstrap"))
    out["methods"] = {n: r.metrics.get("seconds") for n, r in seg.methods.items()}
    out["models"] = {n: r.metrics.get("seconds") for n, r in clv.models.items() if r.metrics}
    out["result"] = "; ".join(
        f"{n} gini={r.metrics['gini']:.3f}" for n, r in clv.models.items() if "gini" in r.metrics
    )
    return out


def time_segmentation_method(cfg, data_stage, features, name: str) -> dict:
    """The parts of the segmentation stage's ``evaluate`` for one method, timed apart."""
    from hydra.utils import instantiate

    from tierlab.segmentation import metrics as M
    from tierlab.segmentation.preprocess import IndicatorTransform
    from tierlab.segmentation.stage import tier_value_column
    from tierlab.segmentation.tiers import assign_tiers, order_tiers

    settings = cfg.segmentation
    X = features.indicators.set_index("customer_id")
    value = X[tier_value_column(X, list(settings.tier_value))]
    space = IndicatorTransform(features=list(settings.indicators)).fit_transform(X)
    clock, out = time.perf_counter(), {}

    def lap(key: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        out[key] = now - clock
        clock = now

    estimator = instantiate(settings.methods[name], _convert_="all").fit(X)
    lap("fit")
    tiers = assign_tiers(estimator.labels_, order_tiers(estimator.labels_, value.to_numpy()))
    lap("tiers")
    internal = M.internal_metrics(space, tiers, int(settings.silhouette_sample), int(cfg.seed))
    lap("internal")
    M.stability(
        estimator,
        X,
        int(settings.stability_bootstrap),
        int(cfg.seed),
        settings.stability_sample,
    )
    lap("stability")
    out["seconds"] = sum(out.values())
    out["result"] = f"k={estimator.n_clusters_} silhouette={internal['silhouette']:.3f}"
    return out


# --------------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------------


def run_case(n: int, case: str, source: Path, timeout: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "bench.modelling_scale", "--child", str(n), case]
    command += ["--source", str(source)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"not finished after {timeout} s (stopped)"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last[:300]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(n: int, case: str, r: dict) -> str:
    case = case.replace("|", "\\|")  # a Markdown table cell
    if "error" in r:
        return f"| {n:,} | `{case}` | – | – | – | – | – | {r['error']} |"
    keys = ("fit", "tiers", "internal", "stability", "segmentation", "clv", "explain", "bootstrap")
    parts = ", ".join(f"{k} {r[k]:.1f}" for k in keys if k in r)
    for group in ("methods", "models"):
        if group in r:
            inner = ", ".join(f"{k} {v:.1f}" for k, v in r[group].items() if v is not None)
            parts += f"; {group}: {inner}"
    stages = [
        f"{k} {r[k + '_gb']:.2f}" for k in ("segmentation", "clv", "explain") if k + "_gb" in r
    ]
    if stages:
        parts += "; peak GB after " + ", ".join(stages)
    return (
        f"| {n:,} | `{case}` | {r['seconds']:.1f} | {parts or '–'} | {r['tables_gb']:.2f} "
        f"| {r['peak_gb']:.2f} | {r.get('result', '')} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--cases", nargs="+", default=None, help="default: CASES, LARGE_CASES")
    parser.add_argument("--source", type=Path, default=None, help="a finished run's folder")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per case")
    parser.add_argument("--child", nargs=2, metavar=("N", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    source = (args.source or latest_run()).resolve()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], source)))
        return
    rows = []
    for n in args.sizes:
        scaled_tables(source, n)
        for case in args.cases or (CASES if n <= 1_000_000 else LARGE_CASES):
            rows.append(row(n, case, run_case(n, case, source, args.timeout)))
            print(rows[-1], flush=True)
    RESULTS.write_text(
        f"""# Modelling stages at scale

Written by `.venv/bin/python -m bench.modelling_scale` ({dt.date.today().isoformat()}) on:
{machine()}.  One subprocess per case, one thread each (`OMP_NUM_THREADS=1`,
`clv.threads=1`); settings of `experiment=scale` unless the case ends in `@default`.  Tables:
the default run's 20k-customer indicators and targets resampled to N customers (see the
docstring of `bench/modelling_scale.py`).  "tables" is the RSS after loading the four tables,
"peak" the child's peak RSS.  Timings on this shared machine vary by up to a third.

| customers | case | seconds | parts (s) | tables (GB) | peak RSS (GB) | result |
|---:|---|---:|---|---:|---:|---|
{chr(10).join(rows)}
"""
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
