"""Out-of-fold predictions made outside the benchmark (method e, the weight-space network), read and checked
against the benchmark's folds before they are scored like the others.

The file, ``weight_space_net.csv`` of a (model, dataset), has one row per trial with columns
``PREDICTION_COLUMNS``: ``experiment`` and ``trial`` (as in ``folds.csv``), ``fold`` (the fold the trial was
predicted in, i.e. held out of), ``target`` (the final test accuracy it was trained to predict) and
``predicted``.
"""

import numpy as np
import pandas as pd

PREDICTION_COLUMNS = ("experiment", "trial", "fold", "target", "predicted")
TARGET_TOLERANCE = 1e-5
"""Largest difference between the file's target and the features' final test accuracy (float32 round trips)."""


def read_predictions(path) -> pd.DataFrame:
    """An out-of-fold predictions file (columns checked, one row per (experiment, trial))."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"experiment": str})
    missing = [c for c in PREDICTION_COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)} (out-of-fold predictions have "
                         f"{', '.join(PREDICTION_COLUMNS)})")
    if frame.duplicated(["experiment", "trial"]).any():
        raise ValueError(f"{path}: a trial is predicted more than once")
    return frame


def align_predictions(predictions: pd.DataFrame, used: pd.DataFrame, target: np.ndarray) -> tuple[np.ndarray, str, str]:
    """``(predicted, reason, note)``: the predictions of the trials ``used`` (columns experiment, trial, fold; in
    their order), '' or why they cannot be scored on the benchmark's folds, and a note on trials left out.
    ``target``: the features' final test accuracy of those trials."""
    keys = ["experiment", "trial"]
    joined = used[[*keys, "fold"]].merge(predictions, on=keys, how="left", suffixes=("", "_predicted"),
                                         validate="one_to_one")
    nothing = np.full(len(used), np.nan)
    missing = int(joined["predicted"].isna().sum())
    if missing:
        return nothing, (f"{missing} of the {len(used)} trials of folds.csv have no (finite) prediction (a fold the "
                         "weight-space network could not train for: its summary weight_space_net.json says why)"), ""
    moved = int((joined["fold"].to_numpy() != joined["fold_predicted"].to_numpy()).sum())
    if moved:
        return nothing, (f"{moved} trials were predicted in another fold than folds.csv gives them: not "
                         "out-of-fold on the benchmark's folds"), ""
    off = ~(np.abs(joined["target"].to_numpy(float) - np.asarray(target, float)) <= TARGET_TOLERANCE)
    if off.any():
        return nothing, f"its target is not the final test accuracy in {int(off.sum())} trials", ""
    extra = len(predictions) - len(used)
    note = f"{extra} predicted trials are not in folds.csv (excluded there) and are left out" if extra > 0 else ""
    return joined["predicted"].to_numpy(float), "", note
