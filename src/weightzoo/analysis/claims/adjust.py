"""Adjusting for recipe variables drawn per trial (a learning rate log-uniform per net, as in the Small CNN Zoo).

A recipe variable is **drawn** (continuous) when it is numeric and takes more than ``GRID_LEVELS`` distinct
values; otherwise it is a **grid** variable and the claims stratify by it (trials compared only within one
value). A drawn variable cannot be stratified (every trial has its own value), so it is adjusted for by a
smooth fit: the ranks of accuracy and of the weight property (ranked over the scope's trials) are each
regressed on grid-stratum indicators plus a cubic B-spline (``SPLINE_KNOTS`` uniform knots, the basis of
scikit-learn's ``SplineTransformer``) of every drawn variable on its rank scale (so log- and linear-uniform draws are treated
alike and an outlying value has no leverage), and the claim's statistic is the correlation of the two residuals:
a partial rank correlation that any smooth monotone or non-monotone dependence of both on the recipe leaves at 0.
Its test permutes the accuracy residuals within grid strata and refits (Freedman & Lane 1983), which keeps
the recipe's share of accuracy in place under the null; its interval is Fisher's z with variance
(1 + r²/2) / (n - 3 - k) for k adjusting columns (Bonett & Wright 2000).

Needs ``MIN_RESIDUAL`` trials beyond the fit's parameters; below that the row says so and how many trials would
answer it.
"""

import numpy as np
import scipy.stats
from scipy.interpolate import BSpline

from weightzoo.analysis.claims.testing import detectable, partial_correlation_interval, permutation_p, stratum_indices

GRID_LEVELS = 8
"""Most distinct values a numeric recipe variable may take and still count as a grid (stratified): a swept list
has a handful; a per-trial draw has one value per trial."""
SPLINE_KNOTS = 4
"""Knots of each drawn variable's cubic spline (5 columns: flexible enough for a saturating or U-shaped
dependence, few enough for 64 nets)."""
MIN_RESIDUAL = 10
"""Fewest trials beyond the fit's parameters (residual degrees of freedom) an adjusted answer needs."""


def split_recipe(features, keys) -> tuple[list[str], list[str]]:
    """``keys`` split into (grid, drawn) recipe variables of the trial coordinates of ``features``."""
    grid, drawn = [], []
    for key in keys:
        values = features[key].values
        numeric = np.issubdtype(values.dtype, np.number)
        (drawn if numeric and np.unique(values).size > GRID_LEVELS else grid).append(key)
    return grid, drawn


def spline_columns(values: np.ndarray) -> np.ndarray:
    """(..., trials, SPLINE_KNOTS + 1) cubic B-spline basis of one drawn variable on its rank scale (no constant
    column: the grid indicators hold it), over the last axis of ``values``: scikit-learn's ``SplineTransformer``
    basis (uniform knots on [0, 1], the last spline dropped) evaluated through scipy in one call, so a batch of
    bootstrap replicates costs one evaluation."""
    u = (scipy.stats.rankdata(values, axis=-1) - 0.5) / values.shape[-1]
    step = 1.0 / (SPLINE_KNOTS - 1)
    knots = np.linspace(-3 * step, 1 + 3 * step, SPLINE_KNOTS + 6)
    basis = BSpline.design_matrix(u.ravel(), knots, 3).toarray()[:, :-1]
    return basis.reshape(*u.shape, -1)


def design(strata, drawn: np.ndarray | None) -> np.ndarray:
    """Grid-stratum indicators (they hold the intercept) beside every drawn column's spline basis."""
    index = stratum_indices(strata)
    columns = np.zeros((len(strata), len(index)))
    for k, members in enumerate(index):
        columns[members, k] = 1.0
    if drawn is not None and drawn.size:
        columns = np.column_stack([columns] + [spline_columns(drawn[:, j]) for j in range(drawn.shape[1])])
    return columns


def residual_maker(z: np.ndarray):
    """(residualise, rank of z): residualise(v) removes the least-squares fit on z along the last axis."""
    q, r = np.linalg.qr(z)
    keep = np.abs(np.diag(r)) > 1e-10 * max(1.0, np.abs(r).max())
    q = q[:, keep]
    return (lambda v: v - (v @ q) @ q.T), int(keep.sum())


def batched_partial_rank(rx, ry, strata, drawn) -> np.ndarray:
    """Partial correlations of (b, n) rank arrays ``rx``, ``ry`` given (b, n) grid ``strata`` codes (integers) or
    (b, n) values of one ``drawn`` variable (a spline of its ranks beside an intercept): one per row, for the
    bootstrap replicates of the confounder test."""
    if drawn is not None:
        z = np.concatenate([np.ones(drawn.shape + (1,)), spline_columns(drawn)], axis=-1)
        q = np.linalg.qr(z)[0]
        ex = rx - np.einsum("bnp,bp->bn", q, np.einsum("bnp,bn->bp", q, rx))
        ey = ry - np.einsum("bnp,bp->bn", q, np.einsum("bnp,bn->bp", q, ry))
    else:
        onehot = (strata[..., None] == np.arange(int(strata.max()) + 1)).astype(float)
        counts = np.maximum(onehot.sum(axis=1), 1)
        ex = rx - np.einsum("bns,bs->bn", onehot, np.einsum("bns,bn->bs", onehot, rx) / counts)
        ey = ry - np.einsum("bns,bs->bn", onehot, np.einsum("bns,bn->bs", onehot, ry) / counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ex * ey).sum(axis=1) / np.sqrt((ex**2).sum(axis=1) * (ey**2).sum(axis=1))


def partial_rank(x, y, strata, drawn) -> tuple[float, int]:
    """(partial rank correlation of x and y given grid ``strata`` and ``drawn`` columns, residual df)."""
    residualise, rank = residual_maker(design(strata, drawn))
    ex, ey = residualise(scipy.stats.rankdata(x)), residualise(scipy.stats.rankdata(y))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(ex @ ey / np.sqrt((ex @ ex) * (ey @ ey))), x.size - rank


def adjusted_association(x, y, strata, drawn, drawn_names, sign, n_permutations, alpha, rng, what) -> dict:
    """Continuous form of a claim at a recipe held fixed where some recipe variables are drawn per trial: the
    partial rank correlation (module docstring), its Freedman–Lane test and its interval."""
    base = dict(effect_name="spearman_rho", expected_sign=sign, n=int(y.size), n_strata=len(stratum_indices(strata)))
    names = ", ".join(drawn_names)
    z = design(strata, drawn)
    residualise, rank = residual_maker(z)
    if y.size - rank < MIN_RESIDUAL:
        return dict(base, reason=(f"too few trials to adjust for the drawn recipe variables ({names}): {y.size} "
                                  f"trials for a fit of {rank} parameters ({base['n_strata']} grid strata and a "
                                  f"{SPLINE_KNOTS + 1}-column spline per drawn variable); {rank + MIN_RESIDUAL} "
                                  "trials, or a grid of values with several seeds each, would answer it"))
    if np.ptp(y) == 0 or np.ptp(x) == 0:
        return dict(base, reason=f"accuracy or {what} is constant")
    ex, ey = residualise(scipy.stats.rankdata(x)), residualise(scipy.stats.rankdata(y))
    norm_x, norm_y = np.sqrt(ex @ ex), np.sqrt(ey @ ey)
    if norm_x == 0 or norm_y == 0:
        return dict(base, reason=f"the recipe fit explains all of accuracy or {what}")
    rho = float(ex @ ey / (norm_x * norm_y))
    shuffled = np.broadcast_to(ey, (n_permutations, ey.size)).copy()
    for members in stratum_indices(strata):
        keys = rng.random((n_permutations, members.size))
        shuffled[:, members] = ey[members][np.argsort(keys, axis=1)]
    refit = residualise(shuffled)
    null = (refit @ ex) / (norm_x * np.sqrt((refit**2).sum(axis=1)))
    n_residual = y.size - rank
    return dict(
        base, value=rho, effect_size=rho, p_value=permutation_p(null, rho),
        ci=partial_correlation_interval(rho, n_residual, 1 - alpha),
        eq=partial_correlation_interval(rho, n_residual, 1 - 2 * alpha), detectable=detectable(null, alpha),
        cells=f"{base['n_strata']} grid strata; drawn: {names}",
        detail=(f"partial rank correlation of accuracy and {what} after a fit of both on {base['n_strata']} grid "
                f"strata and a cubic spline of {names} ({rank} parameters, {n_residual} residual df); "
                "Freedman–Lane permutation of accuracy residuals within grid strata"),
    )
