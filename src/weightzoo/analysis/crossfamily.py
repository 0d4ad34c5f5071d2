"""The paper's cross-family statement as a statistic: do DNN, CNN and ViT show the same learning characteristics?

Zheng et al. conclude that "the learnable parameters of DNN, CNN and ViT exhibit similar learning
characteristics". Read as a test: for each claim (1–3 and every metric claim), take each family's
recipe-adjusted effect (the claims table's ``controlled`` row of the claim's continuous form, a rank correlation
of accuracy with the property among nets of one recipe) and ask whether the families' effects differ by more
than their sampling error.

Method (a fixed-effect meta-analysis of correlations, Borenstein et al. 2009, ch. 6 and 16):

- each family's ρ on Fisher's z, with the standard error read off its own ``1 - alpha`` interval,
  ``(atanh(high) - atanh(low)) / (2 z_{1 - alpha/2})`` (the interval may come from permutations or a bootstrap,
  so the SE is taken from it rather than from n);
- claim 3 in the paper's direction for each layer (node strength rising with accuracy, attention strength
  falling: the ViT's attention effect is sign-flipped; its other layers, of which the paper expects nothing, are
  left out), so that "similar" means "as the paper says" in each;
- per family, the ``network`` row where the claim has one; otherwise the layers' mean z with the *mean* of their
  SEs: the layers of one family share their nets, so their estimates are correlated, and the mean SE is the
  SE of the mean under perfect correlation, the conservative choice;
- Cochran's Q = Σ w_i (z_i − z̄)² with w_i = 1/SE_i², p from χ²(k − 1);
- I² = τ² / (τ² + s²), τ² the between-family variance estimated by restricted maximum likelihood and s² Higgins &
  Thompson's (2002) typical within-family variance, with the profile-likelihood interval of τ² (Hardy &
  Thompson 1996) carried over. Why not the simpler ones: the test-based interval on ln H (Higgins & Thompson,
  eq. 8–9) and the Q-profile interval (Viechtbauer 2007) both shrink to [0 %, 0 %] when Q falls far below its
  df, as it does with three families that agree by chance; the profile likelihood is finite at τ² = 0, so its
  upper end stays positive and says how much heterogeneity the data still allow;
- the common effect ρ̄ (inverse-variance weights) with its interval, and every family's ρ beside it.

Verdicts: ``differ`` (Q's p < alpha: the families do not share one effect), ``no difference found`` (p ≥
alpha; with three families Q has little power, and the row gives the I² interval, whose upper end says how
much heterogeneity the data still allow), ``cannot tell`` (fewer than two families with an interval).
"""

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.stats

from weightzoo.analysis.claims import CLAIMS, CONTINUOUS
from weightzoo.models import family as family_of

COLUMNS = ["claim", "claim_name", "statistic", "families", "k", "effects", "common_rho", "common_low",
           "common_high", "q", "df", "p_value", "i2", "i2_low", "i2_high", "verdict", "reason"]
CORRELATIONS = ("spearman_rho", "partial_spearman_rho", "kendall_tau")
"""Effect measures read as correlations (Fisher's z applies)."""
EPS = 1e-6


def _z(rho):
    return np.arctanh(np.clip(np.asarray(rho, dtype=float), -1 + EPS, 1 - EPS))


def family_effects(claims: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per (family, claim): the recipe-adjusted effect on Fisher's z with its SE (columns family, claim,
    statistic, layer, rho, z, se). ``claims`` has the claims table's columns plus ``family`` (a model family
    or any label of the zoo it came from)."""
    crit = scipy.stats.norm.ppf(1 - alpha / 2)
    rows = []
    for (family, claim), table in claims.groupby(["family", "claim"], sort=False):
        claim = int(claim)
        if claim not in CONTINUOUS:
            continue
        here = table[(table["scope"] == "controlled") & (table["statistic"] == CONTINUOUS[claim])
                     & table["effect_name"].isin(CORRELATIONS)]
        here = here[np.isfinite(here["effect_size"]) & np.isfinite(here["ci_low"]) & np.isfinite(here["ci_high"])
                    & (here["ci_high"] > here["ci_low"])]
        if here.empty:
            continue
        sign = np.ones(len(here))
        if claim == 3:  # the paper expects attention strength to fall (ViT), and nothing of other ViT layers
            sign = np.array([family_of(m).strength_sign(layer) for m, layer in zip(here["model"], here["layer"])])
            here, sign = here[sign != 0], sign[sign != 0]
            if here.empty:
                continue
        if (here["layer"] == "network").any():
            sign, here = sign[(here["layer"] == "network").to_numpy()], here[here["layer"] == "network"]
        z = _z(here["effect_size"]) * sign
        se = (_z(here["ci_high"]) - _z(here["ci_low"])) / (2 * crit)
        rows.append({"family": family, "claim": claim, "statistic": CONTINUOUS[claim],
                     "layer": ", ".join(map(str, here["layer"])), "rho": float(np.tanh(z.mean())),
                     "z": float(z.mean()), "se": float(se.mean())})
    return pd.DataFrame(rows, columns=["family", "claim", "statistic", "layer", "rho", "z", "se"])


def _restricted_loglik(tau2: float, z: np.ndarray, v: np.ndarray) -> float:
    """REML log-likelihood of the between-study variance ``tau2`` (random-effects model, constants dropped)."""
    w = 1 / (v + tau2)
    mu = np.sum(w * z) / np.sum(w)
    return float(-0.5 * (np.sum(np.log(v + tau2)) + np.log(np.sum(w)) + np.sum(w * (z - mu) ** 2)))


def i2_interval(z, se, alpha: float = 0.05) -> tuple[float, float, float]:
    """I² and its 1 - alpha interval from k estimates ``z`` with standard errors ``se`` (module docstring): the
    REML τ² and its profile-likelihood interval, each as τ² / (τ² + s²)."""
    z, v = np.asarray(z, dtype=float), np.asarray(se, dtype=float) ** 2
    w = 1 / v
    s2 = (len(z) - 1) * w.sum() / (w.sum() ** 2 - (w ** 2).sum())
    drop = scipy.stats.chi2.ppf(1 - alpha, 1) / 2

    def loglik(tau2):
        return _restricted_loglik(tau2, z, v)

    # the likelihood of k <= a few estimates is cheap: a log-spaced grid brackets the maximum and both ends
    top = 10 * (np.var(z) + v.max())
    while loglik(top) > max(loglik(0.0), loglik(top / 10)) - drop:
        top *= 10
    grid = np.concatenate([[0.0], np.geomspace(top * 1e-9, top, 400)])
    values = np.array([loglik(t) for t in grid])
    best = int(values.argmax())
    lo_t, hi_t = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    found = scipy.optimize.minimize_scalar(lambda t: -loglik(t), bounds=(lo_t, hi_t), method="bounded")
    tau2 = float(found.x) if -found.fun >= values[best] else float(grid[best])
    peak = loglik(tau2)

    def gap(t):
        return loglik(t) - (peak - drop)

    above = grid > tau2
    upper_end = grid[above][np.argmax(values[above] < peak - drop)]
    upper = scipy.optimize.brentq(gap, tau2, upper_end)
    lower = 0.0 if gap(0.0) >= 0 else scipy.optimize.brentq(gap, 0.0, tau2)

    def to_i2(t):
        return float(t / (t + s2))

    return to_i2(tau2), to_i2(lower), to_i2(upper)


def heterogeneity(effects: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """One row per claim: Cochran's Q across the families' effects (``family_effects``), I² with its interval,
    the common effect with its interval, and the verdict (module docstring)."""
    crit = scipy.stats.norm.ppf(1 - alpha / 2)
    rows = []
    for claim, table in effects.groupby("claim", sort=True):
        claim = int(claim)
        families = list(table["family"])
        effects_text = "; ".join(f"{f} {r:+.2f} [{np.tanh(z - crit * s):+.2f}, {np.tanh(z + crit * s):+.2f}] "
                                 f"({layer})" for f, r, z, s, layer in
                                 zip(table["family"], table["rho"], table["z"], table["se"], table["layer"]))
        row = {"claim": claim, "claim_name": CLAIMS[claim][0], "statistic": table["statistic"].iloc[0],
               "families": ", ".join(map(str, families)), "k": len(families), "effects": effects_text}
        if len(families) < 2:
            rows.append({**row, "verdict": "cannot tell",
                         "reason": "fewer than two families have a recipe-adjusted effect with an interval"})
            continue
        z, w = table["z"].to_numpy(), 1 / table["se"].to_numpy() ** 2
        z_bar = float(np.sum(w * z) / np.sum(w))
        se_bar = float(np.sqrt(1 / np.sum(w)))
        q = float(np.sum(w * (z - z_bar) ** 2))
        df = len(families) - 1
        p = float(scipy.stats.chi2.sf(q, df))
        i2, i2_low, i2_high = i2_interval(z, table["se"].to_numpy(), alpha)
        differ = p < alpha
        reason = (f"Cochran's Q {q:.2f} on {df} df, p = {p:.3g} < {alpha:g}: the families' effects differ"
                  if differ else
                  f"Cochran's Q {q:.2f} on {df} df, p = {p:.3g}: no difference found, but with {len(families)} "
                  f"families the data still allow I² up to {i2_high:.0%}")
        rows.append({**row, "common_rho": float(np.tanh(z_bar)), "common_low": float(np.tanh(z_bar - crit * se_bar)),
                     "common_high": float(np.tanh(z_bar + crit * se_bar)), "q": q, "df": df, "p_value": p,
                     "i2": i2, "i2_low": i2_low, "i2_high": i2_high,
                     "verdict": "differ" if differ else "no difference found", "reason": reason})
    return pd.DataFrame(rows, columns=COLUMNS)


def cross_family(tables: dict[str, pd.DataFrame], alpha: float = 0.05) -> pd.DataFrame:
    """``heterogeneity`` of the claims tables of several zoos, keyed by family label (e.g. {"DNN": claims of the
    DNN study, ...}); each table may hold one model or several (then the model column tells them apart)."""
    parts = []
    for label, table in tables.items():
        table = table.copy()
        models = table["model"].unique() if "model" in table else []
        table["family"] = label if len(models) <= 1 else label + ":" + table["model"].astype(str)
        parts.append(table)
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    return heterogeneity(family_effects(pd.concat(parts, ignore_index=True), alpha), alpha)
