"""Workflow job of method (e): the weight-space network, cross-validated on the benchmark's folds."""

import json
import logging
import time

import numpy as np
import pandas as pd
import scipy.stats
import torch

from weightzoo.analysis.benchmark.folds import read_folds
from weightzoo.analysis.weight_space_net import Settings, cross_validate, n_parameters
from weightzoo.export.dataset import WeightSpaceDataset
from weightzoo.export.rows import parameter_layout
from weightzoo.io.atomic import write_csv_atomic, write_text_atomic
from weightzoo.io.store import open_zoo

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = ["experiment", "trial", "fold", "target", "predicted"]


def shape_groups(zoo_paths) -> list[list[str]]:
    """Zoo files grouped by parameter shapes (their networks can share a weight-space network), in input order."""
    groups = {}
    for path in zoo_paths:
        with open_zoo(path) as ds:
            key = tuple(parameter_layout(ds)[["varname", "shape"]].itertuples(index=False, name=None))
        groups.setdefault(key, []).append(str(path))
    return list(groups.values())


def train_weight_space_net(zoo_paths, folds_path, predictions_path, summary_path, *, settings: dict, threads: int = 1):
    """Predict ``settings["target"]`` of every trial in the folds file from its final weights, one network per
    shape group and fold (trained on the other folds). Writes the predictions CSV and a JSON summary."""
    torch.set_num_threads(max(1, int(threads)))
    config, start = Settings.from_config(settings), time.perf_counter()
    target = settings.get("target", "test_accuracy")
    folds = read_folds(folds_path)
    groups = shape_groups(zoo_paths)
    frames, summaries, seen = [], [], set()
    for paths in groups:
        dataset = WeightSpaceDataset.from_zoos(paths, target=target)
        frame, summary = _predict_group(dataset, folds, config, folds_path)
        seen |= set(dataset.table["experiment"])
        frames.append(frame)
        summaries.append({"zoos": paths, **summary})
    unknown = sorted(set(folds["experiment"]) - seen)
    if unknown:
        raise ValueError(f"{folds_path}: experiments {unknown} are in the folds file but no zoo was given for them")
    table = pd.concat(frames, ignore_index=True)[OUTPUT_COLUMNS]
    write_csv_atomic(table, predictions_path)
    predicted = table["predicted"].notna()
    result = {"method": "weight_space_net", "target": target, "settings": {**vars(config)}, "threads": threads,
              "wall_s": round(time.perf_counter() - start, 2), "trials": len(table), "predicted": int(predicted.sum()),
              "kendall_tau": _tau(table[predicted]), "groups": summaries,
              "note": "one network per shape group and fold, trained on the group's trials of the other folds"}
    write_text_atomic(json.dumps(result, indent=1, default=str), summary_path)
    log.info("weight-space network (%s): %d of %d trials predicted in %.1fs, %s", config.layer,
             result["predicted"], len(table), result["wall_s"], tau_text(table[predicted]))


def _predict_group(dataset: WeightSpaceDataset, folds: pd.DataFrame, config: Settings, folds_path):
    keys = dataset.table[["experiment", "trial"]]
    merged = keys.merge(folds, on=["experiment", "trial"], how="left", validate="one_to_one")
    in_folds = merged["fold"].notna().to_numpy()
    listed = folds[folds["experiment"].isin(set(keys["experiment"]))]
    absent = listed.merge(keys, on=["experiment", "trial"], how="left", indicator=True).query("_merge == 'left_only'")
    if len(absent):
        raise ValueError(f"{folds_path}: trials {absent[['experiment', 'trial']].values.tolist()[:5]} are not in "
                         f"their zoo")
    dataset, merged = dataset.subset(np.flatnonzero(in_folds)), merged[in_folds].reset_index(drop=True)
    frame = pd.DataFrame({"experiment": merged["experiment"], "trial": merged["trial"],
                          "fold": merged["fold"].astype(folds["fold"].dtype),
                          "target": dataset.targets.double().numpy(), "predicted": np.nan})
    summary = {"experiments": sorted(set(frame["experiment"])), "trials": len(frame),
               "not_in_folds": int((~in_folds).sum()), "layer": config.layer, "epochs": config.epochs,
               "parameters": None, "wall_s": 0.0, "kendall_tau": None, "skipped": "", "folds_skipped": {}}
    if not len(frame):
        summary["skipped"] = "no trial of these zoos is in the folds file"
        return frame, summary
    summary["parameters"] = size = n_parameters(dataset.network_spec, config)
    if size > config.max_parameters:
        summary["skipped"] = (f"{config.layer} network would have {size:,} parameters > max_parameters "
                              f"{config.max_parameters:,} (HNP grows with the input width: try layer np)")
        return frame, summary
    start = time.perf_counter()
    frame["predicted"], summary["folds_skipped"] = cross_validate(dataset, frame["fold"].to_numpy(), config)
    summary["wall_s"] = round(time.perf_counter() - start, 2)
    summary["kendall_tau"] = _tau(frame[frame["predicted"].notna()])
    log.info("%s: %d trials, %d parameters, %.1fs, %s", ", ".join(summary["experiments"]), len(frame),
             size, summary["wall_s"], tau_text(frame[frame["predicted"].notna()]))
    return frame, summary


def tau_text(rows: pd.DataFrame) -> str:
    """Kendall's tau of the predicted ``rows`` in words, saying why when there is none."""
    tau = _tau(rows)
    if tau is not None:
        return f"Kendall tau {tau:.3f}"
    if len(rows) < 2:
        return (f"Kendall tau not answerable: {len(rows)} trial(s) predicted, a rank correlation needs 2 or more "
                "(each fold is predicted by a network trained on the other folds: more recipes make more folds)")
    return "Kendall tau not answerable: the predictions (or the targets) are all equal, so they have no ranking"


def _tau(rows: pd.DataFrame) -> float | None:
    if len(rows) < 2:
        return None
    tau = scipy.stats.kendalltau(rows["target"], rows["predicted"]).statistic
    return None if np.isnan(tau) else round(float(tau), 4)
