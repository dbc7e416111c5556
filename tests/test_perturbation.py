"""The law under perturbation (our analysis): the exact closed form, its first-order law, the sympy derivation
(which a wrong constant fails), the sweep and its figure."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from pnc import data, metrics, theory
from pnc.book import perturbation as P
from pnc.book.figures.perturbation import imbalance_figure, perturbation_figure
from pnc.book.recipes import run_recipe


def _data(p: float, K: int = 3, n: int = 6, dim: int = 30, seed: int = 0):
    X, y = data.orthogonal_dataset(n_per_class=n, n_classes=K, dim=dim, perturbation=p, seed=seed)
    return X.double().numpy(), y.numpy()


@pytest.mark.parametrize(("K", "p", "L"), [(2, 0.7, 3), (3, 2.0, 5), (4, 5.0, 4)])
def test_the_closed_form_is_the_measured_construction(K: int, p: float, L: int) -> None:
    x, y = _data(p, K=K)
    law = theory.perturbation_law(x, y, L, eps=0.4, alpha=3.0)
    net = theory.balanced_min_norm_network(x, y, L, 0.4, 3.0)
    measured = np.array([metrics.compression(z, y) for z in theory.layer_features(net, x)])
    np.testing.assert_allclose(law.compression, measured, rtol=1e-10)  # float64 construction, exact formula


def test_orthonormal_data_give_the_idealised_law() -> None:
    x, y = _data(0.0)
    law = theory.perturbation_law(x, y, 5, eps=0.3, alpha=10.0)
    np.testing.assert_allclose(law.compression, theory.layerwise_compression(np.arange(5), 0.3, 6, 3, 5, 10.0),
                               rtol=1e-12)
    assert abs(law.gain_shift) < 1e-12 and law.leak < 1e-20
    np.testing.assert_allclose(law.first_order_ratios, law.kappa, rtol=1e-12)


def test_the_first_order_error_shrinks_quadratically() -> None:
    """Halving the perturbation quarters the error of the first-order law (it is exact to first order)."""
    errors = []
    for p in (0.4, 0.2, 0.1):
        x, y = _data(p)
        law = theory.perturbation_law(x, y, 6, eps=0.3, alpha=100.0)
        errors.append(np.max(np.abs(law.first_order_ratios / law.ratios - 1)))
        assert np.max(np.abs(law.ratios / law.kappa - 1)) > errors[-1]  # it beats kappa
    assert errors[1] < 0.35 * errors[0] and errors[2] < 0.35 * errors[1], errors


def test_bad_data_are_named() -> None:
    x, y = _data(1.0)
    repeated = x.copy()
    repeated[1] = repeated[0]  # two equal samples: the Gram matrix is singular
    with pytest.raises(ValueError, match="linearly independent"):
        theory.perturbation_law(repeated, y, 4, 0.3)
    with pytest.raises(ValueError, match="balanced"):
        theory.perturbation_law(x[:-1], y[:-1], 4, 0.3)
    with pytest.raises(ValueError, match="L"):
        theory.perturbation_law(x, y, 1, 0.3)
    with pytest.raises(ValueError, match="eps"):
        theory.perturbation_law(x, y, 4, -0.3)


@pytest.fixture(scope="module")
def terms():
    sym = P.symbolic_ratio(K=3)
    return sym, P.series_terms(sym)


def _vanishes(expr) -> bool:
    return sp.simplify(expr) == 0


def test_the_derived_terms_are_the_stated_law(terms) -> None:
    sym, t = terms
    S = sym.symbols
    assert _vanishes(t["zeroth"] - sym.kappa)
    assert _vanishes(t["t"] - sym.kappa * sym.tau / ((S["K"] - 1) * S["L"]))
    assert _vanishes(t["s"] - sym.kappa * (1 - sym.kappa) * sym.kappa ** S["l"] * S["beta0"])
    assert not _vanishes(sp.diff(t["tt"], S["l"]))  # the second order depends on the layer


@pytest.mark.parametrize("wrong", ["K instead of K-1", "L+1 instead of L", "kappa^(l+1) instead of kappa^l",
                                   "no (1-kappa)", "kappa with n^2"])
def test_a_wrong_constant_fails_the_assertion(terms, wrong: str) -> None:
    """Each closed form the chapter asserts, with one constant changed: the sympy check no longer vanishes."""
    sym, t = terms
    S, kappa = sym.symbols, sym.kappa
    claims = {
        "K instead of K-1": t["t"] - kappa * sym.tau / (S["K"] * S["L"]),
        "L+1 instead of L": t["t"] - kappa * sym.tau / ((S["K"] - 1) * (S["L"] + 1)),
        "kappa^(l+1) instead of kappa^l": t["s"] - kappa * (1 - kappa) * kappa ** (S["l"] + 1) * S["beta0"],
        "no (1-kappa)": t["s"] - kappa * kappa ** S["l"] * S["beta0"],
        "kappa with n^2": t["zeroth"] - S["eps"] ** 2 * (S["alpha"] ** 2 / S["n"] ** 2) ** (1 / S["L"]),
    }
    assert not _vanishes(claims[wrong])


def test_the_sweep_and_its_agreement_limit() -> None:
    runs = P.perturbation_sweep((0.0, 1.0, 8.0), seed=1)
    assert [r.perturbation for r in runs] == [0.0, 1.0, 8.0]
    assert all(r.trained.converged for r in runs)
    assert runs[0].worst_error("first_order") == pytest.approx(runs[0].worst_error("ideal"))  # E = 0, no leak
    assert runs[1].worst_error("first_order") < 0.05 < runs[2].worst_error("first_order")
    assert P.agreement_limit(runs, 0.05) == 1.0
    assert P.agreement_limit(runs, 1e-9) is None
    assert P.agreement_limit(runs, 10.0) == 8.0
    with pytest.raises(ValueError, match="prediction"):
        runs[0].errors("nope")
    fig = perturbation_figure(runs, shown=(0.0, 8.0))
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 5
    with pytest.raises(ValueError, match="not in the sweep"):
        perturbation_figure(runs, shown=(3.0,))
    with pytest.raises(ValueError, match="at least two"):
        perturbation_figure(runs[:1])
    with pytest.raises(ValueError, match="perturbations"):
        P.perturbation_sweep((-1.0,))


# --- imbalanced layers -------------------------------------------------------------------------------------------


def _aligned_ratios(law: theory.ImbalanceLaw, K: int, n: int, dim: int, alpha: float) -> np.ndarray:
    """C_l / C_{l-1} measured on aligned layers with the law's gains, on orthonormal data."""
    X, y = data.orthogonal_dataset(n_per_class=n, n_classes=K, dim=dim, perturbation=0.0, seed=3)
    x, labels = X.double().numpy(), y.numpy()
    _, _, Vt = np.linalg.svd(theory.min_norm_solution(x, labels, alpha))
    z = x @ Vt.T
    values = [metrics.compression(z, labels)]
    for s_j, e_j in zip(np.sqrt(law.gains_sq[:-1]), law.eps, strict=True):
        z = z * np.r_[np.full(K, s_j), np.full(dim - K, e_j)]
        values.append(metrics.compression(z, labels))
    return np.array(values[1:]) / np.array(values[:-1])


@pytest.mark.parametrize(("K", "n", "L"), [(2, 4, 3), (3, 5, 6), (4, 3, 4)])
def test_the_imbalance_law_is_the_measured_aligned_construction(K: int, n: int, L: int) -> None:
    rng = np.random.default_rng(K + L)
    eps = 0.3 * (1 + 0.3 * rng.uniform(-1, 1, L - 1))
    gaps = 0.05 * rng.standard_normal(L - 1)
    law = theory.imbalance_law(eps, gaps, n, alpha=10.0)
    assert np.prod(np.sqrt(law.gains_sq)) == pytest.approx(np.sqrt(n) / 10.0, rel=1e-12)
    assert np.allclose(np.diff(law.gains_sq), gaps, rtol=0, atol=1e-14)
    measured = _aligned_ratios(law, K, n, dim=K * n + 4, alpha=10.0)
    assert np.allclose(measured, law.ratios, rtol=1e-10)


def test_balanced_layers_give_kappa_and_the_first_order_error_is_quadratic() -> None:
    L, n, alpha, eps = 6, 10, 100.0, 0.3
    balanced = theory.imbalance_law([eps] * (L - 1), [0.0] * (L - 1), n, alpha)
    kappa = theory.compression_ratio(eps, n, L, alpha)
    assert np.allclose(balanced.ratios, kappa, rtol=1e-12)
    assert np.allclose(balanced.first_order_ratios, kappa, rtol=1e-12)
    direction = np.array([0.3, -0.1, 0.2, 0.05, -0.25])
    errors = []
    for scale in (0.04, 0.02, 0.01):
        law = theory.imbalance_law([eps] * (L - 1), scale * direction, n, alpha)
        errors.append(np.max(np.abs(law.first_order_ratios / law.ratios - 1)))
    assert errors[1] / errors[0] < 0.3 and errors[2] / errors[1] < 0.3   # O(g^2): about 1/4 per halving


def test_imbalance_law_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="one value per pair"):
        theory.imbalance_law([0.3, 0.3], [0.0], 10, 1.0)
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        theory.imbalance_law([0.3, -0.1], [0.0, 0.0], 10, 1.0)
    with pytest.raises(ValueError, match="gaps must be finite"):
        theory.imbalance_law([0.3, 0.3], [0.0, np.nan], 10, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        theory.imbalance_law([0.3], [0.0], 10, 0.0)


@pytest.fixture(scope="module")
def imbalance_terms():
    return P.imbalance_series(L=4)


def _imbalance_claim(terms, l: int, L: int, shift: int = 0, indicator=lambda j, l: j < l):
    h, s2, theta = terms["h"], terms["s2"], terms["theta"]
    return 1 - theta * sum(h[j - 1] * (int(indicator(j, l)) - sp.Rational(L - j + shift, L)) for j in range(1, L)) / s2


def test_the_imbalance_series_is_the_stated_first_order_law(imbalance_terms) -> None:
    for l, derived in enumerate(imbalance_terms["relative"], start=1):
        assert _vanishes(derived - _imbalance_claim(imbalance_terms, l, 4))


@pytest.mark.parametrize("wrong", ["(L-j+1)/L", "1[j <= l]"])
def test_a_wrong_constant_fails_the_imbalance_assertion(imbalance_terms, wrong: str) -> None:
    claims = {"(L-j+1)/L": lambda l: _imbalance_claim(imbalance_terms, l, 4, shift=1),
              "1[j <= l]": lambda l: _imbalance_claim(imbalance_terms, l, 4, indicator=lambda j, m: j <= m)}
    assert not all(_vanishes(derived - claims[wrong](l))
                   for l, derived in enumerate(imbalance_terms["relative"], start=1))


def test_tilted_scales_and_the_law_of_initial_scales() -> None:
    assert np.allclose(P.tilted_scales(0.5, 3), [0.5, 1.0, 1.5])
    with pytest.raises(ValueError, match="tilt"):
        P.tilted_scales(1.0, 4)
    law = P.init_scale_law([0.2, 0.3, 0.4], n=10, alpha=1.0)
    assert np.allclose(law.eps, [0.2, 0.3]) and np.allclose(law.gaps, [0.05, 0.07])
    with pytest.raises(ValueError, match="one scale per layer"):
        P.init_scale_law([0.3], n=10, alpha=1.0)


def test_the_imbalance_sweep_agreement_range_and_figure() -> None:
    runs = P.imbalance_sweep((-0.4, 0.0, 0.4), seed=1, L=4)
    assert all(r.trained.converged for r in runs)
    assert runs[1].initial_imbalance == pytest.approx(0.0, abs=1e-12) and runs[0].initial_imbalance > 0
    assert runs[1].trained.config["init_scales"] == pytest.approx([1.0] * 4)
    assert all(r.worst_error("exact") < r.worst_error("ideal") for r in (runs[0], runs[2]))
    assert P.agreement_range(runs, 10.0) == (-0.4, 0.4)
    assert P.agreement_range(runs, 1e-9) is None
    assert P.agreement_range(runs[:1], 10.0) is None          # no balanced run
    with pytest.raises(ValueError, match="prediction"):
        runs[0].errors("nope")
    fig = imbalance_figure(runs, shown=(-0.4, 0.4))
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 7
    with pytest.raises(ValueError, match="not in the sweep"):
        imbalance_figure(runs, shown=(0.1,))
    with pytest.raises(ValueError, match="init_scales"):
        run_recipe(L=4, init_scales=[1.0, 1.0])


def test_failure_law_predicts_the_failure_runs_it_covers() -> None:
    from pnc.book import assumptions

    decayed = assumptions.failure_run("weight decay", 0.015)
    assert P.failure_eps(decayed) == pytest.approx(assumptions.weight_decay_eps(0.3, 0.015, lr=0.1, epochs=300))
    law = P.failure_law(decayed)
    assert np.max(np.abs(decayed.result.ratios / law.first_order_ratios - 1)) < 0.05
    assert np.max(np.abs(decayed.ratios_over_kappa - 1)) > 0.2           # kappa of xi alone misses it
    assert P.failure_law(assumptions.failure_run("data dimension", 20)) is None   # d < N: no law
    plain = assumptions.failure_run("init scale", 0.3)
    assert P.failure_eps(plain) == 0.3


# A spread of the non-signal singular values ------------------------------------------------------------------------
def _spread_construction_ratios(factors: np.ndarray, weights: np.ndarray, K: int, n: int, eps: float,
                                alpha: float) -> np.ndarray:
    """C_l / C_{l-1} measured on the aligned construction: signal coordinates scaled by s, within-class coordinate
    i by eps f_{l,i} (its input energy set to w_i), the rest by eps."""
    dim = K * n + 3
    x, labels = _data(0.0, K=K, n=n, dim=dim)
    L = factors.shape[0] + 1
    z = x @ P.within_class_basis(x, labels)
    z[:, K:K * n] *= np.sqrt(weights / weights.mean())
    gain = (n / alpha**2) ** (1 / (2 * L))
    values = [metrics.compression(z, labels)]
    for row in factors:
        z = z * np.r_[np.full(K, gain), eps * row, np.full(dim - K * n, eps)]
        values.append(metrics.compression(z, labels))
    return np.array(values[1:]) / np.array(values[:-1])


@pytest.mark.parametrize(("K", "n", "L", "coherent"), [(2, 4, 3, False), (3, 5, 6, True), (4, 3, 4, False)])
def test_the_spread_law_is_the_measured_aligned_construction(K: int, n: int, L: int, coherent: bool) -> None:
    m = K * n - K
    factors = P.spread_factors(0.5, L, m, coherent=coherent, seed=K)
    weights = np.random.default_rng(L).uniform(0.5, 2.0, m)
    law = theory.spread_law(factors, 0.3, n, alpha=10.0, weights=weights)
    assert law.weights.sum() == pytest.approx(1.0, rel=1e-15)
    measured = _spread_construction_ratios(factors, weights, K, n, 0.3, 10.0)
    assert np.allclose(measured, law.ratios, rtol=1e-10)      # float64 construction, exact formula


def test_no_spread_gives_kappa_and_the_orders_of_the_expansion() -> None:
    L, n, alpha, eps, m = 6, 10, 100.0, 0.3, 27
    kappa = theory.compression_ratio(eps, n, L, alpha)
    flat = theory.spread_law(np.ones((L - 1, m)), eps, n, alpha)
    for ratios in (flat.ratios, flat.first_order_ratios, flat.second_order_ratios, flat.mean_square_ratios):
        assert np.allclose(ratios, kappa, rtol=1e-14)
    u = P.spread_factors(1e-9, L, m, coherent=True, seed=0) - 1   # the direction of a coherent spread
    u = u / np.abs(u).max()
    first, second = [], []
    for rho in (0.04, 0.02, 0.01):
        law = theory.spread_law(1 + rho * u, eps, n, alpha)
        first.append(np.max(np.abs(law.first_order_ratios / law.ratios - 1)))
        second.append(np.max(np.abs(law.second_order_ratios / law.ratios - 1)))
    assert 0.2 < first[1] / first[0] < 0.3 and 0.2 < first[2] / first[1] < 0.3     # O(rho^2): 1/4 per halving
    assert second[1] / second[0] < 0.15 and second[2] / second[1] < 0.15            # O(rho^3): 1/8 per halving
    assert max(second) < max(first)


def test_spread_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="2-d array"):
        theory.spread_law(np.ones(4), 0.3, 10)
    with pytest.raises(ValueError, match="finite and > 0"):
        theory.spread_law(np.array([[1.0, -0.2]]), 0.3, 10)
    with pytest.raises(ValueError, match="weights must hold 2"):
        theory.spread_law(np.ones((2, 2)), 0.3, 10, weights=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="weights must hold"):
        theory.spread_law(np.ones((2, 2)), 0.3, 10, weights=[0.0, 0.0])
    with pytest.raises(ValueError, match="rho"):
        P.spread_factors(1.0, 4, 5, coherent=False)
    with pytest.raises(ValueError, match="factors must be"):
        P.rotated_spread_weights(np.ones((3, 4)), d=10, K=3, xi=0.3)
    x, y = _data(0.0)
    with pytest.raises(ValueError, match="factors must be"):
        P.aligned_spread_weights(x, y, np.ones((3, 4)), xi=0.3)
    with pytest.raises(ValueError, match="modes"):
        P.spread_sweep(modes=("aligned",))


def test_spread_factors_are_centred_and_coherent_means_one_order() -> None:
    independent = P.spread_factors(0.4, 5, 9, coherent=False, seed=2)
    coherent = P.spread_factors(0.4, 5, 9, coherent=True, seed=2)
    assert independent.shape == coherent.shape == (4, 9)
    assert np.allclose(independent.mean(axis=1), 1.0) and np.allclose(np.sort(independent[0]), np.linspace(0.6, 1.4, 9))
    assert np.all(coherent == coherent[0]) and not np.all(independent == independent[0])
    assert np.array_equal(P.spread_factors(0.4, 5, 9, coherent=False, seed=2), independent)   # seeded


def test_the_within_class_basis_separates_means_and_deviations() -> None:
    x, y = _data(0.0, K=3, n=4, dim=20)
    Q = P.within_class_basis(x, y)
    assert np.allclose(Q.T @ Q, np.eye(20), atol=1e-12)
    means = np.stack([x[y == k].mean(axis=0) for k in range(3)])
    coords_means, coords_dev = means @ Q, (x - means[y]) @ Q
    assert np.abs(coords_means[:, 3:]).max() < 1e-12            # class means: the first K coordinates only
    assert np.abs(coords_dev[:, :3]).max() < 1e-12 and np.abs(coords_dev[:, 12:]).max() < 1e-12
    assert np.allclose((coords_dev[:, 3:12] ** 2).sum(axis=0), 1.0)   # orthonormal data: unit energy per direction


def test_training_never_reaches_an_aligned_spread() -> None:
    """The aligned initialisation's within-class features are the same before and after training."""
    from pnc.book.recipes import train_dln

    X, y = data.orthogonal_dataset(n_per_class=5, n_classes=3, dim=20, perturbation=0.0, seed=4)
    x, labels = X.double().numpy(), y.numpy()
    factors = P.spread_factors(0.6, 4, 17, coherent=True, seed=4)
    start = P.aligned_spread_weights(x, labels, factors, xi=0.3, seed=4)
    trained = train_dln(X, y, xi=0.3, L=4, alpha=10.0, seed=4, init_weights=start)
    assert trained.converged and trained.config["init"] == "given"

    def deviations(weights):
        return [z - np.stack([z[labels == k].mean(axis=0) for k in range(3)])[labels]
                for z in theory.layer_features(weights, x)]

    for before, after in zip(deviations(start), deviations(trained.weights), strict=True):
        assert np.abs(after - before).max() < 1e-12 * max(1.0, np.abs(before).max())
    assert max(np.abs(a - b).max() for a, b in zip(start, trained.weights, strict=True)) > 0.1   # it did train
    with pytest.raises(ValueError, match="init_weights must be 4"):
        train_dln(X, y, L=4, init_weights=start[:3])
    with pytest.raises(ValueError, match="not both"):
        train_dln(X, y, L=4, init_weights=start, init_scales=[1.0] * 4)


def test_the_spread_sweep_trace_factors_and_figure() -> None:
    from pnc.book.figures.perturbation import spread_figure

    runs = P.spread_sweep((0.0, 0.5), seed=1, L=4, dim=30, n=6)
    assert all(r.trained.converged for r in runs) and len(runs) == 6
    by = {(r.mode, r.rho): r for r in runs}
    for mode in ("independent", "coherent"):
        assert by[(mode, 0.5)].worst_error("exact") < 1e-5
        assert by[(mode, 0.5)].worst_error("ideal") > 0.05
    rotated = by[("rotated", 0.5)]
    with pytest.raises(ValueError, match="prediction must be one of"):
        rotated.errors("exact")
    within, between, initial = P.trace_factors(rotated)
    assert np.allclose(within / between, rotated.trained.ratios, rtol=1e-10)
    assert np.all(np.abs(initial / within - 1) < 0.1) and not np.allclose(initial, within, rtol=1e-6)
    aligned = by[("coherent", 0.5)]
    assert np.allclose(P.trace_factors(aligned)[2], P.trace_factors(aligned)[0], rtol=1e-9)   # the spread is kept
    with pytest.raises(ValueError, match="no initial weights"):
        P.trace_factors(P.SpreadRun(rho=0.5, mode="rotated", law=rotated.law, trained=rotated.trained))
    assert P.spread_agreement_limit(runs, "coherent", 10.0, "exact") == 0.5
    assert P.spread_agreement_limit(runs, "coherent", 1e-3, "first_order") == 0.0
    with pytest.raises(ValueError, match="no runs of mode"):
        P.spread_agreement_limit(runs[:2], "rotated")
    fig = spread_figure(runs, shown=0.5)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3 * 2 + 2 + 1
    with pytest.raises(ValueError, match="not in the sweep"):
        spread_figure(runs, shown=0.3)


@pytest.fixture(scope="module")
def spread_terms():
    return P.spread_series(m=3, layer=3)


def _spread_claim(terms, cov: int = 4, square: int = 1, linear: int = 2):
    w, u = terms["w"], terms["u"]

    def e(values):
        return sum(wi * v for wi, v in zip(w, values, strict=True))

    last = u[-1]
    before = [sum(u[j][i] for j in range(len(u) - 1)) for i in range(len(w))]
    covariance = e([a * b for a, b in zip(last, before, strict=True)]) - e(last) * e(before)
    return [1, linear * e(last), square * e([v**2 for v in last]) + cov * covariance]


def test_the_spread_series_is_the_stated_law(spread_terms) -> None:
    assert all(sp.expand(d - c) == 0 for d, c in zip(spread_terms["terms"], _spread_claim(spread_terms), strict=True))


@pytest.mark.parametrize("wrong", [{"cov": 3}, {"square": 2}, {"linear": 1}])
def test_a_wrong_constant_fails_the_spread_assertion(spread_terms, wrong: dict) -> None:
    claim = _spread_claim(spread_terms, **wrong)
    assert not all(sp.expand(d - c) == 0 for d, c in zip(spread_terms["terms"], claim, strict=True))


def test_the_perturbation_grid_and_its_figure() -> None:
    from pnc.book.figures.perturbation import perturbation_grid_figure

    runs = P.perturbation_grid((0.0, 4.0), xis=(0.2, 0.4), seed=1, L=4, dim=30, n=6)
    assert [r.trained.config["xi"] for r in runs] == [0.2, 0.2, 0.4, 0.4]
    assert [r.perturbation for r in runs] == [0.0, 4.0, 0.0, 4.0]
    assert all(r.law.kappa == pytest.approx(theory.compression_ratio(r.trained.config["xi"], 6, 4, 100.0))
               for r in runs)
    fig = perturbation_grid_figure(runs)
    assert len(fig.axes) == 3 and len(fig.axes[1].images) == 1       # scatter, map, colour bar
    assert fig.axes[1].images[0].get_array().shape == (2, 2)
    with pytest.raises(ValueError, match="xis"):
        P.perturbation_grid((0.0,), xis=(0.0,))
