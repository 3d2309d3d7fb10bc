"""Differentiated service: assign limited service levels to customers (``docs/allocation.md``).

``catalogue`` (service levels and the ASSUMED response), ``solvers`` (exact MILP/LP and the
dual-price greedy with its gap certificate), ``policies`` (uniform, RFM rules, top-down by value
tier, optimised), ``evaluate`` (profit, cost, ROI, coverage, sensitivity, break-even),
``plots`` and ``stage`` (the pipeline stage).
"""
