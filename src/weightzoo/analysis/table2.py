"""The paper's Table 2 (accuracy per group: min / median / max, in %) for our zoos, and side by side with
the paper's own numbers (``paper_table2.csv``, transcribed from arXiv 2408.11720 Table 2)."""

import numpy as np
import pandas as pd

from weightzoo.analysis.groups import GROUPS, paper_table2
STAT_COLUMNS = ["min", "median", "max"]


def table2(summary: pd.DataFrame, accuracy: str = "train", group_column: str = "group") -> pd.DataFrame:
    """Count and min / median / max final accuracy (%) per model × dataset × group.

    ``summary`` is the trial summary (docs/data-format.md) with a group label column; ``accuracy`` picks
    ``final_train_accuracy`` (as the paper's Table 2) or ``final_test_accuracy``. Trials of all
    architectures of a (model, dataset) are pooled, as in the paper.
    """
    column = f"final_{accuracy}_accuracy"
    keys = ["model", "dataset", "group"]
    frame = summary[["model", "dataset", column]].assign(group=summary[group_column].astype(str))
    frame[column] = frame[column].astype(float) * 100.0
    table = (
        frame.groupby(keys, sort=False)[column]
        .agg(n="size", min="min", median="median", max="max")
        .reset_index()
    )
    return _sorted(table).astype({"n": "int64"})


def compare_with_paper(ours: pd.DataFrame, dataset_alias: dict[str, str] | None = None) -> pd.DataFrame:
    """``table2`` output next to the paper's numbers (``paper_min``, ``paper_median``, ``paper_max``).

    Every group of the paper appears for the (model, dataset) pairs we have (``n`` = 0 where we have no
    trial of it). ``dataset_alias`` maps our dataset names onto the paper's (e.g. ``{"mnist5k": "mnist"}``);
    pairs the paper did not run get empty paper columns.
    """
    alias = dataset_alias or {}
    paper = paper_table2().rename(columns={c: f"paper_{c}" for c in STAT_COLUMNS})
    pairs = ours[["model", "dataset"]].drop_duplicates()
    grid = pairs.merge(pd.DataFrame({"group": list(GROUPS)}), how="cross")
    grid["paper_dataset"] = grid["dataset"].map(lambda d: alias.get(d, d))
    merged = grid.merge(ours, on=["model", "dataset", "group"], how="left").merge(
        paper.rename(columns={"dataset": "paper_dataset"}), on=["model", "paper_dataset", "group"], how="left"
    )
    present = merged["n"].notna() | merged[[f"paper_{c}" for c in STAT_COLUMNS]].notna().any(axis=1)
    merged = merged[present].copy()
    merged["n"] = merged["n"].fillna(0).astype("int64")
    columns = ["model", "dataset", "group", "n", *STAT_COLUMNS, *(f"paper_{c}" for c in STAT_COLUMNS)]
    return _sorted(merged[columns])


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    from weightzoo.models import MODELS  # the families' registration order (imports torch: only here)

    model_rank = {m: i for i, m in enumerate(MODELS)}
    group_rank = {g: i for i, g in enumerate(GROUPS)}
    order = np.lexsort(
        (
            table["group"].map(lambda g: group_rank.get(g, len(GROUPS))).to_numpy(),
            table["dataset"].astype(str).to_numpy(),
            table["model"].astype(str).to_numpy(),
            table["model"].map(lambda m: model_rank.get(m, len(MODELS))).to_numpy(),
        )
    )
    return table.iloc[order].reset_index(drop=True)
