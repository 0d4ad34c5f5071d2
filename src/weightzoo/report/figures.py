"""All figures of the report (paper Figs 1–13), drawn with matplotlib's Agg backend.

Every function takes analysis results (xarray objects from ``weightzoo.analysis``) and returns a
``matplotlib.figure.Figure``; ``save`` writes and closes it, ``save_figure`` atomically. ``FAMILIES`` draws each
figure family from an ``analysis.scope.ScopeView``, at any scope. Groups always get ``GROUP_COLORS`` and the order
``GROUPS``; a panel with nothing to show says why in its middle instead of raising.

Sized for the Snakemake report at 1280 px: the report shows a PNG at its pixel size unless it is wider than the
content pane (about 760 px beside the menu), and centres it vertically so that the top of a figure taller than the
window cannot be scrolled to. So every figure is at most ``MAX_WIDTH`` x ``MAX_HEIGHT`` inches at ``DPI`` (wide
figures wrap into rows of at most ``MAX_COLUMNS`` panels), no text is smaller than ``MIN_FONT`` pt (9 pt at ``DPI``
100 is 12.5 screen pixels, a little above a browser's 9 pt), legends sit outside the panels, and ``save`` writes
palette PNGs (a tenth of the bytes of RGBA ones) so a paper-scale report stays small.
"""

import io
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter  # noqa: E402

from weightzoo.analysis.groups import GROUP_COLORS, natural_key  # noqa: E402
from weightzoo.analysis.metrics import FAMILIES as METRIC_FAMILIES, claim_metrics, stored_values  # noqa: E402
from weightzoo.analysis.projection import score_text  # noqa: E402
from weightzoo.analysis.zoo import ordered_groups  # noqa: E402
from weightzoo.io.atomic import atomic_path  # noqa: E402

OTHER_COLOR = "#555555"
DPI = 100
MAX_WIDTH = 7.4  # inches, figure with its legends: 740 px at DPI
MAX_HEIGHT = 8.0  # inches, figure with title and legends below: 800 px, fits a 1280 x 1000 window's viewport
MAX_COLUMNS = 3
MIN_FONT = 9
PANEL_HEIGHT = 2.9  # inches, the most one panel gets
STYLE = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "xtick.labelsize": MIN_FONT,
    "ytick.labelsize": MIN_FONT,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def group_color(group: str) -> str:
    """The group's colour (``GROUP_COLORS``); grey-black for labels outside the paper's groups."""
    return GROUP_COLORS.get(str(group), OTHER_COLOR)


def save(fig: Figure, path, dpi: int = DPI, colors: int = 256) -> None:
    """Write ``fig`` (format from the suffix) and release its memory. PNGs are written with a palette of at most
    ``colors`` colours (lossless for line art, a fraction of the bytes of RGBA)."""
    if str(path).lower().endswith(".png"):
        from PIL import Image

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
        plt.close(fig)
        image = Image.open(buffer).convert("RGB")
        image.quantize(colors=colors, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE).save(
            path, format="png", optimize=True)
        return
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def save_figure(fig: Figure, path) -> None:
    """``save`` atomically (format from the suffix of ``path``)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        drawn = tmp.with_name(tmp.name + path.suffix)
        save(fig, drawn)
        drawn.replace(tmp)


def message_figure(text: str, title: str = "") -> Figure:
    """A one-panel figure that only says ``text`` (why there is nothing to plot)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6, 2.2))
        _message(ax, "\n".join(textwrap.wrap(text, 70)))
        if title:
            _suptitle(fig, title)
    return fig


def _wrap(text: str, inches: float, size: float = MIN_FONT) -> str:
    """``text`` broken into lines that fit ``inches`` at ``size`` pt (about 0.55 em per character)."""
    width = max(12, int(inches * 72 / (0.55 * size)))
    return "\n".join(line for part in str(text).split("\n") for line in (textwrap.wrap(part, width) or [""]))


def _suptitle(fig, text: str) -> None:
    fig.suptitle(_wrap(text, min(fig.get_figwidth(), MAX_WIDTH) - 0.2, 11))


def _message(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes, color="#444444")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _columns(n: int, columns: int | None = None) -> int:
    """Panels per row: all of them up to two, then rows of two (4 panels) or three."""
    if columns is None:
        columns = n if n <= 2 else 2 if n == 4 else MAX_COLUMNS
    return max(1, min(columns, n, MAX_COLUMNS))


def _grid_size(rows: int, columns: int, room: float = 1.0, height: float = PANEL_HEIGHT) -> tuple[float, float]:
    """Figure size for ``rows`` x ``columns`` panels within ``MAX_WIDTH`` x ``MAX_HEIGHT``; ``room``: inches kept
    for the title and the legends below the panels."""
    width = MAX_WIDTH if columns > 1 else 5.0
    panel = min(height, width / columns * 0.9, (MAX_HEIGHT - room) / rows)
    return width, panel * rows + 0.5


def _panels(n: int, columns: int | None = None, room: float = 1.0, height: float = PANEL_HEIGHT):
    columns = _columns(n, columns)
    rows = max(1, math.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=_grid_size(rows, columns, room, height), squeeze=False)
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _panel_width(fig, axes) -> float:
    return fig.get_figwidth() / max(1, axes[0].get_gridspec().ncols) if len(axes) else fig.get_figwidth()


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
        _group_legend(fig, labels, loc="upper right", bbox_to_anchor=(0.48, 0.0), ncol=2, frameon=False)
        _arch_legend(fig, markers, loc="upper left", bbox_to_anchor=(0.52, 0.0), ncol=min(3, len(markers)), frameon=False)
    else:
        _group_legend(fig, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, frameon=False)


def _few_ticks(ax, n: int = 4) -> None:
    """At most ``n`` ticks per axis, so 9 pt tick labels do not collide in narrow panels."""
    ax.xaxis.set_major_locator(MaxNLocator(n))
    ax.yaxis.set_major_locator(MaxNLocator(n + 1))


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
        _suptitle(fig, _title(title, f"Convergence of {n} trial(s)"))
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
            ax.set_title(_wrap(f"{layer}" + (f" ({n_weights:,} weights)" if n_weights else ""), _panel_width(fig, axes) - 0.2, 10))
            ax.set_xlabel("mean of weights")
            ax.set_ylabel("std of weights")
            ax.ticklabel_format(axis="both", style="sci", scilimits=(-3, 3))
            _few_ticks(ax)
        _legends(fig, labels, markers)
        epoch = stats.attrs.get("snapshot")
        _suptitle(fig, _title(title, "Mean vs standard deviation of weights per trial" + (f" (epoch {epoch})" if epoch is not None else "")))
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
        trials: dict[str, int] = {}
        for ax, density in zip(axes, densities):
            name = str(density.attrs.get("variable", density.name)).removesuffix("_weight")
            groups = [str(g) for g in density["group"].values]
            drawn = False
            for g in groups:
                values = density.sel(group=g).values
                if not np.isfinite(values).any() or int(density["n_values"].sel(group=g)) == 0:
                    continue
                n_trials = int(density["n_trials"].sel(group=g))
                ax.plot(density["x"].values, values, color=group_color(g), linewidth=1.4)
                drawn = True
                trials[g] = max(trials.get(g, 0), n_trials)
            if not drawn:
                _message(ax, f"{name}: no finite weights")
                continue
            if log_density:
                ax.set_yscale("log")
            ax.set_title(name)
            ax.set_xlabel("weight value")
            ax.set_ylabel("density")
            _few_ticks(ax)
        handles = [Line2D([], [], color=group_color(g), linewidth=1.4, label=f"{g} (n={trials[g]})")
                   for g in ordered_groups(np.array(list(trials), dtype=object))]
        if handles:
            fig.legend(handles=handles, title="accuracy group", loc="upper center", bbox_to_anchor=(0.5, 0.0),
                       ncol=4, frameon=False)
        _suptitle(fig, _title(title, "Density of all weights per accuracy group (binned Gaussian KDE)"))
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
        columns = _columns(len(strengths), min(MAX_COLUMNS, len(strengths)))
        blocks = math.ceil(len(strengths) / columns)
        fig, axes = plt.subplots(2 * blocks, columns, figsize=_grid_size(2 * blocks, columns, room=1.3, height=2.4),
                                 squeeze=False)
        for index in range(len(strengths), blocks * columns):
            axes[2 * (index // columns), index % columns].set_visible(False)
            axes[2 * (index // columns) + 1, index % columns].set_visible(False)
        for index, strength in enumerate(strengths):
            row, col = 2 * (index // columns), index % columns
            layer = strength.attrs.get("layer", strength.name)
            kind = strength.attrs.get("kind", "abs_in")
            unit = "Σ|w_in|" if kind == "abs_in" else "signed in + out"
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
                    bottom.hist(nodes, bins=30, density=True, histtype="step", color=group_color(g), linewidth=1.4)
            top.set_xticks(range(len(names)), names)
            top.set_ylabel(f"trial mean ({unit})")
            nodes_text = f"{values.shape[1]} nodes" if len(markers) < 2 else f"≤ {values.shape[1]} nodes"
            top.set_title(_wrap(f"{layer}: {nodes_text}", MAX_WIDTH / columns - 0.3, 10))
            top.yaxis.set_major_locator(MaxNLocator(4))
            bottom.set_xlabel(f"node strength ({unit})")
            bottom.set_ylabel("density")
            _few_ticks(bottom, 3)
        _legends(fig, labels, markers)
        _suptitle(fig, _title(title, "Node strength per layer (upper row: per-trial mean, line = median; lower row: all "
                                     "nodes)"))
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
        n_pairs = pairs.sizes["pair"]
        columns = min(n_pairs, MAX_COLUMNS)
        rows = math.ceil(n_pairs / columns)
        # laid out by hand, in inches: each scatter panel has its title above and its Spearman legend below it
        # (never over the points; tight_layout does not make room for legends)
        width = MAX_WIDTH if columns > 1 else 4.0
        cell_w, scatter_h, above, below, head = width / columns, 1.5, 0.45, 1.55, 0.6
        height = head + rows * (above + scatter_h + below) + 0.2
        fig = plt.figure(figsize=(width, height))
        axes = []
        for index in range(n_pairs):
            row, col = divmod(index, columns)
            left = col * cell_w + 0.62
            bottom = height - head - row * (above + scatter_h + below) - above - scatter_h
            axes.append(fig.add_axes((left / width, bottom / height, (cell_w - 0.8) / width, scatter_h / height)))
        for ax, pair in zip(axes, pairs["pair"].values):
            a, b = str(pairs["layer_i"].sel(pair=pair).values), str(pairs["layer_j"].sel(pair=pair).values)
            x = pairs["mean_strength"].sel(layer=a).values
            y = pairs["mean_strength"].sel(layer=b).values
            handles = []
            for g in [str(g) for g in pairs["group"].values]:
                rho = float(pairs["spearman_rho"].sel(pair=pair, group=g))
                count = int(pairs["n"].sel(pair=pair, group=g))
                text = f"{rho:.2f}" if np.isfinite(rho) else "n/a"
                if g == "all":
                    handles.append(Line2D([], [], color="none", label=f"all: {text} (n={count})"))
                    continue
                _scatter_groups(ax, np.where(labels == g, x, np.nan), y, labels, arch, markers)
                handles.append(Line2D([], [], color=group_color(g), marker="o", linestyle="", label=f"{g}: {text} (n={count})"))
            ax.set_xlabel(a)
            ax.set_ylabel(b if len(b) <= 16 else b[:15] + "…")
            ax.set_title(_wrap(f"{a} vs {b}", cell_w - 0.4), fontsize=MIN_FONT)
            _few_ticks(ax)
            ax.legend(handles=handles, frameon=False, title="Spearman ρ", loc="upper center", bbox_to_anchor=(0.45, -0.3),
                      borderaxespad=0, handletextpad=0.3, labelspacing=0.25)
        kind = pairs.attrs.get("kind", "abs_in")
        _arch_legend(fig, markers, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(6, len(markers)), frameon=False)
        _suptitle(fig, _title(title, f"Mean node strength per trial, layer vs layer ({kind})"))
    return fig


# ---------------------------------------------------------------------------------------------- Figs 11–13


def projection(projections: Sequence[xr.Dataset], title: str = "") -> Figure:
    """Paper Figs 11–13: t-SNE of the trials, one panel per layer (``weightzoo.analysis.projection.project``
    outputs), points coloured by group, separation scores in each panel's title."""
    with plt.rc_context(STYLE):
        if not projections:
            return message_figure("nothing to project", _title(title, "t-SNE"))
        fig, axes = _panels(len(projections), room=1.6, height=2.9 if len(projections) > 1 else 4.2)
        width = _panel_width(fig, axes)
        all_labels = []
        arch, markers = _arch_markers(projections[0]["arch"].values if "arch" in projections[0].coords else None,
                                      projections[0].sizes["trial"])
        for ax, proj in zip(axes, projections):
            labels = np.asarray(proj["group"].values, dtype=object)
            all_labels.extend(labels)
            layer = proj.attrs.get("layer", "all")
            head = "all weights" if layer == "all" else layer
            if proj.attrs.get("message"):
                _message(ax, _wrap(f"{head}: {proj.attrs['message']}", width - 0.2))
                continue
            x, y = proj["x"].values, proj["y"].values
            _scatter_groups(ax, x, y, labels, arch, markers, size=20)
            ax.set_title(_wrap(f"{head}: {score_text(proj)}", width, MIN_FONT), fontsize=MIN_FONT)
            ax.set_xlabel("t-SNE 1")
            ax.set_ylabel("t-SNE 2")
            ax.set_xticks([])
            ax.set_yticks([])
        labels = np.asarray(all_labels[: projections[0].sizes["trial"]], dtype=object)
        _legends(fig, labels, markers)
        first = projections[0].attrs
        features = first.get("features", "")
        perplexity = first.get("perplexity")
        detail = f"{features} features" + (f", perplexity {perplexity:.3g}" if perplexity and np.isfinite(perplexity) else "")
        _suptitle(fig, _title(title, f"t-SNE of trials ({detail})"))
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- metrics


def metrics(features: xr.Dataset, groups=None, title: str = "", seed: int = 0) -> Figure:
    """Every metric tested as a claim (``analysis.metrics.claim_metrics``: weight std, then the spectral ones),
    one panel each: per layer, each trial's value (jittered across the layer's slot), coloured by group."""
    chosen = [m for m in claim_metrics() if METRIC_FAMILIES[m.family].variable in features]
    n = features.sizes["trial"]
    labels = _labels(groups, n)
    rng = np.random.default_rng(seed)
    with plt.rc_context(STYLE):
        if not chosen or n == 0:
            return message_figure("no metrics stored for these trials", _title(title, "Metrics by group"))
        fig, axes = _panels(len(chosen))
        for ax, metric in zip(axes, chosen):
            values = stored_values(features, metric)
            layers = [str(layer) for layer in values["layer"].values if values.attrs["defined"][str(layer)]]
            shown = [values.sel(layer=layer).values for layer in layers]
            finite = np.concatenate([v[np.isfinite(v)] for v in shown]) if shown else np.zeros(0)
            if finite.size == 0:
                _message(ax, f"{metric.text}: no trusted value in any trial"
                         + (f" ({metric.valid})" if metric.valid else ""))
                continue
            for position, v in enumerate(shown):
                jitter = position + rng.uniform(-0.3, 0.3, n)
                for group in dict.fromkeys(labels):
                    here = (labels == group) & np.isfinite(v)
                    ax.scatter(jitter[here], v[here], s=8, color=group_color(group), alpha=0.7, linewidths=0)
            if (finite > 0).all():
                ax.set_yscale("log")
            ax.set_xticks(range(len(layers)), [_wrap(layer, 0.9) for layer in layers], rotation=30, ha="right")
            arrow = {-1: "expected lower in better trials", 1: "expected higher in better trials"}.get(metric.direction, "")
            ax.set_title(_wrap(f"{metric.text} (claim {metric.claim})", _panel_width(fig, axes) - 0.2, 10))
            ax.set_ylabel(_wrap(arrow, 2.5, MIN_FONT))
        _legends(fig, labels, {})
        _suptitle(fig, _title(title, "Metrics tested as claims, per layer and trial"))
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- at any scope

FAMILIES = {
    "convergence": lambda view, title, seed: convergence(view.features, view.labels, title),
    "weight_statistics": lambda view, title, seed: weight_statistics(view.statistics, view.labels, title,
                                                                     arch=view.architectures),
    "distributions": lambda view, title, seed: distributions(view.densities, title),
    "node_strength": lambda view, title, seed: node_strength(view.strengths, view.labels, title, seed=seed,
                                                             arch=view.architectures),
    "strength_pairs": lambda view, title, seed: strength_pairs(view.strength_pairs, title, arch=view.architectures),
    "metrics": lambda view, title, seed: metrics(view.features, view.labels, title, seed=seed),
}
"""Figure family -> how to draw it from an ``analysis.scope.ScopeView`` (the statistics t-SNE, which also writes
scores, is ``projection`` of ``ScopeView.statistics_projection``)."""
