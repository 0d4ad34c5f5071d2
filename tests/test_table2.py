import numpy as np
import pandas as pd
import pytest

from weightzoo.analysis.groups import GROUPS
from weightzoo.analysis.table2 import compare_with_paper, paper_table2, table2
from weightzoo.report.html import table_page


def tiny_summary():
    return pd.DataFrame(
        {
            "model": ["dnn"] * 6 + ["cnn"] * 2,
            "dataset": ["mnist"] * 6 + ["fmnist"] * 2,
            "arch": ["h5", "h5", "h10", "h10", "h10", "h20", "c4", "c4"],
            "final_train_accuracy": [0.1135, 0.40, 0.30, 0.81, 0.99, 0.97, 0.50, 0.998],
            "final_test_accuracy": [0.1, 0.4, 0.3, 0.8, 0.98, 0.96, 0.5, 0.99],
            "group": ["non", "low", "low", "mid", "high", "high", "low", "high"],
        }
    )


def test_paper_table_is_shipped_and_complete():
    paper = paper_table2()
    assert list(paper.columns) == ["model", "group", "dataset", "min", "median", "max"]
    assert len(paper) == 30
    assert set(paper["group"]) <= set(GROUPS)
    row = paper.query("model == 'dnn' and group == 'high' and dataset == 'mnist'").iloc[0]
    assert (row["min"], row["median"], row["max"]) == (95.0, 98.55, 100.0)
    assert np.isnan(paper.query("model == 'dnn' and group == 'non' and dataset == 'mnist'")["min"].iloc[0])


def test_table2_numbers_on_a_tiny_summary():
    table = table2(tiny_summary())
    assert list(table.columns) == ["model", "dataset", "group", "n", "min", "median", "max"]
    assert table[["model", "dataset", "group"]].values.tolist() == [
        ["dnn", "mnist", "non"],
        ["dnn", "mnist", "low"],
        ["dnn", "mnist", "mid"],
        ["dnn", "mnist", "high"],
        ["cnn", "fmnist", "low"],
        ["cnn", "fmnist", "high"],
    ]
    low = table.query("model == 'dnn' and group == 'low'").iloc[0]
    assert low["n"] == 2
    assert (low["min"], low["median"], low["max"]) == pytest.approx((30.0, 35.0, 40.0))
    high = table.query("model == 'dnn' and group == 'high'").iloc[0]
    assert (high["n"], high["median"]) == (2, pytest.approx(98.0))
    test = table2(tiny_summary(), accuracy="test")
    assert test.query("model == 'dnn' and group == 'high'")["max"].iloc[0] == pytest.approx(98.0)


def test_compare_with_paper_side_by_side():
    both = compare_with_paper(table2(tiny_summary()))
    assert {"paper_min", "paper_median", "paper_max", "n"} <= set(both.columns)
    row = both.query("model == 'dnn' and dataset == 'mnist' and group == 'high'").iloc[0]
    assert row["median"] == pytest.approx(98.0) and row["paper_median"] == pytest.approx(98.55)
    # the paper's cnn/fmnist mid group is listed although we have no trial in it; no cnn "non" in the paper
    mid = both.query("model == 'cnn' and group == 'mid'").iloc[0]
    assert mid["n"] == 0 and np.isnan(mid["median"]) and mid["paper_median"] == pytest.approx(97.71)
    assert both.query("model == 'cnn' and group == 'non'").empty
    # only the (model, dataset) pairs we ran appear
    assert set(map(tuple, both[["model", "dataset"]].values)) == {("dnn", "mnist"), ("cnn", "fmnist")}


def test_compare_with_paper_alias_and_unknown_dataset():
    summary = tiny_summary().assign(dataset="mnist5k")
    plain = compare_with_paper(table2(summary))
    assert plain["paper_median"].isna().all()
    aliased = compare_with_paper(table2(summary), dataset_alias={"mnist5k": "mnist"})
    assert aliased.query("model == 'dnn' and group == 'mid'")["paper_median"].iloc[0] == pytest.approx(80.91)


def test_table_page_is_a_self_contained_table():
    page = table_page(compare_with_paper(table2(tiny_summary())))
    assert page.startswith("<!DOCTYPE html>") and "<table" in page and "</html>" in page
    assert "98.55" in page and "2408.11720" in page and "–" in page
    assert "<script" not in page
