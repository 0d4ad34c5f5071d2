"""Snakemake script: per-trial features, node strengths, density bins and training status (never-trained
parameters, dead units) of one zoo (netCDF), for the analyses at every scope."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.features import extract_features
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
extract_features(snakemake.input.zoo, snakemake.input.groups, snakemake.params.experiment,
                 snakemake.output.features, snakemake.output.strengths, strength_kind=snakemake.params.strength_kind,
                 early_snapshot=snakemake.params.early_snapshot, max_values=snakemake.params.max_values,
                 seed=snakemake.params.seed, dataset_path=snakemake.input.dataset, status_path=snakemake.output.status,
                 densities_path=snakemake.output.densities)
