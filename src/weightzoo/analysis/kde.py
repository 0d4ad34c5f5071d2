"""O(n) kernel density estimates of very many weights: linear binning on a fixed grid + Gaussian smoothing.

The exact KDE costs O(n·m) for n values and m evaluation points; with 10^8 weights per layer that is out of
reach. Linear binning (Wand 1994) spreads each value's unit mass over its two neighbouring grid points, and the
binned counts are convolved with the Gaussian kernel by FFT: O(n + m log m), with an error of order
(grid step / bandwidth)^2. ``BinnedKDE`` accumulates chunks (e.g. one trial at a time), so the values never
need to be in memory together; moments (for the bandwidth) are combined exactly across chunks.
"""

import numpy as np
import scipy.fft
import xarray as xr

from weightzoo.analysis.zoo import ordered_groups, select_snapshot, trial_groups

# A chunk of this many values is read at a time (64 MiB as float64).
CHUNK_VALUES = 1 << 23
# Values are binned in blocks of this many (32 MiB as float64); each block costs O(grid) extra.
BLOCK_VALUES = 1 << 22
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
        for start in range(0, values.size, BLOCK_VALUES):
            block = values[start : start + BLOCK_VALUES]
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
    sources = [(select_snapshot(ds[variable], snapshot), trial_groups(ds, groups)) for ds, groups in sources]
    names = ordered_groups(np.concatenate([labels for _, labels in sources]) if sources else [])
    n_members = {g: sum(int(np.sum(labels == g)) for _, labels in sources) for g in names}

    def chunks():
        for var, labels in sources:
            for rows, values in _trial_chunks(var):
                yield labels[rows], values

    moments = {g: _Moments() for g in names}
    for chunk_labels, values in chunks():
        for g in names:
            moments[g].add(_finite(values[chunk_labels == g]))
    filled = [m for m in moments.values() if m.n]
    scott = [scott_bandwidth(m.std, m.n) for m in filled if m.std > 0]
    if grid is None:
        if filled:
            lo, hi = min(m.min for m in filled), max(m.max for m in filled)
            pad = 4 * (float(bandwidth) if _is_number(bandwidth) else max(scott, default=0.0))
            pad = pad or 1e-3 * max(1.0, abs(lo), abs(hi))
            grid = np.linspace(lo - pad, hi + pad, n_points)
        else:
            grid = np.linspace(-1.0, 1.0, n_points)
    grid = np.asarray(grid, dtype=float)

    # Binning error grows as (grid step / bandwidth)^2: bin on a grid at least as fine as the output grid
    # and with about eight steps per (narrowest) bandwidth, at most MAX_BINNING_POINTS points.
    narrowest = float(bandwidth) if _is_number(bandwidth) else min(scott, default=np.inf)
    n_binning = int(np.clip((grid[-1] - grid[0]) / (narrowest / 8) + 1, max(len(grid), 2048), MAX_BINNING_POINTS))
    estimators = {g: BinnedKDE(grid[0], grid[-1], n_binning, bandwidth) for g in names}
    for g in names:
        estimators[g]._moments = moments[g]  # already complete from the first pass
    for chunk_labels, values in chunks():
        for g in names:
            estimators[g]._bin(_finite(values[chunk_labels == g]))
    density = np.stack([estimators[g].density(grid) for g in names]) if names else np.zeros((0, len(grid)))
    first = sources[0][0] if sources else None
    return xr.DataArray(
        density,
        dims=("group", "x"),
        coords={
            "group": np.array(names, dtype=object),
            "x": grid,
            "n_values": ("group", np.array([estimators[g].n for g in names], dtype=np.int64)),
            "n_trials": ("group", np.array([n_members[g] for g in names], dtype=np.int64)),
            "bandwidth": ("group", np.array([estimators[g].bandwidth for g in names])),
        },
        name=f"{variable}_density",
        attrs={
            "long_name": f"density of {variable}",
            "units": "1 / weight unit",
            "variable": variable,
            "snapshot": int(first["snapshot"].values) if first is not None and "snapshot" in first.coords else snapshot,
            "bandwidth_rule": str(bandwidth),
            "method": "linear binning + FFT Gaussian smoothing",
            "n_sources": len(sources),
        },
    )
