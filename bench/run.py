"""Benchmarks (`make bench`): each case runs in a fresh subprocess, measured side by side in one
run, and the table goes to bench/RESULTS.md with the machine and the date.

Cases:
* generator: the synthetic bank at the default size (20k customers) and at 100k customers
  (~10M transactions): wall time and peak resident memory of generating the Parquet files;
* load + validate: reading those files back and checking them against the schemas.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"

CASE = r"""
import json, resource, sys, time
from hydra.utils import instantiate
from tierlab.config import compose
n, cache, step = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cfg = compose([f"data.n_customers={n}", f"data.cache_dir={cache}"], output_dir=cache)
source = instantiate(cfg.data, _convert_="all")
t0 = time.perf_counter()
if step == "generate":
    source.generate(source.folder)
    rows = json.load(open(source.folder / "manifest.json"))["rows"]
else:
    rows = source.read(source.folder).summary()
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
print(json.dumps({"seconds": seconds, "peak_gb": peak, "rows": rows}))
"""


def measure(n: int, cache: str, step: str) -> dict:
    env = {**os.environ, "TQDM_DISABLE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", CASE, str(n), cache, step],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 1024**3
    return (
        f"{cpu}, {psutil.cpu_count()} cores, {mem:.0f} GB RAM, Python {platform.python_version()}"
    )


def main() -> None:
    rows = []
    for n in (20_000, 100_000):
        cache = tempfile.mkdtemp(prefix="tierlab-bench-")
        try:
            gen = measure(n, cache, "generate")
            load = measure(n, cache, "load")
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        tx = gen["rows"]["transactions"]
        rows.append(
            f"| {n:,} | {tx:,} | {gen['seconds']:.1f} | {tx / gen['seconds'] / 1e6:.2f} "
            f"| {gen['peak_gb']:.2f} | {load['seconds']:.1f} | {load['peak_gb']:.2f} |"
        )
        print(rows[-1], flush=True)
    today = dt.date.today().isoformat()
    text = f"""# Benchmark results

Written by `make bench` ({today}) on: {machine()}.
Each case runs in its own subprocess; all rows come from the same `make bench` run.
Targets (issue 2): 100k customers (~10M transactions) generate in under 2 minutes with under
4 GB peak memory on a 2-core machine.

## Synthetic bank generator

| customers | transactions | generate (s) | M transactions/s | generate peak RSS (GB) | load + validate (s) | load peak RSS (GB) |
|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}
"""
    RESULTS.write_text(text)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
