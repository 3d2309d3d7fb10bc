"""The in-memory form of a bank data set: canonical tables plus where they came from.

Canonical column names are the contract every later stage relies on (see ``schemas.py``):

* transactions: ``customer_id``, ``timestamp``, ``amount`` (>= 0) and optionally
  ``direction`` (``credit`` = money in, ``debit`` = money out), ``channel``, ``type``;
* customers: ``customer_id`` plus attributes (``open_date``, ``close_date``, ...);
* balances: ``customer_id``, ``month`` (month-end date) plus one column per product balance;
* products: ``customer_id``, ``product``, ``open_date``, ``close_date``;
* profitability: ``customer_id``, ``month`` plus profit components and ``profit``.

A data set supplies the tables it has; the others are ``None`` (CDNOW has transactions only,
the credit-card clustering set has a customer table only).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

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

    def tables(self) -> dict[str, pd.DataFrame]:
        """The input tables this data set has, by name (ground truth excluded)."""
        return {n: t for n in INPUT_TABLES if (t := getattr(self, n)) is not None}

    def fingerprint(self) -> str:
        """A content hash of the input tables (names, columns, dtypes and values).

        Two data sets with the same fingerprint hold the same rows in the same order, whatever
        file format they were read from.  Ground truth is not part of it.
        """
        digest = hashlib.sha256()
        for name, table in self.tables().items():
            digest.update(name.encode())
            digest.update(repr([(c, str(t)) for c, t in table.dtypes.items()]).encode())
            row_hashes = pd.util.hash_pandas_object(table, index=False).to_numpy()
            digest.update(np.ascontiguousarray(row_hashes).tobytes())
        return digest.hexdigest()[:16]

    def summary(self) -> dict[str, int]:
        """Row counts per table, e.g. for logging."""
        return {name: len(table) for name, table in self.tables().items()}
