"""Snakemake script: download one dataset's official files with torchvision into a resources folder."""

import logging

from weightzoo.data import download_dataset

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
log = logging.getLogger("download_dataset")

name = snakemake.params.name
raw_dir = snakemake.output.raw
log.info("downloading dataset %s into %s", name, raw_dir)
try:
    download_dataset(name, raw_dir)
except Exception:
    log.exception("downloading dataset %s failed", name)
    raise
log.info("downloaded dataset %s into %s", name, raw_dir)
