"""Small decisions the workflow makes while building its DAG (standard library only: they run in the main
Snakemake process on every invocation, dry runs included, where importing numpy or matplotlib costs seconds)."""

import csv
import json
from collections import Counter, defaultdict

POOLED = "pooled"
"""The scope of a figure of every architecture of a (model, dataset) together; any other scope is an architecture."""


def figure_experiments(summary_groups_path, min_group: int = 3) -> list[str]:
    """Experiments with at least two accuracy groups of ``min_group`` trials: only these get per-architecture
    figures (one group would draw one colour and an empty projection)."""
    sizes: dict[str, Counter] = defaultdict(Counter)
    with open(summary_groups_path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["group"]:
                sizes[row["experiment"]][row["group"]] += 1
    return sorted(e for e, counts in sizes.items() if sum(n >= min_group for n in counts.values()) >= 2)


def read_scores(path) -> dict:
    """Projection scores written by a projection job, or {} while the file does not exist yet."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}
