"""Canonical hidden-unit order for chains of Linear / Conv2d layers, so weights of different trials line up.

Permuting the hidden units of a layer (a Linear layer's weight rows, a convolution's output channels, with
their biases) together with the next layer's inputs (columns, resp. input channels) leaves the network's
function unchanged; the last layer's outputs (the classes) never permute. Sorting each hidden layer's units by
node strength (sum of incoming absolute weights, kernels included, descending) picks one representative of
every such permutation class, so two trials that differ only by a permutation get identical weights.
"""

import numpy as np
import xarray as xr

from weightzoo.analysis.zoo import layer_names, parameter_names, select_snapshot
from weightzoo.io.store import variable_name

LINEAR_NDIM, CONV_NDIM = 2, 4  # weight dims after (trial, snapshot): (out, in) resp. (out, in, kh, kw)


def layer_chain(ds: xr.Dataset) -> tuple[list[str] | None, str]:
    """The chain of Linear / Conv2d layers of a zoo in model order, or None and the reason it is not one
    (see ``chain_problem``)."""
    parameters = []
    for name in parameter_names(ds):
        kind = ds[name].attrs.get("kind", "other")
        layer = name[: -len(kind) - 1] if kind in ("weight", "bias") else name
        parameters.append((layer, kind, ds[name].shape[2:]))
    why = chain_problem(ds.attrs.get("model"), parameters)
    return (None, why) if why else (layer_names(ds), "")



def chain_problem(model: str | None, parameters) -> str:
    """Why parameters ``(layer, kind, shape)`` (in model order) of a ``model`` network are no chain; "" if they are.

    A chain: every parameter is the weight or bias of one of its layers, each layer's inputs are the previous
    layer's outputs, one input (channel) per output (channel), as after a ReLU/tanh or a global average pooling
    (not a flatten), and the layers are the family's ``ModelFamily.weight_space_chain``.
    """
    parameters = list(parameters)
    why = _structure_problem(parameters)
    if not why and model is not None:
        from weightzoo.models import family  # torch: only when a model is named

        chain = [variable_name(layer) for layer in family(model).weight_space_chain]
        layers = [variable_name(layer) for layer, kind, _ in parameters if kind == "weight"]
        if not chain:
            why = "its family declares no chain of permutable layers (ModelFamily.weight_space_chain is empty)"
        elif layers != chain:
            why = f"its layers {layers} are not its family's chain {chain}"
    if not why:
        return ""
    return (f"canonical order and weight-space features need a chain of Linear/Conv2d layers (a DNN or smallcnn zoo), "
            f"not {model or 'this zoo'!r}: {why}")


def _structure_problem(parameters) -> str:
    weights = {layer: shape for layer, kind, shape in parameters if kind == "weight"}
    if not weights:
        return "no weight variables"
    others = [f"{layer} ({kind})" for layer, kind, _ in parameters
              if kind not in ("weight", "bias") or layer not in weights]
    if others:
        listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        return f"parameters {listed} are neither weight nor bias of a Linear/Conv2d layer"
    for layer, kind, shape in parameters:
        if kind == "weight" and len(shape) not in (LINEAR_NDIM, CONV_NDIM):
            return f"{layer} weight has shape {tuple(shape)}, not (out, in) or (out, in, kh, kw)"
        if kind == "bias" and tuple(shape) != tuple(weights[layer][:1]):
            return f"{layer} bias has shape {tuple(shape)}, not ({weights[layer][0]},)"
    layers = list(weights)
    for a, b in zip(layers[:-1], layers[1:]):
        n_out, n_in = weights[a][0], weights[b][1]
        if n_out != n_in:
            mixed = " (a flatten mixes positions into them)" if n_in % n_out == 0 else ""
            return f"{b} takes {n_in} inputs but {a} has {n_out} outputs{mixed}"
    return ""


def _along(order: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """``order`` (trial, n) shaped to index ``axis`` of a (trial, ...) array of ``ndim`` dims."""
    shape = [1] * ndim
    shape[0], shape[axis] = order.shape
    return order.reshape(shape)


def permute(values: np.ndarray, order: np.ndarray, axis: int) -> np.ndarray:
    """``values`` (trial, ...) with axis ``axis`` reordered per trial by ``order`` (trial, n)."""
    return np.take_along_axis(values, _along(order, values.ndim, axis), axis=axis)


def canonical_order(weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Order of the output units of a weight batch (trial, out, in[, kh, kw]): strength descending.

    Ties (e.g. all-zero rows) are broken by the bias, then by the signed row sum, so the order does not
    depend on how the units were numbered whenever the units differ at all.
    """
    rows = weight.reshape(*weight.shape[:2], -1)
    keys = [-rows.sum(axis=2), -np.abs(rows).sum(axis=2)]
    if bias is not None:
        keys.insert(1, -bias)
    # lexsort sorts by the last key first; it works along the last axis of each key
    return np.lexsort(keys, axis=-1)


def canonicalize_arrays(weights: list[np.ndarray], biases: list[np.ndarray | None]) -> tuple[list, list]:
    """Canonicalise a chain of Linear / Conv2d layers, all trials at once.

    ``weights[l]`` has shape (trial, out_l, in_l[, kh, kw]) with in_{l+1} = out_l; ``biases[l]`` (trial, out_l)
    or None. Every layer but the last is a hidden layer whose units are sorted. Returns new lists of arrays.
    """
    weights = [np.asarray(w) for w in weights]
    biases = [None if b is None else np.asarray(b) for b in biases]
    for level in range(len(weights) - 1):
        order = canonical_order(weights[level], biases[level])
        weights[level] = permute(weights[level], order, 1)
        if biases[level] is not None:
            biases[level] = permute(biases[level], order, 1)
        weights[level + 1] = permute(weights[level + 1], order, 2)
    return weights, biases


def canonicalize(ds: xr.Dataset, snapshot: int = -1, all_snapshots: bool = False) -> xr.Dataset:
    """Copy of a zoo's weights and biases with every trial's hidden units in canonical order.

    The order is computed at ``snapshot``. With ``all_snapshots`` every stored snapshot is permuted by that
    same order (trajectories stay aligned); otherwise only that snapshot is returned (dim ``snapshot`` of
    length 1). Other variables (accuracies, losses) are copied unchanged. Raises ValueError for zoos that
    are not a chain of Linear/Conv2d layers (see ``layer_chain``).

    This holds the zoo's weights in memory (for small zoos and tests); the workflow's readers canonicalise a
    block of trials at a time instead (``canonical_layer(..., trials=)``, ``export.rows.weight_blocks``).
    """
    layers, reason = layer_chain(ds)
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
        w = out[f"{layer}_weight"].values  # (trial, snapshot, out, in[, kh, kw])
        if level < len(orders):
            w = permute(w, orders[level], 2)
        if level > 0:
            w = permute(w, orders[level - 1], 3)
        out[f"{layer}_weight"] = out[f"{layer}_weight"].copy(data=w)
        if has_bias[level] and level < len(orders):
            b = permute(out[f"{layer}_bias"].values, orders[level], 2)
            out[f"{layer}_bias"] = out[f"{layer}_bias"].copy(data=b)
    out.attrs["canonical"] = f"hidden units sorted by node strength at snapshot {snapshot}"
    return out


def _orders(ds: xr.Dataset, layer: str, snapshot: int, chunk_values: int = 1 << 23,
            trials: slice = slice(None)) -> np.ndarray:
    """Canonical order of ``layer``'s output units per trial of ``trials``, (trial, out), reading trials in chunks."""
    weight = select_snapshot(ds[f"{layer}_weight"], snapshot).isel(trial=trials)
    bias = select_snapshot(ds[f"{layer}_bias"], snapshot).isel(trial=trials) if f"{layer}_bias" in ds else None
    step = max(1, chunk_values // int(np.prod(weight.shape[1:])))
    parts = []
    for start in range(0, weight.sizes["trial"], step):
        rows = slice(start, start + step)
        parts.append(
            canonical_order(weight.isel(trial=rows).values, None if bias is None else bias.isel(trial=rows).values)
        )
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, weight.shape[1]), np.int64)


def canonical_layer(ds: xr.Dataset, layer: str, snapshot: int = -1,
                    trials: slice = slice(None)) -> tuple[np.ndarray, np.ndarray | None]:
    """Canonical weight (trial, out, in[, kh, kw]) and bias (trial, out) of one layer of a chain zoo, for the trials
    ``trials`` (a slice of positions; all by default).

    The same values as ``canonicalize`` gives for that layer; each trial's order depends on that trial alone, so
    a block of trials is canonicalised on its own: only this layer of those trials is held (the previous layer
    is read a chunk of trials at a time for its order).
    """
    layers, reason = layer_chain(ds)
    if layers is None:
        raise ValueError(reason)
    level = layers.index(layer)
    weight = select_snapshot(ds[f"{layer}_weight"], snapshot).isel(trial=trials).values
    bias = select_snapshot(ds[f"{layer}_bias"], snapshot).isel(trial=trials).values if f"{layer}_bias" in ds else None
    if level < len(layers) - 1:
        order = canonical_order(weight, bias)
        weight = permute(weight, order, 1)
        bias = None if bias is None else permute(bias, order, 1)
    if level > 0:
        weight = permute(weight, _orders(ds, layers[level - 1], snapshot, trials=trials), 2)
    return weight, bias
