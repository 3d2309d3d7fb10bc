"""Seeded samples of customers, for the stages that bound their cost on millions of customers.

The sampling options (``segmentation.stability_sample``, ``segmentation.methods.gmm.fit_sample``,
``explain.surrogate_sample``, ``report.bootstrap.max_customers``, ``data.realism_sample``) are
``null`` (every customer) or a size; a sample no smaller than the data is every customer.
"""

from __future__ import annotations

import numpy as np


def check_sample_size(value, setting: str, minimum: int, null_means: str) -> None:
    """``value`` is ``None`` or an integer >= ``minimum``; otherwise a ValueError naming
    ``setting`` (the config key) and what ``null`` means there."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(
            f"{setting}={value!r} should be an integer >= {minimum} or null (null = {null_means})"
        )


def seeded_rows(n: int, size: int | None, entropy) -> np.ndarray | None:
    """Sorted positions of ``size`` of ``n`` rows drawn without replacement from
    ``numpy.random.default_rng(entropy)``; ``None`` (every row) when ``size`` is ``None`` or at
    least ``n``."""
    if size is None or n <= size:
        return None
    return np.sort(np.random.default_rng(entropy).choice(n, int(size), replace=False))
