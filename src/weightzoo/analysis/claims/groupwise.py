"""Claims 1–3: high- vs low-accuracy trials, each test taking strata so that one function serves every scope.

1. ``lower_std``: stratified Cliff's delta of a layer's weight std, high vs low (the pairs compared are
   those within a stratum; negative supports the claim). Permutation p-value within strata; CI by
   resampling within stratum x group. With one stratum this is the plain Cliff's delta (Mann–Whitney).
2. ``more_alike``: mean Wasserstein-1 distance between the weight distributions of two high trials over
   that of two low trials, counting pairs within a stratum only (ratio < 1 supports).
3. ``strength_accuracy``: rank correlation of mean node strength and accuracy over converged trials, with
   ranks taken and centred within each stratum (architecture fixed effects); plain Spearman with one
   stratum. The paper expects a rise for DNN/CNN and a fall for ViT attention layers.
"""

import numpy as np
import scipy.stats
from scipy.spatial.distance import pdist, squareform

from weightzoo.analysis.claims.testing import (
    detectable,
    interval,
    permutation_p,
    permute_within,
    resample_within,
    stratum_indices,
)


def _quadratic(left, matrix, right):
    """Row-wise left_b^T M right_b for a batch of weight vectors, through one BLAS product (einsum would loop)."""
    return np.einsum("bj,bj->b", left @ matrix, right)


def _compared(finite, labels, strata, min_group, effect_name):
    """The high and low trials of every stratum holding both (one index array per stratum), the labels
    with non-finite trials blanked, and the row so far: with a ``reason`` when nothing can be compared."""
    labels = np.where(finite, labels, "")
    mixed = [index for index in stratum_indices(strata)
             if (labels[index] == "high").any() and (labels[index] == "low").any()]
    n_high, n_low = _group_counts(labels, mixed)
    base = dict(effect_name=effect_name, n=n_high + n_low, detail=f"n_high={n_high}, n_low={n_low}")
    reason = _untestable_reason(labels, strata, mixed, min_group)
    compared = [index[np.isin(labels[index], ("high", "low"))] for index in mixed]
    return compared, labels, dict(base, reason=reason) if reason else base


def _group_counts(labels, mixed):
    index = np.concatenate(mixed) if mixed else np.zeros(0, int)
    return int(np.sum(labels[index] == "high")), int(np.sum(labels[index] == "low"))


def _untestable_reason(labels, strata, mixed, min_group):
    n_high, n_low = _group_counts(labels, mixed)
    n_strata = len(stratum_indices(strata))
    if not mixed and n_strata > 1:
        total_high, total_low = int(np.sum(labels == "high")), int(np.sum(labels == "low"))
        if total_high and total_low:
            return ("no stratum holds both high and low trials: the difference cannot be separated from "
                    f"the stratifying variable (high {total_high}, low {total_low} trials in different strata)")
    if min(n_high, n_low) < min_group:
        where = " within strata holding both" if n_strata > 1 else ""
        return f"fewer than {min_group} trials in a group{where} (high {n_high}, low {n_low})"
    return ""


def lower_std(std, labels, strata, min_group, n_permutations, n_bootstrap, alpha, rng) -> dict:
    """Claim 1 for one layer: stratified Cliff's delta of ``std`` (high vs low)."""
    compared, labels, base = _compared(np.isfinite(std), labels, strata, min_group, "cliffs_delta")
    if base.get("reason"):
        return base
    is_high = labels == "high"
    ranks = [scipy.stats.rankdata(std[index]) for index in compared]
    n_pairs = sum(int(is_high[index].sum()) * int((~is_high[index]).sum()) for index in compared)

    def delta(high):  # (b, trials) bool -> Cliff's delta over within-stratum pairs, from midranks
        total = 0.0
        for index, r in zip(compared, ranks):
            h = high[:, index]
            n_h = h.sum(axis=1)
            total = total + 2 * ((h * r).sum(axis=1) - n_h * (n_h + 1) / 2) - n_h * (index.size - n_h)
        return total / n_pairs

    observed = float(delta(is_high[None, :])[0])
    null = delta(permute_within(is_high, compared, n_permutations, rng))
    p_less, p_greater = permutation_p(null, observed)
    cells = [index[is_high[index]] for index in compared] + [index[~is_high[index]] for index in compared]
    weights = resample_within(cells, n_bootstrap, rng)
    num, den = np.zeros(n_bootstrap), np.zeros(n_bootstrap)
    for index in compared:
        high, low = index[is_high[index]], index[~is_high[index]]
        signs = np.sign(std[high][:, None] - std[low][None, :])
        num += _quadratic(weights[:, high], signs, weights[:, low])
        den += weights[:, high].sum(axis=1) * weights[:, low].sum(axis=1)
    ci = interval(num / den, alpha)
    used = np.concatenate(compared)
    medians = f"median std high={np.median(std[used][is_high[used]]):.4g}, low={np.median(std[used][~is_high[used]]):.4g}"
    return dict(
        base, value=observed, effect_size=observed, ci_low=ci[0], ci_high=ci[1], p_value=p_less, p_opposite=p_greater,
        detectable=detectable(null, alpha), detail=f"{base['detail']}, {medians}",
    )


def more_alike(quantiles, labels, strata, min_group, n_permutations, n_bootstrap, alpha, rng, max_trials=1000) -> dict:
    """Claim 2 for one layer: mean within-group W1 distance of high over low trials, within-stratum pairs."""
    compared, labels, base = _compared(np.isfinite(quantiles).all(axis=1), labels, strata, min_group,
                                       "w1_ratio_high_low")
    if base.get("reason"):
        return base
    chosen = np.concatenate(compared)
    if chosen.size > max_trials:  # distances are O(n^2 levels): a random subset keeps large zoos fast
        chosen = np.sort(rng.choice(chosen, size=max_trials, replace=False))
    values, lab, strat = quantiles[chosen].astype(np.float64), labels[chosen], np.asarray(strata)[chosen]
    same = (strat[:, None] == strat[None, :]) & ~np.eye(chosen.size, dtype=bool)
    distances = np.zeros((chosen.size, chosen.size))
    for index in stratum_indices(strat):  # only within-stratum pairs are ever used; O(n^2) memory, not n^2 x levels
        distances[np.ix_(index, index)] = squareform(pdist(values[index], "cityblock")) / values.shape[1]
    masked = distances * same

    def means(w):  # w: (b, n) weights of the high trials; low trials are the complement within `chosen`
        high = _quadratic(w, masked, w) / _quadratic(w, same, w)
        v = 1.0 - w
        low = _quadratic(v, masked, v) / _quadratic(v, same, v)
        return high, low

    is_high = (lab == "high").astype(float)
    strata_index = stratum_indices(strat)
    with np.errstate(invalid="ignore", divide="ignore"):
        high, low = means(is_high[None, :])
        observed = float(high[0] / low[0]) if low[0] > 0 else np.nan
        perm_high, perm_low = means(permute_within(is_high, strata_index, n_permutations, rng))
        null = perm_high / perm_low
        p_less, p_greater = permutation_p(null, observed)
        cells = [index[lab[index] == g] for index in strata_index for g in ("high", "low")]
        weights = resample_within([c for c in cells if c.size], n_bootstrap, rng)
        w_high, w_low = weights * is_high, weights * (1 - is_high)
        boot_high = _quadratic(w_high, masked, w_high) / _quadratic(w_high, same, w_high)
        boot_low = _quadratic(w_low, masked, w_low) / _quadratic(w_low, same, w_low)
        ci = interval(boot_high / boot_low, alpha)
    subset = f", {chosen.size} trials sampled" if chosen.size < base["n"] else ""
    return dict(
        base, value=float(high[0]), effect_size=observed, ci_low=ci[0], ci_high=ci[1], p_value=p_less,
        p_opposite=p_greater, detectable=detectable(null, alpha),
        detail=f"{base['detail']}{subset}, mean W1 high={high[0]:.4g}, low={low[0]:.4g}, levels={values.shape[1]}",
    )


def _centred_ranks(values, strata_index):
    out = np.zeros(values.shape, float)
    for index in strata_index:
        r = scipy.stats.rankdata(values[..., index], axis=-1)
        out[..., index] = r - r.mean(axis=-1, keepdims=True)
    return out


def _rank_correlation(rx, ry):
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=-1) / np.sqrt((rx**2).sum(axis=-1) * (ry**2).sum(axis=-1))


def strength_accuracy(strength, acc, labels, strata, sign, n_permutations, n_bootstrap, alpha, rng) -> dict:
    """Claim 3 for one layer: within-stratum rank correlation of mean node strength and accuracy."""
    keep = (labels != "non") & np.isfinite(strength) & np.isfinite(acc)
    x, y, s = strength[keep], acc[keep], np.asarray(strata)[keep]
    n = int(keep.sum())
    base = dict(effect_name="spearman_rho", n=n)
    strata_index = [i for i in stratum_indices(s) if i.size >= 3]
    used = np.concatenate(strata_index) if strata_index else np.zeros(0, int)
    if used.size < 3:
        return dict(base, reason=f"only {used.size} converged trials with finite weights in strata of 3 or more")
    if all(np.ptp(y[i]) == 0 for i in strata_index) or all(np.ptp(x[i]) == 0 for i in strata_index):
        what = "accuracy" if all(np.ptp(y[i]) == 0 for i in strata_index) else "node strength"
        where = " within every stratum" if len(strata_index) > 1 else " in every trial"
        return dict(base, reason=f"{what} is the same{where}")
    # re-index onto the used trials
    remap = {old: new for new, old in enumerate(used)}
    strata_index = [np.array([remap[i] for i in index]) for index in strata_index]
    x, y = x[used], y[used]
    rx, ry = _centred_ranks(x, strata_index), _centred_ranks(y, strata_index)
    rho = float(_rank_correlation(rx, ry))
    shuffled = permute_within(np.arange(y.size), strata_index, n_permutations, rng)
    null = _rank_correlation(rx[None, :], ry[shuffled])
    p_less, p_greater = permutation_p(null, rho)
    picks = np.concatenate([rng.choice(index, size=(n_bootstrap, index.size)) for index in strata_index], axis=1)
    bounds = np.cumsum([0] + [index.size for index in strata_index])
    sample_strata = [np.arange(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    ci = interval(_rank_correlation(_centred_ranks(x[picks], sample_strata), _centred_ranks(y[picks], sample_strata)), alpha)
    values = dict(base, value=rho, effect_size=rho, ci_low=ci[0], ci_high=ci[1], n=int(used.size),
                  detectable=detectable(null, alpha))
    if sign == 0:
        return dict(values, reason="the paper makes no claim for this layer",
                    detail=f"two-sided p={min(1.0, 2 * min(p_less, p_greater)):.3g}")
    p_support, p_opposite = (p_greater, p_less) if sign > 0 else (p_less, p_greater)
    direction = "rho > 0 expected" if sign > 0 else "rho < 0 expected (ViT attention)"
    return dict(values, p_value=p_support, p_opposite=p_opposite, detail=direction)


def expected_strength_sign(model, layer) -> int:
    if model == "vit":
        return -1 if "attn" in layer else 0
    return 1
