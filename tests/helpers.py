"""Small prepared datasets in the layout of docs/data-format.md, for training tests."""

import numpy as np
import xarray as xr


def tiny_dataset(n_train=300, n_test=100, side=8, channels=1, n_classes=10, seed=0):
    """Learnable synthetic images: each class brightens its own block of pixels."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    labels = rng.integers(0, n_classes, n)
    images = rng.integers(0, 80, (n, channels, side, side))
    flat = images.reshape(n, channels, -1)
    block = side * side // n_classes
    for c in range(n_classes):
        flat[labels == c, :, c * block : (c + 1) * block] += 150
    images = np.clip(images, 0, 255).astype(np.uint8)
    split = np.r_[np.zeros(n_train), np.ones(n_test)].astype(np.uint8)
    train = images[split == 0] / 255.0
    return xr.Dataset(
        {
            "images": (("sample", "channel", "height", "width"), images),
            "labels": (("sample",), labels.astype(np.uint8)),
            "split": (("sample",), split),
            "mean": (("channel",), train.mean(axis=(0, 2, 3)).astype(np.float32)),
            "std": (("channel",), train.std(axis=(0, 2, 3)).astype(np.float32)),
        },
        attrs={"dataset": "tiny", "n_classes": n_classes, "source": "synthetic"},
    )


def permute_hidden(params, generator):
    """nfn ``WeightSpaceFeatures`` (weights [B, C, out, in, ...]) with every hidden layer's units of every network
    randomly permuted (and the next layer's inputs with them): the same functions."""
    import torch
    from nfn.common import WeightSpaceFeatures

    weights, biases = list(params.weights), list(params.biases)

    def along(perm, like, dim):  # perm (B, n) as a gather index of ``like`` along ``dim``
        shape = [1] * like.dim()
        shape[0], shape[dim] = perm.shape
        return perm.view(shape).expand_as(like)

    for level in range(len(weights) - 1):
        perm = torch.stack([torch.randperm(weights[level].shape[2], generator=generator) for _ in weights[level]])
        weights[level] = weights[level].gather(2, along(perm, weights[level], 2))
        biases[level] = biases[level].gather(2, along(perm, biases[level], 2))
        weights[level + 1] = weights[level + 1].gather(3, along(perm, weights[level + 1], 3))
    return WeightSpaceFeatures(weights, biases)
