"""CLV model fitting benchmark (issue 5): BG/NBD, Gamma-Gamma and Pareto/NBD on simulated
customers, each fit in its own subprocess, side by side in one run; writes bench/RESULTS_CLV.md.

    python -m bench.clv            (part of `make bench`)

Customers are simulated from known parameters with purchase times on whole days and times in
weeks, like a BTYD summary of a real daily log, so many customers share a (frequency, recency, T)
row; the models fit the compressed unique rows.  Goals of issue 5 (2 cores): BG/NBD on 1M
customers in under 1 s, Gamma-Gamma in under 0.3 s.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.run import machine

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS_CLV.md"
BGNBD = {"r": 0.25, "alpha": 4.4, "a": 0.8, "b": 2.4}  # near the CDNOW estimates
SPEND = {"p": 6.0, "q": 3.7, "v": 15.0}
CASES = {
    "bgnbd": (1_000_000, "BetaGeoModel", 1.0),
    "gamma_gamma": (1_000_000, "GammaGammaModel", 0.3),
    "paretonbd": (1_000_000, "ParetoNBDModel", None),
}


def simulate(n: int, seed: int = 0) -> pd.DataFrame:
    """BG/NBD purchases over 1..104 weeks (whole days), Gamma-Gamma mean repeat spend."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(BGNBD["r"], 1.0 / BGNBD["alpha"], n)
    p = rng.beta(BGNBD["a"], BGNBD["b"], n)
    T = rng.integers(7, 729, n) / 7.0
    t, x, t_x = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        t[idx] += rng.exponential(1.0 / lam[idx])
        day = np.floor(t[idx] * 7.0) / 7.0
        past = day > T[idx]
        active[idx[past]] = False
        buy = idx[~past]
        new_day = day[~past] > t_x[buy]  # purchases on the same day are one purchase
        x[buy[new_day]] += 1
        t_x[buy] = day[~past]
        active[buy[rng.random(buy.size) < p[buy]]] = False
    nu = rng.gamma(SPEND["q"], 1.0 / SPEND["v"], n)
    shape = np.maximum(SPEND["p"] * x, 1e-9)
    zbar = np.where(x > 0, rng.gamma(shape, 1.0 / (np.maximum(x, 1) * nu)), 0.0)
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": T, "monetary_value": zbar})


def child(case: str) -> None:
    """Fit one model on its simulated customers and print seconds, rows and peak memory."""
    import tierlab.clv as clv

    n, model, _ = CASES[case]
    summary = simulate(n)
    started = time.perf_counter()
    fitted = getattr(clv, model)().fit(summary)
    seconds = time.perf_counter() - started
    # the rows the likelihood runs over: the unique (x, t_x, T) rows for purchase counts, every
    # repeat customer for Gamma-Gamma (not compressed: with a continuous spend all are distinct)
    unique = getattr(fitted, "n_unique_rows_", fitted.n_customers_)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "customers": n,
                "unique_rows": unique,
                "params": {k: round(v, 4) for k, v in fitted.params_.items()},
                "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
            }
        )
    )


def main() -> None:
    rows = []
    for case, (n, model, goal) in CASES.items():
        out = subprocess.run(
            [sys.executable, "-m", "bench.clv", case], capture_output=True, text=True, check=True
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        met = "–" if goal is None else ("yes" if result["seconds"] < goal else "**no**")
        goal_text = "–" if goal is None else f"< {goal} s"
        rows.append(
            f"| `{model}` | {n:,} | {result['unique_rows']:,} | {result['seconds']:.2f} "
            f"| {goal_text} | {met} | {result['peak_gb']:.2f} | {result['params']} |"
        )
        print(rows[-1], flush=True)
    RESULTS.write_text(
        f"""# CLV model fitting benchmark

Written by `make bench` ({dt.date.today().isoformat()}) on: {machine()}.
Each fit runs in its own subprocess of the same run; the clock covers `fit` only (validation,
compression to unique rows, optimisation, standard errors), not the simulation.  Simulated
customers: BG/NBD with r, alpha, a, b = {tuple(BGNBD.values())}, purchase days over 1-104
weeks; Gamma-Gamma p, q, v = {tuple(SPEND.values())} for the repeat spend.  The Pareto/NBD
fit uses a numerical gradient (no goal in the issue); its estimates differ from the BG/NBD
parameters because the data come from the BG/NBD process, not from a Pareto/NBD one.

Where the time goes.  BG/NBD: compressing the 1M rows to unique (x, t_x, T) rows (a hash code
per column, one int64 key, `np.unique`: about 0.1 s), then about 17 evaluations of the
likelihood and its analytic gradient by L-BFGS-B and one analytic Hessian for the standard
errors.  The gamma functions depend on x alone and run once per distinct x (about 100 values),
so an evaluation costs a few logarithms per unique row (15-25 ms).  Gamma-Gamma: fitted on the
repeat customers without compression (the "unique rows" column counts them); its gamma functions
also run per distinct x and its data-only sums once per fit, leaving one logarithm and one
division per customer and evaluation (3-5 ms); validation, the repeat-customer selection and
that setup take about a third of the fit.  Pareto/NBD: nine likelihood evaluations per numerical
gradient; its 2F1 terms depend on (x, t) alone and run once per distinct (x, t_x) or (x, T)
pair (about 20k against 332k rows), so the per-row logarithms now dominate.  The fits run with
one BLAS thread: their dot products are short, and idle OpenBLAS threads spinning between them
cost 10-30 % on 2 cores.  Timings on this shared machine vary by up to a third between runs.

| model | customers | unique rows fitted | fit (s) | goal | met | peak RSS (GB) | estimates |
|---|---:|---:|---:|---|---|---:|---|
{chr(10).join(rows)}
"""
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1])
    else:
        main()
