"""Method (e) of the accuracy-prediction benchmark: a permutation-invariant weight-space network.

nfn's invariant network (Zhou et al. 2023, their predict-generalisation model without its extras): two
equivariant layers (``HNPLinear``, or ``NPLinear`` with ``layer="np"``) with ReLU, the matching invariant pool,
an MLP to one number. Trained with Adam on the MSE of the standardised target. Each layer's weights and
biases are first divided by their std over the training networks: one scale per layer and kind keeps the
layer's symmetries (nfn's own option, an elementwise mean/std, would not), and brings the layers of a
zoo to one scale whatever their width or init.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from nfn.common import NetworkSpec, WeightSpaceFeatures
from nfn.layers import HNPLinear, HNPPool, NPLinear, NPPool, TupleOp
from torch import nn

from weightzoo.export.dataset import WeightSpaceDataset

LAYERS = {"hnp": (HNPLinear, HNPPool), "np": (NPLinear, NPPool)}
PREDICT_BATCH = 256


@dataclass(frozen=True)
class Settings:
    """``analysis.weight_space_net`` of the config (its ``enabled`` and ``target`` are the job's)."""

    layer: str = "hnp"
    channels: int = 8
    head_width: int = 64
    epochs: int = 50
    lr: float = 1e-3
    batch_size: int = 32
    max_parameters: int = 5_000_000
    seed: int = 0

    @classmethod
    def from_config(cls, block: dict) -> "Settings":
        names = {f.name for f in dataclasses.fields(cls)}
        settings = cls(**{k: v for k, v in block.items() if k in names})
        if settings.layer not in LAYERS:
            raise ValueError(f"analysis.weight_space_net.layer {settings.layer!r}: choose one of {list(LAYERS)}")
        return settings


class InvariantNetwork(nn.Module):
    """Weight space → one number: ``Layer(spec, 1, c)``, ReLU, ``Layer(spec, c, c)``, ReLU, pool, MLP."""

    def __init__(self, spec: NetworkSpec, settings: Settings, weight_scales=None, bias_scales=None):
        super().__init__()
        layer, pool = LAYERS[settings.layer]
        c = settings.channels
        n_layers = len(spec)
        self.register_buffer("weight_scales", torch.ones(n_layers) if weight_scales is None else weight_scales)
        self.register_buffer("bias_scales", torch.ones(n_layers) if bias_scales is None else bias_scales)
        self.equivariant = nn.Sequential(layer(spec, 1, c), TupleOp(nn.ReLU()), layer(spec, c, c), TupleOp(nn.ReLU()))
        self.pool = pool(spec)
        self.head = nn.Sequential(nn.Flatten(1), nn.Linear(c * pool.get_num_outs(spec), settings.head_width), nn.ReLU(),
                                  nn.Linear(settings.head_width, 1))

    def forward(self, params: WeightSpaceFeatures) -> torch.Tensor:
        scaled = WeightSpaceFeatures(tuple(w / s for w, s in zip(params.weights, self.weight_scales)),
                                     tuple(b / s for b, s in zip(params.biases, self.bias_scales)))
        return self.head(self.pool(self.equivariant(scaled))).squeeze(-1)


def n_parameters(spec: NetworkSpec, settings: Settings) -> int:
    """Parameters of the network for ``spec``, counted without allocating them."""
    with torch.device("meta"):
        return sum(p.numel() for p in InvariantNetwork(spec, settings).parameters())


def layer_scales(dataset: WeightSpaceDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Std of each layer's weights, resp. biases, over all networks of ``dataset`` (1 where it is 0)."""
    def std(tensors):
        values = torch.stack([t.double().std() for t in tensors])
        return torch.where(values > 1e-12, values, torch.ones_like(values)).float()

    return std(dataset.weights), std(dataset.biases)


@dataclass
class Fitted:
    network: InvariantNetwork
    target_mean: float
    target_std: float
    epochs: int

    @torch.no_grad()
    def predict(self, dataset: WeightSpaceDataset) -> np.ndarray:
        self.network.eval()
        parts = [self.network(dataset.batch(range(i, min(i + PREDICT_BATCH, len(dataset))))[0])
                 for i in range(0, len(dataset), PREDICT_BATCH)]
        return (torch.cat(parts).double() * self.target_std + self.target_mean).numpy()


def fit(train: WeightSpaceDataset, settings: Settings) -> Fitted:
    """Train the network on ``train`` (seeded by ``settings.seed``: the same data give the same network)."""
    torch.manual_seed(settings.seed)
    order = torch.Generator().manual_seed(settings.seed)
    network = InvariantNetwork(train.network_spec, settings, *layer_scales(train))
    mean, std = float(train.targets.mean()), float(train.targets.std()) if len(train) > 1 else 1.0
    std = std if std > 1e-12 else 1.0
    targets = (train.targets - mean) / std
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.lr)
    network.train()
    for _ in range(settings.epochs):
        for index in torch.randperm(len(train), generator=order).split(settings.batch_size):
            params, _ = train.batch(index)
            loss = nn.functional.mse_loss(network(params), targets[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return Fitted(network, mean, std, settings.epochs)


def cross_validate(dataset: WeightSpaceDataset, folds, settings: Settings) -> tuple[np.ndarray, dict]:
    """For each fold, train on the other folds and predict this one. Returns the predictions (NaN where a
    fold could not be trained on) and {fold: why} for those folds."""
    folds = np.asarray(folds)
    predicted, skipped = np.full(len(dataset), np.nan), {}
    for fold in np.unique(folds):
        test, train = np.flatnonzero(folds == fold), np.flatnonzero(folds != fold)
        if len(train) < 2:
            skipped[fold.item()] = f"{len(train)} training networks outside fold {fold}"
            continue
        predicted[test] = fit(dataset.subset(train), settings).predict(dataset.subset(test))
    return predicted, skipped
