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

FEW_CLUSTERS = 20
"""Below this many recipes, intervals of R² and tau come from a jackknife over recipes with t quantiles rather
than a bootstrap over recipes."""
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


def _jackknife_scores(y, predicted, members, alpha) -> dict:
    """``regression_scores`` over few recipes: delete-one-recipe jackknife standard errors with t quantiles of
    G - 1 degrees of freedom (Cameron & Miller 2015: few clusters), the interval and the two-sided p from the same
    t statistic, so they never disagree. The out-of-fold predictions are held fixed (the refit's own variation
    is not in the interval); a bootstrap over 5–8 recipes instead resamples the target's mean away (R² bounds
    of -6.8)."""
    g = len(members)

    def rest(k):
        return np.concatenate([m for j, m in enumerate(members) if j != k])

    def pack(name, estimate, replicates, high):
        se = np.sqrt((g - 1) / g * np.sum((replicates - replicates.mean()) ** 2))
        out = {name: float(estimate)}
        for key, level in ((f"{name}_ci", alpha), (f"{name}_eq", 2 * alpha)):
            half = scipy.stats.t.ppf(1 - level / 2, g - 1) * se
            out[key] = (float(max(estimate - half, -high if name == "tau" else -np.inf)), float(min(estimate + half, high)))
        out[f"{name}_p"] = float(2 * scipy.stats.t.sf(abs(estimate) / se, g - 1)) if se > 0 else np.nan
        return out

    scores = pack("r2", r2(y, predicted), np.array([r2(y[rest(k)], predicted[rest(k)]) for k in range(g)]), 1.0)
    scores["tau"] = None
    if np.ptp(predicted) == 0:
        return scores
    taus = np.array([scipy.stats.kendalltau(y[rest(k)], predicted[rest(k)]).statistic for k in range(g)])
    return {**scores, **pack("tau", scipy.stats.kendalltau(y, predicted).statistic, taus, 1.0)}


def regression_scores(y, predicted, clusters, n_bootstrap: int, alpha: float, rng, within=None) -> dict:
    """R² and Kendall tau of out-of-fold ``predicted`` with bootstrap intervals over ``clusters`` (recipes;
    trials resampled within the ``within`` strata when the clusters are single trials).

    With 3 to ``FEW_CLUSTERS`` - 1 recipes: ``_jackknife_scores``. Keys: ``r2``, ``r2_ci`` (1 - alpha), ``r2_eq`` (1 - 2 alpha), ``r2_p`` (two-sided bootstrap p of 0), and
    the same for ``tau``; ``tau`` is None when the predictions are constant (no ranking).
    """
    clusters = np.asarray(clusters)
    members = stratum_indices(clusters)
    if 2 < len(members) < FEW_CLUSTERS:
        return _jackknife_scores(y, predicted, members, alpha)
    if within is not None and np.unique(clusters).size == clusters.size:
        weights = resample_within(stratum_indices(within), n_bootstrap, rng)
    else:
        weights = resample_clusters(clusters, n_bootstrap, rng)
    boot_r2 = r2(y[None, :], predicted[None, :], weights)
    scores = dict(r2=float(r2(y, predicted)), r2_ci=interval(boot_r2, 1 - alpha),
                  r2_eq=interval(boot_r2, 1 - 2 * alpha), r2_p=bootstrap_p(boot_r2, 0.0), tau=None)
    if np.ptp(predicted) == 0:
        return scores
    boot_tau = []
    for _ in range(min(n_bootstrap, TAU_REPLICATES)):
        picks = np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
        boot_tau.append(scipy.stats.kendalltau(y[picks], predicted[picks]).statistic)
    boot_tau = np.array(boot_tau, float)
    scores.update(tau=float(scipy.stats.kendalltau(y, predicted).statistic), tau_ci=interval(boot_tau, 1 - alpha),
                  tau_eq=interval(boot_tau, 1 - 2 * alpha), tau_p=bootstrap_p(boot_tau, 0.0))
    return scores
