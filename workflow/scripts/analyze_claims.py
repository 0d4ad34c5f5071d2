"""Snakemake script: the paper's claims as statistics for one (model, dataset), at every scope (CSV and HTML)."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.claims import evaluate_claims
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
evaluate_claims(list(snakemake.input.features), snakemake.output.csv, snakemake.output.html, snakemake.params.claims,
                snakemake.params.title, accuracy=snakemake.params.accuracy, seed=snakemake.params.seed,
                status_paths=list(snakemake.input.statuses))
