"""weightzoo: train populations of small networks and characterise their learnable parameters.

The public API (imported on first use, so that reading a config does not import torch):

- ``open_zoo(path)``: a gathered zoo file as a lazy ``xarray.Dataset`` (weights, curves, provenance);
- ``load_network(path, trial, snapshot=-1)``: one trained network of a zoo, rebuilt as a ``torch.nn.Module``;
- ``read_features(paths)``: the per-trial features of one or more experiments, checked and pooled;
- ``build_model(model, **kwargs)``, ``MODELS``: the model-family registry;
- ``DATASETS``, ``dataset_spec(name)``: the dataset registry;
- ``METRICS``, ``layer_metrics(zoo, family)``: the per-layer metric registry and its values for every trial;
- ``claims_table(features)``: the paper's claims tested on features, every scope.
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "open_zoo": "weightzoo.io.store",
    "load_network": "weightzoo.io.store",
    "read_features": "weightzoo.analysis.features",
    "build_model": "weightzoo.models",
    "MODELS": "weightzoo.models",
    "DATASETS": "weightzoo.data",
    "dataset_spec": ("weightzoo.data", "spec"),
    "METRICS": "weightzoo.analysis.metrics",
    "layer_metrics": "weightzoo.analysis.metrics",
    "claims_table": "weightzoo.analysis.claims",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'weightzoo' has no attribute {name!r}")
    module, attribute = _PUBLIC[name] if isinstance(_PUBLIC[name], tuple) else (_PUBLIC[name], name)
    return getattr(importlib.import_module(module), attribute)


def __dir__():
    return [*globals(), *__all__]
