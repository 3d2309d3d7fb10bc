"""The indicator benchmark's cases (issue 3).  ``bench.run`` runs each in a fresh subprocess:

    python -m bench.indicators CASE FOLDER

and reads the JSON line it prints last.  ``FOLDER`` holds a generated synthetic bank; every case
reads its Parquet files and computes indicators as of the default split's cut-off.  The timed
part starts after imports and config composition and ends when the result is a pandas frame.

Cases:

* ``sql_rfm_core``: one hand-written DuckDB SQL query for the RFM core (recency; frequency,
  monetary total and mean per window) of customer-initiated transactions;
* ``ibis_rfm_core``: ``tierlab.features.activity.transaction_family`` alone, on Ibis/DuckDB;
* ``ibis_full``: every indicator through ``tierlab.features.build_indicators`` on Ibis/DuckDB;
* ``pandas_reference``: the same indicators in plain pandas (``bench.pandas_reference``);
* ``check`` (untimed): ``ibis_full`` against ``pandas_reference`` and ``sql_rfm_core`` against
  ``ibis_rfm_core``, column by column;
* ``ibis_families``: each indicator family of ``ibis_full`` executed alone (where the time goes).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import ibis
import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from bench import pandas_reference
from tierlab.config import compose
from tierlab.data.split import CalibrationSplit
from tierlab.features import Context, build_indicators
from tierlab.features.activity import customer_initiated, transaction_family
from tierlab.features.engine import connect, seconds
from tierlab.features.indicators import families, population

TABLES = ("customers", "transactions", "balances", "products", "profitability")
RTOL = ATOL = 1e-6  # the check's tolerance: loose, the engines sum in different orders


def setup(folder: Path) -> tuple[Context, dict[str, Any]]:
    """The features context at the default split's cut-off, and the engine options."""
    cfg = compose(["features.engine_options.threads=2"])  # both cores, as the figures state
    manifest = json.loads((folder / "manifest.json").read_text())
    split = CalibrationSplit.from_config(
        cfg.split.cutoff,
        int(cfg.split.holdout_months),
        pd.Timestamp(manifest["data_start"]),
        pd.Timestamp(manifest["data_end"]),
    )
    features = OmegaConf.to_container(cfg.features, resolve=True)
    return Context.from_config(features, split.cutoff), dict(features["engine_options"])


def _literal(epoch_s: int) -> str:
    return f"TIMESTAMP '{pd.Timestamp(epoch_s, unit='s')}'"


def rfm_sql(path: Path, ctx: Context) -> str:
    """The RFM core as one DuckDB SQL query, written by hand."""
    end = _literal(ctx.end_s)
    system = ", ".join(f"'{t}'" for t in ctx.system_types)
    columns = [f"(epoch({end}) - epoch(max(ts))) / 86400 AS recency_days"]
    for w in ctx.windows_months:
        since = f"FILTER (WHERE ts >= {_literal(ctx.start_s(w))})"
        columns += [
            f"count(*) {since} AS frequency_{w}m",
            f"sum(amount) {since} AS monetary_total_{w}m",
            f"avg(amount) {since} AS monetary_mean_{w}m",
        ]
    select = ",\n       ".join(columns)
    source = str(path).replace("'", "''")
    return f"""
SELECT customer_id,
       {select}
FROM (SELECT customer_id, "timestamp" AS ts, amount
      FROM read_parquet('{source}')
      WHERE "timestamp" < {end} AND type NOT IN ({system}))
GROUP BY customer_id
"""


def sql_rfm_core(folder: Path, ctx: Context, options: dict) -> pd.DataFrame:
    con = duckdb.connect(config=options)
    return con.sql(rfm_sql(folder / "transactions.parquet", ctx)).df()


def ibis_tables(con: ibis.BaseBackend, folder: Path) -> dict[str, ibis.Table]:
    """The input tables as Ibis tables reading the Parquet files (nothing loaded into pandas)."""
    return {name: con.read_parquet(folder / f"{name}.parquet") for name in TABLES}


def ibis_full(folder: Path, ctx: Context, options: dict) -> pd.DataFrame:
    con = connect("duckdb", options)
    return build_indicators(con, ibis_tables(con, folder), ctx)[0]


def ibis_rfm_core(folder: Path, ctx: Context, options: dict) -> pd.DataFrame:
    con = connect("duckdb", options)
    table, _ = transaction_family(con.read_parquet(folder / "transactions.parquet"), ctx)
    return con.execute(table)


def ibis_sql_twin(folder: Path, ctx: Context, options: dict) -> pd.DataFrame:
    """The hand-written SQL query's 10 columns, written in Ibis with tierlab's helpers: what the
    Ibis layer itself costs, apart from the extra indicators."""
    con = connect("duckdb", options)
    tx, _ = customer_initiated(con.read_parquet(folder / "transactions.parquet"), ctx)
    tx = tx.filter(tx.timestamp < pd.Timestamp(ctx.end_s, unit="s"))
    aggs = {"last": tx.timestamp.max()}
    for w in ctx.windows_months:
        since = tx.timestamp >= pd.Timestamp(ctx.start_s(w), unit="s")
        aggs[f"frequency_{w}m"] = tx.amount.count(where=since)
        aggs[f"monetary_total_{w}m"] = tx.amount.sum(where=since)
        aggs[f"monetary_mean_{w}m"] = tx.amount.mean(where=since)
    agg = tx.group_by("customer_id").aggregate(**aggs)
    agg = agg.mutate(recency_days=(ctx.end_s - seconds(agg["last"])) / 86400.0).drop("last")
    return con.execute(agg)


def pandas_full(folder: Path, ctx: Context, options: dict) -> pd.DataFrame:
    return pandas_reference.indicators(folder, ctx)


CASES: dict[str, Callable[[Path, Context, dict], pd.DataFrame]] = {
    "sql_rfm_core": sql_rfm_core,
    "ibis_sql_twin": ibis_sql_twin,
    "ibis_rfm_core": ibis_rfm_core,
    "ibis_full": ibis_full,
    "pandas_reference": pandas_full,
}


def compare(expected: pd.DataFrame, actual: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Columns of two frames (aligned on ``customer_id``) that disagree beyond the tolerance."""
    a = expected.set_index("customer_id").sort_index()
    b = actual.set_index("customer_id").sort_index()
    if not a.index.equals(b.index):
        only_a, only_b = a.index.difference(b.index), b.index.difference(a.index)
        return [
            {
                "column": "customer_id",
                "n_bad": len(only_a) + len(only_b),
                "detail": f"{len(only_a)} customers only in the first frame (e.g. "
                f"{list(only_a[:3])}), {len(only_b)} only in the second (e.g. {list(only_b[:3])})",
            }
        ]
    bad = []
    for col in columns:
        if col not in b:
            bad.append({"column": col, "n_bad": len(a), "detail": "missing"})
            continue
        x = a[col].to_numpy(dtype="float64", na_value=np.nan)
        y = b[col].to_numpy(dtype="float64", na_value=np.nan)
        ok = np.isclose(x, y, rtol=RTOL, atol=ATOL, equal_nan=True)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            bad.append(
                {
                    "column": col,
                    "n_bad": int((~ok).sum()),
                    "detail": f"first at customer {a.index[i]}: {x[i]!r} vs {y[i]!r}",
                }
            )
    extra = sorted(set(b.columns) - set(a.columns))
    bad += [{"column": c, "n_bad": len(b), "detail": "unexpected column"} for c in extra]
    return bad


def check(folder: Path) -> dict:
    """Does the pandas reference compute what tierlab computes (and the SQL what Ibis does)?"""
    ctx, options = setup(folder)
    full = ibis_full(folder, ctx, options)
    reference = pandas_full(folder, ctx, options)
    full_bad = compare(full, reference, [c for c in full.columns if c != "customer_id"])
    sql = sql_rfm_core(folder, ctx, options)
    rfm = ibis_rfm_core(folder, ctx, options)
    # The SQL drops customers with only bank-booked transactions in its WHERE clause; Ibis keeps
    # them with no recency and no activity.  Compare the customers both have, and check the rest.
    only_ibis = rfm[~rfm.customer_id.isin(sql.customer_id)]
    rfm_cols = [c for c in sql.columns if c != "customer_id"]
    sql_bad = compare(rfm[rfm.customer_id.isin(sql.customer_id)], sql, rfm_cols)
    frequencies = [c for c in rfm_cols if c.startswith("frequency_")]
    if only_ibis.recency_days.notna().any() or (only_ibis[frequencies] != 0).any(axis=None):
        sql_bad.append(
            {
                "column": "customer_id",
                "n_bad": len(only_ibis),
                "detail": "customers missing from the SQL result have customer-initiated rows",
            }
        )
    twin_bad = compare(sql, ibis_sql_twin(folder, ctx, options), rfm_cols)
    return {
        "sql_vs_twin": twin_bad,
        "customers": len(full),
        "indicators": full.shape[1] - 1,
        "full_vs_pandas": full_bad,
        "sql_customers": len(sql),
        "rfm_columns": len(rfm_cols),
        "rfm_only_in_ibis": len(only_ibis),
        "sql_vs_ibis_rfm": sql_bad,
    }


def profile(folder: Path) -> dict:
    """Seconds to execute each indicator family of ``ibis_full`` alone, in one process."""
    ctx, options = setup(folder)
    con = connect("duckdb", options)
    tables = ibis_tables(con, folder)
    for table in tables.values():  # warm up: Parquet metadata, thread pool
        con.to_pyarrow(table.count().as_table())
    steps: list[dict] = []
    t0 = time.perf_counter()
    fams = families(con, tables, ctx)
    steps.append({"step": "plan (Ibis expressions, distinct products/categories)", "rows": 0})
    steps[-1]["seconds"] = time.perf_counter() - t0
    named = [("population (customers at the cut-off)", population(tables, ctx), "customers", 0)]
    for table, docs in fams:
        named.append((_family_name(docs), table, docs[0].source, len(docs)))
    for name, table, source, n in named:
        t0 = time.perf_counter()
        rows = con.to_pyarrow(table).num_rows
        steps.append(
            {
                "step": name,
                "source": source,
                "indicators": n,
                "rows": rows,
                "seconds": time.perf_counter() - t0,
            }
        )
    t0 = time.perf_counter()
    rows = len(build_indicators(con, tables, ctx)[0])
    steps.append({"step": "build_indicators (all, joined)", "rows": rows})
    steps[-1]["seconds"] = time.perf_counter() - t0
    tx = tables["transactions"]
    end = ibis.timestamp(pd.Timestamp(ctx.end_s, unit="s"))
    return {
        "steps": steps,
        "cutoff": str(ctx.cutoff.date()),
        "windows_months": list(ctx.windows_months),
        "engine_options": options,
        "system_types": list(ctx.system_types),
        "transactions_to_cutoff": int(con.execute(tx.filter(tx.timestamp < end).count())),
    }


def _family_name(docs: list) -> str:
    """The ``tierlab.features`` function that made a family, from its dictionary."""
    source, family = docs[0].source, docs[0].family
    if source == "transactions":
        return "btyd_family" if family == "btyd" else "transaction_family"
    return {
        "balances": "balance_family",
        "products": "product_family",
        "profitability": "profitability_family",
        "customers": "customer_family",
    }[source]


def timed(case: str, folder: Path) -> dict:
    """Run one timed case; peak resident memory of this process includes the imports."""
    ctx, options = setup(folder)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    t0 = time.perf_counter()
    frame = CASES[case](folder, ctx, options)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {
        "seconds": seconds,
        "peak_gb": peak,
        "baseline_gb": before,
        "customers": len(frame),
        "columns": frame.shape[1] - 1,
    }


def main(argv: list[str]) -> None:
    case, folder = argv[0], Path(argv[1])
    if case == "check":
        out = check(folder)
    elif case == "ibis_families":
        out = profile(folder)
    elif case in CASES:
        out = timed(case, folder)
    else:
        raise SystemExit(f"case {case!r} is not one of {[*CASES, 'check', 'ibis_families']}")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
