"""Snakemake script: one zoo in the Small CNN Zoo layout (weights.npy, metrics.csv, layout.csv, export.json)."""

from pathlib import Path

from weightzoo.export import export_zoos
from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
export_zoos([snakemake.input.zoo], Path(snakemake.output.weights).parent, canonical=snakemake.params.canonical)
