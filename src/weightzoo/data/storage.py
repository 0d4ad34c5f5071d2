"""Prepared datasets as netCDF files, and the workflow's jobs that download and prepare them."""

import logging
from pathlib import Path

import xarray as xr

from weightzoo.io.atomic import READ_ERRORS, checksum_mismatch, damaged, write_netcdf_atomic
from weightzoo.data.prepare import TEST, TRAIN, prepare_dataset
from weightzoo.data.readers import DatasetError
from weightzoo.data.specs import DATASETS, spec

REQUIRED_VARIABLES = {
    "images": ("sample", "channel", "height", "width"),
    "labels": ("sample",),
    "split": ("sample",),
    "mean": ("channel",),
    "std": ("channel",),
}
log = logging.getLogger(__name__)


def download_dataset(name: str, dest_dir) -> Path:
    """Download a file dataset (mnist, fmnist, cifar10) with torchvision into ``dest_dir``; return ``dest_dir``.

    The result is the torchvision layout (``MNIST/raw``, ``FashionMNIST/raw``, ``cifar-10-batches-py``),
    which ``prepare_dataset`` finds when ``data_dir`` is ``dest_dir``.
    """
    dataset = spec(name)
    if dataset.embedded:
        downloadable = sorted(n for n, s in DATASETS.items() if not s.embedded)
        raise DatasetError(
            f"dataset {name!r} ships with its Python package and needs no download; "
            f"downloadable datasets are {downloadable}"
        )
    import torchvision.datasets

    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dataset_class = getattr(torchvision.datasets, dataset.source.torchvision_class)
    log.info("downloading dataset %s into %s", name, dest_dir)
    for train in (True, False):
        try:
            dataset_class(root=str(dest_dir), train=train, download=True)
        except (OSError, RuntimeError) as err:
            raise DatasetError(f"dataset {name!r}: download into {dest_dir} failed: {err}") from err
    return dest_dir


def prepare_and_save(name: str, settings: dict, path) -> None:
    """Workflow job: prepare dataset ``name`` from its official source and write it to ``path``."""
    log.info("preparing dataset %s with settings %s", name, settings)
    ds = prepare_dataset(name, settings)
    save_dataset(ds, path)
    split = ds["split"].values
    log.info("wrote %s: images %s, %d train / %d test, mean %s, std %s, source: %s", path, ds["images"].shape,
             (split == TRAIN).sum(), (split == TEST).sum(), ds["mean"].values, ds["std"].values, ds.attrs["source"])


def save_dataset(ds: xr.Dataset, path) -> None:
    """Write a prepared dataset to netCDF-4 atomically, every variable zlib-compressed (level 4)."""
    encoding = {var: {"zlib": True, "complevel": 4, "fletcher32": True} for var in ds.data_vars}
    write_netcdf_atomic(ds, path, encoding=encoding)


def load_dataset(path) -> xr.Dataset:
    """Read a prepared dataset fully into memory and check it has the required variables."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: prepared dataset file does not exist")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    except READ_ERRORS as err:
        raise DatasetError(str(damaged(path, f"cannot be read as netCDF: {type(err).__name__}: {err}"))) from err
    bad = checksum_mismatch(ds)
    if bad:
        raise DatasetError(str(damaged(path, f"variable {bad!r} does not match its checksum")))
    for var, dims in REQUIRED_VARIABLES.items():
        if var not in ds:
            raise DatasetError(f"{path}: required variable {var!r} is missing (has {sorted(ds.data_vars)})")
        if ds[var].dims != dims:
            raise DatasetError(f"{path}: variable {var!r} has dims {ds[var].dims}, expected {dims}")
    return ds


def check_batch_size(ds: xr.Dataset, batch_size: int, path, key: str = "training.batch_size") -> None:
    """A batch larger than the train split would silently train full-batch; the config check knows the
    embedded datasets' sizes, this one the sizes of file datasets once prepared. ``key`` is the config key
    the batch size came from (``weightzoo.config.batch_size_key``)."""
    n_train = int((ds["split"].values == TRAIN).sum())
    if batch_size > n_train:
        raise DatasetError(f"{path}: {key} {batch_size} is larger than the {n_train} training samples "
                           f"of this dataset; set {key} to at most {n_train}")
