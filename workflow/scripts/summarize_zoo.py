"""Snakemake script: one row per trial of every experiment."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.train import summarize
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
summarize(list(snakemake.input.zoos), snakemake.output.summary)
