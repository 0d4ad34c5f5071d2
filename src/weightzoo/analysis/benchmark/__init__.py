"""A prediction benchmark: how well do a trial's weights predict its final test accuracy (Unterthiner et al.
2020's target), method against method, on the same folds, beside the published numbers?

- ``folds``: K folds grouped by recipe over the trials used (``folds.csv``, the contract every method shares,
  the weight-space network's rule included); diverged trials are left out.
- ``methods``: (a) Unterthiner et al.'s per-layer statistics, kernel and bias separately; (b) the spectral
  metrics of the metric registry; (c) node-strength summaries; (d) the union of (a)–(c); each fed to the same
  gradient-boosting regressor (``claims.out_of_fold``). (e) the weight-space network's out-of-fold predictions,
  read from its own file (``external``). Pooled over (model, dataset) cells: layer-pooled features only.
- ``table``: Kendall tau and R² of the out-of-fold predictions with 1 - alpha bootstrap intervals over
  recipes, n trials, n recipes and K, beside the anchors (``anchors``: ``anchors.csv``); the best method per
  cell, or the methods whose intervals overlap it. A row that the zoo cannot answer (fewer than 5 recipes, too
  few trials) says so and what would answer it.
"""

from weightzoo.analysis.benchmark.anchors import anchor_columns, anchors
from weightzoo.analysis.benchmark.external import PREDICTION_COLUMNS, align_predictions, read_predictions
from weightzoo.analysis.benchmark.folds import FOLD_COLUMNS, assign_folds, exclusions, fold_of, read_folds, recipes
from weightzoo.analysis.benchmark.methods import METHODS
from weightzoo.analysis.benchmark.table import COLUMNS, POOLED, Cell, benchmark_table

__all__ = ["COLUMNS", "FOLD_COLUMNS", "METHODS", "POOLED", "PREDICTION_COLUMNS", "Cell", "align_predictions",
           "anchor_columns", "anchors", "assign_folds", "benchmark_table", "exclusions", "fold_of", "read_folds",
           "read_predictions", "recipes"]
