"""The paper's claims turned into statistics, at every scope, from per-trial features (``analysis.features``).

Claims (Zheng et al. 2024, arXiv 2408.11720, plus claim 5 which goes beyond it):

1. ``lower_std``: high-accuracy trials have lower weight std than low-accuracy ones (per layer and network).
   Every metric registered with a claim number (``analysis.metrics``: claim 1 is the weight std, claims 6 on
   are spectral metrics) is tested the same way: differs between groups (Cliff's delta), follows accuracy (rho).
2. ``more_alike``: high-accuracy trials are more alike (smaller scale-free Wasserstein-1) than low ones.
3. ``strength_accuracy``: node strength rises with accuracy (DNN, CNN); attention strength falls (ViT).
4. ``predict_accuracy``: final per-layer weight statistics predict accuracy and group.
5. ``early_warning``: the epoch-1 statistics predict the final accuracy and group.

Claims 1–2 each have two statistics: the paper's group contrast (high vs low) and a continuous form (rank
correlation with accuracy) that can be answered among seeds of one recipe; claim 3 is continuous already
(``groupwise``). Scopes of claims 1–3: ``pooled`` (all architectures and recipes of a (model, dataset)
together, as the paper), ``controlled`` (the **recipe** held fixed: labels permuted and trials compared only
within one architecture *and* one value of every hyperparameter that varies, so seeds of one recipe are
compared; ``claims.strata`` may narrow it, and the row says so) and ``within`` (one architecture, column
``arch``, recipe held fixed inside it). Recipe variables drawn per trial (more than ``adjust.GRID_LEVELS``
numeric values) cannot be held fixed by strata: they are adjusted for by a smooth fit (``adjust``: partial rank
correlation, Freedman–Lane test), and the group contrasts say they cannot hold them. Pooled rows test which
recipe variable carries the pooled effect (``confounding``: column ``confounder`` the effect with each variable
adjusted for alone, with its interval; ``carried_by`` those whose adjustment moves it beyond its uncertainty, a
reversal named as one; recipes that disagree in sign make the row inconclusive). Claims 4–5 are
cross-validated among seeds of each recipe (``seeds``), with folds grouped by recipe (``kfold``) and
leave-one-architecture-out (``loao``) (``prediction``). p-values, intervals, equivalence and verdicts: ``testing``.

Verdicts: ``supported`` / ``contradicted`` (Holm-adjusted two-sided p < alpha in one family per (scope,
claim), direction from the sign, and the 1 - alpha interval on the same side); ``no effect`` (equivalence:
the 1 - 2 alpha interval inside ``claims.equivalence``, small effects, and the 1 - alpha interval holding the
null; column ``verdict_label`` says what it rules out, "negligible: |ρ| < 0.1"); ``never trained`` (the row's weights include
parameters that never moved from their initial values, so it describes the initial draw; kept out of the
Holm families); ``inconclusive`` (the reason says why, and which effect the test could have detected).
Nothing raises on degenerate zoos.
"""

import numpy as np
import pandas as pd
import xarray as xr

from weightzoo.analysis.claims.groupwise import (
    distance_to_stratum,
    expected_strength_sign,
    group_contrast,
    more_alike,
    rank_association,
    scaled_distances,
)
from weightzoo.analysis.claims.adjust import design, split_recipe
from weightzoo.analysis.claims.confounding import confounder_test
from weightzoo.analysis.claims.prediction import features_of, prediction_rows
from weightzoo.analysis.claims.testing import EQUIVALENCE, decide, holm
from weightzoo.analysis.features import accuracy as final_accuracy
from weightzoo.analysis.groups import natural_key
from weightzoo.analysis.metrics import FAMILIES, METRICS, claim_metrics, direction_word, stored_values
from weightzoo.config import HYPERPARAMETERS

__all__ = ["CLAIMS", "COLUMNS", "VERDICTS", "claims_table", "zoo_claims", "holm", "strata_labels", "recipe_keys"]

PAPER_CLAIMS = {
    2: ("more_alike", "high-accuracy trials are more alike (smaller scale-free Wasserstein-1) than low-accuracy trials"),
    3: ("strength_accuracy", "node strength rises with accuracy (DNN, CNN); attention strength falls (ViT)"),
    4: ("predict_accuracy", "final weight statistics predict accuracy and group"),
    5: ("early_warning", "epoch-1 weight statistics predict the final accuracy and group"),
}
"""Claims with their own statistics; claim 1 and the metric claims come from ``analysis.metrics``."""
METRIC_CLAIMS = {m.claim: m for m in claim_metrics()}
"""Claim number -> metric, for the claims 'the metric differs between accuracy groups / follows accuracy'."""


def _metric_claim(m) -> tuple[str, str]:
    return (f"{direction_word(m)}_{m.name}",
            f"high-accuracy trials have {direction_word(m)} {m.text} than low-accuracy trials")


CLAIMS = dict(sorted({**PAPER_CLAIMS, **{c: _metric_claim(m) for c, m in METRIC_CLAIMS.items()}}.items()))
STATISTICS = dict(sorted({
    2: ("w1_ratio", "spearman_distance"),
    3: ("spearman_rho",),
    **{c: ("cliffs_delta", f"spearman_{m.name}") for c, m in METRIC_CLAIMS.items()},
}.items()))
"""Per claim: the group contrast first (metric claims and claim 2), then the continuous form answerable at a
fixed recipe."""
CONTINUOUS = {c: names[-1] for c, names in STATISTICS.items()}
COLUMNS = [
    "model", "dataset", "scope", "arch", "strata", "claim", "claim_name", "layer", "statistic", "value",
    "effect_name", "effect_size", "ci_low", "ci_high", "eq_low", "eq_high", "equivalence_bound", "detectable",
    "p_raw", "p_value", "heterogeneity_p", "n", "n_strata", "verdict", "reason", "cells", "confounder", "carried_by", "detail",
    "verdict_label",
]
VERDICTS = ("supported", "contradicted", "no effect", "never trained", "inconclusive")
SCOPES = ("pooled", "controlled", "within", "seeds", "kfold", "loao")
ALL = "all"
FOLDS = {"seeds": "recipe (features and target centred within it)", "kfold": "folds grouped by recipe",
         "loao": "folds by architecture"}


def recipe_keys(features: xr.Dataset) -> list[str]:
    """The recipe: ``arch`` and every per-trial hyperparameter that takes more than one value."""
    keys = ["arch"]
    for name in HYPERPARAMETERS:
        if name in features.coords and np.unique(features[name].values.astype(str)).size > 1:
            keys.append(name)
    return keys


def strata_labels(features: xr.Dataset, keys=("arch",)) -> np.ndarray:
    """One stratum label per trial from trial coordinates ``keys`` (e.g. arch, or arch and init_std)."""
    missing = [k for k in keys if k not in features.coords]
    if missing:
        raise ValueError(f"cannot stratify by {missing}: the zoo has no such trial coordinate")
    parts = [features[k].values.astype(str) for k in keys]
    if not parts:
        return np.full(features.sizes["trial"], ALL)
    return np.array(["|".join(values) for values in zip(*parts)])


def _strata_text(keys, recipe, drawn_keys=()) -> str:
    narrowed = [k for k in recipe if k not in keys]
    text = ", ".join(keys)
    if narrowed:
        text = f"{text} (narrowed by claims.strata: {', '.join(narrowed)} also varies)"
    else:
        text = f"{text} (the recipe)" if len(keys) > 1 or keys == ["arch"] else text
    if drawn_keys:
        grid = [k for k in keys if k not in drawn_keys]
        text += (f"; {', '.join(grid) or 'nothing'} stratified, {', '.join(drawn_keys)} drawn per trial and adjusted "
                 "for by a smooth fit (partial rank correlation, Freedman–Lane)")
    return text


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
    strata="recipe",
    within: bool = True,
    untrained: dict | None = None,
    max_trials: int = 1000,
    equivalence: dict | None = None,
) -> pd.DataFrame:
    """One row per scope × claim × layer × statistic; columns ``COLUMNS``.

    ``features``: ``trial_features`` of one experiment or ``pool`` of several. ``strata``: ``"recipe"`` (the
    architecture and every varying hyperparameter) or the trial coordinates the controlled scope holds fixed.
    ``untrained``: ``{layer: {arch: why}}`` for layers holding parameters that never trained
    (``analysis.trained``): their rows get the verdict ``never trained`` at the pooled and controlled scopes
    and within the architectures named. ``equivalence``: bounds per effect measure (``testing.EQUIVALENCE``).
    """
    rng = np.random.default_rng(seed)
    labels = features["group"].values.astype(str)
    arch = features["arch"].values.astype(str)
    acc = final_accuracy(features, accuracy)
    model = str(features.attrs.get("model", ""))
    recipe = recipe_keys(features)
    keys = recipe if strata in ("recipe", None) else list(strata)
    grid_keys, drawn_keys = split_recipe(features, keys)
    held = strata_labels(features, grid_keys)
    drawn = np.column_stack([features[k].values.astype(float) for k in drawn_keys]) if drawn_keys else None
    recipe_label = strata_labels(features, recipe)
    everything = np.full(labels.size, ALL)
    scopes = [("pooled", ALL, np.ones(labels.size, bool), everything,
               "none (as the paper; claim 2 within architectures)")]
    text = _strata_text(keys, recipe, drawn_keys)
    scopes.append(("controlled", ALL, np.ones(labels.size, bool), held, text))
    if within and np.unique(arch).size > 1:
        scopes += [("within", a, arch == a, held, text) for a in _natural(np.unique(arch))]
    confounders = [k for k in recipe if np.unique(strata_labels(features, [k])).size > 1]

    rows = []
    # claim 1 draws from the shared generator, as before metrics were registered; every other metric claim has
    # its own stream, so adding a metric never changes another claim's numbers
    tested = {m.claim: m for m in claim_metrics() if FAMILIES[m.family].variable in features}
    metric_rngs = {c: rng if c == 1 else np.random.default_rng([seed, c]) for c in tested}
    metric_values = {c: (m, stored_values(features, m)) for c, m in tested.items()}
    distances = {str(layer): scaled_distances(features["quantile_function"].sel(layer=layer).values, arch, rng,
                                              max_trials)
                 for layer in features["layer"].values}
    for scope, arch_label, mask, stratum, strata_text in scopes:
        common = dict(scope=scope, arch=arch_label, strata=strata_text)
        sub_labels, sub_strata, sub_acc = labels[mask], stratum[mask], acc[mask]
        index = np.flatnonzero(mask)
        # drawn recipe variables are adjusted for by a smooth fit wherever the recipe is held fixed
        adjusting = dict(drawn=drawn[mask], drawn_names=drawn_keys) if drawn is not None and scope != "pooled" else {}
        unmatched = _unmatched_reason(drawn_keys) if adjusting else ""
        within = (common, mask, sub_labels, sub_strata, sub_acc, min_group, n_permutations, alpha, adjusting,
                  unmatched)
        if 1 in metric_values:
            rows += _metric_rows(*metric_values[1], metric_rngs[1], *within)
        # distances exist only between trials of one architecture (layers of one shape): claim 2 compares and
        # permutes inside architectures at every scope, so "pooled" means pooled over recipes within each
        shape_strata = _within_architecture(sub_strata, arch[mask])
        for layer in features["layer"].values:
            d, sampled = distances[str(layer)]
            d = d[np.ix_(index, index)]
            extra = f"; {sampled} trials sampled for distances" if sampled < labels.size else ""
            row = (dict(reason=unmatched, effect_name="w1_ratio_high_low", expected_sign=-1) if unmatched else
                   more_alike(d, sub_labels, shape_strata, min_group, n_permutations, n_bootstrap, alpha, rng))
            rows.append(dict(common, claim=2, layer=str(layer), statistic="w1_ratio", **row))
            row = rank_association(distance_to_stratum(d, shape_strata), sub_acc, sub_labels, shape_strata, -1,
                                   n_permutations, alpha, rng, "mean scale-free W1 to the stratum's other trials",
                                   **adjusting)
            rows.append(dict(common, claim=2, layer=str(layer), statistic="spearman_distance",
                             **dict(row, detail=row.get("detail", "") + extra)))
        for layer in features["strength_layer"].values:
            strength = features["mean_strength"].sel(strength_layer=layer).values[mask]
            rows.append(dict(common, claim=3, layer=str(layer), statistic="spearman_rho",
                             **rank_association(strength, sub_acc, sub_labels, sub_strata,
                                                expected_strength_sign(model, str(layer)), n_permutations, alpha, rng,
                                                "mean node strength", **adjusting)))
        for claim in [c for c in metric_values if c != 1]:
            rows += _metric_rows(*metric_values[claim], metric_rngs[claim], *within)
    variables = {k: features[k].values for k in confounders}
    grid_recipe = strata_labels(features, split_recipe(features, recipe)[0])
    for row in rows:
        if row["scope"] == "pooled":
            row.update(_confounder(row, variables, features, labels, acc, arch, distances, metric_values,
                                   grid_recipe, alpha, rng))

    network = features.attrs.get("network_layer", "network")
    final = features["statistic"].sel(layer=[layer for layer in features["layer"].values if layer != network])
    epoch = features.attrs.get("snapshot")
    prediction = dict(cv_folds=cv_folds, max_iter=max_iter, n_bootstrap=n_bootstrap, alpha=alpha, seed=seed, rng=rng,
                      design=None if drawn is None else design(held, drawn))
    folds = dict(FOLDS, seeds=f"recipe fit removed from features and target (grid strata, a spline of "
                              f"{', '.join(drawn_keys)})") if drawn_keys else FOLDS
    for row in prediction_rows(features_of(final.values), acc, labels, arch, recipe_label, epoch=epoch, **prediction):
        rows.append(dict(row, arch=ALL, claim=4, strata=folds[row["scope"]]))
    if "early_statistic" in features:
        early = features["early_statistic"].sel(layer=final["layer"].values)
        for row in prediction_rows(features_of(early.values), acc, labels, arch, recipe_label,
                                   epoch=features.attrs.get("early_snapshot"), **prediction):
            rows.append(dict(row, arch=ALL, claim=5, strata=folds[row["scope"]]))
    else:
        rows += [dict(scope=s, arch=ALL, claim=5, layer="all layers", statistic=stat,
                      reason=f"no snapshot at epoch {features.attrs.get('early_snapshot')} stored")
                 for s in ("seeds", "kfold", "loao") for stat in ("cv_r2", "kendall_tau", "balanced_accuracy")
                 if not (s == "seeds" and stat == "balanced_accuracy")]

    table = _frame(rows)
    for layer, by_arch in (untrained or {}).items():
        on_layer = table["layer"] == layer
        for arch_label, why in by_arch.items():
            hit = on_layer & (table["arch"] == arch_label)
            table.loc[hit, ["verdict", "reason"]] = ["never trained", f"{why} ({arch_label})"]
        hit = on_layer & table["scope"].isin(["pooled", "controlled"])
        table.loc[hit, ["verdict", "reason"]] = ["never trained", f"{next(iter(by_arch.values()))} "
                                                                   f"({', '.join(_natural(by_arch))})"]
    table = decide(table, alpha, {**EQUIVALENCE, **(equivalence or {})})
    table.insert(0, "model", model)
    table.insert(1, "dataset", features.attrs.get("dataset", ""))
    return table[COLUMNS]


def _within_architecture(strata, arch) -> np.ndarray:
    """Strata split by architecture: claim 2's distances exist only between trials of one architecture."""
    return np.char.add(np.char.add(np.asarray(strata).astype(str), "|"), np.asarray(arch).astype(str))


def _metric_rows(metric, values, rng, common, mask, labels, strata, acc, min_group, n_permutations, alpha, adjusting,
                 unmatched):
    """Both forms of a metric's claim for every layer where the metric is defined (``values``: ``stored_values``)."""
    claim = metric.claim
    rows = []
    for layer in values["layer"].values:
        if not values.attrs["defined"][str(layer)]:
            continue  # not defined on this layer (a spectral metric of the whole network)
        here = values.sel(layer=layer).values[mask]
        if metric.valid and not np.isfinite(here).any():
            why = f"{metric.text} cannot be trusted in any trial here (it needs: {METRICS[metric.valid].long_name})"
            rows += [dict(common, claim=claim, layer=str(layer), statistic=statistic, reason=why,
                          effect_name=effect, expected_sign=metric.direction)
                     for statistic, effect in (("cliffs_delta", "cliffs_delta"),
                                               (f"spearman_{metric.name}", "spearman_rho"))]
            continue
        contrast = (dict(reason=unmatched, effect_name="cliffs_delta", expected_sign=metric.direction) if unmatched
                    else group_contrast(here, labels, strata, min_group, n_permutations, alpha, rng, metric.direction,
                                        metric.name))
        rows.append(dict(common, claim=claim, layer=str(layer), statistic="cliffs_delta", **contrast))
        rows.append(dict(common, claim=claim, layer=str(layer), statistic=f"spearman_{metric.name}",
                         **rank_association(here, acc, labels, strata, metric.direction, n_permutations, alpha, rng,
                                            metric.text, **adjusting)))
    return rows


def _unmatched_reason(drawn_keys) -> str:
    return (f"the recipe variables {', '.join(drawn_keys)} are drawn per trial: no high and low trials share a "
            "recipe, so the group contrast cannot hold it fixed; the continuous form (spearman_*) adjusts for them "
            "by a smooth fit")


def _confounder(row, variables, features, labels, acc, arch, distances, metric_values, clusters, alpha, rng) -> dict:
    """The pooled effect beside the same effect with each recipe variable adjusted for alone, and the variables
    whose adjustment moves it by more than its uncertainty (``confounding``)."""
    if row.get("reason") or not np.isfinite(row.get("effect_size", np.nan)) or not variables:
        return {}
    claim, statistic, layer = row["claim"], row["statistic"], row["layer"]
    if claim in metric_values:
        x = metric_values[claim][1].sel(layer=layer).values
    elif claim == 2:
        x = distance_to_stratum(distances[layer][0], arch) if statistic == "spearman_distance" else None
    else:
        x = features["mean_strength"].sel(strength_layer=layer).values
    d = distances[layer][0] if claim == 2 else None
    if row["effect_name"] == "spearman_rho":  # the trials the pooled rank row used
        keep = (labels != "non") & np.isfinite(x) & np.isfinite(acc)
    else:
        keep = np.isfinite(x) if x is not None else np.isfinite(d).any(axis=1)
    index = np.flatnonzero(keep)
    sub = {k: v[index] for k, v in variables.items()}
    return confounder_test(dict(row, ci_low=row["ci"][0], ci_high=row["ci"][1]), sub,
                           None if x is None else x[index], acc[index], labels[index], arch[index],
                           None if d is None else d[np.ix_(index, index)], clusters[index], alpha, rng)


def _frame(rows) -> pd.DataFrame:
    defaults = dict(value=np.nan, effect_name="", effect_size=np.nan, ci=(np.nan, np.nan), eq=(np.nan, np.nan),
                    detectable=np.nan, p_value=np.nan, heterogeneity_p=np.nan, expected_sign=0, n=0, n_strata=0, reason="", detail="",
                    cells="", confounder="", carried_by="", recipes_disagree="", strata="", verdict="")
    table = pd.DataFrame([{**defaults, **row} for row in rows])
    table["ci_low"], table["ci_high"] = zip(*table.pop("ci"))
    table["eq_low"], table["eq_high"] = zip(*table.pop("eq"))
    names = {**CLAIMS, **{m.claim: _metric_claim(m) for m in claim_metrics()}}
    table["claim_name"] = table["claim"].map(lambda c: names[c][0])
    return table


def _natural(values):
    """Architecture labels in natural order (h2 before h10)."""
    return sorted(values, key=natural_key)


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
