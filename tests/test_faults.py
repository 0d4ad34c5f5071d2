"""The fault suite: bad inputs and faults, each with the exact outcome it must get (docs/reliability.md).

Every test here names its case; docs/reliability.md lists them with where each is caught and what the user
sees. Nothing here may end silently wrong: a fault either stops with a message naming the key or file and
what to do, or is handled and recorded (a diverged trial, a figure that says why it is empty).
"""

import errno
import os
import subprocess
import sys

import numpy as np
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
