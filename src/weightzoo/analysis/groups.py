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

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from weightzoo.analysis.zoo import final_accuracy

GROUPS = ("non", "low", "mid", "high")
"""Group labels, from worst to best; plots and tables use this order."""

GROUP_COLORS = {"non": "#999999", "low": "#D55E00", "mid": "#E69F00", "high": "#0072B2"}
"""One colour per group (Okabe–Ito, colour-blind safe); every figure uses these."""

METHODS = ("delta", "bins", "kmeans", "windows")
UNGROUPED = ""
"""Label of a converged trial outside every accuracy window (method ``windows``)."""


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


def paper_windows(model: str, paper_dataset: str) -> dict[str, tuple[float, float]]:
    """Accuracy windows (fractions) of the paper's groups low, mid, high for one (model, dataset), read as
    Table 2's min and max (Zheng et al. 2024, arXiv 2408.11720; shipped as ``paper_table2.csv``).

    The minima and maxima are round numbers (30, 75, 83.5, 95, 100): fixed windows, not observed extremes.
    Its ``non`` row has no minimum: non-convergence stays defined by divergence and chance (``margin``).
    """
    from weightzoo.analysis.table2 import paper_table2

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
) -> xr.DataArray:
    """Group label per trial of a gathered zoo (dim ``trial``).

    ``accuracy`` picks ``train`` (the paper's Table 2) or ``test`` final accuracy. ``bins`` may be one pair
    of cut points or a mapping ``dataset -> (low_mid, mid_high)`` resolved with the zoo's ``dataset``
    attribute.
    """
    if isinstance(bins, Mapping):
        dataset = ds.attrs.get("dataset")
        if method == "bins" and dataset not in bins:
            raise ValueError(f"no accuracy bins configured for dataset {dataset!r}")
        bins = bins.get(dataset)
    n_classes = ds.attrs.get("n_classes")
    labels = assign_groups(
        final_accuracy(ds, accuracy),
        ds["diverged"].values if "diverged" in ds else None,
        int(n_classes) if n_classes is not None else None,
        method=method,
        delta=delta,
        margin=margin,
        majority_share=majority_share,
        bins=bins,
        seed=seed,
        floor=floor,
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
