"""The Small CNN Zoo's network (Unterthiner et al. 2020): three 3x3 stride-2 convolutions of 16 channels, ReLU
or tanh, global average pooling, a dense layer to the classes; 4,970 parameters on 28x28 grey images.

Padding is 1 on every side (28 -> 14 -> 7 -> 4); TensorFlow's "same" padding of the original pads the bottom
and right only, which changes no parameter count and only which border pixels the kernels see.

One forward, ``stacked_forward``, serves the nn.Module (one trial), vectorised training (K stacked trials)
and the dead-unit check (its ``on_relu`` hook).
"""

import functools

import torch
import torch.nn.functional as F
from torch import nn

from weightzoo.models.registry import ModelFamily, register

CONVS = ("conv1", "conv2", "conv3")
NONLINEARITIES = {"relu": torch.relu, "tanh": torch.tanh}
KERNEL, STRIDE, PADDING = 3, 2, 1


EVAL_CHUNK = 500  # samples per convolution call when evaluating: 4x faster per sample than 2,000 on a CPU


def stacked_forward(params, x, activation="relu", on_relu=None, grouped=None):
    """The network for stacked parameters: ``params`` (trials, ...) per parameter name; ``x`` is (trials,
    batch, C, H, W) or, shared by all trials, (batch, C, H, W); returns (trials, batch, classes).

    On a GPU (or ``grouped=True``) all trials' convolutions are one grouped convolution each (trials as
    groups), one kernel for the whole stack. On a CPU the stack runs trial by trial through oneDNN's direct
    convolution: at 16 channels on batches of 100 that is 1.6x faster than the grouped convolution and 4x
    faster than unfold + GEMM (docs/benchmarks.md), and the Adam step and the data stay stacked.
    ``on_relu(layer, h)`` sees post-ReLU activations (trials, batch, channels, positions).
    """
    act = NONLINEARITIES[activation]
    in_channels = params["conv1.weight"].shape[2]
    if x.shape[-3] != in_channels:
        raise ValueError(f"the input has {x.shape[-3]} channels, the network's conv1 takes {in_channels}")
    grouped = x.is_cuda if grouped is None else grouped
    hook = on_relu if activation == "relu" else None
    if grouped:
        pooled = _grouped_features(params, x, act, hook)
    else:
        pooled = _trialwise_features(params, x, act, hook)
    return torch.baddbmm(params["fc.bias"].unsqueeze(1), pooled, params["fc.weight"].transpose(1, 2))


def _trialwise_features(params, x, act, on_relu):
    """(trials, batch, channels) pooled features, one trial at a time (shared inputs in EVAL_CHUNK pieces)."""
    n_trials = params["conv1.weight"].shape[0]
    shared = x.dim() == 4
    if shared and not torch.is_grad_enabled() and len(x) > EVAL_CHUNK:
        return torch.cat([_trialwise_features(params, x[i : i + EVAL_CHUNK], act, on_relu)
                          for i in range(0, len(x), EVAL_CHUNK)], 1)
    pooled, seen = [], {layer: [] for layer in CONVS}
    for k in range(n_trials):
        h = x if shared else x[k]
        for layer in CONVS:
            h = act(F.conv2d(h, params[f"{layer}.weight"][k], params[f"{layer}.bias"][k], STRIDE, PADDING))
            if on_relu is not None:
                seen[layer].append(h.flatten(2))
        pooled.append(h.mean((2, 3)))
    if on_relu is not None:
        for layer in CONVS:
            on_relu(layer, torch.stack(seen[layer]))
    return torch.stack(pooled)


def _grouped_features(params, x, act, on_relu):
    """(trials, batch, channels) pooled features, each convolution grouped over the trials."""
    n_trials = params["conv1.weight"].shape[0]
    if x.dim() == 4:  # shared: the first convolution is one plain convolution with every trial's kernels
        h = act(F.conv2d(x, params["conv1.weight"].flatten(0, 1), params["conv1.bias"].flatten(), STRIDE, PADDING))
    else:  # (trials, batch, C, H, W) -> (batch, trials x C, H, W)
        h = x.transpose(0, 1).flatten(1, 2)
        h = act(F.conv2d(h, params["conv1.weight"].flatten(0, 1), params["conv1.bias"].flatten(), STRIDE, PADDING,
                         groups=n_trials))
    batch = h.shape[0]
    if on_relu is not None:
        on_relu("conv1", h.view(batch, n_trials, -1, h.shape[-2] * h.shape[-1]).transpose(0, 1))
    for layer in CONVS[1:]:
        weight, bias = params[f"{layer}.weight"], params[f"{layer}.bias"]
        h = act(F.conv2d(h, weight.flatten(0, 1), bias.flatten(), STRIDE, PADDING, groups=n_trials))
        if on_relu is not None:
            on_relu(layer, h.view(batch, n_trials, -1, h.shape[-2] * h.shape[-1]).transpose(0, 1))
    return h.mean((2, 3)).view(batch, n_trials, -1).transpose(0, 1)


class SmallCNN(nn.Module):
    """conv(C -> 16, 3x3, stride 2) x 3 with ReLU or tanh -> global average pool -> dense to the classes."""

    def __init__(self, in_channels: int, channels: int = 16, n_classes: int = 10, activation: str = "relu"):
        super().__init__()
        if activation not in NONLINEARITIES:
            raise ValueError(f"smallcnn activation {activation!r}: choose one of {list(NONLINEARITIES)}")
        self.activation = activation
        self.conv1 = nn.Conv2d(in_channels, channels, KERNEL, STRIDE, PADDING)
        self.conv2 = nn.Conv2d(channels, channels, KERNEL, STRIDE, PADDING)
        self.conv3 = nn.Conv2d(channels, channels, KERNEL, STRIDE, PADDING)
        self.fc = nn.Linear(channels, n_classes)

    def forward(self, x):
        params = {name: p.unsqueeze(0) for name, p in self.named_parameters()}
        return stacked_forward(params, x, self.activation)[0]


def model_kwargs(arch: dict, input_shape: tuple[int, int, int], n_classes: int) -> dict:
    return {"in_channels": input_shape[0], "channels": arch["channels"], "n_classes": n_classes}


def activations(kwargs: dict) -> int:
    # 28x28 input: 14x14, 7x7 and 4x4 feature maps (an upper bound for smaller images)
    return kwargs["channels"] * (14 * 14 + 7 * 7 + 4 * 4) + kwargs["n_classes"]


def _stacked(network):
    return functools.partial(stacked_forward, activation=network.activation)


FAMILY = register(ModelFamily(
    name="smallcnn",
    arch_keys=("channels",),
    label_prefix={"channels": "c"},
    build=SmallCNN,
    kwargs=model_kwargs,
    activations=activations,
    # "wz vec" (1 thread, K = 16) of docs/benchmarks.md on a loaded 2-core AMD EPYC: 24.7k trial-samples/s at
    # 178k MACs per sample (6,000 train / 7,000 evaluated samples), modelled 24.7k (one point: no overhead term)
    cpu_throughput=(0.0, 36.7, "docs/benchmarks.md, CPU 1 thread, smallcnn:16"),
    stacked_forward=_stacked,
    defaults={"channels": 16},
    relu_layers=CONVS,
    nonlinearities=tuple(NONLINEARITIES),
    weight_space_chain=(*CONVS, "fc"),
))
