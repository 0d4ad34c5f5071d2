import json

import numpy as np
import pytest
import torch
import xarray as xr

from helpers import tiny_dataset
from weightzoo.analysis.trained import (
    dead_unit_masks,
    dead_units,
    frozen_layers,
    never_trained,
    parameter_motion,
    summary_table,
    train_inputs,
    training_status,
)
from weightzoo.models import build_model, model_kwargs
from weightzoo.io.store import result_to_dataset
from weightzoo.train import Hyperparameters, TensorData, train_trials
from zoo_factory import make_zoo


def moving_zoo(n_trials=6, seed=0):
    """A synthetic DNN zoo (16 → 8 → 8 → 10) in which every value moves between snapshots."""
    ds = make_zoo(n_trials=n_trials, n_in=16, hidden=8, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for layer in ("fc1", "fc2", "fc3"):
        bias = ds[f"{layer}_bias"]
        ds[f"{layer}_bias"] = bias.copy(data=rng.normal(0.0, 0.05, bias.shape).astype(np.float32))
    return ds


def plant_frozen(ds, variable, trials=slice(None), units=slice(None)):
    """Make ``variable``'s final values equal its initial ones (rows ``units`` of trials ``trials``)."""
    values = ds[variable].values.copy()
    values[trials, -1, units] = values[trials, 0, units]
    ds[variable] = ds[variable].copy(data=values)
    return ds


def test_planted_frozen_layer_is_found_and_nothing_else():
    ds = moving_zoo()
    plant_frozen(ds, "fc2_weight")
    plant_frozen(ds, "fc2_bias")
    plant_frozen(ds, "fc1_weight", trials=0, units=3)  # one frozen unit of one trial
    motion = parameter_motion(ds)
    assert motion.attrs["motion_status"] == "ok"
    assert list(motion["part"].values) == [f"fc{i}_{k}" for i in (1, 2, 3) for k in ("weight", "bias")]
    unchanged = motion["unchanged_share"]
    np.testing.assert_array_equal(unchanged.sel(part=["fc2_weight", "fc2_bias"]).values, 1.0)
    others = unchanged.drop_sel(part=["fc2_weight", "fc2_bias"])
    assert float(others.max()) <= 1 / 8 + 1e-6  # the one frozen fc1 row is 1/8 of fc1's values in trial 0
    np.testing.assert_allclose(motion["frozen_unit_share"].sel(part="fc1_weight").values, [1 / 8, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(motion["max_abs_change"].sel(part="fc2_weight").values, 0.0)
    expected = np.abs(ds["fc3_weight"].values[:, -1] - ds["fc3_weight"].values[:, 0]).max(axis=(1, 2))
    np.testing.assert_allclose(motion["max_abs_change"].sel(part="fc3_weight").values, expected, rtol=1e-6)
    before, after = ds["fc3_weight"].values[:, 0], ds["fc3_weight"].values[:, -1]
    expected = np.linalg.norm((after - before).reshape(6, -1), axis=1) / np.linalg.norm(before.reshape(6, -1), axis=1)
    np.testing.assert_allclose(motion["relative_change"].sel(part="fc3_weight").values, expected, rtol=1e-5)
    np.testing.assert_array_equal(motion["relative_change"].sel(part="fc2_weight").values, 0.0)

    flags = never_trained(motion)
    share = flags["frozen_trial_share"].to_series()
    assert share[["fc2_weight", "fc2_bias"]].tolist() == [1.0, 1.0]
    assert share.drop(["fc2_weight", "fc2_bias"]).max() == 0.0
    assert frozen_layers(motion) == {"fc2": ["fc2_weight"]}

    table = summary_table(motion).set_index("part")
    assert table.loc["fc2_weight", "median_unchanged_share"] == 1.0
    assert table.loc["fc2_weight", "frozen_trial_share"] == 1.0
    assert table.loc["fc1_weight", "frozen_trial_share"] == 0.0


def test_trial_blocks_give_the_same_answer_as_one_block():
    ds = moving_zoo(n_trials=5)
    plant_frozen(ds, "fc1_weight", trials=[1, 3], units=slice(0, 4))
    whole = parameter_motion(ds)
    per_trial = parameter_motion(ds, max_values=2)  # one trial per block
    xr.testing.assert_identical(whole, per_trial)


def test_missing_reference_snapshot_gives_an_empty_result_with_the_reason(tmp_path):
    ds = moving_zoo().sel(snapshot=[1, 3])
    motion = parameter_motion(ds)
    assert motion.sizes["part"] == 0 and motion.sizes["trial"] == 6
    assert motion.attrs["motion_status"] == "skipped"
    assert "reference snapshot 0 is not stored" in motion.attrs["motion_reason"]
    assert parameter_motion(moving_zoo().sel(snapshot=[0]), snapshot=-1).attrs["motion_status"] == "skipped"
    status = training_status(ds)
    status.to_netcdf(tmp_path / "status.nc", engine="netcdf4")
    with xr.open_dataset(tmp_path / "status.nc") as back:
        assert back.attrs["motion_reason"] == motion.attrs["motion_reason"]
    assert never_trained(status).sizes["part"] == 0
    assert summary_table(status).empty


def test_qkv_is_split_into_q_k_v():
    ds = moving_zoo(n_trials=2)
    embed = 4
    qkv = np.random.default_rng(0).normal(size=(2, 3, 3 * embed, embed)).astype(np.float32)
    qkv[:, -1, : 2 * embed] = qkv[:, 0, : 2 * embed]  # q and k unchanged, v moved
    ds["blocks_0_attn_qkv_weight"] = xr.Variable(
        ("trial", "snapshot", "blocks_0_attn_qkv_out", "blocks_0_attn_qkv_in"), qkv,
        {"parameter": "blocks.0.attn.qkv.weight", "layer": "blocks.0.attn.qkv", "kind": "weight"})
    motion = parameter_motion(ds)
    parts = [p for p in motion["part"].values if p.startswith("blocks")]
    assert parts == [f"blocks_0_attn_qkv_weight[{c}]" for c in "qkv"]
    change = motion["max_abs_change"].sel(part=parts).values
    assert (change[:, :2] == 0).all() and (change[:, 2] > 0).all()
    assert motion["n_values"].sel(part=parts).values.tolist() == [embed * embed] * 3
    assert set(motion["module"].sel(part=parts).values) == {"blocks_0_attn_qkv"}


# ------------------------------------------------------------------------------------------ dead units


def planted_dead_zoo():
    """Two trials of the synthetic DNN on 4x4 images: trial 0 has fc1 unit 3 dead, trial 1 fc1 unit 5 (output
    exactly 0: zero weights and bias) and fc2 unit 0; fc2 unit 7 of trial 0 outputs exactly 0."""
    ds = moving_zoo(n_trials=2)
    # random fc2 rows on nonnegative inputs are often negative everywhere; a positive bias keeps the
    # unplanted ones alive so that only the planted units are dead
    ds["fc2_bias"] = ds["fc2_bias"].copy(data=ds["fc2_bias"].values + 0.5)
    for variable, trial, unit, bias in (("fc1", 0, 3, -1.0), ("fc1", 1, 5, 0.0), ("fc2", 1, 0, -10.0), ("fc2", 0, 7, 0.0)):
        weight, b = ds[f"{variable}_weight"].values.copy(), ds[f"{variable}_bias"].values.copy()
        weight[trial, -1, unit] = 0.0
        b[trial, -1, unit] = bias
        ds[f"{variable}_weight"] = ds[f"{variable}_weight"].copy(data=weight)
        ds[f"{variable}_bias"] = ds[f"{variable}_bias"].copy(data=b)
    return ds


def torch_dead(ds, dataset, trial, model):
    """Dead-unit masks of one trial computed by the torch network itself, to check the numpy forward pass."""
    net = build_model(model, **json.loads(ds.attrs["model_kwargs"]))
    state = {ds[v].attrs["parameter"]: torch.from_numpy(ds[v].isel(trial=trial, snapshot=-1).values.copy())
             for v in ds.data_vars if "parameter" in ds[v].attrs}
    net.load_state_dict(state)
    x = torch.from_numpy(train_inputs(dataset))
    with torch.no_grad():
        if model == "dnn":
            h1 = torch.relu(net.fc1(x.flatten(1)))
            h2 = torch.relu(net.fc2(h1))
            return {"fc1": (h1 == 0).all(0).numpy(), "fc2": (h2 == 0).all(0).numpy()}
        return {"conv1": (torch.relu(net.conv1(x)) == 0).all(-1).all(-1).all(0).numpy()}


def test_planted_dead_units_are_found_and_no_others():
    ds = planted_dead_zoo()
    dataset = tiny_dataset(n_train=200, n_test=20, side=4)
    masks, n_samples, reason = dead_unit_masks(ds, dataset)
    assert n_samples == 200 and reason == ""
    assert np.flatnonzero(masks["fc1"][0]).tolist() == [3] and np.flatnonzero(masks["fc1"][1]).tolist() == [5]
    assert np.flatnonzero(masks["fc2"][1]).tolist() == [0] and np.flatnonzero(masks["fc2"][0]).tolist() == [7]
    for trial in (0, 1):
        expected = torch_dead(ds, dataset, trial, "dnn")
        for layer in ("fc1", "fc2"):
            np.testing.assert_array_equal(masks[layer][trial], expected[layer])
    dead = dead_units(ds, dataset, max_samples=50)
    assert dead.attrs["n_samples"] == 50
    assert dead["dead_units"].sel(layer="fc1").values.tolist() == [1, 1]
    np.testing.assert_allclose(dead["dead_unit_share"].sel(layer="fc2").values, [1 / 8, 1 / 8])
    np.testing.assert_array_equal(dead_units(ds, dataset, max_values=1)["dead_units"].values, dead["dead_units"].values)


def test_wrong_dataset_is_refused():
    with pytest.raises(ValueError, match="fc1 takes 16"):
        dead_units(planted_dead_zoo(), tiny_dataset(n_train=20, n_test=5, side=8))


# ------------------------------------------------------------------------------------- trained networks


@pytest.fixture(scope="module")
def tiny():
    return tiny_dataset(n_train=300, n_test=50, side=8)


def trained_zoo(tiny, model, arch, trials=(0, 1), epochs=2):
    data = TensorData.from_dataset(tiny)
    kwargs = model_kwargs(model, arch, data.input_shape, data.n_classes)
    hp = Hyperparameters(epochs=epochs, batch_size=32, snapshots=(0, -1))
    result = train_trials(model, kwargs, data, list(trials), hp)
    return result_to_dataset(result, model=model, dataset="tiny", arch="test", model_kwargs=kwargs,
                             hyperparameters=vars(hp), input_shape=data.input_shape, n_classes=data.n_classes)


@pytest.mark.parametrize("model, arch", [("dnn", {"hidden": 16}), ("cnn", {"channels": 4})])
def test_healthy_trained_network_has_nothing_frozen_or_dead(tiny, model, arch, tmp_path):
    ds = trained_zoo(tiny, model, arch)
    status = training_status(ds, tiny)
    assert status.attrs["motion_status"] == "ok" and status.attrs["dead_units_status"] == "ok"
    assert status.attrs["n_samples"] == 300
    assert float(status["unchanged_share"].max()) < 0.05
    assert float(never_trained(status)["frozen_trial_share"].max()) == 0.0
    # a unit or two of a 16-wide fc2 (fed by ReLUs, so all its inputs are >= 0) may die in training
    assert float(status["dead_unit_share"].median()) == 0.0 and float(status["dead_unit_share"].max()) <= 0.15
    assert list(status["layer"].values) == (["fc1", "fc2"] if model == "dnn" else ["conv1"])
    table = summary_table(status)
    assert (table["frozen_trial_share"] == 0).all()
    assert table.loc[table["kind"] == "weight", "median_dead_unit_share"].notna().sum() == len(status["layer"])
    status.to_netcdf(tmp_path / "status.nc", engine="netcdf4")
    with xr.open_dataset(tmp_path / "status.nc") as back:
        xr.testing.assert_allclose(back.load(), status)
        assert back["unchanged_share"].attrs["units"] == "1" and back["dead_unit_share"].attrs["long_name"]


def test_trained_cnn_dead_channels_match_torch(tiny):
    """Channel 2 negative everywhere; channels 1 and 3 set just above and just below dying, so a patch order
    that differs from nn.Conv2d's (flipped kernel, swapped axes) misjudges them."""
    ds = trained_zoo(tiny, "cnn", {"channels": 4}, trials=(0,), epochs=1)
    weight, bias = ds["conv1_weight"].values.copy(), ds["conv1_bias"].values.copy()
    conv = torch.nn.functional.conv2d(torch.from_numpy(train_inputs(tiny)), torch.from_numpy(weight[0, -1]))
    peak = conv.amax(dim=(0, 2, 3)).numpy()
    bias[0, -1, 1] = -peak[1] + 1e-3 * abs(peak[1])
    bias[0, -1, 2] = -peak[2] - 10.0
    bias[0, -1, 3] = -peak[3] - 1e-3 * abs(peak[3])
    ds["conv1_bias"] = ds["conv1_bias"].copy(data=bias)
    masks, _, _ = dead_unit_masks(ds, tiny)
    assert np.flatnonzero(masks["conv1"][0]).tolist() == [2, 3]
    np.testing.assert_array_equal(masks["conv1"][0], torch_dead(ds, tiny, 0, "cnn")["conv1"])


def test_vit_has_no_dead_unit_rows():
    ds = make_zoo(n_trials=2, model="vit")
    dead = dead_units(ds, tiny_dataset(n_train=10, n_test=2, side=4))
    assert dead.sizes["layer"] == 0 and dead.attrs["dead_units_status"] == "skipped"
    assert "GELU" in dead.attrs["dead_units_reason"]


def test_smallcnn_dead_units_are_counted_on_relu_trials_only(tiny):
    data = TensorData.from_dataset(tiny)
    kwargs = model_kwargs("smallcnn", {"channels": 4}, data.input_shape, data.n_classes)
    hp = Hyperparameters(epochs=1, batch_size=32, snapshots=(0, -1))
    per_trial = [{"activation": a} for a in ("relu", "tanh", "relu")]
    result = train_trials("smallcnn", kwargs, data, [0, 1, 2], hp, per_trial=per_trial)
    ds = result_to_dataset(result, model="smallcnn", dataset="tiny", arch="test", model_kwargs=kwargs,
                           hyperparameters=vars(hp), input_shape=data.input_shape, n_classes=data.n_classes)
    # kill every conv2 channel of the ReLU trial 2 and of the tanh trial 1: only trial 2 has dead units
    for trial in (1, 2):
        ds["conv2_bias"][trial, -1] = -1e3
    masks, n_samples, reason = dead_unit_masks(ds, tiny)
    assert reason == "" and n_samples == 300 and set(masks) == {"conv1", "conv2", "conv3"}
    assert masks["conv2"][2].all() and not masks["conv2"][1].any()
    tanh_only = ds.isel(trial=[1])
    assert dead_unit_masks(tanh_only, tiny)[2] == "every trial of this smallcnn zoo uses tanh"
