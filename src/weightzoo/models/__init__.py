"""The network families of the paper (Table 1: DNN, CNN, ViT) and the Small CNN Zoo's, one module each, in a registry.

A model is fully described by ``build_model(model, **kwargs)``; the kwargs are stored in every zoo
file so any trial can be rebuilt (``weightzoo.io.store.load_network``). Everything else the package knows
about a family (architecture keys, cost, stacked forward, ReLU layers, ...) is its ``ModelFamily``.
"""

import torch
from torch import nn

# Each registers its family; the import order is the registration order, which tables and reports follow.
from weightzoo.models import dnn, cnn, vit, smallcnn  # noqa: F401, I001
from weightzoo.models.registry import ArchError, ModelFamily, Preset, families, family, register, unregister

__all__ = ["MODELS", "VIT_POOLS", "ArchError", "ModelFamily", "Preset", "build_model", "families", "family",
           "init_normal_", "model_kwargs", "register", "unregister"]

MODELS = tuple(f.name for f in families())
VIT_POOLS = vit.POOLS


def build_model(model: str, activation: str | None = None, **kwargs) -> nn.Module:
    """Construct an (un-initialised) network; ``kwargs`` are exactly what the zoo files store, ``activation``
    the trial's (its ``activation`` coordinate; None: the family's default)."""
    return family(model).build_for(kwargs, activation)


def model_kwargs(model: str, arch: dict, input_shape: tuple[int, int, int], n_classes: int) -> dict:
    """Constructor kwargs from an architecture (config) and the dataset's (channels, height, width)."""
    return family(model).kwargs(arch, input_shape, n_classes)


@torch.no_grad()
def init_normal_(net: nn.Module, std: float, generator: torch.Generator) -> nn.Module:
    """Paper init: every weight matrix/kernel and token/position embedding ~ N(0, std²), biases 0.

    LayerNorm scales stay 1 and shifts 0: a random LayerNorm scale is not what "normal init" means.
    Draws follow ``named_parameters()`` order, so a seed fixes the whole network.
    """
    norm_params = {
        id(p) for m in net.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters(recurse=False)
    }
    for name, param in net.named_parameters():
        if id(param) in norm_params:
            param.fill_(1.0 if name.endswith("weight") else 0.0)
        elif name.endswith("bias"):
            param.zero_()
        else:
            param.copy_(torch.randn(param.shape, generator=generator) * std)
    return net
