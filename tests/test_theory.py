"""Tests for pnc.theory: closed forms, the exact balanced construction, assumption diagnostics."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pnc.data import orthogonal_dataset
from pnc.metrics import compression, discrimination
from pnc.models import DeepLinearNetwork
from pnc.theory import (
    balanced_min_norm_network,
    class_gram_deviation,
    compression_ratio,
    discrimination_first_order,
    end_to_end,
    imbalance,
    layer_features,
    layerwise_compression,
    min_norm_residual,
    min_norm_solution,
    singular_value_spread,
)


def test_compression_ratio_values():
    # theory.md 5.1: the theory-notebook settings give 0.2846 (alpha=100) and 0.0613 (alpha=1).
    assert compression_ratio(0.3, 10, 6, alpha=100) == pytest.approx(0.2846, abs=5e-5)
    assert compression_ratio(0.3, 10, 6) == pytest.approx(0.0613, abs=5e-5)
    assert compression_ratio(0.2, 6, 1) == pytest.approx(0.04 / 6)


def test_layerwise_compression_is_vectorised_and_geometric():
    c = layerwise_compression(np.arange(5), 0.2, 6, 4, 5)
    assert isinstance(c, np.ndarray) and c.shape == (5,)
    assert c[0] == pytest.approx(4 * 5 / 3)
    np.testing.assert_allclose(c[1:] / c[:-1], compression_ratio(0.2, 6, 5), rtol=1e-14)
    assert isinstance(layerwise_compression(2, 0.2, 6, 4, 5), float)


def test_discrimination_first_order():
    d = discrimination_first_order(np.arange(7), 6, 0.18)
    np.testing.assert_allclose(d, 1 - 0.18 * (1 - np.arange(7) / 6))
    assert discrimination_first_order(6, 6, 0.5) == 1.0
    assert discrimination_first_order(0, 6, -0.2) == pytest.approx(1.2)


def test_class_gram_deviation():
    X, y = orthogonal_dataset(4, 3, 20, perturbation=0.0, seed=0)
    np.testing.assert_allclose(class_gram_deviation(X, y), 0.0, atol=1e-12)
    X, y = orthogonal_dataset(4, 3, 20, perturbation=0.5, seed=0)
    E = class_gram_deviation(X, y)
    assert E.shape == (3, 3) and np.allclose(E, E.T) and 0 < np.abs(E).max() < 0.5
    with pytest.raises(ValueError, match="balanced"):
        class_gram_deviation(X[:-1], y[:-1])


def _example():
    # theory.md 7.1 "exact construction": K=4, n=6, d=40, L=5, eps=0.2, alpha=1, orthonormal data.
    X, y = orthogonal_dataset(6, 4, 40, perturbation=0.0, seed=0)
    return X, y, balanced_min_norm_network(X, y, L=5, eps=0.2)


def test_exact_construction_matches_closed_form_to_1e_10():
    X, y, ws = _example()
    feats = layer_features(ws, X)
    assert len(feats) == 5
    C = np.array([compression(f, y) for f in feats])
    np.testing.assert_allclose(C, layerwise_compression(np.arange(5), 0.2, 6, 4, 5), rtol=1e-10)
    np.testing.assert_allclose(C, [6.6667, 0.18635, 5.2092e-3, 1.4561e-4, 4.0703e-6], rtol=1e-4)
    D = [discrimination(f, y) for f in feats]
    np.testing.assert_allclose(D, 1.0, atol=1e-12)


def test_exact_construction_product_balance_and_spectra():
    X, y, ws = _example()
    assert [w.shape for w in ws] == [(40, 40)] * 4 + [(4, 40)]
    w_star = min_norm_solution(X, y)
    np.testing.assert_allclose(end_to_end(ws), w_star, atol=1e-13)
    assert min_norm_residual(ws, X, y) < 1e-13
    imb = imbalance(ws)
    assert max(imb[:-1]) < 1e-13  # every pair except the classifier pair is exactly balanced
    # The classifier pair cannot be balanced (theory.md 3): it carries eps^2 sqrt(m - K).
    assert imb[-1] * np.linalg.norm(ws[-2]) == pytest.approx(0.04 * math.sqrt(40 - 4), rel=1e-10)
    s = 6 ** (1 / 10)  # sigma_k^(1/L) with sigma_k = sqrt(n)
    for w in ws[:-1]:
        sv = np.linalg.svd(w, compute_uv=False)
        np.testing.assert_allclose(sv[:4], s, rtol=1e-12)
        np.testing.assert_allclose(sv[4:], 0.2, rtol=1e-12)
    assert max(singular_value_spread(ws, K=4, d=40)) < 1e-28


def test_exact_construction_general_data_alpha_and_width():
    X, y = orthogonal_dataset(5, 3, 20, perturbation=1.0, seed=3)
    ws = balanced_min_norm_network(X, y, L=4, eps=0.1, alpha=100.0, width=26)
    assert [w.shape for w in ws] == [(26, 20), (26, 26), (26, 26), (3, 26)]
    assert min_norm_residual(ws, X, y, alpha=100.0) < 1e-14
    # W* interpolates: 100 * W* X^T = Y
    out = 100.0 * layer_features(ws, X, include_output=True)[-1]
    np.testing.assert_allclose(out, np.eye(3)[y.numpy()], atol=1e-10)
    imb = imbalance(ws)
    assert imb[1] < 1e-14
    # width > d: the first pair carries eps^2 sqrt(m - d), as after orthogonal initialisation.
    assert imb[0] * np.linalg.norm(ws[0]) == pytest.approx(0.01 * math.sqrt(6), rel=1e-10)


def test_layer_features_match_a_deep_linear_network():
    X, y, ws = _example()
    model = DeepLinearNetwork(40, 40, 4, depth=5, seed=0)
    with torch.no_grad():
        for p, w in zip(model.weights(), ws, strict=True):
            p.copy_(torch.from_numpy(w))
        feats = model.forward_features(X)
    for a, b in zip(feats, layer_features(model.weights(), X), strict=True):
        np.testing.assert_allclose(a.numpy(), b, atol=1e-14)


@settings(max_examples=15, deadline=None)
@given(
    K=st.integers(2, 4),
    n=st.integers(2, 5),
    L=st.integers(2, 5),
    eps=st.floats(0.05, 0.9),
    alpha=st.sampled_from([1.0, 10.0, 100.0]),
)
def test_exact_construction_property(K, n, L, eps, alpha):
    d = K * n + 3
    X, y = orthogonal_dataset(n, K, d, perturbation=0.0, seed=K * 100 + n)
    ws = balanced_min_norm_network(X, y, L=L, eps=eps, alpha=alpha)
    C = np.array([compression(f, y) for f in layer_features(ws, X)])
    np.testing.assert_allclose(C, layerwise_compression(np.arange(L), eps, n, K, L, alpha), rtol=1e-9)
    assert min_norm_residual(ws, X, y, alpha) < 1e-12 / alpha + 1e-13


def test_single_layer_construction_is_the_min_norm_map():
    X, y = orthogonal_dataset(3, 2, 8, seed=0)
    (w,) = balanced_min_norm_network(X, y, L=1, eps=0.1)
    np.testing.assert_allclose(w, min_norm_solution(X, y))


def test_diagnostics_accept_torch_weights():
    model = DeepLinearNetwork(20, 30, 3, depth=4, xi=0.2, seed=0)
    imb = imbalance(model.weights())
    assert len(imb) == 3
    spread = singular_value_spread(model.weights(), K=3, d=20)
    assert len(spread) == 3 and max(spread) < 1e-25  # all singular values equal xi at init


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: compression_ratio(0.0, 10, 6), "eps"),
        (lambda: compression_ratio(0.3, 1, 6), "n must be >= 2"),
        (lambda: compression_ratio(0.3, 10, 0), "L must be >= 1"),
        (lambda: compression_ratio(0.3, 10, 6, alpha=-1), "alpha"),
        (lambda: layerwise_compression(6, 0.3, 10, 3, 6), r"\[0, L-1\]"),
        (lambda: layerwise_compression(1, 0.3, 10, 1, 6), "K must be >= 2"),
        (lambda: discrimination_first_order(1, 6, float("inf")), "max_E"),
        (lambda: balanced_min_norm_network(np.eye(4), [0, 0, 1, 1], L=2, eps=0.1, width=3), "width"),
        (lambda: balanced_min_norm_network(np.eye(4), [0, 0, 1], L=2, eps=0.1), "labels"),
        (lambda: balanced_min_norm_network(np.eye(4), [0, 0, 0, 0], L=2, eps=0.1), "2 classes"),
        (lambda: imbalance([np.ones((3, 2)), np.ones((2, 2))]), "cannot follow"),
        (lambda: imbalance([]), "non-empty"),
        (lambda: singular_value_spread([np.eye(4)], K=2, d=4), "d - K > K"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
