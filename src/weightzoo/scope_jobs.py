"""Workflow jobs at the paper's scope: per-trial features of each experiment, then per (model, dataset) the
pooled figures (architectures together, groups coloured, architectures as markers), the claims at every
scope, and the findings page. The layer between ``workflow/scripts/*`` and the package, like
``analysis_jobs`` (which keeps the per-architecture figures).
"""

import json
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from weightzoo import plots
from weightzoo.analysis.claims import claims_table
from weightzoo.analysis.features import pool, trial_features
from weightzoo.analysis.findings import VERDICT_COLOURS, findings_html, findings_table
from weightzoo.analysis.kde import pooled_layer_density
from weightzoo.analysis.projection import project_matrix
from weightzoo.analysis.stats import feature_matrix
from weightzoo.analysis.strength import node_strength, strength_correlations, strength_layers
from weightzoo.analysis.trained import frozen_layers, summary_table, training_status
from weightzoo.analysis.table2 import to_html
from weightzoo.analysis.zoo import GROUP_ORDER, layer_names
from weightzoo.analysis_jobs import (
    _score_record,
    _write_csv,
    _write_text,
    claims_html,
    experiment_groups,
    save_figure,
)
from weightzoo.atomic import load_checked, without_checksum, write_netcdf_atomic
from weightzoo.plots import natural_key
from weightzoo.selection import figure_experiments

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- features


def extract_features(zoo_path, summary_groups_path, experiment: str, features_path, strengths_path,
                     strength_kind: str = "abs_in", early_snapshot: int = 1, max_values: int = 2000,
                     seed: int = 0, dataset_path=None, status_path=None) -> None:
    """Workflow job: per-trial features (``analysis.features``), every node's strength and, with
    ``status_path``, which parameters never trained and which ReLU units are dead (``analysis.trained``)."""
    groups = experiment_groups(summary_groups_path, experiment)
    with xr.open_dataset(zoo_path) as ds:
        if status_path is not None:
            status = training_status(ds, load_checked(dataset_path))
            write_netcdf_atomic(status, status_path)
        layers = strength_layers(ds)
        strengths = [node_strength(ds, layer, kind=strength_kind) for layer in layers]
        features = trial_features(ds, groups, early_snapshot=early_snapshot, n_quantiles=max_values,
                                  strength_kind=strength_kind, strengths=strengths, seed=seed, experiment=experiment)
        write_netcdf_atomic(features, features_path)
        write_netcdf_atomic(strength_dataset(ds, strengths, groups), strengths_path)
    log.info("%s: features of %d trials, strengths of layers %s", experiment, features.sizes["trial"], layers)


def strength_dataset(ds: xr.Dataset, strengths: Sequence[xr.DataArray], groups) -> xr.Dataset:
    """Node strengths per trial, layer and node as one self-describing dataset (dims ``{layer}_node``)."""
    data_vars = {}
    for s in strengths:
        layer = s.attrs["layer"]
        data_vars[f"{layer}_strength"] = xr.Variable(("trial", f"{layer}_node"), s.values, dict(s.attrs))
    labels = groups.reindex(ds["trial"].values).fillna("").astype(str).to_numpy()
    return xr.Dataset(
        data_vars,
        coords={"trial": ds["trial"].values, "group": ("trial", labels)},
        attrs={k: ds.attrs[k] for k in ("model", "dataset", "arch") if k in ds.attrs}
        | {"snapshot": int(ds["snapshot"].values[-1]), "title": "node strength per trial, layer and node"},
    )


def _open_features(paths) -> xr.Dataset:
    parts = []
    for path in paths:
        parts.append(load_checked(path))
    return pool(parts)


# ---------------------------------------------------------------------------------------------- figures


def characterize_scope(feature_paths: Sequence[str], zoo_paths: Sequence[str], strength_paths: Sequence[str],
                       outputs: Mapping[str, str], title: str, perplexity: float = 30.0, seed: int = 0) -> None:
    """Workflow job: the paper's Figs 1–13 for one (model, dataset), architectures pooled.

    ``outputs`` keys: ``convergence``, ``weight_statistics``, ``distributions``, ``node_strength``,
    ``strength_pairs``, ``projection`` (figures), ``scores`` (JSON)."""
    features = _open_features(feature_paths)
    labels = features["group"].values.astype(object)
    arch = features["arch"].values.astype(object)
    n_arch = len(set(arch))
    title = f"{title}, {n_arch} architecture(s) pooled"
    save_figure(plots.convergence(features, labels, title), outputs["convergence"])
    stats = features["statistic"].to_dataset("stat")
    save_figure(plots.weight_statistics(stats, labels, title, arch=arch), outputs["weight_statistics"])
    save_figure(plots.distributions(_pooled_densities(zoo_paths, feature_paths), title), outputs["distributions"])
    strengths = _pooled_strengths(strength_paths)
    save_figure(plots.node_strength(strengths, labels, title, seed=seed, arch=arch), outputs["node_strength"])
    layers = [str(layer) for layer in features["strength_layer"].values]
    pairs = strength_correlations(features["mean_strength"].values, layers, labels)
    save_figure(plots.strength_pairs(pairs, title, arch=arch), outputs["strength_pairs"])

    network = features.attrs.get("network_layer", "network")
    kept = [str(layer) for layer in features["layer"].values if layer != network]
    matrix, _ = feature_matrix(stats.sel(layer=kept))
    projection = project_matrix(matrix, labels, arch=arch, seed=seed, perplexity=perplexity)
    save_figure(plots.projection([projection], title), outputs["projection"])
    record = _score_record(projection)
    record.update(arch_knn_accuracy=projection.attrs.get("arch_knn_accuracy"),
                  arch_chance_accuracy=projection.attrs.get("arch_chance_accuracy"))
    _write_text(json.dumps({"statistics": [record]}, indent=1, default=float), outputs["scores"])
    log.info("%s: t-SNE %s", title, plots.score_text(projection))


def _pooled_densities(zoo_paths, feature_paths):
    sources, order = [], []
    opened = []
    try:
        for zoo_path, feature_path in zip(zoo_paths, feature_paths):
            ds = xr.open_dataset(zoo_path)
            opened.append(ds)
            labels = load_checked(feature_path)["group"].values.astype(str)
            sources.append((ds, labels))
            order += [layer for layer in layer_names(ds) if layer not in order]
        return [pooled_layer_density([(ds, g) for ds, g in sources if f"{layer}_weight" in ds], f"{layer}_weight")
                for layer in order]
    finally:
        for ds in opened:
            ds.close()


def _pooled_strengths(strength_paths) -> list[xr.DataArray]:
    """Per layer, every trial's node strengths (NaN-padded to the widest architecture)."""
    per_layer: dict[str, list] = {}
    attrs = {}
    for path in strength_paths:
        for name, var in load_checked(path).data_vars.items():
            layer = name.removesuffix("_strength")
            per_layer.setdefault(layer, []).append(var.values)
            attrs[layer] = without_checksum(var.attrs)
    out = []
    for layer, blocks in per_layer.items():
        width = max(b.shape[1] for b in blocks)
        padded = np.concatenate([np.pad(b.astype(float), ((0, 0), (0, width - b.shape[1])), constant_values=np.nan)
                                 for b in blocks])
        out.append(xr.DataArray(padded, dims=("trial", "node"), name=f"{layer}_strength", attrs=attrs[layer]))
    return out


# ---------------------------------------------------------------------------------------------- claims


def untrained_reasons(status_paths: Sequence[str], min_weight_share: float = 0.1) -> dict[str, dict[str, str]]:
    """``{layer: {arch: why}}`` for claims on layers with weight parts that never moved from their initial values
    (in at least half the trials); the whole network counts when such parts hold ``min_weight_share`` of it."""
    out: dict[str, dict[str, str]] = {}
    for path in status_paths:
        status = load_checked(path)
        arch = str(status.attrs.get("arch", ""))
        frozen = frozen_layers(status)
        if not frozen:
            continue
        names = [part for parts in frozen.values() for part in parts]
        for layer, parts in frozen.items():
            out.setdefault(layer, {})[arch] = (
                f"computed on parameters that never trained: {', '.join(parts)} never moved from the initial values in "
                "most trials, so this row describes the initial draw (see the training status table)")
        weights = status["n_values"].where(status["kind"] == "weight", 0)
        share = float(weights.sel(part=names).sum() / weights.sum())
        if share >= min_weight_share:
            out.setdefault("network", {})[arch] = (
                f"computed on parameters that never trained: {', '.join(names)} ({share:.0%} of the weights) never "
                "moved from the initial values in most trials")
    return out


def evaluate_claims(feature_paths: Sequence[str], csv_path, html_path, settings: Mapping, title: str,
                    accuracy: str = "train", seed: int = 0, status_paths: Sequence[str] = ()) -> None:
    """Workflow job: the claims of one (model, dataset) at every scope (CSV, HTML)."""
    features = _open_features(feature_paths)
    untrained = untrained_reasons(status_paths)
    settings = dict(settings)
    settings.pop("early_snapshot", None)
    settings.pop("max_values", None)
    table = claims_table(features, seed=seed, accuracy=accuracy, untrained=dict(untrained or {}), **settings)
    _write_csv(table, csv_path)
    _write_text(claims_html(table, f"Claims of the paper tested on {title}"), html_path)
    log.info("verdicts by scope:\n%s", table.groupby(["scope", "verdict"]).size().unstack(fill_value=0))


def collect_findings(claims_paths: Sequence[str], summary_groups_path, csv_path, overview_path, findings_path,
                     min_group: int = 3, status_paths: Sequence[str] = (), status_html_path=None) -> None:
    """Workflow job: all claims in one CSV, verdict counts per scope, the findings page and, with
    ``status_paths``, the table of parameters that never trained and of dead units."""
    tables = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in claims_paths]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    _write_csv(table, csv_path)
    if table.empty:
        overview = pd.DataFrame({"message": ["no claims tables"]})
    else:
        overview = table.groupby(["model", "dataset", "scope", "claim", "claim_name", "verdict"]).size().unstack(
            "verdict", fill_value=0)
        overview = overview[sorted(overview.columns, key=lambda v: list(VERDICT_COLOURS).index(v) if v in VERDICT_COLOURS else 99)].assign(
            tests=overview.sum(axis=1)).reset_index()
        overview.columns.name = None
    _write_text(to_html(overview, title="Verdict counts: how many tests of each claim got each verdict, per model, "
                                        "dataset and scope", digits=0), overview_path)
    summary = pd.read_csv(summary_groups_path, keep_default_na=False)
    counts = group_counts(summary)
    notes = absent_figure_notes(summary, figure_experiments(summary_groups_path, min_group), min_group)
    if status_paths:
        status_table = training_status_table(status_paths)
        notes = training_status_notes(status_table) + notes
        page = to_html(status_table, title="Parameters that never trained and dead ReLU units, per experiment and "
                                           "parameter (medians over trials)", digits=3,
                       significant=True)
        _write_text(page, status_html_path)
    findings = findings_table(table)
    _write_text(findings_html(findings, counts, notes, "Findings: the paper's claims on this zoo"), findings_path)
    log.info("findings:\n%s", findings[["model", "dataset", "claim", "layer", "recipe", "pooled", "carried_by"]].to_string())


def group_counts(summary: pd.DataFrame) -> pd.DataFrame:
    """Trials per accuracy group for every experiment (natural order of architectures)."""
    summary = summary.assign(group=summary["group"].replace("", "ungrouped"))
    counts = summary.groupby(["model", "dataset", "arch", "group"]).size().unstack("group", fill_value=0)
    columns = [g for g in (*GROUP_ORDER, "ungrouped") if g in counts.columns]
    counts = counts[columns].reset_index()
    counts.columns.name = None
    order = sorted(range(len(counts)), key=lambda i: (counts["model"].iat[i], counts["dataset"].iat[i],
                                                      natural_key(counts["arch"].iat[i])))
    return counts.iloc[order].reset_index(drop=True)


def absent_figure_notes(summary: pd.DataFrame, chosen: Sequence[str], min_group: int) -> list[str]:
    notes = []
    for experiment, rows in summary.groupby("experiment", sort=False):
        if experiment in chosen:
            continue
        sizes = rows["group"].replace("", "ungrouped").value_counts().to_dict()
        text = ", ".join(f"{g} {n}" for g, n in sizes.items())
        notes.append(f"{experiment}: no per-architecture figures or projections (groups: {text}; fewer than two groups "
                     f"of {min_group} or more trials). Its trials are in the pooled figures of "
                     f"{rows['model'].iat[0]} / {rows['dataset'].iat[0]}; to compare groups inside this architecture, "
                     "sweep experiments[].hyperparameters (e.g. init_std, lr) or use analysis.groups.scope: experiment.")
    return notes


def training_status_table(status_paths: Sequence[str]) -> pd.DataFrame:
    """``analysis.trained.summary_table`` of every experiment, one table."""
    frames = []
    for path in status_paths:
        status = load_checked(path)
        table = summary_table(status)
        table.insert(0, "experiment", "/".join(str(status.attrs.get(k, "")) for k in ("model", "dataset", "arch")))
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def training_status_notes(table: pd.DataFrame) -> list[str]:
    """Plain sentences for the findings page: parts that never trained, layers with many dead units."""
    notes = []
    if table.empty:
        return notes
    frozen = table[(table["kind"] == "weight") & (table["frozen_trial_share"] >= 0.5)]
    for experiment, rows in frozen.groupby("experiment", sort=False):
        parts = ", ".join(rows["part"])
        text = (f"{experiment}: {parts} never moved from the initial values in most trials, so claims on those layers "
                "describe the initial draw (verdict 'never trained').")
        if rows["component"].isin(["q", "k"]).any():
            text += (" This is the one-token reading of the paper's ViT: with the whole image as one token, softmax "
                     "attention over one token is the constant 1, so query and key get exactly zero gradient and the "
                     "number of heads cannot change the function. Patches that give several tokens make attention real.")
        notes.append(text)
    if "median_dead_unit_share" in table:
        dead = table[table["median_dead_unit_share"] >= 0.25]
        for row in dead.itertuples():
            notes.append(f"{row.experiment}: a median {row.median_dead_unit_share:.0%} of the units of {row.module} are "
                         "dead (ReLU output 0 on every training sample checked).")
    return notes
