"""Bytes per report figure at the paper's scale, from synthetic zoos of config/paper.yaml's shape.

DNN/CNN experiments of the paper's grid hold 1,000 trials (20 epochs) per architecture and 6-8 architectures per
(model, dataset); their figures are the large ones (1,000 curves, 1,000-6,000 points). This draws every report
figure of one such experiment (a synthetic DNN zoo: 1,000 trials, 3 layers, 20 epochs) and of one pooled
(model, dataset) (6,000 trials, 6 architectures as markers) with ``weightzoo.report.figures`` and ``plots.save`` (what the
workflow writes) and prints each file's size. ViT experiments (30 trials) are measured on a real run instead
(docs/benchmarks.md).

    PYTHONPATH=src:tests .venv/bin/python bench/report_size.py [--out DIR]
"""

import argparse
import os
import tempfile
import time

import numpy as np
import xarray as xr

from weightzoo.report import figures as plots
from weightzoo.analysis.groups import assign_groups
from weightzoo.analysis.kde import layer_density
from weightzoo.analysis.metrics import weight_statistics
from weightzoo.analysis.strength import node_strength, pairwise_strength, strength_layers
from weightzoo.analysis.zoo import final_accuracy, layer_names
from zoo_factory import make_zoo


def fake_projection(labels, arch, layer, seed=0):
    rng = np.random.default_rng(seed)
    n = len(labels)
    centre = {g: rng.normal(0, 10, 2) for g in set(labels)}
    xy = np.array([centre[g] for g in labels]) + rng.normal(0, 4, (n, 2))
    coords = {"trial": np.arange(n), "group": ("trial", np.asarray(labels, dtype=str))}
    if arch is not None:
        coords["arch"] = ("trial", np.asarray(arch, dtype=str))
    return xr.Dataset({"x": ("trial", xy[:, 0]), "y": ("trial", xy[:, 1])}, coords=coords,
                      attrs={"layer": layer, "features": "raw", "perplexity": 30.0, "knn_k": 5, "knn_accuracy": 0.71,
                             "chance_accuracy": 0.4, "silhouette": 0.12, "n_trials": n})


def figures(ds, labels, arch=None, layers_panels=True):
    stats = weight_statistics(ds)
    layers = strength_layers(ds)
    strengths = [node_strength(ds, layer) for layer in layers]
    out = {
        "convergence": plots.convergence(ds, labels, "dnn on mnist, h50"),
        "weight_statistics": plots.weight_statistics(stats, labels, "dnn on mnist, h50", arch=arch),
        "distributions": plots.distributions([layer_density(ds, f"{layer}_weight", groups=labels)
                                              for layer in layer_names(ds)], "dnn on mnist, h50"),
        "node_strength": plots.node_strength(strengths, labels, "dnn on mnist, h50", arch=arch),
        "strength_pairs": plots.strength_pairs(pairwise_strength(ds, layers, groups=labels, strengths=strengths),
                                               "dnn on mnist, h50", arch=arch),
    }
    panels = ["all", *(layer_names(ds) if layers_panels else [])]
    out["projection"] = plots.projection([fake_projection(labels, arch, layer, i) for i, layer in enumerate(panels)],
                                         "dnn on mnist, h50")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "weightzoo-report-size"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for scope, n, arch_names in (("experiment", 1000, None), ("pooled", 6000, [f"h{w}" for w in (5, 10, 20, 50, 100, 200)])):
        t = time.time()
        ds = make_zoo(n_trials=n, n_in=64, hidden=50, epochs=20, diverged=range(0, n, 17))
        labels = assign_groups(final_accuracy(ds), ds["diverged"].values, n_classes=10)
        arch = None if arch_names is None else np.array(arch_names)[np.arange(n) % len(arch_names)]
        total = 0
        for name, fig in figures(ds, labels, arch, layers_panels=arch is None).items():
            path = os.path.join(args.out, f"{scope}_{name}.png")
            plots.save(fig, path)
            size = os.path.getsize(path)
            total += size * (3 if scope == "experiment" and name == "projection" else 1)
            print(f"{scope:10s} {name:18s} {size / 1e3:7.1f} kB")
        print(f"{scope:10s} {'all report figures':18s} {total / 1e3:7.1f} kB ({n} trials, {time.time() - t:.0f} s)")


if __name__ == "__main__":
    main()
