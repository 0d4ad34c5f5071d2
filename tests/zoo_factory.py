"""Synthetic zoo datasets in the gathered-zoo layout of docs/data-format.md, for analysis tests.

With ``effect`` > 0 the weight standard deviation of a trial falls as its accuracy rises (the paper's
claim 1), so analyses have a planted effect to find; with ``effect=0`` weights are independent of accuracy.
"""

import json

import numpy as np
import xarray as xr


def make_zoo(
    n_trials=40,
    n_in=16,
    hidden=8,
    n_classes=10,
    epochs=3,
    effect=1.0,
    seed=0,
    diverged=(),
    model="dnn",
    dataset="synthetic",
):
    rng = np.random.default_rng(seed)
    accuracy = np.sort(rng.uniform(0.1, 1.0, n_trials))
    rng.shuffle(accuracy)
    scale = np.exp(-effect * (accuracy - accuracy.mean()) / accuracy.std())
    snapshots = np.array([0, 1, epochs])
    shapes = {"fc1": (hidden, n_in), "fc2": (hidden, hidden), "fc3": (n_classes, hidden)}
    data_vars = {}
    for layer, (n_out, n_in_) in shapes.items():
        w = rng.normal(0.0, 0.05, (n_trials, len(snapshots), n_out, n_in_))
        w[:, 1:] *= scale[:, None, None, None]
        data_vars[f"{layer}_weight"] = xr.Variable(
            ("trial", "snapshot", f"{layer}_out", f"{layer}_in"),
            w.astype(np.float32),
            {"parameter": f"{layer}.weight", "layer": layer, "kind": "weight", "long_name": f"{layer} weight", "units": "1"},
        )
        b = np.zeros((n_trials, len(snapshots), n_out), np.float32)
        data_vars[f"{layer}_bias"] = xr.Variable(
            ("trial", "snapshot", f"{layer}_out"),
            b,
            {"parameter": f"{layer}.bias", "layer": layer, "kind": "bias", "long_name": f"{layer} bias", "units": "1"},
        )
    curve = np.linspace(0.3, 1.0, epochs)[None, :]
    acc = np.clip(accuracy[:, None] * curve / curve[:, -1:], 0, 1)
    flags = np.zeros(n_trials, np.uint8)
    flags[list(diverged)] = 1
    acc[flags == 1] = 0.1
    data_vars.update(
        train_accuracy=(("trial", "epoch"), acc.astype(np.float32)),
        test_accuracy=(("trial", "epoch"), (acc * 0.97).astype(np.float32)),
        train_loss=(("trial", "epoch"), (-np.log(np.clip(acc, 1e-3, 1)) + 0.05).astype(np.float32)),
        test_loss=(("trial", "epoch"), (-np.log(np.clip(acc * 0.97, 1e-3, 1)) + 0.06).astype(np.float32)),
        diverged=(("trial",), flags),
        diverged_epoch=(("trial",), np.where(flags == 1, 1, 0).astype(np.int32)),
    )
    ds = xr.Dataset(
        data_vars,
        coords={
            "trial": np.arange(n_trials),
            "seed": ("trial", np.arange(n_trials)),
            "epoch": np.arange(1, epochs + 1),
            "snapshot": snapshots,
        },
        attrs={
            "model": model,
            "dataset": dataset,
            "arch": f"h{hidden}",
            "model_kwargs": json.dumps({"in_features": n_in, "hidden": hidden, "n_classes": n_classes}),
            "n_classes": n_classes,
        },
    )
    return ds
