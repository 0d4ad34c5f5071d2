import pytest
import torch

from weightzoo.models import build_model, init_normal_, model_kwargs

SHAPE = (1, 28, 28)


def build(model, arch, shape=SHAPE, seed=0, std=0.05):
    net = build_model(model, **model_kwargs(model, arch, shape, 10))
    return init_normal_(net, std, torch.Generator().manual_seed(seed))


VIT = {"patch_size": 7, "embed_dim": 32, "depth": 2, "heads": 4, "mlp_ratio": 2.0, "pool": "cls"}


def test_dnn_shapes_and_names():
    net = build("dnn", {"hidden": 5})
    assert [n for n, _ in net.named_parameters()] == [
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    assert net.fc1.weight.shape == (5, 784) and net.fc3.weight.shape == (10, 5)
    assert net(torch.zeros(3, *SHAPE)).shape == (3, 10)


def test_cnn_paper_shapes_on_cifar_input():
    net = build("cnn", {"channels": 4}, shape=(3, 32, 32))
    assert net.conv1.weight.shape == (4, 3, 3, 3)
    assert net.fc.weight.shape == (10, 4 * 30 * 30)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_vit_from_timm_blocks(pool):
    from timm.models.vision_transformer import Block

    net = build("vit", {**VIT, "pool": pool})
    assert sum(isinstance(m, Block) for m in net.modules()) == 2
    names = dict(net.named_parameters())
    assert "blocks.0.attn.qkv.weight" in names and "blocks.1.mlp.fc2.weight" in names
    assert ("cls_token" in names) == (pool == "cls")
    assert net(torch.zeros(2, *SHAPE)).shape == (2, 10)


def test_vit_rejects_heads_not_dividing_embed_dim():
    with pytest.raises(ValueError, match="heads 5 does not divide embed_dim 32"):
        build("vit", {**VIT, "heads": 5})


def test_normal_init_weights_normal_biases_zero_norms_one():
    net = build("vit", {**VIT, "embed_dim": 64}, std=0.2)
    w = net.blocks[0].mlp.fc1.weight
    assert abs(w.std().item() - 0.2) < 0.01 and abs(w.mean().item()) < 0.01
    assert all((p == 0).all() for n, p in net.named_parameters() if n.endswith("bias"))
    assert (net.blocks[0].norm1.weight == 1).all()


def test_init_is_fixed_by_seed():
    a, b, c = (build("dnn", {"hidden": 8}, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.fc1.weight, b.fc1.weight)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)


def test_smallcnn_is_the_small_cnn_zoo_network():
    net = build_model("smallcnn", in_channels=1, channels=16, n_classes=10)
    assert sum(p.numel() for p in net.parameters()) == 4970  # Unterthiner et al. 2020
    assert [n for n, _ in net.named_parameters()] == [f"{layer}.{kind}" for layer in ("conv1", "conv2", "conv3", "fc")
                                                      for kind in ("weight", "bias")]
    x = torch.randn(3, 1, 28, 28)
    for activation, act in (("relu", torch.relu), ("tanh", torch.tanh)):
        net = build_model("smallcnn", activation=activation, in_channels=1, channels=16, n_classes=10)
        h = x
        for conv in (net.conv1, net.conv2, net.conv3):  # stride 2, padding 1: 28 -> 14 -> 7 -> 4
            h = act(conv(h))
        assert h.shape[-2:] == (4, 4)
        torch.testing.assert_close(net(x), net.fc(h.mean((2, 3))))
    with pytest.raises(ValueError, match="has activation relu, not 'tanh'"):
        build_model("dnn", activation="tanh", in_channels=4, hidden=2)


@pytest.mark.parametrize("shared", [False, True])
def test_smallcnn_grouped_path_equals_trialwise_path_with_gradients(shared):
    from weightzoo.models.smallcnn import stacked_forward

    net = build_model("smallcnn", in_channels=1, channels=4, n_classes=10)
    grads = []
    x = torch.randn(5, 1, 12, 12) if shared else torch.randn(3, 5, 1, 12, 12)
    for grouped in (False, True):
        torch.manual_seed(0)
        params = {n: (torch.randn(3, *p.shape) * 0.3).requires_grad_() for n, p in net.named_parameters()}
        seen = {}
        out = stacked_forward(params, x, "relu", on_relu=lambda layer, h: seen.setdefault(layer, h.shape),
                              grouped=grouped)
        out.square().sum().backward()
        grads.append((out.detach(), {n: p.grad for n, p in params.items()}, seen))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for name in grads[0][1]:
        torch.testing.assert_close(grads[0][1][name], grads[1][1][name], msg=name)
    assert grads[0][2] == grads[1][2] == {"conv1": (3, 5, 4, 36), "conv2": (3, 5, 4, 9), "conv3": (3, 5, 4, 4)}
