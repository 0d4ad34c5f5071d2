"""Export for weight-space learning: rows rebuild the zoo's networks, canonical rows the same functions, the
Dataset feeds nfn's layers, and zoos that do not fit are refused with the reason."""

import ast
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from helpers import permute_hidden, tiny_dataset
from weightzoo.data import load_dataset, save_dataset
from weightzoo.export import export_zoos, read_export
from weightzoo.export.__main__ import main as export_main
from weightzoo.export.dataset import WeightSpaceDataset, collate
from weightzoo.io.store import write_zoo
from weightzoo.jobs.train import train_chunk
from weightzoo.models import build_model
from weightzoo.train import TensorData
from zoo_factory import make_zoo

ROOT = Path(__file__).resolve().parents[1]
TRAINING = {"epochs": 2, "batch_size": 50, "snapshots": [0, 1, -1]}


@pytest.fixture(scope="module")
def zoos(tmp_path_factory):
    """Real tiny zoos on one prepared dataset: two DNN experiments of one shape (an lr sweep and other seeds),
    a narrower DNN, a smallcnn (conv chain, a ReLU and a tanh trial) and a CNN (conv -> flatten -> fc: no chain)."""
    folder = tmp_path_factory.mktemp("zoos")
    save_dataset(tiny_dataset(n_train=200, n_test=100), folder / "tiny.nc")
    runs = {"h6": ("dnn", {"hidden": 6}, range(6), {"lr": [0.03, 0.001]}),
            "h6b": ("dnn", {"hidden": 6}, range(6, 9), {"lr": 0.01}),
            "h4": ("dnn", {"hidden": 4}, range(2), {}),
            "s4": ("smallcnn", {"channels": 4}, range(2), {"activation": ["relu", "tanh"], "lr": 0.01,
                                                          "weight_decay": 1e-3}),
            "c2": ("cnn", {"channels": 2}, range(2), {})}
    paths = {"dataset": folder / "tiny.nc"}
    for arch, (model, params, trials, hyperparameters) in runs.items():
        paths[arch] = folder / f"{arch}.nc"
        train_chunk(folder / "tiny.nc", paths[arch], model=model, dataset="tiny", arch=arch, arch_params=params,
                    trials=list(trials), training=TRAINING, hyperparameters=hyperparameters)
    return paths


EXPORTED = {"dnn": ("h6", "h6b"), "smallcnn": ("s4",)}


@pytest.fixture(scope="module", params=list(EXPORTED))
def exports(zoos, tmp_path_factory, request):
    """(raw, canonical) export folders of the DNN pair, resp. the smallcnn zoo."""
    folder = tmp_path_factory.mktemp(request.param)
    paths = [zoos[arch] for arch in EXPORTED[request.param]]
    return export_zoos(paths, folder / "raw"), export_zoos(paths, folder / "canonical", canonical=True)


def _networks(folder):
    """Every row rebuilt the way a user would: build_model + the row cut and reshaped through layout.csv."""
    weights = np.load(folder / "weights.npy")
    layout = pd.read_csv(folder / "layout.csv")
    metrics = pd.read_csv(folder / "metrics.csv")
    manifest = json.loads((folder / "export.json").read_text())
    for row, (experiment, activation) in enumerate(zip(metrics["experiment"], metrics["activation"])):
        kwargs = manifest["experiments"][experiment]["model_kwargs"]
        net = build_model(manifest["model"], activation=activation, **kwargs)
        state = {name: torch.from_numpy(weights[row, start:end].reshape(ast.literal_eval(shape)))
                 for name, start, end, shape in layout[["varname", "start_idx", "end_idx", "shape"]].values}
        net.load_state_dict(state)
        yield row, net.eval()


def _curves(net, data):
    with torch.no_grad():
        out = {}
        for split, x, y in (("train", data.train_x, data.train_y), ("test", data.test_x, data.test_y)):
            logits = net(data.normalise(x))
            out[f"{split}_accuracy"] = (logits.argmax(-1) == y).float().mean().item()
            out[f"{split}_loss"] = F.cross_entropy(logits, y).item()
    return out


def test_rows_rebuild_networks_that_reproduce_the_recorded_curves(zoos, exports):
    raw, _ = exports
    metrics = pd.read_csv(raw / "metrics.csv")
    assert metrics.columns.tolist() == ["experiment", "trial", "seed", "lr", "init_std", "batch_size",
                                        "train_fraction", "weight_decay", "activation", "step", "train_loss",
                                        "test_loss", "train_accuracy", "test_accuracy", "diverged"]
    assert np.load(raw / "weights.npy").dtype == np.float32
    assert metrics["step"].tolist()[:3] == [0, 1, 2]
    assert metrics.loc[metrics["step"] == 0, "test_accuracy"].isna().all()
    data = TensorData.from_dataset(load_dataset(zoos["dataset"]))
    checked = 0
    for row, net in _networks(raw):
        if metrics.loc[row, "step"] == 0:
            continue
        for name, value in _curves(net, data).items():
            tolerance = 1e-6 if name.endswith("accuracy") else 1e-5
            assert value == pytest.approx(metrics.loc[row, name], rel=tolerance, abs=tolerance), (row, name)
        checked += 1
    assert checked == len(metrics) * 2 // 3
    layout = pd.read_csv(raw / "layout.csv")
    assert layout["kind"].tolist() == ["weight", "bias"] * (len(layout) // 2)
    if metrics["experiment"].iloc[0].startswith("dnn"):
        assert metrics["experiment"].unique().tolist() == ["dnn/tiny/h6", "dnn/tiny/h6b"] and len(metrics) == 9 * 3
        assert metrics["lr"].tolist()[:6] == [0.03] * 3 + [0.001] * 3
        assert layout["end_idx"].iloc[-1] == 6 * 64 + 6 + 42 + 70
    else:
        assert metrics["activation"].tolist() == ["relu"] * 3 + ["tanh"] * 3
        assert metrics["weight_decay"].unique().tolist() == [1e-3]
        assert layout["shape"].tolist()[:3] == ["(4, 1, 3, 3)", "(4,)", "(4, 4, 3, 3)"]


def test_canonical_rows_are_the_same_functions(zoos, exports):
    raw, canonical = exports
    assert (raw / "layout.csv").read_text() == (canonical / "layout.csv").read_text()
    assert (raw / "metrics.csv").read_text() == (canonical / "metrics.csv").read_text()
    x = TensorData.from_dataset(load_dataset(zoos["dataset"])).test_x[:50]
    x = x.float() / 255
    with torch.no_grad():
        for (_, a), (_, b) in zip(_networks(raw), _networks(canonical)):
            torch.testing.assert_close(b(x), a(x), atol=1e-5, rtol=1e-5)
    rows = read_export(canonical)
    first = rows.shapes()[0]  # the first layer's units sorted by strength, descending
    strength = np.abs(rows.weights[:, : int(np.prod(first))].reshape(len(rows.weights), first[0], -1)).sum(axis=2)
    assert (np.diff(strength, axis=1) <= 0).all()
    assert not np.array_equal(rows.weights, read_export(raw).weights)


def test_zoos_that_do_not_fit_are_refused(zoos, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"h4.nc: parameter shapes differ .*fc1.weight \(4, 64\) vs \(6, 64\)"):
        export_zoos([zoos["h6"], zoos["h4"]], tmp_path / "mixed")
    with pytest.raises(ValueError, match="model 'cnn'"):
        export_zoos([zoos["h6"], zoos["c2"]], tmp_path / "models")
    assert export_main([str(zoos["c2"]), "--out", str(tmp_path / "cnn"), "--canonical"]) == 2
    assert re.search(r"c2.nc: --canonical: .*not 'cnn': fc takes 72 inputs but conv1 has 2 outputs "
                     r"\(a flatten mixes positions", capsys.readouterr().err)
    assert export_main([str(zoos["c2"]), "--out", str(tmp_path / "cnn")]) == 0  # raw rows need no chain
    with pytest.raises(ValueError, match="not 'cnn'.*a flatten mixes positions"):
        WeightSpaceDataset.from_export(tmp_path / "cnn")
    vit = make_zoo(n_trials=2, model="vit").assign_attrs(
        hyperparameters="{}", parameters=json.dumps([f"fc{i}.{k}" for i in (1, 2, 3) for k in ("weight", "bias")]))
    write_zoo(vit, tmp_path / "vit.nc")
    with pytest.raises(ValueError, match="not 'vit': its family declares no chain of permutable layers"):
        WeightSpaceDataset.from_zoos([tmp_path / "vit.nc"])
    (tmp_path / "cnn" / "layout.csv").unlink()
    with pytest.raises(ValueError, match=r"cnn: not an export folder \(missing layout.csv\)"):
        read_export(tmp_path / "cnn")


SHAPES = {"dnn": [(1, 6, 64), (1, 6, 6), (1, 10, 6)],
          "smallcnn": [(1, 4, 1, 3, 3), (1, 4, 4, 3, 3), (1, 4, 4, 3, 3), (1, 10, 4)]}


def test_dataset_feeds_nfn_layers_and_the_pool_is_permutation_invariant(zoos, exports):
    from nfn.layers import HNPLinear, HNPPool, NPLinear, NPPool, TupleOp

    raw, _ = exports
    dataset = WeightSpaceDataset.from_export(raw)
    same = WeightSpaceDataset.from_zoos([zoos[arch] for arch in EXPORTED[dataset.model]])
    assert len(dataset) == {"dnn": 9, "smallcnn": 2}[dataset.model] and dataset.table["step"].unique().tolist() == [2]
    for a, b in zip(dataset.weights + dataset.biases + [dataset.targets], same.weights + same.biases + [same.targets]):
        torch.testing.assert_close(a, b)
    features, target = dataset[0]
    assert [tuple(w.shape) for w in features.weights] == SHAPES[dataset.model]
    assert [tuple(b.shape) for b in features.biases] == [s[:2] for s in SHAPES[dataset.model]]
    assert target.item() == pytest.approx(dataset.table["test_accuracy"].iloc[0])
    first = read_export(raw).state_dict(int(np.flatnonzero(read_export(raw).metrics["step"] == 2)[0]))
    np.testing.assert_array_equal(features.weights[1][0].numpy(), list(first.values())[2])
    params, targets = next(iter(DataLoader(dataset, batch_size=4, collate_fn=collate)))
    batch = min(4, len(dataset))
    assert tuple(params.weights[0].shape) == (batch, *SHAPES[dataset.model][0]) and tuple(targets.shape) == (batch,)
    permuted = permute_hidden(params, torch.Generator().manual_seed(0))
    assert not torch.equal(permuted.weights[1], params.weights[1])
    spec = dataset.network_spec
    torch.manual_seed(0)
    for layer, pool in ((HNPLinear, HNPPool), (NPLinear, NPPool)):
        net = torch.nn.Sequential(layer(spec, 1, 3), TupleOp(torch.nn.ReLU()), pool(spec))
        out = net(params)
        assert tuple(out.shape) == (batch, 3, pool.get_num_outs(spec))
        torch.testing.assert_close(net(permuted), out, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(out[0], out[1])


def test_docs_example_runs(zoos, tmp_path, monkeypatch):
    text = (ROOT / "docs" / "export.md").read_text(encoding="utf-8")
    code = re.search(r"<!-- tested: tests/test_export.py -->\n```python\n(.*?)```", text, re.S).group(1)
    (tmp_path / "results/zoo/dnn/tiny").mkdir(parents=True)
    shutil.copy(zoos["h6"], tmp_path / "results/zoo/dnn/tiny/h6.nc")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "docs/export.md", "exec"), namespace)
    assert (tmp_path / "results/export/dnn/tiny/h6/raw/weights.npy").is_file()
