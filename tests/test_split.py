"""The calibration/holdout split: placement of the cut-off, windows, and clear errors."""

import pandas as pd
import pytest

from tierlab.data.split import CalibrationSplit

START, END = pd.Timestamp("2023-01-01"), pd.Timestamp("2025-12-31")


def test_default_cutoff_ends_holdout_at_data_end():
    split = CalibrationSplit.from_config(None, 12, START, END)
    assert split.cutoff == pd.Timestamp("2024-12-31")
    assert split.holdout_end == END
    assert split.as_dict() == {
        "cutoff": "2024-12-31",
        "holdout_end": "2025-12-31",
        "holdout_months": 12,
    }


def test_explicit_cutoff_and_windows_do_not_overlap():
    split = CalibrationSplit.from_config("2024-06-30", 6, START, END)
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                [
                    "2024-06-30 23:59:59",
                    "2024-07-01 00:00:00",
                    "2024-12-31 12:00:00",
                    "2025-01-01 00:00:00",
                ]
            )
        }
    )
    assert split.calibration(frame).index.tolist() == [0]
    assert split.holdout(frame).index.tolist() == [1, 2]


@pytest.mark.parametrize(
    ("cutoff", "months", "match"),
    [
        (None, 0, r"holdout_months=0 should be >= 1"),
        (None, 40, r"should be after the data start"),
        ("2025-06-30", 12, r"runs past the data end 2025-12-31"),
        ("not a date", 12, r"split.cutoff='not a date' is not a date"),
    ],
)
def test_bad_split_configs_are_named(cutoff, months, match):
    with pytest.raises(ValueError, match=match):
        CalibrationSplit.from_config(cutoff, months, START, END)


def test_data_without_time_axis_cannot_be_split():
    with pytest.raises(ValueError, match="no time axis"):
        CalibrationSplit.from_config(None, 12, None, None)
