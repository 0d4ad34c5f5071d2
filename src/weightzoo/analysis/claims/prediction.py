"""Claims 4–5: weight statistics predict accuracy (regression) and group (classification).

Features: per-layer mean, std and quantiles (Unterthiner et al. 2020). Gradient boosting, cross-validated
two ways: K-fold over all trials of the (model, dataset), and leave-one-architecture-out (train on the
other architectures, predict the held-out one), which asks whether the statistics carry accuracy beyond
recognising the architecture. Each statistic is its own row, and a row's effect, interval and verdict all
belong to the statistic it names: R² (supported when its bootstrap interval lies above 0), Kendall tau of
the out-of-fold predictions (one-sided test), balanced accuracy above chance.
"""

import numpy as np
import scipy.stats
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold, LeaveOneGroupOut, StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from weightzoo.analysis.claims.testing import interval

SCHEMES = ("kfold", "loao")


def features_of(statistic: np.ndarray) -> np.ndarray:
    """(trial, layer, stat) -> (trial, layer x stat)."""
    return statistic.reshape(statistic.shape[0], -1)


def prediction_rows(X, acc, labels, arch, cv_folds, max_iter, n_bootstrap, alpha, seed, rng, epoch) -> list[dict]:
    """Rows (scope, statistic, values) of one claim for both cross-validation schemes."""
    with threadpool_limits(limits=1, user_api="openmp"):  # tiny trees: OpenMP threads cost more than they save
        rows = []
        for scheme in SCHEMES:
            rows += _scheme_rows(scheme, X, acc, labels, arch, cv_folds, max_iter, n_bootstrap, alpha, seed, rng, epoch)
        return rows


def _splitter(scheme, arch, n_folds, seed, stratify=False):
    if scheme == "loao":
        return LeaveOneGroupOut(), arch
    cls = StratifiedKFold if stratify else KFold
    return cls(n_splits=n_folds, shuffle=True, random_state=seed), None


def _scheme_rows(scheme, X, acc, labels, arch, cv_folds, max_iter, n_bootstrap, alpha, seed, rng, epoch):
    keep = np.isfinite(X).all(axis=1) & np.isfinite(acc)
    X, y, g, a, n = X[keep], acc[keep], labels[keep], arch[keep], int(keep.sum())
    detail = f"{X.shape[1]} features from the epoch-{epoch} snapshot; " + (
        f"{min(cv_folds, n)}-fold" if scheme == "kfold" else f"leave one of {np.unique(a).size} architectures out")
    base = dict(scope=scheme, layer="all layers", n=n, detail=detail)
    min_n = max(10, 2 * cv_folds)
    reason = ""
    if n < min_n:
        reason = f"{n} usable trials < {min_n}"
    elif scheme == "loao" and np.unique(a).size < 2:
        reason = "one architecture only: nothing to leave out"
    elif np.ptp(y) == 0:
        reason = "accuracy is the same in every trial"
    rows = []
    if reason:
        rows += [dict(base, statistic="cv_r2", reason=reason), dict(base, statistic="kendall_tau", reason=reason)]
    else:
        model = HistGradientBoostingRegressor(max_iter=max_iter, min_samples_leaf=_leaf(n), random_state=seed)
        splitter, groups = _splitter(scheme, a, min(cv_folds, n), seed)
        predicted = cross_val_predict(model, X, y, cv=splitter, groups=groups)
        rows += _regression_rows(base, y, predicted, n_bootstrap, alpha, rng)
    rows.append(_classification_row(scheme, base, X, g, a, cv_folds, max_iter, n_bootstrap, alpha, seed, rng, min_n))
    return rows


def _regression_rows(base, y, predicted, n_bootstrap, alpha, rng):
    r2 = float(_r2(y, predicted))
    weights = rng.multinomial(y.size, np.full(y.size, 1.0 / y.size), size=n_bootstrap).astype(float)
    boot_r2 = _r2(y[None, :], predicted[None, :], weights)
    # doubled one-sided bootstrap p-values: "supported" then means the 1 - alpha interval of R² lies above 0
    p_r2 = min(1.0, 2 * float((1 + np.sum(boot_r2 <= 0)) / (n_bootstrap + 1)))
    p_r2_opposite = min(1.0, 2 * float((1 + np.sum(boot_r2 >= 0)) / (n_bootstrap + 1)))
    ci = interval(boot_r2, alpha)
    rows = [dict(base, statistic="cv_r2", value=r2, effect_name="r2", effect_size=r2, ci_low=ci[0], ci_high=ci[1],
                 p_value=p_r2, p_opposite=p_r2_opposite,
                 detail=f"{base['detail']}; R² below 0 predicts worse than the mean accuracy")]
    if np.ptp(predicted) == 0:
        rows.append(dict(base, statistic="kendall_tau", reason="constant out-of-fold predictions"))
        return rows
    tau = scipy.stats.kendalltau(y, predicted)
    greater = scipy.stats.kendalltau(y, predicted, alternative="greater").pvalue
    less = scipy.stats.kendalltau(y, predicted, alternative="less").pvalue
    picks = rng.integers(0, y.size, size=(min(n_bootstrap, 199), y.size))  # tau is O(n log n) per replicate
    boot_tau = np.array([scipy.stats.kendalltau(y[p], predicted[p]).statistic for p in picks])
    ci = interval(boot_tau, alpha)
    rows.append(dict(base, statistic="kendall_tau", value=float(tau.statistic), effect_name="kendall_tau",
                     effect_size=float(tau.statistic), ci_low=ci[0], ci_high=ci[1], p_value=float(greater),
                     p_opposite=float(less), detail=f"{base['detail']}; anchor: tau 0.915 on the CIFAR-10-GS Small CNN Zoo"))
    return rows


def _classification_row(scheme, base, X, g, a, cv_folds, max_iter, n_bootstrap, alpha, seed, rng, min_n):
    base = dict(base, statistic="balanced_accuracy")
    grouped = np.isin(g, ("non", "low", "mid", "high"))
    classes, counts = np.unique(g[grouped], return_counts=True)
    usable = classes[counts >= cv_folds] if np.sum(counts >= cv_folds) >= 2 else classes[counts >= 2]
    mask = np.isin(g, usable)
    if usable.size < 2 or mask.sum() < min_n:
        reason = (f"fewer than 2 groups with 2 or more trials ({usable.size})" if usable.size < 2
                  else f"{int(mask.sum())} usable trials < {min_n}")
        return dict(base, n=int(mask.sum()), reason=reason)
    Xc, gc, ac = X[mask], g[mask], a[mask]
    if scheme == "loao" and np.unique(ac).size < 2:
        return dict(base, n=int(mask.sum()), reason="one architecture only: nothing to leave out")
    n_splits = int(min(cv_folds, np.unique(gc, return_counts=True)[1].min()))
    model = HistGradientBoostingClassifier(max_iter=max_iter, min_samples_leaf=_leaf(gc.size), random_state=seed)
    splitter, groups = _splitter(scheme, ac, n_splits, seed, stratify=True)
    predicted = cross_val_predict(model, Xc, gc, cv=splitter, groups=groups)
    chance = 1.0 / usable.size
    observed, boot = _balanced_accuracy(gc, predicted, usable, n_bootstrap, rng)
    ci = interval(boot - chance, alpha)
    return dict(base, value=observed, effect_name="above_chance", effect_size=observed - chance, ci_low=ci[0],
                ci_high=ci[1], p_value=float((1 + np.sum(boot <= chance)) / (boot.size + 1)),
                p_opposite=float((1 + np.sum(boot >= chance)) / (boot.size + 1)), n=int(gc.size),
                detail=f"{base['detail']}; groups {', '.join(usable)}; chance {chance:.3g}")


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
