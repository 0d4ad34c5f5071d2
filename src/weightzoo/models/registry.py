"""The table of model families: each family module (dnn.py, cnn.py, vit.py) registers one ``ModelFamily``.

``family(name)`` is the only door; config expansion, training, cluster sizing and the analyses ask the
family instead of keeping tables of their own, so a new family is its module, its schema entry and a test.
"""

import functools
import json
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.func import functional_call, vmap


class ArchError(ValueError):
    """An architecture value that cannot work; ``key`` is the architecture key it is about."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Preset:
    """A named architecture: ``fixed`` values, and the keys still ``free`` to set, with their defaults."""

    fixed: dict
    free: dict = field(default_factory=dict)


def vmapped_forward(network: torch.nn.Module):
    """The forward of K stacked trials as ``torch.func.vmap`` over ``network``'s own forward.

    ``forward(params, x)``: params (K, ...) per name; x (K, batch, C, H, W), or (batch, C, H, W) shared by
    all trials; logits (K, batch, classes).
    """
    per_trial = vmap(lambda p, x: functional_call(network, p, (x,)), in_dims=(0, 0))
    shared = vmap(lambda p, x: functional_call(network, p, (x,)), in_dims=(0, None))

    def forward(params, x):
        return (per_trial if x.dim() == 5 else shared)(params, x)

    return forward


@dataclass(frozen=True)
class ModelFamily:
    """Everything the rest of weightzoo needs to know about one model family.

    ``kwargs(arch, input_shape, n_classes)`` gives the constructor kwargs of ``build`` (what the zoo files store)
    from an architecture of the config and the dataset's (channels, height, width). ``stacked_forward(network)``
    gives a forward for K stacked trials (see ``vmapped_forward``, the default); a hand-written one also takes
    ``on_relu(layer, h)``, called with every post-ReLU activation h (trials, batch, units, *positions) of the
    layers in ``relu_layers``, which the dead-unit check reads.
    """

    name: str
    arch_keys: tuple[str, ...]  # in the order of the architecture grid's product
    label_prefix: dict[str, str]  # architecture key -> prefix of its value in experiment labels (h50)
    build: Callable[..., torch.nn.Module]
    kwargs: Callable[[dict, tuple[int, int, int], int], dict]
    activations: Callable[[dict], int]  # activations per sample from the constructor kwargs (device memory)
    # (overhead µs per trial-sample, GFLOP/s, source) of the vectorised trainer on one CPU thread
    # (weightzoo.cluster.Throughput, docs/benchmarks.md)
    cpu_throughput: tuple[float, float, str]
    stacked_forward: Callable = vmapped_forward
    defaults: dict = field(default_factory=dict)  # architecture values a config may leave out
    presets: dict[str, Preset] = field(default_factory=dict)
    check: Callable[[dict, int, str], None] | None = None  # (params, image side, dataset): raises ArchError
    relu_layers: tuple[str, ...] = ()
    no_relu_reason: str = ""  # why a family without ReLU layers has no dead units
    strength_sign: Callable[[str], int] = lambda layer: 1  # expected sign of node strength vs accuracy
    # choices of the per-trial ``activation`` hyperparameter, the first the default; one entry: fixed, and the
    # constructor takes no ``activation`` (its network hard-codes it)
    nonlinearities: tuple[str, ...] = ("relu",)
    # layers, in order, of a chain in which each layer's outputs are the next one's inputs (conv channels or
    # units; no flatten over positions), so hidden units may be permuted: what weight-space networks (nfn)
    # and canonical unit orders need; () when the family is no such chain
    weight_space_chain: tuple[str, ...] = ()

    def build_for(self, kwargs: dict, activation: str | None = None) -> torch.nn.Module:
        """The network of constructor ``kwargs`` with a trial's ``activation`` (None: the family's default)."""
        if activation is None or self.nonlinearities == (activation,):
            return self.build(**kwargs)
        if activation not in self.nonlinearities:
            raise ValueError(f"model {self.name!r} has activation {' or '.join(self.nonlinearities)}, not {activation!r}")
        return self.build(**kwargs, activation=activation)

    def cost(self, arch: dict, input_shape: tuple[int, int, int], n_classes: int) -> tuple[int, int, int]:
        """(MACs per sample, parameters, activations per sample), counted on the network built on the meta device."""
        return _cost(self.name, json.dumps(arch, sort_keys=True), tuple(input_shape), n_classes)


_FAMILIES: dict[str, ModelFamily] = {}


def register(family: ModelFamily) -> ModelFamily:
    """Add ``family`` to the table (again under the same name: replace it)."""
    _FAMILIES[family.name] = family
    _cost.cache_clear()
    return family


def unregister(name: str):
    """Remove a family (tests that register a toy family)."""
    _FAMILIES.pop(name, None)
    _cost.cache_clear()


def families() -> tuple[ModelFamily, ...]:
    """Every registered family, in registration order (also the order of tables and reports)."""
    return tuple(_FAMILIES.values())


def family(name: str) -> ModelFamily:
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(_FAMILIES)}") from None


@functools.lru_cache(maxsize=None)
def _cost(name: str, arch_json: str, input_shape: tuple[int, int, int], n_classes: int) -> tuple[int, int, int]:
    from torch.utils.flop_counter import FlopCounterMode

    fam = family(name)
    kwargs = fam.kwargs(json.loads(arch_json), input_shape, n_classes)
    with torch.device("meta"):
        network = fam.build(**kwargs)
        x = torch.zeros(1, *input_shape)
    params = sum(p.numel() for p in network.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        network(x)
    # FlopCounterMode counts the matrix products (2 FLOPs per MAC), not elementwise work: that is what the
    # throughput model of weightzoo.cluster was fitted to
    return counter.get_total_flops() // 2, params, fam.activations(kwargs)
