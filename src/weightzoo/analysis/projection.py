"""t-SNE of the trials of one experiment (paper Figs 11–13), on three feature sets, with separation scores.

``raw``: the weight vector of a layer (or all weights of the network) as stored; hidden units of different
seeds are not aligned, so this mostly sees scale. ``canonical``: the same after sorting hidden units by node
strength (``canonical.py``; DNN only, other zoos fall back to ``raw`` with a note). ``invariant``:
permutation-invariant summaries per parameter (quantiles 0/25/50/75/100 %, mean, std — Unterthiner et al.
2020 — and the node strengths sorted in descending order), standardised per feature.
Features are reduced to at most ``n_pca`` dimensions by PCA before t-SNE, as is standard.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from weightzoo.analysis.canonical import canonical_layer, layer_chain
from weightzoo.analysis.strength import node_strength
from weightzoo.analysis.zoo import (
    CHUNK_VALUES,
    layer_names,
    ordered_groups,
    parameter_names,
    select_snapshot,
    trial_groups,
)

FEATURES = ("raw", "canonical", "invariant")
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_TRIALS = 4
# Reading and reducing happens in chunks of about this many values (64 MiB as float64).
BLOCK_VALUES = 1 << 27
"""Values of one layer that the PCA before t-SNE reads per block of trials (512 MiB as float32); it holds two."""


@dataclass(frozen=True)
class TrialBlocks:
    """One layer's values per trial (``n_values`` each), read a block of trials at a time: ``read(start, stop)``
    gives the (stop - start, n_values) matrix of those trials."""

    n_trials: int
    n_values: int
    read: Callable[[int, int], np.ndarray]

    @classmethod
    def of(cls, matrix) -> "TrialBlocks":
        matrix = np.asarray(matrix)
        matrix = matrix.reshape(matrix.shape[0], -1)
        return cls(matrix.shape[0], matrix.shape[1], lambda start, stop: matrix[start:stop])


def _weight_blocks(ds: xr.Dataset, layer: str | None, snapshot: int, canonical: bool) -> list[TrialBlocks]:
    """Each layer's weights (canonical: hidden units sorted, ``canonical_layer``), as trial blocks; nothing is read
    until a block is."""
    blocks = []
    for name in layer_names(ds) if layer is None else [layer]:
        var = select_snapshot(ds[f"{name}_weight"], snapshot)
        if canonical:
            def read(start, stop, name=name):
                return canonical_layer(ds, name, snapshot, trials=slice(start, stop))[0]
        else:
            def read(start, stop, var=var):
                return var.isel(trial=slice(start, stop)).values
        blocks.append(TrialBlocks(var.sizes["trial"], int(np.prod(var.shape[1:])), read))
    return blocks


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
        var = select_snapshot(ds[name], snapshot)
        step = max(1, CHUNK_VALUES // max(1, int(np.prod(var.shape[1:]))))
        parts = []
        for start in range(0, var.sizes["trial"], step):
            values = np.asarray(var.isel(trial=slice(start, start + step)).values, dtype=np.float64)
            values = values.reshape(values.shape[0], -1)
            parts.append(
                np.column_stack([np.quantile(values, QUANTILES, axis=1).T, values.mean(axis=1), values.std(axis=1)])
            )
        columns.append(np.concatenate(parts, axis=0))
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
    max_iter: int = 1000,
    n_threads: int | None = 1,
) -> xr.Dataset:
    """t-SNE of the trials of one experiment: Dataset with ``x``, ``y`` (trial) and coordinate ``group``.

    ``layer``: a layer id (``fc1``) or None for all weights of the network. The perplexity used is
    min(``perplexity``, (n - 1) / 3). Attributes carry the settings actually used, the separation scores
    (``knn_accuracy``, ``chance_accuracy``, ``silhouette``, ``knn_k``, ``score_note``) and ``message``:
    empty when the projection was made, otherwise why not (x and y are then NaN), e.g. fewer than 4 trials.
    Trials with non-finite features (diverged) get NaN coordinates and are counted in ``note``.
    ``n_threads`` caps t-SNE's OpenMP threads (None: no cap); on shared cores more threads than free cores
    make scikit-learn's t-SNE several times slower.
    """
    if features not in FEATURES:
        raise ValueError(f"unknown feature set {features!r}; choose one of {FEATURES}")
    if layer is not None and layer.endswith("_weight"):
        layer = layer[: -len("_weight")]
    labels = trial_groups(ds, groups)
    n_trials = ds.sizes["trial"]
    used_features, notes = features, []
    if features == "canonical":
        chain, reason = layer_chain(ds)
        if chain is None:
            used_features = "raw"
            notes.append(f"canonical: {reason}; projected raw weights instead")
    if used_features == "invariant":
        matrix = invariant_features(ds, layer, snapshot)
        rows = np.isfinite(matrix).all(axis=1)
        matrix[rows] = _standardize(matrix[rows])
        blocks = [matrix]
    else:
        blocks = _weight_blocks(ds, layer, snapshot, canonical=used_features == "canonical")

    xy = np.full((n_trials, 2), np.nan)
    message, n, n_features, n_components = "", 0, 0, 0
    if n_trials < MIN_TRIALS:
        message = f"t-SNE needs at least {MIN_TRIALS} trials, have {n_trials}"
    else:
        try:
            components, finite, n_features = pca_scores(blocks, n_pca)
        except np.linalg.LinAlgError as err:
            components, finite = np.zeros((0, 0)), np.ones(n_trials, bool)
            message = f"PCA before t-SNE failed: {err}"
        n, n_components = int(finite.sum()), components.shape[1]
        if not finite.all():
            notes.append(f"{int((~finite).sum())} trial(s) with non-finite weights left out")
        if message:
            pass
        elif n < MIN_TRIALS:
            message = f"t-SNE needs at least {MIN_TRIALS} trials with finite weights, have {n}"
        elif n_components == 0:
            message = "all trials have identical features; nothing to project"
        else:
            xy[finite] = _tsne(components, min(perplexity, (n - 1) / 3), seed, max_iter, n_threads)
            if not np.isfinite(xy[finite]).all():
                xy[:] = np.nan
                message = "t-SNE gave non-finite coordinates (weights too large?); nothing to show"
    used_perplexity = float(min(perplexity, (n - 1) / 3)) if n >= MIN_TRIALS else np.nan

    if message:
        scores = dict(
            knn_k=0, knn_accuracy=np.nan, chance_accuracy=np.nan, silhouette=np.nan, n_scored=0, score_note=message
        )
    else:
        scores = separation_scores(xy, labels, k)
    attrs = {
        "features": used_features,
        "requested_features": features,
        "layer": layer or "all",
        "snapshot": int(snapshot),
        "perplexity": used_perplexity,
        "n_pca": int(n_components),
        "n_features": int(n_features),
        "seed": int(seed),
        "max_iter": int(max_iter),
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


def pca_scores(blocks, n_components: int = 50, block_values: int = BLOCK_VALUES) -> tuple[np.ndarray, np.ndarray, int]:
    """Principal-component scores of the rows of the column-wise concatenation of ``blocks``.

    ``blocks``: (trial, n_values) arrays or ``TrialBlocks`` (e.g. one layer each), never concatenated. The trial x
    trial Gram matrix of the centred data is accumulated and eigendecomposed, which for n trials << n values is
    exact and cheaper than an SVD. Memory is bounded by two blocks of trials of one layer (``block_values``
    values each), not by the zoo: the Gram matrix is summed over pairs of trial blocks (block i against blocks
    j >= i; the zoo stores each trial apart, so a block of trials is one contiguous read) and within each pair
    over column chunks. This is the same Gram matrix as of the whole matrix (only the order of the float sums
    differs: scores agree to float32 rounding, ``test_projection``); a zoo whose layer fits one block reads it once,
    a larger one reads it about (blocks + 1) / 2 times. Rows with any non-finite value are left out. Returns (scores
    (n_finite, k), finite mask (trial,), n_values); k is at most ``n_components`` and drops components with no
    variance.
    """
    gram, finite, n_values = None, None, 0
    for layer in blocks:
        layer = layer if isinstance(layer, TrialBlocks) else TrialBlocks.of(layer)
        n_rows = layer.n_trials
        gram = np.zeros((n_rows, n_rows)) if gram is None else gram
        finite = np.ones(n_rows, bool) if finite is None else finite
        n_values += layer.n_values
        step = max(1, block_values // max(1, layer.n_values))
        starts = range(0, n_rows, step)
        center = None
        for i in starts:
            a = _as_rows(layer.read(i, i + step))
            finite[i : i + len(a)] &= np.isfinite(a).all(axis=1)
            # any per-column constant leaves the double-centred Gram matrix unchanged; the first block's mean keeps
            # float32 products accurate (with one block: the mean of all trials, as before issue 22)
            center = _column_means(a) if center is None else center
            for j in starts[starts.index(i):]:
                b = a if j == i else _as_rows(layer.read(j, j + step))
                product = _centred_product(a, b, center, max(n_rows if len(starts) == 1 else len(a) + len(b), 1))
                gram[i : i + len(a), j : j + len(b)] += product
                if j != i:
                    gram[j : j + len(b), i : i + len(a)] += product.T
    if gram is None:
        return np.zeros((0, 0)), np.zeros(0, bool), 0
    if not finite.any():
        return np.zeros((0, 0)), finite, n_values
    gram = gram[np.ix_(finite, finite)]
    gram = gram - gram.mean(axis=0) - gram.mean(axis=1)[:, None] + gram.mean()
    if not np.isfinite(gram).all():
        raise np.linalg.LinAlgError("the trials' Gram matrix is not finite (weights too large even for float64)")
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    k = min(n_components, len(eigenvalues), n_values)
    tolerance = max(eigenvalues[0], 0.0) * len(eigenvalues) * np.finfo(np.float32).eps if len(eigenvalues) else 0.0
    k = min(k, int(np.sum(eigenvalues > tolerance)))
    return eigenvectors[:, :k] * np.sqrt(eigenvalues[:k]), finite, n_values


def _as_rows(block) -> np.ndarray:
    block = np.asarray(block)
    return block.reshape(block.shape[0], -1)


def _column_means(block: np.ndarray) -> np.ndarray:
    """Mean of each column over its finite entries (0 where none), in the precision of the products."""
    ok = np.isfinite(block)
    values = np.where(ok, block, 0).astype(np.result_type(block.dtype, np.float32), copy=False)
    return values.sum(axis=0) / np.maximum(ok.sum(axis=0), 1)


def _centred_product(a: np.ndarray, b: np.ndarray, center: np.ndarray, rows: int) -> np.ndarray:
    """(a - center) (b - center)^T in float64, non-finite entries as 0, a column chunk of ``CHUNK_VALUES // rows``
    values per row at a time."""
    product = np.zeros((len(a), len(b)))
    step = max(1, CHUNK_VALUES // rows)
    for start in range(0, a.shape[1], step):
        columns = slice(start, start + step)
        chunk_a, scale_a = _centred_chunk(a[:, columns], center[columns])
        chunk_b, scale_b = (chunk_a, scale_a) if b is a else _centred_chunk(b[:, columns], center[columns])
        if scale_a == scale_b == 1.0:
            product += chunk_a @ chunk_b.T
        else:
            product += (chunk_a @ chunk_b.T).astype(np.float64) * (scale_a * scale_b)
    return product


def _centred_chunk(chunk: np.ndarray, center: np.ndarray) -> tuple[np.ndarray, float]:
    """A column chunk minus its centre, non-finite entries 0, and the power of two it was divided by: a blown-up
    trial's weights reach 1e18 and more, whose float32 products overflow, so such a chunk is divided by a power
    of two (exact) and its product scaled back in float64."""
    chunk = chunk.astype(np.result_type(chunk.dtype, np.float32))  # a copy, changed in place below
    bad = ~np.isfinite(chunk)
    chunk -= center  # a float64 centre, rounded into the chunk as before issue 22: single-block scores unchanged
    chunk[bad] = 0
    scale = _power_of_two_scale(chunk)
    if scale != 1.0:
        chunk /= scale
    return chunk, scale


def _power_of_two_scale(values: np.ndarray, low: float = 2.0**-16, high: float = 2.0**16) -> float:
    """1 when the largest |value| lies in [low, high] (or all are 0), else the power of two nearest to it."""
    peak = float(np.abs(values).max()) if values.size else 0.0
    if peak == 0.0 or low <= peak <= high:
        return 1.0
    return 2.0 ** int(np.round(np.log2(peak)))


def _tsne(features: np.ndarray, perplexity: float, seed: int, max_iter: int, n_threads: int | None) -> np.ndarray:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    # t-SNE squares distances in float32: components of blown-up weights (1e19) overflow and it returns
    # zeros. Dividing by a power of two changes nothing else; features of ordinary zoos are left as they are.
    features = np.asarray(features, dtype=np.float64)
    features = features / _power_of_two_scale(features)
    # PCA initialisation needs two feature dimensions; a one-unit layer (DNN h=1) has one.
    init = "pca" if features.shape[1] >= 2 else "random"
    tsne = TSNE(
        n_components=2, perplexity=perplexity, init=init, learning_rate="auto", random_state=seed, max_iter=max_iter
    )
    with threadpool_limits(limits=n_threads, user_api="openmp"):
        return tsne.fit_transform(np.asarray(features, dtype=np.float64))


def project_matrix(
    matrix: np.ndarray,
    groups,
    arch=None,
    seed: int = 0,
    perplexity: float = 30.0,
    n_pca: int = 50,
    k: int = 5,
    max_iter: int = 1000,
    n_threads: int | None = 1,
    features: str = "statistics",
) -> xr.Dataset:
    """t-SNE of trials given as rows of a feature matrix (standardised per column here), e.g. the per-layer
    weight statistics of every architecture of a (model, dataset), which unlike raw weights have the same
    length whatever the width. Scores as in ``project``; with ``arch`` also the k-NN accuracy of the
    architecture (``arch_knn_accuracy``): when it beats the group's, the map mostly shows architecture.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    labels = np.asarray(groups, dtype=object)
    finite = np.isfinite(matrix).all(axis=1)
    xy = np.full((matrix.shape[0], 2), np.nan)
    n = int(finite.sum())
    message, notes = "", []
    if not finite.all():
        notes.append(f"{int((~finite).sum())} trial(s) with non-finite statistics left out")
    if n < MIN_TRIALS:
        message = f"t-SNE needs at least {MIN_TRIALS} trials with finite weights, have {n}"
    else:
        components, ok, _ = pca_scores([_standardize(matrix[finite])], n_pca)
        if components.shape[1] == 0:
            message = "all trials have identical features; nothing to project"
        else:
            rows = np.flatnonzero(finite)[ok]
            xy[rows] = _tsne(components, min(perplexity, (rows.size - 1) / 3), seed, max_iter, n_threads)
    empty = dict(knn_k=0, knn_accuracy=np.nan, chance_accuracy=np.nan, silhouette=np.nan, n_scored=0, score_note=message)
    scores = empty if message else separation_scores(xy, labels, k)
    coords = {"trial": np.arange(matrix.shape[0]), "group": ("trial", labels)}
    if arch is not None:
        arch = np.asarray(arch, dtype=object)
        coords["arch"] = ("trial", arch)
        arch_scores = empty if message else separation_scores(xy, arch, k)
        scores["arch_knn_accuracy"] = arch_scores["knn_accuracy"]
        scores["arch_chance_accuracy"] = arch_scores["chance_accuracy"]
    attrs = {
        "features": features, "requested_features": features, "layer": "all", "n_trials": n,
        "perplexity": float(min(perplexity, (n - 1) / 3)) if n >= MIN_TRIALS else np.nan, "seed": int(seed),
        "n_features": int(matrix.shape[1]), "message": message, "note": "; ".join(notes), **scores,
    }
    return xr.Dataset(
        {"x": ("trial", xy[:, 0], {"long_name": "t-SNE 1", "units": "1"}),
         "y": ("trial", xy[:, 1], {"long_name": "t-SNE 2", "units": "1"})},
        coords=coords, attrs=attrs | {"groups": " ".join(ordered_groups(labels))},
    )


def score_text(projection: xr.Dataset) -> str:
    """One line of separation scores of a ``project`` result, or its message when nothing was projected."""
    attrs = projection.attrs
    if attrs.get("message"):
        return str(attrs["message"])
    knn, chance, sil = attrs.get("knn_accuracy"), attrs.get("chance_accuracy"), attrs.get("silhouette")
    if knn is None or not np.isfinite(knn):
        return f"no scores: {attrs.get('score_note', '')}".strip()
    text = f"{attrs.get('knn_k')}-NN acc {knn:.2f} (chance {chance:.2f}), silhouette {sil:.2f}"
    arch_knn = attrs.get("arch_knn_accuracy")
    if arch_knn is not None and np.isfinite(arch_knn):
        text += f"; architecture {arch_knn:.2f} (chance {attrs.get('arch_chance_accuracy'):.2f})"
    return text


def score_record(proj: xr.Dataset) -> dict:
    """A projection's scores as a JSON-ready record (the captions and the scores files read these)."""
    attrs = proj.attrs

    def number(key):
        value = attrs.get(key)
        return None if value is None or not np.isfinite(value) else round(float(value), 4)

    # when there are no scores, score_text already says why
    scored_note = str(attrs.get("score_note", "")) if number("knn_accuracy") is not None else ""
    return {
        "layer": "all weights" if attrs.get("layer") == "all" else str(attrs.get("layer")),
        "features": str(attrs.get("features")),
        "knn_k": int(attrs.get("knn_k", 0)),
        "knn_accuracy": number("knn_accuracy"),
        "chance_accuracy": number("chance_accuracy"),
        "silhouette": number("silhouette"),
        "perplexity": number("perplexity"),
        "n_trials": int(attrs.get("n_trials", 0)),
        "message": str(attrs.get("message", "")),
        "note": "; ".join(s for s in (str(attrs.get("note", "")), scored_note) if s),
        "text": score_text(proj),
    }
