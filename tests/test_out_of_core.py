"""Out of core: partitioned Parquet, tables left on disk, batch validation, sampled realism.

The same data must give the same indicators, targets and validation verdicts whether its large
tables are in memory or on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tierlab.config import compose
from tierlab.data.out_of_core import customer_sample, on_disk_failures
from tierlab.data.schemas import DataValidationError, validate_bank
from tierlab.data.split import CalibrationSplit
from tierlab.data.stage import DataStageResult
from tierlab.features import Context, build_indicators
from tierlab.features.engine import connect, tables
from tierlab.features.stage import run_features_stage
from tierlab.features.targets import build_targets

ON_DISK = ("transactions", "balances", "profitability")


def make_source(cache: Path, *overrides: str):
    cfg = compose(["debug=fast", f"data.cache_dir={cache}", *overrides])
    return cfg, instantiate(cfg.data, _convert_="all")


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    """The same 400-customer bank: single files in memory, and partitioned out of core."""
    root = tmp_path_factory.mktemp("ooc")
    cfg, single = make_source(root / "single", "data.chunk_size=150")
    _, parted = make_source(
        root / "parted", "data.chunk_size=150", "data.partitioned=true", "data.out_of_core=true"
    )
    return cfg, single.load(), parted.load(), parted


def test_partitioned_layout_holds_the_same_rows_one_part_per_chunk(banks):
    _, memory, disk, source = banks
    manifest = json.loads((source.folder / "manifest.json").read_text())
    assert manifest["layout"] == "partitioned"
    parts = sorted((source.folder / "transactions").glob("*.parquet"))
    assert [p.name for p in parts] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    for name in ON_DISK:
        assert getattr(disk, name) is None and disk.has(name)
        on_disk = pd.read_parquet(disk.on_disk[name])
        pd.testing.assert_frame_equal(on_disk, getattr(memory, name))
    assert disk.names() == memory.names()
    assert disk.summary() == memory.summary()
    assert set(manifest["sha256"]) >= {
        "transactions/part-00002.parquet",
        "customers/part-00000.parquet",
    }


def test_indicators_and_targets_are_the_same_in_and_out_of_core(banks):
    cfg, memory, disk, _ = banks
    features = OmegaConf.to_container(cfg.features, resolve=True)
    split = CalibrationSplit.from_config(
        cfg.split.cutoff, int(cfg.split.holdout_months), memory.data_start, memory.data_end
    )
    ctx = Context.from_config(features, split.cutoff)
    results = []
    for data in (memory, disk):
        con = connect("duckdb", {"threads": 1, "memory_limit": "1GB"})
        sources = tables(con, data)
        indicators, _ = build_indicators(con, sources, ctx)
        targets = build_targets(con, sources, ctx, split, 0.008, data.truth)
        results.append((indicators, targets))
    pd.testing.assert_frame_equal(results[0][0], results[1][0])
    pd.testing.assert_frame_equal(results[0][1], results[1][1])


def test_fingerprint_is_the_same_in_and_out_of_core_and_changes_with_the_data(banks, tmp_path):
    _, memory, disk, source = banks
    assert disk.fingerprint() == memory.fingerprint() == source.load().fingerprint()
    copy = tmp_path / "copy"
    copy.mkdir()
    part = disk.on_disk["transactions"] / "part-00001.parquet"
    frame = pd.read_parquet(part)
    frame.loc[0, "amount"] += 1.0
    for p in disk.on_disk["transactions"].glob("*.parquet"):
        (copy / p.name).write_bytes(p.read_bytes())
    frame.to_parquet(copy / part.name, index=False)
    changed = disk.__class__(**{**disk.__dict__, "on_disk": {**disk.on_disk, "transactions": copy}})
    assert changed.fingerprint() != disk.fingerprint()


def broken_copy(disk, tmp_path: Path, table: str, edit) -> object:
    """``disk`` with one part file of ``table`` edited by ``edit(frame)``: part 1 of 3."""
    folder = tmp_path / table
    folder.mkdir()
    for p in sorted(disk.on_disk[table].glob("*.parquet")):
        frame = pd.read_parquet(p)
        if p.name == "part-00001.parquet":
            frame = edit(frame)
        frame.to_parquet(folder / p.name, index=False)
    return disk.__class__(**{**disk.__dict__, "on_disk": {**disk.on_disk, table: folder}})


def test_a_bad_value_is_named_by_part_file_column_row_and_rule(banks, tmp_path):
    _, _, disk, _ = banks

    def edit(frame):
        frame.loc[[3, 700], "amount"] = -1.0
        frame.loc[5, "customer_id"] = 99_999
        frame.loc[9, "timestamp"] = pd.Timestamp("2031-01-01")
        return frame

    bad = broken_copy(disk, tmp_path, "transactions", edit)
    with pytest.raises(DataValidationError) as err:
        validate_bank(bad)
    text = str(err.value)
    assert "table 'transactions' (file transactions/part-00001.parquet)" in text
    assert "column 'amount' has 2 values failing rule 'greater_than_or_equal_to(0)'" in text
    assert "(at rows [3, 700]:" in text
    assert "failing rule 'in customers.customer_id' (at row 5: 99999)" in text
    assert "on or before data_end" in text and "row 9" in text


def test_batches_report_rows_within_the_part_and_merge_counts(banks, tmp_path):
    _, _, disk, _ = banks

    def edit(frame):
        frame.loc[[2, 250, 251], "amount"] = -5.0
        return frame

    bad = broken_copy(disk, tmp_path, "transactions", edit)
    failures = on_disk_failures(bad, batch_rows=100)  # rows 250 and 251 are in a later batch
    (failure,) = failures
    assert failure.n == 3 and failure.rows == (2, 250, 251)
    assert Path(failure.file).name == "part-00001.parquet"


def test_a_key_repeated_across_part_files_is_found(banks, tmp_path):
    _, _, disk, _ = banks
    first = pd.read_parquet(sorted(disk.on_disk["balances"].glob("*.parquet"))[0])

    def edit(frame):  # repeat the first row of part 0 in part 1: each part is fine alone
        return pd.concat([frame, first.iloc[[0]]], ignore_index=True)

    bad = broken_copy(disk, tmp_path, "balances", edit)
    with pytest.raises(DataValidationError) as err:
        validate_bank(bad)
    row = first.iloc[0]
    assert "columns (customer_id, month) have 1 keys that appear more than once" in str(err.value)
    assert f"({row['customer_id']}, {row['month'].date()}) x2" in str(err.value)


def test_an_empty_on_disk_table_is_refused(banks, tmp_path):
    _, _, disk, _ = banks
    folder = tmp_path / "empty"
    folder.mkdir()
    part = sorted(disk.on_disk["profitability"].glob("*.parquet"))[0]
    pq.write_table(pq.read_table(part).slice(0, 0), folder / "part-00000.parquet")
    bad = disk.__class__(**{**disk.__dict__, "on_disk": {**disk.on_disk, "profitability": folder}})
    with pytest.raises(
        DataValidationError, match="profitability.*0 rows, failing rule 'not empty'"
    ):
        validate_bank(bad)


def test_customer_sample_is_seeded_and_keeps_whole_customers(banks):
    _, memory, disk, _ = banks
    a, b = customer_sample(disk, 50, seed=1), customer_sample(disk, 50, seed=1)
    other = customer_sample(disk, 50, seed=2)
    ids = set(a.customers["customer_id"])
    assert len(ids) == 50 and ids == set(b.customers["customer_id"])
    assert ids != set(other.customers["customer_id"])
    for name in ON_DISK:
        expected = getattr(memory, name)
        expected = expected.loc[expected["customer_id"].isin(ids)].reset_index(drop=True)
        pd.testing.assert_frame_equal(getattr(a, name), expected)
    assert set(a.truth["customer_id"]) == ids
    assert customer_sample(disk, 10_000, seed=1).customers.shape == memory.customers.shape


def test_duckdb_out_of_memory_names_the_setting_to_change(banks, tmp_path):
    cfg, _, disk, _ = banks
    cfg = compose(
        [
            "debug=fast",
            "features.engine_options.memory_limit=1MB",
            f"features.engine_options.temp_directory={tmp_path / 'spill'}",
        ]
    )
    split = CalibrationSplit.from_config(
        cfg.split.cutoff, int(cfg.split.holdout_months), disk.data_start, disk.data_end
    )
    with pytest.raises(MemoryError, match=r"features\.engine_options\.memory_limit=1MB"):
        run_features_stage(cfg, DataStageResult(disk, split, {}), tmp_path / "out")
    assert not (tmp_path / "out" / "indicators.parquet").exists()


def copy_parts(disk, tmp_path: Path, table: str) -> Path:
    folder = tmp_path / table
    folder.mkdir()
    for p in sorted(disk.on_disk[table].glob("*.parquet")):
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


def test_parts_that_disagree_or_cannot_be_read_are_named(banks, tmp_path):
    _, _, disk, _ = banks
    folder = copy_parts(disk, tmp_path, "transactions")
    frame = pd.read_parquet(folder / "part-00001.parquet").drop(columns="channel")
    frame.to_parquet(folder / "part-00001.parquet", index=False)
    (folder / "part-00002.parquet").write_bytes(b"not parquet")
    (folder / "notes.parquet").write_bytes(b"not a part file: ignored")
    bad = disk.__class__(**{**disk.__dict__, "on_disk": {**disk.on_disk, "transactions": folder}})
    with pytest.raises(DataValidationError) as err:
        validate_bank(bad)
    text = str(err.value)
    assert (
        "(file transactions/part-00001.parquet): has other columns than part-00000.parquet, "
        "failing rule 'same columns in every part' ('channel' missing)" in text
    )
    assert "(file transactions/part-00002.parquet): cannot be read as Parquet" in text
    assert "notes.parquet" not in text


def test_repeated_keys_are_found_beside_other_failures_and_counted_once(banks, tmp_path):
    _, _, disk, _ = banks
    folder = copy_parts(disk, tmp_path, "balances")
    first = pd.read_parquet(folder / "part-00000.parquet")
    part = pd.read_parquet(folder / "part-00001.parquet")
    part = pd.concat([part, first.iloc[[0]], part.iloc[[5]]], ignore_index=True)
    part.loc[3, "demand"] = -1.0
    part.to_parquet(folder / "part-00001.parquet", index=False)
    bad = disk.__class__(**{**disk.__dict__, "on_disk": {**disk.on_disk, "balances": folder}})
    with pytest.raises(DataValidationError) as err:
        validate_bank(bad)
    text = str(err.value)
    assert "column 'demand' has 1 value failing rule" in text
    assert "columns (customer_id, month) have 2 keys that appear more than once" in text
    assert "rows [" not in text.split("appear more than once")[1].splitlines()[0]
