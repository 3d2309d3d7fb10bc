"""The data stage of a run: load or generate, validate, split, and report what was loaded."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
from omegaconf import DictConfig, OmegaConf

from tierlab.data import load_data
from tierlab.data.out_of_core import customer_sample
from tierlab.data.realism import check_targets, flat_metrics, plot_realism, realism_metrics
from tierlab.data.split import CalibrationSplit
from tierlab.data.tables import BankData

log = logging.getLogger(__name__)


@dataclass
class DataStageResult:
    """What later stages receive from the data stage."""

    data: BankData
    split: CalibrationSplit | None
    metrics: dict[str, float]


def run_data_stage(cfg: DictConfig, output_dir: Path) -> DataStageResult:
    """Load ``cfg.data``, split it by ``cfg.split``, and log sizes, shape metrics and plots.

    Logged to the active MLflow run: tag ``data_fingerprint``; metrics ``data/n_<table>``, the
    realism metrics ``data/...`` and ``data/realism_failures``; artifacts ``data/data_summary.json``
    and (for data with a profitability table) ``data/realism.png``.
    """
    data = load_data(cfg.data)
    fingerprint = data.fingerprint()
    mlflow.set_tag("data_fingerprint", fingerprint)
    mlflow.set_tag("data_name", data.name)
    split = None
    if data.data_end is not None:
        split = CalibrationSplit.from_config(
            cfg.split.cutoff, int(cfg.split.holdout_months), data.data_start, data.data_end
        )
        mlflow.set_tags({f"split_{k}": str(v) for k, v in split.as_dict().items()})
    rows = data.summary()
    metrics = {f"data/n_{name}": float(n) for name, n in rows.items()}
    shaped = data
    if data.on_disk:  # out of core: realism on a seeded sample of customers, in memory
        n = int(cfg.data.get("realism_sample", 50_000))
        shaped = customer_sample(data, n, int(cfg.seed))
        log.info(
            "data: realism metrics on a sample of %d of %d customers (data.realism_sample)",
            len(shaped.customers),
            len(data.customers),
        )
        metrics["data/realism_sample"] = float(len(shaped.customers))
    shape = realism_metrics(shaped)
    measured = flat_metrics(shape)
    for key in sorted(k for k, v in measured.items() if not math.isfinite(v)):
        log.info("%s is not measurable on this data set (too few customers); not logged", key)
    metrics.update({k: v for k, v in measured.items() if math.isfinite(v)})
    targets = OmegaConf.to_container(cfg.data.targets) if "targets" in cfg.data else {}
    failures = check_targets(shape, targets)
    if targets:
        metrics["data/realism_failures"] = float(len(failures))
    for failure in failures:
        log.warning("data set %s is outside its realism target: %s", data.name, failure)
    mlflow.log_metrics(metrics)

    output_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "name": data.name,
        "fingerprint": fingerprint,
        "rows": rows,
        "on_disk": sorted(data.on_disk),
        "files": {k: str(v) for k, v in data.files.items()},
        "data_start": str(data.data_start.date()) if data.data_start is not None else None,
        "data_end": str(data.data_end.date()) if data.data_end is not None else None,
        "split": split.as_dict() if split else None,
        "realism": shape,
        "realism_failures": failures,
    }
    (output_dir / "data_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    mlflow.log_artifact(str(output_dir / "data_summary.json"), "data")
    if shaped.profitability is not None:
        fig = plot_realism(shaped, targets, shape)
        if shaped is not data:
            fig.suptitle(
                f"Realism of data set '{data.name}' (a seeded sample of "
                f"{len(shaped.customers):,} of {len(data.customers):,} customers)"
            )
        fig.savefig(output_dir / "realism.png", dpi=110)
        plt.close(fig)
        mlflow.log_artifact(str(output_dir / "realism.png"), "data")
    log.info("data %s (%s): %s", data.name, fingerprint, rows)
    return DataStageResult(data=data, split=split, metrics=metrics)
