"""The one entry point: ``tierlab run [overrides]`` or ``python -m tierlab.run [overrides]``.

``main(cfg)`` only calls :func:`run`; tests import :func:`run` and pass a composed config
(:func:`tierlab.config.compose`).  Each call is one MLflow parent run.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path

import hydra
import mlflow
from omegaconf import DictConfig

from tierlab import tracking
from tierlab.clv.stage import run_clv_stage
from tierlab.config import CONF_DIR, prepare_output_dir, register_resolvers
from tierlab.data.stage import run_data_stage
from tierlab.explain.stage import run_explain_stage
from tierlab.features.stage import run_features_stage
from tierlab.report.build import build_report
from tierlab.report.stage import run_bootstrap_stage
from tierlab.segmentation.stage import run_segmentation_stage

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, float]:
    """Run every pipeline stage that exists on ``cfg`` and return the metric dict.

    Stages so far: data (load/generate, validate, split, realism report), features (value
    indicators as of the cut-off, holdout targets, data dictionary), segmentation (every
    configured method's tiers and their comparison), CLV (every configured model's holdout
    predictions and their comparison) and explain (SHAP drivers of predicted CLV and of every
    method's tiers).  The returned dict
    has slash-namespaced keys (``data/n_customers``, ...) shared with MLflow and the report.
    """
    output_dir = prepare_output_dir(cfg)
    run_name = cfg.tracking.run_name or f"{cfg.task_name}-{cfg.data.name}"
    with tracking.parent_run(cfg, run_name) as active:
        mlflow.set_tag(tracking.COMMAND_TAG, "run")  # what `tierlab report` looks for
        metrics: dict[str, float] = {}
        data_stage = run_data_stage(cfg, output_dir)
        metrics.update(data_stage.metrics)
        features = run_features_stage(cfg, data_stage, output_dir)
        metrics.update(features.metrics)
        segmentation = run_segmentation_stage(cfg, data_stage, features, output_dir)
        metrics.update(segmentation.metrics)
        clv = run_clv_stage(cfg, data_stage, features, output_dir)
        if clv is not None:
            metrics.update(clv.metrics)
        explain = run_explain_stage(cfg, features, segmentation, clv, output_dir)
        metrics.update(explain.metrics)
        run_bootstrap_stage(cfg, features, segmentation, clv, output_dir)
        if cfg.get("allocation") is not None:
            from tierlab.allocation.stage import run_allocation_stage

            allocation = run_allocation_stage(
                cfg, data_stage, features, segmentation, clv, output_dir
            )
            metrics.update(allocation.metrics)
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        mlflow.log_artifact(str(output_dir / "metrics.json"))
    log.info("outputs: %s", output_dir)
    log.info("MLflow run %s: %s", active.info.run_id, tracking.run_url(active))
    if cfg.report.write_after_run:
        try:
            write_run_report(cfg, active.info.run_id, output_dir / "report")
        except Exception:  # the run is tracked and FINISHED: a report bug must not undo it
            log.exception(
                "the report was not written; the run is complete, rebuild its report with: "
                "tierlab report --experiment %s --run-id %s",
                cfg.tracking.experiment_name,
                active.info.run_id,
            )
    return metrics


def write_run_report(cfg: DictConfig, run_id: str, folder: Path) -> Path:
    """The run's research report, built from the tracking store like `tierlab report` does,
    written to ``folder`` and logged to the run as ``report/``; prints its path."""
    html, _ = build_report(
        str(cfg.tracking.uri), str(cfg.tracking.experiment_name), [run_id], folder
    )
    mlflow.MlflowClient(str(cfg.tracking.uri)).log_artifacts(run_id, str(folder), "report")
    print(f"report: {html}")
    return html


register_resolvers()


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the optimised metric (for sweeps) when one is configured."""
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a scheduler stopping the job) unwinds like an error: the run ends FAILED.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    metrics = run(cfg)
    if cfg.optimized_metric:
        return metrics[cfg.optimized_metric]
    return None


if __name__ == "__main__":
    main()
