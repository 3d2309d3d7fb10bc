"""Tests of the maximum-likelihood helpers shared by the CLV models (tierlab.clv.mle).

Input validation is exercised through the models' ``fit`` in test_clv_bgnbd.py and
test_clv_gammagamma.py; here: row compression and the ``signed`` columns of validate_summary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tierlab.clv import mle


def _rows(seed: int = 0) -> list[np.ndarray]:
    """Columns with many repeated rows: integer counts, days in weeks, a coarse float."""
    rng = np.random.default_rng(seed)
    n = 5000
    return [
        rng.poisson(2.0, n).astype(float),
        rng.integers(0, 60, n) / 7.0,
        rng.choice([0.0, 0.5, 2.25, 1e6], n),
    ]


def _reference(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.DataFrame({j: c for j, c in enumerate(cols)})
    counts = frame.groupby(list(frame.columns), sort=True).size()
    return counts.index.to_frame(index=False).to_numpy(), counts.to_numpy()


@pytest.mark.parametrize("max_key", [2**62, 50])
def test_compress_matches_a_sorted_group_by(monkeypatch, max_key):
    """Unique rows in lexicographic order with their counts, as a pandas group-by gives them;
    max_key=50 forces the re-coding of the combined key that keeps it within int64."""
    monkeypatch.setattr(mle, "_MAX_KEY", max_key)
    cols = _rows()
    rows, counts = mle.compress(*cols)
    uniq, expected = _reference(cols)
    np.testing.assert_array_equal(np.column_stack(rows), uniq)
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == len(cols[0])


def test_compress_single_row():
    rows, counts = mle.compress(np.array([3.0]), np.array([1.5]))
    assert [r.tolist() for r in rows] == [[3.0], [1.5]] and counts.tolist() == [1.0]


def test_validate_summary_signed_columns():
    frame = pd.DataFrame({"frequency": [1.0, 2.0], "monetary_value": [-3.0, 4.0]})
    out = mle.validate_summary(frame, ("frequency", "monetary_value"), signed=("monetary_value",))
    assert out["monetary_value"].tolist() == [-3.0, 4.0]
    with pytest.raises(ValueError, match="column 'monetary_value' has 1 negative values"):
        mle.validate_summary(frame, ("frequency", "monetary_value"))
    with pytest.raises(ValueError, match="column 'monetary_value' has 1 missing or non-finite"):
        mle.validate_summary(
            frame.assign(monetary_value=[-np.inf, 1.0]),
            ("frequency", "monetary_value"),
            signed=("monetary_value",),
        )
