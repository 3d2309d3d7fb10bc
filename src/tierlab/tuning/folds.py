"""Validation folds for tuning, wholly inside the calibration window: the holdout is never seen.

Two kinds (``tuning.folds.kind``):

* ``time``: rolling origins.  Fold ``j`` validates at origin ``v_j = c - H - j * step`` (``c`` the
  cut-off, ``H`` the holdout length, ``step`` = ``folds.step_months`` or ``H``): indicators at
  ``v_j``, value over ``(v_j, v_j + H]``, which ends at or before the cut-off.  The model learns
  from the snapshot at ``t_j = v_j - H``, whose target window ends at ``v_j``, so nothing after
  the validation origin is used for training.  Snapshots are built by
  :func:`tierlab.features.stage.training_snapshot`; the kind is available only when the data
  cover the longest indicator window before the earliest training origin.
* ``customers``: a seeded K-fold over the customers of the training snapshot (indicators one
  holdout length before the cut-off, value over the window ending at the cut-off).

``auto`` takes ``time`` when the data cover its history and ``customers`` otherwise; the kind
used and the reason are returned (and logged by the caller).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from sklearn.model_selection import KFold

from tierlab.data.split import CalibrationSplit, shift_months
from tierlab.data.stage import DataStageResult
from tierlab.features.engine import connect, tables
from tierlab.features.stage import FeaturesResult, TrainingSnapshot, training_snapshot

log = logging.getLogger(__name__)
KINDS = ("auto", "time", "customers")


@dataclass
class Fold:
    """One validation fold: frames indexed by ``customer_id``; ``y_*`` None without targets.

    ``*_origin`` is the date the indicators are computed at and ``*_target_end`` the last day
    of the window whose value is the target.
    """

    name: str
    X_train: pd.DataFrame = field(repr=False)
    y_train: np.ndarray | None = field(repr=False)
    X_val: pd.DataFrame = field(repr=False)
    y_val: np.ndarray | None = field(repr=False)
    train_origin: pd.Timestamp | None
    train_target_end: pd.Timestamp | None
    val_origin: pd.Timestamp | None
    val_target_end: pd.Timestamp | None


@dataclass
class Folds:
    """The folds, their kind (``time`` or ``customers``) and why that kind was used."""

    kind: str
    reason: str
    folds: list[Fold]

    def table(self) -> pd.DataFrame:
        """One row per fold: its windows and sizes (logged as ``tuning/folds.csv``)."""
        rows = []
        for fold in self.folds:
            row = {"fold": fold.name, "n_train": len(fold.X_train), "n_val": len(fold.X_val)}
            for key in ("train_origin", "train_target_end", "val_origin", "val_target_end"):
                value = getattr(fold, key)
                row[key] = None if value is None else str(pd.Timestamp(value).date())
            rows.append(row)
        return pd.DataFrame(rows)


def build_folds(
    settings: DictConfig,
    cfg: DictConfig,
    data_stage: DataStageResult,
    features: FeaturesResult,
) -> Folds:
    """The validation folds of ``tuning.folds`` (``settings``) for this data set.

    Raises
    ------
    ValueError
        On an unknown kind, too few folds, ``kind=time`` without enough history, or no
        calibration-only training data at all.
    """
    kind, n_folds = str(settings.kind), int(settings.n_folds)
    if kind not in KINDS:
        raise ValueError(f"tuning.folds.kind={kind!r} should be one of {list(KINDS)}")
    split = data_stage.split
    reference = [c for c in features.indicators.columns if c != "customer_id"]
    if kind in ("auto", "time"):
        plan, why_not = _time_plan(settings, cfg, data_stage)
        if plan is not None:
            folds = _time_folds(plan, cfg, data_stage, features, reference)
            step = int(settings.step_months or split.holdout_months)
            reason = (
                f"time: {n_folds} rolling origin(s) from {plan[0][1].date()} back every {step} "
                f"months; the data cover the indicator history before the earliest training "
                f"origin {plan[-1][0].date()}"
            )
            return _checked(Folds("time", reason, folds), split)
        if kind == "time":
            raise ValueError(f"tuning.folds.kind=time is not possible: {why_not}")
        reason = f"customers (auto: {why_not})"
    else:
        reason = "customers (tuning.folds.kind=customers)"
    if n_folds < 2:
        raise ValueError(f"tuning.folds.n_folds={n_folds} should be >= 2 for customer folds")
    snapshot = features.training
    if snapshot is not None:
        X = snapshot.indicators.set_index("customer_id").reindex(columns=reference)
        y = _value(snapshot, X.index)
        origin, end = snapshot.split.cutoff, snapshot.split.holdout_end
    elif cfg.tuning.kind == "segmentation":
        # no time axis or too little history: unsupervised folds on the cut-off indicators
        X, y, origin, end = features.indicators.set_index("customer_id"), None, None, None
        reason += "; no training snapshot, so no target: internal metrics only"
    else:
        raise ValueError(
            "tuning needs the training snapshot (features.training_snapshot=true and data that "
            "cover one holdout length plus the longest indicator window before the cut-off); "
            "without it no calibration-only target exists to validate a CLV model on"
        )
    if n_folds > len(X):
        raise ValueError(f"tuning.folds.n_folds={n_folds} should be <= {len(X)} customers")
    splitter = KFold(n_splits=n_folds, shuffle=True, random_state=int(cfg.seed))
    folds = []
    for i, (train, val) in enumerate(splitter.split(X)):
        folds.append(
            Fold(
                f"customers-{i + 1}of{n_folds}",
                X.iloc[train],
                None if y is None else y[train],
                X.iloc[val],
                None if y is None else y[val],
                origin,
                end,
                origin,
                end,
            )
        )
    return _checked(Folds("customers", reason, folds), split)


def _time_plan(
    settings: DictConfig, cfg: DictConfig, data_stage: DataStageResult
) -> tuple[list[tuple[pd.Timestamp, pd.Timestamp]] | None, str]:
    """``[(train_origin, val_origin), ...]`` most recent first, or None and the reason."""
    split = data_stage.split
    if split is None:
        return None, "the data set has no time axis"
    n_folds, H = int(settings.n_folds), split.holdout_months
    if n_folds < 1:
        return None, f"tuning.folds.n_folds={n_folds} should be >= 1"
    if not cfg.features.training_snapshot:
        return None, "features.training_snapshot=false"
    step = int(settings.step_months or H)
    if step < 1:
        raise ValueError(f"tuning.folds.step_months={step} should be >= 1 (or null = {H})")
    history = max(int(w) for w in cfg.features.windows_months)
    start = data_stage.data.data_start
    plan = []
    for j in range(n_folds):
        val_origin = shift_months(split.cutoff, -H - j * step)
        train_origin = shift_months(val_origin, -H)
        if _pseudo_split(train_origin, H).training_split(start, history) is None:
            return None, (
                f"time folds need {history} months of indicator history before the training "
                f"origin {train_origin.date()} of fold {j + 1} of n_folds={n_folds} "
                f"(holdout {H} months, step {step} months); the data start at "
                f"{pd.Timestamp(start).date()}"
            )
        plan.append((train_origin, val_origin))
    return plan, ""


def _time_folds(plan, cfg, data_stage, features, reference) -> list[Fold]:
    settings = OmegaConf.to_container(cfg.features, resolve=True)
    H, start = data_stage.split.holdout_months, data_stage.data.data_start
    con = connect(settings["engine"], settings["engine_options"])
    sources = tables(con, data_stage.data)
    snapshots: dict[pd.Timestamp, TrainingSnapshot] = {}
    if features.training is not None:
        snapshots[features.training.split.cutoff] = features.training

    def snapshot(origin: pd.Timestamp) -> TrainingSnapshot:
        if origin not in snapshots:
            built = training_snapshot(con, sources, settings, _pseudo_split(origin, H), start)
            if built is None:  # _time_plan checked the history: this cannot happen
                raise RuntimeError(f"no snapshot at {origin.date()} despite enough history")
            snapshots[origin] = built
        return snapshots[origin]

    folds = []
    for j, (train_origin, val_origin) in enumerate(plan):
        train, val = snapshot(train_origin), snapshot(val_origin)
        X_train = train.indicators.set_index("customer_id").reindex(columns=reference)
        X_val = val.indicators.set_index("customer_id").reindex(columns=reference)
        folds.append(
            Fold(
                f"time-{j + 1}of{len(plan)}",
                X_train,
                _value(train, X_train.index),
                X_val,
                _value(val, X_val.index),
                train.split.cutoff,
                train.split.holdout_end,
                val.split.cutoff,
                val.split.holdout_end,
            )
        )
    return folds


def _pseudo_split(origin: pd.Timestamp, H: int) -> CalibrationSplit:
    """A split whose training snapshot is at ``origin`` (its cut-off is ``origin + H``)."""
    cut = shift_months(origin, H)
    return CalibrationSplit(cut, shift_months(cut, H), H)


def _value(snapshot: TrainingSnapshot, index: pd.Index) -> np.ndarray:
    targets = snapshot.targets.set_index("customer_id")["holdout_value"]
    return targets.reindex(index).to_numpy(dtype="float64")


def _checked(folds: Folds, split: CalibrationSplit | None) -> Folds:
    """Refuse folds whose target window ends after the cut-off or whose training target
    window ends after the validation origin."""
    for fold in folds.folds:
        if split is not None and fold.val_target_end is not None:
            if fold.val_target_end > split.cutoff or fold.train_target_end > split.cutoff:
                raise RuntimeError(
                    f"fold {fold.name}: target window ends {fold.val_target_end.date()}, after "
                    f"the cut-off {split.cutoff.date()}: tuning would see the holdout"
                )
            if folds.kind == "time" and fold.train_target_end > fold.val_origin:
                raise RuntimeError(
                    f"fold {fold.name}: training target ends {fold.train_target_end.date()}, "
                    f"after the validation origin {fold.val_origin.date()}"
                )
    log.info("tuning folds: %s", folds.reason)
    return folds
