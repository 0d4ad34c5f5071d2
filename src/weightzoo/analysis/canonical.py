"""Canonical hidden-unit order for fully connected nets, so weights of different trials line up.

Permuting the hidden units of a layer (its weight rows and bias) together with the next layer's input
columns leaves the network's function unchanged. Sorting each hidden layer's units by node strength (sum of
incoming absolute weights, descending) picks one representative of every such permutation class, so two
trials that differ only by a permutation get identical weights.
"""

import numpy as np
import xarray as xr

from weightzoo.analysis.zoo import layer_names, select_snapshot


def fc_chain(ds: xr.Dataset) -> tuple[list[str] | None, str]:
    """The chain of Linear layers of a DNN zoo in model order, or None and the reason it is not one."""
    model = ds.attrs.get("model")
    from weightzoo.models import family  # torch: only when a model is named

    if model is not None and not family(model).fc_chain:
        return None, f"canonical order is implemented for chains of Linear layers (DNN zoos) only, not {model!r}"
    layers = layer_names(ds)
    if not layers:
        return None, "no weight variables"
    for layer in layers:
        if ds[f"{layer}_weight"].ndim != 4:
            return None, f"{layer}_weight is not a Linear weight (trial, snapshot, out, in)"
    for a, b in zip(layers[:-1], layers[1:]):
        if ds[f"{a}_weight"].shape[2] != ds[f"{b}_weight"].shape[3]:
            return None, f"{b} does not take {a}'s outputs as inputs"
    return layers, ""


def canonical_order(weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Order of the output units of a weight batch (trial, out, in): strength descending.

    Ties (e.g. all-zero rows) are broken by the bias, then by the signed row sum, so the order does not
    depend on how the units were numbered whenever the units differ at all.
    """
    keys = [-weight.sum(axis=2), -np.abs(weight).sum(axis=2)]
    if bias is not None:
        keys.insert(1, -bias)
    # lexsort sorts by the last key first; it works along the last axis of each key
    return np.lexsort(keys, axis=-1)


def canonicalize_arrays(weights: list[np.ndarray], biases: list[np.ndarray | None]) -> tuple[list, list]:
    """Canonicalise a chain of Linear layers, all trials at once.

    ``weights[l]`` has shape (trial, out_l, in_l) with in_{l+1} = out_l; ``biases[l]`` (trial, out_l) or
    None. Every layer but the last is a hidden layer whose units are sorted. Returns new lists of arrays.
    """
    weights = [np.asarray(w) for w in weights]
    biases = [None if b is None else np.asarray(b) for b in biases]
    for level in range(len(weights) - 1):
        order = canonical_order(weights[level], biases[level])
        weights[level] = np.take_along_axis(weights[level], order[:, :, None], axis=1)
        if biases[level] is not None:
            biases[level] = np.take_along_axis(biases[level], order, axis=1)
        weights[level + 1] = np.take_along_axis(weights[level + 1], order[:, None, :], axis=2)
    return weights, biases


def canonicalize(ds: xr.Dataset, snapshot: int = -1, all_snapshots: bool = False) -> xr.Dataset:
    """Copy of a DNN zoo's weights and biases with every trial's hidden units in canonical order.

    The order is computed at ``snapshot``. With ``all_snapshots`` every stored snapshot is permuted by that
    same order (trajectories stay aligned); otherwise only that snapshot is returned (dim ``snapshot`` of
    length 1). Other variables (accuracies, losses) are copied unchanged. Raises ValueError for zoos that
    are not a chain of Linear layers (see ``fc_chain``).
    """
    layers, reason = fc_chain(ds)
    if layers is None:
        raise ValueError(reason)
    index = ds.sizes["snapshot"] - 1 if snapshot == -1 else int(np.flatnonzero(ds["snapshot"].values == snapshot)[0])
    out = ds if all_snapshots else ds.isel(snapshot=[index])
    out = out.copy()
    has_bias = [f"{layer}_bias" in ds for layer in layers]
    # a row's sums do not depend on the order of its columns, so each layer's order is computed from the
    # stored weights directly
    orders = [
        canonical_order(
            select_snapshot(ds[f"{layer}_weight"], snapshot).values,
            select_snapshot(ds[f"{layer}_bias"], snapshot).values if has_bias[level] else None,
        )
        for level, layer in enumerate(layers[:-1])
    ]
    for level, layer in enumerate(layers):
        w = out[f"{layer}_weight"].values  # (trial, snapshot, out, in)
        if level < len(orders):
            w = np.take_along_axis(w, orders[level][:, None, :, None], axis=2)
        if level > 0:
            w = np.take_along_axis(w, orders[level - 1][:, None, None, :], axis=3)
        out[f"{layer}_weight"] = out[f"{layer}_weight"].copy(data=w)
        if has_bias[level] and level < len(orders):
            b = np.take_along_axis(out[f"{layer}_bias"].values, orders[level][:, None, :], axis=2)
            out[f"{layer}_bias"] = out[f"{layer}_bias"].copy(data=b)
    out.attrs["canonical"] = f"hidden units sorted by node strength at snapshot {snapshot}"
    return out


def _orders(ds: xr.Dataset, layer: str, snapshot: int, chunk_values: int = 1 << 23) -> np.ndarray:
    """Canonical order of ``layer``'s output units per trial, (trial, out), reading trials in chunks."""
    weight = select_snapshot(ds[f"{layer}_weight"], snapshot)
    bias = select_snapshot(ds[f"{layer}_bias"], snapshot) if f"{layer}_bias" in ds else None
    step = max(1, chunk_values // int(np.prod(weight.shape[1:])))
    parts = []
    for start in range(0, weight.sizes["trial"], step):
        rows = slice(start, start + step)
        parts.append(
            canonical_order(weight.isel(trial=rows).values, None if bias is None else bias.isel(trial=rows).values)
        )
    return np.concatenate(parts, axis=0)


def canonical_layer(ds: xr.Dataset, layer: str, snapshot: int = -1) -> tuple[np.ndarray, np.ndarray | None]:
    """Canonical weight (trial, out, in) and bias (trial, out) of one layer of a DNN zoo.

    The same values as ``canonicalize`` gives for that layer, but only this layer is held for all trials
    (the previous layer is read a chunk of trials at a time for its order).
    """
    layers, reason = fc_chain(ds)
    if layers is None:
        raise ValueError(reason)
    level = layers.index(layer)
    weight = select_snapshot(ds[f"{layer}_weight"], snapshot).values
    bias = select_snapshot(ds[f"{layer}_bias"], snapshot).values if f"{layer}_bias" in ds else None
    if level < len(layers) - 1:
        order = canonical_order(weight, bias)
        weight = np.take_along_axis(weight, order[:, :, None], axis=1)
        bias = None if bias is None else np.take_along_axis(bias, order, axis=1)
    if level > 0:
        weight = np.take_along_axis(weight, _orders(ds, layers[level - 1], snapshot)[:, None, :], axis=2)
    return weight, bias
