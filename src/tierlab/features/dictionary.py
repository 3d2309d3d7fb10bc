"""The data dictionary: every indicator's name, family, formula in words, unit and source."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import pandas as pd

FAMILIES = (
    "rfm",
    "btyd",
    "balances",
    "products",
    "relationship",
    "profitability",
    "credit",
    "demographics",
    "attributes",
)


@dataclass(frozen=True)
class Indicator:
    """One value indicator, as documented in the generated data dictionary.

    Attributes
    ----------
    name
        Column name in the indicator frame.
    family
        One of :data:`FAMILIES`.
    formula
        How it is computed, in words, as of the cut-off.
    unit
        ``days``, ``count``, ``currency``, ``share`` (0..1), ``flag`` (0/1), ...
    source
        The input table(s) it reads.
    """

    name: str
    family: str
    formula: str
    unit: str
    source: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"indicator {self.name!r}: family {self.family!r} not in {FAMILIES}")

    @property
    def fill(self) -> float | None:
        """Value for a customer without source rows: 0 for counts, flags and sums of money;
        missing (NaN) for means, ratios, times and recorded attributes, which are undefined."""
        undefined = self.name.startswith(("monetary_mean_", "btyd_"))
        return 0.0 if self.unit in ("count", "flag", "currency") and not undefined else None


def dictionary_frame(indicators: Iterable[Indicator]) -> pd.DataFrame:
    """The data dictionary as a table, one row per indicator, in column order."""
    rows = [{**asdict(i), "if_no_rows": "0" if i.fill == 0 else "missing"} for i in indicators]
    return pd.DataFrame(rows, columns=[*Indicator.__annotations__, "if_no_rows"])


def dictionary_markdown(indicators: Iterable[Indicator]) -> str:
    """The data dictionary as a Markdown table (for the report and MLflow)."""
    frame = dictionary_frame(indicators)
    rows = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for rec in frame.itertuples(index=False):
        rows.append("| `" + rec[0] + "` | " + " | ".join(str(v) for v in rec[1:]) + " |")
    return "\n".join(rows) + "\n"
