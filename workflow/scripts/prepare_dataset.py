"""Snakemake script: read one dataset from its official source and write the prepared netCDF file."""

import logging

from weightzoo.data import prepare_dataset, save_dataset

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
log = logging.getLogger("prepare_dataset")

name = snakemake.params.name
settings = dict(snakemake.params.settings)
log.info("preparing dataset %s with settings %s", name, settings)
try:
    ds = prepare_dataset(name, settings)
    save_dataset(ds, snakemake.output.dataset)
except Exception:
    log.exception("preparing dataset %s failed", name)
    raise
split = ds["split"].values
log.info(
    "wrote %s: images %s, %d train / %d test, mean %s, std %s, source: %s",
    snakemake.output.dataset, ds["images"].shape, (split == 0).sum(), (split == 1).sum(),
    ds["mean"].values, ds["std"].values, ds.attrs["source"],
)
