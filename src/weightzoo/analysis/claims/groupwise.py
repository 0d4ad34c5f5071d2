"""Claims 1–3, each test taking strata so that one function serves every scope.

Two forms of a claim:

- **group contrast** (the paper's form): high- against low-accuracy trials, pairs compared only inside a
  stratum. Claim 1 (and every metric of ``analysis.metrics`` with a claim): stratified Cliff's delta of a
  layer's weight std (negative supports). Claim 2: mean
  scale-free Wasserstein-1 distance between two high trials over that between two low trials (ratio < 1
  supports). A group contrast needs a stratum holding both groups; seeds of one recipe rarely fill two.
- **continuous form**, answerable at a fixed recipe: the rank correlation of accuracy with the property,
  Spearman's rho within each stratum, pooled over strata with weights ∝ n (strata with constant accuracy,
  or fewer than ``MIN_STRATUM`` usable trials, left out and counted). Claim 1: with the layer's weight std
  (negative supports). Claim 2: with the trial's mean distance to the other trials of its stratum
  (negative: better trials sit closer together). Claim 3: with mean node strength (positive for DNN/CNN,
  negative for ViT attention). The row shows in how many strata rho has the pooled sign.

Distances (claim 2) are W1 between two trials' weight distributions divided by the pair's RMS weight std
(scale-free: a larger init does not by itself make trials "less alike"), and only ever between trials of
the same architecture (layers of the same shape: the sampling floor of W1 grows as layers shrink).
Tests are permutation tests within strata (two-sided); intervals are score intervals (Cliff's delta, rho:
never of zero width at complete separation) or a bootstrap within stratum x group (distance ratio).
"""

import numpy as np
import scipy.stats
from scipy.spatial.distance import pdist, squareform

from weightzoo.analysis.claims.testing import (
    POWER_Z,
    bootstrap_test,
    cliffs_delta_interval,
    correlation_interval,
    delong_variance,
    detectable,
    interval,
    permutation_p,
    permute_within,
    resample_within,
    stratum_indices,
)

MIN_STRATUM = 5
"""Fewest usable trials a stratum needs for its rank correlation (the variance uses n - 3)."""


def _quadratic(left, matrix, right):
    """Row-wise left_b^T M right_b for a batch of weight vectors, through one BLAS product (einsum would loop)."""
    return np.einsum("bj,bj->b", left @ matrix, right)


def _cells_text(labels, index_list, names, strata) -> str:
    """'h5|1.0: high 3, low 4; ...' (n per group and stratum), at most 8 strata named."""
    strata = np.asarray(strata)
    parts = []
    for index in index_list[:8]:
        counts = ", ".join(f"{g} {int(np.sum(labels[index] == g))}" for g in names)
        parts.append(f"{strata[index[0]]}: {counts}")
    more = f"; and {len(index_list) - 8} more" if len(index_list) > 8 else ""
    return "; ".join(parts) + more


# ------------------------------------------------------------------------------------------- group contrasts


def _compared(finite, labels, strata, min_group, effect_name, expected_sign):
    """The high and low trials of every stratum holding both (one index array per stratum), the labels with
    non-finite trials blanked, and the row so far: with a ``reason`` when nothing can be compared."""
    labels = np.where(finite, labels, "")
    mixed = [index for index in stratum_indices(strata)
             if (labels[index] == "high").any() and (labels[index] == "low").any()]
    compared = [index[np.isin(labels[index], ("high", "low"))] for index in mixed]
    n_high, n_low = _group_counts(labels, mixed)
    base = dict(effect_name=effect_name, expected_sign=expected_sign, n=n_high + n_low, n_strata=len(mixed),
                cells=_cells_text(labels, compared, ("high", "low"), strata),
                detail=f"n_high={n_high}, n_low={n_low} in {len(mixed)} strata holding both")
    reason = _untestable_reason(labels, strata, mixed, min_group)
    return compared, labels, dict(base, reason=reason) if reason else base


def _group_counts(labels, mixed):
    index = np.concatenate(mixed) if mixed else np.zeros(0, int)
    return int(np.sum(labels[index] == "high")), int(np.sum(labels[index] == "low"))


def _untestable_reason(labels, strata, mixed, min_group):
    n_high, n_low = _group_counts(labels, mixed)
    n_strata = len(stratum_indices(strata))
    total_high, total_low = int(np.sum(labels == "high")), int(np.sum(labels == "low"))
    if not mixed and n_strata > 1 and total_high and total_low:
        return ("no stratum holds both high and low trials: the group contrast cannot be separated from the "
                f"recipe (high {total_high}, low {total_low} trials, each group in other strata); "
                "the continuous form of the claim answers at a fixed recipe")
    if min(n_high, n_low) < min_group:
        where = " within strata holding both" if n_strata > 1 else ""
        return f"fewer than {min_group} trials in a group{where} (high {n_high}, low {n_low})"
    return ""


def _delta_of(values, is_high, compared):
    """Stratified Cliff's delta (high minus low, pairs within a stratum) for (b, trials) bool labels."""
    n_pairs = sum(int(is_high[0, index].sum()) * int((~is_high[0, index]).sum()) for index in compared)
    total = 0.0
    for index in compared:
        r = scipy.stats.rankdata(values[index])
        h = is_high[:, index]
        n_h = h.sum(axis=1)
        total = total + 2 * ((h * r).sum(axis=1) - n_h * (n_h + 1) / 2) - n_h * (index.size - n_h)
    return total / n_pairs


def delta_point(values, labels, strata) -> float:
    """Stratified Cliff's delta of ``values`` (high vs low) over strata holding both; NaN if none."""
    finite = np.isfinite(values)
    labels = np.where(finite, labels, "")
    compared = [index[np.isin(labels[index], ("high", "low"))] for index in stratum_indices(strata)
                if (labels[index] == "high").any() and (labels[index] == "low").any()]
    if not compared:
        return np.nan
    return float(_delta_of(values, (labels == "high")[None, :], compared)[0])


def group_contrast(values, labels, strata, min_group, n_permutations, alpha, rng, sign=-1, name="std") -> dict:
    """Claim 1 and every registered metric's claim, group contrast, one layer: stratified Cliff's delta of
    ``values`` (high vs low); ``sign`` is the expected one (-1: lower in the high group)."""
    compared, labels, base = _compared(np.isfinite(values), labels, strata, min_group, "cliffs_delta", sign)
    if base.get("reason"):
        return base
    is_high = labels == "high"
    observed = float(_delta_of(values, is_high[None, :], compared)[0])
    null = _delta_of(values, permute_within(is_high, compared, n_permutations, rng), compared)
    sizes = [(int(is_high[index].sum()), int((~is_high[index]).sum())) for index in compared]
    spread = delong_variance(values, is_high, compared)
    used = np.concatenate(compared)
    medians = (f"median {name} high={np.median(values[used][is_high[used]]):.4g}, "
               f"low={np.median(values[used][~is_high[used]]):.4g}")
    return dict(
        base, value=observed, effect_size=observed, p_value=permutation_p(null, observed),
        ci=cliffs_delta_interval(observed, sizes, 1 - alpha, spread),
        eq=cliffs_delta_interval(observed, sizes, 1 - 2 * alpha, spread),
        detectable=detectable(null, alpha), detail=f"{base['detail']}, {medians}",
    )


def scaled_distances(quantiles: np.ndarray, neighbourhood, rng, max_trials: int = 1000):
    """Scale-free W1 distances of one layer: (trials, trials) matrix, NaN between trials of different
    ``neighbourhood`` (architecture) and for trials left out of a random subset of ``max_trials``.

    W1 of two quantile functions is the mean |difference| over the levels; divided by the pair's RMS std.
    """
    n = quantiles.shape[0]
    finite = np.isfinite(quantiles).all(axis=1)
    chosen = np.flatnonzero(finite)
    if chosen.size > max_trials:  # distances are O(n^2 levels): a random subset keeps large zoos fast
        chosen = np.sort(rng.choice(chosen, size=max_trials, replace=False))
    distances = np.full((n, n), np.nan)
    values = quantiles.astype(np.float64)
    std = values.std(axis=1)
    neighbourhood = np.asarray(neighbourhood)
    for index in stratum_indices(neighbourhood[chosen]):
        index = chosen[index]
        w1 = squareform(pdist(values[index], "cityblock")) / values.shape[1]
        scale = np.sqrt((std[index][:, None] ** 2 + std[index][None, :] ** 2) / 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            distances[np.ix_(index, index)] = np.where(scale > 0, w1 / scale, 0.0)
    np.fill_diagonal(distances, np.nan)
    return distances, int(chosen.size)


def _pair_masks(distances, strata):
    """Within-stratum pairs with a distance: (mask, distances with 0 elsewhere)."""
    strata = np.asarray(strata)
    same = (strata[:, None] == strata[None, :]) & np.isfinite(distances)
    return same.astype(float), np.where(same, distances, 0.0)


def _alike_strata(has_distance, labels, strata) -> list[np.ndarray]:
    """Strata holding at least two high and two low trials with distances (a within-group pair each): the
    high and low trials of each, one index array per stratum."""
    labels = np.where(has_distance, labels, "")
    out = []
    for index in stratum_indices(strata):
        high, low = np.sum(labels[index] == "high"), np.sum(labels[index] == "low")
        if high >= 2 and low >= 2:
            out.append(index[np.isin(labels[index], ("high", "low"))])
    return out


def _stratum_log_ratios(distances, is_high, compared, weights=None):
    """Per stratum log(mean high-pair distance / mean low-pair distance), (b, strata), under bootstrap
    ``weights`` (b, trials) or the observed labelling (b = 1); pairs of one trial with its copy have no distance."""
    out = []
    for index in compared:
        d = distances[np.ix_(index, index)]
        same = np.isfinite(d).astype(float)
        masked = np.where(same > 0, d, 0.0)
        w = np.ones((1, index.size)) if weights is None else weights[:, index]
        h = w * is_high[index]
        lo = w * ~is_high[index]
        with np.errstate(invalid="ignore", divide="ignore"):
            high = _quadratic(h, masked, h) / _quadratic(h, same, h)
            low = _quadratic(lo, masked, lo) / _quadratic(lo, same, lo)
            out.append(np.log(high) - np.log(low))
    return np.column_stack(out)


def _pooled_ratio(log_ratios, sizes):
    """exp(sum_s w_s log r_s), weights ∝ trials compared per stratum, over strata defined in each replicate."""
    weights = np.where(np.isfinite(log_ratios), sizes[None, :], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.exp(np.nansum(weights * np.where(np.isfinite(log_ratios), log_ratios, 0.0), axis=1)
                      / weights.sum(axis=1))


def ratio_point(distances, labels, strata) -> float:
    """Claim 2's ratio: within each stratum holding two or more high and low trials, mean high-pair over mean
    low-pair distance; geometric mean over strata, weights ∝ trials compared. NaN when no stratum qualifies."""
    compared = _alike_strata(np.isfinite(distances).any(axis=1), labels, strata)
    if not compared:
        return np.nan
    sizes = np.array([i.size for i in compared], float)
    return float(_pooled_ratio(_stratum_log_ratios(distances, labels == "high", compared), sizes)[0])


def ratio_replicates(distances, labels, strata, weights) -> np.ndarray:
    """``ratio_point`` under (b, trials) bootstrap ``weights`` (counts), vectorised over the replicates."""
    compared = _alike_strata(np.isfinite(distances).any(axis=1), labels, strata)
    if not compared:
        return np.full(weights.shape[0], np.nan)
    sizes = np.array([i.size for i in compared], float)
    return _pooled_ratio(_stratum_log_ratios(distances, labels == "high", compared, weights), sizes)


def more_alike(distances, labels, strata, min_group, n_permutations, n_bootstrap, alpha, rng) -> dict:
    """Claim 2, group contrast, one layer: within each stratum the mean scale-free distance of two high trials
    over that of two low trials, only in strata with at least two trials of each group (pairs never cross
    strata), pooled as a geometric mean with weights ∝ trials compared. The test and both intervals come from
    one stratified bootstrap (trials resampled within stratum x group): p < alpha exactly when the 1 - alpha
    interval excludes 1 (``bootstrap_test``). ``n_permutations`` is unused (kept for one signature)."""
    has_distance = np.isfinite(distances).any(axis=1)
    _, labels, base = _compared(has_distance, labels, strata, min_group, "w1_ratio_high_low", -1)
    compared = _alike_strata(has_distance, labels, strata)
    n_high = int(sum(np.sum(labels[i] == "high") for i in compared))
    n_low = int(sum(np.sum(labels[i] == "low") for i in compared))
    base = dict(base, n=n_high + n_low, n_strata=len(compared),
                cells=_cells_text(labels, compared, ("high", "low"), strata),
                detail=f"n_high={n_high}, n_low={n_low} in {len(compared)} strata holding two or more of each")
    if base.get("reason"):
        return base
    if min(n_high, n_low) < min_group:
        return dict(base, reason=(f"fewer than {min_group} trials in a group within strata holding two or more of "
                                  f"each (high {n_high}, low {n_low}): pairs are compared within a stratum only"))
    is_high = labels == "high"
    sizes = np.array([i.size for i in compared], float)
    observed = float(_pooled_ratio(_stratum_log_ratios(distances, is_high, compared), sizes)[0])
    cells = [index[labels[index] == g] for index in compared for g in ("high", "low")]
    weights = resample_within(cells, n_bootstrap, rng)
    boot = _pooled_ratio(_stratum_log_ratios(distances, is_high, compared, weights), sizes)
    p, ci = bootstrap_test(boot, 1.0, alpha)
    _, eq = bootstrap_test(boot, 1.0, 2 * alpha)
    per_stratum = np.exp(_stratum_log_ratios(distances, is_high, compared)[0])
    spread = np.log(boot[np.isfinite(boot) & (boot > 0)])
    return dict(
        base, value=observed, effect_size=observed, p_value=p, ci=ci, eq=eq,
        detectable=float(np.expm1((scipy.stats.norm.ppf(1 - alpha / 2) + POWER_Z) * spread.std())) if spread.size > 1 else np.nan,
        detail=(f"{base['detail']}; ratio per stratum {np.min(per_stratum):.3g} to {np.max(per_stratum):.3g}, "
                f"geometric mean weighted by trials compared; test and interval from one stratified bootstrap"),
    )


def distance_to_stratum(distances, strata) -> np.ndarray:
    """Each trial's mean scale-free distance to the other trials of its stratum (NaN without any)."""
    same, masked = _pair_masks(distances, strata)
    with np.errstate(invalid="ignore", divide="ignore"):
        return masked.sum(axis=1) / same.sum(axis=1)


# --------------------------------------------------------------------------------------- continuous forms


def _usable_strata(x, y, strata):
    """Strata of >= MIN_STRATUM trials where neither x nor y is constant; counts of those left out."""
    used, constant, small = [], 0, 0
    for index in stratum_indices(strata):
        if index.size < MIN_STRATUM:
            small += 1
        elif np.ptp(y[index]) == 0 or np.ptp(x[index]) == 0:
            constant += 1
        else:
            used.append(index)
    return used, constant, small


def _centred_ranks(values, index_list):
    out = np.zeros(values.shape, float)
    for index in index_list:
        r = scipy.stats.rankdata(values[..., index], axis=-1)
        out[..., index] = r - r.mean(axis=-1, keepdims=True)
    return out


def _pooled_rho(rx, ry, index_list, weights):
    """sum_s w_s rho_s for centred ranks (last axis = trials); ry may carry a leading batch axis."""
    total = 0.0
    for index, w in zip(index_list, weights):
        a, b = rx[index], ry[..., index]
        total = total + w * (b @ a) / np.sqrt((a @ a) * (b**2).sum(axis=-1))
    return total


def rho_point(x, y, strata) -> float:
    """Rank correlation pooled over usable strata, weights ∝ n (NaN when no stratum is usable)."""
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, s = x[keep], y[keep], np.asarray(strata)[keep]
    used, _, _ = _usable_strata(x, y, s)
    if not used:
        return np.nan
    sizes = np.array([i.size for i in used], float)
    return float(_pooled_rho(_centred_ranks(x, used), _centred_ranks(y, used), used, sizes / sizes.sum()))


def rank_association(x, acc, labels, strata, sign, n_permutations, alpha, rng, what, drawn=None,
                     drawn_names=()) -> dict:
    """Continuous form: accuracy vs ``x`` (``what`` names it), rho within strata pooled ∝ n, over converged
    trials (group ``non`` left out: chance-level accuracies carry no ranking). ``drawn``: (trials, k) recipe
    variables drawn per trial, named ``drawn_names``: adjusted for by a smooth fit (``adjust``) beside the
    ``strata``, which then only hold the grid variables."""
    keep = (labels != "non") & np.isfinite(x) & np.isfinite(acc)
    if drawn is not None and np.size(drawn):
        from weightzoo.analysis.claims.adjust import adjusted_association

        drawn = np.asarray(drawn, float).reshape(len(keep), -1)
        keep &= np.isfinite(drawn).all(axis=1)
        return adjusted_association(x[keep], acc[keep], np.asarray(strata)[keep], drawn[keep], drawn_names, sign,
                                    n_permutations, alpha, rng, what)
    x, y, s = x[keep], acc[keep], np.asarray(strata)[keep]
    base = dict(effect_name="spearman_rho", expected_sign=sign, n=0, n_strata=0)
    used, constant, small = _usable_strata(x, y, s)
    left = []
    if constant:
        left.append(f"{constant} with constant accuracy or {what}")
    if small:
        left.append(f"{small} with fewer than {MIN_STRATUM} converged trials")
    left_text = f"; strata left out: {', '.join(left)}" if left else ""
    if not used:
        members = stratum_indices(s)
        singletons = bool(members) and max(map(len, members)) < 2
        what_const = "accuracy" if y.size and all(np.ptp(y[i]) == 0 for i in members) else "no stratum"
        reason = ("every stratum has one trial (hyperparameters drawn per trial): no seeds of a recipe to compare; "
                  "a list of values with several seeds each would answer it" if singletons
                  else f"accuracy is the same within every stratum{left_text}" if what_const == "accuracy"
                  else f"no stratum with {MIN_STRATUM} or more converged trials varying in accuracy and {what}{left_text}")
        return dict(base, n=int(y.size), reason=reason)
    sizes = np.array([i.size for i in used], float)
    weights = sizes / sizes.sum()
    rx, ry = _centred_ranks(x, used), _centred_ranks(y, used)
    rho = float(_pooled_rho(rx, ry, used, weights))
    per_stratum = np.array([_pooled_rho(rx, ry, [i], [1.0]) for i in used])
    null = _pooled_rho(rx, permute_within(ry, used, n_permutations, rng), used, weights)
    agree = int(np.sum(np.sign(per_stratum) == np.sign(rho))) if rho != 0 else 0
    heterogeneity = _heterogeneity_p(per_stratum, sizes)
    het_text = f"; recipes agree? Cochran's Q p={heterogeneity:.3g}" if np.isfinite(heterogeneity) else ""
    return dict(
        base, value=rho, effect_size=rho, n=int(sizes.sum()), n_strata=len(used),
        cells=_cells_text(np.full(s.size, "n"), used, ("n",), s), p_value=permutation_p(null, rho),
        ci=correlation_interval(rho, sizes, 1 - alpha), eq=correlation_interval(rho, sizes, 1 - 2 * alpha),
        detectable=detectable(null, alpha), heterogeneity_p=heterogeneity,
        detail=(f"rho of accuracy and {what} within {len(used)} strata, weights ∝ n; same sign in {agree} of "
                f"{len(used)} (per stratum {np.min(per_stratum):.2f} to {np.max(per_stratum):.2f}){het_text}"
                f"{left_text}"),
    )


def _heterogeneity_p(rho, sizes) -> float:
    """Cochran's Q test that the strata share one correlation (Fisher z, Bonett–Wright variances); NaN with one
    stratum. A small p means the recipes disagree, so a pooled value near 0 is no evidence of no effect."""
    if len(rho) < 2:
        return np.nan
    z = np.arctanh(np.clip(rho, -0.999999, 0.999999))
    weight = (sizes - 3) / (1 + np.asarray(rho) ** 2 / 2)
    centre = np.sum(weight * z) / np.sum(weight)
    return float(scipy.stats.chi2.sf(np.sum(weight * (z - centre) ** 2), len(rho) - 1))


def expected_strength_sign(model, layer) -> int:
    from weightzoo.models import family

    return family(model).strength_sign(layer)
