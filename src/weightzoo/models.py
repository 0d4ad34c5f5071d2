"""The three network families of the paper (Table 1): DNN, CNN and ViT.

A model is fully described by ``build_model(model, **kwargs)``; the kwargs are stored in every zoo
file so any trial can be rebuilt (``weightzoo.store.load_network``).
"""

import torch
from torch import nn

MODELS = ("dnn", "cnn", "vit")
VIT_POOLS = ("cls", "mean")


class DNN(nn.Module):
    """input → h1 → h2 → classes, ReLU (paper Table 1: h from 5 to 200, to 1000 on CIFAR-10)."""

    def __init__(self, in_features: int, hidden: int | list[int], n_classes: int = 10):
        super().__init__()
        h1, h2 = (hidden, hidden) if isinstance(hidden, int) else hidden
        self.fc1 = nn.Linear(in_features, h1)
        self.fc2 = nn.Linear(h1, h2)
        self.fc3 = nn.Linear(h2, n_classes)

    def forward(self, x):
        x = torch.relu(self.fc1(x.flatten(-3)))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class CNN(nn.Module):
    """Conv2d(in_ch, C, 3, no padding) → ReLU → flatten → Linear → classes (paper Table 1)."""

    def __init__(self, in_channels: int, image_size: int, channels: int, n_classes: int = 10, kernel_size: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size)
        side = image_size - kernel_size + 1
        self.fc = nn.Linear(channels * side * side, n_classes)

    def forward(self, x):
        return self.fc(torch.relu(self.conv1(x)).flatten(-3))


def _vit(
    in_channels: int,
    image_size: int,
    patch_size: int,
    embed_dim: int,
    depth: int,
    heads: int,
    mlp_ratio: float = 4.0,
    pool: str = "cls",
    n_classes: int = 10,
) -> nn.Module:
    """timm's VisionTransformer (patch embedding, position embedding, ``depth`` timm ``Block``s, head)."""
    from timm.layers import set_fused_attn
    from timm.models.vision_transformer import VisionTransformer

    # The fused SDPA kernel has no torch.func.vmap batching rule; the explicit softmax(qk^T)v path does.
    set_fused_attn(False)
    if image_size % patch_size:
        raise ValueError(f"patch_size {patch_size} does not divide image_size {image_size}")
    if embed_dim % heads:
        raise ValueError(f"heads {heads} does not divide embed_dim {embed_dim}")
    if pool not in VIT_POOLS:
        raise ValueError(f"pool must be one of {VIT_POOLS}, got {pool!r}")
    return VisionTransformer(
        img_size=image_size,
        patch_size=patch_size,
        in_chans=in_channels,
        num_classes=n_classes,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=heads,
        mlp_ratio=mlp_ratio,
        class_token=pool == "cls",
        global_pool="token" if pool == "cls" else "avg",
        # No qkv bias: the key bias has an exactly zero gradient (softmax ignores a shift shared by all
        # keys), so Adam would turn rounding noise into lr-sized steps of a parameter that means nothing.
        qkv_bias=False,
        weight_init="skip",
    )


def build_model(model: str, **kwargs) -> nn.Module:
    """Construct an (un-initialised) network; ``kwargs`` are exactly what the zoo files store."""
    if model == "dnn":
        return DNN(**kwargs)
    if model == "cnn":
        return CNN(**kwargs)
    if model == "vit":
        return _vit(**kwargs)
    raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")


def model_kwargs(model: str, arch: dict, input_shape: tuple[int, int, int], n_classes: int) -> dict:
    """Constructor kwargs from an architecture (config) and the dataset's (channels, height, width)."""
    channels, height, width = input_shape
    if model == "dnn":
        return {"in_features": channels * height * width, "hidden": arch["hidden"], "n_classes": n_classes}
    if height != width:
        raise ValueError(f"{model} needs square images, got {height}x{width}")
    if model == "cnn":
        return {"in_channels": channels, "image_size": height, "channels": arch["channels"], "n_classes": n_classes}
    if model == "vit":
        keys = ("patch_size", "embed_dim", "depth", "heads", "mlp_ratio", "pool")
        return {"in_channels": channels, "image_size": height, **{k: arch[k] for k in keys}, "n_classes": n_classes}
    raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")


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

