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
# # Customer lifetime value and what drives it
#
# Run the CLV benchmark on a small synthetic bank, compare the models on the holdout, and read
# the SHAP drivers of predicted value and of each value tier. All numbers come from the run's
# outputs; nothing is recomputed here. Extra Hydra overrides: `TIERLAB_OVERRIDES`
# (space-separated); output folder: `TIERLAB_OUTPUT_DIR` (the tests use both).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from tierlab.config import PROJECT_ROOT, compose
from tierlab.run import run

overrides = [
    "experiment=clv_benchmark",
    "data.n_customers=2000",
    *os.environ.get("TIERLAB_OVERRIDES", "").split(),
]
output_dir = Path(
    os.environ.get("TIERLAB_OUTPUT_DIR", str(PROJECT_ROOT / "outputs" / "clv_notebook"))
)
metrics = run(compose(overrides, output_dir=output_dir))

# %% [markdown]
# ## Which model predicts next year's value best?
# Supervised models were trained on the training snapshot (one horizon before the cut-off);
# baselines and BTYD models on the calibration data. The last row scores the generator's true
# expected value: the noise floor of the realised holdout.

# %%
comparison = pd.read_csv(output_dir / "clv" / "comparison.csv")
comparison[["model", "status", "gini", "spearman", "top10_share", "rmse", "decile_wape", "note"]]

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
done = comparison[comparison["status"].isin(["done", "reference"])]
ax.barh(done["model"], done["spearman"])
ax.set_xlabel("Spearman rank correlation with holdout value")
ax.invert_yaxis()

# %% [markdown]
# ## Gain curves and decile calibration (the run's plots)

# %%
from IPython.display import Image, display  # noqa: E402

for name in ("gain_curves.png", "decile_calibration.png"):
    display(Image(filename=str(output_dir / "clv" / name)))

# %% [markdown]
# ## What drives predicted CLV
# Mean |SHAP| of the Tweedie LightGBM model (log-link output space), with each indicator's unit
# and definition from the data dictionary.

# %%
importance = pd.read_csv(output_dir / "explain" / "clv_importance_lightgbm_tweedie.csv")
importance.head(10)[["rank", "indicator", "mean_abs_shap", "mean_shap", "unit", "description"]]

# %% [markdown]
# ## What puts customers in each value tier
# A surrogate classifier reproduces the value-quantile tiers (its fidelity first: an
# explanation is only as good as the agreement), then the top drivers of each tier.

# %%
print(
    "surrogate accuracy",
    round(metrics["explain/value_quantile/surrogate_accuracy"], 3),
    "macro-F1",
    round(metrics["explain/value_quantile/surrogate_macro_f1"], 3),
)
drivers = pd.read_csv(output_dir / "explain" / "tier_top_drivers_value_quantile.csv")
drivers[drivers["rank"] <= 3][["tier", "rank", "indicator", "mean_abs_shap", "unit"]]

# %%
display(Image(filename=str(output_dir / "explain" / "tier_drivers_kmeans.png")))
