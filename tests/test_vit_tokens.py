"""The paper's ViT read as one token (the whole image is one patch): softmax over one token is the constant
1, so the query and key projections get exactly zero gradient and the head count cannot change the
function. With several tokens attention, and the head count, matter."""

import json

import numpy as np
import pytest

from helpers import tiny_dataset
from weightzoo.analysis.trained import never_trained, parameter_motion
from weightzoo.config import resolved_model_arch
from weightzoo.models import model_kwargs
from weightzoo.models.vit import PAPER as VIT_PAPER
from weightzoo.io.store import result_to_dataset
from weightzoo.train import Hyperparameters, TensorData, train_trials

QKV = [f"blocks_0_attn_qkv_weight[{c}]" for c in "qkv"]
SMALL = {"embed_dim": 16, "depth": 1, "mlp_ratio": 2.0, "pool": "mean"}


@pytest.fixture(scope="module")
def tiny8():
    return TensorData.from_dataset(tiny_dataset(n_train=300, n_test=50, side=8))


@pytest.fixture(scope="module")
def tiny28():
    return TensorData.from_dataset(tiny_dataset(n_train=200, n_test=20, side=28))


def train(data, arch, trials=(0, 1), batch_size=32):
    """One epoch of ``trials``: the TrainResult and the zoo dataset built from it."""
    kwargs = model_kwargs("vit", arch, data.input_shape, data.n_classes)
    hp = Hyperparameters(epochs=1, batch_size=batch_size, snapshots=(0, -1))
    result = train_trials("vit", kwargs, data, list(trials), hp)
    ds = result_to_dataset(result, model="vit", dataset="tiny", arch="test", model_kwargs=kwargs,
                           hyperparameters=vars(hp), input_shape=data.input_shape, n_classes=data.n_classes)
    return result, ds


def assert_one_token(ds):
    change = parameter_motion(ds)["max_abs_change"].sel(part=QKV)
    assert (change.sel(part=QKV[:2]).values == 0.0).all(), "q or k moved although attention sees one token"
    assert (change.sel(part=QKV[2]).values > 0).all(), "v did not train"
    frozen = never_trained(parameter_motion(ds))["frozen_trial_share"].to_series()
    assert frozen[QKV].tolist() == [1.0, 1.0, 0.0]
    assert sorted(frozen[frozen > 0].index) == sorted(QKV[:2]), "only q and k should never train"


def assert_identical(results):
    first = results[0]
    for other in results[1:]:
        np.testing.assert_array_equal(other.train_accuracy, first.train_accuracy)
        np.testing.assert_array_equal(other.train_loss, first.train_loss)
        for name in first.weights:
            np.testing.assert_array_equal(other.weights[name], first.weights[name], err_msg=name)


def test_one_token_q_k_never_move_and_heads_change_nothing(tiny8):
    runs = [train(tiny8, {**SMALL, "patch_size": 8, "heads": heads}) for heads in (1, 2, 4)]
    for _, ds in runs:
        assert_one_token(ds)
    assert_identical([result for result, _ in runs])


def test_paper_preset_is_one_token(tiny28):
    runs = [train(tiny28, resolved_model_arch({**VIT_PAPER, "heads": heads}, 28), trials=(0,), batch_size=100)
            for heads in (2, 4)]
    kwargs = json.loads(runs[0][1].attrs["model_kwargs"])
    assert (kwargs["embed_dim"], kwargs["patch_size"], kwargs["image_size"]) == (784, 28, 28)
    for _, ds in runs:
        assert_one_token(ds)
    assert_identical([result for result, _ in runs])


def test_several_tokens_train_q_k_and_heads_matter(tiny8):
    runs = [train(tiny8, {**SMALL, "patch_size": 4, "heads": heads}) for heads in (1, 4)]  # 4 tokens
    for _, ds in runs:
        change = parameter_motion(ds)["max_abs_change"].sel(part=QKV).values
        assert (change > 0).all()
        assert never_trained(parameter_motion(ds))["frozen_trial_share"].max() == 0
    (one, _), (four, _) = runs
    np.testing.assert_array_equal(one.weights["blocks.0.attn.qkv.weight"][:, 0],
                                  four.weights["blocks.0.attn.qkv.weight"][:, 0])  # same initial draw
    assert not np.array_equal(one.train_loss, four.train_loss)
    for name in ("blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight", "head.weight"):
        assert not np.array_equal(one.weights[name][:, -1], four.weights[name][:, -1]), name
