"""The benchmark table: every method scored on the shared folds, per (model, dataset) cell and pooled over
cells, beside the published anchors; the best method of each cell named, or the methods it cannot be told
apart from."""

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.model_selection import PredefinedSplit
from threadpoolctl import threadpool_limits

from weightzoo.analysis.benchmark.anchors import anchor_columns
from weightzoo.analysis.benchmark.external import align_predictions
from weightzoo.analysis.benchmark.folds import exclusions, fold_of, recipes, target, trial_numbers
from weightzoo.analysis.benchmark.methods import METHODS, usable_columns
from weightzoo.analysis.claims.out_of_fold import cross_val_predict, leaf_size, regression_scores, regressor
from weightzoo.analysis.claims.prediction import MIN_UNITS
from weightzoo.analysis.claims.testing import kendall_interval

COLUMNS = ["model", "dataset", "method", "method_name", "n_features", "n", "n_recipes", "cv_folds", "r2", "r2_low",
           "r2_high", "tau", "tau_low", "tau_high", "anchor_r2", "anchor_tau", "anchor", "zoo", "anchor_zoo", "best",
           "excluded", "reason", "detail"]
POOLED = "all"
"""``model`` and ``dataset`` of the rows pooled over every cell."""
MIN_RECIPES = MIN_UNITS["kfold"]
"""Fewest recipes a row needs (as claims 4-5's grouped folds: folds and a bootstrap over recipes)."""
WEIGHT_SPACE_NET = "e"


@dataclass
class Cell:
    """One (model, dataset): its features (every experiment pooled), folds and, for method (e), the weight-space
    network's out-of-fold predictions (None: not run)."""

    model: str
    dataset: str
    features: xr.Dataset
    folds: pd.DataFrame
    predictions: pd.DataFrame | None = None

    @property
    def name(self) -> str:
        return f"{self.model}/{self.dataset}"


@dataclass
class _Design:
    """The trials a cell's rows score on (in features order), their target, folds and recipes."""

    features: xr.Dataset
    keys: pd.DataFrame
    y: np.ndarray
    fold: np.ndarray
    recipe: np.ndarray
    excluded: str
    zoo: str

    @property
    def n_recipes(self) -> int:
        return int(np.unique(self.recipe).size)

    @property
    def n_folds(self) -> int:
        return int(np.unique(self.fold).size)


def benchmark_table(cells: list[Cell], max_iter: int = 100, max_bins: int = 63, n_bootstrap: int = 999,
                    alpha: float = 0.05, seed: int = 0, weight_space_net: bool = False,
                    methods: str = "abcde") -> pd.DataFrame:
    """One row per cell x method and per pooled method (columns ``COLUMNS``). ``weight_space_net``: whether
    method (e) was asked for (``analysis.weight_space_net.enabled``); ``methods``: the keys of those to run."""
    settings = dict(max_iter=max_iter, max_bins=max_bins, n_bootstrap=n_bootstrap, alpha=alpha, seed=seed)
    chosen = [m for m in METHODS if m.key in methods]
    rows = []
    with threadpool_limits(limits=1, user_api="openmp"):  # tiny trees: OpenMP threads cost more than they save
        designs = {cell.name: _design(cell) for cell in cells}
        for cell in cells:
            design = designs[cell.name]
            rows += _name_best([_method_row(cell, method, design, weight_space_net, **settings) for method in chosen])
        rows += _pooled_rows(cells, designs, settings, chosen)
    return pd.DataFrame(rows, columns=COLUMNS)


def _design(cell: Cell) -> _Design:
    features = cell.features
    fold = fold_of(features, cell.folds)
    why = exclusions(features)
    stale = int(((fold < 0) & (why == "")).sum() + ((fold >= 0) & (why != "")).sum())
    if stale:
        raise ValueError(f"{cell.name}: folds.csv does not match the features ({stale} trials differ in whether they "
                         "are used): it was made from other features; rerun benchmark_folds")
    used = fold >= 0
    reasons, counts = np.unique(why[~used], return_counts=True)
    excluded = "; ".join(f"{c} {r}" for r, c in zip(reasons, counts)) or "none"
    sub = features.isel(trial=np.flatnonzero(used))
    keys = pd.DataFrame({"experiment": sub["experiment"].values.astype(str), "trial": trial_numbers(sub),
                         "fold": fold[used]})
    n_archs = np.unique(sub["arch"].values.astype(str)).size
    epochs = int(np.max(features["epoch"].values)) if "epoch" in features.coords else 0
    snapshot = features.attrs.get("snapshot", "final")
    zoo = (f"{cell.name}: {int(used.sum())} trials, {np.unique(recipes(sub)).size} recipes, {n_archs} "
           f"architecture{'s' if n_archs != 1 else ''}, {epochs} epochs, weights of the epoch-{snapshot} snapshot")
    return _Design(sub, keys, target(sub), fold[used], recipes(sub), excluded, zoo)


def _cannot(y: np.ndarray, n_recipes: int, n_folds: int) -> str:
    """Why rows on these trials cannot be answered ('' if they can)."""
    n, min_n = y.size, max(10, 2 * n_folds)
    if n_recipes < MIN_RECIPES:
        return (f"{n_recipes} recipes < {MIN_RECIPES}: the folds hold out whole recipes (seeds of one recipe "
                "are not independent) and the intervals resample recipes, so too few recipes leave nothing to "
                "generalise across; what answers it: more recipes (per-trial random hyperparameters make every trial "
                "its own recipe, as in Unterthiner's zoo, or sweep more values)")
    if n < min_n:
        return f"{n} trials < {min_n}: too few to train and test on; what answers it: more trials"
    if np.ptp(y) == 0:
        return "the final test accuracy is the same in every trial: nothing to predict"
    return ""


def _method_row(cell: Cell, method, design: _Design, weight_space_net, max_iter, max_bins, n_bootstrap, alpha,
                seed) -> dict:
    row = _base_row(cell.model, cell.dataset, method, design)
    row.update(anchor_columns(method.key, cell.dataset))
    reason = _cannot(design.y, design.n_recipes, design.n_folds)
    if method.key == WEIGHT_SPACE_NET:
        predicted, reason, note = _external(design, cell.predictions, weight_space_net, reason)
        row["detail"] = f"{method.text}; {row['detail']}" + (f"; {note}" if note else "")
        if reason:
            return dict(row, reason=reason)
        scores = _scores(design.y, predicted, design.recipe, n_bootstrap, alpha,
                         _rng(seed, cell.name, method.key))
        return dict(row, **scores)
    if reason:  # before the features: a cell may have no usable trial at all (every trial diverged)
        return dict(row, reason=reason)
    X, names, note = method.features(design.features, False)
    keep = usable_columns(X)
    row["n_features"] = int(keep.sum())
    row["detail"] = _detail(method, row["detail"], note, max_iter, max_bins, design.y.size)
    if not keep.any():
        return dict(row, reason="no feature varies between trials" + (f" ({note})" if note else ""))
    predicted = cross_val_predict(regressor(design.y.size, max_iter, seed, max_bins), X[:, keep], design.y,
                                  PredefinedSplit(design.fold))
    return dict(row, **_scores(design.y, predicted, design.recipe, n_bootstrap, alpha,
                               _rng(seed, cell.name, method.key)))


def _external(design, predictions, asked, reason) -> tuple[np.ndarray | None, str, str]:
    if not asked:
        return None, ("not run: set analysis.weight_space_net.enabled: true to train the weight-space network on "
                      "these folds (its rule writes weight_space_net.csv beside folds.csv)"), ""
    if reason:
        return None, reason, ""
    if predictions is None:
        return None, ("no weight_space_net.csv for this (model, dataset): the weight-space network covers only "
                      "models with a weight-space chain"), ""
    return align_predictions(predictions, design.keys, design.y)


def _base_row(model, dataset, method, design) -> dict:
    return dict(model=model, dataset=dataset, method=method.key, method_name=method.name, n_features=0,
                n=int(design.y.size), n_recipes=design.n_recipes, cv_folds=design.n_folds, r2=np.nan, r2_low=np.nan,
                r2_high=np.nan, tau=np.nan, tau_low=np.nan, tau_high=np.nan, best="", excluded=design.excluded,
                reason="", zoo=design.zoo,
                detail=f"target: final test accuracy (Unterthiner et al.'s); {design.n_folds} folds grouped by recipe "
                       "(folds.csv)")


def _detail(method, detail, note, max_iter, max_bins, n) -> str:
    text = (f"{method.text}; scikit-learn HistGradientBoostingRegressor(max_iter={max_iter}, max_bins={max_bins}, "
            f"min_samples_leaf={leaf_size(n)}), a histogram GBM after LightGBM, which Unterthiner et al. used; "
            f"{detail}")
    return f"{text}; {note}" if note else text


def _scores(y, predicted, clusters, n_bootstrap, alpha, rng) -> dict:
    """R², Kendall tau and their 1 - alpha intervals (bootstrap over recipes); an interval that collapses to a
    point from a finite sample is replaced (tau: a score interval over the recipes) or withheld (R²)."""
    scores = regression_scores(y, predicted, clusters, n_bootstrap, alpha, rng)
    out = dict(r2=scores["r2"], r2_low=scores["r2_ci"][0], r2_high=scores["r2_ci"][1])
    notes = []
    if out["r2_low"] == out["r2_high"]:
        out["r2_low"] = out["r2_high"] = np.nan
        notes.append("the R² interval collapsed to a point (every resample fits alike): not given")
    if scores["tau"] is None:
        notes.append("constant out-of-fold predictions: no ranking, no Kendall tau")
    else:
        low, high = scores["tau_ci"]
        if low == high:
            low, high = kendall_interval(scores["tau"], np.unique(clusters).size, 1 - alpha)
            notes.append("the tau bootstrap interval collapsed to a point: score interval over the recipes instead")
        out.update(tau=scores["tau"], tau_low=low, tau_high=high)
    out["_notes"] = notes
    return out


def _rng(seed, cell_name, method_key):
    """One random stream per (cell, method): adding a cell or a method changes no other row's interval."""
    return np.random.default_rng([seed, zlib.crc32(cell_name.encode()), ord(method_key)])


def _name_best(rows: list[dict]) -> list[dict]:
    """Mark the method with the highest tau; say which others it cannot be told from (intervals overlap)."""
    for row in rows:
        notes = row.pop("_notes", [])
        if notes:
            row["detail"] = "; ".join([row["detail"], *notes])
    answered = [r for r in rows if np.isfinite(r["tau"])]
    if not answered:
        return rows
    best = max(answered, key=lambda r: r["tau"])
    others = [r for r in answered if r is not best]
    overlap = [f"({r['method']})" for r in others if r["tau_high"] >= best["tau_low"]]
    if not others:
        best["best"] = "highest τ (the only method answered here)"
    elif overlap:
        best["best"] = (f"highest τ, but its interval overlaps those of {', '.join(overlap)}: not distinguishable "
                        "from them on this zoo")
    else:
        best["best"] = "highest τ; its interval lies above every other method's"
    return rows


def _pooled_rows(cells, designs, settings, methods) -> list[dict]:
    """One regressor over all cells on layer-pooled features (``methods``); method (e) is per cell only."""
    total = sum(d.y.size for d in designs.values())
    zoo = f"{len(cells)} (model, dataset) cells, {total} trials"
    base = dict(model=POOLED, dataset=POOLED, n_features=0, n=total, r2=np.nan, r2_low=np.nan, r2_high=np.nan,
                tau=np.nan, tau_low=np.nan, tau_high=np.nan, anchor_r2=np.nan, anchor_tau=np.nan,
                anchor="none: Unterthiner et al. fit one regressor per dataset", anchor_zoo="", best="",
                excluded="; ".join(f"{name}: {d.excluded}" for name, d in designs.items()), reason="", zoo=zoo)
    if len(cells) < 2:
        reason = (f"the zoo has {len(cells)} (model, dataset) cell: pooling over cells needs two or more"
                  if cells else "no (model, dataset) cell")
        return [dict(base, method=m.key, method_name=m.name, n_recipes=0, cv_folds=0, reason=reason, detail=m.text)
                for m in methods]
    y = np.concatenate([d.y for d in designs.values()])
    fold = np.concatenate([d.fold for d in designs.values()])
    clusters = np.concatenate([np.char.add(f"{name}|", d.recipe.astype(str)) for name, d in designs.items()])
    n_recipes, n_folds = int(np.unique(clusters).size), int(np.unique(fold).size)
    reason = _cannot(y, n_recipes, n_folds)
    detail = (f"layer-pooled features (the layers of different models do not align): moments of all weights and of "
              f"all biases together, the mean over layers of every other metric; one regressor over every cell "
              f"(it can also tell cells apart by their weights, so differences between the cells' accuracy levels "
              f"count too); fold k = fold k of every cell's folds.csv; target: final test accuracy")
    rows = []
    for method in methods:
        row = dict(base, method=method.key, method_name=method.name, n_recipes=n_recipes, cv_folds=n_folds,
                   detail=f"{method.text}; {detail}")
        if method.features is None:
            rows.append(dict(row, reason="not applicable: one weight-space network per (model, dataset), whose "
                                         "layers differ; see the cells' rows"))
            continue
        if reason:  # before the features: a cell may have no usable trial
            rows.append(dict(row, reason=reason))
            continue
        frames = []
        for cell in cells:
            X, names, _ = method.features(designs[cell.name].features, True)
            frames.append(pd.DataFrame(X, columns=names))
        X = pd.concat(frames, ignore_index=True, join="outer").to_numpy(float)
        keep = usable_columns(X)
        row["n_features"] = int(keep.sum())
        if not keep.any():
            rows.append(dict(row, reason="no feature varies between trials"))
            continue
        predicted = cross_val_predict(regressor(y.size, settings["max_iter"], settings["seed"], settings["max_bins"]),
                                      X[:, keep], y, PredefinedSplit(fold))
        rows.append(dict(row, **_scores(y, predicted, clusters, settings["n_bootstrap"], settings["alpha"],
                                        _rng(settings["seed"], POOLED, method.key))))
    return _name_best(rows)

