"""The paper's claims turned into statistics: one table per (model, dataset) zoo.

Claims (Zheng et al. 2024, arXiv 2408.11720, plus claim 5 which goes beyond it):

1. ``lower_std``: high-accuracy trials have lower weight standard deviation than low-accuracy ones.
   Per layer and whole network: one-sided Mann–Whitney U (high < low), effect size Cliff's delta
   (P(high > low) − P(high < low); negative supports the claim).
2. ``more_alike``: high-accuracy trials are more alike than low-accuracy ones. Per layer and whole network:
   mean pairwise Wasserstein-1 distance between the trials' weight distributions within each group (each
   trial's weights subsampled to at most ``max_values`` values at the same random positions); permutation
   test of ``mean_high − mean_low`` over the labels of the pooled high and low trials. Effect size: the
   ratio mean_high / mean_low (< 1 supports).
3. ``strength_accuracy``: node strength (sum of incoming absolute weights, per-trial mean over nodes) rises
   with accuracy for DNN and CNN; for ViT the paper reports lower attention strength in high-accuracy nets,
   so attention layers expect a negative correlation and other ViT layers carry no claim. Spearman rho over
   the converged trials (group ≠ ``non``), percentile bootstrap CI.
4. ``predict_accuracy``: per-layer mean, std and quantiles of the final weights (Unterthiner et al. 2020)
   predict the final accuracy (``HistGradientBoostingRegressor``, K-fold cross-validated R², Kendall tau of
   the out-of-fold predictions, one-sided p-value of tau) and the group (``HistGradientBoostingClassifier``,
   stratified cross-validated balanced accuracy against chance 1/k, bootstrap CI and p-value).
5. ``early_warning``: the same with the weights of the epoch-1 snapshot, predicting the final accuracy/group.

Verdicts: ``p_value`` is one-sided in the claim's direction and ``p_opposite`` in the other; both are
Holm-adjusted within each (claim, statistic) family of rows. Confidence intervals are percentile
bootstrap intervals at level 1 − alpha (claims 3–5; claims 1–2 report p-values only). ``supported`` when the adjusted ``p_value``
< alpha, ``contradicted`` when the adjusted ``p_opposite`` < alpha, else ``inconclusive``. Degenerate
inputs (a group with fewer than ``min_group`` trials, constant accuracy, all trials diverged, too few trials
to cross-validate) give ``inconclusive`` rows whose ``reason`` says why; nothing raises.
"""

import numpy as np
import pandas as pd
import scipy.stats
import xarray as xr
from scipy.spatial.distance import pdist, squareform
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from weightzoo.analysis.groups import group_zoo
from weightzoo.analysis.stats import NETWORK, feature_matrix, sorted_sample, weight_statistics
from weightzoo.analysis.zoo import final_accuracy, layer_names, trial_groups

CLAIMS = {
    1: ("lower_std", "high-accuracy trials have lower weight std than low-accuracy trials"),
    2: ("more_alike", "high-accuracy trials are more alike (smaller within-group Wasserstein-1) than low-accuracy trials"),
    3: ("strength_accuracy", "node strength rises with accuracy (DNN, CNN); attention strength falls (ViT)"),
    4: ("predict_accuracy", "final weight statistics predict accuracy and group"),
    5: ("early_warning", "epoch-1 weight statistics predict the final accuracy and group"),
}
COLUMNS = [
    "model", "dataset", "arch", "claim", "claim_name", "layer", "statistic", "value", "effect_name",
    "effect_size", "ci_low", "ci_high", "p_value", "p_opposite", "n", "verdict", "reason", "detail",
]
VERDICTS = ("supported", "contradicted", "inconclusive")


def claims_table(
    ds: xr.Dataset,
    groups=None,
    seed: int = 0,
    alpha: float = 0.05,
    accuracy: str = "train",
    snapshot: int = -1,
    early_snapshot: int = 1,
    min_group: int = 3,
    n_permutations: int = 999,
    n_bootstrap: int = 999,
    max_values: int = 2000,
    cv_folds: int = 5,
    max_iter: int = 100,
) -> pd.DataFrame:
    """One row per claim × layer (× statistic) for the zoo ``ds``; columns ``COLUMNS``.

    ``groups``: one label per trial (DataArray over ``trial``, array, or the name of a variable of ``ds``);
    None computes ``group_zoo(ds, accuracy=accuracy)``. ``snapshot`` is the epoch whose weights claims
    1–4 use (-1: the last stored); ``early_snapshot`` the epoch claim 5 uses.
    """
    if groups is None:
        groups = group_zoo(ds, accuracy=accuracy)
    labels = trial_groups(ds, groups).astype(str)
    acc = final_accuracy(ds, accuracy).astype(float)
    rng = np.random.default_rng(seed)
    stats = weight_statistics(ds, snapshot)

    rows = []
    rows += _claim_lower_std(stats, labels, min_group)
    rows += _claim_more_alike(ds, labels, snapshot, min_group, n_permutations, max_values, rng)
    rows += _claim_strength(ds, labels, acc, snapshot, n_bootstrap, alpha, rng)
    rows += _claim_prediction(4, stats, labels, acc, cv_folds, max_iter, n_bootstrap, alpha, seed, rng)
    if early_snapshot in ds["snapshot"].values:
        early = weight_statistics(ds, early_snapshot, include_network=False)
        rows += _claim_prediction(5, early, labels, acc, cv_folds, max_iter, n_bootstrap, alpha, seed, rng)
    else:
        rows += [
            _row(5, "all layers", stat, reason=f"no snapshot at epoch {early_snapshot}")
            for stat in ("cv_r2", "balanced_accuracy")
        ]

    table = pd.DataFrame(rows)
    table = _decide(table, alpha)
    table.insert(0, "model", ds.attrs.get("model", ""))
    table.insert(1, "dataset", ds.attrs.get("dataset", ""))
    table.insert(2, "arch", ds.attrs.get("arch", ""))
    return table[COLUMNS]


# ---------------------------------------------------------------------------------------------- claims


def _row(claim, layer, statistic, **values):
    row = {
        "claim": claim, "claim_name": CLAIMS[claim][0], "layer": layer, "statistic": statistic,
        "value": np.nan, "effect_name": "", "effect_size": np.nan, "ci_low": np.nan, "ci_high": np.nan,
        "p_value": np.nan, "p_opposite": np.nan, "n": 0, "reason": "", "detail": "",
    }
    row.update(values)
    return row


def _group_sizes_reason(n_high, n_low, min_group):
    if min(n_high, n_low) < min_group:
        return f"fewer than {min_group} trials in a group (high {n_high}, low {n_low})"
    return ""


def _claim_lower_std(stats, labels, min_group):
    rows = []
    for layer in stats["layer"].values:
        std = stats["std"].sel(layer=layer).values
        high, low = std[(labels == "high") & np.isfinite(std)], std[(labels == "low") & np.isfinite(std)]
        n, detail = high.size + low.size, f"n_high={high.size}, n_low={low.size}"
        reason = _group_sizes_reason(high.size, low.size, min_group)
        if reason:
            rows.append(_row(1, str(layer), "mann_whitney_u", n=n, reason=reason, detail=detail))
            continue
        less = scipy.stats.mannwhitneyu(high, low, alternative="less")
        greater = scipy.stats.mannwhitneyu(high, low, alternative="greater")
        cliff = 2.0 * less.statistic / (high.size * low.size) - 1.0
        detail += f", median std high={np.median(high):.4g}, low={np.median(low):.4g}"
        rows.append(
            _row(1, str(layer), "mann_whitney_u", value=float(less.statistic), effect_name="cliffs_delta",
                 effect_size=float(cliff), p_value=float(less.pvalue), p_opposite=float(greater.pvalue),
                 n=n, detail=detail)
        )
    return rows


def _claim_more_alike(ds, labels, snapshot, min_group, n_permutations, max_values, rng):
    rows = []
    pooled = np.flatnonzero(np.isin(labels, ["high", "low"]))
    for layer in [*layer_names(ds), NETWORK]:
        sample = sorted_sample(ds, layer, snapshot, max_values, seed=int(rng.integers(2**31)))[pooled]
        finite = np.isfinite(sample).all(axis=1)
        sample, is_high = sample[finite], labels[pooled][finite] == "high"
        n_high, n_low = int(is_high.sum()), int((~is_high).sum())
        detail = f"n_high={n_high}, n_low={n_low}, values per trial={sample.shape[1]}"
        reason = _group_sizes_reason(n_high, n_low, min_group)
        if reason:
            rows.append(_row(2, layer, "mean_w1_high", n=n_high + n_low, reason=reason, detail=detail))
            continue
        distances = squareform(pdist(sample, "cityblock")) / sample.shape[1]
        observed_high, observed_low = _within_means(distances, is_high[None, :])
        permuted = np.array([rng.permutation(is_high) for _ in range(n_permutations)])
        perm_high, perm_low = _within_means(distances, permuted)
        observed = observed_high[0] - observed_low[0]
        difference = perm_high - perm_low
        p_less = (1 + np.sum(difference <= observed)) / (n_permutations + 1)
        p_greater = (1 + np.sum(difference >= observed)) / (n_permutations + 1)
        ratio = observed_high[0] / observed_low[0] if observed_low[0] > 0 else np.nan
        detail += f", mean W1 high={observed_high[0]:.4g}, low={observed_low[0]:.4g}"
        rows.append(
            _row(2, layer, "mean_w1_high", value=float(observed_high[0]), effect_name="w1_ratio_high_low",
                 effect_size=float(ratio), p_value=float(p_less), p_opposite=float(p_greater),
                 n=n_high + n_low, detail=detail)
        )
    return rows


def _within_means(distances, membership):
    """Mean pairwise distance within the members (True) and within the others, per row of ``membership``."""
    means = []
    for mask in (membership, ~membership):
        weights = mask.astype(float)
        total = np.einsum("bi,bi->b", weights @ distances, weights)
        k = weights.sum(axis=1)
        means.append(total / (k * (k - 1)))
    return means


def _expected_strength_sign(model, layer):
    if model == "vit":
        return -1 if "attn" in layer else 0
    return 1


def _claim_strength(ds, labels, acc, snapshot, n_bootstrap, alpha, rng):
    model = str(ds.attrs.get("model", ""))
    rows = []
    for layer in _strength_layers(ds):
        sign = _expected_strength_sign(model, layer)
        strength = _mean_node_strength(ds, layer, snapshot)
        keep = (labels != "non") & np.isfinite(strength) & np.isfinite(acc)
        x, y, n = strength[keep], acc[keep], int(keep.sum())
        if n < 3:
            rows.append(_row(3, layer, "spearman_rho", n=n, reason=f"only {n} converged trials with finite weights"))
            continue
        if np.ptp(y) == 0 or np.ptp(x) == 0:
            what = "accuracy" if np.ptp(y) == 0 else "node strength"
            rows.append(_row(3, layer, "spearman_rho", n=n, reason=f"{what} is the same in every trial"))
            continue
        rho = float(scipy.stats.spearmanr(x, y).statistic)
        positive = float(scipy.stats.spearmanr(x, y, alternative="greater").pvalue)
        negative = float(scipy.stats.spearmanr(x, y, alternative="less").pvalue)
        ci = _bootstrap_spearman(x, y, n_bootstrap, alpha, rng)
        values = dict(value=rho, effect_name="spearman_rho", effect_size=rho, ci_low=ci[0], ci_high=ci[1], n=n)
        if sign == 0:
            rows.append(_row(3, layer, "spearman_rho", **values, reason="the paper makes no claim for this layer",
                             detail=f"two-sided p={2 * min(positive, negative, 0.5):.3g}"))
            continue
        p_support, p_opposite = (positive, negative) if sign > 0 else (negative, positive)
        direction = "rho > 0 expected" if sign > 0 else "rho < 0 expected (ViT attention)"
        rows.append(_row(3, layer, "spearman_rho", **values, p_value=p_support, p_opposite=p_opposite, detail=direction))
    return rows


def _bootstrap_spearman(x, y, n_bootstrap, alpha, rng):
    index = rng.integers(0, x.size, size=(n_bootstrap, x.size))
    rx = scipy.stats.rankdata(x[index], axis=1)
    ry = scipy.stats.rankdata(y[index], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx * ry).sum(axis=1) / np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))
    rho = rho[np.isfinite(rho)]
    if rho.size == 0:
        return np.nan, np.nan
    return tuple(float(v) for v in np.percentile(rho, [100 * alpha / 2, 100 * (1 - alpha / 2)]))


def _claim_prediction(claim, stats, labels, acc, cv_folds, max_iter, n_bootstrap, alpha, seed, rng):
    # the trees of a zoo's few hundred trials are tiny: OpenMP threads cost more than they save
    with threadpool_limits(limits=1, user_api="openmp"):
        return _predictions(claim, stats, labels, acc, cv_folds, max_iter, n_bootstrap, alpha, seed, rng)


def _predictions(claim, stats, labels, acc, cv_folds, max_iter, n_bootstrap, alpha, seed, rng):
    features, names = feature_matrix(stats)
    epoch = stats.attrs.get("snapshot")
    keep = np.isfinite(features).all(axis=1) & np.isfinite(acc)
    X, y, g, n = features[keep], acc[keep], labels[keep], int(keep.sum())
    base = dict(detail=f"{len(names)} features from the epoch-{epoch} snapshot")
    min_n = max(10, 2 * cv_folds)
    rows = []

    if n < min_n:
        rows.append(_row(claim, "all layers", "cv_r2", n=n, reason=f"{n} usable trials < {min_n}", **base))
    elif np.ptp(y) == 0:
        rows.append(_row(claim, "all layers", "cv_r2", n=n, reason="accuracy is the same in every trial", **base))
    else:
        model = HistGradientBoostingRegressor(max_iter=max_iter, min_samples_leaf=_leaf(n), random_state=seed)
        folds = KFold(n_splits=min(cv_folds, n), shuffle=True, random_state=seed)
        predicted = cross_val_predict(model, X, y, cv=folds)
        r2 = _r2(y, predicted)
        ci = _bootstrap_r2(y, predicted, n_bootstrap, alpha, rng)
        if np.ptp(predicted) == 0:
            rows.append(_row(claim, "all layers", "cv_r2", value=r2, ci_low=ci[0], ci_high=ci[1], n=n,
                             reason="constant out-of-fold predictions", **base))
        else:
            tau = scipy.stats.kendalltau(y, predicted, alternative="greater")
            rows.append(
                _row(claim, "all layers", "cv_r2", value=r2, effect_name="kendall_tau",
                     effect_size=float(tau.statistic), ci_low=ci[0], ci_high=ci[1], p_value=float(tau.pvalue),
                     n=n, **base)
            )

    classes, counts = np.unique(g, return_counts=True)
    usable = classes[counts >= cv_folds] if np.sum(counts >= cv_folds) >= 2 else classes[counts >= 2]
    mask = np.isin(g, usable)
    if usable.size < 2 or mask.sum() < min_n:
        reason = f"fewer than 2 groups with 2 or more trials ({usable.size})" if usable.size < 2 else f"{int(mask.sum())} usable trials < {min_n}"
        rows.append(_row(claim, "all layers", "balanced_accuracy", n=int(mask.sum()), reason=reason, **base))
        return rows
    Xc, gc = X[mask], g[mask]
    n_splits = int(min(cv_folds, np.unique(gc, return_counts=True)[1].min()))
    model = HistGradientBoostingClassifier(max_iter=max_iter, min_samples_leaf=_leaf(gc.size), random_state=seed)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    predicted = cross_val_predict(model, Xc, gc, cv=folds)
    chance = 1.0 / usable.size
    observed, boot = _balanced_accuracy(gc, predicted, usable, n_bootstrap, rng)
    ci = tuple(float(v) for v in np.nanpercentile(boot, [100 * alpha / 2, 100 * (1 - alpha / 2)]))
    p_value = (1 + np.sum(boot <= chance)) / (boot.size + 1)
    rows.append(
        _row(claim, "all layers", "balanced_accuracy", value=observed, effect_name="above_chance",
             effect_size=observed - chance, ci_low=ci[0], ci_high=ci[1], p_value=float(p_value), n=int(gc.size),
             detail=f"{base['detail']}; groups {', '.join(usable)}; chance {chance:.3g}; {n_splits}-fold")
    )
    return rows


def _leaf(n):
    # sklearn's default of 20 samples per leaf leaves no tree to grow on a small zoo
    return int(min(20, max(2, n // 10)))


def _r2(y, predicted, weights=None):
    weights = np.ones_like(y) if weights is None else weights
    mean = np.sum(weights * y, axis=-1, keepdims=True) / np.sum(weights, axis=-1, keepdims=True)
    residual = np.sum(weights * (y - predicted) ** 2, axis=-1)
    total = np.sum(weights * (y - mean) ** 2, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - residual / total


def _bootstrap_r2(y, predicted, n_bootstrap, alpha, rng):
    weights = rng.multinomial(y.size, np.full(y.size, 1.0 / y.size), size=n_bootstrap).astype(float)
    r2 = _r2(y[None, :], predicted[None, :], weights)
    r2 = r2[np.isfinite(r2)]
    if r2.size == 0:
        return np.nan, np.nan
    return tuple(float(v) for v in np.percentile(r2, [100 * alpha / 2, 100 * (1 - alpha / 2)]))


def _balanced_accuracy(truth, predicted, classes, n_bootstrap, rng):
    """Balanced accuracy (mean recall over ``classes``) and its bootstrap replicates."""
    weights = np.vstack(
        [np.ones(truth.size), rng.multinomial(truth.size, np.full(truth.size, 1.0 / truth.size), size=n_bootstrap)]
    ).astype(float)
    recalls = []
    for c in classes:
        is_c = truth == c
        with np.errstate(invalid="ignore", divide="ignore"):
            recalls.append((weights * (is_c & (predicted == c))).sum(axis=1) / (weights * is_c).sum(axis=1))
    balanced = np.nanmean(np.column_stack(recalls), axis=1)
    return float(balanced[0]), balanced[1:]


# ---------------------------------------------------------------------------------------------- strength


def _strength_layers(ds):
    try:
        from weightzoo.analysis.strength import strength_layers
    except ImportError:
        return [layer for layer in layer_names(ds) if ds[f"{layer}_weight"].ndim >= 4]
    return strength_layers(ds)


def _mean_node_strength(ds, layer, snapshot):
    try:
        from weightzoo.analysis.strength import mean_node_strength
    except ImportError:
        from weightzoo.analysis.stats import iter_trial_blocks

        out = np.empty(ds.sizes["trial"])
        for block, arrays in iter_trial_blocks(ds, [f"{layer}_weight"], snapshot):
            w = np.abs(arrays[f"{layer}_weight"].astype(np.float64))
            out[block] = w.reshape(w.shape[0], w.shape[1], -1).sum(axis=2).mean(axis=1)
        return out
    return np.asarray(mean_node_strength(ds, layer, snapshot), dtype=float)


# ---------------------------------------------------------------------------------------------- verdicts


def holm(p_values) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values; NaN entries stay NaN and do not count."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if finite.size == 0:
        return adjusted
    order = finite[np.argsort(p[finite])]
    m = finite.size
    steps = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted


def _decide(table, alpha):
    table = table.copy()
    for column in ("p_value", "p_opposite"):
        table[column] = table[column].astype(float)
        table[column] = table.groupby(["claim", "statistic"], sort=False)[column].transform(
            lambda p: pd.Series(holm(p.to_numpy()), index=p.index)
        )
    verdicts, reasons = [], []
    for row in table.itertuples():
        reason = row.reason
        if reason:
            verdict = "inconclusive"
        elif row.p_value < alpha:
            verdict = "supported"
        elif row.p_opposite < alpha:
            verdict = "contradicted"
            reason = f"significant in the opposite direction (Holm p={row.p_opposite:.3g})"
        else:
            verdict = "inconclusive"
            reason = f"Holm-adjusted p={row.p_value:.3g} >= alpha={alpha}" if np.isfinite(row.p_value) else "no p-value"
        verdicts.append(verdict)
        reasons.append(reason)
    table["verdict"] = verdicts
    table["reason"] = reasons
    return table
