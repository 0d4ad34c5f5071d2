"""Claims 4–5 never score by recognising the recipe: folds grouped by recipe, honest units, clear limits."""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold, cross_val_predict

from weightzoo.analysis.claims.out_of_fold import r2
from weightzoo.analysis.claims.prediction import prediction_rows

SETTINGS = dict(cv_folds=5, max_iter=20, n_bootstrap=199, alpha=0.05, seed=0, epoch=3)


def recipe_only_zoo(n_recipes=12, seeds=16, seed=0):
    """Features that encode only the recipe (a random code per recipe + noise); accuracy = the recipe's
    random mean + seed noise: nothing about a trial's weights beyond its recipe carries its accuracy."""
    rng = np.random.default_rng(seed)
    codes, means = rng.normal(size=(n_recipes, 6)), rng.uniform(0.5, 0.9, n_recipes)
    recipe = np.repeat(np.arange(n_recipes), seeds)
    X = codes[recipe] + 0.01 * rng.normal(size=(recipe.size, 6))
    acc = means[recipe] + 0.01 * rng.normal(size=recipe.size)
    arch = np.array([f"h{r % 4}" for r in recipe])
    labels = np.where(acc > 0.75, "high", np.where(acc < 0.6, "low", "mid"))
    return X, acc, labels, arch, recipe.astype(str)


def by(rows, scope, statistic):
    return next(r for r in rows if r["scope"] == scope and r["statistic"] == statistic)


def test_recipe_only_features_score_nothing_once_folds_hold_out_recipes():
    X, acc, labels, arch, recipe = recipe_only_zoo()
    # the leak the grouped folds close: ungrouped K-fold sees seed siblings and "predicts" almost perfectly
    leaky = cross_val_predict(HistGradientBoostingRegressor(max_iter=50, min_samples_leaf=5), X, acc,
                              cv=KFold(5, shuffle=True, random_state=0))
    assert r2(acc, leaky) > 0.9
    rows = prediction_rows(X, acc, labels, arch, recipe, rng=np.random.default_rng(0), **SETTINGS)
    grouped = by(rows, "kfold", "cv_r2")
    assert grouped["effect_size"] < 0.2 and grouped["ci"][0] < 0
    seeds = by(rows, "seeds", "cv_r2")
    assert seeds["effect_size"] < 0.2 and seeds["ci"][0] < 0
    assert "grouped by recipe" in grouped["detail"]


def test_within_recipe_signal_is_found_among_seeds():
    X, acc, labels, arch, recipe = recipe_only_zoo()
    rng = np.random.default_rng(1)
    deviation = rng.normal(size=acc.size)
    X = np.column_stack([X, deviation + 0.1 * rng.normal(size=acc.size)])
    acc = acc + 0.02 * deviation
    rows = prediction_rows(X, acc, labels, arch, recipe, rng=rng, **SETTINGS)
    seeds = by(rows, "seeds", "cv_r2")
    assert seeds["effect_size"] > 0.5 and seeds["ci"][0] > 0
    assert by(rows, "seeds", "kendall_tau")["effect_size"] > 0.5


@pytest.mark.parametrize("n_archs", [2])
def test_leave_one_architecture_out_needs_three(n_archs):
    X, acc, labels, arch, recipe = recipe_only_zoo()
    arch = np.array([f"h{int(r) % n_archs}" for r in recipe])
    rows = prediction_rows(X, acc, labels, arch, recipe, rng=np.random.default_rng(0), **SETTINGS)
    loao = [r for r in rows if r["scope"] == "loao"]
    assert all("architectures < 3" in r["reason"] for r in loao)


def test_a_group_missing_from_a_training_fold_is_inconclusive():
    X, acc, labels, arch, recipe = recipe_only_zoo()
    labels = np.where(recipe == "0", "non", labels)  # one recipe alone holds the group non
    rows = prediction_rows(X, acc, labels, arch, recipe, rng=np.random.default_rng(0), **SETTINGS)
    classification = by(rows, "kfold", "balanced_accuracy")
    assert "absent from a training fold" in classification["reason"]
    assert "non" in classification["reason"]


def test_too_few_recipes_for_grouped_folds_say_so():
    X, acc, labels, arch, recipe = recipe_only_zoo(n_recipes=4)
    rows = prediction_rows(X, acc, labels, arch, recipe, rng=np.random.default_rng(0), **SETTINGS)
    assert by(rows, "kfold", "cv_r2")["reason"].startswith("4 recipes < 5")
