"""A ``torch.utils.data.Dataset`` of networks as nfn's ``WeightSpaceFeatures``, with an accuracy target.

Item ``i``: ``(WeightSpaceFeatures, target)`` with, per layer, weights ``[1, out, in]`` (conv:
``[1, out, in, kh, kw]``) and biases ``[1, out]`` (the 1 is nfn's channel dim); ``collate`` stacks items
into nfn's batch ``[B, 1, ...]``. Only chains of Linear/Conv2d layers have such a weight space: other
families raise (``analysis.canonical.chain_problem`` says why).
"""

import ast

import numpy as np
import pandas as pd
import torch
from nfn.common import NetworkSpec, WeightSpaceFeatures, network_spec_from_wsfeat

from weightzoo.analysis.canonical import chain_problem
from weightzoo.export.read import read_export
from weightzoo.export.rows import common_layout, metrics_table, weight_blocks
from weightzoo.io.store import open_zoo

TARGETS = ("test_accuracy", "train_accuracy", "test_loss", "train_loss")


class WeightSpaceDataset(torch.utils.data.Dataset):
    """Networks of one weight shape: ``weights[l]`` (N, out, in[, kh, kw]) and ``biases[l]`` (N, out) float32
    tensors, ``targets`` (N,), ``table`` the metrics row of each network (experiment, trial, step, ...)."""

    def __init__(self, weights, biases, targets, table: pd.DataFrame, model: str):
        self.weights = [torch.as_tensor(w, dtype=torch.float32) for w in weights]
        self.biases = [torch.as_tensor(b, dtype=torch.float32) for b in biases]
        self.targets = targets.float() if torch.is_tensor(targets) else torch.tensor(np.array(targets, np.float32))
        self.table = table.reset_index(drop=True)
        self.model = model

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        return (WeightSpaceFeatures(tuple(w[i][None] for w in self.weights), tuple(b[i][None] for b in self.biases)),
                self.targets[i])

    def batch(self, index) -> tuple[WeightSpaceFeatures, torch.Tensor]:
        """The networks ``index`` as one batch, as ``collate`` of their items gives it (without the items)."""
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return (WeightSpaceFeatures(tuple(w[index].unsqueeze(1) for w in self.weights),
                                    tuple(b[index].unsqueeze(1) for b in self.biases)), self.targets[index])

    @property
    def network_spec(self) -> NetworkSpec:
        """nfn's spec of the weight space (hidden sizes free, input and output sizes fixed)."""
        return network_spec_from_wsfeat(collate([self[0]])[0])

    def subset(self, index) -> "WeightSpaceDataset":
        """The networks ``index`` (positions) as a dataset of their own."""
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return WeightSpaceDataset([w[index] for w in self.weights], [b[index] for b in self.biases],
                                  self.targets[index], self.table.iloc[index.numpy()], self.model)

    @classmethod
    def from_rows(cls, rows: np.ndarray, layout: pd.DataFrame, table: pd.DataFrame, model: str,
                  target: str = "test_accuracy", source: str = "") -> "WeightSpaceDataset":
        """Flat weight rows (Small CNN Zoo layout) and their metrics rows as a dataset; ``target`` a metrics column."""
        slices = weight_space_slices(layout, model, source)
        if target not in table.columns:
            known = [c for c in TARGETS if c in table]
            raise ValueError(f"{source}: no target column {target!r}; choose one of {known}")
        targets = table[target].to_numpy(np.float64)
        if np.isnan(targets).any():
            steps = sorted(table.loc[np.isnan(targets), "step"].unique().tolist())
            raise ValueError(f"{source}: {int(np.isnan(targets).sum())} networks have no {target} (steps {steps}; "
                             "step 0 has no recorded curves): pick networks after the first epoch")

        def part(start, end, shape):
            return np.ascontiguousarray(rows[:, start:end]).reshape(len(rows), *shape)

        return cls([part(*weight) for weight, _ in slices], [part(*bias) for _, bias in slices], targets, table, model)

    @classmethod
    def from_export(cls, folder, target: str = "test_accuracy", step="last") -> "WeightSpaceDataset":
        """An export folder's networks at ``step``: ``"last"`` (each trial's last snapshot), an epoch, or None (all)."""
        export = read_export(folder)
        metrics = export.metrics
        if step == "last":
            keep = metrics["step"] == metrics.groupby(["experiment", "trial"])["step"].transform("max")
        elif step is None:
            keep = pd.Series(True, index=metrics.index)
        else:
            keep = metrics["step"] == int(step)
            if not keep.any():
                steps = sorted(metrics["step"].unique().tolist())
                raise ValueError(f"{folder}: no rows at step {step} (steps {steps})")
        index = np.flatnonzero(keep.to_numpy())
        return cls.from_rows(np.asarray(export.weights[index]), export.layout, metrics.iloc[index], export.model,
                             target, source=str(folder))

    @classmethod
    def from_zoos(cls, zoo_paths, target: str = "test_accuracy", snapshot: int = -1,
                  canonical: bool = False) -> "WeightSpaceDataset":
        """Zoo files' networks at ``snapshot`` (an epoch; -1: each zoo's last), optionally canonicalised."""
        paths = [str(p) for p in zoo_paths]
        zoos = [open_zoo(p) for p in paths]
        try:
            layout = common_layout(zoos, paths)
            weight_space_slices(layout, zoos[0].attrs["model"], ", ".join(paths))  # refuse before reading weights
            rows, tables = [], []
            for ds, path in zip(zoos, paths):
                step = int(ds["snapshot"].values[-1]) if snapshot == -1 else int(snapshot)
                if step not in ds["snapshot"].values:
                    raise ValueError(f"{path}: no snapshot at epoch {step} (stored: {ds['snapshot'].values.tolist()})")
                rows.extend(block for _, block in weight_blocks(ds, layout, canonical, snapshots=[step], path=path))
                tables.append(metrics_table(ds, [step]))
            model = zoos[0].attrs["model"]
        finally:
            for ds in zoos:
                ds.close()
        return cls.from_rows(np.concatenate(rows), layout, pd.concat(tables, ignore_index=True), model, target,
                             source=", ".join(paths))


def weight_space_slices(layout: pd.DataFrame, model: str | None, source: str = "") -> list[tuple]:
    """Per layer of the chain, the (start, end, shape) of its weight and of its bias in a flat row; a clear
    error where the layout is no chain of Linear/Conv2d layers with biases."""
    shapes = [ast.literal_eval(shape) for shape in layout["shape"]]
    why = chain_problem(model, zip(layout["layer"], layout["kind"], shapes))
    if why:
        raise ValueError(f"{source}: {why}")
    where = dict(zip(zip(layout["layer"], layout["kind"]), zip(layout["start_idx"], layout["end_idx"], shapes)))
    layers = list(dict.fromkeys(layout["layer"]))
    no_bias = [layer for layer in layers if (layer, "bias") not in where]
    if no_bias:
        raise ValueError(f"{source}: layers {no_bias} have no bias; nfn's weight space needs one per layer")
    return [(where[(layer, "weight")], where[(layer, "bias")]) for layer in layers]


def collate(batch):
    """Items ``(WeightSpaceFeatures, target)`` → one ``WeightSpaceFeatures`` with a batch dim, targets (B,)."""
    features, targets = zip(*batch)
    weights = tuple(torch.stack(layer) for layer in zip(*(f.weights for f in features)))
    biases = tuple(torch.stack(layer) for layer in zip(*(f.biases for f in features)))
    return WeightSpaceFeatures(weights, biases), torch.stack(targets)
