"""Snakemake script: the prediction benchmark's folds of one (model, dataset), grouped by recipe (folds.csv)."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.benchmark import write_folds
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
write_folds(list(snakemake.input.features), snakemake.output.folds, snakemake.params.cv_folds, snakemake.params.seed)
