"""Coding rates of the idealised network (chapter "Connections"): the closed form against pnc.metrics on the exact
construction, its limits and first-order law, bad input, and a wrong constant that the comparison must catch."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from pnc import data, metrics, theory
from pnc.book import connections, recipes


def _measured(K: int, n: int, L: int, eps: float, alpha: float, width: int, eps_sq: float, normalize: bool = True):
    X, y = data.orthogonal_dataset(n_per_class=n, n_classes=K, dim=width, perturbation=0.0, seed=0)
    net = theory.balanced_min_norm_network(X, y, L, eps, alpha)
    rows = []
    for z in theory.layer_features(net, X):
        z = connections.normalize_rows(z) if normalize else z
        rate, class_rate = metrics.coding_rate(z, eps_sq=eps_sq), metrics.class_coding_rate(z, y, eps_sq=eps_sq)
        rows.append((rate, class_rate, rate - class_rate))
    return np.array(rows).T


SETTINGS = [(3, 10, 6, 0.3, 100.0, 50, 0.5), (2, 3, 4, 0.5, 2.0, 8, 1.0), (4, 2, 3, 0.7, 1.0, 12, 0.1),
            (2, 5, 5, 0.2, 10.0, 16, 2.0)]


@pytest.mark.parametrize(("K", "n", "L", "eps", "alpha", "width", "eps_sq"), SETTINGS)
@pytest.mark.parametrize("normalize", [True, False])
def test_the_closed_form_is_the_measured_construction(K, n, L, eps, alpha, width, eps_sq, normalize) -> None:
    closed = theory.layerwise_coding_rates(np.arange(L), eps, n, K, L, alpha, width=width, eps_sq=eps_sq,
                                           normalize=normalize)
    measured = _measured(K, n, L, eps, alpha, width, eps_sq, normalize)
    np.testing.assert_allclose(np.array(closed), measured, rtol=1e-10)


def test_the_normalised_rates_are_a_function_of_the_compression() -> None:
    K, n, L, eps, alpha, width = 3, 4, 5, 0.4, 3.0, 20
    layers = np.arange(L)
    by_layer = theory.layerwise_coding_rates(layers, eps, n, K, L, alpha, width=width, eps_sq=0.5)
    C = theory.layerwise_compression(layers, eps, n, K, L, alpha)
    by_C = theory.coding_rates_from_compression(C, n, K, width=width, eps_sq=0.5)
    np.testing.assert_allclose(np.array(by_layer), np.array(by_C), rtol=1e-13)
    np.testing.assert_allclose(by_C.rate_reduction, by_C.rate - by_C.class_rate, rtol=1e-13)
    single = theory.layerwise_coding_rates(2, eps, n, K, L, alpha, width=width, eps_sq=0.5)
    assert isinstance(single.rate, float) and single.rate == pytest.approx(by_layer.rate[2], rel=1e-13)
    # a different alpha with the same C_l gives the same normalised rates, the raw ones differ
    raw = theory.layerwise_coding_rates(layers, eps, n, K, L, alpha, width=width, eps_sq=0.5, normalize=False)
    assert np.max(np.abs(raw.rate / by_layer.rate - 1)) > 1e-3


def test_limits_and_first_order_law() -> None:
    K, n, width, eps_sq = 3, 10, 50, 0.5
    c = width / eps_sq
    collapsed = theory.coding_rates_from_compression(0.0, n, K, width=width, eps_sq=eps_sq)
    assert collapsed.rate == pytest.approx(K / 2 * np.log1p(c / K), rel=1e-14)
    assert collapsed.class_rate == pytest.approx(0.5 * np.log1p(c), rel=1e-14)
    h = 1e-7
    small = theory.coding_rates_from_compression(h, n, K, width=width, eps_sq=eps_sq)
    slopes = [(getattr(small, f) - getattr(collapsed, f)) / h for f in theory.CodingRates._fields]
    np.testing.assert_allclose(slopes, [(K - 1) * c**2 / (2 * K * (K + c)), (K - 1) * c**2 / (2 * K * (1 + c)),
                                        -(K - 1) ** 2 * c**2 / (2 * K * (1 + c) * (K + c))], rtol=1e-4)
    # Delta R is largest at the orthonormal input (C_0) and falls below its limit for small C
    grid = np.logspace(-8, np.log10(K * (n - 1) / (K - 1)), 2000)
    dr = theory.coding_rates_from_compression(grid, n, K, width=width, eps_sq=eps_sq).rate_reduction
    assert np.argmax(dr) == grid.size - 1 and dr.min() < collapsed.rate_reduction


def _vanishes(expr) -> bool:
    return sp.simplify(expr) == 0


def test_the_sympy_slope_catches_a_wrong_constant() -> None:
    """The first-order slope of Delta R in C, derived from the proposition; changing one constant must fail."""
    K, n, c, t = sp.symbols("K n c t", positive=True)
    lam_B, lam_W = n / (1 + (n - 1) * t), n * t / (1 + (n - 1) * t)
    R = K / 2 * sp.log(1 + c * lam_B / (K * n)) + K * (n - 1) / 2 * sp.log(1 + c * lam_W / (K * n))
    Rc = sp.log(1 + c * lam_B / n) / 2 + (n - 1) / 2 * sp.log(1 + c * lam_W / n)
    slope = sp.diff(R - Rc, t).subs(t, 0) * (K - 1) / (K * (n - 1))
    stated = -((K - 1) ** 2) * c**2 / (2 * K * (1 + c) * (K + c))
    assert _vanishes(slope - stated)
    assert not _vanishes(slope + (K - 1) * c**2 / (2 * K * (1 + c) * (K + c)))  # (K-1) instead of (K-1)^2
    assert not _vanishes(slope - stated.subs(c, 2 * c))  # 2c instead of m / eps^2
    wrong_mult = K / 2 * sp.log(1 + c * lam_B / (K * n)) + K * n / 2 * sp.log(1 + c * lam_W / (K * n))
    assert not _vanishes(sp.diff(wrong_mult - Rc, t).subs(t, 0) * (K - 1) / (K * (n - 1)) - stated)


def _formula(C, n, K, width, eps_sq, *, mult_between=None, mult_within=None, class_within=None, scale=1.0,
             t_factor=None):
    """The closed form with every constant exposed, so that a test can change one."""
    mult_between = K if mult_between is None else mult_between
    mult_within = K * (n - 1) if mult_within is None else mult_within
    class_within = n - 1 if class_within is None else class_within
    t_factor = (K - 1) / (K * (n - 1)) if t_factor is None else t_factor
    t = t_factor * np.asarray(C)
    between, within = n / (1 + (n - 1) * t), n * t / (1 + (n - 1) * t)
    a = scale * width / (n * K * eps_sq)
    rate = 0.5 * (mult_between * np.log1p(a * between) + mult_within * np.log1p(a * within))
    class_rate = 0.5 * (np.log1p(K * a * between) + class_within * np.log1p(K * a * within))
    return np.array([rate, class_rate, rate - class_rate])


@pytest.mark.parametrize("change", [dict(mult_between=4), dict(mult_within=3 * 4), dict(class_within=4),
                                    dict(scale=1.01), dict(t_factor=2 / 3)])
def test_a_changed_constant_fails_the_comparison(change) -> None:
    K, n, L, eps, alpha, width, eps_sq = 3, 4, 5, 0.4, 3.0, 20, 0.5
    measured = _measured(K, n, L, eps, alpha, width, eps_sq)
    C = theory.layerwise_compression(np.arange(L), eps, n, K, L, alpha)
    np.testing.assert_allclose(_formula(C, n, K, width, eps_sq), measured, rtol=1e-10)  # the exposed form is right
    wrong = _formula(C, n, K, width, eps_sq, **change)
    assert np.max(np.abs(wrong / measured - 1)) > 1e-4, change


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: theory.layerwise_coding_rates(5, 0.3, 4, 3, 5, width=20, eps_sq=0.5), "layer index"),
        (lambda: theory.layerwise_coding_rates(1, -0.3, 4, 3, 5, width=20, eps_sq=0.5), "eps"),
        (lambda: theory.layerwise_coding_rates(1, 0.3, 4, 3, 5, width=11, eps_sq=0.5), "width"),
        (lambda: theory.layerwise_coding_rates(1, 0.3, 4, 3, 5, width=20, eps_sq=0.0), "eps_sq"),
        (lambda: theory.layerwise_coding_rates(1, 0.3, 4, 1, 5, width=20, eps_sq=0.5), "K"),
        (lambda: theory.coding_rates_from_compression(-1.0, 4, 3, width=20, eps_sq=0.5), "C must"),
        (lambda: theory.coding_rates_from_compression([1.0, np.nan], 4, 3, width=20, eps_sq=0.5), "C must"),
        (lambda: theory.coding_rates_from_compression(1.0, 1, 3, width=20, eps_sq=0.5), "n"),
        (lambda: theory.coding_rates_from_compression(1.0, 4, 3, width=20, eps_sq=-1.0), "eps_sq"),
    ],
)
def test_bad_input_raises_value_error(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_rate_law_on_a_trained_recipe() -> None:
    run = recipes.run_recipe(xi=0.3, n=5, L=4, alpha=10.0, seed=2, K=3, dim=20)
    law = connections.rate_law(run, eps_sq=0.5)
    assert law.measured.rate.shape == (4,) and law.width == 20
    for against in ("predicted", "from_compression"):
        errors = law.relative_errors(against)
        assert max(float(e.max()) for e in errors.values()) < 0.05, (against, errors)
    np.testing.assert_allclose(law.measured.rate_reduction, law.measured.rate - law.measured.class_rate)
    with pytest.raises(ValueError, match="against"):
        law.relative_errors("nonsense")
    with pytest.raises(ValueError, match="eps_sq"):
        connections.rate_law(run, eps_sq=0.0)
