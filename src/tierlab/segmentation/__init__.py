"""Segmentation stage: methods that draw customer groups, ordered into value tiers."""

from tierlab.segmentation.tiers import assign_tiers, order_tiers, tier_profile

__all__ = ["assign_tiers", "order_tiers", "tier_profile"]
