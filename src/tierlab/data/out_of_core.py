"""Tables larger than memory: checked batch by batch, sampled for the realism plots.

With ``data.out_of_core: true`` the large tables (transactions, balances, profitability) stay in
their Parquet files (:attr:`BankData.on_disk`); the features engine reads them there (DuckDB out
of core, under its ``memory_limit``, or Spark).  What the data stage still needs from them is
done here with bounded memory:

* :func:`on_disk_failures`: every part file readable and with the columns and types of the
  first; then the same pandera contracts and cross-table rules as in memory
  (:mod:`tierlab.data.schemas`), one record batch at a time; a failure names the part file and
  the 0-based row within it (one line per part file and rule).  Keys that must be unique
  (``balances``, ``profitability``: ``customer_id, month``) are checked across all batches by one
  DuckDB query instead of per batch.
* :func:`customer_sample`: every table restricted to a seeded sample of customers, in memory, for
  the realism metrics and plot.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import shutil
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from tierlab.data.failures import N_EXAMPLES, Failure
from tierlab.data.tables import (
    BATCH_ROWS,
    INPUT_TABLES,
    BankData,
    parquet_batches,
    parquet_parts,
    parquet_rows,
    parquet_source,
)
from tierlab.sampling import seeded_rows

log = logging.getLogger(__name__)

#: Tables whose key (customer_id, month) must be unique (see ``schemas.SCHEMAS``).
UNIQUE_KEYS = {"balances": ("customer_id", "month"), "profitability": ("customer_id", "month")}


def on_disk_failures(
    data: BankData, broken: set | frozenset = frozenset(), batch_rows: int = BATCH_ROWS
) -> list[Failure]:
    """Every broken rule of the on-disk tables, found one batch at a time.

    Parameters
    ----------
    data
        The data set; its in-memory customer table is the reference for ``customer_id``.
    broken
        ``(table, column)`` pairs already broken in memory (e.g. ``customers.customer_id``):
        rules that depend on them are skipped, as in :func:`schemas.validate_bank`.
    batch_rows
        Rows per batch (bounds memory).
    """
    from tierlab.data.schemas import _time_range, _unknown_customers, table_failures

    failures: list[Failure] = []
    for name, path in data.on_disk.items():
        problems = _part_problems(name, path)
        if problems:  # unreadable parts or parts that disagree: the batches cannot be trusted
            failures += problems
            continue
        merged: dict[tuple, Failure] = {}
        total = parquet_rows(path)
        if total == 0:
            detail = "has 0 rows, failing rule 'not empty'"
            failures.append(Failure(name, "not empty", None, path, detail=detail))
            continue
        key = UNIQUE_KEYS.get(name)
        bar = tqdm(total=total, desc=f"validate {name}", unit="row", unit_scale=True, leave=False)
        for part, offset, frame in parquet_batches(path, batch_rows):
            found = table_failures(name, frame, part)
            here = broken | {(f.table, f.column) for f in found}
            batch = dataclasses.replace(
                data, on_disk={}, files={**data.files, name: part}, **{name: frame}
            )
            batch = _only(batch, name)
            found += _unknown_customers(batch, here)
            if name == "transactions":
                found += [f for f in _time_range(batch, here) if f.table is not None]
            for failure in found:
                if key is not None and failure.column == key and failure.rule == "unique":
                    continue  # keys are checked across all batches at once, below
                _merge(merged, _shift(failure, offset))
            bar.update(len(frame))
        bar.close()
        key_broken = key is not None and any(
            f.column in key and f.detail is not None for f in merged.values()
        )  # a key column of the wrong dtype: the key query would only repeat that
        if key is not None and not key_broken:
            failures += _duplicate_keys(name, path, key)
        failures += merged.values()
    return failures


def _part_problems(name: str, path: Path) -> list[Failure]:
    """Part files that cannot be read, or whose columns or types differ from the first part's
    (each part alone could pass its contract, and the engines would then fail on the set)."""
    problems, first = [], None
    for part in parquet_parts(path):
        try:
            schema = pq.read_schema(part)
        except (OSError, pa.ArrowException) as exc:
            detail = f"cannot be read as Parquet, failing rule 'readable' ({exc})"
            problems.append(Failure(name, "readable", None, part, detail=detail))
            continue
        if first is None:
            first = (part, schema)
            continue
        reference, expected = first
        columns = {f.name: f.type for f in schema}
        wanted = {f.name: f.type for f in expected}
        differences = [f"{c!r} missing" for c in wanted if c not in columns] + [
            f"{c!r} not in {reference.name}" for c in columns if c not in wanted
        ]
        differences += [
            f"{c!r} is {columns[c]}, not {t}"
            for c, t in wanted.items()
            if c in columns and columns[c] != t and not _same_kind(columns[c], t)
        ]
        if differences:
            detail = (
                f"has other columns than {reference.name}, failing rule 'same columns in every "
                f"part' ({'; '.join(differences)})"
            )
            problems.append(Failure(name, "same columns in every part", None, part, detail=detail))
    return problems


def _same_kind(a: pa.DataType, b: pa.DataType) -> bool:
    """Dictionary-encoded and plain strings are the same column to every engine."""
    plain = [t.value_type if pa.types.is_dictionary(t) else t for t in (a, b)]
    return plain[0] == plain[1]


def customer_sample(data: BankData, n: int, seed: int) -> BankData:
    """The data set restricted to a seeded sample of ``n`` customers, every table in memory.

    Customers are drawn without replacement from the customer table (all of them when there are
    at most ``n``); on-disk tables are filtered while they are scanned.
    """
    if data.customers is None:
        raise ValueError(f"data set {data.name!r} has no customer table to sample customers from")
    ids = data.customers["customer_id"].to_numpy()
    if (rows := seeded_rows(len(ids), n, seed)) is not None:
        ids = np.sort(ids[rows])
    keep = pd.Index(ids)
    tables = {}
    for name in data.names():
        if name in data.on_disk:
            parts = [str(p) for p in parquet_parts(data.on_disk[name])]
            dataset = ds.dataset(parts, format="parquet")
            filtered = dataset.to_table(filter=ds.field("customer_id").isin(ids))
            tables[name] = filtered.to_pandas()
        else:
            frame = getattr(data, name)
            tables[name] = frame.loc[frame["customer_id"].isin(keep)].reset_index(drop=True)
    truth = data.truth
    if truth is not None:
        truth = truth.loc[truth["customer_id"].isin(keep)].reset_index(drop=True)
    return dataclasses.replace(data, on_disk={}, parquet={}, truth=truth, **tables)


def _only(data: BankData, name: str) -> BankData:
    """``data`` with only ``name`` and the customer table in memory (for cross-table rules)."""
    others = {n: None for n in INPUT_TABLES if n not in ("customers", name)}
    return dataclasses.replace(data, **others)


def _shift(failure: Failure, offset: int) -> Failure:
    if not failure.rows or offset == 0:
        return failure
    return dataclasses.replace(failure, rows=tuple(r + offset for r in failure.rows))


def _merge(merged: dict[tuple, Failure], failure: Failure) -> None:
    """Add a batch's failure to those of earlier batches of the same file, column and rule."""
    key = (failure.table, failure.column, failure.rule, str(failure.file))
    if key not in merged:
        merged[key] = failure
        return
    seen = merged[key]
    if seen.detail is not None:  # a whole-column rule (e.g. a dtype): said once per file
        return
    room = max(0, N_EXAMPLES - len(seen.rows))
    merged[key] = dataclasses.replace(
        seen,
        n=seen.n + failure.n,
        rows=seen.rows + failure.rows[:room],
        values=seen.values + failure.values[:room],
    )


def _duplicate_keys(name: str, path: Path, key: tuple[str, ...]) -> list[Failure]:
    """Keys repeated across batches (pandera checked within each batch)."""
    columns = ", ".join(key)
    source = parquet_source(path).replace("'", "''")
    spill = tempfile.mkdtemp(prefix="tierlab-keys-")
    con = duckdb.connect(config={"memory_limit": "2GB", "threads": 1, "temp_directory": spill})
    try:
        con.execute(
            f"CREATE TEMP TABLE repeated AS SELECT {columns}, count(*) AS copies "
            f"FROM read_parquet('{source}') GROUP BY ALL HAVING copies > 1"
        )
        n = con.sql("SELECT count(*) FROM repeated").fetchall()[0][0]
        examples = con.sql(f"FROM repeated ORDER BY {columns} LIMIT {N_EXAMPLES}").fetchall()
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    if not n:
        return []
    shown = "; ".join(f"({', '.join(_show(v) for v in row[:-1])}) x{row[-1]}" for row in examples)
    detail = (
        f"have {n} keys that appear more than once, failing rule 'unique ({columns})' "
        f"(first: {shown})"
    )
    return [Failure(name, f"unique ({columns})", key, path, detail=detail)]


def _show(value: object) -> str:
    """A key value as a person reads it: dates without a midnight time."""
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return str(value.date())
    return str(value)
