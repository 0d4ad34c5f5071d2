"""The paper's claims turned into statistics, at every scope, from per-trial features (``analysis.features``).

Claims (Zheng et al. 2024, arXiv 2408.11720, plus claim 5 which goes beyond it):

1. ``lower_std``: high-accuracy trials have lower weight std than low-accuracy ones (per layer and network).
2. ``more_alike``: high-accuracy trials are more alike (smaller within-group Wasserstein-1) than low ones.
3. ``strength_accuracy``: node strength rises with accuracy (DNN, CNN); attention strength falls (ViT).
4. ``predict_accuracy``: final per-layer weight statistics predict accuracy and group.
5. ``early_warning``: the epoch-1 statistics predict the final accuracy and group.

Claims 1–3 are reported at three scopes: ``pooled`` (all architectures of a (model, dataset) together, as the
paper does), ``controlled`` (labels permuted and trials resampled only within a stratum: by default the
architecture, so an effect of width alone is not credited to accuracy) and ``within`` (one architecture,
column ``arch``). Claims 4–5 are pooled, cross-validated ``kfold`` and leave-one-architecture-out (``loao``).
Details of each test: ``groupwise.py``, ``prediction.py``; p-values, intervals and verdicts: ``testing.py``.

Verdicts: ``supported`` / ``contradicted`` (Holm-adjusted one-sided p < alpha within each (scope, claim,
statistic) family); ``no effect`` (not significant, and the test could have detected a medium effect: the
reason gives the largest effect it rules out); ``never trained`` (the row's weights include parameters that
never moved from their initial values, so it describes the initial draw); ``inconclusive`` (the reason says
why: too few trials in a group, no stratum with both groups, underpowered). Nothing raises on degenerate zoos.
"""

import numpy as np
import pandas as pd
import xarray as xr

from weightzoo.analysis.claims.groupwise import expected_strength_sign, lower_std, more_alike, strength_accuracy
from weightzoo.analysis.claims.prediction import features_of, prediction_rows
from weightzoo.analysis.claims.testing import decide, holm
from weightzoo.analysis.features import accuracy as final_accuracy

__all__ = ["CLAIMS", "COLUMNS", "VERDICTS", "claims_table", "zoo_claims", "holm", "strata_labels"]

CLAIMS = {
    1: ("lower_std", "high-accuracy trials have lower weight std than low-accuracy trials"),
    2: ("more_alike", "high-accuracy trials are more alike (smaller within-group Wasserstein-1) than low-accuracy trials"),
    3: ("strength_accuracy", "node strength rises with accuracy (DNN, CNN); attention strength falls (ViT)"),
    4: ("predict_accuracy", "final weight statistics predict accuracy and group"),
    5: ("early_warning", "epoch-1 weight statistics predict the final accuracy and group"),
}
COLUMNS = [
    "model", "dataset", "scope", "arch", "claim", "claim_name", "layer", "statistic", "value", "effect_name",
    "effect_size", "ci_low", "ci_high", "detectable", "p_value", "p_opposite", "n", "verdict", "reason", "detail",
]
VERDICTS = ("supported", "contradicted", "no effect", "never trained", "inconclusive")
SCOPES = ("pooled", "controlled", "within", "kfold", "loao")
ALL = "all"


def strata_labels(features: xr.Dataset, keys=("arch",)) -> np.ndarray:
    """One stratum label per trial from trial coordinates ``keys`` (e.g. arch, or arch and init_std)."""
    missing = [k for k in keys if k not in features.coords]
    if missing:
        raise ValueError(f"cannot stratify by {missing}: the zoo has no such trial coordinate")
    parts = [features[k].values.astype(str) for k in keys]
    if not parts:
        return np.full(features.sizes["trial"], ALL)
    return np.array(["|".join(values) for values in zip(*parts)])


def claims_table(
    features: xr.Dataset,
    seed: int = 0,
    alpha: float = 0.05,
    accuracy: str = "train",
    min_group: int = 3,
    n_permutations: int = 999,
    n_bootstrap: int = 999,
    cv_folds: int = 5,
    max_iter: int = 100,
    strata=("arch",),
    within: bool = True,
    untrained: dict | None = None,
    max_trials: int = 1000,
) -> pd.DataFrame:
    """One row per scope × claim × layer (× statistic); columns ``COLUMNS``.

    ``features``: ``trial_features`` of one experiment or ``pool`` of several. ``strata``: the trial
    coordinates the controlled scope holds fixed. ``untrained``: ``{layer: {arch: why}}`` for layers holding
    parameters that never trained (``analysis.trained``): their rows get the verdict ``never trained`` at the
    pooled and controlled scopes and within the architectures named.
    """
    rng = np.random.default_rng(seed)
    labels = features["group"].values.astype(str)
    arch = features["arch"].values.astype(str)
    acc = final_accuracy(features, accuracy)
    model = str(features.attrs.get("model", ""))
    scopes = [("pooled", ALL, np.ones(labels.size, bool), np.full(labels.size, ALL))]
    scopes.append(("controlled", ALL, np.ones(labels.size, bool), strata_labels(features, strata)))
    if within and np.unique(arch).size > 1:
        scopes += [("within", a, arch == a, np.full(labels.size, a)) for a in _natural(np.unique(arch))]

    rows = []
    std = features["statistic"].sel(stat="std")
    for scope, arch_label, mask, stratum in scopes:
        common = dict(scope=scope, arch=arch_label)
        sub_labels, sub_strata = labels[mask], stratum[mask]
        for layer in features["layer"].values:
            values = std.sel(layer=layer).values[mask]
            rows.append(dict(common, claim=1, layer=str(layer), statistic="cliffs_delta",
                             **lower_std(values, sub_labels, sub_strata, min_group, n_permutations, n_bootstrap, alpha, rng)))
        for layer in features["layer"].values:
            q = features["quantile_function"].sel(layer=layer).values[mask]
            rows.append(dict(common, claim=2, layer=str(layer), statistic="w1_ratio",
                             **more_alike(q, sub_labels, sub_strata, min_group, n_permutations, n_bootstrap, alpha,
                                          rng, max_trials)))
        for layer in features["strength_layer"].values:
            strength = features["mean_strength"].sel(strength_layer=layer).values[mask]
            rows.append(dict(common, claim=3, layer=str(layer), statistic="spearman_rho",
                             **strength_accuracy(strength, acc[mask], sub_labels, sub_strata,
                                                 expected_strength_sign(model, str(layer)), n_permutations, n_bootstrap,
                                                 alpha, rng)))

    network = features.attrs.get("network_layer", "network")
    final = features["statistic"].sel(layer=[layer for layer in features["layer"].values if layer != network])
    epoch = features.attrs.get("snapshot")
    for row in prediction_rows(features_of(final.values), acc, labels, arch, cv_folds, max_iter, n_bootstrap, alpha,
                               seed, rng, epoch):
        rows.append(dict(row, arch=ALL, claim=4))
    if "early_statistic" in features:
        early = features["early_statistic"].sel(layer=final["layer"].values)
        for row in prediction_rows(features_of(early.values), acc, labels, arch, cv_folds, max_iter, n_bootstrap,
                                   alpha, seed, rng, features.attrs.get("early_snapshot")):
            rows.append(dict(row, arch=ALL, claim=5))
    else:
        rows += [dict(scope=s, arch=ALL, claim=5, layer="all layers", statistic=stat,
                      reason=f"no snapshot at epoch {features.attrs.get('early_snapshot')} stored")
                 for s in ("kfold", "loao") for stat in ("cv_r2", "kendall_tau", "balanced_accuracy")]

    table = _frame(rows)
    table = decide(table, alpha)
    for layer, by_arch in (untrained or {}).items():
        on_layer = table["layer"] == layer
        for arch_label, why in by_arch.items():
            hit = on_layer & (table["arch"] == arch_label)
            table.loc[hit, ["verdict", "reason"]] = ["never trained", f"{why} ({arch_label})"]
        hit = on_layer & table["scope"].isin(["pooled", "controlled"])
        table.loc[hit, ["verdict", "reason"]] = ["never trained", f"{next(iter(by_arch.values()))} "
                                                                   f"({', '.join(_natural(by_arch))})"]
    table.insert(0, "model", model)
    table.insert(1, "dataset", features.attrs.get("dataset", ""))
    return table[COLUMNS]


def _frame(rows) -> pd.DataFrame:
    defaults = dict(value=np.nan, effect_name="", effect_size=np.nan, ci_low=np.nan, ci_high=np.nan,
                    detectable=np.nan, p_value=np.nan, p_opposite=np.nan, n=0, reason="", detail="")
    table = pd.DataFrame([{**defaults, **row} for row in rows])
    table["claim_name"] = table["claim"].map(lambda c: CLAIMS[c][0])
    return table


def _natural(values):
    """Architecture labels in natural order (h2 before h10)."""
    import re

    def key(text):
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text))]

    return sorted(values, key=key)


def zoo_claims(ds: xr.Dataset, groups=None, accuracy: str = "train", early_snapshot: int = 1, max_values: int = 2000,
               strength_kind: str = "abs_in", **settings) -> pd.DataFrame:
    """``claims_table`` of one zoo file's dataset (groups: see ``zoo.trial_groups``; None: ``group_zoo``)."""
    from weightzoo.analysis.features import trial_features
    from weightzoo.analysis.groups import group_zoo

    if groups is None:
        groups = group_zoo(ds, accuracy=accuracy)
    features = trial_features(ds, groups, early_snapshot=early_snapshot, n_quantiles=max_values,
                              strength_kind=strength_kind, seed=settings.get("seed", 0))
    return claims_table(features, accuracy=accuracy, **settings)
