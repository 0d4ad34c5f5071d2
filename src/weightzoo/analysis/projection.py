"""t-SNE of the trials of one experiment (paper Figs 11–13), on three feature sets, with separation scores.

``raw``: the weight vector of a layer (or all weights of the network) as stored; hidden units of different
seeds are not aligned, so this mostly sees scale. ``canonical``: the same after sorting hidden units by node
strength (``canonical.py``; DNN only, other zoos fall back to ``raw`` with a note). ``invariant``:
permutation-invariant summaries per parameter (quantiles 0/25/50/75/100 %, mean, std — Unterthiner et al.
2020 — and the node strengths sorted in descending order), standardised per feature.
Features are reduced to at most ``n_pca`` dimensions by PCA before t-SNE, as is standard.
"""

import numpy as np
import xarray as xr

from weightzoo.analysis.canonical import canonicalize, fc_chain
from weightzoo.analysis.strength import node_strength
from weightzoo.analysis.zoo import flat_weights, layer_names, ordered_groups, parameter_names, trial_groups

FEATURES = ("raw", "canonical", "invariant")
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_TRIALS = 4


def _weight_matrix(ds: xr.Dataset, layer: str | None, snapshot: int) -> np.ndarray:
    layers = layer_names(ds) if layer is None else [layer]
    return np.concatenate([flat_weights(ds, f"{name}_weight", snapshot) for name in layers], axis=1)


def invariant_features(ds: xr.Dataset, layer: str | None = None, snapshot: int = -1) -> np.ndarray:
    """Permutation-invariant features per trial, shape (trial, n_features), not standardised.

    For each parameter of ``layer`` (weight and bias; all parameters when None): quantiles, mean, std, and
    for weights with inputs per node the node strengths sorted in descending order.
    """
    names = parameter_names(ds)
    if layer is not None:
        names = [n for n in names if ds[n].attrs.get("layer", "").replace(".", "_") == layer]
    columns = []
    for name in names:
        values = flat_weights(ds, name, snapshot).astype(np.float64)
        columns += [np.quantile(values, QUANTILES, axis=1).T, values.mean(axis=1)[:, None], values.std(axis=1)[:, None]]
        if name.endswith("_weight") and ds[name].ndim >= 4:
            strength = node_strength(ds, name, snapshot).values
            columns.append(-np.sort(-strength, axis=1))
    if not columns:
        raise ValueError(f"no parameters found for layer {layer!r}")
    return np.concatenate(columns, axis=1)


def _standardize(features: np.ndarray) -> np.ndarray:
    std = features.std(axis=0)
    return (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)


def separation_scores(xy: np.ndarray, labels, k: int = 5) -> dict:
    """How well 2-D points separate groups: leave-one-out k-NN accuracy and silhouette.

    Only groups with at least two members take part. Returns ``knn_k``, ``knn_accuracy``,
    ``chance_accuracy`` (share of the largest group: what always guessing it scores), ``silhouette``,
    ``n_scored`` and ``score_note`` (why scores are NaN, or which groups were left out).
    """
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import NearestNeighbors

    xy = np.asarray(xy, dtype=float)
    labels = np.asarray(labels, dtype=object)
    finite = np.isfinite(xy).all(axis=1) & (labels != "")
    names, counts = np.unique(labels[finite].astype(str), return_counts=True)
    small = [f"{g} (n={c})" for g, c in zip(names, counts) if c < 2]
    used = finite & np.isin(labels.astype(str), names[counts >= 2])
    result = dict(knn_k=0, knn_accuracy=np.nan, chance_accuracy=np.nan, silhouette=np.nan, n_scored=int(used.sum()))
    notes = [f"left out groups with < 2 members: {', '.join(small)}"] if small else []
    classes = names[counts >= 2]
    if len(classes) < 2:
        notes.insert(0, f"need >= 2 groups with >= 2 members, have {len(classes)}")
        return result | {"score_note": "; ".join(notes)}
    points, y = xy[used], np.searchsorted(classes, labels[used].astype(str))
    k = int(min(k, len(y) - 1))
    neighbours = NearestNeighbors(n_neighbors=k).fit(points).kneighbors(return_distance=False)
    # majority vote among the k nearest others; a tie goes to the class of the nearer neighbours
    votes = np.zeros((len(y), len(classes)))
    weight = 1.0 + 1e-6 * np.arange(k, 0, -1)
    np.add.at(votes, (np.repeat(np.arange(len(y)), k), y[neighbours].ravel()), np.tile(weight, len(y)))
    result.update(
        knn_k=k,
        knn_accuracy=float(np.mean(votes.argmax(axis=1) == y)),
        chance_accuracy=float(np.bincount(y).max() / len(y)),
        silhouette=float(silhouette_score(points, y)) if np.ptp(points, axis=0).any() else np.nan,
    )
    return result | {"score_note": "; ".join(notes)}


def project(
    ds: xr.Dataset,
    groups=None,
    features: str = "raw",
    layer: str | None = None,
    seed: int = 0,
    snapshot: int = -1,
    perplexity: float = 30.0,
    n_pca: int = 50,
    k: int = 5,
) -> xr.Dataset:
    """t-SNE of the trials of one experiment: Dataset with ``x``, ``y`` (trial) and coordinate ``group``.

    ``layer``: a layer id (``fc1``) or None for all weights of the network. The perplexity used is
    min(``perplexity``, (n - 1) / 3). Attributes carry the settings actually used, the separation scores
    (``knn_accuracy``, ``chance_accuracy``, ``silhouette``, ``knn_k``, ``score_note``) and ``message``:
    empty when the projection was made, otherwise why not (x and y are then NaN), e.g. fewer than 4 trials.
    Trials with non-finite features (diverged) get NaN coordinates and are counted in ``note``.
    """
    if features not in FEATURES:
        raise ValueError(f"unknown feature set {features!r}; choose one of {FEATURES}")
    if layer is not None and layer.endswith("_weight"):
        layer = layer[: -len("_weight")]
    labels = trial_groups(ds, groups)
    n_trials = ds.sizes["trial"]
    used_features, notes = features, []
    if features == "canonical":
        chain, reason = fc_chain(ds)
        if chain is None:
            used_features = "raw"
            notes.append(f"canonical: {reason}; projected raw weights instead")
        else:
            ds = canonicalize(ds, snapshot)
            snapshot = -1
    if used_features == "invariant":
        matrix = invariant_features(ds, layer, snapshot)
    else:
        matrix = _weight_matrix(ds, layer, snapshot)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        notes.append(f"{int((~finite).sum())} trial(s) with non-finite weights left out")
    n = int(finite.sum())

    xy = np.full((n_trials, 2), np.nan)
    used_perplexity = float(min(perplexity, (n - 1) / 3)) if n > 1 else np.nan
    message = ""
    if n < MIN_TRIALS:
        message = f"t-SNE needs at least {MIN_TRIALS} trials with finite weights, have {n}"
    elif np.ptp(matrix[finite], axis=0).max() == 0:
        message = "all trials have identical features; nothing to project"
    else:
        xy[finite] = _tsne(matrix[finite], used_features == "invariant", used_perplexity, n_pca, seed)

    if message:
        scores = dict(knn_k=0, knn_accuracy=np.nan, chance_accuracy=np.nan, silhouette=np.nan, n_scored=0, score_note=message)
    else:
        scores = separation_scores(xy, labels, k)
    attrs = {
        "features": used_features,
        "requested_features": features,
        "layer": layer or "all",
        "snapshot": int(snapshot),
        "perplexity": used_perplexity,
        "n_pca": int(min(n_pca, n, matrix.shape[1])),
        "n_features": int(matrix.shape[1]),
        "seed": int(seed),
        "n_trials": n,
        "message": message,
        "note": "; ".join(notes),
        **scores,
    }
    return xr.Dataset(
        {
            "x": ("trial", xy[:, 0], {"long_name": "t-SNE 1", "units": "1"}),
            "y": ("trial", xy[:, 1], {"long_name": "t-SNE 2", "units": "1"}),
        },
        coords={"trial": ds["trial"].values, "group": ("trial", labels)},
        attrs=attrs | {"groups": " ".join(ordered_groups(labels))},
    )


def _tsne(matrix: np.ndarray, standardize: bool, perplexity: float, n_pca: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    features = _standardize(matrix.astype(np.float64)) if standardize else matrix
    n_components = min(n_pca, features.shape[0], features.shape[1])
    if features.shape[1] > n_components:
        solver = "randomized" if features.shape[1] > 4 * n_components else "full"
        features = PCA(n_components=n_components, svd_solver=solver, random_state=seed).fit_transform(features)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed)
    return tsne.fit_transform(np.asarray(features, dtype=np.float64))
