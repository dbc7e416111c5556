"""Tests for pnc.probes: closed-form ridge probes on frozen features."""

import numpy as np
import pytest
import torch

from pnc.probes import LinearProbe, fit_probe, probe_accuracy, probe_layers, stratified_split


def _blobs(n=60, k=3, d=5, spread=0.1, seed=0):
    rng = np.random.default_rng(seed)
    means = 3.0 * rng.standard_normal((k, d))
    y = np.repeat(np.arange(k), n)
    x = means[y] + spread * rng.standard_normal((n * k, d))
    return x, y


def test_separable_blobs_are_classified_perfectly():
    x, y = _blobs()
    probe = fit_probe(x, y)
    assert isinstance(probe, LinearProbe)
    assert probe.accuracy(x, y) == 1.0
    res = probe_accuracy(x, y, test_fraction=0.3, seed=0)
    assert res.train_accuracy == 1.0 and res.test_accuracy == 1.0


def test_probe_is_the_least_squares_solution():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 4))
    y = rng.integers(0, 3, 40)
    probe = fit_probe(x, y, ridge=0.0)
    a = np.column_stack([x, np.ones(40)])
    t = np.eye(3)[y]
    coef, *_ = np.linalg.lstsq(a, t, rcond=None)
    np.testing.assert_allclose(probe.weight, coef[:4], atol=1e-6)
    np.testing.assert_allclose(probe.bias, coef[4], atol=1e-6)


def test_dual_solve_matches_primal_when_d_exceeds_n():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 30))
    y = np.arange(12) % 3
    probe = fit_probe(x, y, ridge=1e-3)
    assert probe.weight.shape == (30, 3)
    assert probe.accuracy(x, y) == 1.0  # d > N: interpolates


def test_chance_level_on_xor_like_data():
    # XOR is not linearly separable: a linear probe cannot beat ~75% on the four corners
    x = np.array([[0, 0], [1, 1], [0, 1], [1, 0]] * 25, dtype=float)
    y = np.array([0, 0, 1, 1] * 25)
    assert fit_probe(x, y).accuracy(x, y) <= 0.75


def test_seeded_split_is_stratified_and_reproducible():
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    tr, te = stratified_split(y, 0.25, seed=3)
    tr2, te2 = stratified_split(y, 0.25, seed=3)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(te, te2)
    assert set(tr).isdisjoint(te) and len(tr) + len(te) == len(y)
    assert [int(np.sum(y[te] == k)) for k in range(4)] == [2, 5, 8, 10]
    assert not np.array_equal(te, stratified_split(y, 0.25, seed=4)[1])


def test_probe_layers_accepts_torch_and_returns_one_result_per_layer():
    x, y = _blobs()
    feats = [torch.tensor(x), torch.tensor(np.zeros_like(x[:, :1]) + np.arange(len(y))[:, None] % 2)]
    res = probe_layers(feats, torch.tensor(y))
    assert len(res) == 2 and res[0].test_accuracy == 1.0 and res[1].train_accuracy < 0.8


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: fit_probe(np.zeros((5, 2)), np.zeros(5, int)), "2 classes"),
        (lambda: fit_probe(np.ones((5, 2)), np.arange(4)), "length mismatch"),
        (lambda: fit_probe(np.ones((4, 2)), np.arange(4) % 2, ridge=-1), "ridge"),
        (lambda: stratified_split(np.arange(4), 1.0), "test_fraction"),
        (lambda: stratified_split(np.arange(4), 0.5, seed=-1), "seed"),
        (lambda: probe_layers([], np.arange(3)), "non-empty"),
        (lambda: fit_probe(np.ones((4, 2)), np.arange(4) % 2).predict(np.ones((2, 3))), "dimension"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
