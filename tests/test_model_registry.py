"""The model-family registry: a toy family registered here alone works everywhere, and the counted cost of
the shipped families is the hand count the job plans were made with."""

import copy

import numpy as np
import pytest
import torch
import yaml
from snakemake.utils import validate
from torch import nn

from helpers import tiny_dataset
from weightzoo import cluster
from weightzoo.analysis.trained import dead_unit_masks, dead_units, train_inputs
from weightzoo.config import ConfigError, architectures, expand
from weightzoo.models import MODELS, ModelFamily, build_model, family, model_kwargs, register, unregister
from weightzoo.io.store import result_to_dataset
from weightzoo.train import Hyperparameters, TensorData, train_trials

SCHEMA = "workflow/schemas/config.schema.yaml"


# ------------------------------------------------------------------------------ a toy family, in this file only


def toy_forward(params, x, on_relu=None):
    """input → width (ReLU) → classes for stacked trials; x per trial (K, B, C, H, W) or shared (B, C, H, W)."""
    h = x.flatten(-3)
    h = h.unsqueeze(0) if h.dim() == 2 else h
    h = torch.relu(h @ params["hidden.weight"].transpose(1, 2) + params["hidden.bias"].unsqueeze(1))
    if on_relu is not None:
        on_relu("hidden", h)
    return h @ params["out.weight"].transpose(1, 2) + params["out.bias"].unsqueeze(1)


class ToyMLP(nn.Module):
    def __init__(self, in_features: int, width: int, n_classes: int = 10):
        super().__init__()
        self.hidden = nn.Linear(in_features, width)
        self.out = nn.Linear(width, n_classes)

    def forward(self, x):
        return toy_forward({name: p.unsqueeze(0) for name, p in self.named_parameters()}, x)[0]


TOY = ModelFamily(
    name="toy",
    arch_keys=("width",),
    label_prefix={"width": "w"},
    build=ToyMLP,
    kwargs=lambda arch, shape, n_classes: {"in_features": int(np.prod(shape)), "width": arch["width"],
                                           "n_classes": n_classes},
    activations=lambda kwargs: kwargs["width"] + kwargs["n_classes"],
    cpu_throughput=(6.3, 37.0, "assumed: the dnn's"),
    stacked_forward=lambda network: toy_forward,
    relu_layers=("hidden",),
)


@pytest.fixture
def toy():
    register(TOY)
    yield TOY
    unregister("toy")


def test_toy_family_expands_from_a_config(toy):
    assert [label for label, _ in architectures("toy", {"width": [3, 7]}, "experiments[0]")] == ["w3", "w7"]
    config = {"datasets": {"digits": {}}, "training": {"epochs": 2, "snapshots": [0, -1]},
              "experiments": [{"model": "toy", "datasets": ["digits"], "arch": {"width": [3, 7]}, "trials": 4}]}
    assert [e.id for e in expand(config)] == ["toy/digits/w3", "toy/digits/w7"]
    with pytest.raises(ConfigError, match=r"keys \['hidden'\] do not apply to model 'toy'"):
        architectures("toy", {"width": 3, "hidden": 4}, "experiments[0]")


def test_toy_family_cost_is_counted_on_the_module(toy):
    macs, params, activations = toy.cost({"width": 7}, (1, 8, 8), 10)
    assert (macs, params, activations) == (64 * 7 + 7 * 10, 64 * 7 + 7 + 7 * 10 + 10, 17)
    assert cluster.network_size("toy", {"width": 7}, "digits") == (macs, params, activations)
    exp = next(e for e in expand({"datasets": {"digits": {}}, "training": {"epochs": 2, "snapshots": [0, -1]},
                                  "experiments": [{"model": "toy", "datasets": ["digits"], "arch": {"width": 7}}]}))
    training = {"epochs": 2, "batch_size": 100, "snapshots": [0, -1], "device": "cpu"}
    assert cluster.chunk_cost(exp, 4, training).minutes >= cluster.STARTUP_MINUTES
    assert cluster.GPU_THROUGHPUT["toy"].gflops == 10 * cluster.CPU_THROUGHPUT["toy"].gflops


def test_toy_family_trains_stacked_as_one_by_one_and_finds_its_dead_units(toy):
    dataset = tiny_dataset(n_train=200, n_test=40, side=4)
    data = TensorData.from_dataset(dataset)
    kwargs = model_kwargs("toy", {"width": 6}, data.input_shape, data.n_classes)
    assert build_model("toy", **kwargs)(torch.zeros(3, *data.input_shape)).shape == (3, 10)
    hp = Hyperparameters(epochs=1, batch_size=32, snapshots=(0, -1))
    together = train_trials("toy", kwargs, data, [0, 1], hp, vectorize=True)
    alone = [train_trials("toy", kwargs, data, [t], hp, vectorize=False) for t in (0, 1)]
    for name, stacked in together.weights.items():
        np.testing.assert_allclose(stacked, np.concatenate([a.weights[name] for a in alone]), atol=1e-5, err_msg=name)

    ds = result_to_dataset(together, model="toy", dataset="tiny", arch="w6", model_kwargs=kwargs,
                           hyperparameters=vars(hp), input_shape=data.input_shape, n_classes=data.n_classes)
    weight, bias = ds["hidden_weight"].values.copy(), ds["hidden_bias"].values.copy()
    weight[1, -1, 2], bias[1, -1, 2] = 0.0, -1.0  # unit 2 of trial 1 never fires
    ds["hidden_weight"], ds["hidden_bias"] = ds["hidden_weight"].copy(data=weight), ds["hidden_bias"].copy(data=bias)
    masks, n_samples, reason = dead_unit_masks(ds, dataset)
    assert reason == "" and n_samples == 200 and list(masks) == ["hidden"]
    assert masks["hidden"][1, 2] and not masks["hidden"][0, 2]
    assert dead_units(ds, dataset)["dead_units"].sel(layer="hidden").values[1] >= 1


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'rnn'; known: dnn, cnn, vit, smallcnn"):
        family("rnn")
    with pytest.raises(ConfigError, match=r"experiments\[0\].model: unknown model 'rnn'"):
        architectures("rnn", {"hidden": 3}, "experiments[0]")


def test_registration_order_is_the_table_order():
    assert MODELS == ("dnn", "cnn", "vit", "smallcnn")


# ------------------------------------------------- the shipped families: counted cost = the old hand count


def hand_count(model, arch, dataset):
    """weightzoo.cluster.network_size as it was counted by hand (the job plans were made with it)."""
    c, h, w = cluster.input_shape(dataset)
    k = 10  # every shipped dataset has 10 classes
    if model == "dnn":
        n = arch["hidden"]
        macs = c * h * w * n + n * n + n * k
        return macs, macs + 2 * n + k, 2 * n + k
    if model == "cnn":
        ch, out = arch["channels"], (h - 2) * (w - 2)
        macs = out * 9 * c * ch + ch * out * k
        return macs, 9 * c * ch + ch + ch * out * k + k, ch * out + k
    patch = arch["patch_size"] or h
    d, ratio, depth = arch["embed_dim"], arch["mlp_ratio"], arch["depth"]
    cls = arch["pool"] == "cls"
    tokens = (h // patch) * (w // patch) + cls
    mlp = int(d * ratio)
    block_macs = tokens * (4 * d * d + 2 * d * mlp) + 2 * tokens * tokens * d
    macs = (tokens - cls) * patch * patch * c * d + depth * block_macs + d * k
    block_params = 4 * d * d + 2 * d * mlp + mlp + 6 * d
    params = patch * patch * c * d + d + cls * d + tokens * d + depth * block_params + 2 * d + d * k + k
    return macs, params, depth * tokens * (8 * d + 2 * mlp + arch["heads"] * tokens)


CONFIGS = ["config/config.yaml", "config/paper.yaml", "config/fmnist.yaml", "tests/config/tiny.yaml",
           "tests/config/fmnist_tiny.yaml"]


@pytest.mark.parametrize("path", CONFIGS)
def test_counted_cost_is_the_hand_count(path):
    cfg = copy.deepcopy(yaml.safe_load(open(path)))
    validate(cfg, schema=SCHEMA)
    seen = set()
    for exp in expand(cfg):
        key = (exp.model, exp.dataset, repr(sorted(exp.arch_params.items())))
        if key not in seen:
            seen.add(key)
            counted = cluster.network_size(exp.model, exp.arch_params, exp.dataset)
            assert counted == hand_count(exp.model, exp.arch_params, exp.dataset), exp.id
    assert seen


def test_counted_cost_of_other_shapes():
    for model, arch, dataset in [("dnn", {"hidden": 1000}, "cifar10"), ("cnn", {"channels": 3}, "digits"),
                                 ("vit", {"patch_size": 4, "embed_dim": 16, "depth": 2, "heads": 4, "mlp_ratio": 1.5,
                                          "pool": "cls"}, "cifar10")]:
        assert cluster.network_size(model, arch, dataset) == hand_count(model, arch, dataset), model


# ------------------------------------------------------------ dead units: the family forward vs torch layers


def test_cnn_dead_channels_match_nn_conv2d():
    torch.manual_seed(0)
    dataset = tiny_dataset(n_train=120, n_test=10, side=6)
    kwargs = {"in_channels": 1, "image_size": 6, "channels": 5, "n_classes": 10}
    nets = [build_model("cnn", **kwargs) for _ in range(3)]
    with torch.no_grad():
        nets[0].conv1.bias[1] = -50.0  # dead
        nets[2].conv1.weight[4] = 0.0
        nets[2].conv1.bias[4] = 0.0  # exactly zero: dead
    state = {name: torch.stack([dict(n.named_parameters())[name].detach() for n in nets]) for name, _ in
             nets[0].named_parameters()}
    ds = result_to_dataset(_result(state), model="cnn", dataset="tiny", arch="c5", model_kwargs=kwargs,
                           hyperparameters={}, input_shape=(1, 6, 6), n_classes=10)
    masks, _, _ = dead_unit_masks(ds, dataset, max_values=300)  # a block of trials at a time
    x = torch.from_numpy(train_inputs(dataset))
    for k, net in enumerate(nets):
        with torch.no_grad():
            expected = (torch.relu(nn.functional.conv2d(x, net.conv1.weight, net.conv1.bias)) == 0).all(-1).all(-1).all(0)
        np.testing.assert_array_equal(masks["conv1"][k], expected.numpy())
    assert masks["conv1"][0, 1] and masks["conv1"][2, 4] and masks["conv1"].sum() >= 2


def _result(state):
    """A TrainResult of one snapshot holding ``state`` (trial, ...) per parameter."""
    from weightzoo.train import TrainResult

    n = len(next(iter(state.values())))
    curve = np.zeros((n, 1))
    return TrainResult(trials=np.arange(n), seeds=np.arange(n), train_loss=curve, train_accuracy=curve,
                       test_loss=curve, test_accuracy=curve, diverged=np.zeros(n, bool),
                       diverged_epoch=np.zeros(n, np.int32), snapshots=[1],
                       weights={name: v.numpy()[:, None] for name, v in state.items()})
