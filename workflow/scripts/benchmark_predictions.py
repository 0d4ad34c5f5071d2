"""Snakemake script: every method of the prediction benchmark scored on the shared folds, per (model, dataset) and
pooled, beside the published numbers (CSV and HTML)."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.benchmark import evaluate_benchmark
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
evaluate_benchmark(list(snakemake.input.features), list(snakemake.input.folds), snakemake.output.csv,
                   snakemake.output.html, snakemake.params.benchmark, alpha=snakemake.params.alpha,
                   seed=snakemake.params.seed, prediction_paths=list(snakemake.input.weight_space_net),
                   weight_space_net=snakemake.params.weight_space_net)
