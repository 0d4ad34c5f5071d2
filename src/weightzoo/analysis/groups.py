"""Accuracy groups of the trials of one (model, dataset) zoo, after Zheng et al. 2024 §3.2 (arXiv 2408.11720).

Every trial gets one label of ``GROUPS``:

- ``non``: diverged, or its accuracy is NaN or within ``margin`` of chance, where chance is
  ``max(1 / n_classes, majority_share)`` (the paper's non-converged DNNs sit at the majority-class share);
- ``high`` / ``low`` / ``mid`` among the remaining (converged) trials, by one of four methods:

  ``delta``  ``high`` within ``delta`` of the best converged trial, ``low`` within ``delta`` of the worst
             one, ``mid`` the rest. A trial close to both ends (a zoo narrower than ``delta``) is ``high``.
  ``bins``   explicit cut points ``(low_mid, mid_high)``: ``low`` below the first, ``high`` at or above the
             second, ``mid`` between.
  ``kmeans`` 1-D k-means with three clusters (scikit-learn ``KMeans``, ``n_init=10``, ``random_state=seed``)
             on the converged accuracies; clusters named by their centres. With fewer than three distinct
             accuracies it uses as many clusters as there are values: two are ``low``/``high``, one is ``high``.
  ``windows`` the paper's own reading: fixed accuracy windows ``{group: (min, max)}`` per (model, dataset),
             taken from its Table 2 (``paper_windows``). A converged trial outside every window gets the
             empty label ``""`` (ungrouped): it stays in the zoo but out of every group comparison.

The relative methods (``delta``, ``kmeans``) name groups against the zoo's own best and worst trials, so a zoo
whose best trial sits just above chance would get a ``high`` group at 14 % on 10 classes. A **floor** keeps
them honest: ``mid`` and ``high`` need an accuracy of at least ``chance + floor * (1 - chance)`` (32.5 % on 10
balanced classes with the default 0.25); a converged trial below it is ``low`` whatever its rank. ``bins`` and
``windows`` are absolute already and take their edges as given.

Accuracies, ``delta``, ``margin``, ``floor`` and bin edges are fractions (0–1), like the zoo's accuracy variables.
"""

import re
from collections.abc import Mapping, Sequence
from importlib import resources

import numpy as np
import pandas as pd
import xarray as xr

from weightzoo.analysis.zoo import final_accuracy

GROUPS = ("non", "low", "mid", "high")
"""Group labels, from worst to best; plots and tables use this order."""

GROUP_COLORS = {"non": "#999999", "low": "#D55E00", "mid": "#E69F00", "high": "#0072B2"}
"""One colour per group (Okabe–Ito, colour-blind safe); every figure uses these."""

METHODS = ("delta", "bins", "kmeans", "windows")
UNGROUPED = ""
"""Label of a converged trial outside every accuracy window (method ``windows``)."""
SCOPES = ("model_dataset", "experiment")
"""What trials are grouped together: every architecture of a (model, dataset), as the paper, or one experiment."""


def chance_level(n_classes: int | None, majority_share: float | None = None) -> float:
    """Accuracy of a constant classifier: the larger of ``1 / n_classes`` and the majority-class share."""
    levels = [1.0 / n_classes] if n_classes else []
    if majority_share is not None:
        levels.append(float(majority_share))
    return max(levels) if levels else 0.0


def assign_groups(
    accuracy,
    diverged=None,
    n_classes: int | None = None,
    method: str = "delta",
    delta: float = 0.1,
    margin: float = 0.02,
    majority_share: float | None = None,
    bins: Sequence[float] | None = None,
    seed: int = 0,
    windows: Mapping[str, Sequence[float]] | None = None,
    floor: float = 0.25,
) -> np.ndarray:
    """Group label (one of ``GROUPS``, or ``UNGROUPED`` with method ``windows``) per trial, from final
    accuracies (fractions) and divergence flags."""
    if method not in METHODS:
        raise ValueError(f"unknown grouping method {method!r}; choose one of {METHODS}")
    accuracy = np.asarray(accuracy, dtype=float).reshape(-1)
    diverged = np.zeros(accuracy.shape, bool) if diverged is None else np.asarray(diverged).astype(bool).reshape(-1)
    if diverged.shape != accuracy.shape:
        raise ValueError(f"accuracy has {accuracy.size} trials but diverged has {diverged.size}")

    labels = np.full(accuracy.shape, "non", dtype="<U4")
    if method == "windows" and not windows:
        raise ValueError("method 'windows' needs accuracy windows {group: (min, max)} (paper_windows)")
    chance = chance_level(n_classes, majority_share)
    converged = ~diverged & np.isfinite(accuracy) & (accuracy > chance + margin)
    if not converged.any():
        return labels
    acc = accuracy[converged]

    if method == "delta":
        high = acc >= acc.max() - delta
        low = ~high & (acc <= acc.min() + delta)
        labels[converged] = np.where(high, "high", np.where(low, "low", "mid"))
    elif method == "bins":
        if bins is None or len(bins) != 2 or bins[0] > bins[1]:
            raise ValueError(f"method 'bins' needs two increasing cut points (low_mid, mid_high), got {bins!r}")
        labels[converged] = np.where(acc >= bins[1], "high", np.where(acc >= bins[0], "mid", "low"))
    elif method == "windows":
        labels[converged] = _window_groups(acc, windows)
    else:
        labels[converged] = _kmeans_groups(acc, seed)
    if method in ("delta", "kmeans"):
        weak = converged & (accuracy < group_floor(chance, floor)) & np.isin(labels, ("mid", "high"))
        labels[weak] = "low"
    return labels


def group_floor(chance: float, floor: float = 0.25) -> float:
    """Least accuracy of a ``mid`` or ``high`` trial under the relative methods: ``floor`` of the way from chance
    to a perfect score."""
    return chance + floor * (1.0 - chance)


def _window_groups(acc: np.ndarray, windows: Mapping[str, Sequence[float]]) -> np.ndarray:
    out = np.full(acc.shape, UNGROUPED, dtype="<U4")
    # best group first: where the paper's windows touch (ViT MNIST mid 70-85, high 85-100) the better one wins
    for group in reversed(GROUPS):
        if group in windows:
            lo, hi = windows[group]
            out[(out == UNGROUPED) & (acc >= lo - 1e-9) & (acc <= hi + 1e-9)] = group
    return out


def paper_table2() -> pd.DataFrame:
    """The paper's Table 2: columns model, group, dataset, min, median, max (training accuracy, %)."""
    with resources.files("weightzoo.analysis").joinpath("paper_table2.csv").open() as f:
        return pd.read_csv(f, comment="#", dtype={"model": str, "group": str, "dataset": str})


def paper_windows(model: str, paper_dataset: str) -> dict[str, tuple[float, float]]:
    """Accuracy windows (fractions) of the paper's groups low, mid, high for one (model, dataset), read as
    Table 2's min and max (Zheng et al. 2024, arXiv 2408.11720; shipped as ``paper_table2.csv``).

    The minima and maxima are round numbers (30, 75, 83.5, 95, 100): fixed windows, not observed extremes.
    Its ``non`` row has no minimum: non-convergence stays defined by divergence and chance (``margin``).
    """
    table = paper_table2()
    rows = table[(table["model"] == model) & (table["dataset"] == paper_dataset) & (table["group"] != "non")]
    windows = {
        str(r.group): (float(r.min) / 100.0, float(r.max) / 100.0)
        for r in rows.itertuples()
        if np.isfinite(r.min) and np.isfinite(r.max)
    }
    if not windows:
        raise ValueError(f"the paper's Table 2 has no accuracy windows for model {model!r} on {paper_dataset!r}")
    return windows


def _kmeans_groups(acc: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    n_clusters = min(3, np.unique(acc).size)
    names = {1: ["high"], 2: ["low", "high"], 3: ["low", "mid", "high"]}[n_clusters]
    if n_clusters == 1:
        return np.full(acc.shape, "high")
    model = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit(acc[:, None])
    rank = np.argsort(np.argsort(model.cluster_centers_[:, 0]))
    return np.asarray(names)[rank[model.labels_]]


def group_trials(
    accuracy,
    diverged,
    model: str,
    dataset: str,
    n_classes: int | None,
    majority_share: float | None = None,
    method: str = "delta",
    delta: float = 0.1,
    margin: float = 0.02,
    floor: float = 0.25,
    bins: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    seed: int = 0,
    paper_datasets: Mapping[str, str] | None = None,
) -> np.ndarray:
    """``assign_groups`` for the trials of one (model, dataset): ``bins`` may be one pair of cut points or a
    mapping ``dataset -> (low_mid, mid_high)``; method ``windows`` takes the paper's windows of ``model`` on
    ``paper_datasets.get(dataset, dataset)``. The grouping of the workflow (``group_summary``) and of a zoo
    (``group_zoo``)."""
    if method == "bins" and isinstance(bins, Mapping):
        if dataset not in bins:
            raise ValueError(f"analysis.groups.method is 'bins' but analysis.groups.bins has no entry for {dataset!r}")
        bins = bins[dataset]
    windows = paper_windows(model, (paper_datasets or {}).get(dataset, dataset)) if method == "windows" else None
    return assign_groups(accuracy, diverged, n_classes, method=method, delta=delta, margin=margin,
                         majority_share=majority_share, bins=bins if method == "bins" else None, seed=seed,
                         windows=windows, floor=floor)


def class_shares(dataset: xr.Dataset, accuracy: str = "train") -> tuple[int, float]:
    """``n_classes`` and the majority-class share of the split ``accuracy`` is measured on (train / test) of a
    prepared dataset."""
    labels = dataset["labels"].values
    split = dataset["split"].values
    n_classes = int(dataset.attrs.get("n_classes", int(labels.max()) + 1))
    chosen = labels[split == (0 if accuracy == "train" else 1)]
    if chosen.size == 0:
        return n_classes, float("nan")
    return n_classes, float(np.bincount(chosen, minlength=n_classes).max() / chosen.size)


def group_summary(summary: pd.DataFrame, datasets: Mapping[str, tuple[int, float]], accuracy: str = "train",
                  method: str = "delta", delta: float = 0.1, margin: float = 0.02, floor: float = 0.25,
                  bins: Mapping[str, Sequence[float]] | None = None, seed: int = 0,
                  scope: str = "model_dataset", paper_datasets: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The trial summary with columns ``group`` and ``chance`` added.

    Groups are formed over all trials of a (model, dataset), architectures pooled as in the paper's
    Table 2 (``scope="model_dataset"``), or per experiment (``scope="experiment"``). ``datasets`` maps a
    dataset name to ``(n_classes, majority_share)`` (``class_shares``). See ``group_trials``.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown grouping scope {scope!r}; choose one of {SCOPES}")
    keys = ["model", "dataset"] if scope == "model_dataset" else ["experiment"]
    out = summary.copy()
    out["group"] = ""
    out["chance"] = np.nan
    column = f"final_{accuracy}_accuracy"
    for _, rows in out.groupby(keys, sort=False):
        dataset = str(rows["dataset"].iloc[0])
        n_classes, majority = datasets.get(dataset, (None, None))
        labels = group_trials(rows[column].astype(float).to_numpy(), rows["diverged"].astype(bool).to_numpy(),
                              str(rows["model"].iloc[0]), dataset, n_classes, majority, method=method, delta=delta,
                              margin=margin, floor=floor, bins=bins or {}, seed=seed, paper_datasets=paper_datasets)
        out.loc[rows.index, "group"] = labels
        out.loc[rows.index, "chance"] = max(1.0 / n_classes if n_classes else 0.0,
                                            majority if majority is not None and np.isfinite(majority) else 0.0)
    return out


def experiment_groups(summary: pd.DataFrame, experiment: str) -> pd.Series:
    """Group labels of one experiment's trials, indexed by trial (for ``zoo.trial_groups``), from the grouped
    trial summary (read with ``keep_default_na=False``: the ungrouped label is the empty string)."""
    rows = summary[summary["experiment"] == experiment]
    return pd.Series(rows["group"].astype(str).to_numpy(), index=rows["trial"].astype(int).to_numpy())


def natural_key(text) -> list:
    """Sort key that orders embedded numbers by value: h2 < h8 < h32 < h200."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text))]


def group_counts(summary: pd.DataFrame) -> pd.DataFrame:
    """Trials per accuracy group for every experiment (natural order of architectures)."""
    summary = summary.assign(group=summary["group"].replace("", "ungrouped"))
    counts = summary.groupby(["model", "dataset", "arch", "group"]).size().unstack("group", fill_value=0)
    columns = [g for g in (*GROUPS, "ungrouped") if g in counts.columns]
    counts = counts[columns].reset_index()
    counts.columns.name = None
    order = sorted(range(len(counts)), key=lambda i: (counts["model"].iat[i], counts["dataset"].iat[i],
                                                      natural_key(counts["arch"].iat[i])))
    return counts.iloc[order].reset_index(drop=True)


def absent_figure_notes(summary: pd.DataFrame, chosen: Sequence[str], min_group: int) -> list[str]:
    """Why each experiment outside ``chosen`` (``selection.figure_experiments``) has no figures of its own."""
    notes = []
    for experiment, rows in summary.groupby("experiment", sort=False):
        if experiment in chosen:
            continue
        sizes = rows["group"].replace("", "ungrouped").value_counts().to_dict()
        text = ", ".join(f"{g} {n}" for g, n in sizes.items())
        notes.append(f"{experiment}: no per-architecture figures or projections (groups: {text}; fewer than two groups "
                     f"of {min_group} or more trials). Its trials are in the pooled figures of "
                     f"{rows['model'].iat[0]} / {rows['dataset'].iat[0]}; to compare groups inside this architecture, "
                     "sweep experiments[].hyperparameters (e.g. init_std, lr) or use analysis.groups.scope: experiment.")
    return notes


def group_zoo(
    ds: xr.Dataset,
    accuracy: str = "train",
    method: str = "delta",
    delta: float = 0.1,
    margin: float = 0.02,
    majority_share: float | None = None,
    bins: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    seed: int = 0,
    floor: float = 0.25,
    paper_datasets: Mapping[str, str] | None = None,
) -> xr.DataArray:
    """Group label per trial of a gathered zoo (dim ``trial``): ``group_trials`` with the zoo's ``model``,
    ``dataset`` and ``n_classes`` attributes, as the workflow groups one experiment.

    ``accuracy`` picks ``train`` (the paper's Table 2) or ``test`` final accuracy. ``bins`` may be one pair
    of cut points or a mapping ``dataset -> (low_mid, mid_high)`` resolved with the zoo's ``dataset``
    attribute.
    """
    n_classes = ds.attrs.get("n_classes")
    labels = group_trials(
        final_accuracy(ds, accuracy),
        ds["diverged"].values if "diverged" in ds else None,
        str(ds.attrs.get("model", "")),
        str(ds.attrs.get("dataset", "")),
        int(n_classes) if n_classes is not None else None,
        majority_share,
        method=method,
        delta=delta,
        margin=margin,
        floor=floor,
        bins=bins,
        seed=seed,
        paper_datasets=paper_datasets,
    )
    return xr.DataArray(
        labels,
        coords={"trial": ds["trial"].values},
        dims="trial",
        name="group",
        attrs={
            "long_name": "accuracy group",
            "flag_values": " ".join(GROUPS),
            "accuracy": accuracy,
            "method": method,
            "delta": delta,
            "margin": margin,
            "floor": floor,
            "chance": chance_level(int(n_classes) if n_classes is not None else None, majority_share),
        },
    )
