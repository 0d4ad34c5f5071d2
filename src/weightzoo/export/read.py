"""Read an export folder back, checked: its rows, their metrics, the layout, and a row as a network."""

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from weightzoo.export.rows import LAYOUT_COLUMNS

FILES = ("weights.npy", "metrics.csv", "layout.csv", "export.json")


@dataclass
class Export:
    """An export folder: ``weights`` (rows, parameters) float32, memory-mapped; ``metrics`` one row per
    weights row; ``layout`` one row per parameter; ``manifest`` the parsed ``export.json``."""

    folder: Path
    weights: np.ndarray
    metrics: pd.DataFrame
    layout: pd.DataFrame
    manifest: dict

    @property
    def model(self) -> str:
        return self.manifest["model"]

    def shapes(self) -> list[tuple[int, ...]]:
        return [ast.literal_eval(shape) for shape in self.layout["shape"]]

    def state_dict(self, row: int) -> dict[str, np.ndarray]:
        """Weights row ``row`` as {state-dict key: array of the parameter's shape}."""
        values = np.asarray(self.weights[row])
        return {name: values[start:end].reshape(shape) for name, start, end, shape in
                zip(self.layout["varname"], self.layout["start_idx"], self.layout["end_idx"], self.shapes())}

    def network(self, row: int):
        """Weights row ``row`` as the torch network of its experiment and activation (``build_model``)."""
        import torch

        from weightzoo.models import build_model

        experiment = self.metrics["experiment"].iloc[row]
        activation = self.metrics["activation"].iloc[row] if "activation" in self.metrics else None
        net = build_model(self.model, activation=None if pd.isna(activation) else str(activation),
                          **self.manifest["experiments"][experiment]["model_kwargs"])
        net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.state_dict(row).items()})
        return net.eval()


def read_export(folder, mmap: bool = True) -> Export:
    """Open an export folder (``export_zoos``); a clear error names the file that is missing or inconsistent."""
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"{folder}: not an export folder (missing {', '.join(missing)})")
    try:
        weights = np.load(folder / "weights.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{folder / 'weights.npy'}: not a readable .npy array ({err})") from err
    metrics = pd.read_csv(folder / "metrics.csv")
    layout = pd.read_csv(folder / "layout.csv")
    manifest = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    lacking = [c for c in LAYOUT_COLUMNS if c not in layout.columns]
    if lacking:
        raise ValueError(f"{folder / 'layout.csv'}: columns {lacking} missing")
    if weights.ndim != 2 or weights.dtype != np.float32:
        raise ValueError(f"{folder / 'weights.npy'}: {weights.dtype} array of shape {weights.shape}, expected "
                         "float32 (rows, parameters)")
    if len(metrics) != len(weights):
        raise ValueError(f"{folder / 'metrics.csv'}: {len(metrics)} rows for the {len(weights)} rows of weights.npy")
    starts, ends = layout["start_idx"].to_numpy(), layout["end_idx"].to_numpy()
    if starts[0] != 0 or (starts[1:] != ends[:-1]).any() or ends[-1] != weights.shape[1]:
        raise ValueError(f"{folder / 'layout.csv'}: column ranges do not tile the {weights.shape[1]} columns of "
                         "weights.npy")
    unknown = sorted(set(metrics["experiment"]) - set(manifest.get("experiments", {})))
    if unknown:
        raise ValueError(f"{folder / 'export.json'}: no entry for experiments {unknown} of metrics.csv")
    return Export(folder, weights, metrics, layout, manifest)
