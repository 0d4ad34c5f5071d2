"""Snakemake script: one figure family of one (model, dataset) at one scope (pooled or an architecture), drawn
from the stored per-experiment results."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.figures import draw_figure
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
draw_figure(snakemake.params.figure, snakemake.wildcards.scope, {k: list(v) for k, v in snakemake.input.items()},
            snakemake.output.figure, snakemake.params.title, seed=snakemake.params.seed,
            perplexity=snakemake.params.tsne["perplexity"], scores_path=snakemake.output.get("scores"))
