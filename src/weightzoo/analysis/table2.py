"""The paper's Table 2 (accuracy per group: min / median / max, in %) for our zoos, and side by side with
the paper's own numbers (``paper_table2.csv``, transcribed from arXiv 2408.11720 Table 2)."""

import html
import re
from importlib import resources

import numpy as np
import pandas as pd

from weightzoo.analysis.groups import GROUPS
from weightzoo.models import MODELS as MODEL_ORDER  # the families' registration order
STAT_COLUMNS = ["min", "median", "max"]


def paper_table2() -> pd.DataFrame:
    """The paper's Table 2: columns model, group, dataset, min, median, max (training accuracy, %)."""
    with resources.files("weightzoo.analysis").joinpath("paper_table2.csv").open() as f:
        return pd.read_csv(f, comment="#", dtype={"model": str, "group": str, "dataset": str})


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


TABLE_STYLE = (
    "body{font-family:sans-serif;font-size:14px;margin:.5em}"
    "h3{margin:.2em 0 .6em}"
    ".weightzoo-scroll{overflow-x:auto;max-width:100%}"
    "table.weightzoo-table{border-collapse:collapse;width:100%;table-layout:auto}"
    ".weightzoo-table th,.weightzoo-table td{padding:3px 5px;border-bottom:1px solid #ddd;text-align:right;"
    "vertical-align:top;overflow-wrap:break-word}"
    ".weightzoo-table th{background:#f2f2f2;position:sticky;top:0}"
    ".weightzoo-table tr:hover{background:#fafafa}"
    "p.note{color:#555;font-size:12px}"
)


def _number(x, digits: int, significant: bool) -> str:
    if significant:
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}"


def to_html(table: pd.DataFrame, title: str = "Accuracy per group (%)", digits: int = 2, significant: bool = False,
            note: str | None = None) -> str:
    """A small self-contained HTML page holding ``table`` (no scripts, inline style).

    The table fills the width it is shown at and wraps long cells instead of hiding columns (a horizontal scroll bar
    is the last resort); text columns are left-aligned, numbers right-aligned. ``significant``: ``digits``
    significant digits instead of decimals (narrower columns for p-values and effects)."""
    body = table.to_html(
        index=False,
        na_rep="–",
        float_format=lambda x: _number(x, digits, significant),
        border=0,
        classes="weightzoo-table",
        justify="left",
    )
    # names break after underscores, sentences at spaces, numbers never: columns keep readable widths
    body = re.sub(r"<(th|td)>([^<]*)</(th|td)>",
                  lambda m: f"<{m.group(1)}>" + m.group(2).replace("_", "_<wbr>").replace("/", "/<wbr>")
                  + f"</{m.group(3)}>", body)
    rules = []
    for i, column in enumerate(table.columns, start=1):
        cells = f".weightzoo-table td:nth-child({i})"
        if pd.api.types.is_numeric_dtype(table[column]) and not pd.api.types.is_bool_dtype(table[column]):
            rules.append(f"{cells}{{white-space:nowrap}}")
            continue
        rules.append(f"{cells},.weightzoo-table th:nth-child({i}){{text-align:left}}")
        if table[column].astype(str).str.len().max() > 40:
            rules.append(f"{cells}{{min-width:10em}}")
    style = TABLE_STYLE + "".join(rules)
    if note is None:
        note = "– = no value."
        if any(str(c).startswith("paper_") for c in table.columns):
            note = "paper_* columns: Zheng et al. 2024, arXiv 2408.11720, Table 2 (training accuracy). " + note
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)}</title><style>{style}</style></head>\n"
        f"<body><h3>{html.escape(title)}</h3>\n<div class=\"weightzoo-scroll\">{body}</div>\n"
        f"<p class=\"note\">{html.escape(note)}</p></body></html>\n"
    )


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    model_rank = {m: i for i, m in enumerate(MODEL_ORDER)}
    group_rank = {g: i for i, g in enumerate(GROUPS)}
    order = np.lexsort(
        (
            table["group"].map(lambda g: group_rank.get(g, len(GROUPS))).to_numpy(),
            table["dataset"].astype(str).to_numpy(),
            table["model"].astype(str).to_numpy(),
            table["model"].map(lambda m: model_rank.get(m, len(MODEL_ORDER))).to_numpy(),
        )
    )
    return table.iloc[order].reset_index(drop=True)
