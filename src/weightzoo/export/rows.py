"""A zoo as Small CNN Zoo rows: one flat float32 vector per (trial, snapshot), its metrics and the layout.

The flat order is the zoo's ``parameters`` attribute (the network's state-dict order), each parameter
flattened in C order in PyTorch's layout (``(out, in)``, ``(out, in, kh, kw)``), so a row slice reshaped to
the layout's shape is exactly what ``load_state_dict`` takes (the Small CNN Zoo stores TensorFlow's order).
"""

import json

import numpy as np
import pandas as pd
import xarray as xr

from weightzoo.analysis.canonical import canonicalize_arrays, layer_chain
from weightzoo.analysis.zoo import CHUNK_VALUES
from weightzoo.io.store import CURVES, layer_of, trial_hyperparameters, variable_name

LAYOUT_COLUMNS = ["varname", "layer", "kind", "shape", "start_idx", "end_idx", "size"]
PER_TRIAL_EXCLUDED = ("trial", "seed")


def experiment_id(ds: xr.Dataset) -> str:
    return f"{ds.attrs['model']}/{ds.attrs['dataset']}/{ds.attrs['arch']}"


def parameter_layout(ds: xr.Dataset) -> pd.DataFrame:
    """One row per parameter: state-dict key, layer, kind (weight, bias, other), shape and column range."""
    rows, start = [], 0
    for parameter in json.loads(ds.attrs["parameters"]):
        var = ds[variable_name(parameter)]
        shape = tuple(int(n) for n in var.shape[2:])
        size = int(np.prod(shape))
        rows.append({"varname": parameter, "layer": layer_of(parameter), "kind": var.attrs.get("kind", "other"),
                     "shape": str(shape), "start_idx": start, "end_idx": start + size, "size": size})
        start += size
    return pd.DataFrame(rows, columns=LAYOUT_COLUMNS)


def common_layout(zoos: list[xr.Dataset], paths) -> pd.DataFrame:
    """The layout all ``zoos`` share; a clear error naming the zoo that differs (model or shapes)."""
    first = parameter_layout(zoos[0])
    for ds, path in zip(zoos[1:], paths[1:]):
        if ds.attrs["model"] != zoos[0].attrs["model"]:
            raise ValueError(f"{path}: model {ds.attrs['model']!r}, but {paths[0]} is {zoos[0].attrs['model']!r}; "
                             "one export holds one model")
        layout = parameter_layout(ds)
        if not layout[["varname", "shape"]].equals(first[["varname", "shape"]]):
            mine = dict(zip(layout["varname"], layout["shape"]))
            theirs = dict(zip(first["varname"], first["shape"]))
            differ = ", ".join(f"{k} {mine.get(k)} vs {theirs.get(k)}" for k in sorted({*mine, *theirs})
                               if mine.get(k) != theirs.get(k))
            raise ValueError(f"{path}: parameter shapes differ from {paths[0]}'s ({differ}); export zoos of one "
                             "shape together, one export folder per shape")
    return first


def per_trial_columns(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Every per-trial hyperparameter: lr, init_std, batch_size, train_fraction (also where only the shared
    attribute holds them), then any other trial coordinate the zoo has (activation, weight_decay, ...)."""
    columns = trial_hyperparameters(ds)
    for name, coord in ds.coords.items():
        if coord.dims == ("trial",) and name not in PER_TRIAL_EXCLUDED and name not in columns:
            columns[name] = coord.values
    return columns


def metrics_table(ds: xr.Dataset, snapshots=None) -> pd.DataFrame:
    """One row per (trial, snapshot), trials then snapshots ascending: experiment, trial, seed, per-trial
    hyperparameters, ``step`` (the snapshot's epoch), the curves at that epoch (NaN at step 0: the trainer
    records curves after each epoch, none before the first) and ``diverged``."""
    steps = ds["snapshot"].values if snapshots is None else np.asarray(snapshots)
    n_trials, n_steps = ds.sizes["trial"], len(steps)
    table = {"experiment": experiment_id(ds), "trial": np.repeat(ds["trial"].values, n_steps),
             "seed": np.repeat(ds["seed"].values, n_steps)}
    table.update({name: np.repeat(values, n_steps) for name, values in per_trial_columns(ds).items()})
    table["step"] = np.tile(steps, n_trials)
    for curve in CURVES:
        table[curve] = ds[curve].reindex(epoch=steps).values.reshape(-1)  # epoch 0 is no epoch: NaN
    table["diverged"] = np.repeat(ds["diverged"].values.astype(np.uint8), n_steps)
    return pd.DataFrame(table)


def weight_blocks(ds: xr.Dataset, layout: pd.DataFrame, canonical: bool = False, snapshots=None, path=""):
    """Yield (first row, rows) blocks of the zoo's flat weight rows, a few trials at a time (rows: trials then
    snapshots, as ``metrics_table``). ``canonical``: every row's hidden units sorted by node strength at its
    own snapshot (``analysis.canonical``), so a row's canonical form depends on that row alone."""
    chain = None
    if canonical:
        chain, reason = layer_chain(ds)
        if chain is None:
            raise ValueError(f"{path or experiment_id(ds)}: --canonical: {reason}")
    picked = ds if snapshots is None else ds.sel(snapshot=list(snapshots))
    n_steps, n_columns = picked.sizes["snapshot"], int(layout["end_idx"].iloc[-1])
    step = max(1, CHUNK_VALUES // (n_steps * n_columns))
    for start in range(0, picked.sizes["trial"], step):
        block = picked.isel(trial=slice(start, start + step))
        values = {p: block[variable_name(p)].values for p in layout["varname"]}  # (trial, snapshot, *shape)
        if chain is not None:
            values = _canonical(values, chain)
        n = block.sizes["trial"] * n_steps
        rows = np.empty((n, n_columns), np.float32)
        for parameter, begin, end in zip(layout["varname"], layout["start_idx"], layout["end_idx"]):
            rows[:, begin:end] = values[parameter].reshape(n, -1)
        yield start * n_steps, rows


def _canonical(values: dict, chain: list[str]) -> dict:
    """Canonicalise every (trial, snapshot) network of a block on its own."""
    names = {variable_name(p): p for p in values}
    weights = [values[names[f"{layer}_weight"]] for layer in chain]
    biases = [values.get(names.get(f"{layer}_bias")) for layer in chain]
    trials, steps = weights[0].shape[:2]
    flat = lambda a: None if a is None else a.reshape(trials * steps, *a.shape[2:])  # noqa: E731
    new_w, new_b = canonicalize_arrays([flat(w) for w in weights], [flat(b) for b in biases])
    out = dict(values)
    for layer, w, b in zip(chain, new_w, new_b):
        out[names[f"{layer}_weight"]] = w.reshape(trials, steps, *w.shape[1:])
        if b is not None:
            out[names[f"{layer}_bias"]] = b.reshape(trials, steps, *b.shape[1:])
    return out
