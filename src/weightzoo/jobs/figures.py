"""Workflow jobs of the figures: one figure family at one scope (pooled or an architecture) from the stored
per-experiment results, and the t-SNE of one zoo's weights (which needs the weights themselves)."""

import json
import logging
from collections.abc import Mapping, Sequence

import pandas as pd
import xarray as xr

from weightzoo.analysis.groups import experiment_groups
from weightzoo.analysis.projection import FEATURES, project, score_record
from weightzoo.analysis.scope import ScopeView
from weightzoo.analysis.zoo import layer_names, trial_groups
from weightzoo.io.atomic import load_checked, write_text_atomic
from weightzoo.report import figures
from weightzoo.selection import POOLED

log = logging.getLogger(__name__)


def draw_figure(figure: str, scope: str, inputs: Mapping[str, Sequence[str]], out_path, title: str, seed: int = 0,
                perplexity: float = 30.0, scores_path=None) -> None:
    """One figure family (``report.figures.FAMILIES`` or ``statistics_tsne``) of one (model, dataset) at ``scope``.

    ``inputs``: the stored files of the scope's experiments by kind (``features``, ``strengths``, ``densities``);
    ``scores_path``: where the statistics t-SNE writes its scores (JSON)."""
    stored = {kind: [load_checked(path) for path in paths] for kind, paths in inputs.items()}
    view = ScopeView(**stored, arch=None if scope == POOLED else scope)
    title = view.title(title)
    if figure != "statistics_tsne":
        figures.save_figure(figures.FAMILIES[figure](view, title, seed), out_path)
        return
    projection = view.statistics_projection(seed=seed, perplexity=perplexity)
    figures.save_figure(figures.projection([projection], title), out_path)
    record = score_record(projection)
    record.update(arch_knn_accuracy=projection.attrs.get("arch_knn_accuracy"),
                  arch_chance_accuracy=projection.attrs.get("arch_chance_accuracy"))
    write_text_atomic(json.dumps({"statistics": [record]}, indent=1, default=float), scores_path)
    log.info("%s: t-SNE %s", title, record["text"])


def project_trials(zoo_path, summary_groups_path, experiment: str, outputs: Mapping[str, str], scores_path,
                   perplexity: float = 30.0, seed: int = 0, per_layer: bool = True) -> None:
    """Paper Figs 11–13, t-SNE of the trials on raw, canonical and invariant features; one panel for all weights
    and, with ``per_layer``, one per layer. Scores go into the figures and ``scores_path`` (JSON: feature set ->
    list of panels)."""
    groups = experiment_groups(pd.read_csv(summary_groups_path, keep_default_na=False), experiment)
    scores = {}
    with xr.open_dataset(zoo_path) as ds:
        labels = trial_groups(ds, groups)
        title = f"{ds.attrs.get('model', '?')} on {ds.attrs.get('dataset', '?')}, {ds.attrs.get('arch', '?')}"
        layers = [None, *(layer_names(ds) if per_layer else [])]
        for features in FEATURES:
            projections = [project(ds, groups=labels, features=features, layer=layer, seed=seed,
                                   perplexity=perplexity) for layer in layers]
            scores[features] = [score_record(p) for p in projections]
            for record in scores[features]:
                log.info("t-SNE %s %s: %s", features, record["layer"], record["text"])
            figures.save_figure(figures.projection(projections, title), outputs[features])
    write_text_atomic(json.dumps(scores, indent=1), scores_path)
