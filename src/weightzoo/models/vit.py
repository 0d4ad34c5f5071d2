"""The ViT: timm's VisionTransformer (patch embedding, position embedding, ``depth`` timm Blocks, head).

It has no ReLU layers, and trains stacked under ``torch.func.vmap`` of timm's own forward.
"""

from torch import nn

from weightzoo.models.registry import ArchError, ModelFamily, Preset, register

POOLS = ("cls", "mean")
DEFAULTS = {"patch_size": 4, "embed_dim": 32, "depth": 1, "heads": 2, "mlp_ratio": 2.0, "pool": "cls"}
# Our reading of the paper's Table 1 ViT (config/README.md): one encoder block of width 784, the
# whole image as a single token, mean pooling, then FC 784 → 10. patch_size 0 = the image side.
PAPER = {"patch_size": 0, "embed_dim": 784, "depth": 1, "mlp_ratio": 4.0, "pool": "mean"}


def build(
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
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
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


def resolved_arch(params: dict, image_side: int) -> dict:
    """Resolve ``patch_size: 0`` (the paper preset's whole image as one token)."""
    if params.get("patch_size") == 0:
        return {**params, "patch_size": image_side}
    return params


def model_kwargs(arch: dict, input_shape: tuple[int, int, int], n_classes: int) -> dict:
    channels, height, width = input_shape
    if height != width:
        raise ValueError(f"vit needs square images, got {height}x{width}")
    arch = resolved_arch(arch, height)
    keys = ("patch_size", "embed_dim", "depth", "heads", "mlp_ratio", "pool")
    return {"in_channels": channels, "image_size": height, **{k: arch[k] for k in keys}, "n_classes": n_classes}


def check(params: dict, image_side: int, dataset: str):
    patch = params["patch_size"] or image_side
    if image_side % patch:
        raise ArchError("patch_size", f"{patch} does not divide the {image_side}x{image_side} images of {dataset!r}")
    if params["embed_dim"] % params["heads"]:
        raise ArchError("heads", f"{params['heads']} does not divide embed_dim {params['embed_dim']}")


def activations(kwargs: dict) -> int:
    """Per block: the tokens' qkv, projections, norms and MLP, and each head's attention matrix (an estimate)."""
    d, mlp = kwargs["embed_dim"], int(kwargs["embed_dim"] * kwargs["mlp_ratio"])
    tokens = (kwargs["image_size"] // kwargs["patch_size"]) ** 2 + (kwargs["pool"] == "cls")
    return kwargs["depth"] * tokens * (8 * d + 2 * mlp + kwargs["heads"] * tokens)


FAMILY = register(ModelFamily(
    name="vit",
    arch_keys=("patch_size", "embed_dim", "depth", "heads", "mlp_ratio", "pool"),
    label_prefix={"patch_size": "p", "embed_dim": "d", "depth": "depth", "heads": "heads", "mlp_ratio": "mlp",
                  "pool": "pool"},
    build=build,
    kwargs=model_kwargs,
    activations=activations,
    # "wz vec wall" (1 thread) of docs/benchmarks.md (width 16, 16+1 tokens): 7.0k trial-samples/s
    # measured and modelled; GEMM rate of the dnn
    cpu_throughput=(130.0, 37.0, "docs/benchmarks.md, CPU 1 thread, vit (GEMM rate of the dnn)"),
    defaults=DEFAULTS,
    presets={"paper": Preset(fixed=PAPER, free={"heads": [2, 4, 8, 16]})},
    check=check,
    nonlinearities=("gelu",),
    no_relu_reason="the ViT's MLP uses GELU, which is nonzero almost everywhere: no unit is dead in the ReLU sense",
    # attention layers: node strength expected to fall with accuracy; the others: no expectation
    strength_sign=lambda layer: -1 if "attn" in layer else 0,
))
