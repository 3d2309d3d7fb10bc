"""The in-memory form of a bank data set: canonical tables plus where they came from.

Canonical column names are the contract every later stage relies on (see ``schemas.py``):

* transactions: ``customer_id``, ``timestamp``, ``amount`` (>= 0) and optionally
  ``direction`` (``credit`` = money in, ``debit`` = money out), ``channel``, ``type``;
* customers: ``customer_id`` plus attributes (``open_date``, ``close_date``, ...);
* balances: ``customer_id``, ``month`` (month-end date) plus one column per product balance;
* products: ``customer_id``, ``product``, ``open_date``, ``close_date``;
* profitability: ``customer_id``, ``month`` plus profit components and ``profit``.

A data set supplies the tables it has; the others are ``None`` (CDNOW has transactions only,
the credit-card clustering set has a customer table only).  Out of core (``data.out_of_core``),
the large tables stay in their Parquet files (``on_disk``) and their attributes are ``None``:
use :meth:`BankData.has` and :meth:`BankData.names`, not ``is None``, to ask which tables a data
set has.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

#: Tables that are inputs to the pipeline, in fingerprint order.
INPUT_TABLES = ("customers", "transactions", "balances", "products", "profitability")


@dataclass
class BankData:
    """A validated bank data set.

    Attributes
    ----------
    name
        Short name of the data set (``synthetic``, ``cdnow``, ...).
    customers, transactions, balances, products, profitability
        Canonical tables, or ``None`` when the data set does not have them.
    truth
        Ground truth written by the synthetic generator (latent type, expected holdout profit).
        Never an input to features or models; kept apart so that nothing reads it by accident.
    data_start, data_end
        First and last instant covered by the data (``None`` for data without a time axis).
    files
        Source file of each table, for error messages and provenance.
    parquet
        Tables whose Parquet file holds exactly the in-memory frame, so that an engine may read
        the file instead of the frame (the synthetic bank's tables; not a sampled or mapped CSV).
        A path is one file, or a folder of part files (``part-*.parquet``, read in name order).
    on_disk
        Tables that are not in memory at all (out of core): their Parquet file or folder.  The
        engine reads them there; their attribute is ``None``.
    """

    name: str
    customers: pd.DataFrame | None = None
    transactions: pd.DataFrame | None = None
    balances: pd.DataFrame | None = None
    products: pd.DataFrame | None = None
    profitability: pd.DataFrame | None = None
    truth: pd.DataFrame | None = None
    data_start: pd.Timestamp | None = None
    data_end: pd.Timestamp | None = None
    files: dict[str, Path] = field(default_factory=dict)
    parquet: dict[str, Path] = field(default_factory=dict)
    on_disk: dict[str, Path] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The input tables held in memory, by name (ground truth and on-disk tables excluded)."""
        return {n: t for n in INPUT_TABLES if (t := getattr(self, n)) is not None}

    def has(self, name: str) -> bool:
        """Whether the data set has table ``name``, in memory or on disk."""
        return getattr(self, name) is not None or name in self.on_disk

    def names(self) -> list[str]:
        """Every input table the data set has, in memory or on disk, in fingerprint order."""
        return [n for n in INPUT_TABLES if self.has(n)]

    def fingerprint(self) -> str:
        """A content hash of the input tables (names, columns, dtypes and values).

        Two data sets with the same fingerprint hold the same rows in the same order, whatever
        file format or layout they were read from, in memory or out of core (an on-disk table
        is hashed batch by batch as it is read, with the same row hashes).  Ground truth is not
        part of it.
        """
        digest = hashlib.sha256()
        for name in self.names():
            digest.update(name.encode())
            if name in self.on_disk:
                for i, (_, _, batch) in enumerate(parquet_batches(self.on_disk[name])):
                    if i == 0:
                        digest.update(_dtypes(batch))
                    digest.update(_row_hashes(batch))
                continue
            table = getattr(self, name)
            digest.update(_dtypes(table))
            digest.update(_row_hashes(table))
        return digest.hexdigest()[:16]

    def summary(self) -> dict[str, int]:
        """Row counts per table, e.g. for logging (on-disk tables from their Parquet footers)."""
        return {
            name: parquet_rows(self.on_disk[name])
            if name in self.on_disk
            else len(getattr(self, name))
            for name in self.names()
        }


#: Part files of a partitioned table (other files in its folder are not part of it).
PART_GLOB = "part-*.parquet"
#: Rows per batch when an on-disk table is read in pieces: ~100 MB of transactions in pandas.
BATCH_ROWS = 1_000_000


def _dtypes(frame: pd.DataFrame) -> bytes:
    return repr([(c, str(t)) for c, t in frame.dtypes.items()]).encode()


def _row_hashes(frame: pd.DataFrame) -> bytes:
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return np.ascontiguousarray(row_hashes).tobytes()


def parquet_batches(
    path: str | Path, batch_rows: int = BATCH_ROWS
) -> Iterator[tuple[Path, int, pd.DataFrame]]:
    """``(part file, first row in that file, frame)`` for each batch of at most ``batch_rows``
    rows of a Parquet file or folder of parts, in order."""
    for part in parquet_parts(path):
        offset = 0
        for batch in pq.ParquetFile(part).iter_batches(batch_size=batch_rows):
            frame = batch.to_pandas()
            yield part, offset, frame
            offset += len(frame)


def parquet_parts(path: str | Path) -> list[Path]:
    """The Parquet files of a table: the file itself, or a folder's part files
    (``part-*.parquet``) in name order."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    parts = sorted(path.glob(PART_GLOB))
    if not parts:
        raise FileNotFoundError(f"folder {path} holds no {PART_GLOB} files")
    return parts


def parquet_source(path: str | Path) -> str:
    """What an engine reads: the file, or a glob of a folder's part files."""
    path = Path(path)
    return str(path / PART_GLOB) if path.is_dir() else str(path)


def parquet_rows(path: str | Path) -> int:
    """Rows of a Parquet file or folder of parts, from the file footers."""
    return sum(pq.ParquetFile(part).metadata.num_rows for part in parquet_parts(path))


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
