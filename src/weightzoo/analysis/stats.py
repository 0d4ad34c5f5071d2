"""Per-trial weight statistics, per layer and for the whole network (paper Figs 2–4; Unterthiner et al. 2020
features).

Memory stays bounded by reading the zoo in blocks of trials (``max_values`` weights per block, all layers
together), one variable at a time through lazy ``ds[var]`` selections: never one layer of all trials, let
alone all layers, unless they fit in a block.
"""

from collections.abc import Iterator

import numpy as np
import xarray as xr

from weightzoo.analysis.zoo import layer_names, select_snapshot

QUANTILES = (0, 25, 50, 75, 100)
"""Percentiles stored as ``q0`` … ``q100``."""

NETWORK = "network"
"""Layer label of the whole-network statistics (all weight matrices of a trial together)."""

BLOCK_VALUES = 2**24
"""Default number of weight values read per block (64 MiB as float32)."""


def weight_variables(ds: xr.Dataset, layers: list[str] | None = None) -> list[str]:
    """``{layer}_weight`` variable names of ``layers`` (all layers when None), in model order."""
    return [f"{layer}_weight" for layer in (layer_names(ds) if layers is None else layers)]


def iter_trial_blocks(
    ds: xr.Dataset, variables: list[str], snapshot: int = -1, max_values: int = BLOCK_VALUES
) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """Yield ``(trial_slice, {variable: array (block_trials, *param_dims)})`` over all trials, in the stored
    dtype (float32).

    A block holds as many trials as fit in ``max_values`` values summed over ``variables`` (at least one).
    """
    n_trials = ds.sizes["trial"]
    per_trial = sum(int(np.prod([ds.sizes[d] for d in ds[v].dims if d not in ("trial", "snapshot")])) for v in variables)
    step = max(1, max_values // max(per_trial, 1))
    selected = {v: select_snapshot(ds[v], snapshot) for v in variables}
    for start in range(0, n_trials, step):
        block = slice(start, min(start + step, n_trials))
        yield block, {v: np.asarray(selected[v].isel(trial=block).values) for v in variables}


def _summaries(values: np.ndarray) -> np.ndarray:
    """(trials, n) -> (trials, 2 + len(QUANTILES)): mean, std, quantiles."""
    if values.shape[1] == 0:
        return np.full((values.shape[0], 2 + len(QUANTILES)), np.nan)
    quantiles = np.percentile(values, QUANTILES, axis=1).T
    return np.column_stack([values.mean(axis=1, dtype=np.float64), values.std(axis=1, dtype=np.float64), quantiles])


def weight_statistics(
    ds: xr.Dataset, snapshot: int = -1, include_network: bool = True, max_values: int = BLOCK_VALUES
) -> xr.Dataset:
    """Mean, standard deviation and quantiles ``q0, q25, q50, q75, q100`` of the weights of every trial.

    Dims ``trial × layer``; ``layer`` holds the layer ids in model order and, with ``include_network``,
    ``"network"`` (all weight matrices of the trial pooled; biases are not included). ``std`` is the
    population standard deviation (ddof 0). ``snapshot`` is an epoch number, -1 the last stored.
    """
    layers = layer_names(ds)
    variables = weight_variables(ds, layers)
    labels = layers + ([NETWORK] if include_network else [])
    out = np.full((ds.sizes["trial"], len(labels), 2 + len(QUANTILES)), np.nan)
    for block, arrays in iter_trial_blocks(ds, variables, snapshot, max_values):
        flat = [arrays[v].reshape(arrays[v].shape[0], -1) for v in variables]
        for i, values in enumerate(flat):
            out[block, i] = _summaries(values)
        if include_network:
            out[block, -1] = _summaries(np.concatenate(flat, axis=1))
    n_weights = [int(np.prod(ds[v].shape[2:])) for v in variables]
    if include_network:
        n_weights.append(sum(n_weights))
    names = ["mean", "std", *(f"q{q}" for q in QUANTILES)]
    long_names = ["mean of weights", "standard deviation of weights", *(f"{q}th percentile of weights" for q in QUANTILES)]
    coords = {"trial": ds["trial"].values, "layer": labels, "n_weights": ("layer", n_weights)}
    if "seed" in ds.coords:
        coords["seed"] = ("trial", ds["seed"].values)
    epoch = int(ds["snapshot"].values[-1] if snapshot == -1 else snapshot)
    return xr.Dataset(
        {
            name: (("trial", "layer"), out[:, :, k], {"long_name": long_names[k], "units": "1"})
            for k, name in enumerate(names)
        },
        coords=coords,
        attrs={"snapshot": epoch, "model": ds.attrs.get("model", ""), "dataset": ds.attrs.get("dataset", "")},
    )


def feature_matrix(stats: xr.Dataset, include_network: bool = False) -> tuple[np.ndarray, list[str]]:
    """Flatten ``weight_statistics`` into features (trial, layer × statistic) and their names ``layer:stat``."""
    layers = [str(layer) for layer in stats["layer"].values if include_network or layer != NETWORK]
    names = list(stats.data_vars)
    columns = [stats[name].sel(layer=layer).values for layer in layers for name in names]
    return np.column_stack(columns), [f"{layer}:{name}" for layer in layers for name in names]


def sorted_sample(
    ds: xr.Dataset, layer: str, snapshot: int = -1, max_values: int = 2000, seed: int = 0
) -> np.ndarray:
    """Sorted weights of each trial, shape (trial, m): all of them, or the same ``max_values`` random
    positions in every trial when the layer (or ``"network"``) has more.

    The Wasserstein-1 distance between two rows ``a`` and ``b`` is ``mean(|a - b|)``.
    """
    variables = weight_variables(ds, None if layer == NETWORK else [layer])
    total = sum(int(np.prod(ds[v].shape[2:])) for v in variables)
    positions = None
    if total > max_values:
        positions = np.sort(np.random.default_rng(seed).choice(total, size=max_values, replace=False))
    out = np.empty((ds.sizes["trial"], total if positions is None else max_values))
    for block, arrays in iter_trial_blocks(ds, variables, snapshot):
        values = np.concatenate([arrays[v].reshape(arrays[v].shape[0], -1) for v in variables], axis=1)
        out[block] = np.sort(values if positions is None else values[:, positions], axis=1)
    return out
