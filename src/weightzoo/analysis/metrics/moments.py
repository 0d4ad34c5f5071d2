"""Moments and quantiles of a layer's weights (paper Figs 2–4; Unterthiner et al. 2020's statistics)."""

import numpy as np

from weightzoo.analysis.metrics.registry import Family, Metric, register, register_family

QUANTILES = (0, 25, 50, 75, 100)
"""Percentiles stored as ``q0`` … ``q100``."""

register_family(Family("moments", variable="statistic", dim="stat", network=True,
                       description="weight statistics of each layer and of the whole network"))


def _percentiles(layer) -> dict:
    # one call for all levels: a single partial sort of the block
    return dict(zip(QUANTILES, np.percentile(layer.flat, QUANTILES, axis=1)))


register(Metric("mean", "moments", "mean of weights", "1", lambda layer: layer.flat.mean(axis=1, dtype=np.float64)))
register(Metric("std", "moments", "standard deviation of weights", "1",
                lambda layer: layer.flat.std(axis=1, dtype=np.float64), label="weight std", direction=-1,
                source="Zheng et al. 2024, claim 1", claim=1))
for _q in QUANTILES:
    register(Metric(f"q{_q}", "moments", f"{_q}th percentile of weights", "1",
                    lambda layer, q=_q: layer.shared(_percentiles)[q]))
