"""Snakemake script: paper Figs 11–13, t-SNE of one zoo's trials (raw, canonical, invariant) with scores."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.figures import project_trials
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
tsne = snakemake.params.tsne
figures = {features: snakemake.output[features] for features in ("raw", "canonical", "invariant")}
project_trials(snakemake.input.zoo, snakemake.input.groups, snakemake.params.experiment, figures,
               snakemake.output.scores, perplexity=tsne["perplexity"], seed=snakemake.params.seed,
               per_layer=tsne["per_layer"])
