"""Workflow job: the stored per-experiment results every scope of the analysis reads (features, node strengths,
density bins, training status), so that no figure or claim reads a zoo again."""

import logging

import pandas as pd
import xarray as xr

from weightzoo.analysis.features import trial_features
from weightzoo.analysis.groups import experiment_groups
from weightzoo.analysis.kde import GroupMoments, density_dataset
from weightzoo.analysis.strength import strength_dataset
from weightzoo.analysis.trained import training_status
from weightzoo.io.atomic import load_checked, write_netcdf_atomic

log = logging.getLogger(__name__)


def extract(ds: xr.Dataset, groups, experiment: str, strength_kind: str = "abs_in", early_snapshot: int = 1,
            max_values: int = 2000, seed: int = 0, densities: bool = True):
    """The per-experiment results of one zoo, in memory: (features, node strengths, densities or None). One read
    of the final snapshot serves the features, the node strengths and the densities' first pass."""
    moments = GroupMoments(ds, groups) if densities else None
    features, strengths = trial_features(
        ds, groups, early_snapshot=early_snapshot, n_quantiles=max_values, strength_kind=strength_kind,
        seed=seed, experiment=experiment, on_block=None if moments is None else moments.add, with_strengths=True)
    density = density_dataset(ds, groups, moments=moments) if densities else None
    return features, strength_dataset(ds, strengths, groups), density


def extract_features(zoo_path, summary_groups_path, experiment: str, features_path, strengths_path,
                     strength_kind: str = "abs_in", early_snapshot: int = 1, max_values: int = 2000,
                     seed: int = 0, dataset_path=None, status_path=None, densities_path=None) -> None:
    """Per-trial features (``analysis.features``), every node's strength, with ``densities_path`` every layer's
    weights binned per group (``analysis.kde.density_dataset``) and, with ``status_path``, which parameters never
    trained and which ReLU units are dead (``analysis.trained``)."""
    groups = experiment_groups(pd.read_csv(summary_groups_path, keep_default_na=False), experiment)
    with xr.open_dataset(zoo_path) as ds:
        features, strengths, densities = extract(ds, groups, experiment, strength_kind, early_snapshot, max_values,
                                                 seed, densities=densities_path is not None)
        write_netcdf_atomic(features, features_path)
        write_netcdf_atomic(strengths, strengths_path)
        if densities is not None:
            write_netcdf_atomic(densities, densities_path)
        del features, strengths, densities
        if status_path is not None:  # last: the features' pass is the job's peak, and starts on an unfragmented heap
            write_netcdf_atomic(training_status(ds, load_checked(dataset_path)), status_path)
    log.info("%s: features, node strengths%s of %d trials", experiment, ", densities" if densities_path else "",
             ds.sizes["trial"])
