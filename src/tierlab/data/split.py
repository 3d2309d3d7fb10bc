"""The calibration/holdout split: one cut-off date, used by every later stage.

Calibration covers everything up to and including the cut-off day; the holdout window covers the
``holdout_months`` calendar months after it.  Features, tuning and model selection may only see
calibration rows (:meth:`CalibrationSplit.calibration`); targets come from the holdout
(:meth:`CalibrationSplit.holdout`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class CalibrationSplit:
    """A cut-off date and a holdout window.

    Attributes
    ----------
    cutoff
        Last day of the calibration period (inclusive, normalised to midnight).
    holdout_end
        Last day of the holdout window (inclusive).
    holdout_months
        Length of the holdout window in calendar months.
    """

    cutoff: pd.Timestamp
    holdout_end: pd.Timestamp
    holdout_months: int

    @classmethod
    def from_config(
        cls,
        cutoff: str | pd.Timestamp | None,
        holdout_months: int,
        data_start: pd.Timestamp | None,
        data_end: pd.Timestamp | None,
    ) -> CalibrationSplit:
        """Build the split from ``conf/split`` values and the data's time range.

        With ``cutoff=None`` the cut-off is placed ``holdout_months`` before the data end, so the
        holdout window ends on the last day of the data.
        """
        if holdout_months < 1:
            raise ValueError(f"split.holdout_months={holdout_months} should be >= 1")
        if data_end is None:
            raise ValueError("this data set has no time axis (no data_end); it cannot be split")
        data_end = pd.Timestamp(data_end).normalize()
        if cutoff is None:
            cut = shift_months(data_end, -holdout_months)
        else:
            try:
                cut = pd.Timestamp(cutoff).normalize()
            except (ValueError, TypeError) as exc:
                raise ValueError(f"split.cutoff={cutoff!r} is not a date: {exc}") from exc
        holdout_end = shift_months(cut, holdout_months)
        if data_start is not None and cut <= pd.Timestamp(data_start):
            raise ValueError(
                f"split.cutoff={cut.date()} should be after the data start "
                f"{pd.Timestamp(data_start).date()}: the calibration period would be empty"
            )
        if holdout_end > data_end:
            raise ValueError(
                f"holdout window {cut.date()}..{holdout_end.date()} "
                f"({holdout_months} months) runs past the data end {data_end.date()}; "
                "move split.cutoff earlier or shorten split.holdout_months"
            )
        return cls(cutoff=cut, holdout_end=holdout_end, holdout_months=int(holdout_months))

    def training_split(
        self, data_start: pd.Timestamp | None, history_months: int = 0
    ) -> CalibrationSplit | None:
        """The same split moved back by one holdout length, wholly inside calibration.

        Its cut-off is ``holdout_months`` before this cut-off and its holdout window ends at this
        cut-off, so supervised models learn "indicators at a cut-off -> value over the next
        window" from calibration data alone and are then applied at this cut-off.  ``None`` when
        the data do not cover the ``history_months`` before that cut-off (the longest indicator
        window: with less, training indicators would be cut short while those applied at this
        cut-off are not).
        """
        cut = shift_months(self.cutoff, -self.holdout_months)
        first_day = cut
        if history_months > 0:
            first_day = shift_months(cut, -history_months) + pd.Timedelta(days=1)
        if data_start is not None and first_day < pd.Timestamp(data_start).normalize():
            return None
        return CalibrationSplit(cut, self.cutoff, self.holdout_months)

    @property
    def calibration_end(self) -> pd.Timestamp:
        """First instant after the calibration period (exclusive upper bound)."""
        return self.cutoff + pd.Timedelta(days=1)

    @property
    def holdout_stop(self) -> pd.Timestamp:
        """First instant after the holdout window (exclusive upper bound)."""
        return self.holdout_end + pd.Timedelta(days=1)

    def calibration(self, frame: pd.DataFrame, time_col: str = "timestamp") -> pd.DataFrame:
        """Rows strictly before the end of the cut-off day."""
        return frame.loc[frame[time_col] < self.calibration_end]

    def holdout(self, frame: pd.DataFrame, time_col: str = "timestamp") -> pd.DataFrame:
        """Rows inside the holdout window."""
        t = frame[time_col]
        return frame.loc[(t >= self.calibration_end) & (t < self.holdout_stop)]

    def as_dict(self) -> dict[str, str | int]:
        """Plain values for logging."""
        return {
            "cutoff": str(self.cutoff.date()),
            "holdout_end": str(self.holdout_end.date()),
            "holdout_months": self.holdout_months,
        }


def shift_months(day: pd.Timestamp, months: int) -> pd.Timestamp:
    """Shift by calendar months; a month-end date stays a month end (Jun 30 + 6 = Dec 31)."""
    if day.is_month_end:
        return day + pd.offsets.MonthEnd(months)
    return day + pd.DateOffset(months=months)
