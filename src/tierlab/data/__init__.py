"""Data stage: load or generate a bank data set, validate it, split calibration from holdout."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from tierlab.data.split import CalibrationSplit
from tierlab.data.tables import BankData


def load_data(data_cfg: DictConfig) -> BankData:
    """Build the data source named by ``cfg.data`` (a ``_target_`` node) and load it.

    Every source (the synthetic generator, the CSV/Parquet table loader) has a ``load()``
    method returning a validated :class:`BankData`.
    """
    source = instantiate(data_cfg, _convert_="all")
    return source.load()


__all__ = ["BankData", "CalibrationSplit", "load_data"]
