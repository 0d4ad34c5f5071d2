"""Parameters that never trained: values that did not move from their initial draw, and ReLU units that
are dead on the training data.

A claim about a layer's weights says something about learning only if that layer learned. Two ways it
can fail to: its values never move (the query and key projections of a ViT that sees one token get an
exactly zero gradient; a trial that diverged in its first steps), or its units never fire (a ReLU unit
that is negative on every training sample passes no gradient to its incoming weights).

Both are read in blocks of trials, like ``weightzoo.analysis.stats``, so a 1,000-trial zoo never sits in
memory whole. The dead-unit forward pass is the model family's own stacked forward (float32, no gradients).
"""

from dataclasses import dataclass

import json

import numpy as np
import pandas as pd
import xarray as xr

from weightzoo.analysis.stats import BLOCK_VALUES, iter_trial_blocks
from weightzoo.analysis.zoo import parameter_names
from weightzoo.io.atomic import without_checksum

PACKED = {"_attn_qkv_weight": ("q", "k", "v"), "_attn_qkv_bias": ("q", "k", "v")}
"""Variable-name suffixes of tensors that pack several parts along their first axis (timm's qkv: rows
[q; k; v], ``embed_dim`` each), and the parts' names."""

MAX_SAMPLES = 10_000
"""Default number of training samples (the first ones of the train split) a unit must be zero on to be dead."""

ACTIVATION_VALUES = 2**22
"""Largest set of ReLU activations of the dead-unit forward pass, in float32 values (16 MiB)."""

THRESHOLD = 0.99
"""Default share of a part's values that must be unchanged for the part to count as never trained."""

MOTION_VARIABLES = {
    "unchanged_share": "share of values exactly equal to their value at the reference snapshot",
    "frozen_unit_share": "share of output units whose incoming values all equal the reference snapshot's",
    "max_abs_change": "largest absolute change of a value from the reference snapshot",
    "relative_change": "Frobenius norm of the change from the reference snapshot over the norm at it",
}


@dataclass(frozen=True)
class Part:
    """One stored parameter tensor, or one packed part of it (rows ``rows`` of ``variable``)."""

    name: str  # "fc1_weight", "blocks_0_attn_qkv_weight[q]"
    variable: str
    module: str  # layer id as in zoo.layer_names: "fc1", "blocks_0_attn_qkv"
    kind: str  # weight, bias, other
    component: str  # "q", "k", "v" or ""
    rows: slice | None
    n_values: int
    n_units: int  # output units (weight rows, or every value of a 1-d tensor); 0 where units mean nothing


def parameter_parts(ds: xr.Dataset) -> list[Part]:
    """Every stored parameter tensor in model order, packed tensors split into their parts."""
    parts = []
    for variable in parameter_names(ds):
        var = ds[variable]
        shape = tuple(ds.sizes[d] for d in var.dims if d not in ("trial", "snapshot"))
        module = str(var.attrs.get("layer", variable)).replace(".", "_")
        kind = str(var.attrs.get("kind", "other"))
        components = next((c for suffix, c in PACKED.items() if variable.endswith(suffix)), None)
        if components and shape[0] % len(components) == 0:
            rows = shape[0] // len(components)
            pieces = [(c, slice(i * rows, (i + 1) * rows)) for i, c in enumerate(components)]
        else:
            pieces = [("", None)]
        for component, rows in pieces:
            part_shape = (rows.stop - rows.start, *shape[1:]) if rows is not None else shape
            n_units = part_shape[0] if (kind == "weight" or len(part_shape) == 1) and part_shape else 0
            parts.append(Part(
                name=f"{variable}[{component}]" if component else variable, variable=variable, module=module,
                kind=kind, component=component, rows=rows, n_values=int(np.prod(part_shape)), n_units=int(n_units),
            ))
    return parts


def _trial_coords(ds: xr.Dataset) -> dict:
    coords = {"trial": ds["trial"].values}
    for name in ("seed", "diverged"):
        if name in ds.variables and ds[name].dims == ("trial",):
            coords[name] = ("trial", ds[name].values, without_checksum(ds[name].attrs))
    return coords


def _resolve(ds: xr.Dataset, snapshot: int) -> int:
    return int(ds["snapshot"].values[-1]) if snapshot == -1 else int(snapshot)


def parameter_motion(ds: xr.Dataset, snapshot: int = -1, reference: int = 0, max_values: int = BLOCK_VALUES
                     ) -> xr.Dataset:
    """How far every parameter part moved between snapshot ``reference`` (0: initial) and ``snapshot``.

    Dims ``trial × part``; ``part`` names a stored parameter variable (``fc1_weight``, ``fc1_bias``,
    ``pos_embed``), packed tensors split (``blocks_0_attn_qkv_weight[q]``, ``[k]``, ``[v]``). Variables
    ``unchanged_share`` (share of values exactly equal), ``frozen_unit_share`` (share of output units —
    rows of a weight, values of a 1-d tensor — whose incoming values are all unchanged; NaN for other
    tensors), ``max_abs_change`` and ``relative_change`` (‖change‖ / ‖reference‖, Frobenius; NaN where the
    reference is all zeros, as initial biases are: a part can move without any value staying put, yet
    move little against its initial scale). Coordinates along ``part``: ``variable``, ``module`` (layer id as in
    ``zoo.layer_names``), ``kind``, ``component``, ``n_values``, ``n_units``.

    When either snapshot is not stored, or they are the same, the result has no parts and attribute
    ``motion_status`` = ``skipped`` with the reason in ``motion_reason``. A NaN value counts as changed.
    """
    stored = [int(s) for s in ds["snapshot"].values]
    final = _resolve(ds, snapshot)
    reason = ""
    if reference not in stored:
        reason = f"reference snapshot {reference} is not stored (stored snapshots: {stored})"
    elif final not in stored:
        reason = f"snapshot {final} is not stored (stored snapshots: {stored})"
    elif final == reference:
        reason = f"snapshot {final} is the reference snapshot itself: there is no change to measure"
    parts = [] if reason else parameter_parts(ds)
    n_trials = ds.sizes["trial"]
    out = {name: np.full((n_trials, len(parts)), np.nan, np.float32) for name in MOTION_VARIABLES}
    if parts:
        variables = sorted({p.variable for p in parts})
        half = max(1, max_values // 2)
        blocks = zip(iter_trial_blocks(ds, variables, reference, half), iter_trial_blocks(ds, variables, final, half))
        for (block, before), (_, after) in blocks:
            for j, part in enumerate(parts):
                old, new = before[part.variable], after[part.variable]
                if part.rows is not None:
                    old, new = old[:, part.rows], new[:, part.rows]
                same = (old == new).reshape(len(old), -1)
                out["unchanged_share"][block, j] = same.mean(axis=1)
                if part.n_units:
                    out["frozen_unit_share"][block, j] = same.reshape(len(old), part.n_units, -1).all(axis=2).mean(axis=1)
                if part.n_values:
                    change = (new - old).reshape(len(old), -1)
                    out["max_abs_change"][block, j] = np.abs(change).max(axis=1)
                    start = np.linalg.norm(old.reshape(len(old), -1).astype(np.float64), axis=1)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        moved = np.linalg.norm(change.astype(np.float64), axis=1) / start
                    out["relative_change"][block, j] = np.where(start > 0, moved, np.nan)
    coords = {
        **_trial_coords(ds),
        "part": ("part", np.array([p.name for p in parts], dtype=str), {"long_name": "parameter tensor or packed part"}),
        "variable": ("part", np.array([p.variable for p in parts], dtype=str), {"long_name": "zoo variable"}),
        "module": ("part", np.array([p.module for p in parts], dtype=str), {"long_name": "layer id (module path, _ for .)"}),
        "kind": ("part", np.array([p.kind for p in parts], dtype=str), {"long_name": "weight, bias or other"}),
        "component": ("part", np.array([p.component for p in parts], dtype=str),
                      {"long_name": "part of a packed tensor (q, k, v; empty: whole tensor)"}),
        "n_values": ("part", np.array([p.n_values for p in parts], np.int64), {"long_name": "values in the part"}),
        "n_units": ("part", np.array([p.n_units for p in parts], np.int64),
                    {"long_name": "output units in the part (0: not defined)"}),
    }
    data_vars = {name: (("trial", "part"), out[name], {"long_name": long_name, "units": "1"})
                 for name, long_name in MOTION_VARIABLES.items()}
    attrs = {**_zoo_attrs(ds), "snapshot": final, "reference_snapshot": int(reference),
             "motion_status": "skipped" if reason else "ok", "motion_reason": reason}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _zoo_attrs(ds: xr.Dataset) -> dict:
    return {key: str(ds.attrs.get(key, "")) for key in ("model", "dataset", "arch")}


# ------------------------------------------------------------------------------------------- dead units


def train_inputs(dataset: xr.Dataset, max_samples: int = MAX_SAMPLES) -> np.ndarray:
    """The first ``max_samples`` training images (all when fewer), normalised as training does, float32
    (sample, channel, height, width)."""
    train = np.flatnonzero(dataset["split"].values == 0)[:max_samples]
    images = np.asarray(dataset["images"].values[train], np.float32)
    std = np.asarray(dataset["std"].values, np.float32).reshape(-1, 1, 1)
    mean = np.asarray(dataset["mean"].values, np.float32).reshape(-1, 1, 1)
    # the same float32 operations as weightzoo.train.TensorData.normalise: x * (1 / (255 std)) + (-mean / std)
    scale, shift = np.float32(1.0) / (np.float32(255.0) * std), -mean / std
    return images * scale + shift


def _sample_chunks(n: int, per_sample: int):
    step = max(1, ACTIVATION_VALUES // max(per_sample, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _alive(forward, relu_layers, params: dict, x, per_sample: int) -> dict[str, np.ndarray]:
    """{layer: bool (trial, unit)}: True where the unit's post-ReLU output is positive on some sample of the
    tensor ``x``."""
    import torch

    alive = {}

    def on_relu(layer, h):  # h: (trials, samples, units, *positions)
        if layer in relu_layers:
            positive = (h > 0).transpose(1, 2).flatten(2).any(2)
            alive[layer] = positive if layer not in alive else alive[layer] | positive

    with torch.no_grad():
        for chunk in _sample_chunks(len(x), per_sample):
            forward(params, x[chunk], on_relu=on_relu)
    return {layer: alive[layer].numpy() for layer in relu_layers}


def dead_unit_masks(ds: xr.Dataset, dataset: xr.Dataset, snapshot: int = -1, max_samples: int = MAX_SAMPLES,
                    max_values: int = BLOCK_VALUES) -> tuple[dict[str, np.ndarray], int, str]:
    """``({layer: bool (trial, unit)}, n_samples, reason)``: True where a ReLU unit's output is zero on every
    one of the first ``max_samples`` training samples (a conv channel: at every position of every sample).

    Models without ReLU units (the ViT) give ``({}, 0, reason)``.
    """
    # torch and the model registry, for the family's own forward: only the dead-unit check needs them, and the
    # claims job that reads this module's summaries need not load them (2-3 s, ~650 MB)
    import torch

    from weightzoo.models import family

    model = str(ds.attrs.get("model", ""))
    try:
        fam = family(model)
    except ValueError:
        return {}, 0, f"no ReLU layers known for model {model!r}"
    if not fam.relu_layers:
        return {}, 0, fam.no_relu_reason or f"model {model!r} has no ReLU layers"
    x = torch.from_numpy(train_inputs(dataset, max_samples))
    if len(x) == 0:
        return {}, 0, "the dataset has no training samples"
    kwargs = json.loads(ds.attrs["model_kwargs"])
    with torch.device("meta"):  # the stacked forward may want the network's structure, never its values
        forward = fam.stacked_forward(fam.build_for(kwargs, "relu"))
    per_sample = fam.activations(kwargs)
    variables = parameter_names(ds)
    names = {v: ds[v].attrs["parameter"] for v in variables}
    # a family with an activation choice (smallcnn): only its ReLU trials can have dead units; a tanh unit is
    # zero only where its input is exactly zero, so those trials count none
    relu = (ds["activation"].values.astype(str) == "relu" if "activation" in ds.coords
            else np.ones(ds.sizes["trial"], bool))  # zoos from before per-trial activations: all ReLU
    if not relu.any():
        return {}, 0, f"every trial of this {model} zoo uses {', '.join(np.unique(ds['activation'].values.astype(str)))}"
    dead = {}
    for block, arrays in iter_trial_blocks(ds, variables, snapshot, max_values):
        keep = np.flatnonzero(relu[block])
        if not len(keep):
            continue
        params = {names[v]: torch.from_numpy(np.ascontiguousarray(arrays[v][keep])) for v in variables}
        for layer, alive in _alive(forward, fam.relu_layers, params, x, len(keep) * per_sample).items():
            if layer not in dead:
                dead[layer] = np.zeros((ds.sizes["trial"], alive.shape[1]), bool)
            dead[layer][block.start + keep] = ~alive
    return dead, len(x), ""


def dead_units(ds: xr.Dataset, dataset: xr.Dataset, snapshot: int = -1, max_samples: int = MAX_SAMPLES,
               max_values: int = BLOCK_VALUES) -> xr.Dataset:
    """Share and number of dead ReLU units per trial and layer (DNN ``fc1``, ``fc2``; CNN ``conv1``).

    Dims ``trial × layer``: ``dead_unit_share`` and ``dead_units``; coordinate ``layer_units(layer)``. Dead
    means zero output on every sample checked: the first ``max_samples`` of the train split, normalised as
    training does; attribute ``n_samples`` says how many. ``dataset`` is a prepared dataset
    (``weightzoo.data.load_dataset``). A ViT gives no layers and the reason in ``dead_units_reason``.
    """
    masks, n_samples, reason = dead_unit_masks(ds, dataset, snapshot, max_samples, max_values)
    return _dead_dataset(ds, masks, n_samples, reason, _resolve(ds, snapshot))


def _dead_dataset(ds, masks, n_samples, reason, snapshot) -> xr.Dataset:
    layers = list(masks)
    n_trials = ds.sizes["trial"]
    counts = np.array([masks[layer].sum(axis=1) for layer in layers], np.int32).T.reshape(n_trials, len(layers))
    n_units = np.array([masks[layer].shape[1] for layer in layers], np.int64)
    share = (counts / np.maximum(n_units, 1)).astype(np.float32)
    sample_note = f"the first {n_samples} samples of the train split" if n_samples else "none"
    return xr.Dataset(
        {
            "dead_unit_share": (("trial", "layer"), share, {
                "long_name": "share of ReLU units whose output is zero on every training sample checked",
                "units": "1", "samples": sample_note}),
            "dead_units": (("trial", "layer"), counts, {
                "long_name": "number of ReLU units whose output is zero on every training sample checked",
                "units": "1", "samples": sample_note}),
        },
        coords={
            **_trial_coords(ds),
            "layer": ("layer", np.array(layers, dtype=str), {"long_name": "layer followed by a ReLU"}),
            "layer_units": ("layer", n_units, {"long_name": "units (a conv layer: channels) in the layer"}),
        },
        attrs={**_zoo_attrs(ds), "dead_units_snapshot": int(snapshot), "n_samples": int(n_samples),
               "dead_units_status": "skipped" if reason else "ok", "dead_units_reason": reason},
    )


# ------------------------------------------------------------------------------------------ combined


def training_status(ds: xr.Dataset, dataset: xr.Dataset | None = None, snapshot: int = -1, reference: int = 0,
                    max_samples: int = MAX_SAMPLES, max_values: int = BLOCK_VALUES) -> xr.Dataset:
    """``parameter_motion`` (dims trial × part) and, given the prepared ``dataset``, ``dead_units`` (dims
    trial × layer) in one Dataset that netCDF can store (string coordinates, CF attributes).

    Attributes ``motion_status``/``motion_reason`` and ``dead_units_status``/``dead_units_reason`` say when a
    half was skipped and why; ``n_samples`` is the number of training samples the dead units were checked on.
    """
    motion = parameter_motion(ds, snapshot, reference, max_values)
    if dataset is None:
        dead = _dead_dataset(ds, {}, 0, "no prepared dataset was given", _resolve(ds, snapshot))
    else:
        dead = dead_units(ds, dataset, snapshot, max_samples, max_values)
    status = xr.merge([motion, dead], combine_attrs="drop_conflicts")
    status.attrs = {
        "title": f"never-trained parameters and dead units of {ds.attrs.get('model', '')} on "
                 f"{ds.attrs.get('dataset', '')} ({ds.attrs.get('arch', '')})",
        **motion.attrs, **dead.attrs, "Conventions": "CF-1.8",
    }
    return status


def never_trained(status: xr.Dataset, threshold: float = THRESHOLD) -> xr.Dataset:
    """Which parts never trained: ``frozen(trial, part)`` (uint8: at least ``threshold`` of the part's
    values unchanged) and ``frozen_trial_share(part)`` (share of trials where it is frozen).

    A claim computed on a layer whose weight parts have a high ``frozen_trial_share`` measures the initial
    draw, not learning. A status whose motion was skipped (``motion_status``) has no parts.
    """
    frozen = (status["unchanged_share"] >= threshold).astype(np.uint8)  # NaN (nothing to compare) is not frozen
    frozen.attrs = {"long_name": f"at least {threshold:g} of the part's values never moved", "units": "1",
                    "flag_values": np.array([0, 1], np.uint8), "flag_meanings": "trained frozen"}
    share = frozen.mean("trial")
    share.attrs = {"long_name": f"share of trials where at least {threshold:g} of the part's values never moved",
                   "units": "1"}
    out = xr.Dataset({"frozen": frozen, "frozen_trial_share": share})
    out.attrs = {"threshold": float(threshold), "motion_status": status.attrs.get("motion_status", ""),
                 "motion_reason": status.attrs.get("motion_reason", "")}
    return out


def frozen_layers(status: xr.Dataset, threshold: float = THRESHOLD, min_trial_share: float = 0.5) -> dict[str, list[str]]:
    """``{module: [part, ...]}``: weight parts frozen in at least ``min_trial_share`` of the trials, by layer
    id (as in ``zoo.layer_names``), so a claim on that layer can say it measures parameters that never trained."""
    flags = never_trained(status, threshold)
    out: dict[str, list[str]] = {}
    for i, part in enumerate(flags["part"].values):
        if str(flags["kind"].values[i]) == "weight" and flags["frozen_trial_share"].values[i] >= min_trial_share:
            out.setdefault(str(flags["module"].values[i]), []).append(str(part))
    return out


SUMMARY_COLUMNS = ["part", "module", "kind", "component", "n_values", "n_units", "n_trials",
                   "median_unchanged_share", "frozen_trial_share", "median_frozen_unit_share",
                   "median_max_abs_change", "median_relative_change", "median_dead_unit_share"]


def summary_table(status: xr.Dataset, threshold: float = THRESHOLD) -> pd.DataFrame:
    """One row per part: median unchanged share, share of trials frozen (``never_trained``), median share
    of frozen units, median max |change| and relative change, and on a ReLU layer's weight row the median dead-unit share.

    Dead-unit layers with no motion row (the reference snapshot was not stored) get a row of their own.
    """
    n_trials = status.sizes["trial"]
    dead = {}
    if "dead_unit_share" in status and status.sizes.get("layer", 0):
        for layer in status["layer"].values:
            values = status["dead_unit_share"].sel(layer=layer).values
            dead[str(layer)] = float(np.nanmedian(values)) if values.size else np.nan
    rows = []
    if status.sizes.get("part", 0):
        flags = never_trained(status, threshold)
        for i, part in enumerate(status["part"].values):
            module, kind = str(status["module"].values[i]), str(status["kind"].values[i])

            def median(name):
                values = status[name].values[:, i]
                return float(np.nanmedian(values)) if np.isfinite(values).any() else np.nan

            rows.append({
                "part": str(part), "module": module, "kind": kind, "component": str(status["component"].values[i]),
                "n_values": int(status["n_values"].values[i]), "n_units": int(status["n_units"].values[i]),
                "n_trials": n_trials, "median_unchanged_share": median("unchanged_share"),
                "frozen_trial_share": float(flags["frozen_trial_share"].values[i]),
                "median_frozen_unit_share": median("frozen_unit_share"),
                "median_max_abs_change": median("max_abs_change"),
                "median_relative_change": median("relative_change"),
                "median_dead_unit_share": dead.get(module, np.nan) if kind == "weight" else np.nan,
            })
    covered = {row["module"] for row in rows if row["kind"] == "weight"}
    for layer, share in dead.items():
        if layer not in covered:
            rows.append({"part": layer, "module": layer, "kind": "weight", "component": "", "n_trials": n_trials,
                         "median_dead_unit_share": share})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
