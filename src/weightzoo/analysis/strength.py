"""Node strength per layer (paper Figs 8–10) and its correlation between layers.

``kind="abs_in"`` is the paper's strength: the sum of a node's incoming absolute weights, i.e. for any
``{layer}_weight`` with two or more dims the sum of |w| over every axis but the first (Linear rows, Conv2d
output channels over in x kh x kw, the output units of ViT attention and MLP projections).
``kind="signed"`` is Scabini & Bruno's (2023) signed weighted degree: incoming signed weights plus the signed
weights leaving the node into the next layer, where that next layer consumes this layer's outputs.
"""

import numpy as np
import scipy.stats
import xarray as xr

from weightzoo.analysis.zoo import CHUNK_VALUES, layer_names, ordered_groups, select_snapshot, trial_groups
from weightzoo.io.atomic import without_checksum

KINDS = ("abs_in", "signed")
# Trials are reduced a chunk at a time, this many weights per chunk (64 MiB as float64).


def strength_layers(ds: xr.Dataset) -> list[str]:
    """Layers whose weight has at least two dims (nodes with incoming weights), in model order."""
    return [layer for layer in layer_names(ds) if ds[f"{layer}_weight"].ndim - 2 >= 2]


def _layer(layer: str) -> str:
    return layer[: -len("_weight")] if layer.endswith("_weight") else layer


def _reduce_per_node(var: xr.DataArray, signed: bool, axis_from: int = 1) -> np.ndarray:
    """Sum (of |w| unless ``signed``) over all axes of each trial's weight from ``axis_from`` on, in trial chunks."""
    n_trials = var.sizes["trial"]
    per_trial = max(1, int(np.prod(var.shape[1:])))
    step = max(1, CHUNK_VALUES // per_trial)
    parts = []
    for start in range(0, n_trials, step):
        values = np.asarray(var.isel(trial=slice(start, start + step)).values, dtype=np.float64)
        if not signed:
            values = np.abs(values)
        parts.append(values.sum(axis=tuple(range(axis_from + 1, values.ndim))))
    return np.concatenate(parts, axis=0)


def _outgoing(ds: xr.Dataset, layer: str, n_nodes: int, snapshot: int) -> tuple[np.ndarray | None, str]:
    """Signed sum of the weights leaving each node of ``layer`` into the next layer, (trial, node), or a reason."""
    layers = layer_names(ds)
    following = layers[layers.index(layer) + 1 :]
    if not following:
        return None, "last layer: incoming weights only"
    nxt = following[0]
    weight = select_snapshot(ds[f"{nxt}_weight"], snapshot)
    if weight.ndim < 3:
        return None, f"next layer {nxt} has no input axis: incoming weights only"
    n_in = weight.shape[2]
    if n_in == n_nodes:
        # (trial, out, in, ...) -> sum over out and kernel axes, keep in
        moved = weight.transpose("trial", weight.dims[2], weight.dims[1], *weight.dims[3:])
        return _reduce_per_node(moved, signed=True), f"outgoing into {nxt}"
    if ds[f"{layer}_weight"].ndim == 6 and weight.ndim == 3 and n_in % n_nodes == 0:
        # conv channels flattened (channel-major, as torch.flatten) into a Linear layer
        out_dim, in_dim = weight.dims[1], weight.dims[2]
        moved = weight.transpose("trial", in_dim, out_dim)
        step = max(1, CHUNK_VALUES // max(1, n_in * weight.shape[1]))
        parts = [moved.isel(trial=slice(start, start + step)).values.reshape(-1, n_nodes, (n_in // n_nodes) * weight.shape[1])
                 .astype(np.float64).sum(axis=2) for start in range(0, weight.shape[0], step)]
        return np.concatenate(parts, axis=0), f"outgoing into {nxt} (flattened channels)"
    return None, f"next layer {nxt} takes {n_in} inputs, not this layer's {n_nodes} outputs: incoming weights only"


def node_strength(ds: xr.Dataset, layer: str, snapshot: int = -1, kind: str = "abs_in") -> xr.DataArray:
    """Strength of every node (output unit / channel) of ``layer`` per trial, DataArray (trial, node)."""
    if kind not in KINDS:
        raise ValueError(f"unknown strength kind {kind!r}; choose one of {KINDS}")
    layer = _layer(layer)
    var = select_snapshot(ds[f"{layer}_weight"], snapshot)
    if var.ndim < 3:
        raise ValueError(f"{layer}_weight has dims {var.dims}: node strength needs a weight with inputs per node")
    strength = _reduce_per_node(var, signed=kind == "signed")
    note = INCOMING_NOTE
    if kind == "signed":
        outgoing, note = _outgoing(ds, layer, strength.shape[1], snapshot)
        if outgoing is not None:
            strength = strength + outgoing
        note = f"signed incoming weights + signed {note}" if outgoing is not None else f"signed; {note}"
    return strength_array(ds, layer, strength, kind, note)


INCOMING_NOTE = "sum of incoming absolute weights"


def incoming_strength(values: np.ndarray) -> np.ndarray:
    """The ``abs_in`` strength of a block of one layer's weights (trial, out, in[, kh, kw]): (trial, out), float64;
    what ``node_strength`` computes, for callers that read the block already (``features.trial_features``)."""
    values = np.abs(np.asarray(values, dtype=np.float64))
    return values.sum(axis=tuple(range(2, values.ndim)))


def strength_array(ds: xr.Dataset, layer: str, strength: np.ndarray, kind: str = "abs_in",
                   note: str = INCOMING_NOTE) -> xr.DataArray:
    """Node strengths (trial, node) of ``layer`` as ``node_strength`` returns them."""
    return xr.DataArray(
        strength,
        dims=("trial", "node"),
        coords={"trial": ds["trial"].values, "node": np.arange(strength.shape[1])},
        name=f"{layer}_strength",
        attrs={"long_name": f"node strength of {layer}", "units": "1", "layer": layer, "kind": kind, "note": note},
    )


def mean_node_strength(ds: xr.Dataset, layer: str, snapshot: int = -1, kind: str = "abs_in") -> np.ndarray:
    """Mean node strength of ``layer`` per trial, shape (trial,)."""
    return node_strength(ds, layer, snapshot, kind).values.mean(axis=1)


def spearman(x, y, min_n: int = 3) -> tuple[float, float, int, str]:
    """Spearman rho, p-value, n used and a reason ('' if computed); NaN pairs are dropped."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    n = int(keep.sum())
    if n < min_n:
        return np.nan, np.nan, n, f"n={n} < {min_n}"
    x, y = x[keep], y[keep]
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, np.nan, n, "constant strength"
    result = scipy.stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue), n, ""


def pairwise_strength(
    ds: xr.Dataset,
    layers=None,
    groups=None,
    snapshot: int = -1,
    kind: str = "abs_in",
    pairs: str = "consecutive",
    strengths=None,
) -> xr.Dataset:
    """Per-trial mean node strength of ``layers`` and the Spearman correlation of layer pairs per group.

    ``layers``: default all ``strength_layers``; ``pairs``: ``consecutive`` (layer i, i+1) or ``all``.
    ``groups``: see ``zoo.trial_groups``. Returns a Dataset with ``mean_strength`` (trial, layer),
    coordinate ``trial_group`` (trial), and per (pair, group) ``spearman_rho``, ``spearman_p``, ``n`` and
    ``reason`` (empty when computed; e.g. ``n=2 < 3``); the group axis ends with ``all`` (every trial).
    ``strengths``: the ``node_strength`` arrays of ``layers``, if the caller already has them (saves
    reading every layer's weights again).
    """
    layers = [_layer(layer) for layer in (strength_layers(ds) if layers is None else layers)]
    labels = trial_groups(ds, groups)
    if strengths is None:
        means = np.stack([mean_node_strength(ds, layer, snapshot, kind) for layer in layers], axis=1)
    else:
        means = np.stack([s.values.mean(axis=1) for s in strengths], axis=1)
    result = strength_correlations(means, layers, labels, pairs)
    result.attrs.update(kind=kind, snapshot=snapshot)
    return result.assign_coords(trial=ds["trial"].values)


def strength_correlations(means, layers, labels, pairs: str = "consecutive") -> xr.Dataset:
    """``pairwise_strength`` from per-trial mean strengths ``means`` (trial, layer) already at hand, e.g.
    of several architectures pooled (``analysis.features``)."""
    means = np.asarray(means, dtype=float)
    labels = np.asarray(labels, dtype=object)
    layers = [str(layer) for layer in layers]
    if pairs == "consecutive":
        pair_list = list(zip(layers[:-1], layers[1:]))
    elif pairs == "all":
        pair_list = [(a, b) for i, a in enumerate(layers) for b in layers[i + 1 :]]
    else:
        raise ValueError(f"pairs must be 'consecutive' or 'all', got {pairs!r}")
    names = [g for g in ordered_groups(labels) if g != "all"] + ["all"]
    shape = (len(pair_list), len(names))
    rho, p, n = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, np.int64)
    reason = np.full(shape, "", dtype=object)
    column = {layer: i for i, layer in enumerate(layers)}
    for i, (a, b) in enumerate(pair_list):
        for j, g in enumerate(names):
            rows = np.ones(len(labels), bool) if g == "all" else labels == g
            rho[i, j], p[i, j], n[i, j], reason[i, j] = spearman(means[rows, column[a]], means[rows, column[b]])
    pair_dims, pair_group = ("pair",), ("pair", "group")
    return xr.Dataset(
        {
            "mean_strength": (("trial", "layer"), means, {"long_name": "mean node strength", "units": "1"}),
            "spearman_rho": (pair_group, rho, {"long_name": "Spearman correlation of mean strengths"}),
            "spearman_p": (pair_group, p, {"long_name": "two-sided p-value of Spearman rho"}),
            "n": (pair_group, n, {"long_name": "trials with finite strengths"}),
            "reason": (pair_group, reason, {"long_name": "why rho is NaN (empty when computed)"}),
        },
        coords={
            "trial": np.arange(means.shape[0]),
            "layer": np.array(layers, dtype=object),
            "group": np.array(names, dtype=object),
            "trial_group": ("trial", labels),
            "pair": np.array([f"{a}~{b}" for a, b in pair_list], dtype=object),
            "layer_i": (pair_dims, np.array([a for a, _ in pair_list], dtype=object)),
            "layer_j": (pair_dims, np.array([b for _, b in pair_list], dtype=object)),
        },
        attrs={"pairs": pairs},
    )


def strength_dataset(ds: xr.Dataset, strengths, groups) -> xr.Dataset:
    """Node strengths per trial, layer and node as one self-describing dataset (dims ``{layer}_node``)."""
    data_vars = {}
    for s in strengths:
        layer = s.attrs["layer"]
        data_vars[f"{layer}_strength"] = xr.Variable(("trial", f"{layer}_node"), s.values, dict(s.attrs))
    return xr.Dataset(
        data_vars,
        coords={"trial": ds["trial"].values, "group": ("trial", trial_groups(ds, groups).astype(str))},
        attrs={k: ds.attrs[k] for k in ("model", "dataset", "arch") if k in ds.attrs}
        | {"snapshot": int(ds["snapshot"].values[-1]), "title": "node strength per trial, layer and node"},
    )


def pooled_strengths(datasets) -> list[xr.DataArray]:
    """Per layer, every trial's node strengths of the ``strength_dataset``s ``datasets`` stacked along ``trial``
    (NaN-padded to the widest architecture)."""
    per_layer: dict[str, list] = {}
    attrs = {}
    for dataset in datasets:
        for name, var in dataset.data_vars.items():
            layer = name.removesuffix("_strength")
            per_layer.setdefault(layer, []).append(var.values)
            attrs[layer] = without_checksum(var.attrs)
    out = []
    for layer, blocks in per_layer.items():
        width = max(b.shape[1] for b in blocks)
        padded = np.concatenate([np.pad(b.astype(float), ((0, 0), (0, width - b.shape[1])), constant_values=np.nan)
                                 for b in blocks])
        out.append(xr.DataArray(padded, dims=("trial", "node"), name=f"{layer}_strength", attrs=attrs[layer]))
    return out
