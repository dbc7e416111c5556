"""Tests for pnc.book.connections: last-layer neural collapse, He & Su's fuzziness, the layerwise table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pnc import data, metrics, models, train
from pnc.book.connections import (
    NeuralCollapse,
    last_layer_collapse,
    layerwise_connections,
    normalize_rows,
)
from pnc.metrics import separation_fuzziness
from pnc.probes import probe_accuracy


def _fuzziness_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    classes = np.unique(y)
    zbar = x.mean(axis=0)
    n = x.shape[0]
    ssw = sum((x[y == k] - x[y == k].mean(0)).T @ (x[y == k] - x[y == k].mean(0)) for k in classes) / n
    ssb = sum((y == k).sum() / n * np.outer(x[y == k].mean(0) - zbar, x[y == k].mean(0) - zbar) for k in classes)
    return float(np.trace(ssw @ np.linalg.pinv(ssb, rcond=1e-10)))


def test_fuzziness_is_k_times_nc1_for_balanced_classes():
    X, y = data.gaussian_mixture(30, 4, 6, within_std=0.5, seed=0)
    x = X.numpy()
    assert separation_fuzziness(x, y) == pytest.approx(4 * metrics.nc1(x, y), rel=1e-10)
    assert separation_fuzziness(x, y) == pytest.approx(_fuzziness_by_hand(x, y.numpy()), rel=1e-8)


def test_fuzziness_weights_classes_by_their_size():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], [5, 20, 40])
    x = rng.standard_normal((65, 5)) + 3 * np.eye(5)[y]
    assert separation_fuzziness(x, y) == pytest.approx(_fuzziness_by_hand(x, y), rel=1e-8)
    assert abs(separation_fuzziness(x, y) - 3 * metrics.nc1(x, y)) > 1e-3  # differs from K*NC1 when imbalanced
    st = metrics.ClassStats().update(x, y)
    assert separation_fuzziness(st) == pytest.approx(separation_fuzziness(x, y), rel=1e-12)
    with pytest.raises(ValueError, match="between-class scatter is zero"):
        separation_fuzziness(np.ones((6, 3)), np.array([0, 0, 0, 1, 1, 1]))  # equal class means


def test_normalize_rows():
    z = normalize_rows(np.array([[3.0, 4.0], [0.0, 2.0]]))
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0)
    with pytest.raises(ValueError, match="some samples are exactly zero"):
        normalize_rows(np.array([[0.0, 0.0], [1.0, 0.0]]))


@pytest.fixture(scope="module")
def trained():
    X, y = data.gaussian_mixture(40, 4, 10, within_std=0.4, seed=2)
    X = X.float()
    net = models.MLP(10, 16, 4, depth=4, init="orthogonal", xi=1.0, seed=0)
    cfg = train.TrainConfig(optimizer="gd", lr=0.05, momentum=0.9, loss="cross_entropy", epochs=150, seed=0)
    before = last_layer_collapse(net, X, y)
    train.train(net, X, y, cfg)
    return net, X, y, before


def test_last_layer_collapse_decreases_with_training(trained):
    net, X, y, before = trained
    after = last_layer_collapse(net, X, y)
    assert isinstance(after, NeuralCollapse)
    assert after.train_error == 0.0 and after.nc4 <= 0.02
    assert after.nc1 < 0.5 * before.nc1
    assert after.nc3 < before.nc3
    # consistency with pnc.metrics on the penultimate features
    with torch.no_grad():
        net.eval()
        h = net.features(X).double().numpy()
        logits = net(X).double().numpy()
    assert after.nc1 == pytest.approx(metrics.nc1(h, y), rel=1e-6)
    assert after.nc4 == pytest.approx(metrics.nc4(h, y, logits))
    assert after.train_error == pytest.approx(float(np.mean(logits.argmax(1) != y.numpy())))


def test_last_layer_collapse_needs_every_class(trained):
    net, X, y, _ = trained
    keep = y != 3
    with pytest.raises(ValueError, match="every class"):
        last_layer_collapse(net, X[keep], y[keep])


def _nc1_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    """NC1 = Tr(Sigma_W Sigma_B^+) / K, Sigma_B unweighted over classes about the sample mean (Papyan et al.)."""
    classes = np.unique(y)
    mu = np.stack([x[y == k].mean(0) for k in classes])
    sw = sum((x[y == k] - mu[i]).T @ (x[y == k] - mu[i]) for i, k in enumerate(classes)) / x.shape[0]
    mc = mu - x.mean(0)
    sb = mc.T @ mc / classes.size
    return float(np.trace(sw @ np.linalg.pinv(sb, rcond=1e-10)) / classes.size)


def _rate_by_hand(z: np.ndarray, eps_sq: float) -> float:
    """R = 1/2 logdet(I + d / (N eps^2) Z Z^T) in nats, Z = z^T (d x N)."""
    n, d = z.shape
    return 0.5 * float(np.linalg.slogdet(np.eye(d) + d / (n * eps_sq) * z.T @ z)[1])


def _rank_by_hand(x: np.ndarray, share: float = 0.95) -> int:
    """Smallest r whose r largest singular values hold ``share`` of the nuclear norm."""
    s = np.linalg.svd(x, compute_uv=False)
    return int(next(r for r in range(1, s.size + 1) if s[:r].sum() >= share * s.sum() * (1 - 1e-12)))


def test_layerwise_connections_table(trained):
    net, X, y, _ = trained
    rep = layerwise_connections(net, X, y)
    # every column from the definitions, on the features of an eval-mode forward pass taken here
    was_training = net.training
    net.eval()
    with torch.no_grad():
        feats = [f.double().numpy() for f in net.forward_features(X)]
    net.train(was_training)
    labels = y.numpy()
    assert rep.names[0] == "input" and len(rep) == len(feats) == 4
    assert list(rep.column("dim")) == [f.shape[1] for f in feats]
    for i, x in enumerate(feats):
        row = rep[i]
        z = x / np.linalg.norm(x, axis=1, keepdims=True)
        rate = _rate_by_hand(z, 0.5)
        class_rate = sum((labels == k).mean() * _rate_by_hand(z[labels == k], 0.5) for k in np.unique(labels))
        assert row["fuzziness"] == pytest.approx(_fuzziness_by_hand(x, labels), rel=1e-6), row["name"]
        assert row["nc1"] == pytest.approx(_nc1_by_hand(x, labels), rel=1e-6), row["name"]
        assert row["rate"] == pytest.approx(rate, rel=1e-8), row["name"]
        assert row["class_rate"] == pytest.approx(class_rate, rel=1e-8), row["name"]
        assert row["rate_reduction"] == pytest.approx(rate - class_rate, rel=1e-8, abs=1e-10), row["name"]
        assert row["numerical_rank"] == _rank_by_hand(x), row["name"]
        probe = probe_accuracy(x, labels, test_fraction=0.3, seed=0)  # the probe itself: tests/test_probes.py
        assert (row["probe_train"], row["probe_test"]) == pytest.approx((probe.train_accuracy, probe.test_accuracy))
    assert rep.column("numerical_rank")[0] <= 10
    assert rep.column("fuzziness")[-1] < rep.column("fuzziness")[0]
