"""Per-layer metrics of every trial of a zoo, read in blocks of trials (``stats.iter_trial_blocks``)."""

import numpy as np
import xarray as xr

from weightzoo.analysis.metrics.registry import FAMILIES, family_metrics
from weightzoo.analysis.stats import BLOCK_VALUES, NETWORK, iter_trial_blocks, weight_variables
from weightzoo.analysis.zoo import layer_names


class LayerValues:
    """One layer's weights for a block of trials, ``(trials, *shape)``, or the whole network's, ``(trials, n)``.

    ``shared(fn)`` computes ``fn(self)`` once per block, so metrics that share work (percentiles, the
    eigenvalue spectrum) each stay one short function.
    """

    def __init__(self, values: np.ndarray, network: bool = False):
        self.values = values
        self.network = network
        self.flat = values.reshape(values.shape[0], -1)
        self._shared = {}

    def shared(self, fn):
        if fn not in self._shared:
            self._shared[fn] = fn(self)
        return self._shared[fn]


def _evaluate(metrics, layer: LayerValues, network_too: bool) -> np.ndarray:
    n = layer.flat.shape[0]
    if layer.flat.shape[1] == 0 or (layer.network and not network_too):
        return np.full((n, len(metrics)), np.nan)
    return np.column_stack([np.asarray(m.compute(layer), dtype=np.float64) for m in metrics])


def layer_metrics(ds: xr.Dataset, family: str, snapshot: int = -1, include_network: bool = True,
                  max_values: int = BLOCK_VALUES, kind: str = "weight") -> xr.Dataset:
    """Every metric of ``family`` for every trial and layer (dims ``trial × layer``, one variable per metric).

    ``layer`` holds the layer ids in model order and, with ``include_network``, ``"network"`` (all weight
    matrices of a trial pooled, biases excluded; NaN for families not defined on it). ``snapshot`` is an
    epoch number, -1 the last stored. ``kind="bias"``: the same of each layer's bias (``{layer}_bias``; NaN
    for a layer without one, ``network`` = all biases together).
    """
    return families_metrics(ds, [family], snapshot, include_network, max_values, kind)[family]


def families_metrics(ds: xr.Dataset, families, snapshot: int = -1, include_network: bool = True,
                     max_values: int = BLOCK_VALUES, kind: str = "weight", on_block=None) -> dict[str, xr.Dataset]:
    """``layer_metrics`` of several ``families`` from one read of the zoo: each block of trials is decompressed
    once for all of them (and the network's values concatenated once). ``on_block(block, arrays)``, if given,
    also sees every block (``stats.iter_trial_blocks``' items), so that other per-trial reductions of the same
    snapshot share the read (``features.trial_features``)."""
    layers = layer_names(ds)
    variables = weight_variables(ds, layers) if kind == "weight" else [f"{layer}_{kind}" for layer in layers]
    present = [v for v in variables if v in ds]
    labels = layers + ([NETWORK] if include_network else [])
    metrics = {family: family_metrics(family) for family in families}
    out = {family: np.full((ds.sizes["trial"], len(labels), len(metrics[family])), np.nan) for family in families}
    for block, arrays in iter_trial_blocks(ds, present, snapshot, max_values) if present else ():
        for i, v in enumerate(variables):
            if v in arrays:
                values = LayerValues(arrays[v])
                for family in families:
                    out[family][block, i] = _evaluate(metrics[family], values, FAMILIES[family].network)
        if include_network:
            whole = LayerValues(np.concatenate([arrays[v].reshape(arrays[v].shape[0], -1) for v in present], axis=1),
                                network=True)
            for family in families:
                out[family][block, -1] = _evaluate(metrics[family], whole, FAMILIES[family].network)
        if on_block is not None:
            on_block(block, arrays)
    n_weights = [int(np.prod(ds[v].shape[2:])) if v in ds else 0 for v in variables]
    if include_network:
        n_weights.append(sum(n_weights))
    coords = {"trial": ds["trial"].values, "layer": labels, "n_weights": ("layer", n_weights)}
    if "seed" in ds.coords:
        coords["seed"] = ("trial", ds["seed"].values)
    epoch = int(ds["snapshot"].values[-1] if snapshot == -1 else snapshot)
    return {family: xr.Dataset(
        {m.name: (("trial", "layer"), out[family][:, :, k], {"long_name": m.long_name, "units": m.units})
         for k, m in enumerate(metrics[family])},
        coords=coords,
        attrs={"snapshot": epoch, "model": ds.attrs.get("model", ""), "dataset": ds.attrs.get("dataset", ""),
               "family": family},
    ) for family in families}


def array_metrics(values: np.ndarray, family: str) -> np.ndarray:
    """(trial, metric) values of every metric of ``family`` on per-trial arrays ``values`` (trial, ...), e.g.
    the moments of each trial's node strengths."""
    return _evaluate(family_metrics(family), LayerValues(np.asarray(values)), True)


def weight_statistics(ds: xr.Dataset, snapshot: int = -1, include_network: bool = True,
                      max_values: int = BLOCK_VALUES) -> xr.Dataset:
    """Mean, standard deviation and quantiles ``q0 … q100`` of the weights of every trial (paper Figs 2–4;
    Unterthiner et al. 2020's features): ``layer_metrics`` of the ``moments`` family. ``std`` is the
    population standard deviation (ddof 0)."""
    return layer_metrics(ds, "moments", snapshot, include_network, max_values)


def stored_values(features: xr.Dataset, metric, validated: bool = True) -> xr.DataArray:
    """(trial, layer) values of a registered metric in per-trial features; with ``validated``, NaN where its ``valid`` companion
    metric says the value is unreliable. Attribute ``defined``: per layer, whether any trial has a value."""
    family = FAMILIES[metric.family]
    stored = features[family.variable]
    values = stored.sel({family.dim: metric.name}, drop=True)
    defined = {str(layer): bool(np.isfinite(values.sel(layer=layer).values).any()) for layer in values["layer"].values}
    if validated and metric.valid:
        values = values.where(stored.sel({family.dim: metric.valid}, drop=True) > 0)
    return values.assign_attrs(defined=defined)
