"""Per-trial features of one experiment, the common currency of every scope of the analysis.

A zoo's weights are large and their shapes differ between architectures; what the paper's questions need
per trial is small and comparable across architectures of a (model, dataset): weight and bias statistics per
layer, the weights' quantile function per layer (Wasserstein-1 distances between any two trials, whatever their
widths), node strength per layer (mean, and the moments of its nodes), curves, accuracies, the group, the architecture and the trial's
hyperparameters. ``trial_features`` extracts them from one zoo; ``pool`` stacks several experiments'
features along ``trial`` so one analysis runs per experiment, pooled, or stratified by architecture.
"""

import os
from collections.abc import Sequence

import numpy as np
import xarray as xr

from weightzoo.analysis.metrics import FAMILIES, array_metrics, families_metrics, family_metrics, layer_metrics
from weightzoo.analysis.stats import NETWORK, SortedSample
from weightzoo.analysis.strength import incoming_strength, node_strength, strength_array, strength_layers
from weightzoo.analysis.zoo import layer_names, trial_groups
from weightzoo.io.atomic import load_checked, without_checksum
from weightzoo.config import HYPERPARAMETERS
from weightzoo.io.store import CURVES

EARLY_FAMILIES = ("moments",)
"""Metric families also stored at the early snapshot (claim 5 reads them); the spectral metrics of any other
snapshot are one ``layer_metrics(zoo, "spectral", snapshot)`` call away, and would double the features' time."""


def quantile_levels(n: int) -> np.ndarray:
    """Midpoint probability levels ``(i + 0.5) / n``: the mean |difference| of two quantile functions on them
    is the Wasserstein-1 distance of the two distributions (up to the discretisation)."""
    return (np.arange(n) + 0.5) / n


def quantile_function(sorted_values: np.ndarray, n: int) -> np.ndarray:
    """(trial, m) sorted samples -> (trial, n) quantile functions at ``quantile_levels(n)``."""
    m = sorted_values.shape[1]
    # the empirical quantile function of m values is a step function: value k covers levels [k/m, (k+1)/m)
    index = np.minimum((quantile_levels(n) * m).astype(np.int64), m - 1)
    return sorted_values[:, index]


def trial_features(
    ds: xr.Dataset,
    groups=None,
    snapshot: int = -1,
    early_snapshot: int | None = 1,
    n_quantiles: int = 2000,
    strength_kind: str = "abs_in",
    strengths: Sequence[xr.DataArray] | None = None,
    seed: int = 0,
    experiment: str | None = None,
    on_block=None,
    with_strengths: bool = False,
):
    """Features of every trial of the zoo ``ds`` (dims ``trial``, ``layer``, ``stat``, ``level``, ...).

    ``groups``: see ``zoo.trial_groups``. ``strengths``: the ``node_strength`` arrays of
    ``strength_layers(ds)`` if the caller has them already. Quantile functions use at most ``n_quantiles``
    weights per trial and layer, at the same random positions in every trial of the zoo. ``on_block(block,
    arrays)``, if given, also sees every block of the final snapshot's weights as it is read (so that another
    per-trial reduction shares this read: ``kde.GroupMoments``). With ``with_strengths``, returns ``(features,
    strengths)``, the node strengths of ``strength_layers(ds)`` as ``node_strength`` gives them.
    """
    labels = trial_groups(ds, groups).astype(str)
    # one read of the final snapshot, a block of trials at a time, for every family, the quantile functions' samples
    # and the incoming node strengths (issue 22: each read them anew, 5 decompressions of the snapshot)
    samples = [SortedSample(ds, layer, n_quantiles, seed=seed) for layer in [*layer_names(ds), NETWORK]]
    strength_names = strength_layers(ds)
    incoming = {} if strengths is not None or strength_kind != "abs_in" else {
        layer: np.empty((ds.sizes["trial"], ds[f"{layer}_weight"].shape[2])) for layer in strength_names}

    def reduce_block(block, arrays):
        for sample in samples:
            sample.add(block, arrays)
        for layer, strength in incoming.items():
            strength[block] = incoming_strength(arrays[f"{layer}_weight"])
        if on_block is not None:
            on_block(block, arrays)

    per_family = families_metrics(ds, list(FAMILIES), snapshot, on_block=reduce_block)
    final = per_family["moments"]
    layers = [str(layer) for layer in final["layer"].values]
    quantiles = np.stack([quantile_function(sample.values, n_quantiles) for sample in samples], axis=1)
    if strengths is None:
        strengths = [strength_array(ds, layer, incoming[layer]) if incoming else
                     node_strength(ds, layer, snapshot, strength_kind) for layer in strength_names]
    mean_strength = np.stack([s.values.mean(axis=1) for s in strengths], axis=1) if strengths else np.zeros((len(labels), 0))
    moments = FAMILIES["moments"]
    strength_statistic = (np.stack([array_metrics(s.values, moments.name) for s in strengths], axis=1) if strengths
                          else np.zeros((len(labels), 0, len(family_metrics(moments.name)))))
    bias = layer_metrics(ds, moments.name, snapshot, kind="bias").to_array(moments.dim).transpose("trial", "layer", moments.dim)

    experiment = experiment or f"{ds.attrs.get('model', '')}/{ds.attrs.get('dataset', '')}/{ds.attrs.get('arch', '')}"
    data_vars = {
        "quantile_function": (("trial", "layer", "level"), quantiles.astype(np.float32),
                              {"long_name": "quantile function of the layer's weights (W1 = mean |difference|)", "units": "1"}),
        "mean_strength": (("trial", "strength_layer"), mean_strength,
                          {"long_name": "mean node strength", "units": "1", "kind": strength_kind}),
        "strength_statistic": (("trial", "strength_layer", moments.dim), strength_statistic,
                               {"long_name": f"{moments.name} metrics of the layer's node strengths (its nodes as the "
                                "values) at the final snapshot", "units": "1", "kind": strength_kind}),
        "bias_statistic": (("trial", "layer", moments.dim), bias.values,
                           {"long_name": f"{moments.name} metrics of each layer's bias (network: all biases together; "
                            "NaN: no bias) at the final snapshot", "units": "1", "family": moments.name}),
        "diverged": (("trial",), ds["diverged"].values.astype(np.uint8) if "diverged" in ds else np.zeros(len(labels), np.uint8)),
    }
    for name, family in FAMILIES.items():
        data_vars[family.variable] = _family_variable(per_family[name], family, "final snapshot")
    for name in CURVES:
        if name in ds:
            attrs = without_checksum(ds[name].attrs)  # the zoo's checksum is of its own values, not of these
            data_vars[name] = (("trial", "epoch"), ds[name].values, attrs)
            # pooled zoos may differ in epochs: keep the final value where the curves' epochs do not align
            data_vars[f"final_{name}"] = (("trial",), ds[name].values[:, -1], {**attrs, "long_name": f"final {name}"})
    if early_snapshot is not None and early_snapshot in ds["snapshot"].values:
        for name in EARLY_FAMILIES:
            family = FAMILIES[name]
            early = layer_metrics(ds, name, early_snapshot, include_network=False).reindex(layer=layers)
            data_vars[f"early_{family.variable}"] = _family_variable(early, family, f"epoch-{early_snapshot} snapshot")
    coords = {
        "trial": ds["trial"].values,
        "group": ("trial", labels),
        "arch": ("trial", np.full(len(labels), str(ds.attrs.get("arch", "")))),
        "experiment": ("trial", np.full(len(labels), experiment)),
        "layer": np.array(layers, dtype=str),
        **{coord: value for family in FAMILIES.values() for coord, value in _metric_coords(family).items()},
        "strength_layer": np.array(strength_names, dtype=str),
        "n_weights": ("layer", final["n_weights"].values),
        "level": quantile_levels(n_quantiles),
    }
    if "epoch" in ds.coords:
        coords["epoch"] = ds["epoch"].values
    for name in ("seed", *HYPERPARAMETERS):
        if name in ds.coords and ds[name].dims == ("trial",):
            coords[name] = ("trial", ds[name].values)
    features = xr.Dataset(
        data_vars,
        coords=coords,
        attrs={
            "model": ds.attrs.get("model", ""),
            "dataset": ds.attrs.get("dataset", ""),
            "snapshot": int(final.attrs["snapshot"]),
            "early_snapshot": -1 if early_snapshot is None else int(early_snapshot),
            "network_layer": NETWORK,
            "n_classes": int(ds.attrs.get("n_classes", 0) or 0),
        },
    )
    return (features, list(strengths)) if with_strengths else features


def _family_variable(values: xr.Dataset, family, when: str):
    array = values.to_array(family.dim).transpose("trial", "layer", family.dim)
    return (("trial", "layer", family.dim), array.values,
            {"long_name": f"{family.description} of the {when}", "units": "see the coordinates "
             f"{family.dim}_long_name and {family.dim}_units", "family": family.name})


def _metric_coords(family) -> dict:
    """The metric names of a family as its dimension's coordinate, with their long names and units beside."""
    metrics = family_metrics(family.name)
    return {family.dim: np.array([m.name for m in metrics]),
            f"{family.dim}_long_name": (family.dim, np.array([m.long_name for m in metrics])),
            f"{family.dim}_units": (family.dim, np.array([m.units for m in metrics]))}


def pool(features: Sequence[xr.Dataset]) -> xr.Dataset:
    """Stack the features of several experiments along ``trial`` (index renumbered, the experiment's own
    trial index kept as ``trial_in_experiment``). Layers missing in some experiments are NaN there."""
    parts = []
    for f in features:
        f = f.assign_coords(trial_in_experiment=("trial", f["trial"].values)).drop_vars("trial")
        # the layer sizes differ between architectures; keep them out of the trial-wise concatenation
        parts.append(f.drop_vars("n_weights", errors="ignore"))
    if not parts:
        raise ValueError("no features to pool")
    pooled = xr.concat(parts, dim="trial", join="outer", data_vars="minimal", coords="different", compat="equals",
                       combine_attrs="drop_conflicts", fill_value=np.nan)
    pooled = pooled.assign_coords(trial=np.arange(pooled.sizes["trial"]))
    for name in ("group", "arch", "experiment"):
        pooled[name] = pooled[name].astype(str)
    return pooled


def read_features(paths) -> xr.Dataset:
    """The features files of one experiment (a path) or several, checked against their checksums and pooled."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return pool([load_checked(path) for path in paths])


def accuracy(features: xr.Dataset, which: str = "train") -> np.ndarray:
    """Final accuracy (fraction) per trial (after each trial's own last epoch)."""
    if f"final_{which}_accuracy" in features:
        return features[f"final_{which}_accuracy"].values.astype(float)
    return features[f"{which}_accuracy"].isel(epoch=-1).values.astype(float)
