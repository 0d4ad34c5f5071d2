"""A dataset in weightzoo's prepared-dataset layout (docs/data-format.md), made from its registered spec.

``prepare_dataset(name, settings)`` returns an ``xarray.Dataset`` with ``images (sample, channel, height,
width)``, ``labels``, ``split``, ``mean`` and ``std``.
"""

import json
from pathlib import Path

import numpy as np
import xarray as xr

from weightzoo.data.readers import DatasetError, check_labels
from weightzoo.data.specs import DATASETS, spec
from weightzoo.io.provenance import provenance_attrs

SETTINGS_KEYS = ("data_dir", "download", "test_fraction", "split_seed")
TRAIN, TEST = 0, 1


def prepare_dataset(name: str, settings: dict | None = None) -> xr.Dataset:
    """Read dataset ``name`` and return it in the prepared-dataset layout.

    ``settings`` keys (all optional except ``data_dir`` for file datasets: mnist, fmnist, cifar10):
    ``data_dir`` folder holding the official files, ``download`` (ignored here: the workflow downloads
    into ``data_dir`` beforehand), ``test_fraction`` and ``split_seed`` for the stratified random split of
    embedded datasets (the default test fraction is the spec's: digits 0.25, mnist5k 0.2). File datasets
    keep their official train/test files; their ``split_seed`` attribute is -1.
    """
    settings = dict(settings or {})
    dataset = spec(name)
    unknown = sorted(set(settings) - set(SETTINGS_KEYS))
    if unknown:
        raise DatasetError(
            f"dataset {name!r}: unknown settings key(s) {unknown}; allowed keys are {list(SETTINGS_KEYS)}"
        )

    if dataset.embedded:
        test_fraction = _test_fraction(name, settings, dataset.source.test_fraction)
        split_seed = _split_seed(name, settings)
        images, labels, source = dataset.source.arrays()
        split = stratified_split(labels, test_fraction, split_seed, what=f"dataset {name!r}")
        split_method = f"stratified random split, test_fraction={test_fraction}"
    else:
        (train_x, train_y), (test_x, test_y), source = dataset.source.read(_data_dir(name, settings), dataset)
        images = np.concatenate([train_x, test_x])
        labels = np.concatenate([train_y, test_y])
        split = np.repeat(np.array([TRAIN, TEST], np.uint8), [len(train_y), len(test_y)])
        split_seed = -1
        split_method = "official train and test files"

    if images.ndim == 3:
        images = images[:, None]
    return build_dataset(name, images, labels, split, source=source, split_seed=split_seed,
                         split_method=split_method)


def build_dataset(name, images, labels, split, *, source, split_seed, split_method="") -> xr.Dataset:
    """Assemble the prepared-dataset layout from uint8 ``images`` (N, C, H, W), ``labels`` and ``split``."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    split = np.asarray(split)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DatasetError(
            f"dataset {name!r}: images must be uint8 (sample, channel, height, width), "
            f"got {images.dtype} with shape {images.shape}"
        )
    if not (len(images) == len(labels) == len(split)):
        raise DatasetError(
            f"dataset {name!r}: {len(images)} images, {len(labels)} labels and {len(split)} split flags"
        )
    class_names = list(DATASETS[name].class_names) if name in DATASETS else []
    n_classes = len(class_names) or int(labels.max()) + 1
    check_labels(labels, n_classes, f"dataset {name!r}")
    if not np.isin(split, (TRAIN, TEST)).all():
        raise DatasetError(f"dataset {name!r}: split flags must be 0 (train) or 1 (test)")
    if not (split == TRAIN).any():
        raise DatasetError(f"dataset {name!r}: the train split is empty")
    mean, std = channel_stats(images[split == TRAIN])
    train = images[split == TRAIN]
    constant = [c for c in range(train.shape[1]) if train[:, c].min() == train[:, c].max()]
    if constant:  # normalising would divide by zero: every trial would see NaN inputs and "diverge"
        raise DatasetError(f"dataset {name!r}: channel(s) {constant} of the train images are constant (std 0); "
                           "the images cannot be normalised: check the source files")

    ds = xr.Dataset(
        {
            "images": (("sample", "channel", "height", "width"), images,
                       {"long_name": "image pixels", "units": "1", "comment": "raw pixel values 0-255"}),
            "labels": ("sample", labels.astype(np.uint8),
                       {"long_name": "class index", "units": "1", "class_names": json.dumps(class_names)}),
            "split": ("sample", split.astype(np.uint8),
                      {"long_name": "train/test split", "units": "1",
                       "flag_values": np.array([TRAIN, TEST], np.uint8), "flag_meanings": "train test",
                       "comment": split_method}),
            "mean": ("channel", mean,
                     {"long_name": "per-channel mean of the train images", "units": "pixel value / 255"}),
            "std": ("channel", std,
                    {"long_name": "per-channel standard deviation of the train images",
                     "units": "pixel value / 255"}),
        },
        attrs={
            "dataset": name,
            "source": source,
            "n_classes": np.int32(n_classes),
            "split_seed": np.int32(split_seed),
            "split_method": split_method,
            **provenance_attrs(),
        },
    )
    return ds


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) std of uint8 images (N, C, H, W), in pixel units / 255.

    Computed from a 256-bin histogram per channel: exact, and no float copy of the images.
    """
    values = np.arange(256, dtype=np.float64) / 255
    mean, std = [], []
    for channel in range(images.shape[1]):
        counts = np.bincount(images[:, channel].ravel(), minlength=256).astype(np.float64)
        m = counts @ values / counts.sum()
        var = counts @ (values - m) ** 2 / counts.sum()
        mean.append(m)
        std.append(np.sqrt(var))
    return np.array(mean, np.float32), np.array(std, np.float32)


def stratified_split(labels, test_fraction: float, split_seed: int, what: str = "dataset") -> np.ndarray:
    """uint8 split flags (0 train, 1 test) from a seeded stratified split, samples kept in source order.

    The test split has ``specs.n_test_samples(len(labels), test_fraction)`` samples (scikit-learn's rounding)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    try:
        _, test_index = train_test_split(index, test_size=test_fraction, random_state=split_seed,
                                         stratify=labels)
    except ValueError as err:
        raise DatasetError(f"{what}: cannot split with test_fraction={test_fraction}: {err}") from err
    split = np.full(len(labels), TRAIN, np.uint8)
    split[test_index] = TEST
    return split


def _data_dir(name, settings) -> Path:
    data_dir = settings.get("data_dir")
    if not data_dir:
        raise DatasetError(f"dataset {name!r}: settings 'data_dir' is required (folder with the official files)")
    return Path(data_dir)


def _test_fraction(name, settings, default: float) -> float:
    value = settings.get("test_fraction", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise DatasetError(f"dataset {name!r}: settings 'test_fraction' must be a number in (0, 1), got {value!r}")
    return float(value)


def _split_seed(name, settings) -> int:
    value = settings.get("split_seed", 0)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise DatasetError(f"dataset {name!r}: settings 'split_seed' must be a non-negative integer, got {value!r}")
    return int(value)
