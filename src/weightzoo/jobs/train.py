"""Workflow jobs of training: train one chunk of trials, gather an experiment's chunks, summarise every trial."""

import json
import logging
import time

import torch

from weightzoo.io.atomic import link_atomic, write_csv_atomic
from weightzoo.config import HYPERPARAMETER_KEYS, batch_size_key, resolved_model_arch, trial_hyperparameters
from weightzoo.data import check_batch_size, load_dataset
from weightzoo.models import model_kwargs
from weightzoo.io.provenance import code_revision, file_sha256
from weightzoo.io.store import gather, result_to_dataset, summary_table, write_zoo
from weightzoo.train import Hyperparameters, TensorData, resolve_device, train_trials

log = logging.getLogger(__name__)

VECTORIZE = {"auto": None, True: True, False: False, "true": True, "false": False}


def base_hyperparameters(training: dict) -> Hyperparameters:
    keys = ("epochs", "batch_size", "lr", "init_std", "snapshots", "base_seed")
    return Hyperparameters(**{k: training[k] for k in keys if k in training})


def hyperparameters_attribute(hp: Hyperparameters, hyperparameters: dict) -> dict:
    """The shared training values, the sweep and the draws: swept and drawn keys appear only under ``sweep``
    and ``draws`` (per-trial values are the trial coordinates of the zoo)."""
    swept = {k: v for k, v in hyperparameters.items() if isinstance(v, list)}
    drawn = {k: v for k, v in hyperparameters.items() if isinstance(v, dict)}
    shared = {**vars(hp), **hyperparameters, "optimizer": "adam", "loss": "cross-entropy",
              "snapshots": hp.snapshot_epochs(), "snapshots_requested": list(hp.snapshots)}
    attribute = {**{k: v for k, v in shared.items() if k not in swept and k not in drawn and v is not None},
                 "sweep": swept, "draws": drawn}
    if drawn:
        attribute["draws_order"] = ("each trial draws every distribution from its seed (weightzoo.config.draw: "
                                    "one numpy stream per key, spawned from the trial's seed)")
    if swept:
        attribute["sweep_order"] = ("trial t takes combination t mod N of the product of the sweep lists, in the "
                                    f"order {', '.join(k for k in HYPERPARAMETER_KEYS if k in swept)}")
    return attribute


def train_chunk(dataset_path, out_path, *, model, dataset, arch, arch_params, trials, training, hyperparameters=None,
                threads=1, config_block=None):
    """Train one chunk of trials of one experiment and write its zoo file.

    ``hyperparameters``: the experiment's ``HYPERPARAMETER_KEYS``, each a value, a swept list or a distribution
    drawn per trial (``weightzoo.config.Experiment.hyperparameters``); they override ``training``."""
    torch.set_num_threads(max(1, int(threads)))
    device = resolve_device(training.get("device", "auto"))
    prepared = load_dataset(dataset_path)
    hyperparameters = hyperparameters or {}
    hp = base_hyperparameters(training)
    per_trial = [trial_hyperparameters(hyperparameters, t, hp.base_seed + t) for t in trials]
    check_batch_size(prepared, max(int(t.get("batch_size", hp.batch_size)) for t in per_trial), dataset_path,
                     batch_size_key(config_block or {}))
    data = TensorData.from_dataset(prepared, device)
    kwargs = model_kwargs(model, resolved_model_arch(arch_params, data.input_shape[-1]), data.input_shape,
                          data.n_classes)
    log.info("training %s on %s (%s): trials %s on %s with %d thread(s); kwargs %s",
             model, dataset, arch, f"{trials[0]}..{trials[-1]}", device, torch.get_num_threads(), json.dumps(kwargs))
    start = time.perf_counter()
    result = train_trials(model, kwargs, data, trials, hp, vectorize=VECTORIZE[training.get("vectorize", "auto")],
                          per_trial=per_trial)
    log.info("trained %d trials in %.1fs (%s); %d diverged", len(trials), time.perf_counter() - start,
             "vectorised" if result.vectorized else "one by one", int(result.diverged.sum()))
    write_chunk(result, out_path, prepared, dataset_path, model=model, dataset=dataset, arch=arch, kwargs=kwargs,
                hp=hp, hyperparameters=hyperparameters, config_block=config_block)


def write_chunk(result, out_path, prepared, dataset_path, *, model, dataset, arch, kwargs, hp, hyperparameters,
                config_block=None):
    """Write one chunk's ``TrainResult`` with its provenance (the one chunk writer: training and
    ``bench/paper_scale.py``'s synthetic chunks alike)."""
    ds = result_to_dataset(result, model=model, dataset=dataset, arch=arch, model_kwargs=kwargs,
                           hyperparameters=hyperparameters_attribute(hp, hyperparameters or {}),
                           input_shape=tuple(prepared["images"].shape[1:]), n_classes=int(prepared.attrs["n_classes"]),
                           dataset_source=prepared.attrs.get("source", ""), config=config_block,
                           normalisation=(prepared["mean"].values, prepared["std"].values),
                           dataset_sha256=file_sha256(dataset_path), code_revision=code_revision())
    write_zoo(ds, out_path)


def gather_experiment(chunk_paths, out_path):
    gather(chunk_paths, out_path)
    log.info("gathered %d chunks into %s", len(chunk_paths), out_path)


def publish_zoo(gathered_path, zoo_path):
    """The zoo as a second name (hard link) of the gather job's output: the previous zoo stays untouched until a
    gather has succeeded, and no byte of a zoo is ever copied (docs/reliability.md)."""
    linked = link_atomic(gathered_path, zoo_path)
    log.info("%s: %s %s", zoo_path, "linked to" if linked else "copied from", gathered_path)


def summarize(zoo_paths, out_path):
    table = summary_table(zoo_paths)
    write_csv_atomic(table, out_path)
    log.info("summary of %d trials in %d experiments: %s", len(table), len(zoo_paths), out_path)
