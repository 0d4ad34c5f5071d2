"""Access to the parts of a gathered zoo dataset that every analysis needs."""

import numpy as np
import xarray as xr


CHUNK_VALUES = 1 << 23
"""Values an analysis reads from a zoo at a time (64 MiB as float64)."""


def layer_names(ds: xr.Dataset) -> list[str]:
    """Layer ids (``fc1``, ``conv1``, ``blocks_0_attn_qkv``) that have a ``{layer}_weight`` variable, in model order."""
    return [
        name[: -len("_weight")]
        for name, var in ds.data_vars.items()
        if name.endswith("_weight") and var.attrs.get("kind") == "weight"
    ]


def parameter_names(ds: xr.Dataset) -> list[str]:
    """All stored parameter variables (weights, biases, other), in model order."""
    return [name for name, var in ds.data_vars.items() if "parameter" in var.attrs]


def select_snapshot(var: xr.DataArray, snapshot: int = -1) -> xr.DataArray:
    """Pick a snapshot by epoch number; ``-1`` means the last snapshot stored."""
    if snapshot == -1:
        return var.isel(snapshot=-1)
    return var.sel(snapshot=snapshot)


def flat_weights(ds: xr.Dataset, variable: str, snapshot: int = -1) -> np.ndarray:
    """One parameter variable as a float array of shape (trial, n_values)."""
    values = select_snapshot(ds[variable], snapshot).values
    return values.reshape(values.shape[0], -1)


def final_accuracy(ds: xr.Dataset, which: str = "train") -> np.ndarray:
    """Accuracy (fraction) after the last epoch, per trial; ``which`` is ``train`` or ``test``."""
    return ds[f"{which}_accuracy"].isel(epoch=-1).values


GROUP_ORDER = ("non", "low", "mid", "high")


def trial_groups(ds: xr.Dataset, groups=None) -> np.ndarray:
    """Group label (str) of every trial of ``ds``.

    ``groups`` is None (every trial in group ``all``), the name of a variable or coordinate of ``ds``,
    a DataArray or pandas Series indexed by trial, or any sequence with one label per trial.
    """
    n = ds.sizes["trial"]
    if groups is None:
        return np.full(n, "all", dtype=object)
    if isinstance(groups, str):
        groups = ds[groups]
    if isinstance(groups, xr.DataArray) and "trial" in groups.dims and "trial" in groups.coords:
        groups = groups.reindex(trial=ds["trial"].values).values
    elif hasattr(groups, "reindex") and hasattr(groups, "index"):  # pandas Series indexed by trial
        groups = groups.reindex(ds["trial"].values).to_numpy()
    labels = np.asarray(groups, dtype=object).ravel()
    if labels.size != n:
        raise ValueError(f"groups has {labels.size} labels for {n} trials")
    return np.array(["" if label is None or label != label else str(label) for label in labels], dtype=object)


def ordered_groups(labels) -> list[str]:
    """Distinct labels, the paper's groups first in the order non, low, mid, high, then others as they appear."""
    present = list(dict.fromkeys(str(label) for label in labels if label != ""))
    return [g for g in GROUP_ORDER if g in present] + [g for g in present if g not in GROUP_ORDER]
