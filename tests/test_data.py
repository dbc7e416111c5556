"""Tests for pnc.data: seeded synthetic data sets."""

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pnc.data import (
    class_counts,
    gaussian_mixture,
    labels_from_counts,
    near_orthogonal_gaussian,
    orthogonal_dataset,
    orthogonality_stats,
)

GENERATORS = [
    lambda seed: orthogonal_dataset(10, 3, 50, seed=seed),
    lambda seed: near_orthogonal_gaussian(10, 3, 50, seed=seed),
    lambda seed: gaussian_mixture(10, 3, 50, seed=seed),
]


@pytest.mark.parametrize("make", GENERATORS)
def test_shapes_dtypes_and_contiguous_labels(make):
    X, y = make(0)
    assert X.shape == (30, 50) and X.dtype == torch.float64
    assert y.dtype == torch.int64
    assert torch.equal(y, torch.tensor([0] * 10 + [1] * 10 + [2] * 10))


@pytest.mark.parametrize("make", GENERATORS)
def test_seeded_and_leaves_global_rng_alone(make):
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    X1, _ = make(3)
    X2, _ = make(3)
    X3, _ = make(4)
    assert torch.equal(X1, X2)
    assert not torch.equal(X1, X3)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # noqa: NPY002


def test_orthogonal_dataset_unperturbed_is_orthonormal():
    X, _ = orthogonal_dataset(6, 4, 40, perturbation=0.0, seed=1)
    np.testing.assert_allclose((X @ X.T).numpy(), np.eye(24), atol=1e-12)


def test_orthogonal_dataset_noise_has_given_total_frobenius_norm():
    X0, _ = orthogonal_dataset(10, 3, 50, perturbation=0.0, seed=7)
    for p in (1.0, 0.25):
        Xp, _ = orthogonal_dataset(10, 3, 50, perturbation=p, seed=7)
        assert torch.linalg.norm(Xp - X0).item() == pytest.approx(p, rel=1e-12)


def test_orthogonality_stats_match_authors_order_of_magnitude():
    # The authors' printout for N=30, d=50, total noise norm 1 is 0.0047 and 0.0033.
    for seed in range(5):
        X, _ = orthogonal_dataset(10, 3, 50, seed=seed)
        stats = orthogonality_stats(X)
        assert 1e-3 < stats.norm_deviation < 1.2e-2
        assert 1e-3 < stats.max_inner_product < 1.2e-2
    X, _ = orthogonal_dataset(10, 3, 50, perturbation=0.0, seed=0)
    assert max(orthogonality_stats(X)) < 1e-14


def test_orthogonality_stats_hand_example():
    X = np.array([[2.0, 0.0], [1.0, 0.0]])  # norms^2 4 and 1, inner product 2
    stats = orthogonality_stats(X)
    assert stats.norm_deviation == pytest.approx(3 / 2)
    assert stats.max_inner_product == pytest.approx(2 / 2)


def test_uneven_classes_and_dtype():
    X, y = gaussian_mixture([3, 5, 2], 3, 8, seed=0, dtype=torch.float32)
    assert X.shape == (10, 8) and X.dtype == torch.float32
    assert torch.bincount(y).tolist() == [3, 5, 2]
    X, y = orthogonal_dataset([2, 4], 2, 10, seed=0)
    assert torch.bincount(y).tolist() == [2, 4]


def test_gaussian_mixture_means_are_separated_orthonormal_directions():
    X, y = gaussian_mixture(200, 4, 30, class_separation=3.0, within_std=0.0, seed=2)
    means = torch.stack([X[y == k].mean(0) for k in range(4)])
    np.testing.assert_allclose((means @ means.T).numpy(), 9.0 * np.eye(4), atol=1e-12)
    X, y = gaussian_mixture(2000, 2, 5, class_separation=1.0, within_std=0.5, seed=2)
    within = X - torch.stack([X[y == k].mean(0) for k in range(2)])[y]
    assert within.std().item() == pytest.approx(0.5, rel=0.05)


def test_near_orthogonal_gaussian_has_unit_norms_on_average():
    X, _ = near_orthogonal_gaussian(50, 4, 2000, seed=0)
    norms = (X**2).sum(1)
    assert norms.mean().item() == pytest.approx(1.0, abs=0.01)
    assert orthogonality_stats(X).max_inner_product < 0.1 / 200


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: orthogonal_dataset(10, 3, 20), "dim >= N"),
        (lambda: orthogonal_dataset(10, 1, 50), "n_classes"),
        (lambda: orthogonal_dataset(0, 3, 50), "n_per_class"),
        (lambda: orthogonal_dataset(10, 3, 50, perturbation=-1.0), "perturbation"),
        (lambda: orthogonal_dataset(10, 3, 50, seed=-1), "seed"),
        (lambda: orthogonal_dataset(10, 3, 50, dtype=torch.int64), "dtype"),
        (lambda: gaussian_mixture([3, 4], 3, 5), "must match"),
        (lambda: gaussian_mixture(3, 3, 5, within_std=-0.1), "within_std"),
        (lambda: gaussian_mixture(3, 3, 5, class_separation=float("nan")), "class_separation"),
        (lambda: near_orthogonal_gaussian(2.5, 3, 5), "n_per_class must be an int"),
        (lambda: orthogonality_stats(np.ones(3)), "2-d"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("seed", [-1, True, 1.5, "3"])
def test_the_core_and_the_book_check_a_seed_alike(seed):
    """One seed check (pnc._checks.check_seed) serves the data generators and the book's runner."""
    from pnc.book.runner import run_experiment

    message = rf"seed must be an integer >= 0, got {re.escape(repr(seed))}"
    with pytest.raises(ValueError, match=message):
        orthogonal_dataset(10, 3, 50, seed=seed)
    with pytest.raises(ValueError, match=message):
        run_experiment("hybrid", seed=seed)
    assert orthogonal_dataset(2, 2, 4, seed=np.int64(3))[0].equal(orthogonal_dataset(2, 2, 4, seed=3)[0])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=2, max_size=5))
def test_labels_are_contiguous_blocks(counts):
    y = labels_from_counts(class_counts(counts, len(counts)))
    assert torch.bincount(y).tolist() == counts
    assert torch.all(y[1:] >= y[:-1])
