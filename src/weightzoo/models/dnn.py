"""The DNN of the paper's Table 1: input → h1 → h2 → classes, ReLU after both hidden layers.

One forward, ``stacked_forward``, serves the nn.Module (one trial), vectorised training (K stacked trials)
and the dead-unit check (its ``on_relu`` hook).
"""

import torch
from torch import nn

from weightzoo.models.registry import ModelFamily, register


def stacked_forward(params, x, on_relu=None):
    """The DNN for stacked parameters by hand (batched matmuls), as vmap would but with less overhead.

    ``params``: (trials, ...) per parameter name; ``x`` is (trials, batch, C, H, W) or, shared by all trials,
    (batch, C, H, W); returns (trials, batch, classes). Shared inputs go through the first layer as one wide
    GEMM against all trials' weights. ``on_relu(layer, h)`` sees each hidden layer's output (trials, batch, units).
    """
    layers = [name[: -len(".weight")] for name in params if name.endswith(".weight")]
    h = x.flatten(-3)
    n_in = params[f"{layers[0]}.weight"].shape[-1]
    if h.shape[-1] != n_in:
        raise ValueError(f"the input has {h.shape[-1]} values per sample, the network's {layers[0]} takes {n_in}")
    for i, layer in enumerate(layers):
        weight, bias = params[f"{layer}.weight"], params[f"{layer}.bias"]
        if h.dim() == 2:
            n_trials, n_out, _ = weight.shape
            h = (h @ weight.flatten(0, 1).T).view(len(h), n_trials, n_out).transpose(0, 1) + bias.unsqueeze(1)
        else:
            h = _StackedLinear.apply(h, weight, bias)
        if i < len(layers) - 1:
            h = torch.relu(h)
            if on_relu is not None:
                on_relu(layer, h)
    return h


class _StackedLinear(torch.autograd.Function):
    """(trials, batch, in) x (trials, out, in) weights + (trials, out) bias -> (trials, batch, out).

    Autograd's own backward of ``baddbmm(bias, x, weight.mT)`` forms the weight gradient as x^T g; forming
    it as g^T x, already in the weight's layout, is ~3x faster on the CPU for narrow layers (784 -> 5).
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        return grad_x, torch.bmm(grad.transpose(1, 2), x), grad.sum(1)


class DNN(nn.Module):
    """input → h1 → h2 → classes, ReLU (paper Table 1: h from 5 to 200, to 1000 on CIFAR-10)."""

    def __init__(self, in_features: int, hidden: int | list[int], n_classes: int = 10):
        super().__init__()
        h1, h2 = (hidden, hidden) if isinstance(hidden, int) else hidden
        self.fc1 = nn.Linear(in_features, h1)
        self.fc2 = nn.Linear(h1, h2)
        self.fc3 = nn.Linear(h2, n_classes)

    def forward(self, x):
        return stacked_forward({name: p.unsqueeze(0) for name, p in self.named_parameters()}, x)[0]


def model_kwargs(arch: dict, input_shape: tuple[int, int, int], n_classes: int) -> dict:
    channels, height, width = input_shape
    return {"in_features": channels * height * width, "hidden": arch["hidden"], "n_classes": n_classes}


def activations(kwargs: dict) -> int:
    hidden = kwargs["hidden"]
    return (2 * hidden if isinstance(hidden, int) else sum(hidden)) + kwargs["n_classes"]


FAMILY = register(ModelFamily(
    name="dnn",
    arch_keys=("hidden",),
    label_prefix={"hidden": "h"},
    build=DNN,
    kwargs=model_kwargs,
    activations=activations,
    # "wz vec wall" (1 thread) of docs/benchmarks.md on a loaded 2-core AMD EPYC: h=5/50/200 measured
    # 139k/69k/21k trial-samples/s, modelled 139k/63k/20k
    cpu_throughput=(6.3, 37.0, "docs/benchmarks.md, CPU 1 thread, dnn:5/50/200"),
    stacked_forward=lambda network: stacked_forward,
    relu_layers=("fc1", "fc2"),
    weight_space_chain=("fc1", "fc2", "fc3"),
))
