"""Claims 4–5: weight statistics predict accuracy (regression) and group (classification).

Features: per-layer mean, std and quantiles (Unterthiner et al. 2020). Gradient boosting, cross-validated
three ways, all honest about seeds: seeds of one recipe (architecture and hyperparameters) are not
independent units, so

- ``seeds``: which seeds of a recipe do better, the paper design's question. K folds over trials, with every
  feature centred on its recipe's mean and the target centred on the *training* fold's recipe mean: the
  recipe's identity carries nothing, so only within-recipe differences can score. Works with one recipe.
- ``kfold``: K folds *grouped by recipe* (scikit-learn ``GroupKFold``; ``StratifiedGroupKFold`` for the
  groups): no seed sibling of a test trial is in its training fold, so a model cannot score by recognising
  the recipe. Needs 3 or more recipes.
- ``loao``: leave one architecture out (train on the others, predict the held-out one), only with 3 or more
  architectures (with two, each fold extrapolates to the other's accuracy range).

Intervals are a bootstrap over recipes (whole recipes resampled; ``seeds`` with fewer than 5 recipes
resamples trials within each recipe), or with 3 to 19 recipes a jackknife over recipes with t quantiles (a
bootstrap of so few recipes with the predictions held fixed resamples the mean accuracy away); the regressor and
its scores: ``out_of_fold``; p-values come from the same computation as their interval. Each statistic is its own row: R² (above 0 supports), Kendall tau of the out-of-fold
predictions, balanced accuracy above chance. A group absent from some training fold makes the
classification row inconclusive (it could only be guessed wrong).
"""

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, StratifiedGroupKFold
from threadpoolctl import threadpool_limits

from weightzoo.analysis.claims.out_of_fold import cross_val_predict, leaf_size, regression_scores, regressor
from weightzoo.analysis.claims.testing import bootstrap_p, interval, resample_clusters, stratum_indices

SCHEMES = ("seeds", "kfold", "loao")
MIN_UNITS = {"seeds": 1, "kfold": 5, "loao": 3}
"""Fewest recipes (kfold: folds and a bootstrap over recipes need five) or architectures (loao) a scheme needs."""


def features_of(statistic: np.ndarray) -> np.ndarray:
    """(trial, layer, stat) -> (trial, layer x stat)."""
    return statistic.reshape(statistic.shape[0], -1)


def prediction_rows(X, acc, labels, arch, recipe, cv_folds, max_iter, n_bootstrap, alpha, seed, rng, epoch,
                    design=None) -> list[dict]:
    """Rows (scope, statistic, values) of one claim for both cross-validation schemes. ``design``: (trials, p)
    recipe design (``adjust.design``) when some recipe variables are drawn per trial: the ``seeds`` scheme then
    removes a least-squares fit on it instead of recipe means."""
    with threadpool_limits(limits=1, user_api="openmp"):  # tiny trees: OpenMP threads cost more than they save
        rows = []
        for scheme in SCHEMES:
            rows += _scheme_rows(scheme, X, acc, labels, arch, recipe, cv_folds, max_iter, n_bootstrap, alpha, seed,
                                 rng, epoch, design)
        return rows


def _folds(scheme, n_folds, seed, stratify):
    if scheme == "loao":
        return LeaveOneGroupOut()
    if stratify:
        return StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)


def _scheme_rows(scheme, X, acc, labels, arch, recipe, cv_folds, max_iter, n_bootstrap, alpha, seed, rng, epoch,
                 design=None):
    keep = np.isfinite(X).all(axis=1) & np.isfinite(acc)
    X, y, g, a, r, n = X[keep], acc[keep], labels[keep], arch[keep], recipe[keep], int(keep.sum())
    if scheme == "seeds" and design is not None:
        return _adjusted_seed_rows(X, y, g, design[keep], cv_folds, max_iter, n_bootstrap, alpha, seed, rng, epoch)
    if scheme == "seeds":
        return _seed_rows(X, y, g, r, cv_folds, max_iter, n_bootstrap, alpha, seed, rng, epoch)
    units = a if scheme == "loao" else r
    n_units = np.unique(units).size
    n_folds = int(min(cv_folds, n_units))
    what = "architectures" if scheme == "loao" else "recipes"
    detail = f"{X.shape[1]} features from the epoch-{epoch} snapshot; " + (
        f"{n_folds} folds grouped by recipe ({n_units} recipes)" if scheme == "kfold"
        else f"leave one of {n_units} architectures out")
    base = dict(scope=scheme, layer="all layers", n=n, n_strata=n_units, detail=detail)
    min_n = max(10, 2 * cv_folds)
    reason = ""
    if n < min_n:
        reason = f"{n} usable trials < {min_n}"
    elif n_units < MIN_UNITS[scheme]:
        reason = (f"{n_units} {what} < {MIN_UNITS[scheme]}: cross-validation must hold out whole recipes (seeds of one "
                  "recipe are not independent), and too few recipes leave nothing to learn across and no interval"
                  if scheme == "kfold" else
                  f"{n_units} {what} < {MIN_UNITS[scheme]}: nothing to generalise across")
    elif np.ptp(y) == 0:
        reason = "accuracy is the same in every trial"
    rows = []
    if reason:
        rows += [dict(base, statistic="cv_r2", reason=reason), dict(base, statistic="kendall_tau", reason=reason)]
    else:
        predicted = cross_val_predict(regressor(n, max_iter, seed), X, y, _folds(scheme, n_folds, seed, False), units)
        rows += _regression_rows(base, y, predicted, r, n_bootstrap, alpha, rng)
    rows.append(_classification_row(scheme, base, X, g, units, r, n_folds, max_iter, n_bootstrap, alpha, seed, rng,
                                    min_n, reason))
    return rows


def _seed_rows(X, y, labels, recipe, cv_folds, max_iter, n_bootstrap, alpha, seed, rng, epoch):
    """Scheme ``seeds``: within-recipe deviations of accuracy from within-recipe deviations of the features."""
    converged = labels != "non"  # chance-level trials carry no ranking among seeds
    X, y, recipe = X[converged], y[converged], recipe[converged]
    members = stratum_indices(recipe)
    n, n_folds = int(y.size), int(min(cv_folds, y.size))
    base = dict(scope="seeds", layer="all layers", n=n, n_strata=len(members),
                detail=(f"{X.shape[1]} features from the epoch-{epoch} snapshot, centred within {len(members)} "
                        f"recipes; {n_folds}-fold over converged seeds, target = accuracy minus the training fold's "
                        "recipe mean"))
    min_n = max(10, 2 * cv_folds)
    spread = max((np.ptp(y[i]) for i in members), default=0.0)
    reason = (f"{n} converged trials < {min_n}" if n < min_n
              else "every recipe has one trial (hyperparameters drawn per trial): no seeds of a recipe to compare; "
                   "a list of values with several seeds each would answer it" if max(map(len, members)) < 2
              else "accuracy is the same among the seeds of every recipe" if spread == 0 else "")
    if reason:
        return [dict(base, statistic="cv_r2", reason=reason), dict(base, statistic="kendall_tau", reason=reason)]
    Xc = X.copy()
    for index in members:
        Xc[index] -= X[index].mean(axis=0)
    model = regressor(n, max_iter, seed)
    predicted, target = np.empty(n), np.empty(n)
    for train, test in KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(Xc):
        centre = {k: y[np.intersect1d(index, train)].mean() if np.intersect1d(index, train).size else y[train].mean()
                  for k, index in enumerate(members)}
        offset = np.empty(n)
        for k, index in enumerate(members):
            offset[index] = centre[k]
        predicted[test] = model.fit(Xc[train], y[train] - offset[train]).predict(Xc[test])
        target[test] = y[test] - offset[test]
    clusters = recipe if len(members) >= MIN_UNITS["kfold"] else np.arange(n).astype(str)
    return _regression_rows(base, target, predicted, clusters, n_bootstrap, alpha, rng, within=recipe)


def _adjusted_seed_rows(X, y, labels, design, cv_folds, max_iter, n_bootstrap, alpha, seed, rng, epoch):
    """Scheme ``seeds`` where recipe variables are drawn per trial: features and target with a least-squares fit
    on the recipe design removed (grid strata and a spline of every drawn variable, ``adjust``); the target's fit
    uses the training fold only. Bootstrap over trials (each its own recipe)."""
    from weightzoo.analysis.claims.adjust import MIN_RESIDUAL, residual_maker

    converged = labels != "non"
    X, y, z = X[converged], y[converged], design[converged]
    n, n_folds = int(y.size), int(min(cv_folds, y.size))
    residualise, rank = residual_maker(z)
    base = dict(scope="seeds", layer="all layers", n=n, n_strata=rank,
                detail=(f"{X.shape[1]} features from the epoch-{epoch} snapshot with a fit on the recipe ({rank} "
                        f"parameters: grid strata and a spline of each drawn variable) removed; {n_folds}-fold over "
                        "converged trials, target = accuracy minus the training fold's recipe fit"))
    min_n = max(10, 2 * cv_folds, rank + MIN_RESIDUAL)
    if n < min_n:
        reason = (f"{n} converged trials < {min_n}: too few to remove a {rank}-parameter recipe fit and still "
                  f"cross-validate; {min_n} trials would answer it")
        return [dict(base, statistic="cv_r2", reason=reason), dict(base, statistic="kendall_tau", reason=reason)]
    Xc = residualise(X.T).T
    model = regressor(n, max_iter, seed)
    predicted, target = np.empty(n), np.empty(n)
    for train, test in KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(Xc):
        beta = np.linalg.lstsq(z[train], y[train], rcond=None)[0]
        offset = z @ beta
        predicted[test] = model.fit(Xc[train], y[train] - offset[train]).predict(Xc[test])
        target[test] = y[test] - offset[test]
    return _regression_rows(base, target, predicted, np.arange(n).astype(str), n_bootstrap, alpha, rng,
                            within=np.zeros(n, int))


def _regression_rows(base, y, predicted, recipe, n_bootstrap, alpha, rng, within=None):
    """R² and Kendall tau rows; bootstrap over ``recipe`` clusters (trials resampled within the ``within``
    strata when the clusters are single trials)."""
    scores = regression_scores(y, predicted, recipe, n_bootstrap, alpha, rng, within)
    rows = [dict(base, statistic="cv_r2", value=scores["r2"], effect_name="r2", effect_size=scores["r2"],
                 expected_sign=1, ci=scores["r2_ci"], eq=scores["r2_eq"], p_value=scores["r2_p"],
                 detail=f"{base['detail']}; R² below 0 predicts worse than the mean accuracy")]
    if scores["tau"] is None:
        rows.append(dict(base, statistic="kendall_tau", reason="constant out-of-fold predictions"))
        return rows
    rows.append(dict(base, statistic="kendall_tau", value=scores["tau"], effect_name="kendall_tau",
                     effect_size=scores["tau"], expected_sign=1, ci=scores["tau_ci"], eq=scores["tau_eq"],
                     p_value=scores["tau_p"], detail=f"{base['detail']}; anchor: tau 0.915 on the CIFAR-10-GS Small CNN Zoo"))
    return rows


def _classification_row(scheme, base, X, g, units, recipe, n_folds, max_iter, n_bootstrap, alpha, seed, rng, min_n,
                        reason):
    base = dict(base, statistic="balanced_accuracy")
    if reason:
        return dict(base, reason=reason)
    grouped = np.isin(g, ("non", "low", "mid", "high"))
    classes, counts = np.unique(g[grouped], return_counts=True)
    usable = classes[counts >= 2]
    mask = np.isin(g, usable)
    if usable.size < 2 or mask.sum() < min_n:
        reason = (f"fewer than 2 groups with 2 or more trials ({usable.size})" if usable.size < 2
                  else f"{int(mask.sum())} usable trials < {min_n}")
        return dict(base, n=int(mask.sum()), reason=reason)
    Xc, gc, uc, rc = X[mask], g[mask], units[mask], recipe[mask]
    n_splits = int(min(n_folds, np.unique(uc).size))
    if n_splits < 2:
        return dict(base, n=int(mask.sum()), reason="the grouped trials come from one recipe or architecture only")
    splitter = _folds(scheme, n_splits, seed, True)
    absent = set()
    for train, _ in splitter.split(Xc, gc, uc):
        absent |= set(usable) - set(gc[train])
    if absent:
        return dict(base, n=int(gc.size), reason=(
            f"group {', '.join(sorted(absent))} is absent from a training fold (its trials come from too few "
            f"{'architectures' if scheme == 'loao' else 'recipes'}): it could only be predicted wrong"))
    model = HistGradientBoostingClassifier(max_iter=max_iter, min_samples_leaf=leaf_size(gc.size), random_state=seed)
    predicted = cross_val_predict(model, Xc, gc, splitter, uc)
    chance = 1.0 / usable.size
    observed, boot = _balanced_accuracy(gc, predicted, usable, resample_clusters(rc, n_bootstrap, rng))
    return dict(base, value=observed, effect_name="above_chance", effect_size=observed - chance, expected_sign=1,
                ci=tuple(v - chance for v in interval(boot, 1 - alpha)),
                eq=tuple(v - chance for v in interval(boot, 1 - 2 * alpha)), p_value=bootstrap_p(boot, chance),
                n=int(gc.size), detail=f"{base['detail']}; groups {', '.join(usable)}; chance {chance:.3g}")


def _balanced_accuracy(truth, predicted, classes, weights):
    """Balanced accuracy (mean recall over ``classes``) and its replicates under bootstrap ``weights``."""
    weights = np.vstack([np.ones(truth.size), weights]).astype(float)
    recalls = []
    for c in classes:
        is_c = truth == c
        with np.errstate(invalid="ignore", divide="ignore"):
            recalls.append((weights * (is_c & (predicted == c))).sum(axis=1) / (weights * is_c).sum(axis=1))
    balanced = np.nanmean(np.column_stack(recalls), axis=1)
    return float(balanced[0]), balanced[1:]
