"""A scope of the figures: every architecture of a (model, dataset) pooled, or one architecture, which is the
pooled view's selection of that architecture's trials. Everything is read from the stored per-experiment results
(features, node strengths, density bins), never from the zoos: one code path draws a figure at every scope."""

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import xarray as xr

from weightzoo.analysis.features import pool
from weightzoo.analysis.kde import pooled_densities
from weightzoo.analysis.projection import project_matrix
from weightzoo.analysis.stats import feature_matrix
from weightzoo.analysis.strength import pooled_strengths, strength_correlations


def _arch_of(stored: xr.Dataset) -> str:
    if "arch" in stored.coords and stored["arch"].dims == ("trial",):
        return str(stored["arch"].values[0]) if stored.sizes["trial"] else ""
    return str(stored.attrs.get("arch", ""))


def select_architecture(pooled: xr.Dataset, own: xr.Dataset, arch: str) -> xr.Dataset:
    """The trials of ``arch`` in pooled features, on that experiment's own layers and epochs (``own``: its
    features), so that the selection equals the experiment's features as stored (trial renumbered)."""
    chosen = pooled.isel(trial=np.flatnonzero(pooled["arch"].values == arch))
    axes = {dim: own[dim].values for dim in ("layer", "strength_layer", "epoch")
            if dim in own.dims and dim in chosen.dims}
    chosen = chosen.sel(axes)
    if "n_weights" in own.coords:
        chosen = chosen.assign_coords(n_weights=("layer", own["n_weights"].values))
    chosen.attrs = dict(own.attrs)
    return chosen


def scope_features(features: Sequence[xr.Dataset], arch: str | None = None) -> xr.Dataset:
    """Per-trial features of the scope: every experiment pooled (``features.pool``), or the trials of ``arch``."""
    pooled = pool(features)
    if arch is None:
        return pooled
    own = [f for f in features if _arch_of(f) == arch]
    if len(own) != 1:
        raise ValueError(f"{len(own)} feature files of architecture {arch!r} among {len(features)}")
    return select_architecture(pooled, own[0], arch)


class ScopeView:
    """What the figures of one scope draw, from the stored results of the experiments in ``features``,
    ``strengths`` (``strength.strength_dataset``) and ``densities`` (``kde.density_dataset``); ``arch``: the
    architecture selected, None for all pooled."""

    def __init__(self, features: Sequence[xr.Dataset] = (), strengths: Sequence[xr.Dataset] = (),
                 densities: Sequence[xr.Dataset] = (), arch: str | None = None):
        self.arch = arch
        self._features = list(features)
        self._strengths = [s for s in strengths if arch is None or _arch_of(s) == arch]
        self._densities = [d for d in densities if arch is None or _arch_of(d) == arch]

    @cached_property
    def features(self) -> xr.Dataset:
        return scope_features(self._features, self.arch)

    @property
    def labels(self) -> np.ndarray:
        """Group label per trial."""
        return self.features["group"].values.astype(object)

    @property
    def architectures(self) -> np.ndarray:
        """Architecture label per trial (marker shapes)."""
        return self.features["arch"].values.astype(object)

    @property
    def statistics(self) -> xr.Dataset:
        """Weight statistics per trial and layer (``stats.weight_statistics`` layout)."""
        stats = self.features["statistic"].to_dataset("stat")
        if "snapshot" in self.features.attrs:
            stats.attrs["snapshot"] = self.features.attrs["snapshot"]
        return stats

    @cached_property
    def strengths(self) -> list[xr.DataArray]:
        return pooled_strengths(self._strengths)

    @cached_property
    def densities(self) -> list[xr.DataArray]:
        return pooled_densities(self._densities)

    @property
    def strength_pairs(self) -> xr.Dataset:
        means = self.features["mean_strength"]
        pairs = strength_correlations(means.values, [str(layer) for layer in means["strength_layer"].values],
                                      self.labels)
        pairs.attrs["kind"] = means.attrs.get("kind", "abs_in")
        return pairs

    def statistics_projection(self, seed: int = 0, perplexity: float = 30.0) -> xr.Dataset:
        """t-SNE of the trials on their per-layer weight statistics (whole network left out)."""
        network = self.features.attrs.get("network_layer", "network")
        kept = [str(layer) for layer in self.features["layer"].values if layer != network]
        matrix, _ = feature_matrix(self.statistics.sel(layer=kept))
        return project_matrix(matrix, self.labels, arch=self.architectures, seed=seed, perplexity=perplexity)

    def title(self, title: str) -> str:
        """``title`` with the scope: the architecture, or how many are pooled (one stored file each)."""
        if self.arch is not None:
            return f"{title}, {self.arch}"
        stored = self._features or self._strengths or self._densities
        return f"{title}, {len({_arch_of(d) for d in stored})} architecture(s) pooled"
