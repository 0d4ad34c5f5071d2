"""The benchmark's folds: K folds grouped by recipe over the trials used, the contract every method shares.

``folds.csv`` of a (model, dataset) has one row per trial used, columns ``FOLD_COLUMNS``: ``experiment``
(``model/dataset/arch``, as the features and zoo files name it), ``trial`` (the trial's index in that
experiment's zoo and features file), ``recipe`` (the architecture and every per-trial hyperparameter that
varies, ``claims.recipe_keys``; with per-trial random draws every trial is its own recipe) and ``fold``
(0 … K - 1). The seeds of one recipe always share a fold, so no method is tested on a recipe it was trained on.
Excluded (``exclusions``): diverged trials (their weights stopped at a NaN loss and their accuracy is that of a
broken net) and trials without a final test accuracy.
"""

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.model_selection import GroupKFold

from weightzoo.analysis.claims import recipe_keys, strata_labels
from weightzoo.analysis.features import accuracy

FOLD_COLUMNS = ("experiment", "trial", "recipe", "fold")
TARGET = "test"
"""The target: final test accuracy, as Unterthiner et al. (2020) predict."""


def target(features: xr.Dataset) -> np.ndarray:
    """Final test accuracy per trial (fraction)."""
    return accuracy(features, TARGET)


def trial_numbers(features: xr.Dataset) -> np.ndarray:
    """Each trial's index in its own experiment (``trial_in_experiment`` of pooled features)."""
    name = "trial_in_experiment" if "trial_in_experiment" in features.coords else "trial"
    return features[name].values.astype(int)


def exclusions(features: xr.Dataset) -> np.ndarray:
    """Per trial, why it is left out of the benchmark ('' = used)."""
    why = np.full(features.sizes["trial"], "", dtype=object)
    why[~np.isfinite(target(features))] = "no final test accuracy"
    if "diverged" in features:
        why[features["diverged"].values.astype(bool)] = "diverged"
    return why.astype(str)


def recipes(features: xr.Dataset) -> np.ndarray:
    """The recipe label of every trial (``arch|value|...`` of the recipe keys)."""
    return strata_labels(features, recipe_keys(features))


def assign_folds(features: xr.Dataset, cv_folds: int, seed: int) -> pd.DataFrame:
    """``folds.csv`` of the features of one (model, dataset): min(cv_folds, recipes) folds grouped by recipe
    (scikit-learn's ``GroupKFold``, shuffled with ``seed``); a single recipe gets fold 0 (nothing to hold out)."""
    used = exclusions(features) == ""
    recipe = recipes(features)[used]
    n_folds = int(min(cv_folds, np.unique(recipe).size))
    fold = np.zeros(recipe.size, int)
    if n_folds >= 2:
        splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        for k, (_, test) in enumerate(splitter.split(np.zeros((recipe.size, 1)), groups=recipe)):
            fold[test] = k
    frame = pd.DataFrame({"experiment": features["experiment"].values.astype(str)[used],
                          "trial": trial_numbers(features)[used], "recipe": recipe, "fold": fold})
    return frame.sort_values(["experiment", "trial"], kind="stable").reset_index(drop=True)


def read_folds(path) -> pd.DataFrame:
    """A ``folds.csv``: one row per (experiment, trial) with its recipe and fold (columns and rows checked)."""
    frame = pd.read_csv(path, keep_default_na=False, dtype={"experiment": str, "recipe": str})
    missing = [c for c in FOLD_COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)} (a folds file has {', '.join(FOLD_COLUMNS)})")
    twice = frame.duplicated(["experiment", "trial"])
    if twice.any():
        raise ValueError(f"{path}: trials listed twice: {frame.loc[twice, ['experiment', 'trial']].values.tolist()[:5]}")
    return frame


def fold_of(features: xr.Dataset, folds: pd.DataFrame) -> np.ndarray:
    """The fold of every trial of ``features`` (-1 for a trial not in ``folds``)."""
    key = pd.MultiIndex.from_arrays([features["experiment"].values.astype(str), trial_numbers(features)])
    table = pd.Series(folds["fold"].to_numpy(), index=pd.MultiIndex.from_frame(folds[["experiment", "trial"]]))
    return table.reindex(key).fillna(-1).to_numpy().astype(int)
