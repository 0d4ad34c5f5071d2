"""Snakemake script: accuracy group of every trial, added to the trial summary."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.groups import group_trials
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
group_trials(snakemake.input.summary, snakemake.params.datasets, snakemake.output.summary, snakemake.params.groups)
