"""The verdicts at a glance: a forest plot of every claim and layer of one (model, dataset).

Drawn from the stored claims table (``analysis.findings.forest_table``). Two panels share the rows: on the left
the recipe-adjusted estimate (seeds of one recipe compared), on the right the pooled one as the paper makes it
(group contrast over every recipe; the W1 ratio on a log2 scale). Each estimate is a marker with its interval,
coloured by its verdict (``report.html.VERDICT_COLOURS``), over its equivalence band (grey: effects inside it are
negligible by the claims' equivalence test). Estimates outside the axis are drawn at its edge as arrows.
"""

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from weightzoo.analysis.findings import SIDES
from weightzoo.report.figures import DPI, MAX_HEIGHT, MAX_WIDTH, MIN_FONT, STYLE, _suptitle, message_figure
from weightzoo.report.html import VERDICT_COLOURS

ROW_INCHES = (0.17, 0.26)  # the least and the most height per row: 9 pt labels need about 0.15 in
CHROME_INCHES = 1.5  # title, axis labels and legend
LABEL_INCHES = 1.9  # row labels left of each block
BAND_COLOUR = "#e6e6e6"
LIMIT = 1.05  # correlations and Cliff's delta live in [-1, 1]; wider effects (log2 ratios, R²) are clipped


def _rows_per_block() -> int:
    return int((MAX_HEIGHT - CHROME_INCHES) / ROW_INCHES[0])


def _limit(values: pd.Series) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return LIMIT if finite.empty else float(min(3.0, max(LIMIT, finite.max() * 1.05)))


def verdict_forest(forest: pd.DataFrame, title: str = "") -> Figure:
    """The forest plot of one (model, dataset)'s ``forest_table`` rows; a message figure when no row has an
    estimate (a plot of nothing is never shown as if it meant something)."""
    import matplotlib.pyplot as plt

    keys = list(dict.fromkeys(zip(forest["claim"], forest["claim_name"], forest["layer"])))
    has_estimate = np.isfinite(forest["effect"].astype(float)).any() if not forest.empty else False
    if not keys or not has_estimate:
        return message_figure("No claim has an estimate on this zoo (see the findings table for why).", title)
    blocks = math.ceil(len(keys) / _rows_per_block())
    per_block = math.ceil(len(keys) / blocks)
    row_inches = min(ROW_INCHES[1], max(ROW_INCHES[0], (MAX_HEIGHT - CHROME_INCHES) / per_block))
    height = min(MAX_HEIGHT, CHROME_INCHES + row_inches * per_block)
    limits = {side: _limit(forest.loc[forest["side"] == side, ["low", "high", "effect"]].stack())
              for side in SIDES}
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(MAX_WIDTH, height), dpi=DPI)
        panel = (MAX_WIDTH - blocks * LABEL_INCHES) / (2 * blocks)
        ratios = [x for _ in range(blocks) for x in (LABEL_INCHES, panel, panel)]
        grid = fig.add_gridspec(1, 3 * blocks, width_ratios=ratios, wspace=0.08,
                                bottom=0.9 / height, top=1 - 0.55 / height)
        for b in range(blocks):
            chunk = keys[b * per_block:(b + 1) * per_block]
            label_ax = fig.add_subplot(grid[0, 3 * b])
            _labels(label_ax, chunk, _pooled_symbols(forest))
            for i, side in enumerate(SIDES):
                ax = fig.add_subplot(grid[0, 3 * b + 1 + i], sharey=label_ax)
                _panel(ax, forest[forest["side"] == side], chunk, limits[side])
                if b == 0 or blocks == 1:
                    ax.set_title(SIDES[side], fontsize=MIN_FONT)
                ax.set_xlabel("ρ" if side == "recipe" else "δ, ρ, log₂ ratio", fontsize=MIN_FONT)
        _legend(fig, forest)
        if title:
            _suptitle(fig, title)
    return fig


SYMBOLS = {"cliffs_delta": "δ", "spearman_rho": "ρ", "log2 w1_ratio_high_low": "log₂ W1 ratio", "r2": "R²"}


def _pooled_symbols(forest: pd.DataFrame) -> dict:
    """Claim -> the symbol of its pooled effect (the right panel mixes δ, ρ and log2 ratios)."""
    pooled = forest[(forest["side"] == "pooled") & (forest["effect_name"] != "")]
    return {c: SYMBOLS.get(n, n) for c, n in zip(pooled["claim"], pooled["effect_name"])}


def _labels(ax, keys, symbols: dict) -> None:
    ax.set_ylim(len(keys) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    previous = None
    for y, (claim, name, layer) in enumerate(keys):
        symbol = f" ({symbols[claim]})" if claim in symbols else ""
        text = f"{claim} {name[:17]}{symbol} · {layer}" if claim != previous else str(layer)
        ax.text(1, y, text, ha="right", va="center", fontsize=MIN_FONT,
                fontweight="bold" if claim != previous else "normal")
        if claim != previous and y:
            ax.axhline(y - 0.5, color="#cccccc", linewidth=0.6, xmin=0.02)
        previous = claim
    ax.axis("off")


def _panel(ax, rows: pd.DataFrame, keys, limit: float) -> None:
    index = {key: y for y, key in enumerate(keys)}
    ax.axvline(0, color="#444444", linewidth=0.7)
    for row in rows.itertuples():
        y = index.get((row.claim, row.claim_name, row.layer))
        if y is None:
            continue
        if np.isfinite(row.band_low) and np.isfinite(row.band_high):
            ax.fill_betweenx([y - 0.42, y + 0.42], max(row.band_low, -limit), min(row.band_high, limit),
                             color=BAND_COLOUR, linewidth=0)
        colour = VERDICT_COLOURS.get(row.verdict, "#333333")
        if not np.isfinite(row.effect):
            ax.text(0, y, "no estimate", ha="center", va="center", fontsize=MIN_FONT, color="#888888")
            continue
        if np.isfinite(row.low) and np.isfinite(row.high):
            ax.plot([np.clip(row.low, -limit, limit), np.clip(row.high, -limit, limit)], [y, y], color=colour,
                    linewidth=1.6, solid_capstyle="butt")
        effect = float(np.clip(row.effect, -limit, limit))
        marker = "o" if abs(row.effect) <= limit else (">" if row.effect > 0 else "<")
        ax.plot([effect], [y], marker=marker, color=colour, markersize=5, markeredgecolor="white",
                markeredgewidth=0.5)
    ax.set_xlim(-limit, limit)
    ax.set_xticks([-1, 0, 1] if limit < 2 else [-2, 0, 2])
    ax.tick_params(axis="y", left=False, labelleft=False)
    ax.grid(axis="x", color="#eeeeee", linewidth=0.5)
    ax.set_axisbelow(True)
    for y in range(len(keys)):
        if y % 2:
            ax.axhspan(y - 0.5, y + 0.5, color="#fafafa", zorder=-2, linewidth=0)


def _legend(fig, forest: pd.DataFrame) -> None:
    shown = [v for v in VERDICT_COLOURS if v in set(forest["verdict"])]
    handles = [Line2D([], [], color=VERDICT_COLOURS[v], marker="o", linewidth=1.6, label=v) for v in shown]
    handles.append(Patch(color=BAND_COLOUR, label="equivalence band (negligible)"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), frameon=False, fontsize=MIN_FONT,
               bbox_to_anchor=(0.5, 0.0))
