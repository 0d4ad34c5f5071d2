"""All figures of the report (paper Figs 1–13), drawn with matplotlib's Agg backend.

Every function takes analysis results (xarray objects from ``weightzoo.analysis``) and returns a
``matplotlib.figure.Figure``; ``save`` writes and closes it. Groups always get ``GROUP_COLORS`` and the order
``GROUPS``; a panel with nothing to show says why in its middle instead of raising.
"""

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from weightzoo.analysis.groups import GROUP_COLORS  # noqa: E402
from weightzoo.analysis.zoo import ordered_groups  # noqa: E402

OTHER_COLOR = "#555555"
PANEL_SIZE = (3.6, 3.0)
MAX_COLUMNS = 4
STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def group_color(group: str) -> str:
    """The group's colour (``GROUP_COLORS``); grey-black for labels outside the paper's groups."""
    return GROUP_COLORS.get(str(group), OTHER_COLOR)


def save(fig: Figure, path, dpi: int = 110) -> None:
    """Write ``fig`` (format from the suffix) and release its memory."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def message_figure(text: str, title: str = "") -> Figure:
    """A one-panel figure that only says ``text`` (why there is nothing to plot)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6, 2.2))
        _message(ax, text)
        if title:
            fig.suptitle(title)
    return fig


def _message(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes, color="#444444")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _panels(n: int, size=PANEL_SIZE, columns: int = MAX_COLUMNS):
    columns = max(1, min(columns, n))
    rows = max(1, math.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False)
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _labels(groups, n: int) -> np.ndarray:
    if groups is None:
        return np.full(n, "all", dtype=object)
    labels = np.asarray(groups, dtype=object).ravel()
    if labels.size != n:
        raise ValueError(f"{labels.size} group labels for {n} trials")
    return labels


def _group_legend(ax_or_fig, labels, extra: dict | None = None, **kwargs) -> None:
    """Legend with one entry per group present: colour, name, n and optional text from ``extra``."""
    handles = []
    for g in ordered_groups(labels):
        text = f"{g} (n={int(np.sum(labels == g))})"
        if extra and extra.get(g):
            text += f" {extra[g]}"
        handles.append(Line2D([], [], color=group_color(g), marker="o", linestyle="-", label=text))
    if handles:
        ax_or_fig.legend(handles=handles, title="accuracy group", **kwargs)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def natural_key(text) -> list:
    """Sort key that orders embedded numbers by value: h2 < h8 < h32 < h200."""
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text))]


def _arch_markers(arch, n: int) -> tuple[np.ndarray, dict]:
    """Per-trial architecture labels and a marker per architecture (natural order); one marker without ``arch``."""
    if arch is None:
        return np.full(n, "", dtype=object), {"": "o"}
    arch = np.asarray(arch, dtype=object).ravel()
    names = sorted({str(a) for a in arch}, key=natural_key)
    return arch, {a: MARKERS[i % len(MARKERS)] for i, a in enumerate(names)}


def _scatter_groups(ax, x, y, labels, arch, markers, size=18, **kwargs) -> None:
    """Scatter coloured by group and shaped by architecture."""
    for g in ordered_groups(labels):
        for a, marker in markers.items():
            rows = (labels == g) & (arch == a) & np.isfinite(x) & np.isfinite(y)
            if rows.any():
                ax.scatter(x[rows], y[rows], s=size, color=group_color(g), marker=marker, alpha=0.75,
                           edgecolors="none", **kwargs)


def _arch_legend(fig, markers: dict, **kwargs) -> None:
    if len(markers) < 2:
        return
    handles = [Line2D([], [], color=OTHER_COLOR, marker=m, linestyle="", label=a) for a, m in markers.items()]
    fig.legend(handles=handles, title="architecture", **kwargs)


def _legends(fig, labels, markers) -> None:
    """Group colours (and architecture markers when several) below the panels, outside the data."""
    if len(markers) > 1:
        _group_legend(fig, labels, loc="upper right", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False)
        _arch_legend(fig, markers, loc="upper left", bbox_to_anchor=(0.5, 0.0), ncol=min(4, len(markers)), frameon=False)
    else:
        _group_legend(fig, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, frameon=False)


def _title(model_title: str, what: str) -> str:
    return f"{what} — {model_title}" if model_title else what


# ---------------------------------------------------------------------------------------------- Fig 1


def convergence(ds: xr.Dataset, groups=None, title: str = "") -> Figure:
    """Paper Fig 1: loss (nats) and accuracy (%) per epoch, train and test, one line per trial by group."""
    n = ds.sizes["trial"]
    labels = _labels(groups, n)
    panels = [(f"{split}_{metric}", split, metric) for metric in ("loss", "accuracy") for split in ("train", "test")]
    panels = [p for p in panels if p[0] in ds]
    with plt.rc_context(STYLE):
        if not panels or n == 0:
            return message_figure("no loss or accuracy curves in this zoo", _title(title, "Convergence"))
        fig, axes = _panels(len(panels), columns=2)
        epochs = ds["epoch"].values
        alpha = float(np.clip(8.0 / max(n, 1), 0.08, 0.9))
        for ax, (name, split, metric) in zip(axes, panels):
            values = np.asarray(ds[name].values, dtype=float)
            if metric == "accuracy":
                values = values * 100.0
            for g in ordered_groups(labels):
                rows = values[labels == g]
                ax.plot(epochs, rows.T, color=group_color(g), alpha=alpha, linewidth=1.0)
            if not np.isfinite(values).any():
                _message(ax, "all values are NaN (diverged)")
                continue
            ax.set_xlabel("epoch")
            ax.set_ylabel("accuracy (%)" if metric == "accuracy" else "cross-entropy loss (nats)")
            ax.set_title(f"{split} {metric}")
            if len(epochs) < 12:
                ax.set_xticks(epochs)
            if metric == "loss" and np.nanmax(values) > 20 * max(np.nanmin(values[values > 0], initial=1), 1e-3):
                ax.set_yscale("log")
                ax.yaxis.set_minor_formatter(NullFormatter())
        _group_legend(fig, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, frameon=False)
        fig.suptitle(_title(title, f"Convergence of {n} trial(s)"))
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- Figs 2–4


def weight_statistics(stats: xr.Dataset, groups=None, title: str = "", arch=None) -> Figure:
    """Paper Figs 2–4: mean vs standard deviation of the weights per trial, one panel per layer and one for
    the whole network (``weightzoo.analysis.stats.weight_statistics`` output). ``arch``: one architecture
    label per trial (pooled zoos), shown as marker shapes."""
    n = stats.sizes["trial"]
    labels = _labels(groups, n)
    arch, markers = _arch_markers(arch, n)
    layers = [str(layer) for layer in stats["layer"].values]
    with plt.rc_context(STYLE):
        if not layers or n == 0:
            return message_figure("no weights in this zoo", _title(title, "Weight statistics"))
        fig, axes = _panels(len(layers))
        for ax, layer in zip(axes, layers):
            mean = stats["mean"].sel(layer=layer).values
            std = stats["std"].sel(layer=layer).values
            finite = np.isfinite(mean) & np.isfinite(std)
            if not finite.any():
                _message(ax, f"{layer}: no finite weights (all trials diverged)")
                continue
            _scatter_groups(ax, mean, std, labels, arch, markers)
            n_weights = int(stats["n_weights"].sel(layer=layer)) if "n_weights" in stats.coords else None
            ax.set_title(f"{layer}" + (f" ({n_weights:,} weights)" if n_weights else ""))
            ax.set_xlabel("mean of weights (weight units)")
            ax.set_ylabel("std of weights (weight units)")
            ax.ticklabel_format(axis="both", style="sci", scilimits=(-3, 3))
        _legends(fig, labels, markers)
        epoch = stats.attrs.get("snapshot")
        fig.suptitle(_title(title, "Mean vs standard deviation of weights per trial" + (f" (epoch {epoch})" if epoch is not None else "")))
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- Figs 5–7


def distributions(densities: Sequence[xr.DataArray], title: str = "", log_density: bool = False) -> Figure:
    """Paper Figs 5–7: density of all weights of all trials per group, one panel per layer
    (``weightzoo.analysis.kde.layer_density`` outputs)."""
    with plt.rc_context(STYLE):
        if not densities:
            return message_figure("no weights in this zoo", _title(title, "Weight distributions"))
        fig, axes = _panels(len(densities))
        legend_labels = []
        for ax, density in zip(axes, densities):
            name = str(density.attrs.get("variable", density.name)).removesuffix("_weight")
            groups = [str(g) for g in density["group"].values]
            drawn = False
            for g in groups:
                values = density.sel(group=g).values
                if not np.isfinite(values).any() or int(density["n_values"].sel(group=g)) == 0:
                    continue
                n_trials = int(density["n_trials"].sel(group=g))
                ax.plot(density["x"].values, values, color=group_color(g), linewidth=1.4, label=f"{g} (n={n_trials})")
                drawn = True
                legend_labels.append(g)
            if not drawn:
                _message(ax, f"{name}: no finite weights")
                continue
            if log_density:
                ax.set_yscale("log")
            ax.set_title(name)
            ax.set_xlabel("weight value (weight units)")
            ax.set_ylabel("density (1 / weight unit)")
            ax.legend(frameon=False)
        fig.suptitle(_title(title, "Density of all weights per accuracy group (binned Gaussian KDE)"))
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- Figs 8–10


def node_strength(strengths: Sequence[xr.DataArray], groups=None, title: str = "", seed: int = 0, arch=None) -> Figure:
    """Paper Figs 8–10: per layer, the per-trial mean node strength by group (top row; dots are trials) and
    the distribution of all nodes' strengths per group (bottom row). ``strengths``: ``node_strength``
    outputs (trial, node), one per layer."""
    with plt.rc_context(STYLE):
        if not strengths:
            return message_figure("no layer with incoming weights per node", _title(title, "Node strength"))
        n = strengths[0].sizes["trial"]
        labels = _labels(groups, n)
        arch, markers = _arch_markers(arch, n)
        names = ordered_groups(labels)
        rng = np.random.default_rng(seed)
        columns = min(MAX_COLUMNS, len(strengths))
        blocks = math.ceil(len(strengths) / columns)
        fig, axes = plt.subplots(2 * blocks, columns, figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * 2 * blocks),
                                 squeeze=False)
        for index in range(len(strengths), blocks * columns):
            axes[2 * (index // columns), index % columns].set_visible(False)
            axes[2 * (index // columns) + 1, index % columns].set_visible(False)
        for index, strength in enumerate(strengths):
            row, col = 2 * (index // columns), index % columns
            layer = strength.attrs.get("layer", strength.name)
            kind = strength.attrs.get("kind", "abs_in")
            unit = "sum of |incoming weights|" if kind == "abs_in" else "signed in + out strength"
            values = np.asarray(strength.values, dtype=float)
            mean = np.nanmean(np.where(np.isfinite(values), values, np.nan), axis=1) if values.size else np.full(n, np.nan)
            top, bottom = axes[row, col], axes[row + 1, col]
            if not np.isfinite(mean).any():
                _message(top, f"{layer}: no finite strengths")
                _message(bottom, "")
                continue
            for i, g in enumerate(names):
                rows = (labels == g) & np.isfinite(mean)
                x = i + rng.uniform(-0.18, 0.18, rows.sum())
                for a, marker in markers.items():
                    mine = arch[rows] == a
                    top.scatter(x[mine], mean[rows][mine], s=16, color=group_color(g), marker=marker, alpha=0.8,
                                edgecolors="none")
                if rows.sum() >= 1:
                    top.hlines(np.median(mean[rows]), i - 0.3, i + 0.3, color=group_color(g), linewidth=2)
                nodes = values[labels == g].ravel()
                nodes = nodes[np.isfinite(nodes)]
                if nodes.size:
                    bottom.hist(nodes, bins=30, density=True, histtype="step", color=group_color(g), linewidth=1.4,
                                label=f"{g} ({nodes.size} nodes)")
            top.set_xticks(range(len(names)), names)
            top.set_xlabel("accuracy group")
            top.set_ylabel(f"mean node strength\n({unit})")
            top.set_title(f"{layer}: {values.shape[1]} nodes" if len(markers) < 2 else f"{layer}: up to {values.shape[1]} nodes")
            bottom.set_xlabel(f"node strength ({unit})")
            bottom.set_ylabel("density (1 / strength unit)")
            bottom.legend(frameon=False)
        _arch_legend(fig, markers, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(6, len(markers)), frameon=False)
        fig.suptitle(_title(title, "Node strength per layer (top: per-trial mean, line = median; bottom: all nodes)"))
        fig.tight_layout(rect=(0, 0, 1, 0.98))
    return fig


def strength_pairs(pairs: xr.Dataset, title: str = "", arch=None) -> Figure:
    """Paper Figs 8–10, pairwise panels: per-trial mean node strength of layer i vs layer j, coloured by
    group, with Spearman rho per group in the legend (``weightzoo.analysis.strength.pairwise_strength``)."""
    with plt.rc_context(STYLE):
        if pairs.sizes.get("pair", 0) == 0:
            n_layers = pairs.sizes.get("layer", 0)
            return message_figure(f"{n_layers} layer(s) with node strength: no pair of layers to compare",
                                  _title(title, "Node strength, layer vs layer"))
        labels = np.asarray(pairs["trial_group"].values, dtype=object)
        arch, markers = _arch_markers(arch, labels.size)
        fig, axes = _panels(pairs.sizes["pair"])
        for ax, pair in zip(axes, pairs["pair"].values):
            a, b = str(pairs["layer_i"].sel(pair=pair).values), str(pairs["layer_j"].sel(pair=pair).values)
            x = pairs["mean_strength"].sel(layer=a).values
            y = pairs["mean_strength"].sel(layer=b).values
            handles = []
            for g in [str(g) for g in pairs["group"].values]:
                rho = float(pairs["spearman_rho"].sel(pair=pair, group=g))
                reason = str(pairs["reason"].sel(pair=pair, group=g).values)
                count = int(pairs["n"].sel(pair=pair, group=g))
                text = f"ρ = {rho:.2f}" if np.isfinite(rho) else f"ρ n/a ({reason})"
                if g == "all":
                    handles.append(Line2D([], [], color="none", label=f"all (n={count}): {text}"))
                    continue
                _scatter_groups(ax, np.where(labels == g, x, np.nan), y, labels, arch, markers)
                handles.append(Line2D([], [], color=group_color(g), marker="o", linestyle="", label=f"{g} (n={count}): {text}"))
            ax.legend(handles=handles, frameon=False, title="Spearman per group", loc="upper left", bbox_to_anchor=(1.0, 1.0))
            ax.set_xlabel(f"{a}: mean node strength")
            ax.set_ylabel(f"{b}: mean node strength")
            ax.set_title(f"{a} vs {b}")
        kind = pairs.attrs.get("kind", "abs_in")
        _arch_legend(fig, markers, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(6, len(markers)), frameon=False)
        fig.suptitle(_title(title, f"Mean node strength per trial, layer vs layer ({kind})"))
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- Figs 11–13


def score_text(projection: xr.Dataset) -> str:
    """One line of separation scores of a ``project`` result, or its message when nothing was projected."""
    attrs = projection.attrs
    if attrs.get("message"):
        return str(attrs["message"])
    knn, chance, sil = attrs.get("knn_accuracy"), attrs.get("chance_accuracy"), attrs.get("silhouette")
    if knn is None or not np.isfinite(knn):
        return f"no scores: {attrs.get('score_note', '')}".strip()
    text = f"{attrs.get('knn_k')}-NN acc {knn:.2f} (chance {chance:.2f}), silhouette {sil:.2f}"
    arch_knn = attrs.get("arch_knn_accuracy")
    if arch_knn is not None and np.isfinite(arch_knn):
        text += f"; architecture {arch_knn:.2f} (chance {attrs.get('arch_chance_accuracy'):.2f})"
    return text


def projection(projections: Sequence[xr.Dataset], title: str = "") -> Figure:
    """Paper Figs 11–13: t-SNE of the trials, one panel per layer (``weightzoo.analysis.projection.project``
    outputs), points coloured by group, separation scores in each panel's title."""
    with plt.rc_context(STYLE):
        if not projections:
            return message_figure("nothing to project", _title(title, "t-SNE"))
        fig, axes = _panels(len(projections), size=(3.8, 3.6) if len(projections) > 1 else (6.0, 5.0))
        all_labels = []
        arch, markers = _arch_markers(projections[0]["arch"].values if "arch" in projections[0].coords else None,
                                      projections[0].sizes["trial"])
        for ax, proj in zip(axes, projections):
            labels = np.asarray(proj["group"].values, dtype=object)
            all_labels.extend(labels)
            layer = proj.attrs.get("layer", "all")
            head = "all weights" if layer == "all" else layer
            if proj.attrs.get("message"):
                _message(ax, f"{head}:\n{proj.attrs['message']}")
                continue
            x, y = proj["x"].values, proj["y"].values
            _scatter_groups(ax, x, y, labels, arch, markers, size=20)
            ax.set_title(f"{head}\n{score_text(proj)}")
            ax.set_xlabel("t-SNE 1 (arbitrary units)")
            ax.set_ylabel("t-SNE 2 (arbitrary units)")
            if proj.attrs.get("note"):
                ax.text(0.01, 0.01, str(proj.attrs["note"]), transform=ax.transAxes, fontsize=6, color="#555555",
                        va="bottom", wrap=True)
        labels = np.asarray(all_labels[: projections[0].sizes["trial"]], dtype=object)
        _legends(fig, labels, markers)
        first = projections[0].attrs
        features = first.get("features", "")
        perplexity = first.get("perplexity")
        detail = f"{features} features" + (f", perplexity {perplexity:.3g}" if perplexity and np.isfinite(perplexity) else "")
        fig.suptitle(_title(title, f"t-SNE of trials ({detail})"))
        fig.tight_layout()
    return fig
