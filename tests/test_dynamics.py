"""Tests for pnc.book.dynamics: Saxe's closed form, the input-output modes and training in rounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pnc import data, models, train
from pnc.book.dynamics import (
    Modes,
    effective_initial_strength,
    gd_time_constant,
    input_output_modes,
    mode_strengths,
    saxe_learning_time,
    saxe_mode_strength,
    trace_modes,
    train_in_rounds,
)


def test_closed_form_starts_at_u0_ends_at_s_and_solves_the_ode():
    s, u0, tau = 3.0, 0.01, 2.0
    t = np.linspace(0.0, 10.0, 20001)
    u = saxe_mode_strength(t, s, u0, tau)
    assert u[0] == pytest.approx(u0, rel=1e-12)
    assert u[-1] == pytest.approx(s, rel=1e-10)
    du = np.gradient(u, t)
    np.testing.assert_allclose(tau * du[1:-1], (2 * u * (s - u))[1:-1], atol=1e-5)
    assert np.all(np.diff(u) > 0)


def test_closed_form_does_not_overflow_and_handles_u0_above_s():
    assert saxe_mode_strength(1e6, 5.0, 1e-8, 1.0) == pytest.approx(5.0)
    u = saxe_mode_strength(np.linspace(0, 5, 50), 1.0, 2.0)  # decays from above towards s
    assert u[0] == pytest.approx(2.0) and np.all(np.diff(u) < 0) and u[-1] == pytest.approx(1.0, rel=1e-4)


def test_learning_time_is_the_half_way_point_and_scales_like_one_over_s():
    for s in (1.0, 2.0, 4.0):
        t_half = saxe_learning_time(s, 1e-3, tau=10.0)
        assert saxe_mode_strength(t_half, s, 1e-3, 10.0) == pytest.approx(s / 2, rel=1e-12)
    assert saxe_learning_time(4.0, 1e-6) < saxe_learning_time(2.0, 1e-6) < saxe_learning_time(1.0, 1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: saxe_mode_strength(1.0, -1.0, 0.1), "s must be a finite number > 0, got -1.0"),
        (lambda: saxe_mode_strength(1.0, 1.0, 0.0), "u0 must be a finite number > 0, got 0.0"),
        (lambda: saxe_mode_strength(-1.0, 1.0, 0.1), r"t must be finite and >= 0, got \[-1.0\]"),
        (lambda: saxe_mode_strength(1.0, 1.0, 0.1, tau=float("nan")), "tau must be a finite number > 0, got nan"),
        (lambda: saxe_learning_time(1.0, 0.6), "u0 must be below s/2 .* got u0=0.6, s=1.0"),
        (lambda: gd_time_constant(0, 0.1), "n_samples must be a positive integer, got 0"),
        (lambda: gd_time_constant(10, -0.1), "lr must be a finite number > 0, got -0.1"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_time_constant_of_pnc_mse_loss():
    assert gd_time_constant(60, 0.3) == pytest.approx(100.0)
    assert gd_time_constant(60, 0.3, alpha=2.0) == pytest.approx(50.0)


def test_modes_of_orthonormal_data_are_class_sums():
    counts = [4, 9, 16]
    X, y = data.orthogonal_dataset(counts, 3, dim=40, perturbation=0.0, seed=3)
    modes = input_output_modes(X, y)
    np.testing.assert_allclose(modes.s, [4.0, 3.0, 2.0], rtol=1e-12)
    x = X.numpy()
    for i, k in enumerate([2, 1, 0]):
        v = x[y.numpy() == k].sum(axis=0) / np.sqrt(counts[k])
        assert abs(abs(modes.V[:, i] @ v) - 1.0) < 1e-12
        assert abs(abs(modes.U[k, i]) - 1.0) < 1e-12
    with pytest.raises(ValueError, match="n_classes=2 but the largest label is 2: pass n_classes > 2 or leave"):
        input_output_modes(X, y, n_classes=2)


def test_effective_strength_of_a_balanced_aligned_start_is_the_strength_itself():
    X, y = data.orthogonal_dataset([3, 5], 2, dim=12, perturbation=0.0, seed=0)
    modes = input_output_modes(X, y)
    rng = np.random.default_rng(0)
    r, _ = np.linalg.qr(rng.standard_normal((6, 2)))  # hidden directions
    c = np.sqrt(np.array([0.01, 0.02]))
    w1 = (r * c) @ modes.V.T  # W1 v_i = c_i r_i
    w2 = modes.U @ (r * c).T  # W2^T u_i = c_i r_i
    np.testing.assert_allclose(mode_strengths([w1, w2], modes), c**2, rtol=1e-12)
    np.testing.assert_allclose(effective_initial_strength([w1, w2], modes), c**2, rtol=1e-12)
    with pytest.raises(ValueError, match=r"needs a two-layer network \[W1, W2\], got 1 layers"):
        effective_initial_strength([w1], modes)
    with pytest.raises(ValueError, match=r"W_2 \(shape \(2, 6\)\) cannot follow W_1 \(shape \(12, 6\)\)"):
        mode_strengths([w1.T, w2], modes)


def test_rounds_of_plain_gd_equal_one_run():
    X, y = data.orthogonal_dataset(4, 3, dim=20, seed=0)
    cfg = train.TrainConfig(optimizer="gd", lr=0.2, schedule="constant", epochs=1)
    a = models.DeepLinearNetwork(20, 10, 3, depth=3, xi=0.3, seed=1)
    b = models.DeepLinearNetwork(20, 10, 3, depth=3, xi=0.3, seed=1)
    train.train(a, X, y, cfg.replace(epochs=30))
    epochs, values, losses = train_in_rounds(b, X, y, cfg, [0, 7, 30], lambda m: float(m.end_to_end().norm()))
    assert epochs == [0, 7, 30] and len(values) == 3 and len(losses) == 30
    assert torch.allclose(a.end_to_end(), b.end_to_end(), rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match=r"strictly increasing list of epochs >= 0, got \[5, 5\]"):
        train_in_rounds(b, X, y, cfg, [5, 5], lambda m: 0)
    with pytest.raises(ValueError, match=r"checkpoints must be a non-empty .*, got \[\]"):
        train_in_rounds(b, X, y, cfg, [], lambda m: 0)


def test_trained_two_layer_network_follows_the_closed_form_and_the_gap_is_the_step_size():
    counts = [4, 16, 36]
    X, y = data.orthogonal_dataset(counts, 3, dim=64, perturbation=0.0, seed=0)
    errors = []
    for tau in (100, 200):
        net = models.DeepLinearNetwork(64, 32, 3, depth=2, xi=0.1, seed=0)
        tr = trace_modes(net, X, y, lr=X.shape[0] / (2 * tau), steps=3 * tau, every=tau // 5)
        np.testing.assert_allclose(tr.s, [6.0, 4.0, 2.0])
        np.testing.assert_allclose(tr.measured[-1], tr.s, rtol=0.02)  # every mode learned
        assert tr.measured.shape == tr.theory.shape == (16, 3)
        errors.append(tr.max_abs_error)
        # larger singular values are learned first
        assert np.all(np.diff(tr.learning_times()) > 0)
    assert errors[0] < 0.06
    assert 1.6 < errors[0] / errors[1] < 2.4  # halving the step halves the gap: discretisation error


def test_trace_modes_rejects_deeper_networks_and_bad_steps():
    X, y = data.orthogonal_dataset(3, 2, dim=10, perturbation=0.0)
    with pytest.raises(ValueError, match="needs a network with exactly two linear layers, got 3"):
        trace_modes(models.DeepLinearNetwork(10, 8, 2, depth=3), X, y, lr=0.1, steps=10)
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        trace_modes(models.DeepLinearNetwork(10, 8, 2, depth=2), X, y, lr=0.1, steps=0)
    with pytest.raises(ValueError, match=r"every must be an integer in \[1, steps\], got 20"):
        trace_modes(models.DeepLinearNetwork(10, 8, 2, depth=2), X, y, lr=0.1, steps=10, every=20)
    assert isinstance(input_output_modes(X, y), Modes)
