import numpy as np
import pytest

from helpers import tiny_dataset
from weightzoo.models import model_kwargs
from weightzoo.train import BatchOrder, Hyperparameters, TensorData, train_trials

VIT = {"patch_size": 4, "embed_dim": 16, "depth": 1, "heads": 2, "mlp_ratio": 2.0, "pool": "cls"}
ARCH = {"dnn": {"hidden": 6}, "cnn": {"channels": 3}, "vit": VIT, "smallcnn": {"channels": 4}}


@pytest.fixture(scope="module")
def data():
    return TensorData.from_dataset(tiny_dataset())


def run(data, model, trials, vectorize, per_trial=None, **hp):
    kwargs = model_kwargs(model, ARCH[model], data.input_shape, data.n_classes)
    return train_trials(model, kwargs, data, trials, Hyperparameters(**{"epochs": 1, "batch_size": 32, **hp}),
                        vectorize=vectorize, per_trial=per_trial)


@pytest.mark.parametrize("model", ["dnn", "cnn", "vit", "smallcnn"])
def test_vectorized_equals_each_trial_alone(data, model):
    together = run(data, model, [0, 1, 2], vectorize=True)
    alone = [run(data, model, [t], vectorize=False) for t in (0, 1, 2)]
    assert together.vectorized and not alone[0].vectorized
    for name, stacked in together.weights.items():
        separate = np.concatenate([a.weights[name] for a in alone])
        np.testing.assert_allclose(stacked, separate, atol=1e-5, rtol=0, err_msg=name)
        assert not np.allclose(stacked[:, 0], stacked[:, -1]), f"{name} did not train"
    np.testing.assert_allclose(together.test_accuracy, np.concatenate([a.test_accuracy for a in alone]), atol=1e-6)
    # different seeds: different initial weights
    assert not np.allclose(together.weights[next(iter(together.weights))][0, 0],
                           together.weights[next(iter(together.weights))][1, 0])


SWEEP = [  # stacks by batch size: within one, lr, init_std, weight decay and train fraction all differ
    {"lr": 1e-2, "init_std": 0.05, "batch_size": 32, "train_fraction": 1.0, "weight_decay": 0.0},
    {"lr": 1e-3, "init_std": 0.3, "batch_size": 20, "train_fraction": 0.5, "weight_decay": 1e-2},
    {"lr": 2e-3, "init_std": 0.5, "batch_size": 32, "train_fraction": 0.37, "weight_decay": 1e-3},
    {"lr": 3e-4, "init_std": 0.05, "batch_size": 20, "train_fraction": 0.8, "weight_decay": 0.0},
    {"lr": 3e-3, "init_std": 0.1, "batch_size": 32, "train_fraction": 0.25, "weight_decay": 3e-2},
]


@pytest.mark.parametrize("model", ["dnn", "cnn", "smallcnn"])
def test_mixed_hyperparameters_vectorized_equal_one_by_one(data, model):
    together = run(data, model, range(5), vectorize=True, per_trial=SWEEP, epochs=2)
    alone = [run(data, model, [t], vectorize=False, per_trial=[SWEEP[t]], epochs=2) for t in range(5)]
    for name, stacked in together.weights.items():
        np.testing.assert_allclose(stacked, np.concatenate([a.weights[name] for a in alone]), atol=1e-5, rtol=0,
                                   err_msg=name)
    # the stacked Adam and torch's fused one round differently: losses agree to 1e-4 relative
    np.testing.assert_allclose(together.train_loss, np.concatenate([a.train_loss for a in alone]), atol=1e-5,
                               rtol=1e-4)
    assert together.trials.tolist() == list(range(5))
    for key in SWEEP[0]:
        assert together.hyperparameters[key].tolist() == [s[key] for s in SWEEP]
    # init_std reaches the initial weights of its own trial only
    first = together.weights["fc1.weight" if model == "dnn" else "conv1.weight"][:, 0]
    np.testing.assert_allclose(first.std(axis=tuple(range(1, first.ndim))), [s["init_std"] for s in SWEEP], rtol=0.3)


def test_activation_choice_stacks_per_activation_and_equals_one_by_one(data):
    per_trial = [{"activation": a, "lr": lr} for a, lr in zip(["tanh", "relu", "tanh", "relu"], [1e-2, 3e-3, 1e-3, 5e-3])]
    together = run(data, "smallcnn", range(4), vectorize=True, per_trial=per_trial)
    alone = [run(data, "smallcnn", [t], vectorize=False, per_trial=[per_trial[t]]) for t in range(4)]
    for name, stacked in together.weights.items():
        np.testing.assert_allclose(stacked, np.concatenate([a.weights[name] for a in alone]), atol=1e-5, rtol=0,
                                   err_msg=name)
    assert together.hyperparameters["activation"].tolist() == ["tanh", "relu", "tanh", "relu"]
    # tanh and ReLU nets of one seed and lr differ (the activation reached the network)
    same = run(data, "smallcnn", [0], vectorize=True, per_trial=[{"activation": "relu", "lr": 1e-2}])
    assert not np.allclose(same.weights["fc.weight"][0, -1], together.weights["fc.weight"][0, -1])


def test_stacked_adam_is_torch_adam_per_trial():
    """Per-trial lr and weight decay, and a trial that sits out some steps, against one torch Adam per trial."""
    import torch

    from weightzoo.train import StackedAdam

    torch.manual_seed(0)
    lrs, decays = [1e-3, 2.5e-2, 3e-4], [0.0, 1e-2, 4e-8]
    start = torch.randn(3, 7, 5)
    stacked = start.clone().requires_grad_()
    alone = [start[k].clone().requires_grad_() for k in range(3)]
    optimizer = StackedAdam([stacked], lrs, decays)
    references = [torch.optim.Adam([p], lr=lr, weight_decay=wd) for p, lr, wd in zip(alone, lrs, decays)]
    for step in range(60):
        grad = torch.randn(3, 7, 5) * 10.0 ** (-step % 5)
        active = torch.tensor([True, step % 3 != 0, True])  # trial 1 sits out every third step
        stacked.grad = grad.clone()
        optimizer.step(None if bool(active.all()) else active)
        for k in range(3):
            if active[k]:
                alone[k].grad = grad[k].clone()
                references[k].step()
    for k in range(3):
        torch.testing.assert_close(stacked[k].detach(), alone[k].detach(), rtol=1e-5, atol=1e-5)


def test_weight_decay_shrinks_the_weights(data):
    free, decayed = (run(data, "dnn", [0], vectorize=True, per_trial=[{"weight_decay": wd, "lr": 1e-2}], epochs=3)
                     for wd in (0.0, 1.0))
    assert np.abs(decayed.weights["fc1.weight"][0, -1]).mean() < 0.8 * np.abs(free.weights["fc1.weight"][0, -1]).mean()


def test_no_sweep_is_unchanged_by_per_trial_defaults(data):
    plain = run(data, "dnn", [0, 1, 2], vectorize=True)
    same = run(data, "dnn", [0, 1, 2], vectorize=True, per_trial=[{"lr": 1e-3, "init_std": 0.05, "batch_size": 32,
                                                                   "train_fraction": 1.0, "weight_decay": 0.0}] * 3)
    for name in plain.weights:
        np.testing.assert_array_equal(plain.weights[name], same.weights[name])


def test_train_fraction_uses_a_fixed_subset_of_its_own():
    order = BatchOrder([0, 1], n_samples=100, train_fraction=0.25)
    epochs = [order.next_epoch("cpu") for _ in range(3)]
    assert epochs[0].shape == (2, 25)
    for trial in (0, 1):  # the same 25 samples every epoch, in a new order
        assert all(set(e[trial].tolist()) == set(epochs[0][trial].tolist()) for e in epochs)
        assert not all(np.array_equal(e[trial], epochs[0][trial]) for e in epochs[1:])
    assert set(epochs[0][0].tolist()) != set(epochs[0][1].tolist())
    # the full split draws nothing extra: the same permutations as without a fraction
    full, plain = BatchOrder([0], 100, 1.0), BatchOrder([0], 100)
    np.testing.assert_array_equal(full.next_epoch("cpu"), plain.next_epoch("cpu"))


def test_train_fraction_trains_only_on_its_subset(data):
    """Scrambling every train sample outside a trial's subset leaves its weights exactly as they were."""
    import torch

    per_trial = [{"train_fraction": 0.2}]
    clean = run(data, "dnn", [3], vectorize=True, per_trial=per_trial, epochs=3)
    outside = torch.ones(len(data.train_y), dtype=torch.bool)
    outside[BatchOrder([3], len(data.train_y), 0.2).subsets[0]] = False
    x, y = data.train_x.clone(), data.train_y.clone()
    x[outside], y[outside] = 255 - x[outside], (y[outside] + 1) % data.n_classes
    scrambled = run(TensorData(**{**vars(data), "train_x": x, "train_y": y}), "dnn", [3], vectorize=True,
                    per_trial=per_trial, epochs=3)
    for name in clean.weights:
        np.testing.assert_array_equal(clean.weights[name], scrambled.weights[name], err_msg=name)
    assert not np.array_equal(clean.train_accuracy, scrambled.train_accuracy)  # curves use the whole split
    everything = run(data, "dnn", [3], vectorize=True, epochs=3)
    assert not np.allclose(clean.weights["fc1.weight"][:, -1], everything.weights["fc1.weight"][:, -1])


def test_train_fraction_of_nothing_names_the_key(data):
    with pytest.raises(ValueError, match="train_fraction"):
        run(data, "dnn", [0], vectorize=True, per_trial=[{"train_fraction": 0.001}])


def test_seed_fixes_trial_regardless_of_chunk(data):
    a = run(data, "dnn", [0, 1, 2, 3], vectorize=True)
    b = run(data, "dnn", [2, 3], vectorize=True)
    np.testing.assert_allclose(a.weights["fc1.weight"][2:], b.weights["fc1.weight"], atol=1e-6)
    np.testing.assert_array_equal(b.seeds, [2, 3])


def test_training_learns(data):
    result = run(data, "dnn", [0, 1], vectorize=True, epochs=10, lr=1e-2)
    assert result.train_accuracy.shape == (2, 10)
    assert (result.test_accuracy[:, -1] > 0.8).all()
    assert (result.train_loss[:, -1] < result.train_loss[:, 0]).all()
    assert result.snapshots == [0, 1, 10]


def test_divergence_is_isolated(data):
    """A trial whose loss blows up stops updating and leaves its chunk-mates untouched."""
    healthy = run(data, "dnn", [0, 2], vectorize=True, epochs=2)
    import weightzoo.train as train_module

    original = train_module.initial_parameters

    def poisoned(model, kwargs, seed, std):
        params = original(model, kwargs, seed, std)
        if seed == 1:
            params["fc3.bias"][0] = float("inf")
        return params

    train_module.initial_parameters = poisoned
    try:
        mixed = run(data, "dnn", [0, 1, 2], vectorize=True, epochs=2)
    finally:
        train_module.initial_parameters = original
    np.testing.assert_array_equal(mixed.diverged, [False, True, False])
    assert mixed.diverged_epoch.tolist() == [0, 1, 0]
    for name in healthy.weights:
        np.testing.assert_allclose(mixed.weights[name][[0, 2]], healthy.weights[name], atol=1e-6)
    # the diverged trial never moved from its initial weights
    np.testing.assert_array_equal(mixed.weights["fc1.weight"][1, 0], mixed.weights["fc1.weight"][1, -1])


FMNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not __import__("os").path.isdir(FMNIST), reason=f"real Fashion-MNIST not installed at {FMNIST} "
                    "(Debian package dataset-fashion-mnist; `make test` installs it when run as root)")
def test_trains_on_real_fashion_mnist():
    from weightzoo.data import prepare_dataset

    data = TensorData.from_dataset(prepare_dataset("fmnist", {"data_dir": FMNIST}))
    assert data.train_x.shape == (60000, 1, 28, 28) and data.test_x.shape == (10000, 1, 28, 28)
    data.train_x, data.train_y = data.train_x[:10000], data.train_y[:10000]  # keep the test quick
    kwargs = model_kwargs("dnn", {"hidden": 32}, data.input_shape, data.n_classes)
    result = train_trials("dnn", kwargs, data, [0, 1], Hyperparameters(epochs=2))
    assert (result.test_accuracy[:, -1] > 0.7).all()  # a 784-32-32-10 net on 10k images: about 80%


def test_stacked_cnn_matches_nn_conv2d(monkeypatch):
    """The hand-batched CNN (im2col + batched GEMM) gives nn.Conv2d's logits and gradients, per trial."""
    import torch
    import torch.nn.functional as F

    from weightzoo.models import build_model, cnn

    monkeypatch.setattr(cnn, "WORKSPACE_FLOATS", 3 * 4 * 49 * 4)  # shared inputs: chunks of 4

    def reference(net, x):  # the CNN by torch's own layers
        return net.fc(torch.relu(F.conv2d(x, net.conv1.weight, net.conv1.bias)).flatten(1))

    torch.manual_seed(0)
    nets = [build_model("cnn", in_channels=3, image_size=9, channels=4, n_classes=5) for _ in range(3)]
    params = {name: torch.stack([dict(n.named_parameters())[name].detach() for n in nets]).requires_grad_()
              for name, _ in nets[0].named_parameters()}
    x = torch.randn(3, 7, 3, 9, 9)
    workspace = cnn.Workspace()
    for _ in range(2):  # the second step runs on reused buffers
        logits = cnn.stacked_forward(params, x, workspace)
        (logits ** 2).sum().backward()
    for k, net in enumerate(nets):
        expected = reference(net, x[k])
        torch.testing.assert_close(logits[k], expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(net(x[k]), expected, atol=1e-5, rtol=1e-5)  # the module runs the same forward
        (2 * (expected ** 2).sum()).backward()
        for name, p in net.named_parameters():
            torch.testing.assert_close(params[name].grad[k], p.grad, atol=1e-4, rtol=1e-4, msg=name)
    shared = torch.randn(11, 3, 9, 9)
    with torch.no_grad():
        together = cnn.stacked_forward(params, shared, workspace)
        for k, net in enumerate(nets):
            torch.testing.assert_close(together[k], reference(net, shared), atol=1e-5, rtol=1e-5)
