"""Snakemake script: the forest plot of one (model, dataset)'s claims (every claim and layer, at a fixed recipe
and pooled), drawn from the stored claims table."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.claims import draw_verdicts
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
draw_verdicts(snakemake.input.claims, snakemake.output.figure, snakemake.params.title)
