"""Readers of the official file formats: IDX (MNIST, Fashion-MNIST) and CIFAR-10's python batches.

They know formats, not datasets: file names, folders, image shape and class count come from the caller
(a ``DatasetSpec``'s source). Every problem raises ``DatasetError`` naming the offending file.
"""

import gzip
import pickle
import zlib
from pathlib import Path

import numpy as np

from weightzoo.io.atomic import ReportedError

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049


class DatasetError(ReportedError, ValueError):
    """A dataset file or setting is missing, malformed or inconsistent."""


def check_labels(labels, n_classes, where):
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DatasetError(
            f"{where}: labels out of range 0-{n_classes - 1} (found {labels.min()}..{labels.max()})"
        )


def check_data_dir(data_dir: Path, name: str) -> None:
    if not data_dir.is_dir():
        raise DatasetError(f"dataset {name!r}: data directory {data_dir} does not exist (settings 'data_dir')")


# ---------------------------------------------------------------------------------------------------
# IDX files


def read_idx_images(path) -> np.ndarray:
    """uint8 array (N, rows, cols) from an IDX3 image file (optionally gzip-compressed)."""
    return _read_idx(path, IDX_IMAGES_MAGIC, ndim=3)


def read_idx_labels(path) -> np.ndarray:
    """uint8 array (N,) from an IDX1 label file (optionally gzip-compressed)."""
    return _read_idx(path, IDX_LABELS_MAGIC, ndim=1)


def read_idx_dataset(data_dir, name: str, *, files: dict, raw_folder: str, image_shape: tuple, n_classes: int):
    """((train_images, train_labels), (test_images, test_labels), source) from the four IDX files.

    ``files`` maps "train" and "test" to (images file, labels file). ``data_dir`` holds the files directly
    or in torchvision's ``<data_dir>/<raw_folder>/raw``.
    """
    folder = _idx_folder(Path(data_dir), name, raw_folder, files["train"][0])
    parts = []
    for part in ("train", "test"):
        images_name, labels_name = files[part]
        images_path = _find_file(folder, images_name, name)
        labels_path = _find_file(folder, labels_name, name)
        images = read_idx_images(images_path)
        labels = read_idx_labels(labels_path)
        if len(images) != len(labels):
            raise DatasetError(
                f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels "
                f"(count mismatch)"
            )
        if images.shape[1:] != tuple(image_shape):
            raise DatasetError(f"{images_path}: images are {images.shape[1:]}, expected "
                               f"{'x'.join(map(str, image_shape))} for {name}")
        check_labels(labels, n_classes, str(labels_path))
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


def _idx_folder(data_dir: Path, name: str, raw_folder: str, first: str) -> Path:
    check_data_dir(data_dir, name)
    for folder in (data_dir, data_dir / raw_folder / "raw"):
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
# CIFAR python batches


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


def read_cifar_batch(path, shape: tuple[int, int, int], n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, *shape), labels uint8 (N,)) from one CIFAR python-batch pickle."""
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
    n_values = int(np.prod(shape))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != n_values:
        found_shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise DatasetError(f"{path}: b'data' must be uint8 of shape (N, {n_values}), got {dtype} {found_shape}")
    labels = np.asarray(batch[b"labels"])
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: b'labels' must be a list of integers, got {labels.dtype} {labels.shape}")
    if len(labels) != len(data):
        raise DatasetError(f"{path}: {len(data)} images but {len(labels)} labels (count mismatch)")
    check_labels(labels, n_classes, str(path))
    return data.reshape(-1, *shape), labels.astype(np.uint8)


def read_cifar_batches(data_dir, name: str, *, folder: str, train: tuple, test: str, shape: tuple, n_classes: int):
    """((train_images, train_labels), (test_images, test_labels), source) from a CIFAR batches folder.

    ``data_dir`` is that folder (``folder``, e.g. ``cifar-10-batches-py``) itself or its parent.
    """
    data_dir = Path(data_dir)
    check_data_dir(data_dir, name)
    found = data_dir / folder if (data_dir / folder).is_dir() else data_dir
    for batch in (*train, test):
        if not (found / batch).is_file():
            raise DatasetError(f"dataset {name!r}: missing file {found / batch}")
    parts = [read_cifar_batch(found / batch, shape, n_classes) for batch in train]
    train_x = np.concatenate([x for x, _ in parts])
    train_y = np.concatenate([y for _, y in parts])
    test_xy = read_cifar_batch(found / test, shape, n_classes)
    return (train_x, train_y), test_xy, f"CIFAR-10 python batches in {found.resolve()}"
