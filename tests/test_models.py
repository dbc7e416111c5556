"""Tests for pnc.models: structure, initialisation, seeding, feature access."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from pnc.models import MLP, DeepLinearNetwork, HybridNetwork
from pnc.theory import imbalance


def _eye(n):
    return torch.eye(n, dtype=torch.float64)


def test_dln_shapes_and_features_match_products():
    model = DeepLinearNetwork(12, 20, 3, depth=4, xi=0.5, seed=0)
    ws = model.weights()
    assert [tuple(w.shape) for w in ws] == [(20, 12), (20, 20), (20, 20), (3, 20)]
    assert model.depth == 4 and model.classifier is model.linear_layers()[-1]
    x = torch.randn(7, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    feats = model.forward_features(x)
    assert len(feats) == 4 and feats[0] is x
    prod = _eye(12)
    for l, w in enumerate(ws[:-1], start=1):
        prod = w @ prod
        torch.testing.assert_close(feats[l], x @ prod.T)
    torch.testing.assert_close(model(x), x @ model.end_to_end().T)


def test_feature_layers_hooks_agree_with_forward_features():
    for model in (
        DeepLinearNetwork(6, 8, 3, depth=3, seed=1),
        MLP(6, 8, 3, depth=4, seed=1, dtype=torch.float64),
        HybridNetwork(6, 8, 3, n_nonlinear=2, n_linear=2, seed=1, dtype=torch.float64),
    ):
        model.eval()
        captured: list[torch.Tensor] = []

        def hook(_module, _inputs, output, store=captured):
            store.append(output)

        handles = [m.register_forward_hook(hook) for _, m in model.feature_layers()]
        x = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        model(x)
        for h in handles:
            h.remove()
        feats = model.forward_features(x)
        assert len(captured) == model.depth - 1 == len(feats) - 1
        for a, b in zip(captured, feats[1:], strict=True):
            torch.testing.assert_close(a, b)
        names = [name for name, _ in model.feature_layers()]
        assert names == [f"features.{i}" for i in range(model.depth - 1)]
        assert dict(model.named_modules())[names[0]] is model.features[0]


def test_orthogonal_init_is_the_authors_scheme():
    xi = 0.3
    model = DeepLinearNetwork(10, 16, 4, depth=4, xi=xi, seed=0)
    w1, w2, w3, wl = (w.detach() for w in model.weights())
    torch.testing.assert_close(w1.T @ w1, xi**2 * _eye(10))  # orthonormal columns
    for w in (w2, w3):
        torch.testing.assert_close(w @ w.T, xi**2 * _eye(16))
    assert torch.all(wl[:, 4:] == 0)  # xi [O_K, 0]
    torch.testing.assert_close(wl[:, :4] @ wl[:, :4].T, xi**2 * _eye(4))
    # Hidden pairs start exactly balanced; the rectangular pairs carry xi^2 sqrt(m - d), xi^2 sqrt(m - K).
    imb = imbalance(model.weights())
    assert imb[1] < 1e-14
    assert imb[0] == pytest.approx(xi**2 * math.sqrt(16 - 10) / (xi * math.sqrt(10)))
    assert imb[2] == pytest.approx(xi**2 * math.sqrt(16 - 4) / (xi * math.sqrt(16)))


def test_orthogonal_init_narrow_first_layer_has_orthonormal_rows():
    model = DeepLinearNetwork(30, 8, 3, depth=2, xi=0.1, seed=0)
    w1 = model.weights()[0].detach()
    torch.testing.assert_close(w1 @ w1.T, 0.01 * _eye(8))


def test_default_and_gaussian_inits():
    model = DeepLinearNetwork(400, 300, 3, depth=3, init="default", seed=0)
    w = model.weights()[0].detach()
    bound = 1 / math.sqrt(400)
    assert w.abs().max().item() <= bound
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    model = DeepLinearNetwork(400, 300, 3, depth=3, init="gaussian", std=0.05, seed=0)
    assert model.weights()[1].detach().std().item() == pytest.approx(0.05, rel=0.02)
    model = DeepLinearNetwork(400, 300, 3, depth=3, init="gaussian", seed=0)  # Kaiming default
    assert model.weights()[0].detach().std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.02)


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: DeepLinearNetwork(10, 12, 3, depth=4, seed=seed),
        lambda seed: DeepLinearNetwork(10, 12, 3, depth=4, init="default", seed=seed),
        lambda seed: MLP(10, 12, 3, depth=3, init="gaussian", seed=seed),
        lambda seed: HybridNetwork(10, 12, 3, 1, 2, seed=seed),
    ],
)
def test_seeded_init_is_deterministic_and_leaves_global_rng_alone(make):
    state = torch.get_rng_state()
    a, b, c = make(5), make(5), make(6)
    assert torch.equal(torch.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True))


def test_mlp_and_hybrid_structure():
    mlp = MLP(3072, 64, 10, depth=8)
    assert len(mlp.features) == 7
    assert all(isinstance(b, nn.Sequential) for b in mlp.features)
    assert [type(m) for m in mlp.features[0]] == [nn.Linear, nn.BatchNorm1d, nn.ReLU]
    assert all(lin.bias is None for lin in mlp.linear_layers())
    assert mlp.classifier.weight.shape == (10, 64)
    hyb = HybridNetwork(3072, 64, 10, n_nonlinear=3, n_linear=4)
    assert hyb.depth == 8
    assert [isinstance(b, nn.Linear) for b in hyb.features] == [False] * 3 + [True] * 4
    no_bn = MLP(5, 6, 2, depth=3, batch_norm=False)
    assert [type(m) for m in no_bn.features[0]] == [nn.Linear, nn.ReLU]
    x = torch.randn(4, 3072)
    assert hyb(x).shape == (4, 10) and mlp(x).dtype == torch.float32


def test_hybrid_without_nonlinear_blocks_is_linear():
    hyb = HybridNetwork(6, 8, 3, n_nonlinear=0, n_linear=3, xi=0.7, seed=0, dtype=torch.float64)
    dln = DeepLinearNetwork(6, 8, 3, depth=4, xi=0.7, seed=0)
    for a, b in zip(hyb.parameters(), dln.parameters(), strict=True):
        assert torch.equal(a, b)


def test_depth_one_network_has_only_the_input_feature():
    model = DeepLinearNetwork(5, 7, 2, depth=1, seed=0)
    x = torch.ones(3, 5, dtype=torch.float64)
    assert len(model.forward_features(x)) == 1 and model.feature_layers() == []
    assert model.classifier.weight.shape == (2, 5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: DeepLinearNetwork(5, 5, 2, depth=0), "depth"),
        (lambda: DeepLinearNetwork(5, 0, 2, depth=2), "width"),
        (lambda: DeepLinearNetwork(0, 5, 2, depth=2), "in_dim"),
        (lambda: DeepLinearNetwork(5, 5, 2, depth=2, init="xavier"), "init must be one of"),
        (lambda: DeepLinearNetwork(5, 5, 2, depth=2, xi=0.0), "xi"),
        (lambda: DeepLinearNetwork(5, 5, 2, depth=2, init="gaussian", std=-1.0), "std"),
        (lambda: DeepLinearNetwork(5, 5, 2, depth=2.0), "depth must be an integer"),
        (lambda: MLP(5, 5, 2, depth=1), "depth"),
        (lambda: HybridNetwork(5, 5, 2, 0, 0), "at least one"),
        (lambda: DeepLinearNetwork(5, 5, 2, depth=2, dtype=torch.int32), "dtype"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_weights_are_live_parameters():
    model = DeepLinearNetwork(4, 4, 2, depth=2, seed=0)
    assert all(isinstance(w, nn.Parameter) for w in model.weights())
    assert np.isfinite(model.end_to_end().numpy()).all()


def test_small_resnet_blocks_and_shapes() -> None:
    from pnc.models import ResidualBlock, SmallResNet

    torch.manual_seed(0)
    net = SmallResNet(side=8, width=4, blocks=3, classes=5)
    assert net(torch.randn(7, 64)).shape == (7, 5)
    assert [type(m) for m in net.layer1] == [ResidualBlock] * 3
    with pytest.raises(ValueError, match="blocks"):
        SmallResNet(blocks=0)
