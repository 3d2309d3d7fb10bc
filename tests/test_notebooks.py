"""Every notebook in notebooks/ executes top to bottom on small data (so none of them rots)."""

from pathlib import Path

import jupytext
import pytest
from nbclient import NotebookClient

from tierlab.config import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.py"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path, monkeypatch):
    monkeypatch.setenv(
        "TIERLAB_OVERRIDES",
        f"tracking.uri=sqlite:///{tmp_path}/mlruns.db tracking.artifact_root={tmp_path}/art "
        f"data.cache_dir={tmp_path}/cache",
    )
    monkeypatch.setenv("TIERLAB_OUTPUT_DIR", str(tmp_path / "outputs"))
    notebook = jupytext.read(path)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [
        out
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
