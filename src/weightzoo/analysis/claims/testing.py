"""The shared test machinery of the claims: strata, permutations within strata, bootstrap, Holm, verdicts.

Every group comparison takes ``strata`` (one label per trial). With one stratum it is the plain pooled
test; with one stratum per architecture, labels are permuted and trials resampled only *within* an
architecture, so a difference that only exists between architectures (width changes both accuracy and
weight scale) cannot be credited to accuracy.
"""

import numpy as np
import pandas as pd
import scipy.stats

POWER_Z = 0.8416
"""z of 80 % power: an effect is called detectable at (z_{1-alpha} + POWER_Z) null standard deviations."""

MEANINGFUL = {"cliffs_delta": 0.33, "w1_ratio_high_low": 0.2, "spearman_rho": 0.3, "kendall_tau": 0.2}
"""Smallest effect worth reporting per effect measure (medium effects: Romano et al. 2006 for Cliff's delta,
Cohen for correlations; 20 % for a distance ratio). A test that could detect effects of this size and found
none answers "no effect larger than X"; one that could not is underpowered."""

NULL_CENTRE = {"w1_ratio_high_low": 1.0}
BOUNDED = ("cliffs_delta", "spearman_rho", "kendall_tau")
"""Effect measures in [-1, 1]."""
"""Effect measures whose 'no effect' value is not 0."""


def stratum_indices(strata) -> list[np.ndarray]:
    """Trial indices of each stratum, strata in order of first appearance."""
    strata = np.asarray(strata)
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


def permutation_p(null: np.ndarray, observed: float) -> tuple[float, float]:
    """One-sided p-values (less, greater) of ``observed`` against a permutation null (the observed labelling
    counts as one permutation)."""
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or null.size == 0:
        return np.nan, np.nan
    less = (1 + np.sum(null <= observed + 1e-12)) / (null.size + 1)
    greater = (1 + np.sum(null >= observed - 1e-12)) / (null.size + 1)
    return float(less), float(greater)


def detectable(null: np.ndarray, alpha: float) -> float:
    """Smallest departure from the null centre detectable with ~80 % power at one-sided level ``alpha``."""
    null = null[np.isfinite(null)]
    if null.size < 2:
        return np.nan
    return float((scipy.stats.norm.ppf(1 - alpha) + POWER_Z) * null.std())


def interval(replicates: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval at level 1 - alpha (NaN when no finite replicate)."""
    replicates = replicates[np.isfinite(replicates)]
    if replicates.size == 0:
        return np.nan, np.nan
    low, high = np.percentile(replicates, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


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


def decide(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Holm-adjust ``p_value``/``p_opposite`` within each (scope, claim, statistic) family and give verdicts.

    ``supported``: adjusted p < alpha in the claim's direction; ``contradicted``: in the opposite one;
    ``no effect``: neither, and the test could have detected an effect of the size in ``MEANINGFUL`` (the
    reason says the largest effect it rules out); ``inconclusive``: a reason says why nothing was tested, or
    the test was underpowered.
    """
    table = table.copy()
    families = ["scope", "claim", "statistic"]
    for column in ("p_value", "p_opposite"):
        table[column] = table[column].astype(float)
        table[column] = table.groupby(families, sort=False)[column].transform(
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
        elif not np.isfinite(row.p_value):
            verdict, reason = "inconclusive", "no p-value"
        else:
            verdict, reason = _null_verdict(row, alpha)
        verdicts.append(verdict)
        reasons.append(reason)
    table["verdict"] = verdicts
    table["reason"] = reasons
    return table


def _null_verdict(row, alpha) -> tuple[str, str]:
    bound = MEANINGFUL.get(row.effect_name)
    centre = NULL_CENTRE.get(row.effect_name, 0.0)
    p_text = f"{row.effect_name} {row.effect_size:.3g}"
    if np.isfinite(row.ci_low):
        p_text += f" [{row.ci_low:.3g}, {row.ci_high:.3g}]"
    p_text += f", Holm-adjusted p={row.p_value:.3g} (opposite {row.p_opposite:.3g}) >= alpha={alpha}"
    if bound is None or not np.isfinite(row.detectable):
        return "inconclusive", p_text
    if row.detectable <= bound:
        return "no effect", (f"{p_text}; the test detects |{row.effect_name} - {centre:g}| >= {row.detectable:.2g} "
                             f"with 80% power, so no effect larger than {row.detectable:.2g}")
    if row.effect_name in BOUNDED and row.detectable >= 1:
        return "inconclusive", f"{p_text}; underpowered: with this n not even a perfect association is detectable"
    return "inconclusive", (f"{p_text}; underpowered: it detects only |{row.effect_name} - {centre:g}| >= "
                            f"{row.detectable:.2g} (a medium effect is {bound:g}); more trials per group answer it")
