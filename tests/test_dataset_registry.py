"""weightzoo.data.specs: a dataset is one registered spec that config, cluster and prepare_dataset all read."""

import numpy as np
import pytest
import yaml

from weightzoo import cluster
from weightzoo.config import ConfigError, Experiment, batch_size_key, load_experiments, train_samples
from weightzoo.data import (
    DATASETS,
    KNOWN_DATASETS,
    DatasetError,
    DatasetSpec,
    Embedded,
    check_batch_size,
    download_dataset,
    load_dataset,
    prepare_dataset,
    register,
    save_dataset,
    spec,
)

# (train, test) samples of every registered dataset: the embedded ones as prepare_dataset splits them by
# default, the file datasets as their official files hold them
EXPECTED_SPLITS = {"digits": (1347, 450), "mnist5k": (4000, 1000), "mnist": (60000, 10000),
                   "fmnist": (60000, 10000), "cifar10": (50000, 10000)}


def _toy_arrays():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 4, 4), dtype=np.uint8)
    return images, (np.arange(40) % 4).astype(np.uint8), "numpy (toy 4x4)"


@pytest.fixture
def toy():
    registered = register(DatasetSpec("toy", (1, 4, 4), ("a", "b", "c", "d"), Embedded(40, 0.25, _toy_arrays)))
    yield registered
    DATASETS.pop("toy")


def toy_config(batch_size=30, **settings):
    return {"datasets": {"toy": settings},
            "training": {"epochs": 2, "snapshots": [0, 2], "batch_size": batch_size},
            "experiments": [{"model": "dnn", "datasets": ["toy"], "arch": {"hidden": [3, 5]}, "trials": 4}]}


def test_a_registered_toy_dataset_works_end_to_end(toy, tmp_path):
    assert list(KNOWN_DATASETS)[-1] == "toy" and spec("toy") is toy
    assert toy.n_classes == 4 and toy.split_sizes() == (30, 10) and toy.split_sizes(0.5) == (20, 20)

    # config: validated, its train split known before it is prepared, the batch size checked against it
    experiments = load_experiments(toy_config())
    assert [e.id for e in experiments] == ["dnn/toy/h3", "dnn/toy/h5"]
    assert train_samples(toy_config(), "toy") == 30 and train_samples(toy_config(test_fraction=0.5), "toy") == 20
    with pytest.raises(ConfigError, match="training.batch_size: 31 is larger than the 30 training samples of 'toy'"):
        load_experiments(toy_config(batch_size=31))
    with pytest.raises(ConfigError, match="datasets.toy: 'toy' ships with its Python package"):
        load_experiments(toy_config(data_dir=str(tmp_path)))

    # cluster: the input shape and split sizes of the cost model
    assert cluster.input_shape("toy") == (1, 4, 4)
    assert cluster.chunk_cost(experiments[0], 4, toy_config()["training"]).trial_samples == 4 * 30 * 2

    # prepare, save, load
    ds = prepare_dataset("toy", {"split_seed": 1})
    assert ds["images"].shape == (40, 1, 4, 4) and int(ds.attrs["n_classes"]) == 4
    assert np.bincount(ds["split"].values).tolist() == [30, 10]
    assert ds["labels"].attrs["class_names"] == '["a", "b", "c", "d"]'
    save_dataset(ds, tmp_path / "toy.nc")
    loaded = load_dataset(tmp_path / "toy.nc")
    np.testing.assert_array_equal(loaded["images"].values, ds["images"].values)
    with pytest.raises(DatasetError, match="'toy' ships with its Python package and needs no download"):
        download_dataset("toy", tmp_path)


def test_every_spec_has_the_splits_prepare_dataset_makes():
    assert list(KNOWN_DATASETS) == list(EXPECTED_SPLITS)
    for name, expected in EXPECTED_SPLITS.items():
        assert spec(name).split_sizes() == expected, name
        if spec(name).embedded:
            split = prepare_dataset(name)["split"].values
            assert ((split == 0).sum(), (split == 1).sum()) == expected, name


def test_digits_cost_model_sees_the_prepared_split():
    cost = cluster.chunk_cost(Experiment("dnn", "digits", "h8", {"hidden": 8}), 10, {"epochs": 1, "snapshots": [1]})
    assert cost.trial_samples == 10 * 1347


def test_registry_refuses_duplicates_and_unknown_names():
    with pytest.raises(DatasetError, match="'digits' is already registered"):
        register(spec("digits"))
    with pytest.raises(DatasetError, match="unknown dataset 'svhn'; known datasets are .*'digits'.*'cifar10'"):
        spec("svhn")


def test_schema_lists_the_registered_datasets():
    """The schema names the datasets in an enum (it cannot import the registry): keep the two in step."""
    schema = yaml.safe_load(open("workflow/schemas/config.schema.yaml"))
    assert schema["properties"]["datasets"]["propertyNames"]["enum"] == list(KNOWN_DATASETS)


def test_batch_size_errors_name_the_key_the_value_came_from(toy):
    ds = prepare_dataset("toy")
    swept = {"model": "dnn", "datasets": ["toy"], "arch": {"hidden": 3}, "hyperparameters": {"batch_size": [8, 31]}}
    assert batch_size_key(swept, 2) == "experiments[2].hyperparameters.batch_size"
    assert batch_size_key({"model": "dnn"}) == "training.batch_size"
    with pytest.raises(DatasetError, match=r"toy.nc: experiments\[\]\.hyperparameters\.batch_size 31 is larger than "
                                           r"the 30 training samples .* set experiments\[\]\.hyperparameters"):
        check_batch_size(ds, 31, "toy.nc", batch_size_key(swept))
    with pytest.raises(ConfigError, match=r"experiments\[0\]\.hyperparameters\.batch_size: 31 is larger"):
        load_experiments({**toy_config(), "experiments": [{**swept, "trials": 4}]})
