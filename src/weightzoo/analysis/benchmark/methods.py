"""The benchmark's methods: which per-trial features each feeds the regressor, per (model, dataset) cell and
pooled over cells.

Within a cell the layers of every trial align (architectures of one model share layer names), so features are
per layer. Pooled over cells of different models they do not, so the pooled rows use layer-pooled features
only: the moments of all weights together and of all biases together (the features files' ``network`` layer,
Unterthiner et al.'s "statistics pooled over layers"), and the mean over layers of every other per-layer value.
"""

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from weightzoo.analysis.metrics import FAMILIES

NETWORK_LAYER = "network"


@dataclass(frozen=True)
class Method:
    key: str
    name: str
    text: str
    """What the method is, for the table and the caption."""
    features: Callable[[xr.Dataset, bool], tuple[np.ndarray, list[str], str]] | None = None
    """(features, pooled) -> (X (trial, feature), feature names, note); None: predictions come from elsewhere."""


def _layers(data: xr.DataArray, dim: str) -> list[str]:
    return [str(layer) for layer in data[dim].values if str(layer) != NETWORK_LAYER]


def _flat(data: xr.DataArray, layer_dim: str, stat_dim: str, prefix: str) -> tuple[np.ndarray, list[str]]:
    data = data.transpose("trial", layer_dim, stat_dim)
    names = [f"{layer}:{prefix}{stat}" for layer in data[layer_dim].values for stat in data[stat_dim].values]
    return data.values.reshape(data.sizes["trial"], -1).astype(float), names


def _layer_mean(data: xr.DataArray, layer_dim: str, stat_dim: str, prefix: str) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a metric undefined on every layer of a trial stays NaN
        values = np.nanmean(data.transpose("trial", layer_dim, stat_dim).values.astype(float), axis=1)
    return values, [f"layer mean:{prefix}{stat}" for stat in data[stat_dim].values]


def unterthiner_features(features: xr.Dataset, pooled: bool):
    """Per layer, kernel and bias separately: mean, std and quantiles 0/25/50/75/100 (Unterthiner et al. 2020)."""
    dim = FAMILIES["moments"].dim
    parts, names, note = [], [], ""
    for variable, prefix in (("statistic", "weight "), ("bias_statistic", "bias ")):
        if variable not in features:
            note = f"no {variable} in these features (extracted by an older weightzoo): weights only"
            continue
        data = features[variable]
        data = data.sel(layer=[NETWORK_LAYER]) if pooled else data.sel(layer=_layers(data, "layer"))
        X, n = _flat(data, "layer", dim, prefix)
        parts.append(X)
        names += n
    return np.hstack(parts), names, note


def spectral_features(features: xr.Dataset, pooled: bool):
    """Every metric the registry's ``spectral`` family holds, per weight matrix (layer-mean when pooled)."""
    family = FAMILIES["spectral"]
    if family.variable not in features:
        return np.zeros((features.sizes["trial"], 0)), [], f"no {family.variable} in these features"
    data = features[family.variable]
    data = data.sel(layer=_layers(data, "layer"))
    reduce = _layer_mean if pooled else _flat
    X, names = reduce(data, "layer", family.dim, "")
    return X, names, ""


def strength_features(features: xr.Dataset, pooled: bool):
    """Per layer mean, std and quantiles of the node strengths (layer-mean when pooled)."""
    if "strength_statistic" in features:
        data, note = features["strength_statistic"], ""
    elif "mean_strength" in features:
        data = features["mean_strength"].expand_dims(stat=["mean"], axis=-1)
        note = "only the mean node strength is in these features (extracted by an older weightzoo)"
    else:
        return np.zeros((features.sizes["trial"], 0)), [], "no node strength in these features"
    reduce = _layer_mean if pooled else _flat
    X, names = reduce(data, "strength_layer", data.dims[-1], "strength ")
    return X, names, note


def union_features(features: xr.Dataset, pooled: bool):
    """(a), (b) and (c) together."""
    parts = [f(features, pooled) for f in (unterthiner_features, spectral_features, strength_features)]
    notes = "; ".join(note for _, _, note in parts if note)
    return np.hstack([X for X, _, _ in parts]), [n for _, names, _ in parts for n in names], notes


METHODS = (
    Method("a", "per-layer statistics",
           "Unterthiner et al. 2020: per layer, kernel and bias separately, mean, std and quantiles 0/25/50/75/100",
           unterthiner_features),
    Method("b", "spectral metrics",
           "the spectral metrics of the metric registry (WeightWatcher's definitions), per weight matrix",
           spectral_features),
    Method("c", "node strength",
           "per layer mean, std and quantiles 0/25/50/75/100 of the node strengths (analysis.strength.kind)",
           strength_features),
    Method("d", "union of (a)-(c)", "the features of (a), (b) and (c) together", union_features),
    Method("e", "weight-space network",
           "a permutation-equivariant network on the weights themselves (nfn, Zhou et al. 2023), its out-of-fold "
           "predictions on these folds (weight_space_net.csv)"),
)
BY_KEY = {m.key: m for m in METHODS}


def usable_columns(X: np.ndarray) -> np.ndarray:
    """Columns with a finite value in some trial and not constant (the rest cannot split a tree)."""
    finite = np.isfinite(X)
    spread = np.array([np.ptp(X[finite[:, j], j]) > 0 if finite[:, j].any() else False for j in range(X.shape[1])],
                      dtype=bool)
    return spread
