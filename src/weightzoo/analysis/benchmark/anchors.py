"""The published numbers the benchmark's rows stand beside (``anchors.csv``, package data; the zoo each was
measured on, its size and its epochs stored with it, so that a row can say how far our zoo is from theirs)."""

import re
from functools import cache
from importlib.resources import files

import numpy as np
import pandas as pd

ANCHOR_DATASETS = ("mnist", "fmnist", "cifar10", "svhn")
"""Datasets of the Small CNN Zoo (Unterthiner et al. 2020; CIFAR-10 and SVHN in grayscale there)."""


@cache
def anchors() -> pd.DataFrame:
    """Columns method, variant, dataset, statistic (r2, kendall_tau), value, source, zoo, nets, epochs,
    checkpoints."""
    with files("weightzoo.analysis.benchmark").joinpath("anchors.csv").open(encoding="utf-8") as handle:
        return pd.read_csv(handle, keep_default_na=False)


def anchor_dataset(dataset: str) -> str:
    """The anchor dataset our ``dataset`` is a version of, or '' if none: an anchor name alone or followed by a
    subset size (``mnist5k`` -> ``mnist``) or ``gs`` (grayscale; ``cifar100`` is not ``cifar10``)."""
    for name in ANCHOR_DATASETS:
        if re.fullmatch(rf"{name}(\d+k|gs)?", dataset):
            return name
    return ""


def anchor_columns(method: str, dataset: str) -> dict:
    """``anchor_r2``, ``anchor_tau`` (NaN where none, or where several variants differ: then see ``anchor``),
    ``anchor`` (every published number for the method on this dataset, with source, then those on the other
    Small CNN Zoo datasets for a statistic this one lacks, labelled so: e.g. the weight-space networks were published on CIFAR-10-GS and
    SVHN-GS only) and ``anchor_zoo``."""
    table = anchors()
    name = anchor_dataset(dataset)
    of_method = table[table["method"] == method]
    rows = of_method[of_method["dataset"] == name] if name else table.iloc[:0]
    elsewhere = of_method[of_method["dataset"] != name] if name else table.iloc[:0]
    elsewhere = elsewhere[~elsewhere["statistic"].isin(rows["statistic"])]  # only what this dataset lacks
    out = dict(anchor_r2=np.nan, anchor_tau=np.nan, anchor="", anchor_zoo="")
    if rows.empty and elsewhere.empty:
        out["anchor"] = ("none published for this method" if name else
                         f"none: {dataset} is not a Small CNN Zoo dataset ({', '.join(ANCHOR_DATASETS)})")
        return out
    for statistic, column in (("r2", "anchor_r2"), ("kendall_tau", "anchor_tau")):
        values = rows.loc[rows["statistic"] == statistic, "value"].astype(float).unique()
        if values.size == 1:
            out[column] = float(values[0])
    symbol = {"r2": "R²", "kendall_tau": "τ"}

    def listed(frame):
        return "; ".join(f"{r.variant} {symbol[r.statistic]} {r.value:.3f} ({r.source})" for r in frame.itertuples())

    parts = [listed(rows)] if not rows.empty else [f"none published on {name}"]
    if not elsewhere.empty:
        parts.append("on other datasets, not comparable: " + "; ".join(
            f"{r.variant} {symbol[r.statistic]} {r.value:.3f} ({r.zoo})" for r in elsewhere.itertuples()))
    out["anchor"] = "; ".join(parts)
    first = (rows if not rows.empty else elsewhere).iloc[0]
    out["anchor_zoo"] = (f"{first.zoo}: {int(first.nets):,} nets, up to {int(first.epochs)} epochs "
                         f"(checkpoints {first.checkpoints})")
    return out
