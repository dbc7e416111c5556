"""Tests for pnc.book.dln: conservation of imbalance, rank of gradients, low-rank weight updates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pnc import data, models, theory
from pnc.book import dln
from pnc.train import TrainConfig


@pytest.fixture(scope="module")
def problem():
    X, y = data.orthogonal_dataset(n_per_class=5, n_classes=3, dim=20, seed=0)
    return X, y


def _net(L=4, xi=0.3, seed=0, width=20):
    return models.DeepLinearNetwork(20, width, 3, L, init="orthogonal", xi=xi, seed=seed)


def test_imbalance_norms_closed_form_at_init():
    # Square orthogonal layers are balanced; the classifier pair xi*[O_K, 0] has imbalance xi^2 sqrt(m - K).
    net = _net(L=4, xi=0.3)
    imb = dln.imbalance_norms(net)
    np.testing.assert_allclose(imb[:-1], 0.0, atol=1e-12)
    assert imb[-1] == pytest.approx(0.09 * np.sqrt(20 - 3), rel=1e-10)


def test_imbalance_norms_rejects_bad_chain():
    with pytest.raises(ValueError, match="chain"):
        dln.imbalance_norms([np.ones((3, 4)), np.ones((2, 5))])
    with pytest.raises(ValueError, match="empty"):
        dln.imbalance_norms([])


def test_gradient_ranks_at_most_K(problem):
    X, y = problem
    net = _net(L=4, xi=0.5, width=30)
    ranks = dln.gradient_ranks(net, X, y, TrainConfig(alpha=10.0))
    assert len(ranks) == 4
    assert all(1 <= r <= 3 for r in ranks)


def test_gradients_match_autograd_of_train_loss(problem):
    X, y = problem
    net = _net()
    g = dln.gradients(net, X, y, TrainConfig(alpha=2.0))
    # finite difference on one entry of W_1
    w = net.weights()[0]
    h = 1e-6

    def loss():
        out = 2.0 * net(X)
        return float(((out - torch.nn.functional.one_hot(y, 3).double()) ** 2).sum(1).mean())

    with torch.no_grad():
        w[0, 0] += h
        up = loss()
        w[0, 0] -= 2 * h
        down = loss()
        w[0, 0] += h
    assert g[0][0, 0] == pytest.approx((up - down) / (2 * h), rel=1e-5)


def test_train_tracked_conserves_imbalance_and_moves_few_singular_values(problem):
    X, y = problem
    xi = 0.3
    net = _net(L=4, xi=xi)
    cfg = TrainConfig(lr=0.05, alpha=10.0, epochs=400, schedule="constant", loss_tol=1e-10)
    traj = dln.train_tracked(net, X, y, cfg, every=20)
    assert traj.converged
    assert traj.epochs[0] == 0 and traj.epochs[-1] == traj.epochs_run
    assert traj.imbalance.shape == (len(traj.epochs), 3)
    # conserved up to the discretisation error of GD, while the weights themselves change a lot
    change = np.linalg.norm(net.weights()[0].detach().numpy()) / (xi * np.sqrt(20))
    assert change > 1.2
    assert np.all(traj.drift < 0.05 * xi**2 * np.sqrt(20) + 1e-3)
    # only the K signal directions (plus a few companions) move; most singular values stay at xi
    moved = dln.moved_singular_values(net, xi)
    assert all(m <= 2 * 3 for m in moved[:-1])
    assert traj.min_norm_residual[-1] < 0.1 * np.linalg.norm(theory.min_norm_solution(X, y, 10.0))


def test_smaller_lr_smaller_drift(problem):
    X, y = problem
    drifts = []
    for lr in (0.04, 0.01):
        net = _net(L=4, xi=0.3)
        cfg = TrainConfig(lr=lr, alpha=10.0, epochs=int(12 / lr), schedule="constant")
        drifts.append(dln.train_tracked(net, X, y, cfg, every=50).drift.max())
    assert drifts[1] < 0.5 * drifts[0]


def test_train_tracked_validates(problem):
    X, y = problem
    with pytest.raises(ValueError, match="momentum"):
        dln.train_tracked(_net(), X, y, TrainConfig(momentum=0.9))
    with pytest.raises(ValueError, match="every"):
        dln.train_tracked(_net(), X, y, TrainConfig(), every=0)
    with pytest.raises(ValueError, match="diverged"):
        dln.train_tracked(_net(L=2, xi=0.5), X, y, TrainConfig(lr=50.0, alpha=100.0, epochs=30), every=5)


def test_moved_singular_values_validates():
    with pytest.raises(ValueError, match="xi"):
        dln.moved_singular_values([np.eye(3)], xi=0.0)
    assert dln.moved_singular_values([0.2 * np.eye(3)], xi=0.2) == [0]


def test_trajectory_grid_keys(problem):
    X, y = problem
    cfg = TrainConfig(lr=0.05, alpha=10.0, epochs=20, schedule="constant")
    grid = dln.trajectory_grid(X, y, [0.2, 0.3], [2, 3], cfg, every=10)
    assert set(grid) == {(0.2, 2), (0.3, 2), (0.2, 3), (0.3, 3)}
    assert grid[(0.3, 3)].imbalance.shape[1] == 2
