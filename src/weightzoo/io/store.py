"""Zoo files: labelled netCDF datasets of curves and weight snapshots (layout: docs/data-format.md)."""

import json

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr

from weightzoo.io.atomic import (
    CHECKSUM_ATTR,
    READ_ERRORS,
    REMAKE_CHUNK,
    atomic_path,
    checksum,
    damaged,
    with_checksums,
    write_netcdf_atomic,
)
from weightzoo.config import HYPERPARAMETER_DEFAULTS, HYPERPARAMETERS
from weightzoo.io.provenance import provenance_attrs

CURVES = {
    "train_loss": ("training loss (cross-entropy over the whole train split after the epoch)", "nat"),
    "test_loss": ("test loss (cross-entropy over the test split)", "nat"),
    "train_accuracy": ("training accuracy (whole train split after the epoch)", "1"),
    "test_accuracy": ("test accuracy", "1"),
}
REQUIRED_ATTRS = ("model", "dataset", "arch", "model_kwargs", "hyperparameters", "parameters")


def layer_of(parameter: str) -> str:
    """Module path of a state-dict key: ``blocks.0.attn.qkv.weight`` → ``blocks.0.attn.qkv``."""
    head, _, last = parameter.rpartition(".")
    return head if last in ("weight", "bias") and head else parameter


def variable_name(parameter: str) -> str:
    """``blocks.0.attn.qkv.weight`` → ``blocks_0_attn_qkv_weight`` (netCDF/xarray friendly)."""
    return parameter.replace(".", "_")


def parameter_dims(parameter: str, ndim: int) -> tuple[str, ...]:
    """Named dims of one parameter: ``fc1_out, fc1_in``; conv kernels add ``_kh, _kw``."""
    layer = variable_name(layer_of(parameter))
    kind = parameter.rpartition(".")[2]
    if kind == "weight" and ndim == 2:
        return (f"{layer}_out", f"{layer}_in")
    if kind == "weight" and ndim == 4:
        return (f"{layer}_out", f"{layer}_in", f"{layer}_kh", f"{layer}_kw")
    if kind in ("weight", "bias") and ndim == 1:
        return (f"{layer}_out",)
    return tuple(f"{variable_name(parameter)}_d{i}" for i in range(ndim))


def _parameter_attrs(parameter: str, ndim: int) -> dict:
    last = parameter.rpartition(".")[2]
    kind = "weight" if last == "weight" and ndim >= 2 else "bias" if last == "bias" else "other"
    layer = layer_of(parameter)
    return {"parameter": parameter, "layer": layer, "kind": kind, "long_name": f"{parameter} ({kind})", "units": "1"}


def result_to_dataset(result, *, model, dataset, arch, model_kwargs, hyperparameters, input_shape, n_classes,
                      dataset_source="", config=None, normalisation=None, dataset_sha256="",
                      code_revision="") -> xr.Dataset:
    """One training job's ``TrainResult`` as a self-describing dataset.

    ``normalisation``: the dataset's per-channel (mean, std) in pixel units / 255, stored so that the
    networks can be evaluated without the dataset file (``normalisation(path)`` reads it back)."""
    data_vars = {}
    for name, (long_name, units) in CURVES.items():
        data_vars[name] = xr.Variable(("trial", "epoch"), getattr(result, name).astype(np.float32),
                                      {"long_name": long_name, "units": units})
    data_vars["diverged"] = xr.Variable(("trial",), result.diverged.astype(np.uint8), {
        "long_name": "loss became NaN/inf; the trial stopped updating", "units": "1",
        "flag_values": np.array([0, 1], np.uint8), "flag_meanings": "converged diverged"})
    data_vars["diverged_epoch"] = xr.Variable(("trial",), result.diverged_epoch.astype(np.int32), {
        "long_name": "epoch in which the loss became NaN/inf (0: never)", "units": "1"})
    for parameter, values in result.weights.items():
        ndim = values.ndim - 2
        data_vars[variable_name(parameter)] = xr.Variable(
            ("trial", "snapshot", *parameter_dims(parameter, ndim)), values, _parameter_attrs(parameter, ndim))
    coords = {
        "trial": ("trial", result.trials.astype(np.int64), {"long_name": "trial index within the experiment"}),
        "seed": ("trial", result.seeds.astype(np.int64), {"long_name": "trial seed (base_seed + trial)"}),
        "epoch": ("epoch", np.arange(1, result.train_loss.shape[1] + 1), {"long_name": "epochs completed"}),
        "snapshot": ("snapshot", np.asarray(result.snapshots, np.int64),
                     {"long_name": "epoch after which weights were saved (0: initial)"}),
    }
    for key, values in result.hyperparameters.items():
        long_name, units = HYPERPARAMETERS[key]
        coords[key] = ("trial", values, {"long_name": long_name, "units": units})
    attrs = {
        "title": f"weightzoo {model} on {dataset} ({arch})",
        "model": model, "dataset": dataset, "arch": arch,
        "model_kwargs": json.dumps(model_kwargs),
        "hyperparameters": json.dumps(hyperparameters),
        "parameters": json.dumps(list(result.weights)),
        "input_shape": json.dumps(list(input_shape)),
        "n_classes": int(n_classes),
        "dataset_source": dataset_source,
        "dataset_sha256": dataset_sha256,
        "code_revision": code_revision,
        "device": result.device,
        "vectorized": int(result.vectorized),
        "config": json.dumps(config or {}),
        "Conventions": "CF-1.8",
        **provenance_attrs(),
    }
    if normalisation is not None:
        attrs["dataset_mean"], attrs["dataset_std"] = (json.dumps(np.asarray(v, np.float64).tolist()) for v in normalisation)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def encoding_for(ds: xr.Dataset) -> dict:
    """zlib compression, one chunk per trial and snapshot: an analysis of the final weights then never
    decompresses the initial ones (bench/analysis_speed.py: 38 s instead of 62 s for 1,000 trials)."""
    encoding = {}
    for name, var in ds.data_vars.items():
        chunks = tuple(1 if dim in ("trial", "snapshot") else size for dim, size in zip(var.dims, var.shape))
        # fletcher32: HDF5 checks each chunk when it reads it, so overwritten bytes raise instead of reading wrong
        encoding[name] = {"zlib": True, "complevel": 4, "chunksizes": chunks, "fletcher32": True}
    return encoding


def write_zoo(ds: xr.Dataset, path) -> None:
    """Write a zoo or chunk file atomically, every variable with a CRC-32 checked when it is read in full."""
    write_netcdf_atomic(ds, path, encoding=encoding_for(ds))


def open_zoo(path, **kwargs) -> xr.Dataset:
    """Open a zoo file lazily, checking it is one (clear error naming the file otherwise)."""
    try:
        ds = xr.open_dataset(path, engine="netcdf4", **kwargs)
    except READ_ERRORS as err:
        if isinstance(err, FileNotFoundError):
            raise ValueError(f"{path}: zoo file does not exist") from err
        raise damaged(path, f"not readable as netCDF: {type(err).__name__}: {err}") from err
    missing = [a for a in REQUIRED_ATTRS if a not in ds.attrs]
    if missing:
        ds.close()
        raise ValueError(f"{path}: not a weightzoo zoo file (missing attributes {missing})")
    return ds


GATHER_BLOCK_BYTES = 64 << 20
"""Bytes of one variable that ``gather`` holds at a time (a block of trials of one chunk)."""


def gather(chunk_paths, out_path, block_bytes: int = GATHER_BLOCK_BYTES) -> None:
    """Concatenate the chunks of one experiment along ``trial``, one block of trials of one variable at a time.

    The zoo is created with each variable at its full size (trials of all chunks) and filled block by block, the
    checksums of the chunks and of the zoo accumulated as it goes (the same values as of the whole arrays): the
    memory is one block (``block_bytes``, at least one trial) whatever the size of the zoo. A chunk whose values do
    not match its checksum fails the gather before the zoo is replaced (the part file is removed).
    """
    chunks = []
    try:
        for path in chunk_paths:  # a damaged chunk is moved aside before the zoo is touched
            chunks.append(open_zoo(path, cache=False))
        chunks.sort(key=lambda d: int(d["trial"][0]))
        _check_compatible(chunks, chunk_paths)
        template = xr.concat([c.drop_vars(list(c.data_vars)) for c in chunks], dim="trial")
        template.attrs = {**chunks[0].attrs, **provenance_attrs(),
                          "device": ",".join(sorted({c.attrs["device"] for c in chunks})),
                          "vectorized": int(all(c.attrs["vectorized"] for c in chunks)),
                          "code_revision": ",".join(sorted({c.attrs.get("code_revision", "") for c in chunks} - {""})),
                          "gathered_from": json.dumps([str(p) for p in chunk_paths])}
        duplicates = pd.Index(template["trial"].values).duplicated()
        if duplicates.any():
            raise ValueError(f"trials {template['trial'].values[duplicates].tolist()} appear in more than one chunk")
        for c in chunks:
            for name in c.coords:
                _load_checked(c, name)
        template = with_checksums(template, list(template.coords))
        with atomic_path(out_path) as tmp:
            template.to_netcdf(tmp, engine="netcdf4")
            with netCDF4.Dataset(tmp, "a") as out:
                out.set_auto_maskandscale(False)  # values go in as xarray decoded them from the chunks
                for name in chunks[0].data_vars:
                    _copy_variable(chunks, name, out, block_bytes)
    finally:
        for c in chunks:
            c.close()


def _copy_variable(chunks, name: str, out, block_bytes: int) -> None:
    """Write variable ``name`` of all ``chunks`` into the open netCDF file ``out``, one block of trials at a time,
    checking each chunk's checksum and storing the zoo's (CRC-32 continued block by block)."""
    first = chunks[0][name]
    n_trials = sum(c.sizes["trial"] for c in chunks)
    for dim, size in first.sizes.items():
        if dim not in out.dimensions:
            out.createDimension(dim, n_trials if dim == "trial" else size)
    # the encoding of write_zoo (encoding_for); the fill value xarray gives floats (NaN) and not integers
    chunksizes = tuple(1 if dim in ("trial", "snapshot") else size for dim, size in first.sizes.items())
    target = out.createVariable(name, first.dtype, first.dims, zlib=True, complevel=4, chunksizes=chunksizes,
                                fletcher32=True, fill_value=first.encoding.get("_FillValue"))
    target.setncatts({k: v for k, v in first.attrs.items() if k != CHECKSUM_ATTR})
    if "coordinates" in first.encoding:  # CF: the trial coordinates (seed, lr, ...) that label this variable
        target.setncattr("coordinates", first.encoding["coordinates"])
    per_trial = max(1, first.dtype.itemsize * int(np.prod(first.shape[1:])))
    step = max(1, block_bytes // per_trial)
    written, zoo_crc = 0, 0
    for chunk in chunks:
        path = chunk.encoding.get("source", "chunk")
        var, chunk_crc = chunk[name], 0
        for start in range(0, var.sizes["trial"], step):
            try:
                block = var.isel(trial=slice(start, start + step)).values
            except READ_ERRORS as err:
                raise damaged(path, f"reading {name!r}: {type(err).__name__}: {err}", REMAKE_CHUNK) from err
            chunk_crc, zoo_crc = checksum(block, chunk_crc), checksum(block, zoo_crc)
            target[written:written + len(block)] = block
            written += len(block)
        stored = var.attrs.get(CHECKSUM_ATTR)
        if stored is not None and int(stored) != chunk_crc:
            raise damaged(path, f"variable {name!r} does not match its checksum", REMAKE_CHUNK)
    target.setncattr(CHECKSUM_ATTR, np.int64(zoo_crc))


def _load_checked(chunk: xr.Dataset, name: str) -> xr.DataArray:
    """One variable of a chunk, read in full and checked against its checksum; damage names the chunk."""
    path = chunk.encoding.get("source", "chunk")
    try:
        var = chunk[name].load()
    except READ_ERRORS as err:
        raise damaged(path, f"reading {name!r}: {type(err).__name__}: {err}", REMAKE_CHUNK) from err
    stored = var.attrs.get(CHECKSUM_ATTR)
    if stored is not None and int(stored) != checksum(var.values):
        raise damaged(path, f"variable {name!r} does not match its checksum", REMAKE_CHUNK)
    return var


def _check_compatible(chunks, paths):
    keys = ("model", "dataset", "arch", "model_kwargs", "hyperparameters", "parameters", "dataset_sha256",
            "dataset_mean", "dataset_std")
    for key in keys:
        values = {c.attrs.get(key, "") for c in chunks}
        if len(values) > 1:
            raise ValueError(f"chunks {[str(p) for p in paths]} disagree on attribute {key!r}: {sorted(values)}")


def summary_table(zoo_paths) -> pd.DataFrame:
    """One row per trial of every experiment (see docs/data-format.md)."""
    frames = []
    for path in zoo_paths:
        with open_zoo(path) as ds:
            params = json.loads(ds.attrs["parameters"])
            n_params = sum(int(np.prod(ds[variable_name(p)].shape[2:])) for p in params)
            frames.append(pd.DataFrame({
                "experiment": f"{ds.attrs['model']}/{ds.attrs['dataset']}/{ds.attrs['arch']}",
                "model": ds.attrs["model"], "dataset": ds.attrs["dataset"], "arch": ds.attrs["arch"],
                "model_kwargs": ds.attrs["model_kwargs"],
                "trial": ds["trial"].values, "seed": ds["seed"].values,
                **trial_hyperparameters(ds),
                **{f"final_{k}": ds[k].isel(epoch=-1).values for k in CURVES},
                "diverged": ds["diverged"].values.astype(bool),
                "diverged_epoch": ds["diverged_epoch"].values,
                "n_parameters": n_params,
            }))
    columns = ["experiment", "model", "dataset", "arch", "model_kwargs", "trial", "seed", *HYPERPARAMETERS]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return table[[*columns, *(c for c in table.columns if c not in columns)]]


def trial_hyperparameters(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Each trial's lr, init_std, batch_size, train_fraction; zoos written before sweeps existed hold them
    only in the ``hyperparameters`` attribute (shared by all trials)."""
    shared = {**HYPERPARAMETER_DEFAULTS, **json.loads(ds.attrs["hyperparameters"])}
    # zoos written before weight decay and activations were per-trial lack them: 0 and "" (not recorded)
    return {k: ds[k].values if k in ds.coords else np.full(ds.sizes["trial"], shared.get(k, ""))
            for k in HYPERPARAMETERS}


def normalisation(path) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (mean, std) of the zoo's dataset, in pixel units / 255: a network of the zoo classifies
    ``(pixels / 255 - mean) / std`` with pixels 0-255 in (channel, height, width) order."""
    with open_zoo(path) as ds:
        missing = [a for a in ("dataset_mean", "dataset_std") if a not in ds.attrs]
        if missing:
            raise ValueError(f"{path}: zoo has no {missing} attributes (written before they were recorded); "
                             "take mean/std from the prepared dataset file instead")
        mean, std = (np.array(json.loads(ds.attrs[a]), np.float32) for a in ("dataset_mean", "dataset_std"))
    return mean, std


def load_network(path, trial: int, snapshot: int = -1):
    """Rebuild the torch network of one stored trial (``snapshot``: epoch number, -1 = last stored)."""
    import torch  # here, not at the top: analysis jobs read zoos without paying torch's import (~600 MB)

    from weightzoo.models import build_model

    with open_zoo(path) as ds:
        sel = ds.sel(trial=trial)
        activation = str(sel["activation"].values) if "activation" in sel.coords else None
        net = build_model(ds.attrs["model"], activation=activation, **json.loads(ds.attrs["model_kwargs"]))
        sel = sel.isel(snapshot=-1) if snapshot == -1 else sel.sel(snapshot=snapshot)
        state = {p: torch.from_numpy(np.asarray(sel[variable_name(p)].values)) for p in json.loads(ds.attrs["parameters"])}
    net.load_state_dict(state)
    return net.eval()
