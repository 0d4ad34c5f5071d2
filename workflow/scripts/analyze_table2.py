"""Snakemake script: the paper's Table 2 for this run, next to the paper's numbers (CSV and HTML)."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.groups import tabulate_groups
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
tabulate_groups(snakemake.input.summary, snakemake.output.csv, snakemake.output.html,
                accuracy=snakemake.params.accuracy, paper_datasets=snakemake.params.paper_datasets)
