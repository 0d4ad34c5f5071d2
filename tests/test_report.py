"""The Snakemake HTML report of a tiny run holds every category, figure and table, with rendered captions."""

import base64
import json
import re

import pandas as pd
import pytest

CATEGORIES = ["Convergence", "Accuracy groups", "Weight statistics", "Distributions", "Node strength", "Projections",
              "Claims"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tiny_report):
    return tiny_report


def test_every_category_is_in_the_report(report):
    _, html = report
    for category in CATEGORIES:
        assert f'"{category}"' in html or f"{category}" in html, category


def test_every_experiment_has_its_figures_and_captions(report):
    workdir, html = report
    for experiment in ("dnn/digits/h2", "dnn/digits/h8", "cnn/digits/base", "vit/digits/base"):
        model, dataset, arch = experiment.split("/")
        for figure in ("convergence", "weight_statistics", "distributions", "node_strength"):
            assert (workdir / f"results/analysis/{figure}/{experiment}.png").stat().st_size > 10_000
        assert f"Paper Fig. 1 for {model} on {dataset} ({arch})" in html
    assert html.count("Paper Figs 11–13") + html.count("Paper Figs 11\\u201313") >= 12


def test_projection_captions_carry_the_scores(report):
    workdir, html = report
    scores = json.loads((workdir / "results/analysis/projection/dnn/digits/h8_scores.json").read_text())
    assert set(scores) == {"raw", "canonical", "invariant"}
    assert "scores appear once" not in html
    text = scores["invariant"][0]["text"]
    escaped = text.replace(">", "&gt;").replace("<", "&lt;")
    assert escaped in html or escaped in html.encode().decode("unicode_escape")


def test_groups_table2_and_claims(report):
    workdir, html = report
    groups = pd.read_csv(workdir / "results/analysis/summary_groups.csv")
    assert set(groups["group"]) <= {"non", "low", "mid", "high"} and len(groups) == 14
    table2 = pd.read_csv(workdir / "results/analysis/table2.csv")
    assert {"paper_min", "paper_median", "paper_max", "n"} <= set(table2.columns)
    claims = pd.read_csv(workdir / "results/analysis/claims.csv")
    assert set(claims["verdict"]) <= {"supported", "contradicted", "inconclusive"}
    assert set(claims["claim"]) == {1, 2, 3, 4, 5}
    assert "beside the paper's numbers" in html and '"name": "table2.html"' in html
    embedded = re.search(r"table2\.html;base64,([A-Za-z0-9+/=]+)", html)
    assert embedded and "this run vs. the paper" in base64.b64decode(embedded.group(1)).decode()
