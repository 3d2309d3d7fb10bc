"""The embedded default data set: a seeded synthetic retail bank, cached as Parquet.

:class:`SyntheticBank` is a data source like :class:`tierlab.data.loaders.TableSource`: Hydra
builds it from ``conf/data/synthetic.yaml`` and ``load()`` returns a validated
:class:`~tierlab.data.tables.BankData`.  The first ``load()`` for a parameter set generates the
tables chunk by chunk (:mod:`tierlab.data.generator`) into a temporary folder and renames it into
place when complete, so an interrupted run never leaves a half-written data set behind; later
loads reuse it.  Same parameters and seed give byte-identical files.

Layout: one Parquet file per table, or with ``partitioned: true`` a folder per table with one part
file per generation chunk (``transactions/part-00000.parquet``, ...), so that no file grows with
the bank and engines read parts in parallel.  With ``out_of_core: true`` the transaction,
balance and profitability tables are not read into memory at all: they are validated batch by
batch and the features engine reads them from disk (:mod:`tierlab.data.out_of_core`).  Neither
setting changes the data; both are left out of the cache key, and a cached data set is reused in
whichever layout it was written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from tierlab.data import generator as g
from tierlab.data.split import CalibrationSplit
from tierlab.data.tables import INPUT_TABLES, BankData, file_sha256, parquet_parts

log = logging.getLogger(__name__)

#: Bump when the generative model changes, so cached data sets are regenerated.
MODEL_VERSION = 3
TABLES = ("customers", "products", "balances", "profitability", "transactions", "truth")
#: Parameters that do not change the generated data (left out of the cache key).
_NOT_IN_KEY = (
    "cache_dir",
    "validate",
    "name",
    "targets",
    "partitioned",
    "out_of_core",
    "realism_sample",
)
#: Tables kept on disk with ``out_of_core: true`` (the others are small: one row per customer,
#: or per product held).
OUT_OF_CORE_TABLES = ("transactions", "balances", "profitability")

_CATEGORIES = {
    ("customers", "region"): None,  # filled from the config's region names
    ("customers", "income_band"): g.INCOME_BANDS,
    ("customers", "occupation"): g.OCCUPATIONS,
    ("products", "product"): g.PRODUCTS,
    ("transactions", "direction"): ("debit", "credit"),
    ("transactions", "channel"): g.CHANNELS,
    ("transactions", "type"): g.TX_TYPES,
    ("truth", "latent_segment"): None,  # filled from the config's segment names
}


class SyntheticBank:
    """Seeded synthetic retail-bank data source (see ``docs/synthetic_bank.md``).

    Parameters
    ----------
    **params
        The keys of ``conf/data/synthetic.yaml``: ``n_customers``, ``n_months``,
        ``start_date``, ``seed``, ``chunk_size``, ``cache_dir``, ``truth_cutoff``,
        ``truth_horizon_months``, ``validate``, ``segments``, ``rates`` and the rest.
    """

    def __init__(self, **params: Any):
        self.params = params

    # ------------------------------------------------------------------ public
    @property
    def cache_key(self) -> str:
        """Hash of everything that determines the generated data."""
        keyed = {k: v for k, v in self.params.items() if k not in _NOT_IN_KEY}
        keyed["model_version"] = MODEL_VERSION
        blob = json.dumps(keyed, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    @property
    def folder(self) -> Path:
        """Where this parameter set's tables live."""
        return Path(self.params["cache_dir"]) / f"n{self.params['n_customers']}-{self.cache_key}"

    def load(self) -> BankData:
        """Generate the data set if it is not cached yet, then read and validate it."""
        if not (self.folder / "manifest.json").exists():
            self.generate(self.folder)
        else:
            log.info("synthetic bank: reusing %s", self.folder)
        return self.read(self.folder)

    def generate(self, folder: str | Path) -> Path:
        """Write every table to ``folder`` atomically (temporary folder, then rename)."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the data set is not
        try:
            manifest = self._write_tables(tmp)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
            if folder.exists():  # a concurrent run finished first: keep its copy
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    def read(self, folder: str | Path) -> BankData:
        """Read a generated data set into a :class:`BankData` (validated if configured).

        With ``out_of_core`` the transaction, balance and profitability tables stay on disk.
        """
        folder = Path(folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        files = {name: _table_path(folder, name) for name in TABLES}
        on_disk = OUT_OF_CORE_TABLES if self.params.get("out_of_core") else ()
        tables = {
            name: pd.read_parquet(path) for name, path in files.items() if name not in on_disk
        }
        data = BankData(
            name=self.params["name"],
            data_start=pd.Timestamp(manifest["data_start"]),
            data_end=pd.Timestamp(manifest["data_end"]),
            files=files,
            parquet={name: files[name] for name in INPUT_TABLES if name not in on_disk},
            on_disk={name: files[name] for name in on_disk},
            **tables,
        )
        if self.params["validate"]:
            from tierlab.data.schemas import validate_bank

            data = validate_bank(data)
        return data

    # ------------------------------------------------------------------ internals
    def _calendar(self) -> tuple[np.ndarray, pd.Timestamp, pd.Timestamp, int]:
        p = self.params
        n_months = int(p["n_months"])
        if n_months < 2:
            raise ValueError(f"n_months={n_months} should be >= 2")
        first = pd.Timestamp(p["start_date"]).to_period("M").to_timestamp()
        month_starts = pd.date_range(first, periods=n_months, freq="MS").to_numpy()
        month_starts = month_starts.astype("datetime64[D]")
        data_start = pd.Timestamp(first)
        data_end = pd.Timestamp(first + pd.DateOffset(months=n_months) - pd.Timedelta(days=1))
        split = CalibrationSplit.from_config(
            p.get("truth_cutoff"), int(p["truth_horizon_months"]), data_start, data_end
        )
        if not split.cutoff.is_month_end:
            raise ValueError(
                f"split.cutoff={split.cutoff.date()} is not a month end: the synthetic bank's "
                "ground truth is monthly, so its cut-off must be the last day of a month"
            )
        cut_month = (split.cutoff.year - first.year) * 12 + split.cutoff.month - first.month
        return month_starts, data_start, data_end, cut_month

    def _write_tables(self, folder: Path) -> dict[str, Any]:
        p = self.params
        n, chunk = int(p["n_customers"]), int(p["chunk_size"])
        if n < 1:
            raise ValueError(f"n_customers={n} should be >= 1")
        if chunk < 1:
            raise ValueError(f"chunk_size={chunk} should be >= 1")
        month_starts, data_start, data_end, cut_month = self._calendar()
        model = g.BankModel(p, month_starts, cut_month)
        month_ends = (
            (month_starts.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1
        ).astype("datetime64[us]")
        categories = dict(_CATEGORIES)
        categories[("customers", "region")] = tuple(p["regions"])
        categories[("truth", "latent_segment")] = tuple(model.seg_names)

        partitioned = bool(p.get("partitioned", False))
        if partitioned:
            for name in TABLES:
                (folder / name).mkdir()
        writers: dict[str, pq.ParquetWriter] = {}
        rows = dict.fromkeys(TABLES, 0)
        starts = range(0, n, chunk)
        try:
            for i, start in enumerate(tqdm(starts, desc="synthetic bank", unit="chunk")):
                rng = np.random.default_rng([int(p["seed"]), i])
                ids = np.arange(start + 1, min(start + chunk, n) + 1, dtype=np.int64)
                part = model.generate(rng, ids)
                for name in TABLES:
                    cols = dict(getattr(part, name))
                    if "month_index" in cols:
                        cols = {"month": month_ends[cols.pop("month_index")], **cols}
                        cols = {k: cols[k] for k in ["customer_id", "month", *cols] if k in cols}
                    table = _to_arrow(name, cols, categories)
                    if partitioned:
                        part_file = folder / name / f"part-{i:05d}.parquet"
                        pq.write_table(table, part_file, compression="zstd")
                    else:
                        if name not in writers:
                            writers[name] = pq.ParquetWriter(
                                folder / f"{name}.parquet", table.schema, compression="zstd"
                            )
                        writers[name].write_table(table)
                    rows[name] += table.num_rows
        finally:
            for w in writers.values():
                w.close()
        return {
            "generator": "tierlab.data.synthetic.SyntheticBank",
            "model_version": MODEL_VERSION,
            "cache_key": self.cache_key,
            "data_start": str(data_start.date()),
            "data_end": str(data_end.date()),
            "truth_cutoff_month": str(pd.Timestamp(month_starts[cut_month]).date()),
            "layout": "partitioned" if partitioned else "single_file",
            "rows": rows,
            "sha256": {
                str(part.relative_to(folder)): file_sha256(part)
                for name in TABLES
                for part in parquet_parts(_table_path(folder, name))
            },
        }


def _table_path(folder: Path, name: str) -> Path:
    """A table's folder of parts (partitioned layout) or its single file."""
    return folder / name if (folder / name).is_dir() else folder / f"{name}.parquet"


def _to_arrow(table: str, cols: dict[str, np.ndarray], categories: dict) -> pa.Table:
    arrays = {}
    for col, values in cols.items():
        labels = categories.get((table, col))
        if labels is not None:
            dictionary = pa.array(list(labels), type=pa.string())
            arrays[col] = pa.DictionaryArray.from_arrays(
                pa.array(values.astype(np.int32)), dictionary
            )
        elif np.issubdtype(values.dtype, np.datetime64):
            arrays[col] = pa.array(values.astype("datetime64[us]"))
        elif values.dtype == np.int8 or values.dtype == bool:
            arrays[col] = pa.array(values.astype(bool))
        else:
            arrays[col] = pa.array(values)
    return pa.table(arrays)
