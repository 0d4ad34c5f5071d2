"""Image-classification datasets: one registered spec each, read into weightzoo's prepared-dataset layout.

- ``specs``: ``DatasetSpec`` (shape, classes, source, split sizes) and the registry (``register``, ``spec``,
  ``DATASETS``, ``KNOWN_DATASETS``).
- ``readers``: the official file formats (IDX, CIFAR python batches).
- ``prepare``: ``prepare_dataset(name, settings)`` returns an ``xarray.Dataset`` with ``images (sample,
  channel, height, width)``, ``labels``, ``split``, ``mean`` and ``std`` (docs/data-format.md).
- ``storage``: ``save_dataset`` / ``load_dataset`` move it to and from netCDF; the download and prepare jobs.

Every problem with the input raises ``DatasetError`` naming the offending file or settings key.
"""

from weightzoo.data.readers import DatasetError, read_cifar_batch, read_idx_images, read_idx_labels
from weightzoo.data.specs import (
    DATASETS,
    KNOWN_DATASETS,
    CifarBatches,
    DatasetSpec,
    Embedded,
    IdxFiles,
    register,
    spec,
)

# The config checks and cluster estimates (imported by every Snakemake process) need only the specs:
# the names below load xarray, so they are imported on first use.
_LAZY = {
    "weightzoo.data.prepare": ("prepare_dataset", "build_dataset", "channel_stats", "stratified_split",
                               "SETTINGS_KEYS", "TRAIN", "TEST"),
    "weightzoo.data.storage": ("download_dataset", "prepare_and_save", "save_dataset", "load_dataset",
                               "check_batch_size", "REQUIRED_VARIABLES"),
}
_LAZY_MODULE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = ["DatasetError", "read_cifar_batch", "read_idx_images", "read_idx_labels", "DATASETS", "KNOWN_DATASETS",
           "CifarBatches", "DatasetSpec", "Embedded", "IdxFiles", "register", "spec", *_LAZY_MODULE]


def __getattr__(name):
    if name not in _LAZY_MODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY_MODULE[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
