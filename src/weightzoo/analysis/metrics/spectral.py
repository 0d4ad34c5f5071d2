"""Spectral metrics of each layer's weight matrices, as WeightWatcher computes them (``analysis.spectral``).

Conv kernels count as kh·kw matrices and ViT's attention (packed qkv, projection) and MLP weights as one
matrix each. alpha is only used in claims where its spectrum has ``MIN_EIGENVALUES`` or more eigenvalues
(``alpha_reliable``); its fit quality (KS distance, tail) is stored beside it.
"""

import numpy as np

from weightzoo.analysis import spectral
from weightzoo.analysis.metrics.registry import Family, Metric, register, register_family

register_family(Family("spectral", variable="spectral", dim="spectral_stat", network=False,
                       description="spectral metrics of each layer's weight matrices (WeightWatcher's definitions)"))

# Expected directions (claims 6-8): Martin & Mahoney (2021, JMLR; 2021, Nat. Commun.) find that training makes
# the spectrum of WᵀW heavy-tailed, lowering alpha and the stable rank, and that lower alpha and lower (log)
# norms go with higher test accuracy across trained models; norm-based capacity bounds (Bartlett et al. 2017)
# point the same way for the spectral norm.
CLAIMS = {
    "alpha": dict(claim=6, direction=-1, label="power-law exponent alpha", valid="alpha_reliable",
                  source="Martin & Mahoney 2021"),
    "stable_rank": dict(claim=7, direction=-1, label="stable rank", source="Martin & Mahoney 2021"),
    "spectral_norm_sq": dict(claim=8, direction=-1, label="squared spectral norm",
                             source="Martin & Mahoney 2021; Bartlett et al. 2017"),
}


def _all_metrics(layer) -> dict:
    """Every spectral metric of a block of trials, once per block; NaN for parameters that are not matrices."""
    if layer.network or layer.values.ndim not in (3, 5):
        return {name: np.full(layer.values.shape[0], np.nan) for name in spectral.SPECTRAL_METRICS}
    return spectral.spectral_metrics(layer.values)


for _name, _about in spectral.SPECTRAL_METRICS.items():
    register(Metric(_name, "spectral", _about.long_name, _about.units,
                    lambda layer, name=_name: layer.shared(_all_metrics)[name], **CLAIMS.get(_name, {})))
