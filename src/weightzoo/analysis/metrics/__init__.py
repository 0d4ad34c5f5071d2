"""Per-layer metrics, declared once each (``registry``) and computed for every trial of a zoo (``values``).

Families: ``moments`` (mean, std, quantiles) and ``spectral`` (norms, stable rank, spectral entropy and the
power-law exponent of the eigenvalue spectrum, as WeightWatcher computes them).
"""

from weightzoo.analysis.metrics import moments, spectral  # noqa: F401  (registers the metrics)
from weightzoo.analysis.metrics.moments import QUANTILES
from weightzoo.analysis.metrics.registry import (
    FAMILIES,
    METRICS,
    Family,
    Metric,
    claim_metrics,
    direction_word,
    family_metrics,
    markdown_table,
    register,
    register_family,
)
from weightzoo.analysis.metrics.values import (
    LayerValues,
    array_metrics,
    families_metrics,
    layer_metrics,
    stored_values,
    weight_statistics,
)

__all__ = ["FAMILIES", "METRICS", "QUANTILES", "Family", "LayerValues", "Metric", "array_metrics", "claim_metrics",
           "direction_word", "families_metrics", "family_metrics", "layer_metrics", "markdown_table", "register", "register_family",
           "stored_values", "weight_statistics"]
