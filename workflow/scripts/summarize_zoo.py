"""Snakemake script: one row per trial of every experiment."""

from weightzoo.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs import summarize
from weightzoo.logs import to_file
from weightzoo.store import REMAKE_ZOO

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input.zoos, REMAKE_ZOO)
summarize(list(snakemake.input.zoos), snakemake.output.summary)
