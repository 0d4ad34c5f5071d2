"""Workflow jobs of the prediction benchmark: the folds of one (model, dataset), then every method scored on
them over all (model, dataset) cells (CSV and the report's HTML table).

Files live at ``results/analysis/benchmark/{model}/{dataset}/``: ``folds.csv`` (``analysis.benchmark.folds``)
and, from the weight-space network's rule, ``weight_space_net.csv``; a file's cell is read from those two
folder names.
"""

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from weightzoo.analysis.benchmark import Cell, assign_folds, benchmark_table, exclusions, read_folds, read_predictions
from weightzoo.analysis.features import pool, read_features
from weightzoo.io.atomic import load_checked, write_csv_atomic, write_text_atomic
from weightzoo.report.html import benchmark_page

log = logging.getLogger(__name__)


def write_folds(feature_paths: Sequence[str], folds_path, cv_folds: int, seed: int) -> None:
    """``folds.csv`` of the experiments in ``feature_paths`` (one (model, dataset))."""
    features = read_features(feature_paths)
    folds = assign_folds(features, cv_folds, seed)
    write_csv_atomic(folds, folds_path)
    why = exclusions(features)
    for index in (i for i, reason in enumerate(why) if reason):
        log.info("excluded: %s trial %d (%s)", features["experiment"].values[index],
                 int(features["trial_in_experiment"].values[index]), why[index])
    log.info("%d trials in %d folds over %d recipes; %d excluded", len(folds), folds["fold"].nunique(),
             folds["recipe"].nunique(), int((why != "").sum()))


def _cell_of(path) -> tuple[str, str]:
    folder = Path(path).parent
    return folder.parent.name, folder.name


def evaluate_benchmark(feature_paths: Sequence[str], folds_paths: Sequence[str], csv_path, html_path,
                       settings: Mapping, alpha: float = 0.05, seed: int = 0, prediction_paths: Sequence[str] = (),
                       weight_space_net: bool = False) -> None:
    """The benchmark table over every (model, dataset) of ``folds_paths`` (features: every experiment's file;
    ``prediction_paths``: the weight-space network's out-of-fold predictions, when it ran)."""
    by_cell = {}
    for path in feature_paths:
        features = load_checked(path)
        by_cell.setdefault((features.attrs["model"], features.attrs["dataset"]), []).append(features)
    predictions = {_cell_of(path): read_predictions(path) for path in prediction_paths}
    cells = []
    for path in folds_paths:
        key = _cell_of(path)
        if key not in by_cell:
            raise ValueError(f"{path}: no features of {key[0]} on {key[1]} among the inputs")
        cells.append(Cell(*key, pool(by_cell[key]), read_folds(path), predictions.get(key)))
    table = benchmark_table(cells, max_iter=settings["max_iter"], max_bins=settings["max_bins"],
                            n_bootstrap=settings["n_bootstrap"], alpha=alpha, seed=seed,
                            weight_space_net=weight_space_net)
    write_csv_atomic(table, csv_path)
    write_text_atomic(benchmark_page(table, "Predicting final test accuracy from the weights: methods on shared "
                                     "folds grouped by recipe, beside the published numbers", 1 - alpha), html_path)
    log.info("benchmark:\n%s", table[["model", "dataset", "method", "n", "n_recipes", "r2", "tau", "best",
                                      "reason"]].to_string())
