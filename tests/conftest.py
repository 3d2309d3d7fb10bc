"""Shared test fixtures.

Tests marked ``shared_data`` read the real data sets in ``../shared/data`` (beside the project);
they are skipped, with the reason, on machines that do not have that folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tierlab.config import PROJECT_ROOT

SHARED_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"
MISSING_REASON = f"real data sets not found: {SHARED_DATA_DIR} does not exist"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SHARED_DATA_DIR.is_dir():
        return
    skip = pytest.mark.skip(reason=MISSING_REASON)
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared_data_dir() -> Path:
    """``../shared/data``; skips the test when it is absent."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(MISSING_REASON)
    return SHARED_DATA_DIR
