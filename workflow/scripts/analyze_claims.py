"""Snakemake script: the paper's claims as statistics for one zoo (CSV and HTML)."""

from weightzoo.analysis_jobs import check_claims
from weightzoo.atomic import name_damaged_inputs_on_crash
from weightzoo.logs import to_file
from weightzoo.store import REMAKE_ZOO

to_file(snakemake.log[0])
name_damaged_inputs_on_crash([snakemake.input.zoo], REMAKE_ZOO)
check_claims(snakemake.input.zoo, snakemake.input.groups, snakemake.params.experiment, snakemake.output.csv,
             snakemake.output.html, snakemake.params.claims, accuracy=snakemake.params.accuracy,
             seed=snakemake.params.seed)
