"""Write zoos as one export folder in the Small CNN Zoo layout (docs/export.md)."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from weightzoo.export.rows import common_layout, experiment_id, metrics_table, weight_blocks
from weightzoo.io.atomic import atomic_path, write_csv_atomic, write_text_atomic
from weightzoo.io.provenance import code_revision, provenance_attrs
from weightzoo.io.store import open_zoo

log = logging.getLogger(__name__)

FORMAT = "weightzoo export 1: the Small CNN Zoo layout (weights.npy, metrics.csv, layout.csv) with PyTorch shapes"
CANONICAL = "each row's hidden units sorted by node strength at its own snapshot (weightzoo.analysis.canonical)"


def export_zoos(zoo_paths, out_dir, canonical: bool = False) -> Path:
    """Write ``zoo_paths`` (one model, the same parameter shapes) as one export in ``out_dir``.

    ``weights.npy``: float32 (rows, parameters), one row per (zoo, trial, snapshot) in that order;
    ``metrics.csv``: the matching row of experiment, trial, seed, hyperparameters, step and curves;
    ``layout.csv``: each parameter's column range and shape; ``export.json``: model, each experiment's
    ``model_kwargs`` and input normalisation, and how the rows were made. Returns ``out_dir``.
    """
    paths = [Path(p) for p in zoo_paths]
    if not paths:
        raise ValueError("export: no zoo files given")
    out_dir = Path(out_dir)
    zoos = []
    try:
        for path in paths:
            zoos.append(open_zoo(path))
        layout = common_layout(zoos, paths)
        experiments = [experiment_id(ds) for ds in zoos]
        repeated = sorted({e for e in experiments if experiments.count(e) > 1})
        if repeated:
            raise ValueError(f"export: experiments {repeated} given more than once ({[str(p) for p in paths]})")
        n_rows = sum(ds.sizes["trial"] * ds.sizes["snapshot"] for ds in zoos)
        with atomic_path(out_dir / "weights.npy") as tmp:
            matrix = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                               shape=(n_rows, int(layout["end_idx"].iloc[-1])))
            offset = 0
            for ds, path in zip(zoos, paths):
                for first, rows in weight_blocks(ds, layout, canonical=canonical, path=path):
                    matrix[offset + first : offset + first + len(rows)] = rows
                offset += ds.sizes["trial"] * ds.sizes["snapshot"]
            matrix.flush()
            del matrix
        metrics = pd.concat([metrics_table(ds) for ds in zoos], ignore_index=True)
        write_csv_atomic(metrics, out_dir / "metrics.csv")
        write_csv_atomic(layout, out_dir / "layout.csv")
        manifest = _manifest(zoos, paths, canonical, n_rows, layout)
        write_text_atomic(json.dumps(manifest, indent=1), out_dir / "export.json")
    finally:
        for ds in zoos:
            ds.close()
    log.info("exported %d rows (%d parameters) of %s to %s%s", n_rows, int(layout["end_idx"].iloc[-1]),
             ", ".join(experiments), out_dir, " (canonical)" if canonical else "")
    return out_dir


def _manifest(zoos, paths, canonical, n_rows, layout) -> dict:
    provenance, experiments = provenance_attrs(), {}
    for ds, path in zip(zoos, paths):
        experiments[experiment_id(ds)] = {
            "zoo": str(path),
            "dataset": ds.attrs["dataset"],
            "arch": ds.attrs["arch"],
            "model_kwargs": json.loads(ds.attrs["model_kwargs"]),
            "input_shape": json.loads(ds.attrs.get("input_shape", "null")),
            "n_classes": int(ds.attrs.get("n_classes", 0)) or None,
            # a network classifies (pixels / 255 - mean) / std, per channel
            "dataset_mean": json.loads(ds.attrs.get("dataset_mean", "null")),
            "dataset_std": json.loads(ds.attrs.get("dataset_std", "null")),
            "snapshots": ds["snapshot"].values.tolist(),
        }
    return {
        "format": FORMAT,
        "model": zoos[0].attrs["model"],
        "canonical": CANONICAL if canonical else "",
        "rows": "one per (experiment, trial, snapshot), in metrics.csv's order: zoos as given, trials and "
                "snapshots ascending",
        "n_rows": n_rows,
        "n_columns": int(layout["end_idx"].iloc[-1]),
        "curves_at_step_0": "empty: curves are recorded after each epoch, none before the first",
        "experiments": experiments,
        "code_revision": code_revision(),
        **provenance,
        "versions": json.loads(provenance["versions"]),
    }
