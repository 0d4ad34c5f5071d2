"""Reading a zoo's weights trial block by trial block, and the flat views of per-layer metrics that
projections and distances use (the metrics themselves: ``analysis.metrics``).

Memory stays bounded by reading the zoo in blocks of trials (``max_values`` weights per block, all layers
together), one variable at a time through lazy ``ds[var]`` selections: never one layer of all trials, let
alone all layers, unless they fit in a block.
"""

from collections.abc import Iterator

import numpy as np
import xarray as xr

from weightzoo.analysis.zoo import layer_names, select_snapshot

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
    sample = SortedSample(ds, layer, max_values, seed)
    for block, arrays in iter_trial_blocks(ds, sample.variables, snapshot):
        sample.add(block, arrays)
    return sample.values


class SortedSample:
    """``sorted_sample`` filled block by block from ``iter_trial_blocks`` items that hold (at least) its
    ``variables``, so that several consumers share one read of the zoo."""

    def __init__(self, ds: xr.Dataset, layer: str, max_values: int = 2000, seed: int = 0):
        self.variables = weight_variables(ds, None if layer == NETWORK else [layer])
        total = sum(int(np.prod(ds[v].shape[2:])) for v in self.variables)
        self.positions = None
        if total > max_values:
            self.positions = np.sort(np.random.default_rng(seed).choice(total, size=max_values, replace=False))
        self.values = np.empty((ds.sizes["trial"], total if self.positions is None else max_values))

    def add(self, block: slice, arrays: dict[str, np.ndarray]) -> None:
        parts = [arrays[v].reshape(arrays[v].shape[0], -1) for v in self.variables]
        values = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        self.values[block] = np.sort(values if self.positions is None else values[:, self.positions], axis=1)
