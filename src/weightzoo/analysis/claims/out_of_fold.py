"""Gradient boosting scored out of fold: the regressor, its out-of-fold predictions, and R² and Kendall tau of
those predictions with bootstrap intervals over recipes.

Shared by claims 4–5 (``prediction``) and the prediction benchmark (``analysis.benchmark``). The regressor is
scikit-learn's ``HistGradientBoostingRegressor``, a histogram gradient-boosting machine after LightGBM, which
Unterthiner et al. (2020) used; it takes missing feature values (NaN) as they come.
"""

import numpy as np
import scipy.stats
from sklearn.ensemble import HistGradientBoostingRegressor

from weightzoo.analysis.claims.testing import bootstrap_p, interval, resample_clusters, resample_within, stratum_indices

TAU_REPLICATES = 199
"""Most bootstrap replicates of Kendall tau (O(n log n) each; R² takes every replicate, vectorised)."""


def leaf_size(n: int) -> int:
    """Fewest trials per leaf: scikit-learn's default of 20 leaves no tree to grow on a small zoo."""
    return int(min(20, max(2, n // 10)))


def regressor(n: int, max_iter: int, seed: int, max_bins: int = 255) -> HistGradientBoostingRegressor:
    """The gradient-boosting regressor for ``n`` training trials (``max_bins``: histogram bins per feature,
    scikit-learn's and LightGBM's default 255)."""
    return HistGradientBoostingRegressor(max_iter=max_iter, min_samples_leaf=leaf_size(n), max_bins=max_bins,
                                         random_state=seed)


def cross_val_predict(model, X, y, splitter, groups=None) -> np.ndarray:
    """Out-of-fold predictions of ``model`` on the folds of ``splitter`` (``split(X, y, groups)``)."""
    predicted = np.empty(y.shape, dtype=y.dtype)
    for train, test in splitter.split(X, y, groups):
        predicted[test] = model.fit(X[train], y[train]).predict(X[test])
    return predicted


def r2(y, predicted, weights=None):
    """R² of ``predicted`` against ``y`` (weighted by bootstrap ``weights`` along the last axis, if given)."""
    weights = np.ones_like(y) if weights is None else weights
    mean = np.sum(weights * y, axis=-1, keepdims=True) / np.sum(weights, axis=-1, keepdims=True)
    residual = np.sum(weights * (y - predicted) ** 2, axis=-1)
    total = np.sum(weights * (y - mean) ** 2, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - residual / total


def regression_scores(y, predicted, clusters, n_bootstrap: int, alpha: float, rng, within=None) -> dict:
    """R² and Kendall tau of out-of-fold ``predicted`` with bootstrap intervals over ``clusters`` (recipes;
    trials resampled within the ``within`` strata when the clusters are single trials).

    Keys: ``r2``, ``r2_ci`` (1 - alpha), ``r2_eq`` (1 - 2 alpha), ``r2_p`` (two-sided bootstrap p of 0), and
    the same for ``tau``; ``tau`` is None when the predictions are constant (no ranking).
    """
    clusters = np.asarray(clusters)
    if within is not None and np.unique(clusters).size == clusters.size:
        weights = resample_within(stratum_indices(within), n_bootstrap, rng)
    else:
        weights = resample_clusters(clusters, n_bootstrap, rng)
    boot_r2 = r2(y[None, :], predicted[None, :], weights)
    scores = dict(r2=float(r2(y, predicted)), r2_ci=interval(boot_r2, 1 - alpha),
                  r2_eq=interval(boot_r2, 1 - 2 * alpha), r2_p=bootstrap_p(boot_r2, 0.0), tau=None)
    if np.ptp(predicted) == 0:
        return scores
    members = stratum_indices(clusters)
    boot_tau = []
    for _ in range(min(n_bootstrap, TAU_REPLICATES)):
        picks = np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
        boot_tau.append(scipy.stats.kendalltau(y[picks], predicted[picks]).statistic)
    boot_tau = np.array(boot_tau, float)
    scores.update(tau=float(scipy.stats.kendalltau(y, predicted).statistic), tau_ci=interval(boot_tau, 1 - alpha),
                  tau_eq=interval(boot_tau, 1 - 2 * alpha), tau_p=bootstrap_p(boot_tau, 0.0))
    return scores
