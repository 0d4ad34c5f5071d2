"""Snakemake script: read one dataset from its official source and write the prepared netCDF file."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.data import prepare_and_save
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)  # a bad source file (DatasetError): its message, no traceback
prepare_and_save(snakemake.params.name, dict(snakemake.params.settings), snakemake.output.dataset)
