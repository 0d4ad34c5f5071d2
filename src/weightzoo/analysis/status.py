"""The training status of a run across experiments (``analysis.trained.training_status`` of each): one table,
plain sentences for the findings page, and the caveats the claims carry on parameters that never trained."""

from collections.abc import Sequence

import pandas as pd
import xarray as xr

from weightzoo.analysis.trained import frozen_layers, summary_table


def untrained_reasons(statuses: Sequence[xr.Dataset], min_weight_share: float = 0.1) -> dict[str, dict[str, str]]:
    """``{layer: {arch: why}}`` for claims on layers with weight parts that never moved from their initial values
    (in at least half the trials); the whole network counts when such parts hold ``min_weight_share`` of it."""
    out: dict[str, dict[str, str]] = {}
    for status in statuses:
        arch = str(status.attrs.get("arch", ""))
        frozen = frozen_layers(status)
        if not frozen:
            continue
        names = [part for parts in frozen.values() for part in parts]
        for layer, parts in frozen.items():
            out.setdefault(layer, {})[arch] = (
                f"computed on parameters that never trained: {', '.join(parts)} never moved from the initial values in "
                "most trials, so this row describes the initial draw (see the training status table)")
        weights = status["n_values"].where(status["kind"] == "weight", 0)
        share = float(weights.sel(part=names).sum() / weights.sum())
        if share >= min_weight_share:
            out.setdefault("network", {})[arch] = (
                f"computed on parameters that never trained: {', '.join(names)} ({share:.0%} of the weights) never "
                "moved from the initial values in most trials")
    return out


def training_status_table(statuses: Sequence[xr.Dataset]) -> pd.DataFrame:
    """``analysis.trained.summary_table`` of every experiment, one table."""
    frames = []
    for status in statuses:
        table = summary_table(status)
        table.insert(0, "experiment", "/".join(str(status.attrs.get(k, "")) for k in ("model", "dataset", "arch")))
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def training_status_notes(table: pd.DataFrame) -> list[str]:
    """Plain sentences for the findings page: parts that never trained, layers with many dead units."""
    notes = []
    if table.empty:
        return notes
    frozen = table[(table["kind"] == "weight") & (table["frozen_trial_share"] >= 0.5)]
    for experiment, rows in frozen.groupby("experiment", sort=False):
        parts = ", ".join(rows["part"])
        text = (f"{experiment}: {parts} never moved from the initial values in most trials, so claims on those layers "
                "describe the initial draw (verdict 'never trained').")
        if rows["component"].isin(["q", "k"]).any():
            text += (" This is the one-token reading of the paper's ViT: with the whole image as one token, softmax "
                     "attention over one token is the constant 1, so query and key get exactly zero gradient and the "
                     "number of heads cannot change the function. Patches that give several tokens make attention real.")
        notes.append(text)
    if "median_dead_unit_share" in table:
        dead = table[table["median_dead_unit_share"] >= 0.25]
        for row in dead.itertuples():
            notes.append(f"{row.experiment}: a median {row.median_dead_unit_share:.0%} of the units of {row.module} are "
                         "dead (ReLU output 0 on every training sample checked).")
    return notes
