"""Snakemake script: download one dataset's official files with torchvision into a resources folder."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.data import download_dataset
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)  # a failed download (DatasetError): its message, no traceback
download_dataset(snakemake.params.name, snakemake.output.raw)
