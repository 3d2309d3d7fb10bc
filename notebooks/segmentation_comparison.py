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
# # Comparing segmentation methods
#
# Run the segmentation benchmark on a small synthetic bank and compare how the methods' tiers
# separate next year's value: the comparison table, the holdout value share by tier, the tier
# profiles and what each method's tier 1 looks like. All numbers come from the run's outputs.
# Extra Hydra overrides: `TIERLAB_OVERRIDES` (space-separated); output folder:
# `TIERLAB_OUTPUT_DIR` (the tests use both).

# %%
import os
from pathlib import Path

import pandas as pd
from IPython.display import Image, display

from tierlab.config import PROJECT_ROOT, compose
from tierlab.run import run

overrides = [
    "experiment=segmentation_benchmark",
    "data.n_customers=2000",
    "segmentation.stability_bootstrap=2",
    *os.environ.get("TIERLAB_OVERRIDES", "").split(),
]
output_dir = Path(
    os.environ.get("TIERLAB_OUTPUT_DIR", str(PROJECT_ROOT / "outputs" / "segmentation_notebook"))
)
metrics = run(compose(overrides, output_dir=output_dir))

# %% [markdown]
# ## The comparison
# Internal metrics (silhouette, ...) are computed for every method in the same standardised
# space; business metrics compare the tiers with the value customers realised in the holdout.

# %%
comparison = pd.read_csv(output_dir / "segmentation" / "comparison.csv")
comparison[
    ["method", "n_tiers", "silhouette", "stability_ari", "top_tier_lift", "spearman", "note"]
]

# %% [markdown]
# ## Holdout value share by tier, and tier profiles

# %%
for name in ("value_share_by_tier.png", "tier_profiles.png"):
    display(Image(filename=str(output_dir / "segmentation" / name)))

# %% [markdown]
# ## Who is in each method's top tier?
# Mean indicators of tier 1 against the whole customer base.

# %%
tiers = pd.read_parquet(output_dir / "tiers.parquet").set_index("customer_id")
indicators = pd.read_parquet(output_dir / "indicators.parquet").set_index("customer_id")
shown = ["profit_12m", "aum_avg_12m", "liquid_share", "n_products", "recency_days"]
top = {m: indicators.loc[tiers[m] == 1, shown].mean() for m in tiers.columns}
pd.DataFrame({"all customers": indicators[shown].mean(), **top}).round(2)

# %% [markdown]
# ## Why customers are in each tier (surrogate SHAP drivers)

# %%
fidelity = {
    m: round(metrics[f"explain/{m}/surrogate_accuracy"], 3)
    for m in tiers.columns
    if f"explain/{m}/surrogate_accuracy" in metrics
}
print("surrogate accuracy on held-out customers:", fidelity)
display(Image(filename=str(output_dir / "explain" / "tier_drivers_value_quantile.png")))
