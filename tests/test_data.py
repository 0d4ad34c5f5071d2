"""weightzoo.data: real packaged datasets, official binary formats written here, and their corruptions."""

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from weightzoo.data import (
    KNOWN_DATASETS,
    DatasetError,
    channel_stats,
    download_dataset,
    load_dataset,
    prepare_dataset,
    read_cifar_batch,
    read_idx_images,
    save_dataset,
)

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_NAMES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


# ---------------------------------------------------------------------------------------------------
# writers of the official formats


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_file(path: Path, payload: bytes) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def make_idx(folder: Path, n_train=30, n_test=20, compress=False, seed=0):
    """Write the four MNIST IDX files; return the arrays written, keyed like IDX_NAMES."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for part, n in (("train", n_train), ("test", n_test)):
        arrays[part, "images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[part, "labels"] = (np.arange(n) % 10).astype(np.uint8)
        for kind, magic in (("images", 2051), ("labels", 2049)):
            name = IDX_NAMES[part, kind] + (".gz" if compress else "")
            write_file(folder / name, idx_bytes(arrays[part, kind], magic))
    return arrays


def cifar_batch(n, seed):
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"synthetic batch",
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"img_%d.png" % i for i in range(n)],
    }


def make_cifar(parent: Path, n=8):
    """Write a cifar-10-batches-py folder with five train batches and a test batch of ``n`` images each."""
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batches[name] = cifar_batch(n, seed=i)
        (folder / name).write_bytes(pickle.dumps(batches[name], protocol=2))
    return folder, batches


# ---------------------------------------------------------------------------------------------------
# real datasets


def check_layout(ds, name, n_samples, shape, n_channels=1):
    assert ds.attrs["dataset"] == name
    assert int(ds.attrs["n_classes"]) == 10
    assert ds["images"].dims == ("sample", "channel", "height", "width")
    assert ds["images"].shape == (n_samples, n_channels, *shape)
    for var in ("images", "labels", "split"):
        assert ds[var].dtype == np.uint8, var
    for var in ("mean", "std"):
        assert ds[var].dims == ("channel",) and ds[var].dtype == np.float32
    assert list(ds["split"].attrs["flag_values"]) == [0, 1]
    assert ds["split"].attrs["flag_meanings"] == "train test"
    assert set(np.unique(ds["labels"].values)) == set(range(10))
    for var in ds.data_vars:
        assert "long_name" in ds[var].attrs and "units" in ds[var].attrs, var
    for attr in ("source", "split_seed", "created", "weightzoo_version"):
        assert attr in ds.attrs, attr
    train = ds["images"].values[ds["split"].values == 0] / 255
    np.testing.assert_allclose(ds["mean"].values, train.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(ds["std"].values, train.std(axis=(0, 2, 3)), rtol=1e-5)


def assert_stratified(ds, test_fraction):
    labels, split = ds["labels"].values, ds["split"].values
    assert abs(split.mean() - test_fraction) < 0.01
    for label in range(10):
        in_class = split[labels == label]
        assert abs(in_class.mean() - test_fraction) < 0.03, label


def test_digits_real():
    ds = prepare_dataset("digits", {})
    check_layout(ds, "digits", 1797, (8, 8))
    assert_stratified(ds, 0.25)
    assert ds["images"].values.max() == 255  # 16 scaled to 255
    assert 0.25 < float(ds["mean"][0]) < 0.35 and 0.3 < float(ds["std"][0]) < 0.45
    assert int(ds.attrs["split_seed"]) == 0


def test_digits_split_is_seeded():
    a = prepare_dataset("digits", {"split_seed": 1, "test_fraction": 0.5})["split"].values
    b = prepare_dataset("digits", {"split_seed": 1, "test_fraction": 0.5})["split"].values
    c = prepare_dataset("digits", {"split_seed": 2, "test_fraction": 0.5})["split"].values
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert abs(a.mean() - 0.5) < 0.01


def test_mnist5k_real():
    ds = prepare_dataset("mnist5k", {"split_seed": 3})
    check_layout(ds, "mnist5k", 5000, (28, 28))
    assert_stratified(ds, 0.2)
    assert np.bincount(ds["labels"].values).tolist() == [500] * 10
    assert 0.1 < float(ds["mean"][0]) < 0.16 and 0.28 < float(ds["std"][0]) < 0.34
    assert int(ds.attrs["split_seed"]) == 3


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason=f"Fashion-MNIST not installed at {FASHION_MNIST}")
def test_fmnist_real():
    ds = prepare_dataset("fmnist", {"data_dir": str(FASHION_MNIST)})
    assert ds["images"].shape == (70000, 1, 28, 28)
    split = ds["split"].values
    assert (split == 0).sum() == 60000 and (split == 1).sum() == 10000
    assert (split[:60000] == 0).all()
    assert np.bincount(ds["labels"].values[split == 0]).tolist() == [6000] * 10
    # published Fashion-MNIST train statistics
    assert float(ds["mean"][0]) == pytest.approx(0.2860, abs=1e-3)
    assert float(ds["std"][0]) == pytest.approx(0.3530, abs=1e-3)
    assert int(ds.attrs["split_seed"]) == -1


# ---------------------------------------------------------------------------------------------------
# IDX format


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_idx_files_load(tmp_path, compress):
    arrays = make_idx(tmp_path, compress=compress)
    ds = prepare_dataset("mnist", {"data_dir": str(tmp_path)})
    split = ds["split"].values
    assert split.tolist() == [0] * 30 + [1] * 20
    np.testing.assert_array_equal(ds["images"].values[split == 0, 0], arrays["train", "images"])
    np.testing.assert_array_equal(ds["images"].values[split == 1, 0], arrays["test", "images"])
    np.testing.assert_array_equal(ds["labels"].values[split == 1], arrays["test", "labels"])
    assert str(tmp_path.resolve()) in ds.attrs["source"]


def test_idx_torchvision_layout(tmp_path):
    arrays = make_idx(tmp_path / "FashionMNIST" / "raw", compress=True)
    ds = prepare_dataset("fmnist", {"data_dir": str(tmp_path), "download": True})
    np.testing.assert_array_equal(ds["labels"].values[:30], arrays["train", "labels"])


def corrupt_idx(folder, target, payload_of):
    """Rewrite file ``target`` (key of IDX_NAMES) with ``payload_of(original bytes)``; return its path."""
    path = folder / IDX_NAMES[target]
    path.write_bytes(payload_of(path.read_bytes()))
    return path


@pytest.mark.parametrize(
    "target, payload_of, problem",
    [
        (("train", "images"), lambda b: (2049).to_bytes(4, "big") + b[4:], "wrong magic number 2049"),
        (("test", "labels"), lambda b: (2051).to_bytes(4, "big") + b[4:], "wrong magic number 2051"),
        (("train", "images"), lambda b: b[:-100], "truncated"),
        (("test", "labels"), lambda b: b[:-1], "truncated"),
        (("train", "labels"), lambda b: b[:5], "truncated"),
        (("train", "labels"), lambda b: b + b"\x00", "trailing bytes"),
        (("test", "labels"), lambda b: b[:-1] + b"\x0a", "labels out of range"),
        (("train", "images"), lambda b: idx_bytes(np.zeros((29, 28, 28), np.uint8), 2051), "count mismatch"),
        (("train", "images"), lambda b: idx_bytes(np.zeros((30, 27, 28), np.uint8), 2051), "28x28"),
    ],
    ids=["magic-images", "magic-labels", "truncated-images", "truncated-labels", "truncated-header",
         "trailing", "label-range", "count-mismatch", "image-size"],
)
def test_idx_corruption_raises(tmp_path, target, payload_of, problem):
    make_idx(tmp_path)
    path = corrupt_idx(tmp_path, target, payload_of)
    with pytest.raises(DatasetError, match=problem) as err:
        prepare_dataset("mnist", {"data_dir": str(tmp_path)})
    assert path.name in str(err.value)


def test_idx_truncated_gzip_raises(tmp_path):
    make_idx(tmp_path, compress=True)
    path = tmp_path / (IDX_NAMES["test", "images"] + ".gz")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match="truncated or corrupt") as err:
        prepare_dataset("mnist", {"data_dir": str(tmp_path)})
    assert path.name in str(err.value)


def test_idx_missing_file_and_dir(tmp_path):
    make_idx(tmp_path)
    (tmp_path / IDX_NAMES["test", "labels"]).unlink()
    with pytest.raises(DatasetError, match="missing file .*t10k-labels-idx1-ubyte"):
        prepare_dataset("mnist", {"data_dir": str(tmp_path)})
    with pytest.raises(DatasetError, match="nowhere.*does not exist"):
        prepare_dataset("mnist", {"data_dir": str(tmp_path / "nowhere")})
    with pytest.raises(DatasetError, match="'data_dir' is required"):
        prepare_dataset("fmnist", {})
    with pytest.raises(DatasetError, match="file does not exist"):
        read_idx_images(tmp_path / "absent-idx3-ubyte")


# ---------------------------------------------------------------------------------------------------
# CIFAR-10 python batches


@pytest.mark.parametrize("point_at", ["parent", "folder"])
def test_cifar_batches_load(tmp_path, point_at):
    folder, batches = make_cifar(tmp_path)
    data_dir = tmp_path if point_at == "parent" else folder
    ds = prepare_dataset("cifar10", {"data_dir": str(data_dir)})
    check_shape = ds["images"].shape
    assert check_shape == (48, 3, 32, 32)
    assert ds["split"].values.tolist() == [0] * 40 + [1] * 8
    first = batches["data_batch_1"][b"data"][0]
    # official layout: 1024 red, then 1024 green, then 1024 blue values, rows of 32
    np.testing.assert_array_equal(ds["images"].values[0, 1, 0], first[1024:1056])
    np.testing.assert_array_equal(ds["labels"].values[-8:], batches["test_batch"][b"labels"])
    assert ds["mean"].shape == (3,)


def rewrite_batch(folder, name, change):
    path = folder / name
    batch = pickle.loads(path.read_bytes())
    change(batch)
    path.write_bytes(pickle.dumps(batch, protocol=2))
    return path


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda b: b.__setitem__(b"data", b[b"data"][:, :3000]), r"shape \(N, 3072\)"),
        (lambda b: b.__setitem__(b"data", b[b"data"].astype(np.float32)), "must be uint8"),
        (lambda b: b.__setitem__(b"labels", b[b"labels"][:-1]), "count mismatch"),
        (lambda b: b[b"labels"].__setitem__(0, 10), "labels out of range"),
        (lambda b: b.pop(b"data"), "expected a dict"),
    ],
    ids=["shape", "dtype", "count-mismatch", "label-range", "missing-key"],
)
def test_cifar_corruption_raises(tmp_path, change, problem):
    folder, _ = make_cifar(tmp_path)
    path = rewrite_batch(folder, "data_batch_3", change)
    with pytest.raises(DatasetError, match=problem) as err:
        prepare_dataset("cifar10", {"data_dir": str(tmp_path)})
    assert path.name in str(err.value)


def test_cifar_truncated_missing_and_unsafe(tmp_path):
    folder, _ = make_cifar(tmp_path)
    truncated = folder / "test_batch"
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(DatasetError, match="test_batch: cannot be unpickled"):
        prepare_dataset("cifar10", {"data_dir": str(tmp_path)})

    (folder / "data_batch_5").unlink()
    with pytest.raises(DatasetError, match="missing file .*data_batch_5"):
        prepare_dataset("cifar10", {"data_dir": str(tmp_path)})

    with pytest.raises(DatasetError, match="does not exist"):
        prepare_dataset("cifar10", {"data_dir": str(tmp_path / "nowhere")})

    unsafe = tmp_path / "unsafe_batch"
    unsafe.write_bytes(pickle.dumps({b"data": Path("x"), b"labels": []}))
    with pytest.raises(DatasetError, match="unsafe_batch: cannot be unpickled.*refusing"):
        read_cifar_batch(unsafe, (3, 32, 32), 10)


# ---------------------------------------------------------------------------------------------------
# settings, statistics, storage


def test_bad_names_and_settings():
    with pytest.raises(DatasetError, match="unknown dataset 'svhn'.*digits.*cifar10"):
        prepare_dataset("svhn", {})
    with pytest.raises(DatasetError, match="unknown settings key.*test_fracton"):
        prepare_dataset("digits", {"test_fracton": 0.3})
    with pytest.raises(DatasetError, match="'test_fraction' must be a number in \\(0, 1\\)"):
        prepare_dataset("digits", {"test_fraction": 1.5})
    with pytest.raises(DatasetError, match="'split_seed' must be a non-negative integer"):
        prepare_dataset("digits", {"split_seed": "zero"})
    with pytest.raises(DatasetError, match="needs no download"):
        download_dataset("digits", "/nonexistent")
    assert set(KNOWN_DATASETS) == {"digits", "mnist5k", "mnist", "fmnist", "cifar10"}


def test_channel_stats_exact():
    images = np.zeros((2, 2, 1, 2), np.uint8)
    images[:, 0] = [[[0, 255]], [[255, 255]]]
    images[:, 1] = 51
    mean, std = channel_stats(images)
    np.testing.assert_allclose(mean, [0.75, 0.2], rtol=1e-6)
    np.testing.assert_allclose(std, [np.sqrt(0.1875), 0.0], atol=1e-6)


def test_save_load_round_trip(tmp_path):
    make_idx(tmp_path / "raw", compress=True)
    ds = prepare_dataset("mnist", {"data_dir": str(tmp_path / "raw")})
    path = tmp_path / "out" / "mnist.nc"
    save_dataset(ds, path)
    assert [p.name for p in path.parent.iterdir()] == ["mnist.nc"]  # no temporary left behind
    back = load_dataset(path)
    for var in ("images", "labels", "split", "mean", "std"):
        np.testing.assert_array_equal(back[var].values, ds[var].values)
        assert back[var].dtype == ds[var].dtype, var
        assert back[var].dims == ds[var].dims, var
    assert back["split"].attrs["flag_meanings"] == "train test"
    assert back.attrs["dataset"] == "mnist" and int(back.attrs["n_classes"]) == 10
    assert back["images"].encoding.get("zlib") is True


def test_load_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="missing.nc: prepared dataset file does not exist"):
        load_dataset(tmp_path / "missing.nc")
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"not a netcdf file")
    with pytest.raises(DatasetError, match="garbage.nc: cannot be read"):
        load_dataset(garbage)
    make_idx(tmp_path / "raw")
    incomplete = tmp_path / "incomplete.nc"
    save_dataset(prepare_dataset("mnist", {"data_dir": str(tmp_path / "raw")}).drop_vars("std"), incomplete)
    with pytest.raises(DatasetError, match="incomplete.nc: required variable 'std' is missing"):
        load_dataset(incomplete)
