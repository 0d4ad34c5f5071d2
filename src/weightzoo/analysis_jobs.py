"""What one analysis job of the workflow does: read zoo files, call ``weightzoo.analysis``, draw with
``weightzoo.plots``, write results. The layer between ``workflow/scripts/analyze_*.py`` and the package.

No torch here: analysis jobs only need numpy, xarray, scikit-learn and matplotlib.
"""

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from weightzoo import plots
from weightzoo.analysis.groups import assign_groups, paper_windows
from weightzoo.analysis.kde import layer_density
from weightzoo.analysis.projection import FEATURES, project
from weightzoo.analysis.metrics import weight_statistics
from weightzoo.analysis.strength import node_strength, pairwise_strength, strength_layers
from weightzoo.analysis.table2 import compare_with_paper, table2, to_html
from weightzoo.analysis.zoo import layer_names
from weightzoo.atomic import atomic_path, load_checked

log = logging.getLogger(__name__)

SCOPES = ("model_dataset", "experiment")


def _write_csv(table: pd.DataFrame, path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def _write_text(text: str, path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_figure(fig, path) -> None:
    """Save a figure atomically (format from the suffix of ``path``)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        drawn = tmp.with_name(tmp.name + path.suffix)
        plots.save(fig, drawn)
        drawn.replace(tmp)


# ---------------------------------------------------------------------------------------------- groups


def class_shares(dataset_path, accuracy: str = "train") -> tuple[int, float]:
    """``n_classes`` and the majority-class share of the split ``accuracy`` is measured on (train / test)."""
    ds = load_checked(dataset_path)
    labels = ds["labels"].values
    split = ds["split"].values
    n_classes = int(ds.attrs.get("n_classes", int(labels.max()) + 1))
    chosen = labels[split == (0 if accuracy == "train" else 1)]
    if chosen.size == 0:
        return n_classes, float("nan")
    return n_classes, float(np.bincount(chosen, minlength=n_classes).max() / chosen.size)


def group_summary(summary: pd.DataFrame, datasets: Mapping[str, tuple[int, float]], accuracy: str = "train",
                  method: str = "delta", delta: float = 0.1, margin: float = 0.02, floor: float = 0.25,
                  bins: Mapping[str, Sequence[float]] | None = None, seed: int = 0,
                  scope: str = "model_dataset", paper_datasets: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The trial summary with columns ``group`` and ``chance`` added.

    Groups are formed over all trials of a (model, dataset), architectures pooled as in the paper's
    Table 2 (``scope="model_dataset"``), or per experiment (``scope="experiment"``). ``datasets`` maps a
    dataset name to ``(n_classes, majority_share)`` (``class_shares``). Method ``windows`` takes the paper's
    windows of the model on ``paper_datasets.get(dataset, dataset)``.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown grouping scope {scope!r}; choose one of {SCOPES}")
    keys = ["model", "dataset"] if scope == "model_dataset" else ["experiment"]
    out = summary.copy()
    out["group"] = ""
    out["chance"] = np.nan
    column = f"final_{accuracy}_accuracy"
    for _, rows in out.groupby(keys, sort=False):
        dataset = str(rows["dataset"].iloc[0])
        n_classes, majority = datasets.get(dataset, (None, None))
        dataset_bins = None
        if method == "bins":
            if not bins or dataset not in bins:
                raise ValueError(f"analysis.groups.method is 'bins' but analysis.groups.bins has no entry for {dataset!r}")
            dataset_bins = bins[dataset]
        windows = None
        if method == "windows":
            windows = paper_windows(str(rows["model"].iloc[0]), (paper_datasets or {}).get(dataset, dataset))
        labels = assign_groups(rows[column].astype(float).to_numpy(), rows["diverged"].astype(bool).to_numpy(),
                               n_classes, method=method, delta=delta, margin=margin, majority_share=majority,
                               bins=dataset_bins, seed=seed, windows=windows, floor=floor)
        out.loc[rows.index, "group"] = labels
        out.loc[rows.index, "chance"] = max(1.0 / n_classes if n_classes else 0.0,
                                            majority if majority is not None and np.isfinite(majority) else 0.0)
    return out


def group_trials(summary_path, dataset_paths: Mapping[str, str], out_path, settings: Mapping) -> None:
    """Workflow job: accuracy groups of every trial into ``summary_groups.csv``."""
    accuracy = settings.get("accuracy", "train")
    datasets = {name: class_shares(path, accuracy) for name, path in dataset_paths.items()}
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
    _write_csv(table, out_path)


def experiment_groups(summary_groups_path, experiment: str) -> pd.Series:
    """Group labels of one experiment's trials, indexed by trial (for ``zoo.trial_groups``)."""
    table = pd.read_csv(summary_groups_path, keep_default_na=False)
    rows = table[table["experiment"] == experiment]
    return pd.Series(rows["group"].astype(str).to_numpy(), index=rows["trial"].astype(int).to_numpy())


def _labels(ds: xr.Dataset, groups: pd.Series) -> np.ndarray:
    labels = groups.reindex(ds["trial"].values).fillna("").astype(str).to_numpy()
    return np.asarray(labels, dtype=object)


# ---------------------------------------------------------------------------------------------- Table 2


def tabulate_groups(summary_groups_path, csv_path, html_path, accuracy: str = "train",
                    paper_datasets: Mapping[str, str] | None = None) -> None:
    """Workflow job: Table 2 (ours next to the paper's) as CSV and HTML."""
    summary = pd.read_csv(summary_groups_path, keep_default_na=False, na_values=[""])
    summary["group"] = summary["group"].fillna("").astype(str)
    ours = table2(summary, accuracy=accuracy)
    table = compare_with_paper(ours, dict(paper_datasets or {}))
    _write_csv(table, csv_path)
    title = f"Final {accuracy} accuracy (%) per accuracy group: this run vs. the paper"
    _write_text(to_html(table, title=title), html_path)
    log.info("Table 2:\n%s", table.to_string(index=False))


# ---------------------------------------------------------------------------------------------- figures


def experiment_title(ds: xr.Dataset) -> str:
    return f"{ds.attrs.get('model', '?')} on {ds.attrs.get('dataset', '?')}, {ds.attrs.get('arch', '?')}"


def characterize(zoo_path, summary_groups_path, experiment: str, outputs: Mapping[str, str],
                 strength_kind: str = "abs_in", seed: int = 0) -> None:
    """Workflow job: paper Figs 1–10 of one experiment (its numbers are in ``scope_jobs.extract_features``).

    ``outputs`` keys: ``convergence``, ``weight_statistics``, ``distributions``, ``node_strength``,
    ``strength_pairs`` (figure paths).
    """
    groups = experiment_groups(summary_groups_path, experiment)
    with xr.open_dataset(zoo_path) as ds:
        labels = _labels(ds, groups)
        title = experiment_title(ds)
        log.info("%s: %d trials, groups %s", title, ds.sizes["trial"], dict(zip(*np.unique(labels, return_counts=True))))
        save_figure(plots.convergence(ds, labels, title), outputs["convergence"])

        stats = weight_statistics(ds)
        save_figure(plots.weight_statistics(stats, labels, title), outputs["weight_statistics"])

        densities = [layer_density(ds, f"{layer}_weight", groups=labels) for layer in layer_names(ds)]
        save_figure(plots.distributions(densities, title), outputs["distributions"])

        layers = strength_layers(ds)
        strengths = [node_strength(ds, layer, kind=strength_kind) for layer in layers]
        save_figure(plots.node_strength(strengths, labels, title, seed=seed), outputs["node_strength"])
        pairs = pairwise_strength(ds, layers, groups=labels, kind=strength_kind, strengths=strengths)
        save_figure(plots.strength_pairs(pairs, title), outputs["strength_pairs"])
        for pair in pairs["pair"].values:
            log.info("Spearman %s: %s", pair, dict(zip(pairs["group"].values.tolist(),
                                                      np.round(pairs["spearman_rho"].sel(pair=pair).values, 3))))


def _score_record(proj: xr.Dataset) -> dict:
    attrs = proj.attrs

    def number(key):
        value = attrs.get(key)
        return None if value is None or not np.isfinite(value) else round(float(value), 4)

    text = plots.score_text(proj)
    # when there are no scores, score_text already says why
    scored_note = str(attrs.get("score_note", "")) if number("knn_accuracy") is not None else ""
    return {
        "layer": "all weights" if attrs.get("layer") == "all" else str(attrs.get("layer")),
        "features": str(attrs.get("features")),
        "knn_k": int(attrs.get("knn_k", 0)),
        "knn_accuracy": number("knn_accuracy"),
        "chance_accuracy": number("chance_accuracy"),
        "silhouette": number("silhouette"),
        "perplexity": number("perplexity"),
        "n_trials": int(attrs.get("n_trials", 0)),
        "message": str(attrs.get("message", "")),
        "note": "; ".join(s for s in (str(attrs.get("note", "")), scored_note) if s),
        "text": text,
    }


def project_trials(zoo_path, summary_groups_path, experiment: str, figures: Mapping[str, str], scores_path,
                   perplexity: float = 30.0, seed: int = 0, per_layer: bool = True) -> None:
    """Workflow job: paper Figs 11–13, t-SNE of the trials on raw, canonical and invariant features; one panel
    for all weights and, with ``per_layer``, one per layer. Scores go into the figures and ``scores_path``
    (JSON: feature set -> list of panels)."""
    groups = experiment_groups(summary_groups_path, experiment)
    scores = {}
    with xr.open_dataset(zoo_path) as ds:
        labels = _labels(ds, groups)
        title = experiment_title(ds)
        layers = [None, *(layer_names(ds) if per_layer else [])]
        for features in FEATURES:
            projections = [project(ds, groups=labels, features=features, layer=layer, seed=seed,
                                   perplexity=perplexity) for layer in layers]
            scores[features] = [_score_record(p) for p in projections]
            for record in scores[features]:
                log.info("t-SNE %s %s: %s", features, record["layer"], record["text"])
            save_figure(plots.projection(projections, title), figures[features])
    _write_text(json.dumps(scores, indent=1), scores_path)


# ---------------------------------------------------------------------------------------------- claims

CLAIM_HTML_COLUMNS = ["scope", "strata", "arch", "claim", "claim_name", "layer", "statistic", "value", "effect_name",
                      "effect_size", "ci_low", "ci_high", "detectable", "p_value", "n", "n_strata", "verdict", "reason"]


def _g(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.3g}"


def claims_html(table: pd.DataFrame, title: str) -> str:
    """The claims table as a self-contained HTML page (verdict column coloured). Eight columns, so that it wraps
    at the width of the report instead of hiding the verdict and reason: scope, architecture and what was held
    fixed; claim and layer; statistic and value; effect and interval; p and detectable effect; n and strata are
    shown together (the CSV keeps them apart)."""
    from weightzoo.analysis.findings import VERDICT_COLOURS

    if table.empty:
        shown = pd.DataFrame({"message": ["no claims could be tested"]})
    else:
        rows = table[CLAIM_HTML_COLUMNS]
        shown = pd.DataFrame({
            # the strata column's keys only (the CSV keeps its full text): the page must fit the report's frame
            "scope, arch [held fixed]": [
                scope + ("" if arch == "all" else f" {arch}")
                + (f" [{str(strata).split(' (')[0]}]" if scope in ("controlled", "within") else "")
                for scope, arch, strata in zip(rows["scope"], rows["arch"], rows["strata"].fillna(""))],
            "claim, layer": [f"{c} {name}, {layer}" for c, name, layer in
                             zip(rows["claim"], rows["claim_name"], rows["layer"])],
            "statistic": [f"{s} = {_g(v)}" for s, v in zip(rows["statistic"], rows["value"])],
            "effect [interval]": [f"{name} {_g(e)} [{_g(lo)}, {_g(hi)}]" for name, e, lo, hi in
                                  zip(rows["effect_name"], rows["effect_size"], rows["ci_low"], rows["ci_high"])],
            "p (detectable)": [f"{_g(p)} ({_g(d)})" for p, d in zip(rows["p_value"], rows["detectable"])],
            "n (strata)": [f"{n} ({k})" for n, k in zip(rows["n"], rows["n_strata"])],
            "verdict": rows["verdict"], "reason": rows["reason"],
        })
    page = to_html(shown, title=title, digits=3, significant=True)
    for verdict, colour in VERDICT_COLOURS.items():
        page = page.replace(f"<td>{verdict}</td>", f'<td style="color:{colour};font-weight:bold">{verdict}</td>')
    return page
