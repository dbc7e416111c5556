"""The compression law under perturbation (chapter "The law under perturbation"; our analysis, not the paper's).

- :func:`symbolic_ratio` builds the exact per-layer ratio ``C_{l+1}/C_l`` of :class:`pnc.theory.PerturbationLaw` in
  sympy, with the class Gram deviation scaled by ``t`` (``H = n (I - t E)``, written in ``E``'s eigenbasis) and the
  leak ``b_perp = s beta_0 b(0)``; :func:`series_terms` differentiates it at ``t = s = 0`` to obtain the
  zeroth-, first- and second-order terms that the chapter asserts.
- :func:`perturbation_sweep` trains the recipe's deep linear network (:func:`pnc.book.recipes.run_recipe`) on
  nearly orthonormal data of growing perturbation and pairs each run with the law of its data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pnc import data as _data
from pnc import theory as _theory
from pnc._checks import check_int as _check_int

from .recipes import RecipeResult, run_recipe

__all__ = ["PerturbationRun", "SymbolicRatio", "agreement_limit", "perturbation_sweep", "series_terms",
           "symbolic_ratio"]


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
