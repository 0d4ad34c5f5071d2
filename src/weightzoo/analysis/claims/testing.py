"""The shared test machinery of the claims: strata, permutations within strata, intervals, Holm, verdicts.

Every comparison takes ``strata`` (one label per trial). With one stratum it is the plain pooled test; with
one stratum per recipe (architecture and every hyperparameter that varies), labels are permuted only
*within* a recipe, so a difference between recipes (a larger init both lowers accuracy and raises the weight
std) cannot be credited to accuracy.

Decisions (``decide``), for a statistic whose claimed direction is ``expected_sign``:

- ``p_value`` is two-sided (twice the smaller one-sided permutation p, at most 1), Holm-adjusted within one
  family per (scope, claim); the direction is read from the sign of the effect. So the chance of any
  directional verdict on a null is at most alpha, counting both directions.
- ``ci_low``/``ci_high`` is the 1 - alpha interval, the level that matches the two-sided test. A directional
  verdict needs the adjusted p below alpha *and* the interval on the same side of the null value, so a
  verdict never contradicts its own interval; when test and interval disagree the row is inconclusive.
- ``no effect`` only from an equivalence test (TOST at alpha): the 1 - 2 alpha interval (``eq_low``,
  ``eq_high``) lies inside the equivalence bound (``EQUIVALENCE``, config ``analysis.claims.equivalence``).
  Otherwise the row is inconclusive and says which effect the test could have detected.
"""

import numpy as np
import pandas as pd
import scipy.stats

POWER_Z = scipy.stats.norm.ppf(0.8)
"""z of 80 % power: an effect is called detectable at (z_{1-alpha/2} + POWER_Z) null standard deviations."""

EQUIVALENCE = {"cliffs_delta": 0.147, "spearman_rho": 0.1, "w1_ratio_high_low": 1.1, "kendall_tau": 0.1}
"""Default equivalence bounds (config ``analysis.claims.equivalence``): |effect - null| below these counts as a
negligible effect, the "small" thresholds: Romano et al. 2006 for Cliff's delta, Cohen 1988 for correlations
(tau likewise); for the distance ratio a factor, the ratio inside [1/1.1, 1.1]. Medium bounds (0.3, 0.33) let a
true rho of -0.15 at n = 64 pass as "no effect" a third of the time; small ones cost power: showing |rho| < 0.1
at 80 % where the truth is 0 needs about 860 trials, |delta| < 0.147 about 530 (config power notes)."""
SYMBOLS = {"spearman_rho": "ρ", "cliffs_delta": "δ", "kendall_tau": "τ"}
"""How a verdict label writes an effect measure."""
RECIPES_DISAGREE = "inconclusive: the recipes disagree"
"""The label of a row whose strata (seeds scope) or recipe-adjusted effects (pooled scope) disagree in sign."""
NULL_CENTRE = {"w1_ratio_high_low": 1.0, "above_chance": 0.0}
"""Effect measures whose 'no effect' value is not 0 (the distance ratio's is 1)."""
RATIOS = ("w1_ratio_high_low",)
ONE_SIDED = ("r2",)
"""Effect measures whose other side is not the opposite claim: an out-of-fold R² below 0 means no prediction."""
"""Effect measures compared on the log scale (bounds are factors)."""


def stratum_indices(strata) -> list[np.ndarray]:
    """Trial indices of each stratum, strata in order of first appearance."""
    strata = np.asarray(strata)
    if strata.size == 0:
        return []
    _, first, inverse = np.unique(strata, return_index=True, return_inverse=True)
    return [np.flatnonzero(inverse == k) for k in np.argsort(first)]


def permute_within(labels: np.ndarray, strata: list[np.ndarray], n: int, rng) -> np.ndarray:
    """(n, trials) copies of ``labels``, each shuffled independently inside every stratum."""
    out = np.broadcast_to(labels, (n, labels.size)).copy()
    for index in strata:
        if index.size > 1:
            keys = rng.random((n, index.size))
            out[:, index] = labels[index][np.argsort(keys, axis=1)]
    return out


def resample_within(strata_groups: list[np.ndarray], n: int, rng) -> np.ndarray:
    """(n, trials) multinomial bootstrap weights, resampling each (stratum x group) cell on its own size."""
    size = sum(idx.size for idx in strata_groups)
    all_index = np.concatenate(strata_groups) if strata_groups else np.zeros(0, int)
    weights = np.zeros((n, int(all_index.max()) + 1 if size else 0))
    for index in strata_groups:
        if index.size:
            weights[:, index] = rng.multinomial(index.size, np.full(index.size, 1.0 / index.size), size=n)
    return weights


def resample_clusters(clusters, n: int, rng) -> np.ndarray:
    """(n, trials) bootstrap weights that resample whole clusters (recipes): a trial's weight is how often its
    cluster was drawn, so seed siblings stay together (seeds of one recipe are not independent units)."""
    index = stratum_indices(clusters)
    counts = rng.multinomial(len(index), np.full(len(index), 1.0 / len(index)), size=n)
    weights = np.zeros((n, len(clusters)))
    for k, members in enumerate(index):
        weights[:, members] = counts[:, k : k + 1]
    return weights


def permutation_p(null: np.ndarray, observed: float) -> float:
    """Two-sided permutation p-value: twice the smaller empirical one-sided tail (b + 1) / (m + 1) of ``m``
    finite permutations (the observed labelling counts as one), at most 1; NaN without a finite observed value
    or null. Doubling the smaller tail needs no symmetric null; the smallest p it can give is 2 / (m + 1), what
    the permutations resolve (no tail is extrapolated from a fitted curve)."""
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or null.size == 0:
        return np.nan
    n_less, n_greater = np.sum(null <= observed + 1e-12), np.sum(null >= observed - 1e-12)
    return float(min(1.0, 2 * (1 + min(n_less, n_greater)) / (null.size + 1)))


def bootstrap_p(replicates: np.ndarray, centre: float) -> float:
    """Two-sided bootstrap p of ``centre``: twice the share of replicates on its far side (matches the
    percentile interval: p < alpha exactly when the 1 - alpha interval excludes ``centre``)."""
    replicates = replicates[np.isfinite(replicates)]
    if replicates.size == 0:
        return np.nan
    below = (1 + np.sum(replicates <= centre)) / (replicates.size + 1)
    above = (1 + np.sum(replicates >= centre)) / (replicates.size + 1)
    return float(min(1.0, 2 * min(below, above)))


def bootstrap_test(replicates: np.ndarray, centre: float, alpha: float) -> tuple[float, tuple[float, float]]:
    """``bootstrap_p`` of ``centre`` and the interval it inverts into, from one computation: the interval is
    every value whose two-sided bootstrap p is at least ``alpha`` (order statistics m0 and B + 1 - m0 with
    m0 = ceil(alpha (B + 1) / 2 - 1)), so p < alpha exactly when the interval excludes ``centre``."""
    replicates = np.sort(replicates[np.isfinite(replicates)])
    b = replicates.size
    if b == 0:
        return np.nan, (np.nan, np.nan)
    m0 = int(np.ceil(alpha * (b + 1) / 2 - 1 - 1e-9))
    bounds = (-np.inf, np.inf) if m0 < 1 else (float(replicates[m0 - 1]), float(replicates[b - m0]))
    return bootstrap_p(replicates, centre), bounds


def detectable(null: np.ndarray, alpha: float) -> float:
    """Smallest departure from the null centre detectable with ~80 % power by the two-sided test at ``alpha``."""
    null = null[np.isfinite(null)]
    if null.size < 2:
        return np.nan
    return float((scipy.stats.norm.ppf(1 - alpha / 2) + POWER_Z) * null.std())


def interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval at confidence ``level`` (NaN when no finite replicate)."""
    replicates = replicates[np.isfinite(replicates)]
    if replicates.size == 0:
        return np.nan, np.nan
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def _score_interval(estimate: float, sd_at, level: float, low: float, high: float, df: float = np.inf,
                    mean_at=None) -> tuple[float, float]:
    """The set {theta : |estimate - mean(theta)| <= z sd(theta)} on a fine grid of (low, high): a Wilson-type
    (score) interval. Its width never collapses at the boundary (complete separation, a perfect rank
    correlation) because sd is evaluated at theta, not at the estimate. ``df``: a t quantile instead of z
    (a small-sample allowance for an estimated variance); ``mean_at``: the estimator's expectation at theta
    when it is biased: the interval then holds every theta near the estimate or whose expectation is near it."""
    if not np.isfinite(estimate):
        return np.nan, np.nan
    z = scipy.stats.t.ppf(0.5 + level / 2, df) if np.isfinite(df) else scipy.stats.norm.ppf(0.5 + level / 2)
    grid = np.linspace(low, high, 8001)[1:-1]
    spread = z * sd_at(grid)
    inside = np.abs(estimate - grid) <= spread
    if mean_at is not None:  # also every theta whose expected estimate lies near: never narrower than unbiased
        inside |= np.abs(estimate - mean_at(grid)) <= spread
    if not inside.any():
        return float(estimate), float(estimate)
    return float(min(grid[inside].min(), estimate)), float(max(grid[inside].max(), estimate))


def spearman_expectation(theta, n):
    """E[sample Spearman rho] of ``n`` draws whose population Spearman rho is ``theta`` under a normal copula
    (Moran 1948): 6 / (pi (n + 1)) [asin(r) + (n - 2) asin(r / 2)] with r = 2 sin(pi theta / 6). Biased towards
    0 on small samples (at n = 6 a true 0.3 averages 0.26), which an interval centred on the estimate ignores."""
    r = 2 * np.sin(np.pi * np.asarray(theta, float) / 6)
    n = np.asarray(n, float)
    return 6 / (np.pi * (n + 1)) * (np.arcsin(r) + (n - 2) * np.arcsin(r / 2))


def correlation_interval(estimate: float, sizes, level: float) -> tuple[float, float]:
    """Score interval of a rank correlation pooled over strata of ``sizes`` with weights ∝ n.

    Per stratum the variance of Spearman's rho is (1 - rho²)² (1 + rho²/2) / (n - 3): Fisher's z with
    Bonett & Wright's (2000) variance, by the delta method; pooled with weights w_s = n_s / sum n. The interval
    is centred on the pooled *expectation* at theta (``spearman_expectation``), not on theta: on many small
    strata the small-sample bias towards 0 otherwise calls a true effect at the equivalence bound "no effect"
    too often (30 strata of 6 at rho = 0.3: 5.8 % instead of <= 5 %; bench/claims_calibration.py). A t quantile
    with sum(n_s - 3) degrees of freedom is the small-sample allowance for the estimated variance.
    """
    sizes = np.asarray(sizes, float)
    weights = sizes / sizes.sum()
    factor = float(np.sum(weights**2 / (sizes - 3)))
    return _score_interval(estimate, lambda r: (1 - r**2) * np.sqrt((1 + r**2 / 2) * factor), level, -1.0, 1.0,
                           df=float(np.sum(sizes - 3)), mean_at=lambda t: np.sum(weights[:, None] * spearman_expectation(t[None, :], sizes[:, None]),
                                                    axis=0))


def partial_correlation_interval(estimate: float, n_residual: int, level: float) -> tuple[float, float]:
    """Score interval of a partial correlation of ranks with ``n_residual`` = trials minus adjusting parameters
    (intercept included): Fisher z with variance (1 + r²/2) / (n_residual - 2), i.e. Bonett–Wright's 1/(n - 3 - k)
    for k covariates."""
    return _score_interval(estimate, lambda r: (1 - r**2) * np.sqrt((1 + r**2 / 2) / (n_residual - 2)), level,
                           -1.0, 1.0, df=float(n_residual - 2))


def kendall_interval(estimate: float, n: int, level: float) -> tuple[float, float]:
    """Score interval of Kendall's tau from ``n`` independent units (more than 4): Fisher's z of tau has a
    variance of about 0.437 / (n - 4) (Fieller, Hartley & Pearson 1957), so sd(tau) = (1 - tau²) sqrt(0.437 /
    (n - 4)) by the delta method; evaluated at theta, it keeps a width at |tau| = 1."""
    return _score_interval(estimate, lambda t: (1 - t**2) * np.sqrt(0.437 / (n - 4)), level, -1.0, 1.0)


def cliffs_delta_interval(estimate: float, cells, level: float, empirical_var: float = 0.0) -> tuple[float, float]:
    """Score interval of a stratified Cliff's delta over strata with ``cells`` = [(n_high, n_low), ...].

    theta = (delta + 1) / 2 is the probability that a high trial's value exceeds a low one's (the AUC); per
    stratum its variance is Hanley & McNeil's (1982) at theta, strata weighted by their pairs (as the
    estimate), inverted as a score interval (Newcombe 2006's method 5 uses the same construction). Hanley &
    McNeil's formula assumes a shape of the two distributions; ``empirical_var`` (DeLong's variance of theta
    from the data, ``delong_variance``) is a floor, so the interval is never narrower than the data say and
    still keeps a width at complete separation, where DeLong's variance is 0.
    """
    cells = np.asarray(cells, float)
    m, n = cells[:, 0], cells[:, 1]
    share = (m * n) / np.sum(m * n)

    def sd(delta):
        theta = (delta[:, None] + 1) / 2
        var = theta * (1 - theta) * (1 + (m - 1) * (1 - theta) / (2 - theta) + (n - 1) * theta / (1 + theta)) / (m * n)
        return 2 * np.sqrt(np.maximum(np.sum(share**2 * var, axis=1), empirical_var))

    # DeLong's variance is estimated from few trials per group: t with sum(min(m, n) - 1) degrees of freedom
    df = max(1.0, float(np.sum(np.minimum(m, n) - 1)))
    return _score_interval(estimate, sd, level, -1.0, 1.0, df)


def delong_variance(values, is_high, compared) -> float:
    """DeLong et al. (1988) variance of the pair-weighted AUC over the strata ``compared`` (index arrays):
    per stratum var(V10)/m + var(V01)/n from each trial's share of pairs won (ties count half)."""
    pairs = np.array([is_high[i].sum() * (~is_high[i]).sum() for i in compared], float)
    share = pairs / pairs.sum()
    total = 0.0
    for index, w in zip(compared, share):
        high, low = values[index][is_high[index]], values[index][~is_high[index]]
        wins = (high[:, None] > low[None, :]) + 0.5 * (high[:, None] == low[None, :])
        v10, v01 = wins.mean(axis=1), wins.mean(axis=0)
        part = (v10.var(ddof=1) / high.size if high.size > 1 else 0.0) + (v01.var(ddof=1) / low.size if low.size > 1 else 0.0)
        total += w**2 * part
    return float(total)


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


def _fmt(x) -> str:
    return f"{x:.3g}"


def equivalence_range(effect_name: str, bound: float) -> tuple[float, float]:
    centre = NULL_CENTRE.get(effect_name, 0.0)
    if effect_name in RATIOS:
        return centre / bound, centre * bound
    return centre - bound, centre + bound


def decide(table: pd.DataFrame, alpha: float, bounds: dict | None = None,
           families=("scope", "claim")) -> pd.DataFrame:
    """Holm-adjust the two-sided ``p_value`` within each family and give verdicts (module docstring).

    Rows whose ``verdict`` is already set (``never trained``) stay as they are and are not in any family.
    ``bounds``: equivalence bounds per effect measure (defaults ``EQUIVALENCE``).
    """
    bounds = {**EQUIVALENCE, **(bounds or {})}
    table = table.copy()
    preset = table["verdict"].astype(str).str.len() > 0 if "verdict" in table else pd.Series(False, index=table.index)
    raw = table["p_value"].astype(float).where(~preset & (table["reason"] == ""))
    table["p_raw"] = raw
    keys = [table[f] for f in families]
    table["p_value"] = raw.groupby(keys, sort=False).transform(lambda p: pd.Series(holm(p.to_numpy()), index=p.index))
    table["family_size"] = raw.groupby(keys, sort=False).transform("count")
    verdicts, reasons, bound_column = [], [], []
    for row, is_preset in zip(table.itertuples(), preset):
        bound = bounds.get(row.effect_name, np.nan)
        bound_column.append(bound)
        if is_preset:
            verdicts.append(row.verdict)
            reasons.append(row.reason)
            continue
        verdict, reason = _verdict(row, alpha, bound)
        verdicts.append(verdict)
        reasons.append(reason)
    table["verdict"] = verdicts
    table["reason"] = reasons
    table["equivalence_bound"] = bound_column
    table["verdict_label"] = [verdict_label(v, r, n, b) for v, r, n, b in
                              zip(verdicts, reasons, table["effect_name"], bound_column)]
    return table.drop(columns="family_size")


def verdict_label(verdict: str, reason: str, effect_name: str, bound: float) -> str:
    """The displayed words of a verdict: what "no effect" rules out ("negligible: |ρ| < 0.1"), and why an
    inconclusive row whose recipes disagree is inconclusive."""
    if verdict == "no effect":
        if effect_name in RATIOS:
            return f"negligible: {effect_name} within [{1 / bound:.3g}, {bound:.3g}]"
        return f"negligible: |{SYMBOLS.get(effect_name, effect_name)}| < {bound:g}"
    if verdict == "inconclusive" and ("strata disagree" in reason or "recipes disagree" in reason):
        return RECIPES_DISAGREE
    return verdict


def _verdict(row, alpha: float, bound: float) -> tuple[str, str]:
    if row.reason:
        return "inconclusive", row.reason
    if not np.isfinite(row.p_value) or not np.isfinite(row.effect_size):
        return "inconclusive", "no p-value"
    centre = NULL_CENTRE.get(row.effect_name, 0.0)
    side = int(np.sign(row.effect_size - centre))
    text = f"{row.effect_name} {_fmt(row.effect_size)}"
    if np.isfinite(row.ci_low):
        text += f", {1 - alpha:.0%} interval [{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]"
    text += f", Holm-adjusted two-sided p={_fmt(row.p_value)}"
    disagree = str(getattr(row, "recipes_disagree", "") or "")
    if disagree:
        return "inconclusive", f"{text}; the recipes disagree: {disagree}"
    if row.p_value < alpha and side != 0:
        excludes = (row.ci_high < centre) if side < 0 else (row.ci_low > centre)
        if not excludes:
            return "inconclusive", (f"{text}: the test is significant but the interval still holds "
                                    f"{centre:g}; more trials would settle it")
        if row.expected_sign == 0:
            return "inconclusive", f"{text}; the paper makes no claim for this layer"
        if side == row.expected_sign:
            return "supported", text
        if row.effect_name in ONE_SIDED:
            return "inconclusive", (f"{text}: below {centre:g}, the predictions do worse than the mean accuracy; "
                                    "that is no prediction, not the opposite claim (out-of-fold R² of an "
                                    "uninformative model sits below 0)")
        return "contradicted", f"{text}: significant in the opposite direction"
    if row.expected_sign == 0:
        return "inconclusive", f"{text}; the paper makes no claim for this layer"
    if row.heterogeneity_p < alpha:
        return "inconclusive", (f"{text}; the strata disagree (Cochran's Q p={_fmt(row.heterogeneity_p)}): no common "
                                "effect to call zero or a direction; read the strata (scope within, detail)")
    if np.isfinite(bound) and np.isfinite(row.eq_low):
        low, high = equivalence_range(row.effect_name, bound)
        level = f"{1 - 2 * alpha:.0%}"
        excludes_null = row.ci_low > centre or row.ci_high < centre
        if low < row.eq_low and row.eq_high < high and not excludes_null:
            return "no effect", (f"{text}; equivalence (TOST at alpha={alpha:g}): the {level} interval "
                                 f"[{_fmt(row.eq_low)}, {_fmt(row.eq_high)}] lies inside [{_fmt(low)}, {_fmt(high)}] "
                                 f"(claims.equivalence.{row.effect_name} = {bound:g})")
        reach = (f"; the {level} interval [{_fmt(row.eq_low)}, {_fmt(row.eq_high)}] reaches beyond "
                 f"[{_fmt(low)}, {_fmt(high)}], so neither a difference nor equivalence is shown")
        if low < row.eq_low and row.eq_high < high:
            reach = (f"; inside the equivalence bound [{_fmt(low)}, {_fmt(high)}], yet the {1 - alpha:.0%} interval "
                     f"excludes {centre:g}: a small effect, neither negligible nor significant after Holm")
    else:
        reach = ""
    power = ""
    if np.isfinite(row.p_raw) and row.p_raw < alpha:
        power = (f"; significant before the Holm correction (p={_fmt(row.p_raw)}), not after it over the "
                 f"{int(row.family_size)} tests of this scope and claim")
    elif np.isfinite(row.detectable):
        power = f"; underpowered: it detects only |{row.effect_name} - {centre:g}| >= {_fmt(row.detectable)} with 80% power"
    return "inconclusive", f"{text}{reach}{power}; more trials per recipe answer it"
