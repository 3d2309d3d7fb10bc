"""The research report of one or more ``tierlab run`` runs, from the tracking store alone.

``build_report`` reads the runs (:mod:`tierlab.report.fetch`), lays out the sections below as
blocks (:mod:`tierlab.report.document`) and writes ``report.html`` (self-contained) and
``report.md`` (with ``report_files/``).  Nothing in the report depends on when or where it is
built: regenerating it from the same runs gives byte-identical files.

Sections: question and setup; key findings (the best two of each headline metric and whether
the bootstrap separates them); segmentation; CLV; drivers (SHAP); tuning history; allocation
(when the run has one); data; reproducibility (git commit and dirty flag, the exact commands to
rerun, data fingerprint, seeds, package versions, run ids, the full resolved config).
"""

from __future__ import annotations

import logging
import re
import shlex
import tempfile
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient

from tierlab.config import PROJECT_ROOT
from tierlab.report import fetch
from tierlab.report.document import (
    Block,
    BulletList,
    Code,
    Details,
    Heading,
    Image,
    Paragraph,
    Table,
    fmt,
    write,
)
from tierlab.tracking import TRUNCATION_MARK, mask

log = logging.getLogger(__name__)

SEGMENTATION_COLUMNS = [
    "method", "status", "n_tiers", "smallest_tier_share", "silhouette", "stability_ari",
    "value_share_tier1", "top_tier_lift", "spearman", "tier_gap", "latent_ari", "note",
]  # fmt: skip
CLV_COLUMNS = [
    "model", "status", "trained_on", "spearman", "gini", "top10_share", "top20_share", "rmse",
    "mae", "decile_wape", "truth_rmse", "tx_total_ratio", "note",
]  # fmt: skip
#: Packages named in the reproducibility block (the full list is in a collapsed part).
CORE_PACKAGES = [
    "tierlab", "numpy", "pandas", "scipy", "scikit-learn", "lightgbm", "shap", "mlflow",
    "hydra-core", "omegaconf", "optuna", "duckdb", "ibis-framework", "pyarrow", "pandera",
    "matplotlib",
]  # fmt: skip
METRIC_LABELS = {
    "spearman": "Spearman",
    "gini": "normalised Gini",
    "top20_share": "top-20 % value share",
    "rmse": "RMSE",
    "mae": "MAE",
    "top_tier_lift": "top-tier lift",
    "value_share_tier1": "top-tier value share",
}


def default_output(experiment: str, run_ids: list[str]) -> Path:
    """``reports/<experiment>/<run id>`` in the project (``<id8>+<id8>...`` for several)."""
    folder = "+".join(r[:8] for r in run_ids) if len(run_ids) > 1 else run_ids[0]
    return PROJECT_ROOT / "reports" / re.sub(r"[^A-Za-z0-9._-]+", "_", experiment) / folder


def build_report(
    tracking_uri: str,
    experiment: str,
    run_ids: list[str] | None,
    output: Path | None,
    name: str = "report",
) -> tuple[Path, Path]:
    """Write the report of ``run_ids`` (default: the experiment's latest finished run) into
    ``output`` (default: :func:`default_output`); return the paths of the HTML page and its
    Markdown twin."""
    client = MlflowClient(tracking_uri)
    runs = fetch.select_runs(client, experiment, run_ids)
    if output is None:
        output = default_output(experiment, [r.info.run_id for r in runs])
    with tempfile.TemporaryDirectory(prefix="tierlab-report-") as tmp:
        blocks: list[Block] = [Heading(1, f"tierlab report: {experiment}")]
        if len(runs) > 1:
            blocks += [
                Paragraph(f"{len(runs)} runs of the MLflow experiment `{experiment}`."),
                Table(
                    pd.DataFrame(
                        {
                            "run": [r.info.run_name for r in runs],
                            "run id": [r.info.run_id for r in runs],
                            "overrides": [r.data.tags.get("hydra_overrides", "") for r in runs],
                        }
                    )
                ),
            ]
        for i, run in enumerate(runs):
            bundle = fetch.download(client, run, Path(tmp) / run.info.run_id)
            tuning = fetch.tuning_runs(client, run, Path(tmp))
            level = 2 if len(runs) == 1 else 3
            if len(runs) > 1:
                blocks.append(Heading(2, f"Run {run.info.run_name} ({run.info.run_id[:8]})"))
            blocks += run_sections(bundle, tuning, experiment, level, prefix=f"r{i}_")
        title = f"tierlab report: {experiment}"
        return write(output, name, title, blocks)


def run_sections(
    bundle: fetch.RunBundle,
    tuning: list[fetch.RunBundle],
    experiment: str,
    level: int,
    prefix: str = "",
) -> list[Block]:
    """Every section of one run's report."""
    sections = [
        setup_section(bundle, experiment),
        findings_section(bundle),
        segmentation_section(bundle, prefix),
        clv_section(bundle, prefix),
        drivers_section(bundle, prefix),
        tuning_section(tuning, prefix),
        allocation_section(bundle, prefix),
        data_section(bundle, prefix),
        reproducibility_section(bundle, experiment),
    ]
    blocks: list[Block] = []
    for title, body in sections:
        if body:
            blocks.append(Heading(level, title))
            blocks += [_demote(b, level) for b in body]
    return blocks


def _demote(block: Block, level: int) -> Block:
    return Heading(block.level + level - 2, block.text) if isinstance(block, Heading) else block


def _image(bundle: fetch.RunBundle, artifact: str, caption: str, prefix: str) -> list[Block]:
    data = bundle.png(artifact)
    if data is None:
        return []
    return [Image(re.sub(r"[^A-Za-z0-9._-]+", "_", prefix + artifact), data, caption)]


def _columns(frame: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame | None:
    if frame is None:
        return None
    kept = frame[[c for c in columns if c in frame.columns]]
    return kept.dropna(axis=1, how="all")


# --------------------------------------------------------------------------------------------
# question, setup and findings
# --------------------------------------------------------------------------------------------


def setup_section(bundle: fetch.RunBundle, experiment: str) -> tuple[str, list[Block]]:
    config, tags, metrics, info = bundle.config, bundle.tags, bundle.metrics, bundle.run.info
    question = (config.get("report") or {}).get("question")
    started = pd.Timestamp(info.start_time, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        ("experiment", experiment),
        ("run", f"{info.run_name} ({info.run_id})"),
        ("started", started),
        ("status", info.status),
        ("data", tags.get("data_name", (config.get("data") or {}).get("name", ""))),
        ("customers at the cut-off", _count(metrics.get("features/n_customers"))),
        ("transactions", _count(metrics.get("data/n_transactions"))),
        ("calibration cut-off", tags.get("split_cutoff", "")),
        (
            "holdout window",
            f"{tags['split_holdout_months']} months, to {tags.get('split_holdout_end', '')}"
            if "split_holdout_months" in tags
            else "none",
        ),
        ("training snapshot cut-off (supervised CLV)", tags.get("training_cutoff", "")),
        ("indicators", _count(metrics.get("features/n_indicators"))),
        ("segmentation methods", ", ".join((config.get("segmentation") or {}).get("methods", {}))),
        ("CLV models", ", ".join((config.get("clv") or {}).get("models", {}))),
        ("seed", tags.get("seed", "")),
    ]
    blocks: list[Block] = []
    if question:
        blocks.append(Paragraph(f"**Question.** {question}"))
    blocks.append(Table(pd.DataFrame(rows, columns=["setting", "value"])))
    return "Question and setup", blocks


def _count(value: float | None) -> str:
    return "" if value is None else f"{int(value):,}"


def findings_section(bundle: fetch.RunBundle) -> tuple[str, list[Block]]:
    """One sentence per headline metric: the best, the runner-up, the paired difference."""
    differences = bundle.csv("bootstrap/differences.csv")
    intervals = bundle.csv("bootstrap/intervals.csv")
    if differences is None or intervals is None or differences.empty:
        return "Key findings", []
    level = int(round(100 * float(intervals["confidence"].iloc[0])))
    estimates = intervals.set_index(["kind", "name", "metric"])
    items = []
    for row in differences.itertuples(index=False):
        what = "CLV" if row.kind == "clv" else "Segmentation"
        best = estimates.loc[(row.kind, row.best, row.metric)]
        if pd.isna(row.ci_low) or pd.isna(row.ci_high):
            verdict = "interval undefined (the metric is undefined in too many resamples)"
        elif row.ci_low > 0 or row.ci_high < 0:
            verdict = f"the difference is clear at {level} %"
        else:
            verdict = f"the {level} % interval of the difference includes 0: not separable"
        ahead = (
            f"ahead in {100 * row.share_best_ahead:.0f} % of resamples"
            if pd.notna(row.share_best_ahead)
            else "never comparable"
        )
        items.append(
            f"{what}, {METRIC_LABELS.get(row.metric, row.metric)} "
            f"({'higher' if row.higher_is_better else 'lower'} is better): **{row.best}** "
            f"{_estimate(best)} vs {row.runner_up}; "
            f"difference {fmt(row.difference)} [{fmt(row.ci_low)}, {fmt(row.ci_high)}], "
            f"{ahead}; {verdict}."
        )
    n = int(intervals["n_resamples"].iloc[0])
    drawn = ""
    if (
        "resampled_customers" in intervals
        and (intervals["resampled_customers"] < intervals["n_customers"]).any()
    ):
        m, total = int(intervals["resampled_customers"].min()), int(intervals["n_customers"].max())
        drawn = (
            f" Each resample draws {m:,} customers from a seeded subsample of {m:,} of the "
            f"{total:,} and is rescaled to all of them by sqrt(m/n) "
            "(report.bootstrap.max_customers); the estimates are those of every customer. "
            "Rank metrics keep their interval widths this way; RMSE and MAE intervals on "
            "heavy-tailed values depend on the subsample and are indicative only."
        )
    return "Key findings", [
        Paragraph(
            f"Best and runner-up per headline holdout metric, with {level} % percentile "
            f"bootstrap intervals ({n:,} resamples of the customers, the same resamples for "
            "every model, so differences are paired). Models are not refitted per resample." + drawn
        ),
        BulletList(items),
    ]


def _interval_table(bundle: fetch.RunBundle, kind: str, label: str) -> list[Block]:
    intervals = bundle.csv("bootstrap/intervals.csv")
    if intervals is None:
        reason = (
            "the data set has no holdout window"
            if "split_holdout_months" not in bundle.tags
            else "none were logged with this run (report.bootstrap.n_resamples: 0, or a run "
            "made before intervals existed)"
        )
        return [Paragraph(f"No bootstrap intervals: {reason}.", css="note")]
    rows = intervals[intervals["kind"] == kind]
    if rows.empty:
        return []
    cells = rows.assign(cell=[_estimate(r) for r in rows.itertuples(index=False)])
    order = list(dict.fromkeys(rows["metric"]))
    table = cells.pivot(index="name", columns="metric", values="cell")
    table = table.reindex(index=list(dict.fromkeys(rows["name"])), columns=order).fillna("")
    level = int(round(100 * float(rows["confidence"].iloc[0])))
    table.columns = [METRIC_LABELS.get(c, c) for c in table.columns]
    caption = f"Estimate [{level} % bootstrap interval] on the holdout"
    if "resampled_customers" in rows and (rows["resampled_customers"] < rows["n_customers"]).any():
        caption += (
            f"; intervals from resamples of a seeded subsample of "
            f"{int(rows['resampled_customers'].min()):,} of {int(rows['n_customers'].max()):,} "
            "customers rescaled by sqrt(m/n) (RMSE and MAE: indicative only)"
        )
    return [Table(table.reset_index().rename(columns={"name": label}), caption)]


def _estimate(row) -> str:
    """``estimate [low, high]``; the estimate alone when the interval is undefined."""
    if pd.isna(row.estimate):
        return ""
    if pd.isna(row.ci_low) or pd.isna(row.ci_high):
        return fmt(row.estimate)
    return f"{fmt(row.estimate)} [{fmt(row.ci_low)}, {fmt(row.ci_high)}]"


# --------------------------------------------------------------------------------------------
# stages
# --------------------------------------------------------------------------------------------


def _comparison_section(
    bundle: fetch.RunBundle,
    title: str,
    kind: str,
    label: str,
    columns: list[str],
    intro: str,
    caption: str,
    images: list[tuple[str, str]],
    prefix: str,
) -> tuple[str, list[Block]]:
    """A stage's comparison table (``<kind>/comparison.csv``), its bootstrap intervals and its
    plots (``(artifact, caption)``, those the run has)."""
    table = _columns(bundle.csv(f"{kind}/comparison.csv"), columns)
    if table is None:
        return title, []
    blocks: list[Block] = [
        Paragraph(intro),
        Table(table, caption),
        *_interval_table(bundle, kind, label),
    ]
    for artifact, image_caption in images:
        blocks += _image(bundle, artifact, image_caption, prefix)
    return title, blocks


def segmentation_section(bundle: fetch.RunBundle, prefix: str) -> tuple[str, list[Block]]:
    return _comparison_section(
        bundle,
        "Segmentation",
        "segmentation",
        "method",
        SEGMENTATION_COLUMNS,
        "Each method draws tiers (1 = most valuable) from the indicators at the cut-off; "
        "value shares, lift and Spearman are measured on the holdout value. Internal "
        "metrics share one standardised space; stability is the ARI over refits on "
        "bootstrap samples.",
        "Segmentation methods compared",
        [
            ("segmentation/value_share_by_tier.png", "Holdout value share by tier"),
            ("segmentation/tier_profiles.png", "Tier profiles"),
            ("segmentation/k_selection.png", "Choice of the number of tiers"),
        ],
        prefix,
    )


def clv_section(bundle: fetch.RunBundle, prefix: str) -> tuple[str, list[Block]]:
    return _comparison_section(
        bundle,
        "Customer lifetime value",
        "clv",
        "model",
        CLV_COLUMNS,
        "Each model predicts every customer's value over the holdout window from the "
        "calibration data; supervised models learn on a training snapshot one horizon "
        "earlier. `true_expected_value` (synthetic data) is the generator's expected value: "
        "the noise floor, not a model. Value shares can exceed 1: loss-making customers "
        "make the total smaller than the sum of the profitable ones.",
        "CLV models compared on the holdout",
        [
            ("clv/gain_curves.png", "Gain (Lorenz) curves on the holdout"),
            ("clv/decile_calibration.png", "Decile calibration"),
            ("clv/transactions_by_frequency.png", "Holdout transactions by calibration frequency"),
        ],
        prefix,
    )


def drivers_section(bundle: fetch.RunBundle, prefix: str) -> tuple[str, list[Block]]:
    metrics = bundle.metrics
    methods = sorted(
        {k.split("/")[1] for k in metrics if k.startswith("explain/") and k.count("/") == 2}
    )
    blocks: list[Block] = []
    if methods:
        fidelity = pd.DataFrame(
            {
                "method": methods,
                "surrogate accuracy": [metrics.get(f"explain/{m}/surrogate_accuracy") for m in methods],
                "surrogate macro-F1": [metrics.get(f"explain/{m}/surrogate_macro_f1") for m in methods],
            }
        )  # fmt: skip
        blocks += [
            Paragraph(
                "Tiers are explained through a surrogate LightGBM classifier (indicators to "
                "tier) and SHAP; its held-out fidelity says how far to trust the drivers."
            ),
            Table(fidelity, "Surrogate fidelity (held-out customers)"),
        ]
    for artifact in bundle.pngs("explain", "tier_drivers_"):
        method = artifact.removeprefix("explain/tier_drivers_").removesuffix(".png")
        blocks += _image(bundle, artifact, f"SHAP drivers per tier: {method}", prefix)
    for artifact in bundle.files("explain", "rules_", ".csv"):
        method = artifact.removeprefix("explain/rules_").removesuffix(".csv")
        blocks.append(
            Table(bundle.csv(artifact), f"{method}: segments as rules in indicator units")
        )
    for artifact in bundle.pngs("explain", "clv_beeswarm_"):
        model = artifact.removeprefix("explain/clv_beeswarm_").removesuffix(".png")
        blocks += _image(bundle, artifact, f"SHAP values of predicted CLV: {model}", prefix)
        blocks += _image(bundle, f"explain/clv_dependence_{model}.png",
                         f"SHAP dependence of predicted CLV on its top indicators: {model}",
                         prefix)  # fmt: skip
    return "Drivers (SHAP)", blocks


def tuning_section(tuning: list[fetch.RunBundle], prefix: str) -> tuple[str, list[Block]]:
    blocks: list[Block] = []
    for bundle in tuning:
        study = bundle.tags.get("optuna_study", bundle.run_id)
        best = bundle.json("tuning/best_params.json") or {}
        metrics = bundle.metrics
        blocks += [
            Heading(3, f"Study {study}"),
            Paragraph(
                f"Tuning run `{bundle.run_id}`: {int(metrics.get('tuning/n_complete', 0))} "
                f"complete trials, best {best.get('metric', 'value')} "
                f"{fmt(metrics.get('tuning/best_value'))} (trial {best.get('trial', '?')}); "
                f"the refit scored once on the holdout: Gini "
                f"{fmt(metrics.get('clv/holdout_gini'))}, Spearman "
                f"{fmt(metrics.get('clv/holdout_spearman'))}, RMSE "
                f"{fmt(metrics.get('clv/holdout_rmse'))}."
            ),
        ]
        if best.get("params"):
            params = pd.DataFrame(
                {"parameter": list(best["params"]), "value": list(best["params"].values())}
            )
            blocks.append(Table(params, "Best parameters"))
        blocks += _image(bundle, "tuning/optimization_history.png",
                         f"Optimisation history: {study}", f"{prefix}{study}_")  # fmt: skip
    return "Tuning history", blocks


ALLOCATION_CAPTIONS = {
    "coverage_by_tier": "Service level by value tier, per policy",
    "net_gain": "Net gain per policy: under the assumed effects and under the true response",
    "sensitivity": "Policy ranking when the assumed effects are scaled (x0.5 to x1.5)",
}


def allocation_section(bundle: fetch.RunBundle, prefix: str) -> tuple[str, list[Block]]:
    table = bundle.csv("allocation/comparison.csv")
    if table is None:
        return "Allocation of service resources", []
    blocks: list[Block] = [
        Paragraph(
            "Columns named `assumed_...` rest on the service catalogue's assumed effects "
            "(conf/allocation); on synthetic data the `true_...` columns use the generator's "
            "own response to service, which the policies never see.",
            css="note",
        ),
        Table(table.drop(columns=["seconds"], errors="ignore"), "Policies compared"),
    ]
    break_even = bundle.csv("allocation/break_even.csv")
    if break_even is not None:
        blocks.append(
            Table(
                break_even,
                "Break-even: the scale of the assumed effects below which a premium level "
                "stops paying for its cost",
            )
        )
    for artifact in bundle.pngs("allocation"):
        stem = artifact.removeprefix("allocation/").removesuffix(".png")
        caption = ALLOCATION_CAPTIONS.get(stem, stem.replace("_", " "))
        blocks += _image(bundle, artifact, caption, prefix)
    return "Allocation of service resources", blocks


def data_section(bundle: fetch.RunBundle, prefix: str) -> tuple[str, list[Block]]:
    blocks = _image(bundle, "data/realism.png", "Data realism checks", prefix)
    blocks += _image(bundle, "features/distributions.png", "Indicator distributions", prefix)
    return "Data and indicators", blocks


# --------------------------------------------------------------------------------------------
# reproducibility
# --------------------------------------------------------------------------------------------


def _seeds(config: dict, path: str = "") -> list[tuple[str, object]]:
    found = []
    for key, value in config.items():
        name = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            found += _seeds(value, name)
        elif "seed" in str(key).lower() or "random_state" in str(key).lower():
            found.append((name, value))
    return found


def reproducibility_section(bundle: fetch.RunBundle, experiment: str) -> tuple[str, list[Block]]:
    tags = bundle.tags
    commit = tags.get("git_commit", "unknown")
    dirty = tags.get("git_dirty", "unknown")
    rows = [
        ("git commit", commit),
        ("uncommitted changes (dirty)", dirty),
        ("tierlab version", tags.get("tierlab_version", "")),
        ("data", tags.get("data_name", "")),
        ("data fingerprint", tags.get("data_fingerprint", "")),
        ("MLflow experiment", experiment),
        ("MLflow run id", bundle.run_id),
    ]
    blocks: list[Block] = [Table(pd.DataFrame(rows, columns=["item", "value"]))]
    if dirty != "false":
        blocks.append(
            Paragraph(
                "The working tree had uncommitted changes (or no git) when this run started: "
                "checking out the commit does not reproduce it exactly.",
                css="note",
            )
        )
    overrides = tags.get("hydra_overrides")
    rerun = [f"git checkout {commit}", "make install"]
    if overrides is not None:
        # the tag is the command line's overrides, already quoted for a POSIX shell
        rerun.append(f".venv/bin/tierlab run {mask(overrides)}".rstrip())
        rerun.append(f".venv/bin/tierlab report --experiment {shlex.quote(experiment)}")
        blocks += [
            Paragraph(
                "To rerun exactly this experiment (same code, config and seed give the same "
                "numbers; the data fingerprint of the new run must match the one above):"
            ),
            Code("\n".join(rerun), "bash"),
        ]
        if overrides.endswith(TRUNCATION_MARK):
            blocks.append(
                Paragraph("The recorded overrides were cut at MLflow's tag limit.", css="note")
            )
    else:
        blocks.append(
            Paragraph(
                "This run was started from Python (a test or a notebook), not from the "
                "command line, so no overrides were recorded: rerun it by composing the "
                "resolved config below (`tierlab.config.compose`) at the same commit.",
                css="note",
            )
        )
    seeds = _seeds(bundle.config)
    if seeds:
        blocks.append(
            Table(
                pd.DataFrame([(k, str(v)) for k, v in seeds], columns=["config key", "seed"]),
                "Seeds (resolved; None = not random or not set)",
            )
        )
    environment = bundle.json("environment/packages.json")
    if environment:
        packages = {k.lower(): (k, v) for k, v in environment["packages"].items()}
        core = [packages[p] for p in CORE_PACKAGES if p in packages]
        blocks.append(
            Table(
                pd.DataFrame(
                    [("python", environment["python"]), *core], columns=["package", "version"]
                ),
                f"Package versions ({environment['platform']})",
            )
        )
        every = "\n".join(f"{k}=={v}" for k, v in environment["packages"].items())
        blocks.append(Details("All installed packages", [Code(every)]))
    else:
        blocks.append(Paragraph("Package versions were not logged with this run.", css="note"))
    ids = pd.DataFrame(
        [(bundle.run.info.run_name, bundle.run_id, bundle.run.info.status, "parent")]
        + [(c.info.run_name, c.info.run_id, c.info.status, "child") for c in bundle.children],
        columns=["run", "run id", "status", "role"],
    )
    blocks.append(Details("MLflow run ids", [Table(ids)]))
    if bundle.config_text:
        blocks.append(Details("Full resolved config", [Code(mask(bundle.config_text), "yaml")]))
    return "Reproducibility", blocks
