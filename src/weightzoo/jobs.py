"""What one workflow job does, end to end: the layer between Snakemake scripts and the package."""

import json
import logging
import time

import torch

from weightzoo.config import resolved_model_arch
from weightzoo.data import check_batch_size, load_dataset
from weightzoo.models import model_kwargs
from weightzoo.store import gather, result_to_dataset, summary_table, write_csv_atomic, write_zoo
from weightzoo.train import Hyperparameters, TensorData, resolve_device, train_trials

log = logging.getLogger(__name__)

VECTORIZE = {"auto": None, True: True, False: False, "true": True, "false": False}


def hyperparameters(training: dict) -> Hyperparameters:
    keys = ("epochs", "batch_size", "lr", "init_std", "snapshots", "base_seed")
    return Hyperparameters(**{k: training[k] for k in keys if k in training})


def train_chunk(dataset_path, out_path, *, model, dataset, arch, arch_params, trials, training, threads=1,
                config_block=None):
    """Train one chunk of trials of one experiment and write its zoo file."""
    torch.set_num_threads(max(1, int(threads)))
    device = resolve_device(training.get("device", "auto"))
    prepared = load_dataset(dataset_path)
    check_batch_size(prepared, int(training.get("batch_size", Hyperparameters.batch_size)), dataset_path)
    data = TensorData.from_dataset(prepared, device)
    kwargs = model_kwargs(model, resolved_model_arch(arch_params, data.input_shape[-1]), data.input_shape,
                          data.n_classes)
    hp = hyperparameters(training)
    log.info("training %s on %s (%s): trials %s on %s with %d thread(s); kwargs %s",
             model, dataset, arch, f"{trials[0]}..{trials[-1]}", device, torch.get_num_threads(), json.dumps(kwargs))
    start = time.perf_counter()
    result = train_trials(model, kwargs, data, trials, hp, vectorize=VECTORIZE[training.get("vectorize", "auto")])
    log.info("trained %d trials in %.1fs (%s); %d diverged", len(trials), time.perf_counter() - start,
             "vectorised" if result.vectorized else "one by one", int(result.diverged.sum()))
    ds = result_to_dataset(result, model=model, dataset=dataset, arch=arch, model_kwargs=kwargs,
                           hyperparameters={**vars(hp), "optimizer": "adam", "loss": "cross-entropy"},
                           input_shape=data.input_shape, n_classes=data.n_classes,
                           dataset_source=prepared.attrs.get("source", ""), config=config_block)
    write_zoo(ds, out_path)


def gather_experiment(chunk_paths, out_path):
    gather(chunk_paths, out_path)
    log.info("gathered %d chunks into %s", len(chunk_paths), out_path)


def summarize(zoo_paths, out_path):
    table = summary_table(zoo_paths)
    write_csv_atomic(table, out_path)
    log.info("summary of %d trials in %d experiments: %s", len(table), len(zoo_paths), out_path)
