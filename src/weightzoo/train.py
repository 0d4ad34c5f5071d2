"""Train a chunk of trials: vectorised over trials (torch.func) or one by one, with identical results.

A trial is fixed by its seed: the seed draws its initial weights and, from an independent stream, the
order in which it visits the training samples each epoch. Vectorised training stacks the parameters of
K trials along a leading axis, runs the network on them (its family's ``stacked_forward``: by hand, or
under ``torch.func.vmap``) and takes one Adam step over the stacked parameters on the summed loss; Adam
is elementwise and the trials' losses do not share parameters, so this is mathematically the same as K
separate runs (tests/test_train.py checks it). Trials stack whenever they share batch size and activation:
learning rate and weight decay are (trials,) tensors broadcast along the trial axis of the stacked Adam
(``StackedAdam``), the initialisation std only changes the initial weights, and trials with different train
fractions run the same steps, each masked once its own (shorter) epoch is done, so that random per-trial draws
(the Small CNN Zoo's recipe) train as fast as a sweep.
"""

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from weightzoo.config import smallest_fraction, subset_size as rounded_subset_size
from weightzoo.io.atomic import ReportedError
from weightzoo.models import build_model, family, init_normal_

log = logging.getLogger(__name__)

EVAL_BATCH = 2000
# what a sweep or a draw may vary per trial (config.HYPERPARAMETER_KEYS)
PER_TRIAL = ("lr", "init_std", "batch_size", "train_fraction", "weight_decay", "activation")
# On a GPU every step is masked on the device (no host sync); True runs that path on the CPU too, so the
# CPU tests cover it (tests/test_train_device_path.py). Also set by WEIGHTZOO_DEVICE_SIDE_MASKING=1.
DEVICE_SIDE_MASKING = os.environ.get("WEIGHTZOO_DEVICE_SIDE_MASKING") == "1"


@dataclass
class Hyperparameters:
    """Paper defaults (§3.1): batch 100, 20 epochs, Adam with learning rate 1e-3, normal init."""

    epochs: int = 20
    batch_size: int = 100
    lr: float = 1e-3
    init_std: float = 0.05
    snapshots: tuple = (0, 1, -1)
    base_seed: int = 0
    train_fraction: float = 1.0  # share of the train split each trial trains on (its own fixed subset)
    weight_decay: float = 0.0  # L2: weight_decay x parameter added to each gradient (torch Adam's weight_decay)
    activation: str | None = None  # the family's default (ModelFamily.nonlinearities[0]) when None

    def snapshot_epochs(self) -> list[int]:
        """Snapshot epochs with ``-1`` resolved to the last epoch, sorted and unique."""
        resolved = {self.epochs if s == -1 else s for s in self.snapshots}
        bad = [s for s in resolved if not 0 <= s <= self.epochs]
        if bad:
            raise ValueError(f"training.snapshots {bad} outside 0..{self.epochs} (epochs)")
        return sorted(resolved)


@dataclass
class TensorData:
    """A prepared dataset resident on the training device (uint8 images, normalised per batch)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    scale: torch.Tensor  # 1 / (255 std), shape (C, 1, 1)
    shift: torch.Tensor  # -mean / std
    n_classes: int

    @classmethod
    def from_dataset(cls, ds, device="cpu") -> "TensorData":
        split = ds["split"].values
        images = torch.from_numpy(np.ascontiguousarray(ds["images"].values))
        labels = torch.from_numpy(ds["labels"].values.astype(np.int64))
        mean = torch.tensor(ds["mean"].values, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(ds["std"].values, dtype=torch.float32).view(-1, 1, 1)
        train, test = torch.from_numpy(split == 0), torch.from_numpy(split == 1)
        return cls(
            train_x=images[train].to(device),
            train_y=labels[train].to(device),
            test_x=images[test].to(device),
            test_y=labels[test].to(device),
            scale=(1.0 / (255.0 * std)).to(device),
            shift=(-mean / std).to(device),
            n_classes=int(ds.attrs["n_classes"]),
        )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        # In place on the fresh float copy: torch.addcmul with a (C, 1, 1) operand is ~10x slower on CPU.
        return x.float().mul_(self.scale).add_(self.shift)

    def train_batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images (*idx.shape, C, H, W) and labels of the training samples ``idx``."""
        flat = idx.reshape(-1)
        # index_select on rows is a plain row copy; advanced indexing of the 4-d tensor is ~5x slower
        x = self.train_x.view(len(self.train_x), -1).index_select(0, flat).view(*idx.shape, *self.input_shape)
        return self.normalise(x), self.train_y.index_select(0, flat).view(idx.shape)


CURVES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
"""Per-epoch curves of every trial, fields of ``TrainResult`` (their long names and units: ``io.store.CURVES``)."""


@dataclass
class TrainResult:
    """Curves (trial, epoch), divergence flags (trial) and weight snapshots (trial, snapshot, ...)."""

    trials: np.ndarray
    seeds: np.ndarray
    train_loss: np.ndarray
    train_accuracy: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray
    diverged: np.ndarray
    diverged_epoch: np.ndarray
    snapshots: list[int]
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    vectorized: bool = True
    device: str = "cpu"
    hyperparameters: dict[str, np.ndarray] = field(default_factory=dict)  # PER_TRIAL key -> (trial,) values


def trial_streams(seed: int) -> tuple[int, int]:
    """Independent seeds for a trial's initialisation and its batch order."""
    init, shuffle = np.random.SeedSequence(seed).spawn(2)
    return int(init.generate_state(1, np.uint64)[0]), int(shuffle.generate_state(1, np.uint64)[0])


def initial_parameters(model: str, kwargs: dict, seed: int, init_std: float) -> dict[str, torch.Tensor]:
    """The trial's initial parameters (state-dict order), drawn on the CPU so every device agrees."""
    generator = torch.Generator().manual_seed(trial_streams(seed)[0])
    net = init_normal_(build_model(model, **kwargs), init_std, generator)
    return {name: p.detach().clone() for name, p in net.named_parameters()}


class BatchOrder:
    """Each trial's own permutation of the training samples, redrawn every epoch.

    With a ``train_fraction`` < 1 a trial first draws its subset, ``subset_size(...)`` samples, from the same
    stream; every epoch then permutes that subset. The full split draws nothing extra, so its order is the
    same as without a fraction. ``train_fraction`` is one value or one per trial; ``lengths`` are the trials'
    samples per epoch, and a stack of unequal ones is padded at the end (with sample 0) to the longest.
    """

    def __init__(self, seeds, n_samples: int, train_fraction=1.0):
        self.generators = [torch.Generator().manual_seed(trial_streams(int(s))[1]) for s in seeds]
        fractions = np.broadcast_to(np.asarray(train_fraction, dtype=float), (len(self.generators),))
        self.n_samples = n_samples
        self.subsets = [None if f >= 1 else torch.randperm(n_samples, generator=g)[:subset_size(f, n_samples)]
                        for f, g in zip(fractions, self.generators)]
        self.lengths = np.array([n_samples if s is None else len(s) for s in self.subsets])

    def next_epoch(self, device) -> torch.Tensor:
        """(trials, longest epoch) indices for the coming epoch, padded with 0 past each trial's length."""
        perms = [torch.randperm(self.n_samples, generator=g) if subset is None else
                 subset[torch.randperm(len(subset), generator=g)] for subset, g in zip(self.subsets, self.generators)]
        longest = int(self.lengths.max())
        return torch.stack([F.pad(p, (0, longest - len(p))) for p in perms]).to(device)


class TrainingError(ReportedError, ValueError):
    """A setting that cannot train on this node or these data (the config check could not know): a workflow job
    prints the message, which names the key and what to do, as one line without traceback."""


def subset_size(train_fraction: float, n_samples: int) -> int:
    """Samples a trial with ``train_fraction`` trains on: round(fraction x train split), at least one."""
    if not 0 < train_fraction <= 1:
        raise TrainingError(f"hyperparameters.train_fraction: {train_fraction} is not in (0, 1]")
    size = rounded_subset_size(train_fraction, n_samples)
    if size < 1:
        raise TrainingError(f"hyperparameters.train_fraction: {train_fraction} x the {n_samples} training samples "
                            f"of this dataset rounds to 0 samples: a trial would train on nothing; use at least "
                            f"{smallest_fraction(n_samples)} (1 sample)")
    return size


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingError(no_cuda_message())
    return torch.device(device)


def no_cuda_message(local: bool = False) -> str:
    """Why ``training.device: cuda`` cannot train here, and what to do instead: a training job on a node says it
    (``local`` False); a local run says it before any job (``local``, ``workflow/rules/common.smk``)."""
    import socket

    build = "" if torch.version.cuda else f", torch {torch.__version__} being built without CUDA"
    if local:
        where, fix = ("this machine, which runs every job of a local run",
                      "run on a GPU cluster (--profile profiles/slurm asks for a GPU per training job)")
    else:
        where, fix = ("this node", "run the training jobs on GPU nodes (with SLURM: WEIGHTZOO_SLURM_PARTITION, or "
                                   "the rule's slurm_partition, names a partition with GPUs; docs/cluster.md)")
    return (f"training.device: 'cuda', but torch sees no CUDA device on {where} ({socket.gethostname()}{build}); "
            f"{fix}, or set training.device: auto (a GPU when there is one, else the CPU)")


def prefer_vectorized(model: str, device: torch.device) -> bool:
    """Stack the trials of every model on every device: for each family stacking measured faster than one
    trial at a time (bench/train_speed.py, docs/benchmarks.md), so ``model`` and ``device`` change nothing today.

    Per CPU second on the 2-core EPYC (K=16, 1 thread): the DNN vectorised is 4.5x (h=5), 2.5x (h=50) and
    1.5x (h=200) faster than one by one, the ViT 1.1x. The CNN used to train one trial at a time on a CPU
    (under vmap its convolution became a grouped oneDNN convolution whose backward was slower than K plain
    ones); run by hand (``weightzoo.models.cnn.stacked_forward``: im2col + batched GEMMs) it is 1.8-2.4x (C=4)
    and 1.9-2.5x (C=16) faster than one by one for K=8-32, 1 thread and 2 processes x 1 thread (load
    0.7-1.6). On a GPU stacking is what fills the device.
    """
    return True


def train_trials(
    model: str,
    kwargs: dict,
    data: TensorData,
    trials,
    hp: Hyperparameters,
    vectorize: bool | None = None,
    per_trial: list[dict] | None = None,
) -> TrainResult:
    """Train the given trial indices (seed = ``hp.base_seed + trial``) and return curves and snapshots.

    ``per_trial`` (a sweep or draws): one dict per trial overriding any of ``hp``'s ``PER_TRIAL`` values.
    Trials that share batch size and activation train stacked together.
    """
    device = data.train_x.device
    if vectorize is None:
        vectorize = prefer_vectorized(model, device)
    trials = np.asarray(trials, dtype=np.int64)
    seeds = hp.base_seed + trials
    default_activation = family(model).nonlinearities[0]
    settings = [dataclasses.replace(hp, **(per_trial[i] if per_trial else {})) for i in range(len(trials))]
    settings = [s if s.activation else dataclasses.replace(s, activation=default_activation) for s in settings]
    groups = _stack_groups(settings) if vectorize else [[i] for i in range(len(trials))]
    parts = []
    for group in groups:
        if len(groups) > 1:
            log.info("trials %s: batch size %d, activation %s", trials[group].tolist(), settings[group[0]].batch_size,
                     settings[group[0]].activation)
        parts.append(_train_stacked(model, kwargs, data, seeds[group], [settings[i] for i in group], stacked=vectorize))
    result = _concatenate(parts, order=np.argsort(np.concatenate(groups), kind="stable"))
    result.trials, result.seeds, result.vectorized, result.device = trials, seeds, vectorize, str(device)
    result.hyperparameters = {k: np.array([getattr(s, k) for s in settings]) for k in PER_TRIAL}
    return result


def _stack_groups(settings: list[Hyperparameters]) -> list[list[int]]:
    """Indices of the trials that can share one stacked network and optimiser: same batch size and activation."""
    groups = {}
    for i, s in enumerate(settings):
        groups.setdefault((s.batch_size, s.activation), []).append(i)
    return list(groups.values())


class StackedAdam:
    """Adam (torch's, with L2 ``weight_decay`` added to the gradient) over stacked parameters (trials, ...),
    with a learning rate, a weight decay and a step count per trial, and steps that leave masked trials as
    they are.

    ``torch.optim.Adam`` takes one learning rate per parameter tensor, and its step count and bias correction
    are per tensor too, so trials of different learning rates, or a trial that sits out a step (its shorter
    epoch is done, or it diverged), could not share it. The update is torch's formula term for term (the
    one-by-one path uses ``torch.optim.Adam``; tests/test_train.py checks they agree).
    """

    def __init__(self, leaves, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
        self.leaves = leaves
        device = leaves[0].device
        self.lr = torch.as_tensor(lr, dtype=torch.float32, device=device)
        self.weight_decay = torch.as_tensor(weight_decay, dtype=torch.float32, device=device)
        self.decay = bool((self.weight_decay != 0).any())
        self.betas, self.eps = betas, eps
        self.steps = torch.zeros(len(self.lr), dtype=torch.float32, device=device)
        self.state = [(torch.zeros_like(p), torch.zeros_like(p)) for p in leaves]

    def zero_grad(self):
        for p in self.leaves:
            p.grad = None

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None):
        """One step of every trial, or only of the trials where ``active`` (trials,) is True."""
        beta1, beta2 = self.betas
        self.steps += 1 if active is None else active.float()
        step_size = self.lr / (1 - beta1 ** self.steps)
        bias_correction2 = (1 - beta2 ** self.steps).sqrt()
        for p, (exp_avg, exp_avg_sq) in zip(self.leaves, self.state):
            grad = p.grad
            if grad is None:
                continue
            if self.decay:
                grad = grad.addcmul(_expand(self.weight_decay, p), p)
            if active is None:
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq.sqrt() / _expand(bias_correction2, p)).add_(self.eps)
                p.addcdiv_(exp_avg * _expand(step_size, p), denom, value=-1)
                continue
            mask = _expand(active, p)
            exp_avg.copy_(torch.where(mask, exp_avg.lerp(grad, 1 - beta1), exp_avg))
            exp_avg_sq.copy_(torch.where(mask, exp_avg_sq * beta2 + (1 - beta2) * grad * grad, exp_avg_sq))
            denom = (exp_avg_sq.sqrt() / _expand(bias_correction2, p)).add_(self.eps)
            p.copy_(torch.where(mask, p - exp_avg * _expand(step_size, p) / denom, p))


class SharedAdam:
    """torch's fused Adam over stacked parameters whose trials share learning rate, weight decay and train
    fraction (a sweep of init std, or no sweep): one kernel per tensor, 1.2-1.4x faster than ``StackedAdam``
    for the smallest DNNs (docs/benchmarks.md). Masked steps only ever mask diverged trials, for good: their
    gradients are zeroed and their moments too, so their update is exactly 0."""

    def __init__(self, leaves, lr, weight_decay, device):
        self.leaves, self.adam = leaves, _adam(leaves, lr, weight_decay, device)

    def zero_grad(self):
        self.adam.zero_grad()

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None):
        if active is not None:
            for leaf in self.leaves:
                state = self.adam.state.get(leaf, {})
                for key in ("exp_avg", "exp_avg_sq"):
                    if key in state:
                        state[key].masked_fill_(~_expand(active, state[key]), 0.0)
                if leaf.grad is not None:
                    leaf.grad.copy_(torch.where(_expand(active, leaf.grad), leaf.grad, 0.0))
        self.adam.step()


def _stacked_adam(leaves, settings, device):
    """The Adam of a stack: torch's fused one when its trials share lr, weight decay and train fraction
    (then no trial ever sits out a step but a diverged one), else ``StackedAdam``."""
    shared = {(t.lr, t.weight_decay, t.train_fraction) for t in settings}
    if len(shared) == 1:
        return SharedAdam(leaves, settings[0].lr, settings[0].weight_decay, device)
    return StackedAdam(leaves, [t.lr for t in settings], [t.weight_decay for t in settings])


def _train_stacked(model, kwargs, data, seeds, settings, stacked=True) -> TrainResult:
    """Train ``len(seeds)`` trials in one loop; ``stacked=False`` runs one plain nn.Module (one seed).

    ``settings``: each trial's Hyperparameters; they share epochs, snapshots, batch size and activation."""
    device = data.train_x.device
    hp = settings[0]
    inits = [initial_parameters(model, kwargs, int(s), t.init_std) for s, t in zip(seeds, settings)]
    network = build_model(model, activation=hp.activation, **kwargs).to(device).eval()  # eval: no dropout state
    if stacked:
        params = {name: torch.stack([p[name] for p in inits]).to(device).requires_grad_() for name in inits[0]}
        forward = family(model).stacked_forward(network)
        leaves = list(params.values())
        optimizer = _stacked_adam(leaves, settings, device)
    else:
        network.load_state_dict(inits[0], strict=False)
        params = {name: p.unsqueeze(0) for name, p in network.named_parameters()}  # views for recording
        forward = None
        leaves = list(network.parameters())
        optimizer = _adam(leaves, hp.lr, hp.weight_decay, device)
    # A host sync is ~free on the CPU, so there the masking below only runs once a trial has gone bad or sits
    # out a step; on a GPU it would stall the queue every step, so there the step is always masked on the device.
    check_on_host = device.type == "cpu" and not DEVICE_SIDE_MASKING

    n_trials, n_epochs = len(seeds), hp.epochs
    curves = {k: np.full((n_trials, n_epochs), np.nan) for k in CURVES}
    snapshots = hp.snapshot_epochs()
    weights = {name: np.empty((n_trials, len(snapshots), *p.shape[1:]), np.float32) for name, p in params.items()}
    diverged = torch.zeros(n_trials, dtype=torch.bool, device=device)
    diverged_epoch = torch.zeros(n_trials, dtype=torch.int32, device=device)

    def logits_for(x, shared):
        if not stacked:
            return network(x if shared else x[0]).unsqueeze(0)
        return forward(params, x)

    def record(slot):
        for name, p in params.items():
            weights[name][:, slot] = p.detach().cpu().numpy()

    if 0 in snapshots:
        record(0)
    order = BatchOrder(seeds, len(data.train_y), [t.train_fraction for t in settings])
    batch_size = hp.batch_size
    n_batches = -(-order.lengths // batch_size)  # per trial
    ragged = bool((order.lengths != order.lengths[0]).any())
    lengths = torch.as_tensor(order.lengths, device=device)
    n_batches_t = torch.as_tensor(n_batches, device=device)
    start = time.perf_counter()
    for epoch in range(1, n_epochs + 1):
        perm = order.next_epoch(device)
        epoch_loss = torch.zeros(n_trials, device=device)
        for step in range(int(n_batches.max())):
            live = np.flatnonzero(n_batches > step)  # known on the host: no device sync
            rows = slice(step * batch_size, (step + 1) * batch_size)
            if len(live) == n_trials:
                x, y = data.train_batch(perm[:, rows])
                per_sample = F.cross_entropy(logits_for(x, shared=False).flatten(0, 1), y.flatten(),
                                             reduction="none").view(y.shape)
            else:  # the trials whose (shorter) epoch is done sit out: only the others compute
                idx = torch.as_tensor(live, device=device)
                x, y = data.train_batch(perm[idx, rows])
                sub = {name: p.index_select(0, idx) for name, p in params.items()}
                per_sample = torch.zeros(n_trials, y.shape[1], device=device).index_copy(
                    0, idx, F.cross_entropy(forward(sub, x).flatten(0, 1), y.flatten(), reduction="none").view(y.shape))
            if ragged:  # a trial's last batch may be short, and past its epoch it has none
                valid = step * batch_size + torch.arange(per_sample.shape[1], device=device) < lengths.unsqueeze(1)
                loss = torch.where(valid, per_sample, 0.0).sum(1) / valid.sum(1).clamp(min=1)
                waiting = n_batches_t <= step if len(live) < n_trials else None
            else:
                loss = per_sample.mean(1)
                waiting = None
            bad = ~torch.isfinite(loss) | diverged
            optimizer.zero_grad()
            if check_on_host and waiting is None and not bool(bad.any()):
                loss.sum().backward()
                epoch_loss += loss.detach()
                optimizer.step()
                continue
            diverged_epoch.masked_fill_(bad & ~diverged, epoch)
            diverged |= bad
            active = ~diverged if waiting is None else ~diverged & ~waiting
            torch.where(active, loss, 0.0).sum().backward()
            epoch_loss += torch.where(active, loss.detach(), 0.0)
            if stacked:
                optimizer.step(active)  # a diverged trial's NaN gradient stays in its own slice, unused
            elif bool(active.all()):
                optimizer.step()
        with torch.no_grad():
            for split in ("train", "test"):
                mean_loss, accuracy = _evaluate(logits_for, data, split)
                curves[f"{split}_loss"][:, epoch - 1] = mean_loss
                curves[f"{split}_accuracy"][:, epoch - 1] = accuracy
        # Every batch loss can be finite while a split's loss is not (1e35 per sample overflows the float32 sum
        # over the split): a non-finite evaluation is divergence too. A finite loss, however large (1e25), is
        # not: the network still computes, and its accuracy decides its group (docs/reliability.md).
        evaluated = np.stack([curve[:, epoch - 1] for curve in curves.values()])
        bad = torch.from_numpy(~np.isfinite(evaluated).all(axis=0)).to(device) & ~diverged
        if bad.any():
            diverged_epoch.masked_fill_(bad, epoch)
            diverged |= bad
        if epoch in snapshots:
            record(snapshots.index(epoch))
        _log_epoch(epoch, n_epochs, epoch_loss / n_batches_t, diverged, n_trials * perm.shape[1] * epoch, start)
    return TrainResult(
        trials=None, seeds=seeds, snapshots=snapshots, weights=weights,
        diverged=diverged.cpu().numpy(), diverged_epoch=diverged_epoch.cpu().numpy(), **curves,
    )


def _adam(leaves, lr, weight_decay, device):
    """torch's Adam for one trial, with its fused kernel (one pass per tensor) where this torch has one."""
    try:
        return torch.optim.Adam(leaves, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(leaves, lr=lr, weight_decay=weight_decay, foreach=device.type != "cpu")


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(trials,) values viewed to broadcast against a stacked (trials, ...) tensor."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def _evaluate(logits_for, data: TensorData, split: str):
    """Mean cross-entropy and accuracy of every trial on a whole split (shared inputs)."""
    x_all, y_all = (data.train_x, data.train_y) if split == "train" else (data.test_x, data.test_y)
    loss_sum, correct = 0.0, 0.0
    for start in range(0, len(y_all), EVAL_BATCH):
        x = data.normalise(x_all[start : start + EVAL_BATCH])
        y = y_all[start : start + EVAL_BATCH]
        logits = logits_for(x, shared=True)
        target = y.expand(logits.shape[0], -1)
        loss_sum = loss_sum + F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(target.shape).sum(1)
        correct = correct + (logits.argmax(-1) == target).sum(1)
    n = len(y_all)
    return (loss_sum / n).cpu().numpy(), (correct / n).cpu().numpy()


def _log_epoch(epoch, n_epochs, losses, diverged, trial_samples, start):
    elapsed = time.perf_counter() - start
    finite = losses[~diverged].cpu().numpy()
    spread = (
        f"{finite.min():.4f}/{np.median(finite):.4f}/{finite.max():.4f}" if finite.size else "n/a (all diverged)"
    )
    log.info(
        "epoch %d/%d loss min/median/max %s trial-samples/s %.0f elapsed %.1fs diverged %d",
        epoch, n_epochs, spread, trial_samples / max(elapsed, 1e-9), elapsed, int(diverged.sum()),
    )


def _concatenate(parts: list[TrainResult], order: np.ndarray) -> TrainResult:
    """The parts' trials one after another, then taken in ``order``."""
    if len(parts) == 1:  # a whole chunk trained in one stack: no copy of its (possibly large) weights
        return parts[0]

    def cat(arrays):
        return np.concatenate(arrays)[order]

    keys = (*CURVES, "diverged", "diverged_epoch", "seeds")
    return TrainResult(
        trials=None,
        snapshots=parts[0].snapshots,
        weights={name: cat([p.weights[name] for p in parts]) for name in parts[0].weights},
        **{k: cat([getattr(p, k) for p in parts]) for k in keys},
    )
