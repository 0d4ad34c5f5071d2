"""The CNN of the paper's Table 1: Conv2d(in, C, 3, no padding) → ReLU → flatten → Linear → classes.

One forward, ``stacked_forward``, serves the nn.Module (one trial), vectorised training (K stacked trials)
and the dead-unit check (its ``on_relu`` hook).
"""

import functools
import math

import torch
from torch import nn

from weightzoo.models.registry import ModelFamily, register

# Largest scratch tensor of the shared (evaluation) path, in floats (64 MB in float32)
WORKSPACE_FLOATS = 1 << 24


def stacked_forward(params, x, workspace=None, on_relu=None):
    """The CNN for stacked parameters by hand: im2col + batched GEMMs, as vmap would but much faster on a CPU.

    ``params``: (trials, ...) per parameter name; ``x`` is (trials, batch, C, H, W) or, shared by all trials,
    (batch, C, H, W); returns (trials, batch, classes). The convolution is an im2col of the input (shared
    inputs: once for all trials) and one batched GEMM of each trial's (channels, in*k*k) kernel against its
    patches, written straight in nn.Conv2d's (channels, H, W) order so that flattening matches the fc layer;
    then ReLU and the stacked fc. Shared inputs only evaluate: with gradients on they take the per-trial path.
    ``on_relu("conv1", h)`` sees the post-ReLU activations (trials, batch, channels, positions).
    """
    if workspace is None:
        workspace = Workspace()
    weight, bias = params["conv1.weight"], params["conv1.bias"]
    fc_weight, fc_bias = params["fc.weight"], params["fc.bias"]
    if x.shape[-3] != weight.shape[2]:
        raise ValueError(f"the input has {x.shape[-3]} channels, the network's conv1 takes {weight.shape[2]}")
    if x.dim() == 4 and torch.is_grad_enabled():
        x = x.expand(len(weight), *x.shape)
    if x.dim() == 5:
        return _StackedCNN.apply(x, weight, bias, fc_weight, fc_bias, workspace, on_relu)
    with torch.no_grad():
        n_trials, channels = bias.shape
        n_cols, side = weight[0].numel() // channels, x.shape[-1] - weight.shape[-1] + 1
        per_sample = n_trials * channels * side * side
        chunk = max(1, min(len(x), WORKSPACE_FLOATS // per_sample))
        logits = []
        for start in range(0, len(x), chunk):
            xc = x[start : start + chunk]
            cols = _im2col(xc, weight.shape[-1], workspace.take("cols", (len(xc), n_cols, side * side), x))
            h = workspace.take("h", (n_trials, len(xc), channels, side * side), x)
            for k in range(n_trials):  # one (channels, in*k*k) x (in*k*k, L) GEMM per sample, shared patches
                torch.matmul(weight[k].view(channels, n_cols), cols, out=h[k])
            h.add_(bias.view(n_trials, 1, channels, 1)).relu_()
            if on_relu is not None:
                on_relu("conv1", h)
            logits.append(torch.baddbmm(fc_bias.unsqueeze(1), h.view(n_trials, len(xc), -1), fc_weight.transpose(1, 2)))
            workspace.give("cols", cols)
            workspace.give("h", h)
        return torch.cat(logits, 1)


class Workspace:
    """Scratch tensors of the stacked CNN, one per role, reused from step to step.

    A CNN activation of K trials is tens of MB; glibc serves each fresh allocation that size with a new
    mmap, and touching its pages cost as much as the arithmetic (a ReLU over 69 MB: 59 ms fresh, 10 ms
    reused). A buffer is out of the pool from ``take`` until ``give``, so a step never shares one.
    """

    def __init__(self):
        self.free = {}

    def take(self, role, shape, like):
        n = math.prod(shape)
        buf = self.free.pop(role, None)
        if buf is None or buf.numel() < n or buf.dtype != like.dtype or buf.device != like.device:
            buf = torch.empty(n, dtype=like.dtype, device=like.device)
        return buf[:n].view(shape)

    def give(self, role, tensor):
        flat = tensor._base if tensor._base is not None else tensor
        old = self.free.get(role)
        if old is None or old.numel() <= flat.numel():
            self.free[role] = flat


def _im2col(x, kernel, out):
    """(N, C, H, W) -> ``out`` (N, C*k*k, L) patches in F.unfold's order, as one strided copy (no padding)."""
    n, c, height, width = x.shape
    s = x.stride()
    side_h, side_w = height - kernel + 1, width - kernel + 1
    patches = x.as_strided((n, c, kernel, kernel, side_h, side_w), (s[0], s[1], s[2], s[3], s[2], s[3]))
    out.view(n, c, kernel, kernel, side_h, side_w).copy_(patches)
    return out


class _StackedCNN(torch.autograd.Function):
    """conv (im2col + batched GEMM) -> ReLU -> fc for K stacked trials on per-trial inputs, one autograd node.

    One node rather than conv, ReLU and a stacked linear layer so that the big tensors (patches, activations
    and their gradient) come from the workspace: ReLU is done in place and its backward masks the fc's
    input gradient in place. The input needs no gradient.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, fc_weight, fc_bias, workspace, on_relu):
        n_trials, batch = x.shape[:2]
        channels, kernel = weight.shape[1], weight.shape[-1]
        n_cols, side = weight[0].numel() // channels, x.shape[-1] - kernel + 1
        n = n_trials * batch
        cols = _im2col(x.reshape(n, *x.shape[2:]), kernel, workspace.take("cols", (n, n_cols, side * side), x))
        h = workspace.take("h", (n, channels, side * side), x)
        a = weight.view(n_trials, 1, channels, n_cols).expand(n_trials, batch, channels, n_cols).reshape(n, channels, n_cols)
        b = bias.view(n_trials, 1, channels).expand(n_trials, batch, channels).reshape(n, channels, 1)
        torch.baddbmm(b, a, cols, out=h)
        h.relu_()
        if on_relu is not None:
            on_relu("conv1", h.view(n_trials, batch, channels, -1))
        h = h.view(n_trials, batch, -1)
        ctx.save_for_backward(weight, fc_weight)
        ctx.buffers, ctx.workspace = (cols, h), workspace
        return torch.baddbmm(fc_bias.unsqueeze(1), h, fc_weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):
        weight, fc_weight = ctx.saved_tensors
        if ctx.buffers is None:
            raise RuntimeError("_StackedCNN reuses its buffers: backward through it only once")
        (cols, h), workspace = ctx.buffers, ctx.workspace
        ctx.buffers = None
        n_trials, batch, _ = h.shape
        channels = weight.shape[1]
        grad_fc_weight, grad_fc_bias = torch.bmm(grad.transpose(1, 2), h), grad.sum(1)
        grad_h = torch.bmm(grad, fc_weight, out=workspace.take("grad", h.shape, h))
        torch.ops.aten.threshold_backward.grad_input(grad_h, h, 0, grad_input=grad_h)  # ReLU, in place
        grad_h = grad_h.view(n_trials * batch, channels, -1)
        grad_bias = grad_h.view(n_trials, batch, channels, -1).sum(3).sum(1)
        grad_weight = torch.bmm(grad_h, cols.transpose(1, 2)).view(n_trials, batch, -1).sum(1).view_as(weight)
        workspace.give("cols", cols)
        workspace.give("h", h)
        workspace.give("grad", grad_h)
        return None, grad_weight, grad_bias, grad_fc_weight, grad_fc_bias, None, None


class CNN(nn.Module):
    """Conv2d(in_ch, C, 3, no padding) → ReLU → flatten → Linear → classes (paper Table 1)."""

    def __init__(self, in_channels: int, image_size: int, channels: int, n_classes: int = 10, kernel_size: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size)
        side = image_size - kernel_size + 1
        self.fc = nn.Linear(channels * side * side, n_classes)
        self.workspace = Workspace()

    def forward(self, x):
        params = {name: p.unsqueeze(0) for name, p in self.named_parameters()}
        return stacked_forward(params, x, self.workspace)[0]


def model_kwargs(arch: dict, input_shape: tuple[int, int, int], n_classes: int) -> dict:
    channels, height, width = input_shape
    if height != width:
        raise ValueError(f"cnn needs square images, got {height}x{width}")
    return {"in_channels": channels, "image_size": height, "channels": arch["channels"], "n_classes": n_classes}


def activations(kwargs: dict) -> int:
    side = kwargs["image_size"] - kwargs.get("kernel_size", 3) + 1
    return kwargs["channels"] * side * side + kwargs["n_classes"]


FAMILY = register(ModelFamily(
    name="cnn",
    arch_keys=("channels",),
    label_prefix={"channels": "c"},
    build=CNN,
    kwargs=model_kwargs,
    activations=activations,
    # "wz vec wall" (1 thread) of docs/benchmarks.md on a loaded 2-core AMD EPYC: C=4/16 measured
    # 26.0k/8.9k trial-samples/s, modelled 26.0k/8.9k
    cpu_throughput=(13.9, 17.4, "docs/benchmarks.md, CPU 1 thread, cnn:4/16"),
    stacked_forward=lambda network: functools.partial(stacked_forward, workspace=Workspace()),
    relu_layers=("conv1",),
))
