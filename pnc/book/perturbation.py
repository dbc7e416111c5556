"""The compression law under perturbation (chapter "The law under perturbation"; our analysis, not the paper's).

- :func:`symbolic_ratio` builds the exact per-layer ratio ``C_{l+1}/C_l`` of :class:`pnc.theory.PerturbationLaw` in
  sympy, with the class Gram deviation scaled by ``t`` (``H = n (I - t E)``, written in ``E``'s eigenbasis) and the
  leak ``b_perp = s beta_0 b(0)``; :func:`series_terms` differentiates it at ``t = s = 0`` to obtain the
  zeroth-, first- and second-order terms that the chapter asserts.
- :func:`perturbation_sweep` trains the recipe's deep linear network (:func:`pnc.book.recipes.run_recipe`) on
  nearly orthonormal data of growing perturbation and pairs each run with the law of its data.
- :func:`imbalance_sweep` trains it from per-layer initial scales (:func:`tilted_scales`), so that its pairs of
  layers are imbalanced, and pairs each run with :func:`pnc.theory.imbalance_law` (:func:`init_scale_law`).
- :func:`failure_law` predicts the runs of the failure sweep of :mod:`pnc.book.assumptions` with the same laws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pnc import data as _data
from pnc import theory as _theory
from pnc._checks import check_int as _check_int

from . import assumptions as _assumptions
from .assumptions import FailureRun
from .recipes import RecipeResult, run_recipe

__all__ = ["ImbalanceRun", "PerturbationRun", "SymbolicRatio", "agreement_limit", "agreement_range", "failure_eps",
           "failure_law", "imbalance_series", "imbalance_sweep", "init_scale_law", "perturbation_sweep", "series_terms",
           "symbolic_ratio", "tilted_scales"]


@dataclass(frozen=True)
class SymbolicRatio:
    """The exact ratio ``C_{l+1}/C_l`` as a sympy expression and the symbols it is written in."""

    ratio: object
    kappa: object
    tau: object
    """``Tr(J E) = sum_j c_j e_j`` with ``c_j = (U^T J U)_jj`` (summing to ``Tr J = K - 1``) and ``e_j`` the
    eigenvalues of ``E``."""
    symbols: dict
    """``t, s, eps, alpha, n, L, l, beta0`` (sympy symbols), ``K`` (the int), ``c`` and ``e`` (the weights ``c_j``,
    the last one eliminated, and the eigenvalues ``e_j``)."""


def symbolic_ratio(K: int = 3) -> SymbolicRatio:
    """``C_{l+1}/C_l = eps^2 (b(l) + eps^(2l) b_perp) / (b(l+1) + eps^(2l+2) b_perp)`` for ``K`` classes, with
    ``b(l) = sum_j c_j (n (1 - t e_j) / alpha^2)^(l/L - 1) / (K alpha^2)`` and ``b_perp = s beta_0 b(0)``.

    The within-class energy ``w`` cancels in the ratio. ``c_K`` is eliminated by ``sum_j c_j = K - 1``.
    """
    import sympy as sp

    K = _check_int("K", K, 2)
    t, s = sp.symbols("t s")
    eps, alpha, n, L, beta0 = sp.symbols("varepsilon alpha n L beta_0", positive=True)
    l = sp.Symbol("l", nonnegative=True)
    cs = list(sp.symbols(f"c1:{K}", real=True))
    cs.append((K - 1) - sum(cs))
    es = list(sp.symbols(f"e1:{K + 1}", real=True))

    def b(layer):
        p = layer / L - 1
        return sum(c * (n * (1 - t * e) / alpha**2) ** p for c, e in zip(cs, es, strict=True)) / (K * alpha**2)

    b_perp = s * beta0 * b(0)

    def compression(layer):  # without the common factor w
        return eps ** (2 * layer) / (b(layer) + eps ** (2 * layer) * b_perp)

    ratio = compression(l + 1) / compression(l)
    kappa = eps**2 * (alpha**2 / n) ** (1 / L)
    tau = sum(c * e for c, e in zip(cs, es, strict=True))
    names = {"t": t, "s": s, "eps": eps, "alpha": alpha, "n": n, "L": L, "l": l, "beta0": beta0, "K": K, "c": cs,
             "e": es}
    return SymbolicRatio(ratio=ratio, kappa=kappa, tau=tau, symbols=names)


def series_terms(sym: SymbolicRatio) -> dict[str, object]:
    """The terms of the ratio's expansion at ``t = s = 0``: ``"zeroth"``, ``"t"`` and ``"s"`` (first order) and
    ``"tt"`` (the second-order coefficient in ``t``), each simplified."""
    import sympy as sp

    t, s = sym.symbols["t"], sym.symbols["s"]
    at0 = {t: 0, s: 0}
    r = sym.ratio
    return {
        "zeroth": sp.simplify(r.subs(at0)),
        "t": sp.simplify(sp.diff(r, t).subs(at0)),
        "s": sp.simplify(sp.diff(r, s).subs(at0)),
        "tt": sp.simplify(sp.diff(r, t, 2).subs(at0) / 2),
    }


@dataclass(frozen=True)
class PerturbationRun:
    """One trained network of the sweep and the law of its data."""

    perturbation: float
    """Total Frobenius norm of the noise added to the orthonormal samples (:func:`pnc.data.orthogonal_dataset`)."""
    law: _theory.PerturbationLaw
    trained: RecipeResult

    def errors(self, prediction: str = "first_order") -> np.ndarray:
        """``trained / predicted - 1`` per layer ratio; ``prediction`` is ``"first_order"``, ``"exact"`` (the
        closed form of the construction) or ``"ideal"`` (``kappa``)."""
        predicted = {"first_order": self.law.first_order_ratios, "exact": self.law.ratios,
                     "ideal": np.full(self.law.ratios.shape, self.law.kappa)}
        if prediction not in predicted:
            raise ValueError(f"prediction must be one of {list(predicted)}, got {prediction!r}")
        return self.trained.ratios / predicted[prediction] - 1.0

    def worst_error(self, prediction: str = "first_order") -> float:
        """``max_l |trained / predicted - 1|``."""
        return float(np.max(np.abs(self.errors(prediction))))


def perturbation_sweep(
    perturbations: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
    seed: int = 1,
    *,
    xi: float = 0.3,
    n: int = 10,
    K: int = 3,
    dim: int = 50,
    L: int = 6,
    alpha: float = 100.0,
) -> list[PerturbationRun]:
    """Train the recipe's network once per perturbation (same seed, so the same orthonormal base and noise
    direction, scaled) and compute :func:`pnc.theory.perturbation_law` of its data with ``eps = xi``."""
    values = [float(p) for p in perturbations]
    if not values or any(not np.isfinite(p) or p < 0 for p in values):
        raise ValueError(f"perturbations must be a non-empty list of finite numbers >= 0, got {perturbations}")
    runs = []
    for p in values:
        X, y = _data.orthogonal_dataset(n_per_class=n, n_classes=K, dim=dim, perturbation=p, seed=seed)
        law = _theory.perturbation_law(X.double(), y, L, xi, alpha)
        trained = run_recipe(xi=xi, n=n, L=L, alpha=alpha, seed=seed, K=K, dim=dim, perturbation=p)
        runs.append(PerturbationRun(perturbation=p, law=law, trained=trained))
    return runs


def agreement_limit(runs: Sequence[PerturbationRun], tolerance: float = 0.05,
                    prediction: str = "first_order") -> float | None:
    """The largest perturbation up to which every run (from the smallest on) is within ``tolerance`` of the
    prediction at every layer; ``None`` if the first run already is not."""
    limit = None
    for run in sorted(runs, key=lambda r: r.perturbation):
        if run.worst_error(prediction) > tolerance:
            break
        limit = run.perturbation
    return limit


def tilted_scales(tilt: float, L: int) -> np.ndarray:
    """Per-layer factors of the initial scale, ``1 + tilt (2 (j - 1) / (L - 1) - 1)`` for ``j = 1 .. L``: a linear
    ramp from ``1 - tilt`` at the first layer to ``1 + tilt`` at the classifier (``|tilt| < 1``)."""
    L = _check_int("L", L, 2)
    if not np.isfinite(tilt) or abs(tilt) >= 1:
        raise ValueError(f"tilt must be a number with |tilt| < 1 (every scale > 0), got {tilt!r}")
    return 1.0 + float(tilt) * np.linspace(-1.0, 1.0, L)


def init_scale_law(xis: Sequence[float], n: int, alpha: float) -> _theory.ImbalanceLaw:
    """The imbalance law predicted from the initial scales ``xis`` (one per layer) of an orthogonal
    initialisation: gradient flow conserves every pair's imbalance ``(xi_{j+1}^2 - xi_j^2) I``, so along the signal
    ``g_j = xi_{j+1}^2 - xi_j^2``, and the directions no gradient touches keep ``eps_j = xi_j``."""
    x = np.asarray(xis, dtype=np.float64).reshape(-1)
    if x.size < 2:
        raise ValueError(f"xis needs one scale per layer (L >= 2), got {x.tolist()}")
    return _theory.imbalance_law(x[:-1], x[1:] ** 2 - x[:-1] ** 2, n, alpha)


@dataclass(frozen=True)
class ImbalanceRun:
    """One trained network of the imbalance sweep and the law its initial scales predict."""

    tilt: float
    scales: np.ndarray
    """The factors of ``xi`` per layer (:func:`tilted_scales`)."""
    law: _theory.ImbalanceLaw
    trained: RecipeResult

    def errors(self, prediction: str = "exact") -> np.ndarray:
        """``trained / predicted - 1`` per layer ratio; ``prediction`` is ``"exact"`` (:class:`ImbalanceLaw`),
        ``"first_order"`` (first order in the imbalances) or ``"ideal"`` (the balanced ``kappa``)."""
        predicted = {"exact": self.law.ratios, "first_order": self.law.first_order_ratios,
                     "ideal": np.full(self.law.ratios.shape, self.trained.kappa)}
        if prediction not in predicted:
            raise ValueError(f"prediction must be one of {list(predicted)}, got {prediction!r}")
        return self.trained.ratios / predicted[prediction] - 1.0

    def worst_error(self, prediction: str = "exact") -> float:
        """``max_l |trained / predicted - 1|``."""
        return float(np.max(np.abs(self.errors(prediction))))

    @property
    def initial_imbalance(self) -> float:
        """``max_j ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F`` of the hidden pairs at the initialisation."""
        xis = self.trained.config["xi"] * self.scales
        width = self.trained.config["width"]
        return float(np.max(np.abs(np.diff(xis[:-1] ** 2))) * np.sqrt(width))


def imbalance_sweep(
    tilts: Sequence[float] = (-0.8, -0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8),
    seed: int = 1,
    *,
    xi: float = 0.3,
    n: int = 10,
    K: int = 3,
    dim: int = 50,
    L: int = 6,
    alpha: float = 100.0,
    perturbation: float = 0.0,
) -> list[ImbalanceRun]:
    """Train the recipe's network once per tilt of its initial scales (same seed and data) and pair each run with
    :func:`init_scale_law` of its scales."""
    values = [float(t) for t in tilts]
    if not values:
        raise ValueError("tilts must be a non-empty list of numbers")
    runs = []
    for tilt in values:
        scales = tilted_scales(tilt, L)
        trained = run_recipe(xi=xi, n=n, L=L, alpha=alpha, seed=seed, K=K, dim=dim, perturbation=perturbation,
                             init_scales=scales.tolist())
        runs.append(ImbalanceRun(tilt=tilt, scales=scales, law=init_scale_law(xi * scales, n, alpha), trained=trained))
    return runs


def agreement_range(runs: Sequence[ImbalanceRun], tolerance: float = 0.05,
                    prediction: str = "exact") -> tuple[float, float] | None:
    """The widest interval of tilts around the balanced run (tilt 0) in which every run is within ``tolerance`` of
    the prediction at every layer; ``None`` if the sweep has no tilt 0 or that run already is not."""
    ordered = sorted(runs, key=lambda r: r.tilt)
    centre = next((i for i, r in enumerate(ordered) if r.tilt == 0.0), None)
    if centre is None or ordered[centre].worst_error(prediction) > tolerance:
        return None
    lo = hi = centre
    while lo > 0 and ordered[lo - 1].worst_error(prediction) <= tolerance:
        lo -= 1
    while hi < len(ordered) - 1 and ordered[hi + 1].worst_error(prediction) <= tolerance:
        hi += 1
    return ordered[lo].tilt, ordered[hi].tilt


def imbalance_series(L: int = 6) -> dict[str, object]:
    """The first-order law of imbalanced layers by series expansion (sympy): with ``g_j = theta h_j`` and
    ``s_1^2 = s^2 (1 + a theta)``, solve the product constraint ``sum_j log s_j^2 = L log s^2`` for ``a`` at first
    order, then expand ``s^2 / s_l^2`` (the ratio ``C_l / C_{l-1}`` over ``eps_l^2 / s^2``) to first order in ``theta``.

    Returns the symbols ``theta``, ``s2``, ``h`` (``h_1 .. h_{L-1}``), the solved coefficient ``a`` and
    ``relative``, the first-order series of ``s^2 / s_l^2`` for ``l = 1 .. L-1``."""
    import sympy as sp

    L = _check_int("L", L, 2)
    theta, a, s2 = sp.symbols("theta a s^2", positive=True)
    h = sp.symbols(f"h_1:{L}")
    gains_sq = [s2 * (1 + a * theta) + theta * sum(h[:j]) for j in range(L)]   # s_j^2, j = 1 .. L
    constraint = sum(sp.log(g) for g in gains_sq) - L * sp.log(s2)
    a_first = sp.solve(sp.diff(constraint, theta).subs(theta, 0), a)[0]
    relative = [sp.series((s2 / gains_sq[l - 1]).subs(a, a_first), theta, 0, 2).removeO() for l in range(1, L)]
    return {"theta": theta, "s2": s2, "h": h, "a": a_first, "relative": relative}


def failure_eps(run: FailureRun) -> float:
    """The ``eps`` the laws use for a run of the failure sweep: its ``xi``, shrunk by its weight decay
    (:func:`pnc.book.assumptions.weight_decay_eps`) where it has one."""
    config = run.result.config
    if not config["weight_decay"]:
        return float(config["xi"])
    return _assumptions.weight_decay_eps(config["xi"], config["weight_decay"], lr=config["lr"], epochs=config["epochs"])


def failure_law(run: FailureRun) -> _theory.PerturbationLaw | None:
    """:func:`pnc.theory.perturbation_law` of the data of one run of chapter "Checking the assumptions"'s failure
    sweep with ``eps = failure_eps(run)``; ``None`` where the law does not apply (fewer data dimensions than samples:
    the data are not linearly independent)."""
    config = run.result.config
    X, y = _assumptions.projected_dataset(config["n"], config["K"], config["d"],
                                          full_dim=_assumptions.BASE_RECIPE["dim"],
                                          perturbation=config["perturbation"], seed=config["seed"])
    if config["d"] < X.shape[0]:
        return None
    return _theory.perturbation_law(X.double(), y, config["L"], failure_eps(run), config["alpha"])
