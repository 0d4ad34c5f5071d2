"""O(n) kernel density estimates of very many weights: linear binning on a fixed grid + Gaussian smoothing.

The exact KDE costs O(n·m) for n values and m evaluation points; with 10^8 weights per layer that is out of
reach. Linear binning (Wand 1994) spreads each value's unit mass over its two neighbouring grid points, and the
binned counts are convolved with the Gaussian kernel by FFT: O(n + m log m), with an error of order
(grid step / bandwidth)^2. ``BinnedKDE`` accumulates chunks (e.g. one trial at a time), so the values never
need to be in memory together; moments (for the bandwidth) are combined exactly across chunks.

A zoo's layer is binned once (``bin_layer``): per group its moments and its mass on a lattice of points
``k * step`` with ``step`` a power of two. Such lattices nest, and linear binning onto a coarser nested lattice of
masses already binned onto a finer one equals binning the values there directly, so the binned layers of several
zoos combine exactly (``combine_bins``) into the pooled group's moments (hence its bandwidth) and mass: a density
of architectures pooled is drawn from each experiment's stored bins (``density_dataset``) without the weights.
"""

import numpy as np
import scipy.fft
import xarray as xr

from weightzoo.analysis.zoo import CHUNK_VALUES, layer_names, ordered_groups, select_snapshot, trial_groups

# Values are binned in blocks of this many (32 MiB as float64); each block costs O(grid) extra.
BIN_VALUES = 1 << 22
MAX_BINNING_POINTS = 1 << 16


def _is_number(bandwidth) -> bool:
    return not isinstance(bandwidth, str) and np.isscalar(bandwidth)


class _Moments:
    """Count, mean and sum of squared deviations, combined across chunks (Chan et al. 1979)."""

    def __init__(self):
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = np.inf
        self.max = -np.inf

    def add(self, values: np.ndarray) -> None:
        n_b = values.size
        if n_b == 0:
            return
        mean_b = float(values.mean())
        deviation = values - mean_b
        m2_b = float(np.dot(deviation, deviation))
        n = self.n + n_b
        delta = mean_b - self.mean
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.mean += delta * n_b / n
        self.n = n
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))

    def merge(self, other: "_Moments") -> None:
        """Add the moments of another set of values (Chan et al. 1979)."""
        if other.n == 0:
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.mean += delta * other.n / n
        self.n = n
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)

    def as_array(self) -> np.ndarray:
        return np.array([self.n, self.mean, self.m2, self.min, self.max], dtype=np.float64)

    @classmethod
    def from_array(cls, values) -> "_Moments":
        moments = cls()
        n, moments.mean, moments.m2, moments.min, moments.max = (float(v) for v in values)
        moments.n = int(n)
        return moments

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / (self.n - 1))) if self.n > 1 else 0.0


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(values)
    return values if finite.all() else values[finite]


def scott_bandwidth(std: float, n: int) -> float:
    """Scott's rule in 1-D, sigma * n^(-1/5) (what ``scipy.stats.gaussian_kde`` uses by default)."""
    return std * n ** (-0.2)


def silverman_bandwidth(std: float, iqr: float, n: int) -> float:
    """Silverman's rule of thumb (1986, eq. 3.31): 0.9 * min(sigma, IQR / 1.349) * n^(-1/5)."""
    spread = min(std, iqr / 1.349) if iqr > 0 else std
    return 0.9 * spread * n ** (-0.2)


class BinnedKDE:
    """Streaming Gaussian KDE on the fixed grid ``np.linspace(lo, hi, n_points)``.

    ``bandwidth`` is ``"scott"``, ``"silverman"`` or an absolute bandwidth in the units of the values; the
    rules use the moments and (histogram-estimated) IQR of everything added. Non-finite values are ignored;
    values outside [lo, hi] are counted in ``n`` but carry no mass on the grid, so the density integrates
    to the fraction of values inside the grid.
    """

    def __init__(self, lo: float, hi: float, n_points: int = 2048, bandwidth="scott"):
        if not hi > lo:
            raise ValueError(f"grid needs hi > lo, got [{lo}, {hi}]")
        if n_points < 2:
            raise ValueError("grid needs at least 2 points")
        if not (bandwidth in ("scott", "silverman") or (np.isscalar(bandwidth) and float(bandwidth) > 0)):
            raise ValueError(f"bandwidth must be 'scott', 'silverman' or a positive number, got {bandwidth!r}")
        self.grid = np.linspace(lo, hi, n_points)
        self.step = self.grid[1] - self.grid[0]
        self.bandwidth_rule = bandwidth
        self.mass = np.zeros(n_points)
        self.n_outside = 0
        self._moments = _Moments()

    @property
    def n(self) -> int:
        """Number of finite values added."""
        return self._moments.n

    @property
    def mean(self) -> float:
        return self._moments.mean if self.n else float("nan")

    @property
    def std(self) -> float:
        return self._moments.std if self.n else float("nan")

    def add(self, values) -> "BinnedKDE":
        """Add a chunk of values (any shape)."""
        values = _finite(values)
        # bounded blocks bound the temporaries when a caller passes a huge chunk
        for start in range(0, values.size, BIN_VALUES):
            block = values[start : start + BIN_VALUES]
            self._moments.add(block)
            self._bin(block)
        return self

    def _bin(self, values: np.ndarray) -> None:
        """Linear binning of finite float64 values onto the grid (moments not updated)."""
        if values.size == 0:
            return
        size = len(self.grid)
        position = values - self.grid[0]
        position *= 1.0 / self.step
        if position.min() < 0 or position.max() > size - 1:
            inside = (position >= 0) & (position <= size - 1)
            self.n_outside += int(values.size - np.count_nonzero(inside))
            position = position[inside]
        left = position.astype(np.intp)
        np.minimum(left, size - 2, out=left)
        position -= left  # now the share of each value's mass that goes to the right neighbour
        right_mass = np.bincount(left, weights=position, minlength=size)
        self.mass += np.bincount(left, minlength=size) - right_mass
        self.mass[1:] += right_mass[:-1]

    def quantile(self, q):
        """Quantile(s) of the added values, from the binned mass (accurate to about one grid step)."""
        cumulative = np.cumsum(self.mass)
        if cumulative[-1] <= 0:
            return np.full(np.shape(q), np.nan)
        return np.interp(np.asarray(q) * cumulative[-1], cumulative, self.grid)

    @property
    def bandwidth(self) -> float:
        """Bandwidth in value units (NaN before any finite value was added)."""
        if self.n == 0:
            return float("nan")
        if self.bandwidth_rule == "scott":
            return scott_bandwidth(self.std, self.n)
        if self.bandwidth_rule == "silverman":
            q25, q75 = self.quantile([0.25, 0.75])
            return silverman_bandwidth(self.std, float(q75 - q25), self.n)
        return float(self.bandwidth_rule)

    def density(self, grid=None) -> np.ndarray:
        """Density on the accumulator's grid, or linearly interpolated onto ``grid``.

        A zero bandwidth (all values equal) is replaced by one grid step.
        """
        if self.n == 0:
            values = np.full(len(self.grid), np.nan)
        else:
            bandwidth = self.bandwidth
            if not bandwidth > 0:
                bandwidth = self.step
            values = _smooth(self.mass, bandwidth / self.step) / (self.n * self.step)
        if grid is None:
            return values
        return np.interp(np.asarray(grid, dtype=float), self.grid, values, left=0.0, right=0.0)


def _smooth(mass: np.ndarray, sigma_steps: float) -> np.ndarray:
    """Convolve grid masses with a Gaussian of ``sigma_steps`` grid steps, preserving total mass."""
    m = len(mass)
    offsets = np.arange(-(m - 1), m)
    kernel = np.exp(-0.5 * (offsets / sigma_steps) ** 2)
    kernel /= kernel.sum()
    size = scipy.fft.next_fast_len(3 * m - 2, real=True)
    full = scipy.fft.irfft(scipy.fft.rfft(mass, size) * scipy.fft.rfft(kernel, size), size)
    return np.clip(full[m - 1 : 2 * m - 1], 0.0, None)


def _trial_chunks(var: xr.DataArray):
    """Yield (trial slice, values as float64 array (trial, n_values)) in chunks of ~CHUNK_VALUES values."""
    n_trials = var.sizes["trial"]
    per_trial = max(1, int(np.prod([var.sizes[d] for d in var.dims if d != "trial"])))
    step = max(1, CHUNK_VALUES // per_trial)
    for start in range(0, n_trials, step):
        stop = min(start + step, n_trials)
        values = var.isel(trial=slice(start, stop)).values
        yield slice(start, stop), np.asarray(values, dtype=np.float64).reshape(stop - start, -1)


MOMENTS = ("n", "mean", "m2", "min", "max")
"""What ``density_dataset`` stores per layer and group: count, mean, sum of squared deviations, min, max."""


class LayerBins:
    """One layer's values binned per group: moments, trial counts and mass on the lattice ``(first + i) * step``."""

    def __init__(self, variable: str, moments: dict, n_trials: dict, mass: dict, first: int, step: float,
                 snapshot: int = -1):
        self.variable, self.moments, self.n_trials, self.mass = variable, moments, n_trials, mass
        self.first, self.step, self.snapshot = int(first), float(step), snapshot

    @property
    def groups(self) -> list[str]:
        return list(self.moments)


def _lattice_step(lo: float, hi: float, narrowest: float) -> float:
    """A power of two: at least 2048 points over [lo, hi] and eight per narrowest bandwidth, at most
    ``MAX_BINNING_POINTS``."""
    span = hi - lo if hi > lo else 1e-3 * max(1.0, abs(lo), abs(hi))
    step = 2.0 ** np.floor(np.log2(min(span / 2047, narrowest / 8)))
    while span / step + 2 > MAX_BINNING_POINTS:
        step *= 2
    return float(step)


def _scott(moments) -> list[float]:
    return [scott_bandwidth(m.std, m.n) for m in moments if m.n and m.std > 0]


MOMENT_CHUNK_VALUES = 1 << 21
"""Values per float64 chunk when ``GroupMoments`` converts a block it is fed."""


class GroupMoments:
    """The first pass of ``bin_layer`` (each group's moments of each weight layer), fed blocks of trials that
    another reader has decompressed already (``features.trial_features``' ``on_block``), so that the
    densities cost one read of the snapshot instead of two."""

    def __init__(self, ds: xr.Dataset, groups=None):
        self.labels = trial_groups(ds, groups)
        self.moments = {f"{layer}_weight": {g: _Moments() for g in ordered_groups(self.labels)}
                        for layer in layer_names(ds)}

    def add(self, block: slice, arrays: dict) -> None:
        labels = self.labels[block]
        for variable, values in arrays.items():
            if variable in self.moments:
                values = values.reshape(len(values), -1)
                # in float64 chunks of 2 M values (16 MiB): the features' pass holds its block and its work copies
                # already, and this must not lift the job's peak above one layer of all trials (issue 22)
                step = max(1, MOMENT_CHUNK_VALUES // max(values.shape[1], 1))
                for start in range(0, len(values), step):
                    _add_per_group(self.moments[variable], np.asarray(values[start:start + step], dtype=np.float64),
                                   labels[start:start + step])


def _add_per_group(moments: dict, values: np.ndarray, labels: np.ndarray) -> None:
    """Each group's finite values of a chunk of trials (trial, n_values) added to its ``_Moments``."""
    for g, group_moments in moments.items():
        group_moments.add(_finite(values[labels == g]))


def bin_layer(ds: xr.Dataset, variable: str, groups=None, snapshot: int = -1,
              moments: dict | None = None) -> LayerBins:
    """``variable`` of all trials binned per group (see ``zoo.trial_groups``; ungrouped trials left out), in two
    chunked passes over the trials (moments, then binning of every group): the layer is never in memory at once.
    ``moments``: the first pass's result if a ``GroupMoments`` has it already (its ``moments[variable]``)."""
    var = select_snapshot(ds[variable], snapshot)
    labels = trial_groups(ds, groups)
    names = ordered_groups(labels)
    if moments is None:
        moments = {g: _Moments() for g in names}
        for rows, values in _trial_chunks(var):
            _add_per_group(moments, values, labels[rows])
    filled = [m for m in moments.values() if m.n]
    if filled:
        lo, hi = min(m.min for m in filled), max(m.max for m in filled)
        step = _lattice_step(lo, hi, min(_scott(filled), default=np.inf))
        first = int(np.floor(lo / step))
        last = max(int(np.ceil(hi / step)), first + 1)
    else:
        step, first, last = 1.0, 0, 1
    # one pass for all groups (issue 22: was one read of the layer per group); each group's values are binned
    # chunk after chunk in the same order as before, so its mass is the same to the last bit
    kdes = {g: BinnedKDE(first * step, last * step, last - first + 1) for g in names}
    for rows, values in _trial_chunks(var):
        for g in names:
            kdes[g]._bin(_finite(values[labels[rows] == g]))
    mass = {g: kde.mass for g, kde in kdes.items()}
    snapshot = int(var["snapshot"].values) if "snapshot" in var.coords else snapshot
    return LayerBins(variable, moments, {g: int(np.sum(labels == g)) for g in names}, mass, first, step, snapshot)


def _rebin(mass: np.ndarray, first: int, step: float, coarse: float, start: int, size: int) -> np.ndarray:
    """Lattice masses moved onto the nested coarser lattice ``(start + j) * coarse`` (exact: see the module)."""
    position = (first + np.arange(len(mass))) * (step / coarse) - start
    left = np.minimum(np.floor(position).astype(np.intp), size - 2)
    right_share = position - left
    out = np.bincount(left, weights=mass * (1 - right_share), minlength=size)
    out[1:] += np.bincount(left, weights=mass * right_share, minlength=size)[: size - 1]
    return out


def combine_bins(parts) -> LayerBins:
    """The bins of one layer of several zoos pooled: per group the union of their values."""
    parts = list(parts)
    names = ordered_groups([g for part in parts for g in part.groups])
    moments = {g: _Moments() for g in names}
    n_trials = dict.fromkeys(names, 0)
    for part in parts:
        for g in part.groups:
            moments[g].merge(part.moments[g])
            n_trials[g] += part.n_trials[g]
    filled = [p for p in parts if any(m.n for m in p.moments.values())]
    if not filled:
        return LayerBins(parts[0].variable, moments, n_trials, {g: np.zeros(2) for g in names}, 0, 1.0,
                         parts[0].snapshot)
    coarse = max(p.step for p in filled)
    start = min(int(np.floor(p.first * p.step / coarse)) for p in filled)
    stop = max(int(np.ceil((p.first + len(next(iter(p.mass.values()))) - 1) * p.step / coarse)) for p in filled)
    size = max(stop - start + 1, 2)
    mass = {g: np.zeros(size) for g in names}
    for part in filled:
        for g in part.groups:
            mass[g] += _rebin(part.mass[g], part.first, part.step, coarse, start, size)
    return LayerBins(parts[0].variable, moments, n_trials, mass, start, coarse, filled[0].snapshot)


def density_from_bins(bins: LayerBins, grid=None, n_points: int = 1024, bandwidth="scott",
                      n_sources: int = 1) -> xr.DataArray:
    """Density per group of binned values (group, x): ``n_points`` points spanning all finite values, padded by
    four of the largest group bandwidth (or ``grid``), with coordinates ``n_values``, ``n_trials`` and
    ``bandwidth`` per group."""
    names = bins.groups
    filled = [m for m in bins.moments.values() if m.n]
    scott = _scott(filled)
    if grid is None:
        if filled:
            lo, hi = min(m.min for m in filled), max(m.max for m in filled)
            pad = 4 * (float(bandwidth) if _is_number(bandwidth) else max(scott, default=0.0))
            pad = pad or 1e-3 * max(1.0, abs(lo), abs(hi))
            grid = np.linspace(lo - pad, hi + pad, n_points)
        else:
            grid = np.linspace(-1.0, 1.0, n_points)
    grid = np.asarray(grid, dtype=float)
    step = bins.step
    start, stop = int(np.floor(grid[0] / step)), int(np.ceil(grid[-1] / step))
    size = max(stop - start + 1, 2)
    estimators = {}
    for g in names:
        kde = BinnedKDE(start * step, (start + size - 1) * step, size, bandwidth)
        kde._moments = bins.moments[g]
        mass = bins.mass[g]
        index = bins.first + np.arange(len(mass)) - start
        inside = (index >= 0) & (index < size)
        kde.mass[index[inside]] = mass[inside]
        kde.n_outside = int(round(mass[~inside].sum()))
        estimators[g] = kde
    density = np.stack([estimators[g].density(grid) for g in names]) if names else np.zeros((0, len(grid)))
    return xr.DataArray(
        density,
        dims=("group", "x"),
        coords={
            "group": np.array(names, dtype=object),
            "x": grid,
            "n_values": ("group", np.array([estimators[g].n for g in names], dtype=np.int64)),
            "n_trials": ("group", np.array([bins.n_trials[g] for g in names], dtype=np.int64)),
            "bandwidth": ("group", np.array([estimators[g].bandwidth for g in names])),
        },
        name=f"{bins.variable}_density",
        attrs={
            "long_name": f"density of {bins.variable}",
            "units": "1 / weight unit",
            "variable": bins.variable,
            "snapshot": bins.snapshot,
            "bandwidth_rule": str(bandwidth),
            "method": "linear binning + FFT Gaussian smoothing",
            "n_sources": n_sources,
        },
    )


def layer_density(
    ds: xr.Dataset,
    variable: str,
    groups=None,
    snapshot: int = -1,
    grid=None,
    n_points: int = 1024,
    bandwidth="scott",
) -> xr.DataArray:
    """Density of all values of ``variable`` (e.g. ``fc1_weight``) of all trials of each group (paper Figs 5–7).

    ``groups``: see ``zoo.trial_groups`` (None: one group ``all``). ``grid``: evaluation points; by default
    ``n_points`` points spanning all finite values, padded by four of the largest group bandwidth. Trials
    are read a chunk at a time in two passes (moments, then binning), so a lazily opened dataset never
    holds the whole layer in memory. Returns a
    DataArray (group, x) with coordinates ``n_values``, ``n_trials`` and ``bandwidth`` per group.
    """
    return pooled_layer_density([(ds, groups)], variable, snapshot, grid, n_points, bandwidth)


def pooled_layer_density(
    sources, variable: str, snapshot: int = -1, grid=None, n_points: int = 1024, bandwidth="scott"
) -> xr.DataArray:
    """``layer_density`` over the trials of several zoos together: ``sources`` is a sequence of
    ``(ds, groups)``, e.g. every architecture of a (model, dataset); a group's density pools its trials
    of all zoos (the paper's figures pool architectures this way)."""
    parts = [bin_layer(ds, variable, groups, snapshot) for ds, groups in sources]
    if not parts:
        return density_from_bins(LayerBins(variable, {}, {}, {}, 0, 1.0, snapshot), grid, n_points, bandwidth, 0)
    return density_from_bins(combine_bins(parts), grid, n_points, bandwidth, len(parts))


# ---------------------------------------------------------------------------------------------- stored bins


def density_dataset(ds: xr.Dataset, groups=None, snapshot: int = -1,
                    moments: GroupMoments | None = None) -> xr.Dataset:
    """Every weight layer of a zoo binned per group (``bin_layer``), as one self-describing dataset: per layer
    ``{layer}_mass`` (group, ``{layer}_bin``) on the lattice ``({layer}_first + i) * {layer}_step``, and the
    moments ``moments`` (layer, group, moment) and trial counts ``n_trials`` (group). ``moments``: a
    ``GroupMoments`` of the same groups that has seen every trial of this snapshot (skips the first pass)."""
    layers = layer_names(ds)
    parts = [bin_layer(ds, f"{layer}_weight", groups, snapshot,
                       None if moments is None else moments.moments[f"{layer}_weight"]) for layer in layers]
    names = ordered_groups(trial_groups(ds, groups))
    moments = np.full((len(layers), len(names), len(MOMENTS)), np.nan)
    data_vars = {}
    for i, (layer, part) in enumerate(zip(layers, parts)):
        for j, g in enumerate(names):
            moments[i, j] = part.moments[g].as_array()
        mass = np.stack([part.mass[g] for g in names]) if names else np.zeros((0, 2))
        data_vars[f"{layer}_mass"] = xr.Variable(("group", f"{layer}_bin"), mass, {
            "long_name": f"linearly binned mass of {layer}_weight", "units": "weights", "variable": f"{layer}_weight",
            "first": part.first, "step": part.step})
    data_vars["moments"] = xr.Variable(("layer", "group", "moment"), moments,
                                       {"long_name": "count, mean, sum of squared deviations, min, max of the weights"})
    data_vars["n_trials"] = xr.Variable(("group",), np.array([parts[0].n_trials[g] if parts else 0 for g in names],
                                                              dtype=np.int64), {"long_name": "trials per group"})
    snapshot = parts[0].snapshot if parts else snapshot
    return xr.Dataset(
        data_vars,
        coords={"layer": np.array(layers, dtype=str), "group": np.array(names, dtype=str),
                "moment": np.array(MOMENTS, dtype=str)},
        attrs={k: ds.attrs[k] for k in ("model", "dataset", "arch") if k in ds.attrs}
        | {"snapshot": snapshot, "title": "weights per layer and accuracy group, binned for densities",
           "method": "linear binning onto a power-of-two lattice (weightzoo.analysis.kde)"},
    )


def stored_bins(densities: xr.Dataset) -> list[LayerBins]:
    """``density_dataset`` read back: one ``LayerBins`` per layer, in model order."""
    names = [str(g) for g in densities["group"].values]
    out = []
    for layer in (str(layer) for layer in densities["layer"].values):
        mass = densities[f"{layer}_mass"]
        moments = {g: _Moments.from_array(densities["moments"].sel(layer=layer, group=g).values) for g in names}
        n_trials = {g: int(densities["n_trials"].sel(group=g)) for g in names}
        out.append(LayerBins(f"{layer}_weight", moments, n_trials,
                             {g: mass.sel(group=g).values.astype(np.float64) for g in names},
                             int(mass.attrs["first"]), float(mass.attrs["step"]), int(densities.attrs["snapshot"])))
    return out


def pooled_densities(densities, n_points: int = 1024, bandwidth="scott") -> list[xr.DataArray]:
    """Per layer (in order of first appearance) the density of every group over the zoos whose stored bins
    (``density_dataset``) are ``densities``: the paper's Figs 5–7 at any scope."""
    per_layer: dict[str, list[LayerBins]] = {}
    for dataset in densities:
        for bins in stored_bins(dataset):
            per_layer.setdefault(bins.variable, []).append(bins)
    return [density_from_bins(combine_bins(parts), None, n_points, bandwidth, len(parts))
            for parts in per_layer.values()]
