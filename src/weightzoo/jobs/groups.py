"""Workflow jobs of the accuracy groups: every trial's group, and Table 2 beside the paper's."""

import logging
from collections.abc import Mapping

import pandas as pd

from weightzoo.analysis.groups import class_shares, group_summary
from weightzoo.analysis.table2 import compare_with_paper, table2
from weightzoo.io.atomic import load_checked, write_csv_atomic, write_text_atomic
from weightzoo.report.html import table_page

log = logging.getLogger(__name__)


def group_trials(summary_path, dataset_paths: Mapping[str, str], out_path, settings: Mapping) -> None:
    """Accuracy groups of every trial into ``summary_groups.csv``."""
    accuracy = settings.get("accuracy", "train")
    datasets = {name: class_shares(load_checked(path), accuracy) for name, path in dataset_paths.items()}
    for name, (n_classes, majority) in datasets.items():
        log.info("%s: %d classes, majority share of the %s split %.4f", name, n_classes, accuracy, majority)
    table = group_summary(
        pd.read_csv(summary_path), datasets, accuracy=accuracy, method=settings.get("method", "delta"),
        delta=settings.get("delta", 0.1), margin=settings.get("margin", 0.02), floor=settings.get("floor", 0.25),
        bins=settings.get("bins") or None,
        seed=settings.get("seed", 0), scope=settings.get("scope", "model_dataset"),
        paper_datasets=settings.get("paper_datasets"),
    )
    counts = table.groupby(["experiment", "group"]).size().unstack(fill_value=0)
    log.info("groups per experiment (%s accuracy, method %s):\n%s", accuracy, settings.get("method"), counts)
    write_csv_atomic(table, out_path)


def tabulate_groups(summary_groups_path, csv_path, html_path, accuracy: str = "train",
                    paper_datasets: Mapping[str, str] | None = None) -> None:
    """Table 2 (ours next to the paper's) as CSV and HTML."""
    summary = pd.read_csv(summary_groups_path, keep_default_na=False, na_values=[""])
    summary["group"] = summary["group"].fillna("").astype(str)
    table = compare_with_paper(table2(summary, accuracy=accuracy), dict(paper_datasets or {}))
    write_csv_atomic(table, csv_path)
    title = f"Final {accuracy} accuracy (%) per accuracy group: this run vs. the paper"
    write_text_atomic(table_page(table, title=title), html_path)
    log.info("Table 2:\n%s", table.to_string(index=False))
