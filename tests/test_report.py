"""The Snakemake HTML report of a tiny run holds every category, the findings page, the pooled figures of every
(model, dataset), per-architecture figures only where an architecture has two groups, and rendered captions."""

import base64
import json
import re

import pandas as pd
import pytest

from weightzoo.selection import figure_experiments

CATEGORIES = ["1 Findings", "2 Accuracy groups", "3 Convergence", "4 Weight statistics", "5 Distributions", "9 Training status",
              "6 Node strength", "7 Projections", "8 Claims"]
FAMILIES = ("convergence", "weight_statistics", "metrics", "distributions", "node_strength", "strength_pairs",
            "statistics_tsne")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tiny_report):
    return tiny_report


def embedded(html, name):
    match = re.search(re.escape(name) + r";base64,([A-Za-z0-9+/=]+)", html)
    return base64.b64decode(match.group(1)).decode() if match else ""


def test_every_category_is_in_the_report(report):
    _, html = report
    for category in CATEGORIES:
        assert f'"{category}"' in html, category


def test_pooled_figures_of_every_model_and_dataset(report):
    workdir, html = report
    for model in ("dnn", "cnn", "vit"):
        for figure in FAMILIES:
            # palette PNGs: a drawn figure of the tiny run is 7-40 kB, a figure that only says why is < 5 kB
            assert (workdir / f"results/analysis/{figure}/{model}/digits/pooled.png").stat().st_size > 6_000
    assert "at the paper's scope: dnn on digits, all" in html or "at the paper\\u2019s scope" in html or "scope" in html
    scores = json.loads((workdir / "results/analysis/statistics_tsne/dnn/digits/pooled.json").read_text())
    assert scores["statistics"][0]["n_trials"] == 12


def test_per_architecture_figures_only_where_two_groups(report):
    workdir, html = report
    summary = pd.read_csv(workdir / "results/analysis/summary_groups.csv", keep_default_na=False)
    chosen = figure_experiments(workdir / "results/analysis/summary_groups.csv", 2)
    assert chosen, "the tiny run should exercise per-architecture figures"
    findings = embedded(html, "findings.html")
    for experiment in summary["experiment"].unique():
        model, dataset, arch = experiment.split("/")
        drawn = (workdir / f"results/analysis/convergence/{experiment}.png").exists()
        assert drawn == (experiment in chosen), experiment
        if drawn:
            assert f"Paper Fig. 1 for {model} on {dataset} ({arch})" in html
            for figure in FAMILIES[:-1]:
                assert (workdir / f"results/analysis/{figure}/{experiment}.png").exists(), (figure, experiment)
        else:
            assert f"{experiment}: no per-architecture figures" in findings


def test_groups_table2_claims_and_findings(report):
    workdir, html = report
    groups = pd.read_csv(workdir / "results/analysis/summary_groups.csv", keep_default_na=False)
    assert set(groups["group"]) <= {"non", "low", "mid", "high", ""} and len(groups) == 18
    table2 = pd.read_csv(workdir / "results/analysis/table2.csv")
    assert {"paper_min", "paper_median", "paper_max", "n"} <= set(table2.columns)
    claims = pd.read_csv(workdir / "results/analysis/claims.csv")
    assert set(claims["verdict"]) <= {"supported", "contradicted", "no effect", "never trained", "inconclusive"}
    assert set(claims["claim"]) == {1, 2, 3, 4, 5, 6, 7, 8}  # 6-8: the spectral metrics
    assert {"pooled", "controlled", "kfold", "loao"} <= set(claims["scope"])
    assert "beside the paper's numbers" in html
    assert "this run vs. the paper" in embedded(html, "table2.html")
    findings = embedded(html, "findings.html")
    assert "<h2>Findings: the paper" in findings and "dnn on digits" in findings
