import hashlib
import json
import re
import subprocess
import tracemalloc

import numpy as np
import pytest
import torch
import xarray as xr

from helpers import tiny_dataset
from weightzoo.data import save_dataset
from weightzoo.jobs.train import train_chunk
from weightzoo.models import model_kwargs
from weightzoo.io.atomic import CHECKSUM_ATTR, checksum, netcdf_problem
from weightzoo.io.provenance import code_revision, provenance_attrs
from weightzoo.io.store import gather, load_network, normalisation, open_zoo, result_to_dataset, summary_table, write_zoo
from weightzoo.train import Hyperparameters, TensorData, train_trials

HP = Hyperparameters(epochs=2, batch_size=50, snapshots=(0, 1, -1))


@pytest.fixture(scope="module")
def dataset():
    return tiny_dataset()


def chunk(dataset, model, arch, trials):
    data = TensorData.from_dataset(dataset)
    kwargs = model_kwargs(model, arch, data.input_shape, data.n_classes)
    result = train_trials(model, kwargs, data, trials, HP)
    return result_to_dataset(result, model=model, dataset="tiny", arch="a", model_kwargs=kwargs,
                             hyperparameters=vars(HP), input_shape=data.input_shape, n_classes=10,
                             dataset_source="synthetic", config={"trials": 4})


@pytest.fixture(scope="module")
def chunks(tmp_path_factory, dataset):
    folder = tmp_path_factory.mktemp("chunks")
    paths = []
    for i, trials in enumerate(([2, 3], [0, 1])):
        paths.append(folder / f"chunk{i}.nc")
        write_zoo(chunk(dataset, "cnn", {"channels": 2}, trials), paths[-1])
    return paths


def test_chunk_is_self_describing(chunks):
    with open_zoo(chunks[0]) as ds:
        assert ds["conv1_weight"].dims == ("trial", "snapshot", "conv1_out", "conv1_in", "conv1_kh", "conv1_kw")
        assert ds["fc_bias"].dims == ("trial", "snapshot", "fc_out")
        assert ds["snapshot"].values.tolist() == [0, 1, 2] and ds["epoch"].values.tolist() == [1, 2]
        assert ds["seed"].values.tolist() == [2, 3]
        assert ds["conv1_weight"].attrs["parameter"] == "conv1.weight"
        assert ds["train_loss"].attrs["units"] == "nat"
        assert json.loads(ds.attrs["versions"])["torch"] == torch.__version__
        assert json.loads(ds.attrs["hyperparameters"])["batch_size"] == 50
        enc = ds["conv1_weight"].encoding
        assert enc["zlib"] and enc["chunksizes"][0] == 1


def test_gather_orders_trials_and_keeps_everything(chunks, tmp_path):
    out = tmp_path / "zoo.nc"
    gather(chunks, out)
    with open_zoo(out) as zoo:
        assert zoo["trial"].values.tolist() == [0, 1, 2, 3]
        assert zoo["seed"].values.tolist() == [0, 1, 2, 3]
        assert "seed" in zoo.coords
        with open_zoo(chunks[0]) as first:
            xr.testing.assert_equal(zoo["conv1_weight"].sel(trial=[2, 3]), first["conv1_weight"])
        assert zoo.attrs["model"] == "cnn" and "gathered_from" in zoo.attrs
    assert not list(tmp_path.glob(".*part"))


def test_gather_in_blocks_equals_the_whole_concatenation(chunks, tmp_path):
    """Issue 22: written block by block (here one trial per block), the zoo holds exactly the concatenated chunks,
    and each checksum is the CRC-32 of the whole concatenated array, as when it was computed in one piece."""
    out = tmp_path / "zoo.nc"
    gather(chunks, out, block_bytes=1)
    parts = [xr.load_dataset(p) for p in reversed(chunks)]  # trials 0, 1 then 2, 3
    with open_zoo(out) as zoo:
        for name in parts[0].data_vars:
            whole = xr.concat([p[name] for p in parts], dim="trial")
            xr.testing.assert_equal(zoo[name].load(), whole)
            assert int(zoo[name].attrs[CHECKSUM_ATTR]) == checksum(whole.values)
            assert zoo[name].encoding["chunksizes"] == parts[0][name].encoding["chunksizes"]
            assert zoo[name].encoding["fletcher32"] and zoo[name].encoding["zlib"]
    assert netcdf_problem(out) == ""


def big_chunk(template: xr.Dataset, trials, shape) -> xr.Dataset:
    """``template`` (a chunk) with trials renumbered and a large extra weight of ``shape`` per trial and snapshot."""
    ds = template.isel(trial=[0] * len(trials)).assign_coords(trial=trials, seed=("trial", trials))
    values = np.random.default_rng(trials[0]).standard_normal((len(trials), ds.sizes["snapshot"], *shape))
    ds["big_weight"] = (("trial", "snapshot", "big_out", "big_in"), values.astype(np.float32), {"units": "1"})
    return ds


def test_gather_memory_is_one_block_not_one_variable_of_all_trials(chunks, tmp_path):
    """Issue 22: the old gather concatenated one variable of all chunks in memory (here 4 chunks x 4 trials x
    3 snapshots x 256 x 512 float32 = 25.2 MB for big_weight); now the peak is about one block (1 MiB asked, at
    least one trial: 1.6 MB) whatever the number of trials."""
    template = xr.load_dataset(chunks[0])
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"big{i}.nc")
        write_zoo(big_chunk(template, list(range(4 * i, 4 * i + 4)), (256, 512)), paths[-1])
    one_variable = 16 * 3 * 256 * 512 * 4
    provenance_attrs()  # its first call imports torch & co. (~200 MB traced): not gather's memory
    tracemalloc.start()
    try:
        gather(paths, tmp_path / "zoo.nc", block_bytes=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < one_variable / 4, f"gather peaked at {peak / 1e6:.1f} MB for a {one_variable / 1e6:.1f} MB variable"
    with open_zoo(tmp_path / "zoo.nc") as zoo:
        assert zoo.sizes["trial"] == 16
        xr.testing.assert_equal(zoo["big_weight"].isel(trial=slice(4, 8)).load(),
                                xr.load_dataset(paths[1])["big_weight"])


def test_gather_refuses_duplicate_trials(chunks, tmp_path):
    with pytest.raises(ValueError, match="more than one chunk"):
        gather([chunks[0], chunks[0]], tmp_path / "zoo.nc")
    assert not (tmp_path / "zoo.nc").exists()


def test_open_zoo_names_the_bad_file(tmp_path):
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"not netcdf")
    with pytest.raises(ValueError, match="bad.nc"):
        open_zoo(bad)


@pytest.mark.parametrize("model,arch", [("dnn", {"hidden": 8}), ("vit", {
    "patch_size": 4, "embed_dim": 16, "depth": 1, "heads": 2, "mlp_ratio": 2.0, "pool": "mean"})])
def test_load_network_reproduces_recorded_accuracy(dataset, tmp_path, model, arch):
    path = tmp_path / "zoo.nc"
    write_zoo(chunk(dataset, model, arch, [0, 1]), path)
    data = TensorData.from_dataset(dataset)
    x = data.normalise(data.test_x)
    with open_zoo(path) as zoo:
        recorded = zoo["test_accuracy"].isel(epoch=-1).values
    for trial in (0, 1):
        net = load_network(path, trial)
        with torch.no_grad():
            accuracy = (net(x).argmax(1) == data.test_y).float().mean().item()
        assert accuracy == pytest.approx(recorded[trial], abs=1e-6)
    initial = load_network(path, 0, snapshot=0)
    assert not torch.equal(initial.state_dict()[next(iter(initial.state_dict()))],
                           net.state_dict()[next(iter(net.state_dict()))])


def test_summary_table(chunks, tmp_path):
    out = tmp_path / "zoo.nc"
    gather(chunks, out)
    table = summary_table([out])
    assert len(table) == 4 and table["trial"].tolist() == [0, 1, 2, 3]
    assert {"final_test_accuracy", "diverged", "n_parameters", "experiment"} <= set(table.columns)
    assert table["n_parameters"].iloc[0] == 2 * 9 + 2 + 10 * 2 * 36 + 10
    assert np.all((table["final_test_accuracy"] >= 0) & (table["final_test_accuracy"] <= 1))


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory, dataset):
    path = tmp_path_factory.mktemp("data") / "tiny.nc"
    save_dataset(dataset, path)
    return path


def train_job(dataset_file, out, trials, hyperparameters=None, **training):
    train_chunk(dataset_file, out, model="dnn", dataset="tiny", arch="h8", arch_params={"hidden": 8}, trials=trials,
                training={"epochs": 2, "batch_size": 50, "snapshots": [0, 1, -1], **training},
                hyperparameters=hyperparameters)


def test_sweep_is_in_trial_coordinates_gathered_zoo_and_summary(dataset_file, tmp_path):
    sweep = {"lr": [0.001, 0.01], "init_std": 0.1, "batch_size": [25, 50], "train_fraction": 0.5}
    paths = [tmp_path / "chunk0.nc", tmp_path / "chunk1.nc"]
    train_job(dataset_file, paths[0], [0, 1, 2], sweep)
    train_job(dataset_file, paths[1], [3, 4], sweep)
    expected = {"lr": [0.001, 0.001, 0.01, 0.01, 0.001], "batch_size": [25, 50, 25, 50, 25],
                "init_std": [0.1] * 5, "train_fraction": [0.5] * 5}
    with open_zoo(paths[1]) as ds:
        assert ds["lr"].values.tolist() == expected["lr"][3:] and ds["lr"].dims == ("trial",)
        assert ds["batch_size"].attrs["long_name"] and ds["train_fraction"].attrs["units"] == "1"
    zoo = tmp_path / "zoo.nc"
    gather(paths, zoo)
    with open_zoo(zoo) as ds:
        for key, values in expected.items():
            assert key in ds.coords and ds[key].values.tolist() == values, key
        attribute = json.loads(ds.attrs["hyperparameters"])
    assert attribute["sweep"] == {"lr": [0.001, 0.01], "batch_size": [25, 50]}
    assert "lr" not in attribute and attribute["init_std"] == 0.1 and attribute["train_fraction"] == 0.5
    table = summary_table([zoo])
    for key, values in expected.items():
        assert table[key].tolist() == values, key
    assert list(table.columns[:11]) == ["experiment", "model", "dataset", "arch", "model_kwargs", "trial", "seed",
                                        "lr", "init_std", "batch_size", "train_fraction"]


def test_zoo_records_dataset_code_and_resolved_snapshots(dataset, dataset_file, tmp_path):
    paths = [tmp_path / "chunk0.nc", tmp_path / "chunk1.nc"]
    train_job(dataset_file, paths[0], [0, 1])
    train_job(dataset_file, paths[1], [2])
    gather(paths, tmp_path / "zoo.nc")
    for path in (paths[0], tmp_path / "zoo.nc"):
        with open_zoo(path) as ds:
            attrs = dict(ds.attrs)
        assert attrs["dataset_sha256"] == hashlib.sha256(dataset_file.read_bytes()).hexdigest()
        assert json.loads(attrs["dataset_mean"]) == dataset["mean"].values.astype(float).tolist()
        assert json.loads(attrs["dataset_std"]) == dataset["std"].values.astype(float).tolist()
        assert re.fullmatch(r"([0-9a-f]{40}(-dirty)?)?", attrs["code_revision"])
        assert attrs["code_revision"] == code_revision()  # this test runs from a checkout, or from none
        hyperparameters = json.loads(attrs["hyperparameters"])
        assert hyperparameters["snapshots"] == [0, 1, 2] and hyperparameters["snapshots_requested"] == [0, 1, -1]


def test_stored_network_evaluates_with_the_zoo_normalisation_alone(dataset, dataset_file, tmp_path):
    path = tmp_path / "zoo.nc"
    train_job(dataset_file, path, [0, 1], epochs=3)
    mean, std = normalisation(path)
    assert mean.shape == std.shape == (1,)
    test = dataset["split"].values == 1
    pixels = torch.from_numpy(dataset["images"].values[test]).float()  # raw 0-255, no dataset mean/std used
    x = (pixels / 255 - torch.from_numpy(mean).view(-1, 1, 1)) / torch.from_numpy(std).view(-1, 1, 1)
    labels = torch.from_numpy(dataset["labels"].values[test].astype(np.int64))
    with open_zoo(path) as zoo:
        recorded = zoo["test_accuracy"].isel(epoch=-1).values
    for trial in (0, 1):
        with torch.no_grad():
            accuracy = (load_network(path, trial)(x).argmax(1) == labels).float().mean().item()
        assert accuracy == pytest.approx(recorded[trial], abs=1e-6)


def test_normalisation_of_an_old_zoo_names_the_file(chunks):
    with pytest.raises(ValueError, match=f"{chunks[0].name}.*dataset_mean"):
        normalisation(chunks[0])


def test_code_revision_of_a_checkout_is_head_and_dirty_when_changed(tmp_path, monkeypatch):
    assert code_revision(tmp_path) == ""  # not a checkout

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (tmp_path / "untracked.nc").write_text("results do not make the code dirty")
    assert code_revision(tmp_path) == head
    (tmp_path / "a.py").write_text("x = 2\n")
    assert code_revision(tmp_path) == head + "-dirty"
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))  # no git at all
    assert code_revision(tmp_path) == ""


def test_curve_attributes_cover_exactly_the_trainers_curves():
    from weightzoo import train
    from weightzoo.io import store

    assert set(store.CURVES) == set(train.CURVES)
