# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # tierlab quickstart
#
# Run an experiment on a small synthetic bank, then look at what it produced: the tables, the
# calibration/holdout split, the realism checks, the MLflow run and the research report.
# Extra Hydra overrides can be passed in the environment variable `TIERLAB_OVERRIDES`
# (space-separated) and the output folder in `TIERLAB_OUTPUT_DIR`; the test suite uses them to
# keep the MLflow store and outputs in a temporary folder.

# %%
import os
from pathlib import Path

import mlflow
import pandas as pd

from tierlab.config import PROJECT_ROOT, compose
from tierlab.data import load_data
from tierlab.run import run

overrides = ["data.n_customers=2000", *os.environ.get("TIERLAB_OVERRIDES", "").split()]
output_dir = os.environ.get("TIERLAB_OUTPUT_DIR", str(PROJECT_ROOT / "outputs" / "quickstart"))
cfg = compose(overrides, output_dir=output_dir)
print(
    cfg.data.n_customers, "customers,", cfg.data.n_months, "months; tracking to", cfg.tracking.uri
)

# %% [markdown]
# ## Run the pipeline
# One call = one MLflow run; the returned dict holds the run's metrics.

# %%
metrics = run(cfg)
pd.Series(metrics).round(3)

# %% [markdown]
# ## The data set
# The same call the pipeline makes; the generated tables are cached, so this is fast.

# %%
data = load_data(cfg.data)
print(data.summary(), "fingerprint", data.fingerprint())
data.transactions.head()

# %%
data.customers.head()

# %% [markdown]
# ## The MLflow run
# Params are the flattened config, tags carry the code version and data fingerprint.

# %%
mlflow.set_tracking_uri(cfg.tracking.uri)
runs = mlflow.search_runs(experiment_names=[cfg.tracking.experiment_name])
runs[["run_id", "status", "tags.data_fingerprint", "metrics.data/top20_profit_share"]].head()

# %% [markdown]
# ## The research report
# The run ended by writing its report (HTML with every figure embedded, and a Markdown twin)
# into its output folder. The same report can be rebuilt from MLflow alone at any time:
# `tierlab report --experiment <name>` on the command line, or `build_report` from Python.
# Here: the key findings, read from the Markdown twin.

# %%
report = Path(output_dir) / "report" / "report.md"
print(report)
text = report.read_text()
print(text[text.index("## Key findings") : text.index("## Segmentation")])
