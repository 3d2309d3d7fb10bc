"""Explain stage: SHAP drivers of predicted CLV and of every segmentation method's tiers."""
