"""Scale benchmark (`make bench`, issue 10): 1M, 10M and 100M transactions on one machine.

For each size the synthetic bank is generated straight to partitioned Parquet (one part file per
chunk of customers; the transaction log is never held in memory), then loaded out of core
(``data.out_of_core``: the large tables are validated batch by batch and stay on disk), then the
features stage's work is done on DuckDB reading the part files under a memory limit: indicators
at the cut-off, holdout targets, and indicators and targets of the training snapshot.  Every step
runs in a fresh subprocess; peak memory is the child's ``ru_maxrss`` (DuckDB's buffers included).

    python -m bench.scale                 # all sizes, writes bench/RESULTS_SCALE.md
    python -m bench.scale --sizes 1e6     # one size, prints the rows only

The generated data sets go to the synthetic bank's usual cache (``data/synthetic``, git-ignored;
about 1.8 GB for 100M transactions), so that ``tierlab run experiment=scale`` reuses the largest
one; generation is timed from scratch every time all the same (a finished copy is discarded when
the cache already holds one).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from importlib.metadata import version
from pathlib import Path

from bench.run import ROOT, child, machine

RESULTS = Path(__file__).resolve().parent / "RESULTS_SCALE.md"
SPILL = ROOT / "bench" / "_work" / "duckdb_tmp"
#: Transactions per customer of the default generator over its 36 months (bench/RESULTS.md:
#: 10,729,884 for 100,000 customers), used to size the banks.
TX_PER_CUSTOMER = 107.3
#: Banks by transactions -> customers (conf/experiment/scale.yaml uses the largest).
CUSTOMERS = {1_000_000: 9_320, 10_000_000: 93_200, 100_000_000: 932_000}
SIZES = tuple(CUSTOMERS)
MEMORY_LIMIT = "4GB"  # DuckDB's limit, the default of conf/features/default.yaml
TIGHT_LIMIT = "2GB"  # the largest bank once more under a tight limit: DuckDB spills to disk
THREADS = 2
ON_DISK = ("transactions", "balances", "profitability")

CASE = r"""
import json, resource, sys, time
from hydra.utils import instantiate
from omegaconf import OmegaConf
from tierlab.config import compose
n, spill, step, memory_limit, threads = sys.argv[1:6]
cfg = compose(
    [f"data.n_customers={n}", "data.partitioned=true", "data.out_of_core=true",
     f"features.engine_options.memory_limit={memory_limit}",
     f"features.engine_options.threads={threads}",
     f"features.engine_options.temp_directory={spill}"],
)
source = instantiate(cfg.data, _convert_="all")
out = {"folder": str(source.folder)}
t0 = time.perf_counter()
if step == "generate":
    source.generate(source.folder)
    manifest = json.load(open(source.folder / "manifest.json"))
    if manifest.get("layout") != "partitioned":  # a cached single-file copy was kept
        sys.exit(f"{source.folder} holds the single-file layout: delete it and run again")
    out["rows"] = manifest["rows"]
    out["bytes"] = sum(p.stat().st_size for p in source.folder.rglob("*.parquet"))
elif step == "validate":  # what the data stage does before the realism metrics
    from tierlab.data.out_of_core import customer_sample
    data = source.read(source.folder)
    out["rows"] = data.summary()
    out["validate_seconds"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    out["fingerprint"] = data.fingerprint()
    out["fingerprint_seconds"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    customer_sample(data, int(cfg.data.realism_sample), int(cfg.seed))
    out["sample_seconds"] = time.perf_counter() - t1
else:
    from tierlab.data.split import CalibrationSplit
    from tierlab.features import Context, build_indicators
    from tierlab.features.engine import connect, tables
    from tierlab.features.stage import training_snapshot
    from tierlab.features.targets import build_targets
    source.params["validate"] = False  # timed in its own step
    data = source.read(source.folder)
    features = OmegaConf.to_container(cfg.features, resolve=True)
    split = CalibrationSplit.from_config(
        cfg.split.cutoff, int(cfg.split.holdout_months), data.data_start, data.data_end
    )
    t0 = time.perf_counter()
    con = connect("duckdb", features["engine_options"])
    sources = tables(con, data)
    ctx = Context.from_config(features, split.cutoff)
    indicators, _ = build_indicators(con, sources, ctx)
    targets = build_targets(con, sources, ctx, split, 0.008, data.truth)
    training = training_snapshot(con, sources, features, split, data.data_start)
    out["customers"] = len(indicators)
    out["columns"] = indicators.shape[1] - 1
    out["training_customers"] = len(training.indicators)
out["seconds"] = time.perf_counter() - t0
out["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
print(json.dumps(out))
"""


def measure(n: int, step: str, memory_limit: str = MEMORY_LIMIT) -> dict:
    return child(["-c", CASE, str(n), str(SPILL), step, memory_limit, str(THREADS)])


def run_size(transactions: int) -> dict:
    n = CUSTOMERS.get(transactions) or round(transactions / TX_PER_CUSTOMER)
    result = {"target": transactions, "customers": n}
    for step in ("generate", "validate", "features"):
        result[step] = measure(n, step)
        print(f"{transactions:,} transactions, {step}: {json.dumps(result[step])}", flush=True)
    return result


def row(r: dict) -> str:
    gen, val, feat = r["generate"], r["validate"], r["features"]
    tx = gen["rows"]["transactions"]
    on_disk = sum(gen["rows"][t] for t in ON_DISK)
    return (
        f"| {r['customers']:,} | {tx:,} | {gen['bytes'] / 1e9:.2f} "
        f"| {gen['seconds']:.1f} | {tx / gen['seconds'] / 1e6:.2f} | {gen['peak_gb']:.2f} "
        f"| {val['seconds']:.1f} | {on_disk / val['seconds'] / 1e6:.2f} | {val['peak_gb']:.2f} "
        f"| {feat['seconds']:.1f} | {tx / feat['seconds'] / 1e6:.2f} | {feat['peak_gb']:.2f} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", type=float, default=SIZES, help="transactions")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    results = [run_size(int(size)) for size in args.sizes]
    rows = [row(r) for r in results]
    print("\n".join(rows))
    if tuple(int(s) for s in args.sizes) != SIZES:
        return
    tight = measure(results[-1]["customers"], "features", TIGHT_LIMIT)
    print(f"features under {TIGHT_LIMIT}: {json.dumps(tight)}", flush=True)
    minutes = (time.perf_counter() - started) / 60
    first, last = results[0], results[-1]
    growth = {
        step: last[step]["seconds"] / first[step]["seconds"]
        for step in ("generate", "validate", "features")
    }
    size_ratio = (
        last["generate"]["rows"]["transactions"] / first["generate"]["rows"]["transactions"]
    )
    text = f"""# Scale benchmark: 1M, 10M and 100M transactions on one machine

Written by `make bench` (`python -m bench.scale`, {dt.date.today().isoformat()}) on: {machine()}.
All rows come from one run ({minutes:.1f} min; 1-minute load average {load_before:.1f} at the
start: the cores are shared).  duckdb {version("duckdb")}, ibis-framework
{version("ibis-framework")}, pyarrow {version("pyarrow")}, pandas {version("pandas")}.

Each step runs in a fresh subprocess; peak RSS is the child's `ru_maxrss` (DuckDB's buffers
included, ~0.2 GB of interpreter and imports too).  Banks are sized by transactions: the
generator makes ~{TX_PER_CUSTOMER:g} transactions per customer over its 36 months, so 100M
transactions are ~{last["customers"] / 1e6:.2f}M customers (not the ~2M of the issue's
estimate, which assumes ~50 per customer).

* **generate**: the synthetic bank written chunk by chunk (25,000 customers) to partitioned
  Parquet (`data.partitioned=true`: a folder per table, one part file per chunk); memory is
  bounded by the chunk, not the bank.  M tx/s = transactions per second.
* **data stage out of core** (`data.out_of_core=true`), what `tierlab run` does before its
  realism metrics: customers, products and ground truth read into memory and checked with
  pandera; transactions, balances and profitability checked batch by batch (1M rows) with the
  same contracts, plus one DuckDB query for keys repeated across batches (validate); the data
  fingerprint, hashing the rows of every table batch by batch (a second pass over the on-disk
  tables); and the seeded sample of 50,000 customers for the realism metrics (a third, filtered
  pass).  M rows/s = rows of the three on-disk tables per second of the whole step; the split
  is under the table.
* **features**: what the features stage computes, on DuckDB reading the part files
  (`memory_limit={MEMORY_LIMIT}`, `threads={THREADS}`, spilling to a temp directory):
  {first["features"]["columns"]} indicators at the cut-off (2024-12-31), holdout targets, and
  indicators and targets of the training snapshot one holdout earlier; the clock stops when all
  four are pandas frames.  M tx/s = transactions of the log per second (the log is scanned
  several times).

| customers | transactions | Parquet (GB) | generate (s) | M tx/s | peak RSS (GB) | data stage (s) | M rows/s | peak RSS (GB) | features (s) | M tx/s | peak RSS (GB) |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

The data stage of the largest bank, split: validate {last["validate"]["validate_seconds"]:.1f} s,
fingerprint {last["validate"]["fingerprint_seconds"]:.1f} s, realism sample
{last["validate"]["sample_seconds"]:.1f} s.

The features of the largest bank once more with `memory_limit={TIGHT_LIMIT}`: {tight["seconds"]:.1f} s
(against {last["features"]["seconds"]:.1f} s with {MEMORY_LIMIT}), peak RSS {tight["peak_gb"]:.2f} GB
(against {last["features"]["peak_gb"]:.2f} GB): the limit bounds DuckDB's buffers (whether and how
much it spilled to `temp_directory` is not measured here); the rest of the peak is the result
frames in pandas (one row per customer, {first["features"]["columns"]} indicators, four frames)
and the interpreter.  With 1GB DuckDB stops with an out-of-memory error at this size (seen by
hand on 2026-11-28, not part of this run), which tierlab reports naming
`features.engine_options.memory_limit`.

From 1M to 100M transactions ({size_ratio:.0f}× the rows): generation takes
{growth["generate"]:.0f}× as long, the data stage {growth["validate"]:.0f}×, the features
{growth["features"]:.0f}×.  The issue's bound: under 8 GB of memory at 100M transactions on this
24 GB machine; peak here {max(last[s]["peak_gb"] for s in ("generate", "validate", "features")):.2f} GB.
"""
    RESULTS.write_text(text)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
