"""The GPU's training path (every step masked on the device, no host sync) run on the CPU via the switch.

It must give what the CPU's host-checked path gives (within float tolerance), with and without a trial
that diverges.
"""

import numpy as np
import pytest

import weightzoo.train as train_module
from helpers import tiny_dataset
from weightzoo.models import model_kwargs
from weightzoo.train import Hyperparameters, TensorData, train_trials

VIT = {"patch_size": 4, "embed_dim": 16, "depth": 1, "heads": 2, "mlp_ratio": 2.0, "pool": "cls"}
ARCH = {"dnn": {"hidden": 6}, "cnn": {"channels": 3}, "vit": VIT}
POISON = {"dnn": "fc3.bias", "cnn": "fc.bias", "vit": "head.bias"}


@pytest.fixture(scope="module")
def data():
    return TensorData.from_dataset(tiny_dataset())


def train(data, model, device_side, monkeypatch, poison_seed=None):
    monkeypatch.setattr(train_module, "DEVICE_SIDE_MASKING", device_side)
    original = train_module.initial_parameters

    def initial_parameters(model_, kwargs, seed, std):
        params = original(model_, kwargs, seed, std)
        if seed == poison_seed:
            params[POISON[model_]][0] = float("inf")
        return params

    monkeypatch.setattr(train_module, "initial_parameters", initial_parameters)
    kwargs = model_kwargs(model, ARCH[model], data.input_shape, data.n_classes)
    return train_trials(model, kwargs, data, [0, 1, 2], Hyperparameters(epochs=2, batch_size=32), vectorize=True)


def assert_same(a, b):
    np.testing.assert_array_equal(a.diverged, b.diverged)
    np.testing.assert_array_equal(a.diverged_epoch, b.diverged_epoch)
    for name in a.weights:
        np.testing.assert_allclose(a.weights[name], b.weights[name], atol=1e-6, rtol=0, err_msg=name)
    for curve in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        np.testing.assert_allclose(getattr(a, curve), getattr(b, curve), atol=1e-6, equal_nan=True, err_msg=curve)


@pytest.mark.parametrize("model", ["dnn", "cnn", "vit"])
def test_device_side_masking_equals_host_check(data, model, monkeypatch):
    assert_same(train(data, model, True, monkeypatch), train(data, model, False, monkeypatch))


@pytest.mark.parametrize("model", ["dnn", "cnn", "vit"])
def test_device_side_masking_isolates_a_diverging_trial(data, model, monkeypatch):
    device = train(data, model, True, monkeypatch, poison_seed=1)
    host = train(data, model, False, monkeypatch, poison_seed=1)
    np.testing.assert_array_equal(device.diverged, [False, True, False])
    assert device.diverged_epoch.tolist() == [0, 1, 0]
    assert_same(device, host)
    first = next(iter(device.weights))
    np.testing.assert_array_equal(device.weights[first][1, 0], device.weights[first][1, -1])  # frozen


def test_switch_from_the_environment():
    import subprocess
    import sys

    code = "import weightzoo.train as t; print(t.DEVICE_SIDE_MASKING)"
    env = {"WEIGHTZOO_DEVICE_SIDE_MASKING": "1", "PYTHONPATH": train_module.__file__.rsplit("/weightzoo/", 1)[0]}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "True", out.stderr
