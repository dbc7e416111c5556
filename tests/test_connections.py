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


def test_layerwise_connections_table(trained):
    net, X, y, _ = trained
    rep = layerwise_connections(net, X, y)
    assert len(rep) == 4 and rep.names[0] == "input"
    np.testing.assert_allclose(rep.column("rate_reduction"), rep.column("rate") - rep.column("class_rate"))
    np.testing.assert_allclose(rep.column("fuzziness"), 4 * rep.column("nc1"), rtol=1e-8)  # balanced
    assert np.all((rep.column("probe_test") >= 0) & (rep.column("probe_test") <= 1))
    assert rep.column("numerical_rank")[0] <= 10
    assert rep.column("fuzziness")[-1] < rep.column("fuzziness")[0]
