"""Which recipe variable carries a pooled effect: a test, not a label.

For a pooled row and each recipe variable on its own, the effect with that variable adjusted for: grid
variables by stratifying (rank rows: their indicators removed from both ranks, a partial rank correlation;
group contrasts and claim 2's ratio: pairs compared within one value), drawn variables by a smooth fit (rank
rows, ``adjust``) or within ``BINS`` quantile bins (group contrasts, which need pairs of a high and a low trial).
One bootstrap (``CONFOUNDER_REPLICATES`` replicates; trials resampled within each grid recipe, so every
recipe of the design stays in every replicate: recipes are set by the experimenter, not sampled, and a bootstrap
over a handful of recipes drops whole values of the variable under test) gives, from the same resamples, the adjusted effect's interval and the interval of the *difference* pooled minus adjusted. A variable
is named (``carried_by``) only when that difference's interval, at 1 - alpha / k for the row's k variables
(Bonferroni: a row names a pure-noise variable at most alpha of the time), excludes 0: adjusting for it moves the
effect by more than its uncertainty. A variable whose every value (or bin) holds only one group is
**inseparable** from the group contrast (named so; only the continuous form can tell). A **reversal** (the pooled and the adjusted interval both exclude the null,
on opposite sides, the adjusted one at 1 - alpha / k) is named as one, and such a row's recipes disagree
(``decide`` makes it inconclusive), as does a row where two adjusted effects do.
"""

import numpy as np
import scipy.stats

from weightzoo.analysis.claims.adjust import GRID_LEVELS, batched_partial_rank, partial_rank
from weightzoo.analysis.claims.groupwise import delta_point, ratio_point, ratio_replicates
from weightzoo.analysis.claims.testing import NULL_CENTRE, bootstrap_test, interval, stratum_indices

BINS = 4
"""Quantile bins of a drawn variable when a group contrast adjusts for it (each must hold both groups)."""
CONFOUNDER_REPLICATES = 499
"""Most bootstrap replicates of the confounder test (every replicate recomputes k + 1 effects)."""
SYMBOL = {"spearman_rho": "ρ", "cliffs_delta": "δ", "w1_ratio_high_low": "W1 ratio"}


def is_drawn(values) -> bool:
    """A numeric variable with more than ``GRID_LEVELS`` values, all finite (one missing in some experiment of a
    pool makes it a grid with a level 'nan')."""
    return (np.issubdtype(values.dtype, np.number) and bool(np.isfinite(values).all())
            and np.unique(values).size > GRID_LEVELS)


def adjuster(kind: str, values: np.ndarray, x, y, labels, arch, distances):
    """estimate(index) of the row's effect on the trials ``index`` with ``values`` (one recipe variable, or None
    for the pooled effect) adjusted for. ``kind``: rank (x vs accuracy y), delta (x by group) or ratio."""
    drawn = values is not None and is_drawn(values)
    if values is None:
        strata = np.zeros(labels.size, int)
    elif drawn and kind != "rank":
        strata = _bins(values)
    else:
        strata = np.unique(values.astype(str), return_inverse=True)[1]

    def estimate(index):
        if kind == "rank":
            extra = values[index].astype(float)[:, None] if drawn else None
            return partial_rank(x[index], y[index], np.zeros(index.size, int) if drawn else strata[index], extra)[0]
        if kind == "delta":
            return delta_point(x[index], labels[index], strata[index])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(ratio_point(distances[np.ix_(index, index)], labels[index],
                                      np.char.add(arch[index], strata[index].astype(str))))

    return estimate


def confounder_test(row: dict, variables: dict, x, y, labels, arch, distances, cells, alpha, rng) -> dict:
    """``confounder``, ``carried_by`` and ``recipes_disagree`` texts of one pooled row (module docstring).

    ``variables``: name -> per-trial values; ``x``/``y``: the row's property and accuracy over the trials the
    row used (rank rows) or all trials (group contrasts, with ``labels``); ``cells``: grid recipe per trial
    (the bootstrap resamples trials within each)."""
    kind = {"spearman_rho": "rank", "cliffs_delta": "delta", "w1_ratio_high_low": "ratio"}[row["effect_name"]]
    ratio = kind == "ratio"
    centre = np.log(NULL_CENTRE.get(row["effect_name"], 0.0)) if ratio else 0.0
    to_effect = np.exp if ratio else (lambda v: v)
    members = stratum_indices(cells)
    estimators = {None: adjuster(kind, None, x, y, labels, arch, distances)}
    estimators.update({k: adjuster(kind, v, x, y, labels, arch, distances) for k, v in variables.items()})
    everyone = np.arange(labels.size)
    observed = {k: f(everyone) for k, f in estimators.items()}
    resamples = np.concatenate([m[rng.integers(0, m.size, (CONFOUNDER_REPLICATES, m.size))] for m in members], axis=1)
    if kind == "rank":
        boot = _rank_replicates(resamples, x, y, variables)
    elif kind == "ratio":
        boot = _ratio_replicates(resamples, labels, arch, distances, variables)
    else:
        boot = {k: np.array([f(index) for index in resamples]) for k, f in estimators.items()}
    pooled_ci = (row["ci_low"], row["ci_high"])
    pooled_side = _side(np.log(pooled_ci) if ratio else pooled_ci, centre)
    symbol = SYMBOL[row["effect_name"]]
    level = alpha / max(1, len(variables))
    parts, named, opposite = [], [], []
    for key in variables:
        point = observed[key]
        if not np.isfinite(point) and kind == "rank":
            parts.append(f"{key}: undefined (nothing of the property or accuracy is left once it is adjusted for)")
            continue
        if not np.isfinite(point):
            parts.append(f"{key}: inseparable (no value or bin holds both groups)")
            named.append((np.inf, f"inseparable from {key}"))
            continue
        low, high = interval(boot[key], 1 - alpha)
        strict = interval(boot[key], 1 - level)  # the side of an adjusted effect, Bonferroni over the k variables
        difference = observed[None] - point
        p, (d_low, d_high) = bootstrap_test(boot[None] - boot[key], 0.0, level)
        moves = np.isfinite(p) and p < level
        side = _side(strict, centre)
        reversal = moves and pooled_side != 0 and side == -pooled_side
        verb = "reversal" if reversal else "moves the effect" if moves else "does not move it"
        parts.append(f"{key}: {symbol} {to_effect(point):+.2f} [{to_effect(low):+.2f}, {to_effect(high):+.2f}] "
                     f"({verb}; pooled minus adjusted {difference:+.2f} [{d_low:+.2f}, {d_high:+.2f}])")
        if moves:
            named.append((abs(difference), f"reversal by {key}" if reversal else key))
        if side != 0:
            opposite.append((side, f"{key} held fixed {symbol} {to_effect(point):+.2f}"))
    sides = {s for s, _ in opposite} | ({pooled_side} - {0})
    disagree = ""
    if len(sides) == 2:
        pooled_text = [f"pooled {symbol} {row['effect_size']:+.2f}"] if pooled_side else []
        disagree = ", ".join(pooled_text + [t for _, t in opposite])
    text = f"{symbol} {row['effect_size']:+.2f} pooled; each recipe variable adjusted for alone: " + "; ".join(parts)
    return dict(confounder=text, carried_by=", ".join(n for _, n in sorted(named, reverse=True)),
                recipes_disagree=disagree)


def _rank_replicates(resamples, x, y, variables) -> dict:
    """Bootstrap replicates of the pooled and every adjusted rank correlation, vectorised over replicates."""
    rx = scipy.stats.rankdata(x[resamples], axis=1)
    ry = scipy.stats.rankdata(y[resamples], axis=1)
    boot = {None: batched_partial_rank(rx, ry, np.zeros(resamples.shape, int), None)}
    for key, values in variables.items():
        if is_drawn(values):
            boot[key] = batched_partial_rank(rx, ry, None, values.astype(float)[resamples])
        else:
            codes = np.unique(values.astype(str), return_inverse=True)[1]
            boot[key] = batched_partial_rank(rx, ry, codes[resamples], None)
    return boot


def _ratio_replicates(resamples, labels, arch, distances, variables) -> dict:
    """Bootstrap replicates of the pooled and every adjusted log distance ratio, from resample counts (the
    ratio's quadratic forms take a batch of weights at once)."""
    counts = np.apply_along_axis(np.bincount, 1, resamples, minlength=labels.size).astype(float)
    boot = {}
    for key, values in [(None, None), *variables.items()]:
        codes = (np.zeros(labels.size, int) if values is None else _bins(values) if is_drawn(values)
                 else np.unique(values.astype(str), return_inverse=True)[1])
        with np.errstate(invalid="ignore", divide="ignore"):
            boot[key] = np.log(ratio_replicates(distances, labels, np.char.add(arch, codes.astype(str)), counts))
    return boot


def _bins(values) -> np.ndarray:
    return np.searchsorted(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]), values)


def _side(bounds, centre) -> int:
    low, high = bounds
    return 1 if low > centre else -1 if high < centre else 0
