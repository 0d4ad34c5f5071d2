"""The fault suite: bad inputs and faults, each with the exact outcome it must get (docs/reliability.md).

Every test here names its case; docs/reliability.md lists them with where each is caught and what the user
sees. Nothing here may end silently wrong: a fault either stops with a message naming the key or file and
what to do, or is handled and recorded (a diverged trial, a figure that says why it is empty).
"""

import errno
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from helpers import tiny_dataset
from zoo_factory import make_zoo

from weightzoo import train as train_module
from weightzoo.analysis.projection import pca_scores, project
from weightzoo.models import model_kwargs
from weightzoo.train import Hyperparameters, TensorData, train_trials


# ------------------------------------------------------------------------------------------ divergence


@pytest.fixture(scope="module")
def digits():
    from weightzoo.data import prepare_dataset

    return TensorData.from_dataset(prepare_dataset("digits"))


def _dnn(data, hidden=2):
    return model_kwargs("dnn", {"hidden": hidden}, data.input_shape, data.n_classes)


def test_inf_split_loss_with_finite_batches_is_divergence(digits):
    """Issue 9 reproduction: digits, DNN h2, init_std 1e12. Trial 2's batch losses stay finite (~1e35) but
    its loss over the train split overflows to inf; it used to be diverged=False and group 'high'."""
    hp = Hyperparameters(epochs=2, batch_size=100, init_std=1.0e12, snapshots=(0, 1, -1))
    result = train_trials("dnn", _dnn(digits), digits, [0, 1, 2, 3], hp)
    curves = np.stack([result.train_loss, result.test_loss, result.train_accuracy, result.test_accuracy])
    nonfinite = ~np.isfinite(curves).all(axis=0)  # (trial, epoch)
    for t in range(4):
        if nonfinite[t].any():
            first = int(np.argmax(nonfinite[t])) + 1
            assert result.diverged[t] and 1 <= result.diverged_epoch[t] <= first, t
    assert result.diverged[2] and result.diverged_epoch[2] == 1
    # a finite but absurd loss (trial 0: 1.5e35) is not divergence: only non-finite values are
    assert np.isfinite(result.train_loss[0]).all() and not result.diverged[0]


def test_nonfinite_accuracy_in_evaluation_flags_and_freezes(monkeypatch):
    """A NaN accuracy from the per-epoch evaluation (batch losses all finite) flags that trial in that epoch,
    and from then on its weights do not move while the other trial trains on."""
    data = TensorData.from_dataset(tiny_dataset())
    real = train_module._evaluate
    calls = {"n": 0}

    def evaluate(logits_for, data, split):
        loss, accuracy = real(logits_for, data, split)
        calls["n"] += 1
        if calls["n"] == 3:  # epoch 2, train split
            accuracy = accuracy.copy()
            accuracy[1] = np.nan
        return loss, accuracy

    monkeypatch.setattr(train_module, "_evaluate", evaluate)
    hp = Hyperparameters(epochs=4, batch_size=50, snapshots=(0, 2, 3, 4))
    result = train_trials("dnn", _dnn(data, 8), data, [0, 1], hp)
    assert result.diverged.tolist() == [False, True]
    assert result.diverged_epoch.tolist() == [0, 2]
    w = result.weights["fc1.weight"]
    assert np.array_equal(w[1, 1], w[1, 2]) and np.array_equal(w[1, 1], w[1, 3])  # frozen after epoch 2
    assert not np.array_equal(w[0, 1], w[0, 3])  # the other trial kept training


def test_nan_batch_loss_flags_with_epoch():
    """A NaN in the training batch (per-batch check, kept): diverged in epoch 1, the clean trial not."""
    data = TensorData.from_dataset(tiny_dataset())
    hp = Hyperparameters(epochs=2, batch_size=50, lr=1.0e30)  # an absurd step size blows up the weights
    result = train_trials("dnn", _dnn(data, 8), data, [0, 1], hp)
    assert result.diverged.all() and (result.diverged_epoch == 1).all()



@pytest.mark.parametrize("method", ["delta", "kmeans"])
def test_no_high_or_mid_group_for_trials_just_above_chance(method):
    """Issue 14, item 6: CNN trials with init_std 1e12 (loss ~1e25) score 13-14 % on 10 classes, just above
    chance + margin (12 %): the relative methods called the best of them `high`. A mid or high trial now needs
    chance + floor x (1 - chance) (32.5 % here); below it a converged trial is `low`."""
    from weightzoo.analysis.groups import assign_groups, group_floor

    near_chance = [0.10, 0.11, 0.13, 0.135, 0.14]
    labels = assign_groups(near_chance, n_classes=10, method=method)
    assert labels.tolist() == ["non", "non", "low", "low", "low"]
    assert group_floor(0.1) == pytest.approx(0.325)
    # a zoo that also has trained trials keeps its groups above the floor
    assert assign_groups([0.13, 0.14, 0.60, 0.62, 0.95, 0.96], n_classes=10, method=method).tolist() == [
        "low", "low", "mid", "mid", "high", "high"]
    # floor 0: the zoo's own best trials are `high` again, as before
    assert "high" in assign_groups(near_chance, n_classes=10, method=method, floor=0.0)


# ------------------------------------------------------------------------------------------ projection


def _blown_up(zoo, scale, trials=None):
    zoo = zoo.copy(deep=True)
    for name in ("fc1_weight", "fc2_weight", "fc3_weight"):
        values = zoo[name].values
        values[trials if trials is not None else slice(None)] *= np.float32(scale)
    return zoo


@pytest.mark.parametrize("features", ["raw", "canonical", "invariant"])
def test_projection_of_huge_weights(features):
    """init_std 1e18: a float32 Gram matrix overflowed and eigh raised LinAlgError. Now every feature set
    projects, and the layout does not depend on the scale of the weights."""
    zoo = make_zoo(n_trials=12, effect=2.0)
    small = project(zoo, features=features, max_iter=250)
    huge = project(_blown_up(zoo, 1.0e20), features=features, max_iter=250)
    assert huge.attrs["message"] == "" and np.isfinite(huge["x"].values).all()
    assert np.ptp(huge["x"].values) > 0 and np.isfinite(small["x"].values).all()


def test_pca_scores_do_not_overflow():
    rng = np.random.default_rng(0)
    block = rng.normal(size=(6, 5000)).astype(np.float32)
    expected, _, _ = pca_scores([block.astype(np.float64)], 3)
    scores, finite, _ = pca_scores([block * np.float32(1e18)], 3)
    assert finite.all() and np.isfinite(scores).all()
    assert np.allclose(np.abs(scores / 1e18), np.abs(expected), rtol=1e-3, atol=1e-3)


def test_projection_all_diverged_draws_message():
    zoo = make_zoo(n_trials=6)
    for name in ("fc1_weight", "fc2_weight", "fc3_weight"):
        zoo[name].values[:, -1] = np.nan
    proj = project(zoo, features="raw")
    assert "at least 4 trials with finite weights, have 0" in proj.attrs["message"]
    assert np.isnan(proj["x"].values).all()


# ------------------------------------------------------------------------------------------ config

import copy  # noqa: E402

import yaml  # noqa: E402

from weightzoo.config import ConfigError  # noqa: E402
from weightzoo.config.schema import check_config, coerce_numbers, yaml_syntax_error  # noqa: E402
from weightzoo.config.schema import main as check_config_main  # noqa: E402

SCHEMA = yaml.safe_load(open("workflow/schemas/config.schema.yaml"))
BASE = """\
datasets:
  digits: {}
experiments:
  - model: dnn
    datasets: [digits]
    arch: {hidden: [2, 8]}
    trials: 4
training:
  epochs: 3
"""


def write_config(tmp_path, text, name="my.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def checked_file(tmp_path, text):
    path = write_config(tmp_path, text)
    config = yaml.safe_load(path.read_text())
    return config, check_config(config, [str(path)]), path


def config_error(tmp_path, text) -> str:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        check_config(yaml.safe_load(path.read_text()), [str(path)])
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message  # one line, not a schema dump
    return message.replace(str(path), "my.yaml")


def test_scientific_notation_is_a_number(tmp_path):
    """YAML 1.1 reads `1e-3` and `1.0e12` as strings: coerced where the schema wants a number."""
    text = BASE + "  lr: 1e-3\n  init_std: 1.0e12\n  batch_size: 1e2\n"
    config, _, _ = checked_file(tmp_path, text)
    assert yaml.safe_load(text)["training"]["lr"] == "1e-3"  # what PyYAML (and Snakemake) read
    training = config["training"]
    assert training["lr"] == 1e-3 and isinstance(training["lr"], float)
    assert training["init_std"] == 1e12
    assert training["batch_size"] == 100 and type(training["batch_size"]) is int


def test_integral_float_for_an_integer_key_becomes_int(tmp_path):
    config, _, _ = checked_file(tmp_path, BASE.replace("epochs: 3", "epochs: 3.0e+0"))
    assert config["training"]["epochs"] == 3 and type(config["training"]["epochs"]) is int


def test_numbers_inside_lists_and_mappings_are_coerced():
    config = {"analysis": {"groups": {"bins": {"digits": ["5e-1", "9E-1"]}}},
              "training": {"snapshots": ["0", "1e0"]}}
    coerce_numbers(config, SCHEMA)
    assert config["analysis"]["groups"]["bins"]["digits"] == [0.5, 0.9]
    assert config["training"]["snapshots"] == [0, 1]


def test_strings_where_the_schema_wants_strings_stay_strings():
    config = {"datasets": {"mnist": {"data_dir": "1e3"}}, "experiments": [{"arch": {"pool": "cls"}}],
              "training": {"lr": "fast"}}
    coerce_numbers(config, SCHEMA)
    assert config["datasets"]["mnist"]["data_dir"] == "1e3"
    assert config["training"]["lr"] == "fast"  # not a number: left for the schema to reject


@pytest.mark.parametrize("text,expected", [
    (BASE + "trainig: {}\n",
     "trainig: unknown key (my.yaml line 10); allowed here (top level): analysis, datasets, experiments, training"),
    (BASE + "  lrr: 0.1\n",
     "training.lrr: unknown key (my.yaml line 10); allowed here (training): base_seed, batch_size, device, epochs, "
     "init_std, lr, snapshots, vectorize"),
    (BASE + "  lr: fast\n", "training.lr = 'fast' (my.yaml line 10): expected a number > 0"),
    (BASE + "  lr: -1e-3\n", "training.lr = -0.001 (my.yaml line 10): expected a number > 0"),
    (BASE.replace("model: dnn", "model: rnn"), "experiments[0].model = 'rnn' (my.yaml line 4): expected one of dnn, cnn, vit, smallcnn"),
    (BASE.replace("[2, 8]", "[2, x]"),
     "experiments[0].arch.hidden = [2, 'x'] (my.yaml line 6): expected an integer >= 1 or a list of (an integer >= 1)"),
    (BASE.replace("datasets: [digits]", "datasets: []"), "experiments[0].datasets = [] (my.yaml line 5): needs at least 1 item(s)"),
    (BASE.replace("    arch: {hidden: [2, 8]}\n", ""), "experiments[0]: 'arch' is a required property (my.yaml line 4)"),
    (BASE.replace("digits: {}", "svhn: {}"),
     "datasets.svhn: unknown name 'svhn' (my.yaml line 2); allowed: digits, mnist5k, mnist, fmnist, cifar10"),
], ids=["unknown-top-key", "unknown-nested-key", "wrong-type", "out-of-range", "bad-enum", "bad-list-item",
        "empty-list", "missing-required-key", "unknown-dataset-name"])
def test_schema_errors_are_one_line_with_key_value_and_file(tmp_path, text, expected):
    assert config_error(tmp_path, text) == expected


def test_yaml_syntax_error_names_file_and_line(tmp_path, capsys):
    """Snakemake itself says only "Config file is not valid JSON or YAML" (see the workflow test below);
    `python -m weightzoo.config FILE` says where."""
    path = write_config(tmp_path, BASE.replace("[digits]", "[digits"))
    assert yaml_syntax_error(path) == (
        f"{path} line 6 column 9: YAML syntax error: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence that starts at line 5 column 15)")
    assert check_config_main([str(path)]) == 1
    assert f"{path} line 6 column 9" in capsys.readouterr().err
    tabs = write_config(tmp_path, "datasets:\n\tdigits: {}\n", "tabs.yaml")
    assert yaml_syntax_error(tabs).startswith(f"{tabs} line 2 column 1: YAML syntax error: found character '\\t'")


def test_check_config_command_accepts_a_good_file(tmp_path, capsys):
    path = write_config(tmp_path, BASE + "  lr: 1e-3\n")
    assert check_config_main([str(path)]) == 0
    assert "valid, 2 experiments" in capsys.readouterr().out


def test_duplicate_architecture_listed_twice(tmp_path):
    text = BASE.replace("training:", "  - {model: dnn, datasets: [digits], arch: {hidden: [8, 16]}}\ntraining:")
    message = config_error(tmp_path, text)
    assert message == ("experiments[1]: experiment dnn/digits/h8 is already defined by experiments[0]; the same "
                       "architecture is listed twice; remove it from one of the blocks (my.yaml line 8)")
    assert "sweep" not in message


def test_duplicate_label_from_an_unswept_key(tmp_path):
    text = """\
datasets: {digits: {}}
experiments:
  - {model: vit, datasets: [digits], arch: {heads: [1, 2], embed_dim: 8}}
  - {model: vit, datasets: [digits], arch: {heads: [1, 2], embed_dim: 16}}
"""
    assert config_error(tmp_path, text) == (
        "experiments[1]: experiment vit/digits/heads1 is already defined by experiments[0]; the blocks differ in "
        "['embed_dim'], which the label does not show because it is not swept in both; sweep embed_dim as a list "
        "in one block, or change the arch values so the labels differ (my.yaml line 4)")


def test_batch_size_larger_than_the_train_split(tmp_path):
    assert config_error(tmp_path, BASE + "  batch_size: 1348\n") == (
        "training.batch_size: 1348 is larger than the 1347 training samples of 'digits'; use at most 1347 "
        "(= full-batch training) (my.yaml line 10)")
    checked_file(tmp_path, BASE + "  batch_size: 1347\n")  # exactly the train split: fine


def test_batch_size_follows_test_fraction(tmp_path):
    text = BASE.replace("digits: {}", "mnist5k: {test_fraction: 0.5}").replace("[digits]", "[mnist5k]")
    assert config_error(tmp_path, text + "  batch_size: 2501\n") == (
        "training.batch_size: 2501 is larger than the 2500 training samples of 'mnist5k'; use at most 2500 "
        "(= full-batch training) (my.yaml line 10)")


def test_batch_size_of_a_file_dataset_is_checked_at_the_train_step(tmp_path):
    from weightzoo.data import DatasetError, check_batch_size

    ds = tiny_dataset(n_train=300)
    check_batch_size(ds, 300, "resources/datasets/mnist.nc")
    with pytest.raises(DatasetError, match=r"^resources/datasets/mnist.nc: training.batch_size 301 is larger than "
                                           r"the 300 training samples of this dataset; set training.batch_size to "
                                           r"at most 300$"):
        check_batch_size(ds, 301, "resources/datasets/mnist.nc")


@pytest.mark.parametrize("analysis,expected", [
    ("analysis:\n  groups: {method: bins}\n",
     "analysis.groups.bins: method 'bins' needs cut points [low/mid, mid/high] for every trained dataset; "
     "missing ['digits'] (e.g. bins: {digits: [0.5, 0.9]}) (my.yaml line 11, under analysis.groups)"),
    ("analysis:\n  groups: {method: bins, bins: {mnist5k: [0.5, 0.9]}}\n",
     "analysis.groups.bins: method 'bins' needs cut points [low/mid, mid/high] for every trained dataset; "
     "missing ['digits'] (e.g. bins: {digits: [0.5, 0.9]}) (my.yaml line 11)"),
    ("analysis:\n  groups: {method: bins, bins: {digits: [0.9, 0.5]}}\n",
     "analysis.groups.bins.digits: [0.9, 0.5] must be increasing (low/mid <= mid/high) (my.yaml line 11)"),
], ids=["bins-without-entries", "bins-missing-a-dataset", "bins-decreasing"])
def test_analysis_settings_are_checked_before_any_job(tmp_path, analysis, expected):
    assert config_error(tmp_path, BASE + analysis) == expected


# ------------------------------------------------------------------------------------------ files

import shutil  # noqa: E402
import time  # noqa: E402

from weightzoo.io import atomic  # noqa: E402
from weightzoo.io.atomic import (  # noqa: E402
    DamagedFileError,
    WriteError,
    atomic_path,
    name_damaged_inputs_on_crash,
    naming_damaged_inputs,
    remove_stale_parts,
)
from weightzoo.data import DatasetError, load_dataset, save_dataset  # noqa: E402
from weightzoo.io.store import gather, open_zoo, result_to_dataset, write_zoo  # noqa: E402


def flip_data_bytes(path):
    """Overwrite 8 bytes inside the data of a netCDF file: the first offset (from 30 % in) at which the file
    still opens but no longer reads back in full, as bit rot or a stray write would leave it."""
    raw = bytearray(path.read_bytes())
    probe = path.with_name("probe.nc")
    for offset in [*range(int(len(raw) * 0.3), len(raw) - 8, 61), *range(0, int(len(raw) * 0.3), 61)]:
        damaged = bytearray(raw)
        damaged[offset : offset + 8] = bytes(b ^ 0xFF for b in raw[offset : offset + 8])
        probe.write_bytes(damaged)
        try:
            with xr.open_dataset(probe, engine="netcdf4", cache=False) as ds:
                try:
                    ds.load()
                except (RuntimeError, OSError):
                    path.write_bytes(damaged)
                    return offset
        except (RuntimeError, OSError, ValueError):
            continue
        finally:
            probe.unlink(missing_ok=True)
    raise AssertionError(f"no data byte found in {path}")


def rewrite_one_value(path, variable):
    """Change one stored value the way HDF5 itself would write it (its own chunk checksum stays valid): what a
    damaged chunk index that points a read at the wrong bytes looks like. Only weightzoo's CRC can see it."""
    import netCDF4

    with netCDF4.Dataset(path, "a") as nc:
        var = nc.variables[variable]
        index = (0,) * var.ndim
        var[index] = var[index] + 1


@pytest.fixture(scope="module")
def chunk_files(tmp_path_factory):
    data = TensorData.from_dataset(tiny_dataset())
    kwargs = _dnn(data, 16)
    hp = Hyperparameters(epochs=1, batch_size=50, snapshots=(0, -1))
    folder = tmp_path_factory.mktemp("chunks")
    paths = []
    for i, trials in enumerate(([0, 1], [2, 3])):
        result = train_trials("dnn", kwargs, data, trials, hp)
        ds = result_to_dataset(result, model="dnn", dataset="tiny", arch="h16", model_kwargs=kwargs,
                               hyperparameters=vars(hp), input_shape=data.input_shape, n_classes=10)
        paths.append(folder / f"chunk{i}.nc")
        write_zoo(ds, paths[-1])
    return paths


@pytest.fixture
def chunks(chunk_files, tmp_path):
    copies = []
    for path in chunk_files:
        copies.append(tmp_path / "train" / path.name)
        copies[-1].parent.mkdir(exist_ok=True)
        shutil.copy(path, copies[-1])
    return copies


def previous_zoo(chunks, tmp_path):
    zoo = tmp_path / "zoo" / "h16.nc"
    gather(chunks, zoo)
    return zoo, zoo.read_bytes()


def test_damaged_chunk_is_named_and_moved_aside_and_the_zoo_kept(chunks, tmp_path):
    """Bytes overwritten inside a chunk's data: was a bare `RuntimeError: NetCDF: HDF error`."""
    zoo, before = previous_zoo(chunks, tmp_path)
    flip_data_bytes(chunks[1])
    with pytest.raises(DamagedFileError) as info:
        gather(chunks, zoo)
    message = str(info.value)
    assert message.startswith(f"{chunks[1]}: reading ")
    assert f"the file is damaged: moved it to {chunks[1]}.damaged; the next `snakemake` run retrains this " \
           "chunk and gathers its zoo again" in message
    assert not chunks[1].exists() and chunks[1].with_name("chunk1.nc.damaged").exists()
    assert zoo.read_bytes() == before  # the previous zoo is untouched
    assert not list(zoo.parent.glob(".*.part"))


def test_published_zoo_is_a_link_and_a_damaged_one_takes_its_gathered_twin_along(chunks, tmp_path):
    """Issue 22: the zoo is a second name of the gather's output (no copy); when a damaged zoo is moved aside the
    gathered file (the same bytes) goes too, so the next run gathers again instead of linking them back."""
    gathered = tmp_path / "zoo" / "h16.nc.gathered"
    gather(chunks, gathered)
    zoo = gathered.with_name("h16.nc")
    zoo.write_bytes(b"previous zoo")
    assert atomic.link_atomic(gathered, zoo)
    assert os.path.samefile(zoo, gathered) and not list(zoo.parent.glob(".*.part"))
    error = atomic.damaged(zoo, "test")
    assert "the next `snakemake` run gathers it again" in str(error)
    assert not zoo.exists() and not gathered.exists() and zoo.with_name("h16.nc.damaged").exists()


def test_publishing_copies_where_the_file_system_has_no_hard_links(chunks, tmp_path, monkeypatch, caplog):
    gathered = tmp_path / "h16.nc.gathered"
    gathered.write_bytes(b"zoo bytes")

    def refuse(*args):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    assert not atomic.link_atomic(gathered, tmp_path / "h16.nc")
    assert (tmp_path / "h16.nc").read_bytes() == b"zoo bytes" and "copying" in caplog.text


def test_chunk_that_is_not_netcdf_is_named(chunks, tmp_path):
    chunks[0].write_bytes(b"\x00" * 100)
    with pytest.raises(DamagedFileError, match=rf"^{chunks[0]}: not readable as netCDF: OSError: .*Unknown file format.*the file is "
                                               rf"damaged: moved it to {chunks[0]}.damaged"):
        gather(chunks, tmp_path / "zoo.nc")
    assert not (tmp_path / "zoo.nc").exists()


def test_chunk_with_a_silently_changed_value_fails_its_checksum(chunks, tmp_path):
    rewrite_one_value(chunks[0], "fc2_weight")
    with pytest.raises(DamagedFileError, match=rf"^{chunks[0]}: variable 'fc2_weight' does not match its checksum; "
                                               "the file is damaged"):
        gather(chunks, tmp_path / "zoo.nc")


def test_truncated_chunk_is_named(chunks, tmp_path):
    raw = chunks[0].read_bytes()
    chunks[0].write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DamagedFileError, match=rf"^{chunks[0]}: "):
        gather(chunks, tmp_path / "zoo.nc")


def test_damaged_zoo_is_named_by_the_analysis_jobs(chunks, tmp_path):
    """A zoo damaged after gathering: the analysis job's read error names it (moved aside: regathered)."""
    zoo, _ = previous_zoo(chunks, tmp_path)
    flip_data_bytes(zoo)
    with pytest.raises(DamagedFileError) as info:
        with naming_damaged_inputs([str(zoo)]):
            with xr.open_dataset(zoo) as ds:
                ds.load()
    assert str(info.value).startswith(f"{zoo}: RuntimeError: NetCDF: HDF error; the file is damaged: moved it to ")
    assert str(info.value).endswith("the next `snakemake` run gathers it again from its chunks and redoes "
                                    "everything made from it (delete h16.nc.damaged once you no longer need it)")
    assert not zoo.exists()


def test_crash_hook_names_a_damaged_zoo(chunks, tmp_path):
    """The analysis scripts install this hook (one line): the job's log and stderr name the damaged file."""
    zoo, _ = previous_zoo(chunks, tmp_path)
    flip_data_bytes(zoo)
    code = f"""
import sys, xarray as xr
sys.path.insert(0, {str(os.path.abspath('src'))!r})
from weightzoo.io.atomic import name_damaged_inputs_on_crash
name_damaged_inputs_on_crash([{str(zoo)!r}])
xr.load_dataset({str(zoo)!r})
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"DamagedFileError: {zoo}: RuntimeError: NetCDF: HDF error; the file is damaged: "
                                  "moved it to")
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1  # one block, no traceback


def test_error_unrelated_to_inputs_passes_unchanged(chunks, tmp_path):
    with pytest.raises(KeyError, match="no_such_variable"):
        with naming_damaged_inputs([str(chunks[0])]):
            raise KeyError("no_such_variable")
    assert chunks[0].exists()


@pytest.fixture
def prepared(tmp_path):
    from weightzoo.data import build_dataset

    ds = tiny_dataset()
    built = build_dataset("digits", ds["images"].values, ds["labels"].values, ds["split"].values, source="test",
                          split_seed=0)
    path = tmp_path / "resources" / "datasets" / "digits.nc"
    save_dataset(built, path)
    return path


def test_damaged_prepared_dataset_is_named_and_moved_aside(prepared):
    flip_data_bytes(prepared)
    with pytest.raises(DatasetError) as info:
        load_dataset(prepared)
    message = str(info.value)
    assert message.startswith(f"{prepared}: cannot be read as netCDF: RuntimeError: NetCDF: HDF error; the file is "
                              f"damaged: moved it to {prepared}.damaged; the next `snakemake` run prepares it again")
    assert not prepared.exists()


def test_prepared_dataset_with_a_changed_value_fails_its_checksum(prepared):
    rewrite_one_value(prepared, "labels")
    with pytest.raises(DatasetError, match=rf"^{prepared}: variable 'labels' does not match its checksum"):
        load_dataset(prepared)


def test_old_files_without_checksums_still_load(tmp_path):
    """Files written before the checksums (no weightzoo_crc32 attribute) are read as before."""
    from weightzoo.io.atomic import write_netcdf_atomic
    from weightzoo.data import build_dataset

    ds = tiny_dataset()
    built = build_dataset("digits", ds["images"].values, ds["labels"].values, ds["split"].values, source="test",
                          split_seed=0)
    write_netcdf_atomic(built, tmp_path / "old.nc", checksums=False)
    assert load_dataset(tmp_path / "old.nc")["labels"].size == 400



# ------------------------------------------------------------------------------------------ every kind of input

from weightzoo.analysis.kde import pooled_densities  # noqa: E402
from weightzoo.analysis.status import training_status_table  # noqa: E402
from weightzoo.analysis.strength import pooled_strengths  # noqa: E402
from weightzoo.jobs.claims import evaluate_claims  # noqa: E402
from weightzoo.jobs.features import extract_features  # noqa: E402
from weightzoo.io.atomic import explain_failure, load_checked, netcdf_problem  # noqa: E402
from weightzoo.data import build_dataset  # noqa: E402
from weightzoo.io.store import summary_table  # noqa: E402


@pytest.fixture(scope="module")
def workflow_files(chunk_files, tmp_path_factory):
    """One experiment's files in the workflow's layout, written by the workflow's own functions."""
    root = tmp_path_factory.mktemp("tree")
    ds = tiny_dataset()
    dataset = root / "resources/datasets/digits.nc"
    save_dataset(build_dataset("digits", ds["images"].values, ds["labels"].values, ds["split"].values,
                               source="test", split_seed=0), dataset)
    train = root / "results/train/dnn/tiny/h16"
    train.mkdir(parents=True)
    for path in chunk_files:
        shutil.copy(path, train / path.name)
    chunks = sorted(train.glob("chunk*.nc"))
    zoo = root / "results/zoo/dnn/tiny/h16.nc"
    gather(chunks, zoo)
    summary = summary_table([zoo])
    summary["group"] = ["low", "high", "low", "high"]
    summary.to_csv(root / "groups.csv", index=False)
    analysis = root / "results/analysis"
    outputs = {kind: analysis / kind / "dnn/tiny/h16.nc"
               for kind in ("features", "node_strength", "densities", "training_status")}
    extract_features(zoo, root / "groups.csv", "dnn/tiny/h16", outputs["features"], outputs["node_strength"],
                     max_values=50, dataset_path=dataset, status_path=outputs["training_status"],
                     densities_path=outputs["densities"])
    return {"root": root, "dataset": dataset, "chunk": chunks[1], "zoo": zoo, **outputs}


def test_files_derived_from_a_zoo_pass_the_checker(workflow_files, capsys):
    """Issue 14: features.py copied the zoo's train_loss attributes, its checksum included, onto final_train_loss,
    so `python -m weightzoo.io.atomic` called every fresh feature file damaged."""
    paths = [workflow_files[k] for k in ("dataset", "chunk", "zoo", "features", "node_strength", "densities",
                                        "training_status")]
    assert atomic.main([str(p) for p in paths]) == 0, capsys.readouterr().out
    with xr.open_dataset(workflow_files["features"]) as f:  # every variable carries the checksum of its own values
        assert all(atomic.CHECKSUM_ATTR in f.variables[name].attrs for name in f.variables)
    from weightzoo.analysis.features import trial_features
    from weightzoo.analysis.groups import experiment_groups

    groups = experiment_groups(pd.read_csv(workflow_files["root"] / "groups.csv", keep_default_na=False), "dnn/tiny/h16")
    with xr.open_dataset(workflow_files["zoo"]) as zoo:
        features = trial_features(zoo, groups, n_quantiles=20)
    assert atomic.CHECKSUM_ATTR in zoo["train_loss"].attrs  # what features.py copied from
    assert not [name for name in features.variables if atomic.CHECKSUM_ATTR in features[name].attrs]


def _read_as_the_workflow_does(kind, path, files, tmp_path):
    """Run the workflow function that reads ``path`` (of ``kind``) the way its job does."""
    if kind == "chunk":
        gather(sorted(path.parent.glob("chunk*.nc")), tmp_path / "zoo.nc")
    elif kind == "zoo":
        out = tmp_path / "out"
        extract_features(path, files["root"] / "groups.csv", "dnn/tiny/h16", out / "f.nc", out / "s.nc",
                         max_values=50, dataset_path=files["dataset"], status_path=out / "t.nc",
                         densities_path=out / "d.nc")
    elif kind == "dataset":
        load_dataset(path)
    elif kind == "features":
        evaluate_claims([path], tmp_path / "c.csv", tmp_path / "c.html",
                                   {"n_permutations": 9, "n_bootstrap": 9, "cv_folds": 2}, "dnn on tiny")
    elif kind == "node_strength":
        pooled_strengths([load_checked(path)])
    elif kind == "densities":
        pooled_densities([load_checked(path)])
    else:
        training_status_table([load_checked(path)])


def test_the_message_says_what_the_next_run_does_by_file_kind():
    hint = atomic.remake_hint
    assert hint("results/train/dnn/d/h8/chunk3.nc") == atomic.REMAKE_CHUNK
    assert hint("results/zoo/dnn/d/h8.nc") == atomic.REMAKE_ZOO
    assert hint("resources/datasets/digits.nc") == atomic.REMAKE_DATASET
    for kind in ("features", "node_strength", "densities", "training_status"):
        # a folder named zoo above the working directory does not make it a zoo
        assert hint(f"/home/zoo/work/results/analysis/{kind}/dnn/d/h8.nc") == atomic.REMAKE_FEATURES
    assert hint("elsewhere/file.nc") == atomic.REMAKE_OTHER

@pytest.mark.parametrize("where", ["start", "middle", "end"])
@pytest.mark.parametrize("kind", ["chunk", "zoo", "dataset", "features", "node_strength", "densities",
                                  "training_status"])
def test_every_damaged_input_is_named_moved_aside_and_remade(workflow_files, tmp_path, kind, where):
    """4 kB of random bytes at the start, middle or end of each kind of file a job reads: the job's error (as its
    script prints it: ``explain_failure``) names the file, moves it aside and says what the next run does; or the
    bytes hit nothing that is read (the file still reads back in full with every checksum intact)."""
    root = tmp_path / "tree"
    shutil.copytree(workflow_files["root"], root)
    files = {k: root / Path(v).relative_to(workflow_files["root"]) for k, v in workflow_files.items() if k != "root"}
    files["root"] = root
    path = files[kind]
    raw = bytearray(path.read_bytes())
    offset = {"start": 0, "middle": len(raw) // 2 - 2048, "end": len(raw) - 4096}[where]
    raw[offset : offset + 4096] = np.random.default_rng(14).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(raw))
    inputs = [files[k] for k in ("dataset", "chunk", "zoo", "features", "node_strength", "densities", "training_status")]
    try:
        _read_as_the_workflow_does(kind, path, files, tmp_path)
    except Exception as err:  # noqa: BLE001 - the job's script sees whatever the job raises
        message = explain_failure(err, inputs)
        assert message is not None, f"{type(err).__name__}: {err}"  # a traceback, not a named file
        assert f"{path}: " in message and f"moved it to {path}.damaged; the next `snakemake` run " in message
        assert not path.exists() and path.with_name(path.name + ".damaged").exists()
        assert atomic.moved_aside([str(p) for p in inputs]) == [str(path)]  # the workflow's targets then
        return
    assert path.exists() and netcdf_problem(path) == "", "read without error but damaged"

FULL = "disk full"


def _small_tmpfs(tmp_path):
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tiny tmpfs needs root (the ENOSPC case is also simulated below)")
    mount = tmp_path / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    return mount


def test_full_disk_gives_write_error_and_keeps_the_old_file(chunk_files, tmp_path):
    mount = _small_tmpfs(tmp_path)
    try:
        target = mount / "zoo.nc"
        target.write_bytes(b"previous good file")
        with open_zoo(chunk_files[0]) as ds:
            ds = ds.load()
        with pytest.raises(WriteError) as info:
            write_zoo(ds, target)
        assert info.value.errno == errno.ENOSPC
        assert str(info.value).startswith(f"[Errno {errno.ENOSPC}] {target}: writing failed (NetCDF: HDF error); "
                                          f"the disk holding {mount} is full")
        assert str(info.value).endswith("The half-written file was removed and zoo.nc left as it was before this "
                                        "write.")
        assert target.read_bytes() == b"previous good file"
        assert sorted(p.name for p in mount.iterdir()) == ["zoo.nc"]  # no part file left
    finally:
        subprocess.run(["umount", "--lazy", str(mount)])  # lazy: netCDF may still hold the failed file open


def test_enospc_while_writing_is_named(tmp_path, monkeypatch):
    target = tmp_path / "summary.csv"
    target.write_text("old")
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda folder: shutil._ntuple_diskusage(100, 100, 0))
    with pytest.raises(WriteError, match=rf"{target}: writing failed \(\[Errno 28\] No space left on device\); the "
                                         rf"disk holding {tmp_path} is full \(0 bytes free\)"):
        with atomic_path(target) as tmp:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert target.read_text() == "old" and not list(tmp_path.glob(".*.part"))


def test_other_errors_inside_a_write_are_not_relabelled(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "x.nc"):
            open(tmp_path / "missing" / "input.csv")


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_part_files_are_cleaned_at_the_next_write(tmp_path):
    host = atomic._HOST
    dead = tmp_path / f".zoo.nc.{host}-{_dead_pid()}.abcd1234.part"
    alive = tmp_path / f".zoo.nc.{host}-{os.getppid()}.abcd1234.part"  # a writer that is still running
    old_legacy = tmp_path / ".zoo.nc.k2j3h4g5.part"  # the old naming, untouched for two days
    new_legacy = tmp_path / ".other.nc.k2j3h4g5.part"  # old naming, may still be written on another node
    other_host = tmp_path / ".zoo.nc.elsewhere-1.abcd1234.part"
    figure = tmp_path / f".node_strength.png.{host}-{_dead_pid()}.abcd1234.part.png"  # save_figure's drawing
    for path in (dead, alive, old_legacy, new_legacy, other_host, figure):
        path.write_bytes(b"partial")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old_legacy, (two_days_ago, two_days_ago))
    user_file = tmp_path / ".hidden.part.txt"
    user_file.write_text("not ours")
    with atomic_path(tmp_path / "summary.csv") as tmp:
        tmp.write_text("a,b\n")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([alive.name, new_legacy.name, other_host.name, user_file.name, "summary.csv"])


def test_kill_9_during_a_write_leaves_a_part_file_the_next_write_removes(tmp_path):
    code = f"""
import sys, time
sys.path.insert(0, {os.path.abspath('src')!r})
from weightzoo.io.atomic import atomic_path
with atomic_path({str(tmp_path / 'chunk0.nc')!r}) as tmp:
    tmp.write_bytes(b"half")
    print(tmp, flush=True)
    time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    part = proc.stdout.readline().strip()
    proc.kill()  # SIGKILL: no finally block runs
    proc.wait()
    assert os.path.exists(part) and not (tmp_path / "chunk0.nc").exists()
    assert remove_stale_parts(tmp_path) == [atomic.Path(part)]
    assert not os.path.exists(part)


# ------------------------------------------------------------------------------------------ workflow

from conftest import ROOT, snakemake  # noqa: E402

HUGE = """\
datasets:
  digits: {}
experiments:
  - model: dnn
    datasets: [digits]
    arch: {hidden: 2}
    trials: 4
  - model: cnn
    datasets: [digits]
    arch: {channels: 2}
    trials: 4
training:
  epochs: 1
  init_std: 1.0e18   # YAML 1.1 reads this as a string: coerced
analysis:
  claims: {n_permutations: 19, n_bootstrap: 19, cv_folds: 2}
  tsne: {per_layer: false}
"""


@pytest.mark.slow
def test_all_diverged_huge_weight_zoo_still_gives_every_output_and_the_report(tmp_path):
    """init_std 1e18: every trial diverges or holds weights near float32's limit. project_trials used to crash
    (LinAlgError) and --report failed on the missing figures."""
    (tmp_path / "huge.yaml").write_text(HUGE)
    config = ["--configfile", str(tmp_path / "huge.yaml")]
    proc = snakemake(tmp_path, *config, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = (tmp_path / "results/analysis/summary_groups.csv").read_text().splitlines()
    import pandas as pd

    table = pd.read_csv(tmp_path / "results/analysis/summary_groups.csv", keep_default_na=False)
    assert len(table) == 8 and summary
    assert set(table["group"]) == {"non"}  # nothing trained: no trial in low/mid/high
    losses = table[["final_train_loss", "final_test_loss"]].replace("", np.nan).astype(float).to_numpy()
    assert (table["diverged"].astype(str) == "True").to_numpy()[~np.isfinite(losses).all(axis=1)].all()
    dry = snakemake(tmp_path, *config, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr  # every output of the workflow is there
    report = snakemake(tmp_path, *config, "--report", str(tmp_path / "report.zip"), timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (tmp_path / "report.zip").stat().st_size > 0


SMALL = """\
datasets:
  digits: {}
experiments:
  - model: dnn
    datasets: [digits]
    arch: {hidden: 4}
    trials: 4
    trials_per_job: 2
training:
  epochs: 1
  lr: 1e-3
"""


@pytest.mark.slow
def test_failed_gather_keeps_the_previous_zoo(tmp_path):
    """Snakemake deletes a job's existing outputs before running it; the gather job writes `{zoo}.gathered`, of which
    the zoo is a second name (hard link), so a gather failing on a damaged chunk leaves the previous zoo as it was,
    and nothing is ever copied (issue 22: Snakemake's update() used to copy the zoo to .snakemake/backups)."""
    (tmp_path / "small.yaml").write_text(SMALL)
    args = ["--configfile", str(tmp_path / "small.yaml"), "--cores", "2", "results/zoo/dnn/digits/base.nc"]
    assert snakemake(tmp_path, *args).returncode == 0
    zoo = tmp_path / "results/zoo/dnn/digits/base.nc"
    gathered = zoo.with_name("base.nc.gathered")
    assert os.path.samefile(zoo, gathered) and zoo.stat().st_nlink == 2  # one file, two names
    chunk = tmp_path / "results/train/dnn/digits/base/chunk1.nc"
    before, inode = xr.load_dataset(zoo), zoo.stat().st_ino
    flip_data_bytes(chunk)  # also makes the chunk newer than the zoo: Snakemake gathers again
    proc = snakemake(tmp_path, *args)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert f"DamagedFileError: {chunk}: reading " in output
    assert zoo.stat().st_ino == inode and not gathered.exists()
    xr.testing.assert_identical(xr.load_dataset(zoo), before)
    assert not any(p.is_file() for p in (tmp_path / ".snakemake").rglob("backups/**/*"))
    assert chunk.with_name("chunk1.nc.damaged").exists() and not chunk.exists()
    # issue 14: the next plain run (no target named, no --forcerun) retrains the chunk and gathers the zoo again
    proc = snakemake(tmp_path, *args[:-1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "weightzoo: remaking 1 file(s) moved aside as damaged" in proc.stderr
    assert chunk.exists() and os.path.samefile(zoo, gathered) and zoo.stat().st_ino != inode
    xr.testing.assert_equal(xr.load_dataset(zoo).drop_attrs(), before.drop_attrs())
    assert "Nothing to be done" in snakemake(tmp_path, *args[:-1], "-n").stdout


@pytest.mark.slow
def test_damaged_zoo_found_by_extract_features_is_remade_by_the_next_plain_run(tmp_path):
    """Issue 14, item 1: 4 kB of random bytes in the middle of a zoo made extract_features fail with a bare
    `RuntimeError: NetCDF: HDF error` on every rerun. Now the job names the file and moves it aside, and the next
    plain `snakemake` gathers it again and redoes everything made from it."""
    (tmp_path / "small.yaml").write_text(SMALL)
    config = ["--configfile", str(tmp_path / "small.yaml"), "--cores", "2"]
    assert snakemake(tmp_path, *config, "results/zoo/summary.csv").returncode == 0
    zoo = tmp_path / "results/zoo/dnn/digits/base.nc"
    raw, mtime = bytearray(zoo.read_bytes()), zoo.stat().st_mtime
    middle = len(raw) // 2 - 2048
    raw[middle : middle + 4096] = np.random.default_rng(14).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    zoo.write_bytes(bytes(raw))
    os.utime(zoo, (mtime, mtime))  # bit rot does not make a file newer: only the analysis reads it now
    failed = snakemake(tmp_path, *config)
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1
    assert "Error in rule extract_features" in output
    assert "DamagedFileError: results/zoo/dnn/digits/base.nc: " in output
    assert "moved it to results/zoo/dnn/digits/base.nc.damaged; the next `snakemake` run gathers it again" in output
    assert "Traceback" not in output
    assert not zoo.exists()
    rerun = snakemake(tmp_path, *config)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert zoo.exists() and atomic.netcdf_problem(zoo) == ""
    assert (tmp_path / "results/analysis/claims.html").exists()
    dry = snakemake(tmp_path, *config, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr



@pytest.mark.slow
def test_damaged_dataset_and_the_chunk_that_hit_it_are_remade_by_the_next_plain_run(tmp_path):
    """Issue 14, item 3: a damaged prepared dataset was moved aside with a message promising a remake, and the next
    run said "Nothing to be done": the dataset and the chunk whose training hit it stayed missing (the zoo exists)."""
    (tmp_path / "small.yaml").write_text(SMALL)
    config = ["--configfile", str(tmp_path / "small.yaml"), "--cores", "2"]
    assert snakemake(tmp_path, *config).returncode == 0  # everything made from the dataset exists
    dataset = tmp_path / "resources/datasets/digits.nc"
    chunk = tmp_path / "results/train/dnn/digits/base/chunk1.nc"
    chunk.unlink()  # a chunk to be trained again while its zoo exists (as after a damaged chunk)
    flip_data_bytes(dataset)
    failed = snakemake(tmp_path, *config, "results/train/dnn/digits/base/chunk1.nc")
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1
    assert (f"DatasetError: resources/datasets/digits.nc: cannot be read as netCDF: RuntimeError: NetCDF: HDF error; "
            "the file is damaged: moved it to resources/datasets/digits.nc.damaged; the next `snakemake` run prepares "
            "it again") in output
    assert "Traceback" not in output and not dataset.exists()
    rerun = snakemake(tmp_path, *config)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "weightzoo: remaking 1 file(s) moved aside as damaged" in rerun.stderr
    assert dataset.exists() and chunk.exists() and (tmp_path / "results/analysis/claims.html").exists()
    dry = snakemake(tmp_path, *config, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr


@pytest.mark.slow
def test_config_errors_from_snakemake_fit_one_screen(tmp_path):
    """Before: an unknown top-level key printed the whole schema (847 lines)."""
    (tmp_path / "bad.yaml").write_text(SMALL + "trainig: {}\n")
    proc = snakemake(tmp_path, "--configfile", str(tmp_path / "bad.yaml"), "-n")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) <= 5, output
    assert (f"invalid config: trainig: unknown key ({tmp_path / 'bad.yaml'} line 12); allowed here (top level): "
            "analysis, datasets, experiments, training") in output
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()  # before any job


@pytest.mark.slow
def test_yaml_syntax_error_in_snakemake_names_no_file(tmp_path):
    """What Snakemake 9 itself prints for a --configfile it cannot parse, before the Snakefile runs (so the
    workflow cannot add the file and line): README points to `python -m weightzoo.config FILE`."""
    (tmp_path / "broken.yaml").write_text(SMALL.replace("[digits]", "[digits"))
    proc = snakemake(tmp_path, "--configfile", str(tmp_path / "broken.yaml"), "-n")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "Config file is not valid JSON or YAML" in output and "broken.yaml" not in output.split("Command:")[0]
    checker = subprocess.run([sys.executable, "-m", "weightzoo.config", str(tmp_path / "broken.yaml")],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert checker.returncode == 1 and f"{tmp_path / 'broken.yaml'} line 6 column 9" in checker.stderr


@pytest.mark.slow
def test_killed_snakemake_needs_unlock_and_loses_only_running_jobs(tmp_path):
    """kill -9 of Snakemake and its jobs mid-training: the rerun refuses (lock, as README says) until
    `--unlock`, then finishes without --rerun-incomplete: no half-written output counts as done."""
    import signal

    (tmp_path / "small.yaml").write_text(SMALL.replace("epochs: 1", "epochs: 30"))
    args = ["--configfile", str(tmp_path / "small.yaml"), "--cores", "1", "results/zoo/dnn/digits/base.nc"]
    proc = subprocess.Popen([*conftest_snakemake_command(tmp_path), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    log = tmp_path / "logs/train_trials/dnn/digits/base/chunk0.log"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and "epoch 2/30" in log.read_text()):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "results/train/dnn/digits/base/chunk0.nc").exists()
    locked = snakemake(tmp_path, *args)
    assert locked.returncode == 1 and "Directory cannot be locked" in locked.stdout + locked.stderr
    assert snakemake(tmp_path, "--configfile", str(tmp_path / "small.yaml"), "--unlock").returncode == 0
    rerun = snakemake(tmp_path, *args)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert not list((tmp_path / "results").rglob(".*.part"))


@pytest.mark.slow
def test_data_file_error_through_snakemake_is_one_block_without_traceback(tmp_path):
    """Issue 14, item 4: a bad IDX file was named clearly, but after an 18-line traceback."""
    from test_data import IDX_NAMES, make_idx

    raw = tmp_path / "mnist_files"
    make_idx(raw)
    images = raw / IDX_NAMES["train", "images"]
    images.write_bytes((2049).to_bytes(4, "big") + images.read_bytes()[4:])
    (tmp_path / "mnist.yaml").write_text(SMALL.replace("digits: {}", f"mnist: {{data_dir: {raw}}}")
                                         .replace("[digits]", "[mnist]"))
    proc = snakemake(tmp_path, "--configfile", str(tmp_path / "mnist.yaml"), "--cores", "1",
                     "resources/datasets/mnist.nc")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert f"DatasetError: {images}: wrong magic number 2049" in output
    assert "Traceback" not in output
    log = (tmp_path / "logs/prepare_dataset/mnist.log").read_text()
    assert f"{images}: wrong magic number 2049" in log and "Traceback" not in log


def conftest_snakemake_command(workdir):
    from conftest import SNAKEMAKE

    return [*SNAKEMAKE, "--directory", str(workdir)]


def test_constant_train_images_are_refused_at_prepare():
    """A blank channel would make std 0 and every input NaN: every trial would 'diverge' for the data's sake."""
    from weightzoo.data import build_dataset

    ds = tiny_dataset(channels=2)
    images = ds["images"].values.copy()
    images[:, 1] = 7
    with pytest.raises(DatasetError, match=r"^dataset 'digits': channel\(s\) \[1\] of the train images are constant "
                                           r"\(std 0\); the images cannot be normalised"):
        build_dataset("digits", images, ds["labels"].values, ds["split"].values, source="test", split_seed=0)


def test_bins_missing_from_the_users_file_names_the_users_file(tmp_path):
    """Issue 14, item 4: through Snakemake the default config (which sets `bins: {}`) is a source too; the error
    named its line instead of the user's file that asked for `method: bins`."""
    path = write_config(tmp_path, BASE + "analysis:\n  groups: {method: bins}\n")
    sources = [str(path), "config/config.yaml"]
    config = yaml.safe_load(path.read_text())
    for key, value in yaml.safe_load(open("config/config.yaml")).items():  # as Snakemake merges them
        config.setdefault(key, value)
    config["analysis"] = {**yaml.safe_load(open("config/config.yaml"))["analysis"], "groups": {
        **yaml.safe_load(open("config/config.yaml"))["analysis"]["groups"], "method": "bins"}}
    with pytest.raises(ConfigError) as info:
        check_config(config, sources)
    assert str(info.value).endswith(f"({path} line 11, under analysis.groups)"), str(info.value)


def test_error_location_follows_configfile_precedence(tmp_path):
    """Two --configfile: the key is reported in the later one, which wins; a key from --config names no line."""
    from weightzoo.config.schema import config_sources

    first = write_config(tmp_path, BASE + "  lr: 0.1\n", "base.yaml")
    override = write_config(tmp_path, "training:\n  lr: fast\n", "override.yaml")
    sources = config_sources([first, override], [first, override, "config/config.yaml"])
    assert sources == [str(override), str(first), "config/config.yaml"]
    config = yaml.safe_load(first.read_text())
    config["training"]["lr"] = "fast"
    with pytest.raises(ConfigError, match=rf"^training.lr = 'fast' \({override} line 2\): expected a number > 0$"):
        check_config(copy.deepcopy(config), sources)
    config["training"]["lr"] = -1
    with pytest.raises(ConfigError, match=rf"^training.lr = -1 \({first} line 10\)"):
        check_config(copy.deepcopy(config), [str(first)])
    config["training"]["epochs"] = 0  # as if from --config training='{epochs: 0}'
    del config["training"]["lr"]
    with pytest.raises(ConfigError, match=rf"^training.epochs = 0 \(not set in {override}: a default or "
                                          r"--config\): expected an integer >= 1$"):
        check_config(copy.deepcopy(config), [str(override)])


@pytest.mark.slow
def test_checker_passes_on_every_file_of_a_fresh_run(tiny_run):
    """Issue 14, item 2: `python -m weightzoo.io.atomic` on every netCDF file of a fresh run (results/ and the prepared
    datasets): each variable matches its own checksum; no intact file is called damaged."""
    paths = sorted(str(p) for folder in ("results", "resources") for p in (tiny_run / folder).rglob("*.nc"))
    kinds = {part for p in paths for part in ("train", "zoo", "datasets", "features", "node_strength",
                                              "training_status") if f"/{part}/" in p}
    assert kinds == {"train", "zoo", "datasets", "features", "node_strength", "training_status"}
    proc = subprocess.run([sys.executable, "-m", "weightzoo.io.atomic", *paths], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, timeout=600)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.count(": ok\n") == len(paths)
