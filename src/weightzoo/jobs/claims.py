"""Workflow jobs of the claims: the claims of one (model, dataset) at every scope, then all claims, the verdict
counts, the training status and the findings page."""

import base64
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from weightzoo.analysis.claims import claims_table
from weightzoo.analysis.features import read_features
from weightzoo.analysis.findings import findings_table, forest_table, recipe_group_spread, verdict_matrix
from weightzoo.analysis.groups import absent_figure_notes, group_counts
from weightzoo.analysis.status import training_status_notes, training_status_table, untrained_reasons
from weightzoo.io.atomic import load_checked, write_csv_atomic, write_text_atomic
from weightzoo.report.figures import save_figure
from weightzoo.report.forest import verdict_forest
from weightzoo.report.html import claims_page, findings_page, table_page, verdict_counts
from weightzoo.selection import figure_experiments

log = logging.getLogger(__name__)


def evaluate_claims(feature_paths: Sequence[str], csv_path, html_path, settings: Mapping, title: str,
                    accuracy: str = "train", seed: int = 0, status_paths: Sequence[str] = ()) -> None:
    """The claims of one (model, dataset) at every scope (CSV, HTML)."""
    features = read_features(feature_paths)
    untrained = untrained_reasons([load_checked(path) for path in status_paths])
    settings = {k: v for k, v in settings.items() if k not in ("early_snapshot", "max_values")}
    table = claims_table(features, seed=seed, accuracy=accuracy, untrained=untrained, **settings)
    write_csv_atomic(table, csv_path)
    write_text_atomic(claims_page(table, f"Claims of the paper tested on {title}"), html_path)
    log.info("verdicts by scope:\n%s", table.groupby(["scope", "verdict"]).size().unstack(fill_value=0))


def read_claims(path) -> pd.DataFrame:
    """A stored claims table (empty cells are missing values, nothing else is)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def draw_verdicts(claims_path, out_path, title: str) -> None:
    """The forest plot of one (model, dataset)'s stored claims (``report.forest``)."""
    save_figure(verdict_forest(forest_table(read_claims(claims_path)), title), out_path)


def collect_findings(claims_paths: Sequence[str], summary_groups_path, csv_path, overview_path, findings_path,
                     min_group: int = 3, status_paths: Sequence[str] = (), status_html_path=None,
                     forest_paths: Sequence[str] = ()) -> None:
    """All claims in one CSV, verdict counts per scope, the findings page and, with ``status_paths``, the table of
    parameters that never trained and of dead units. ``forest_paths``: the forest plots (PNG) of the
    (model, dataset)s in the order of ``claims_paths``, embedded at the top of the findings page."""
    tables = [read_claims(p) for p in claims_paths]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    write_csv_atomic(table, csv_path)
    write_text_atomic(table_page(verdict_counts(table), title="Verdict counts: how many tests of each claim got each "
                                 "verdict, per model, dataset and scope", digits=0), overview_path)
    summary = pd.read_csv(summary_groups_path, keep_default_na=False)
    notes = absent_figure_notes(summary, figure_experiments(summary_groups_path, min_group), min_group)
    if status_paths:
        status_table = training_status_table([load_checked(path) for path in status_paths])
        notes = training_status_notes(status_table) + notes
        write_text_atomic(table_page(status_table, title="Parameters that never trained and dead ReLU units, per "
                                     "experiment and parameter (medians over trials)", digits=3, significant=True),
                          status_html_path)
    findings = findings_table(table, recipe_group_spread(summary))
    forests = []
    for claims, png in zip(tables, forest_paths):
        if not claims.empty:
            uri = "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")
            forests.append((str(claims["model"].iloc[0]), str(claims["dataset"].iloc[0]), uri))
    write_text_atomic(findings_page(findings, group_counts(summary), notes, "Findings: the paper's claims on this zoo",
                                    matrix=verdict_matrix(table), forests=forests), findings_path)
    log.info("findings:\n%s", findings[["model", "dataset", "claim", "layer", "recipe", "pooled", "carried_by"]].to_string())
