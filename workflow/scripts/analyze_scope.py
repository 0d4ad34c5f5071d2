"""Snakemake script: paper Figs 1–13 for one (model, dataset), architectures pooled."""

from weightzoo.atomic import name_damaged_inputs_on_crash
from weightzoo.logs import to_file
from weightzoo.scope_jobs import characterize_scope

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
characterize_scope(list(snakemake.input.features), list(snakemake.input.zoos), list(snakemake.input.strengths),
                   dict(snakemake.output.items()), snakemake.params.title,
                   perplexity=snakemake.params.tsne["perplexity"], seed=snakemake.params.seed)
