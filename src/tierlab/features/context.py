"""What an indicator definition needs besides the tables: the cut-off and the conventions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ibis
import pandas as pd

from tierlab.data.split import shift_months
from tierlab.features.btyd import unit_days
from tierlab.features.dictionary import Indicator
from tierlab.features.engine import epoch

DAY = 86400.0

#: A family's output: a table keyed by ``customer_id`` and the dictionary of its columns.
Family = tuple[ibis.Table, list[Indicator]]


@dataclass(frozen=True)
class Context:
    """The cut-off and the conventions of ``conf/features`` that definitions use."""

    cutoff: pd.Timestamp
    windows_months: tuple[int, ...]
    btyd_time_unit: str
    system_types: tuple[str, ...]
    salary_types: tuple[str, ...]
    digital_channels: tuple[str, ...]
    product_families: Mapping[str, Sequence[str]]
    ordinal: Mapping[str, Sequence[str]]
    one_hot: tuple[str, ...]
    max_categories: int

    @classmethod
    def from_config(cls, features: Mapping, cutoff: pd.Timestamp) -> Context:
        """Build from the ``conf/features`` node and the split's cut-off day."""
        return cls(
            cutoff=pd.Timestamp(cutoff).normalize(),
            windows_months=tuple(int(w) for w in features["windows_months"]),
            btyd_time_unit=str(features["btyd_time_unit"]),
            system_types=tuple(features["system_types"]),
            salary_types=tuple(features["salary_types"]),
            digital_channels=tuple(features["digital_channels"]),
            product_families={k: list(v) for k, v in features["product_families"].items()},
            ordinal={k: list(v) for k, v in features["ordinal"].items()},
            one_hot=tuple(features["one_hot"]),
            max_categories=int(features["max_categories"]),
        )

    def __post_init__(self) -> None:
        if not self.windows_months or min(self.windows_months) < 1:
            raise ValueError(
                f"features.windows_months={list(self.windows_months)} should be months >= 1"
            )
        unit_days(self.btyd_time_unit)  # raises on an unknown unit

    @property
    def end_s(self) -> int:
        """Epoch seconds of the first instant after the cut-off day (exclusive bound)."""
        return epoch(self.cutoff) + 86400

    def start_s(self, months: int) -> int:
        """Epoch seconds of the first day of the ``months``-month window ending at the cut-off."""
        return epoch(shift_months(self.cutoff, -months)) + 86400

    @property
    def long_window(self) -> int:
        """The longest window, used for activity, trends and trailing profit."""
        return max(self.windows_months)
