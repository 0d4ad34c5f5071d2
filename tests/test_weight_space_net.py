"""Method (e): the weight-space network is invariant to hidden permutations, learns a planted signal, and its job
predicts every trial of the folds it is given, one network per shape group and fold, repeatably."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import permute_hidden, tiny_dataset
from weightzoo.analysis.weight_space_net import InvariantNetwork, Settings, cross_validate, layer_scales
from weightzoo.data import save_dataset
from weightzoo.export.dataset import WeightSpaceDataset
from weightzoo.jobs.train import train_chunk
from weightzoo.jobs.weight_space import train_weight_space_net

@pytest.fixture(autouse=True)
def one_thread():
    """Tiny layers: a second thread only adds synchronisation (3x the CPU time measured on a busy 2-core host)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = {"channels": 4, "head_width": 8, "epochs": 3, "batch_size": 8, "lr": 1e-3, "seed": 0}


@pytest.fixture(scope="module")
def zoos(tmp_path_factory):
    """Two DNN widths (two shape groups) of one (model, dataset), an lr sweep in each."""
    folder = tmp_path_factory.mktemp("wsn")
    save_dataset(tiny_dataset(n_train=200, n_test=100), folder / "tiny.nc")
    paths = []
    for hidden, trials in ((6, 12), (4, 6)):
        paths.append(folder / f"h{hidden}.nc")
        train_chunk(folder / "tiny.nc", paths[-1], model="dnn", dataset="tiny", arch=f"h{hidden}",
                    arch_params={"hidden": hidden}, trials=list(range(trials)),
                    training={"epochs": 2, "batch_size": 50, "snapshots": [0, -1]},
                    hyperparameters={"lr": [0.03, 0.003, 0.0003]})
    return paths


def folds_file(path, leave_out=()):
    rows = [{"experiment": f"dnn/tiny/h{h}", "trial": t, "recipe": f"h{h}-lr{t % 3}", "fold": t % 3}
            for h, n in ((6, 12), (4, 6)) for t in range(n) if (h, t) not in leave_out]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def chain_rows(n, rng):
    """Synthetic 4 -> 5 -> 3 networks whose target is the scale of their first layer."""
    scale = rng.uniform(0.2, 2.0, n)
    sizes = [20, 5, 15, 3]
    rows = np.concatenate([rng.normal(size=(n, k)) * (scale[:, None] if i == 0 else 1) for i, k in enumerate(sizes)], 1)
    ends = np.cumsum(sizes)
    layout = pd.DataFrame({"varname": ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
                           "layer": ["fc1", "fc1", "fc2", "fc2"], "kind": ["weight", "bias"] * 2, "shape": ["(5, 4)", "(5,)", "(3, 5)", "(3,)"],
                           "start_idx": ends - sizes, "end_idx": ends, "size": sizes})
    table = pd.DataFrame({"experiment": "x", "trial": range(n), "step": 1, "test_accuracy": scale})
    return WeightSpaceDataset.from_rows(rows.astype(np.float32), layout, table, model=None)


@pytest.mark.parametrize("layer", ["hnp", "np"])
def test_network_ignores_hidden_permutations_and_learns_a_planted_signal(layer):
    import scipy.stats

    dataset = chain_rows(160, np.random.default_rng(0))
    settings = Settings(layer=layer, channels=4, head_width=16, epochs=15, batch_size=16, lr=3e-3)
    network = InvariantNetwork(dataset.network_spec, settings, *layer_scales(dataset))
    params, _ = dataset.batch(range(8))
    with torch.no_grad():
        torch.testing.assert_close(network(permute_hidden(params, torch.Generator().manual_seed(1))), network(params),
                                   atol=1e-5, rtol=1e-5)
    predicted, skipped = cross_validate(dataset, np.arange(160) % 4, settings)
    assert not skipped and np.isfinite(predicted).all()
    assert scipy.stats.kendalltau(dataset.targets.numpy(), predicted).statistic > 0.5


def test_job_predicts_each_fold_per_shape_group_repeatably(zoos, tmp_path):
    folds = folds_file(tmp_path / "folds.csv", leave_out={(6, 11)})
    out = [tmp_path / "a.csv", tmp_path / "a.json"]
    train_weight_space_net(zoos, folds, *out, settings={**TINY, "layer": "hnp", "enabled": True})
    table = pd.read_csv(out[0])
    assert table.columns.tolist() == ["experiment", "trial", "fold", "target", "predicted"]
    assert len(table) == 17 and table["predicted"].notna().all()
    assert table.groupby("experiment")["fold"].nunique().tolist() == [3, 3]
    summary = json.loads(out[1].read_text())
    assert [g["experiments"] for g in summary["groups"]] == [["dnn/tiny/h6"], ["dnn/tiny/h4"]]
    assert summary["groups"][0]["not_in_folds"] == 1 and summary["groups"][0]["parameters"] > 0
    assert {"wall_s", "kendall_tau", "settings", "target"} <= set(summary) and summary["settings"]["layer"] == "hnp"
    recorded = np.concatenate([WeightSpaceDataset.from_zoos([path]).targets.numpy() for path in zoos])
    assert table["target"].tolist() == pytest.approx(np.delete(recorded, 11).tolist())
    again = [tmp_path / "b.csv", tmp_path / "b.json"]
    train_weight_space_net(zoos, folds, *again, settings={**TINY, "layer": "hnp"})
    pd.testing.assert_frame_equal(pd.read_csv(again[0]), table)


def test_job_skips_what_it_cannot_train_and_refuses_bad_folds(zoos, tmp_path):
    folds = folds_file(tmp_path / "folds.csv")
    out = [tmp_path / "a.csv", tmp_path / "a.json"]
    train_weight_space_net(zoos, folds, *out, settings={**TINY, "max_parameters": 100})
    assert pd.read_csv(out[0])["predicted"].isna().all()
    assert "max_parameters" in json.loads(out[1].read_text())["groups"][0]["skipped"]
    pd.read_csv(folds).drop(columns="recipe").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad.csv: no column recipe"):
        train_weight_space_net(zoos, tmp_path / "bad.csv", *out, settings=TINY)
    with pytest.raises(ValueError, match=r"experiments \['dnn/tiny/h4'\] are in the folds file but no zoo"):
        train_weight_space_net(zoos[:1], folds, *out, settings=TINY)
