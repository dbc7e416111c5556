"""The compression law under perturbation (chapter "The law under perturbation"; our analysis, not the paper's).

- :func:`symbolic_ratio` builds the exact per-layer ratio ``C_{l+1}/C_l`` of :class:`pnc.theory.PerturbationLaw` in
  sympy, with the class Gram deviation scaled by ``t`` (``H = n (I - t E)``, written in ``E``'s eigenbasis) and the
  leak ``b_perp = s beta_0 b(0)``; :func:`series_terms` differentiates it at ``t = s = 0`` to obtain the
  zeroth-, first- and second-order terms that the chapter asserts.
- :func:`perturbation_sweep` trains the recipe's deep linear network (:func:`pnc.book.recipes.run_recipe`) on
  nearly orthonormal data of growing perturbation and pairs each run with the law of its data.
- :func:`imbalance_sweep` trains it from per-layer initial scales (:func:`tilted_scales`), so that its pairs of
  layers are imbalanced, and pairs each run with :func:`pnc.theory.imbalance_law` (:func:`init_scale_law`).
- :func:`spread_sweep` trains it from initialisations whose non-signal singular values spread around ``xi``
  (:func:`spread_factors`; aligned layers, :func:`aligned_spread_weights`, or randomly rotated ones,
  :func:`rotated_spread_weights`) and pairs each run with :func:`pnc.theory.spread_law`; :func:`spread_series`
  expands that law in the spread (sympy).
- :func:`failure_law` predicts the runs of the failure sweep of :mod:`pnc.book.assumptions` with the same laws.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from pnc import data as _data
from pnc import metrics as _metrics
from pnc import models as _models
from pnc import theory as _theory
from pnc._checks import check_int as _check_int
from pnc._checks import check_seed as _check_seed

from . import assumptions as _assumptions
from .assumptions import FailureRun
from .recipes import RecipeResult, RecipeSetup, run_recipe, train_dln

__all__ = ["SPREAD_MODES", "ImbalanceRun", "PerturbationRun", "SpreadRun", "SymbolicRatio", "agreement_limit",
           "agreement_range", "aligned_spread_weights", "failure_eps", "failure_law", "imbalance_series",
           "imbalance_sweep", "init_scale_law", "perturbation_grid", "perturbation_sweep", "rotated_spread_weights",
           "series_terms", "spread_agreement_limit", "spread_factors", "spread_series", "spread_sweep",
           "symbolic_ratio", "tilted_scales", "trace_factors", "within_class_basis"]


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


class _LawRun(ABC):
    """What the runs of the three sweeps share: the trained network's ratios ``C_{l+1} / C_l`` against the
    predictions of its law."""

    trained: RecipeResult
    default_prediction: ClassVar[str] = "exact"
    """The prediction :meth:`errors` and :meth:`worst_error` use unless told otherwise."""

    @abstractmethod
    def predicted_ratios(self) -> dict[str, np.ndarray]:
        """Every prediction of the layer ratios that applies to this run, by name."""

    def _about(self) -> str:
        return ""

    def errors(self, prediction: str | None = None) -> np.ndarray:
        """``trained / predicted - 1`` per layer ratio; ``prediction`` names one of :meth:`predicted_ratios`
        (default :attr:`default_prediction`)."""
        predicted = self.predicted_ratios()
        name = self.default_prediction if prediction is None else prediction
        if name not in predicted:
            raise ValueError(f"prediction must be one of {list(predicted)}{self._about()}, got {name!r}")
        return self.trained.ratios / predicted[name] - 1.0

    def worst_error(self, prediction: str | None = None) -> float:
        """``max_l |trained / predicted - 1|``."""
        return float(np.max(np.abs(self.errors(prediction))))


@dataclass(frozen=True)
class PerturbationRun(_LawRun):
    """One trained network of the sweep and the law of its data."""

    perturbation: float
    """Total Frobenius norm of the noise added to the orthonormal samples (:func:`pnc.data.orthogonal_dataset`)."""
    law: _theory.PerturbationLaw
    trained: RecipeResult
    default_prediction: ClassVar[str] = "first_order"

    def predicted_ratios(self) -> dict[str, np.ndarray]:
        """``"first_order"``, ``"exact"`` (the closed form of the construction) and ``"ideal"`` (``kappa``)."""
        return {"first_order": self.law.first_order_ratios, "exact": self.law.ratios,
                "ideal": np.full(self.law.ratios.shape, self.law.kappa)}


def perturbation_sweep(
    perturbations: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
    seed: int = 1,
    **setup: float,
) -> list[PerturbationRun]:
    """Train the recipe's network once per perturbation (same seed, so the same orthonormal base and noise
    direction, scaled) and compute :func:`pnc.theory.perturbation_law` of its data with ``eps = xi``. ``setup`` are
    the knobs of :class:`pnc.book.recipes.RecipeSetup` (``xi, n, K, dim, L, alpha``; the recipe's by default)."""
    values = [float(p) for p in perturbations]
    if not values or any(not np.isfinite(p) or p < 0 for p in values):
        raise ValueError(f"perturbations must be a non-empty list of finite numbers >= 0, got {perturbations}")
    recipe = RecipeSetup(**setup)
    runs = []
    for p in values:
        X, y = recipe.dataset(p, seed)
        law = _theory.perturbation_law(X.double(), y, recipe.L, recipe.xi, recipe.alpha)
        trained = run_recipe(seed=seed, perturbation=p, **recipe.kwargs())
        runs.append(PerturbationRun(perturbation=p, law=law, trained=trained))
    return runs


def perturbation_grid(
    perturbations: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
    xis: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5),
    seed: int = 1,
    **options: int | float,
) -> list[PerturbationRun]:
    """:func:`perturbation_sweep` once per initialisation scale ``xi`` (``eps = xi`` in the law); ``options`` go to
    it (``n, K, dim, L, alpha``). The runs are in the order of ``xis``, then of ``perturbations``."""
    scales = [float(x) for x in xis]
    if not scales or any(not np.isfinite(x) or x <= 0 for x in scales):
        raise ValueError(f"xis must be a non-empty list of numbers > 0, got {xis}")
    return [run for xi in scales for run in perturbation_sweep(perturbations, seed, xi=xi, **options)]


def agreement_limit(runs: Sequence[PerturbationRun], tolerance: float = 0.05,
                    prediction: str = "first_order") -> float | None:
    """The largest perturbation up to which every run (from the smallest on) is within ``tolerance`` of the
    prediction at every layer; ``None`` if the first run already is not."""
    return _limit(runs, lambda r: r.perturbation, tolerance, prediction)


def _limit(runs, value, tolerance: float, prediction: str) -> float | None:
    limit = None
    for run in sorted(runs, key=value):
        if run.worst_error(prediction) > tolerance:
            break
        limit = value(run)
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
class ImbalanceRun(_LawRun):
    """One trained network of the imbalance sweep and the law its initial scales predict."""

    tilt: float
    scales: np.ndarray
    """The factors of ``xi`` per layer (:func:`tilted_scales`)."""
    law: _theory.ImbalanceLaw
    trained: RecipeResult

    def predicted_ratios(self) -> dict[str, np.ndarray]:
        """``"exact"`` (:class:`ImbalanceLaw`), ``"first_order"`` (first order in the imbalances) and ``"ideal"``
        (the balanced ``kappa``)."""
        return {"exact": self.law.ratios, "first_order": self.law.first_order_ratios,
                "ideal": np.full(self.law.ratios.shape, self.trained.kappa)}

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
    perturbation: float = 0.0,
    **setup: float,
) -> list[ImbalanceRun]:
    """Train the recipe's network once per tilt of its initial scales (same seed and data) and pair each run with
    :func:`init_scale_law` of its scales. ``setup`` are the knobs of :class:`pnc.book.recipes.RecipeSetup`."""
    values = [float(t) for t in tilts]
    if not values:
        raise ValueError("tilts must be a non-empty list of numbers")
    recipe = RecipeSetup(**setup)
    runs = []
    for tilt in values:
        scales = tilted_scales(tilt, recipe.L)
        trained = run_recipe(seed=seed, perturbation=perturbation, init_scales=scales.tolist(), **recipe.kwargs())
        law = init_scale_law(recipe.xi * scales, recipe.n, recipe.alpha)
        runs.append(ImbalanceRun(tilt=tilt, scales=scales, law=law, trained=trained))
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


SPREAD_MODES = ("independent", "coherent", "rotated")
"""How :func:`spread_sweep` spreads the non-signal singular values: aligned layers with a fresh order of the spread
per layer (``"independent"``) or the same order at every layer (``"coherent"``), or layers rotated at random
against each other (``"rotated"``)."""


def spread_factors(rho: float, L: int, m: int, *, coherent: bool, seed: int = 0) -> np.ndarray:
    """Relative non-signal singular values ``f_{l,i} = 1 + rho u_{l,i}`` (shape ``(L - 1, m)``): ``u_l`` is a
    random order of ``m`` evenly spaced points of ``[-1, 1]`` (mean 0, so the spread is around 1), drawn once for
    every layer when ``coherent``, afresh per layer otherwise."""
    L, m = _check_int("L", L, 2), _check_int("m", m, 1)
    if not np.isfinite(rho) or not 0 <= rho < 1:
        raise ValueError(f"rho must be a number in [0, 1) (every singular value > 0), got {rho!r}")
    rng = np.random.default_rng(_check_seed(seed))
    points = np.linspace(-1.0, 1.0, m) if m > 1 else np.zeros(1)
    first = rng.permutation(points)
    orders = [first if coherent or layer == 0 else rng.permutation(points) for layer in range(L - 1)]
    return 1.0 + float(rho) * np.stack(orders)


def within_class_basis(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """An orthonormal basis of ``R^d`` (columns): ``K`` directions spanning the class means, then the directions of
    the within-class deviations orthogonal to them, then the rest. ``x`` is ``(N, d)``."""
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    means = np.stack([x[labels == k].mean(axis=0) for k in classes])
    mean_basis = np.linalg.qr(means.T)[0]
    deviations = x - means[np.searchsorted(classes, labels)]
    deviations = deviations - (deviations @ mean_basis) @ mean_basis.T
    u, sv, _ = np.linalg.svd(deviations.T, full_matrices=False)
    within = u[:, sv > 1e-10 * max(1.0, float(sv.max(initial=0.0)))]
    known = np.concatenate([mean_basis, within], axis=1)
    rest = np.linalg.svd(np.eye(x.shape[1]) - known @ known.T)[0][:, : x.shape[1] - known.shape[1]]
    return np.concatenate([known, rest], axis=1)


def _orthogonal(m: int, generator: torch.Generator) -> np.ndarray:
    return _models.semi_orthogonal(m, m, generator).numpy()


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(_check_seed(seed))


def aligned_spread_weights(x: np.ndarray, labels: np.ndarray, factors: np.ndarray, xi: float,
                           seed: int = 0) -> list[np.ndarray]:
    """An initialisation ``W_1 .. W_L`` (width ``d``) of aligned layers: ``W_l = xi Q_l diag(1_K, f_l) Q_{l-1}^T``
    with ``Q_0`` = :func:`within_class_basis` of the data, random orthogonal ``Q_l`` (seeded), and the classifier
    ``W_L = xi R [I_K, 0] Q_{L-1}^T``, ``R`` the rotation of the target ``W*`` on the signal directions.
    ``factors`` is ``(L - 1, d - K)``; its first ``N - K`` columns act on the within-class directions. Every
    gradient of the squared loss on orthonormal data stays in the ``K`` signal directions, so training never changes
    ``f``."""
    f = np.asarray(factors, dtype=np.float64)
    K = int(np.unique(labels).size)
    d = int(np.asarray(x).shape[1])
    if f.ndim != 2 or f.shape[1] != d - K:
        raise ValueError(f"factors must be (L - 1, d - K) = (L - 1, {d - K}), got shape {f.shape}")
    rng = _generator(seed)
    bases = [within_class_basis(x, labels)] + [_orthogonal(d, rng) for _ in range(f.shape[0])]
    weights = [xi * bases[layer] @ np.diag(np.r_[np.ones(K), f[layer - 1]]) @ bases[layer - 1].T
               for layer in range(1, f.shape[0] + 1)]
    # The classifier starts along the target: the polar factor of W* on the signal directions. From another
    # rotation the signal block has to turn first, a long path on which gradient descent drifts off balance.
    u, _, vt = np.linalg.svd(_theory.min_norm_solution(x, labels) @ bases[0][:, :K])
    weights.append(xi * (u @ vt) @ np.eye(K, d) @ bases[-1].T)
    return weights


def rotated_spread_weights(factors: np.ndarray, d: int, K: int, xi: float, seed: int = 0) -> list[np.ndarray]:
    """An initialisation whose layers have the singular values ``xi (1_K, f_l)`` (in a random order) but random
    singular vectors, independent between layers: ``W_l = xi A_l diag(.) B_l^T``, classifier ``xi A [I_K, 0] B^T``."""
    f = np.asarray(factors, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != d - K:
        raise ValueError(f"factors must be (L - 1, d - K) = (L - 1, {d - K}), got shape {f.shape}")
    rng = _generator(seed)
    weights = []
    for row in f:
        values = np.r_[np.ones(K), row][torch.randperm(d, generator=rng).numpy()]
        weights.append(xi * _orthogonal(d, rng) @ np.diag(values) @ _orthogonal(d, rng).T)
    weights.append(xi * _orthogonal(K, rng) @ np.eye(K, d) @ _orthogonal(d, rng).T)
    return weights


@dataclass(frozen=True)
class SpreadRun(_LawRun):
    """One trained network of the spread sweep and the law of its initial singular values."""

    rho: float
    mode: str
    """One of :data:`SPREAD_MODES`."""
    law: _theory.SpreadLaw
    """For aligned modes, over the ``N - K`` within-class directions; for ``"rotated"``, over all ``d`` singular
    values of each layer (only its mean-square form is a prediction there)."""
    trained: RecipeResult
    initial: list[np.ndarray] = field(default_factory=list, repr=False)
    """The initial weights ``W_1(0) .. W_L(0)``."""

    @property
    def predictions(self) -> tuple[str, ...]:
        """The predictions that apply to this run's mode."""
        if self.mode == "rotated":
            return ("mean_square", "ideal")
        return ("exact", "second_order", "first_order", "mean_square", "ideal")

    def predicted_ratios(self) -> dict[str, np.ndarray]:
        """The predictions of :attr:`predictions`: ``"exact"``, ``"second_order"``, ``"first_order"``,
        ``"mean_square"`` and ``"ideal"`` (``kappa``) for the aligned modes, the last two for ``"rotated"``."""
        law = self.law
        every = {"exact": law.ratios, "second_order": law.second_order_ratios, "first_order": law.first_order_ratios,
                 "mean_square": law.mean_square_ratios, "ideal": np.full(law.ratios.shape, law.kappa)}
        return {name: every[name] for name in self.predictions}

    def _about(self) -> str:
        return f" for mode {self.mode!r}"


def spread_sweep(
    rhos: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
    modes: Sequence[str] = SPREAD_MODES,
    seed: int = 1,
    **setup: float,
) -> list[SpreadRun]:
    """Train the recipe's network on orthonormal data once per spread ``rho`` and mode, from the initialisation of
    :func:`aligned_spread_weights` (``"independent"``, ``"coherent"``) or :func:`rotated_spread_weights`
    (``"rotated"``) with the factors of :func:`spread_factors` (same seed throughout), and pair each run with
    :func:`pnc.theory.spread_law` of its initial factors. ``setup`` are the knobs of
    :class:`pnc.book.recipes.RecipeSetup`."""
    values = [float(r) for r in rhos]
    unknown = [m for m in modes if m not in SPREAD_MODES]
    if not values or not modes or unknown:
        raise ValueError(f"rhos and modes must be non-empty, modes from {list(SPREAD_MODES)}; got {list(modes)}")
    recipe = RecipeSetup(**setup)
    xi, n, K, dim, L, alpha = recipe.xi, recipe.n, recipe.K, recipe.dim, recipe.L, recipe.alpha
    X, y = recipe.dataset(0.0, seed)
    x, labels = X.double().numpy(), y.numpy()
    N = n * K
    runs = []
    for mode in modes:
        for rho in values:
            factors = spread_factors(rho, L, dim - K, coherent=mode == "coherent", seed=seed)
            if mode == "rotated":
                start = rotated_spread_weights(factors, dim, K, xi, seed)
                law = _theory.spread_law(np.concatenate([np.ones((L - 1, K)), factors], axis=1), xi, n, alpha)
            else:
                start = aligned_spread_weights(x, labels, factors, xi, seed)
                law = _theory.spread_law(factors[:, : N - K], xi, n, alpha)
            trained = train_dln(X, y, xi=xi, L=L, alpha=alpha, seed=seed, init_weights=start,
                                data_config={"data": "orthogonal", "perturbation": 0.0, "spread": rho, "mode": mode})
            runs.append(SpreadRun(rho=rho, mode=mode, law=law, trained=trained, initial=start))
    return runs


def trace_factors(run: SpreadRun) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per layer ``l = 1 .. L-1``, how much the trained network multiplies the within-class and the between-class
    trace, ``Tr Sigma_W^l / Tr Sigma_W^{l-1}`` and ``Tr Sigma_B^l / Tr Sigma_B^{l-1}`` (their quotient is the ratio
    ``C_l / C_{l-1}``), and how much the *initial* layer ``W_l(0)`` would multiply the within-class trace of the
    trained features ``z^{l-1}`` (so that the part of the within-class factor that training moved shows), on the
    run's own data."""
    if len(run.initial) != run.trained.L:
        raise ValueError("the run has no initial weights (SpreadRun.initial); spread_sweep records them")
    c = run.trained.config
    X, y = _data.orthogonal_dataset(n_per_class=c["n"], n_classes=c["K"], dim=c["d"], perturbation=0.0,
                                    seed=c["seed"])
    labels = y.numpy()
    feats = _theory.layer_features(run.trained.weights, X.double().numpy())
    stats = [_metrics.ClassStats(track_covariance=False).update(z, labels) for z in feats]
    within = np.array([st.trace_sigma_w() for st in stats])
    between = np.array([st.trace_sigma_b() for st in stats])
    at_init = np.array([_metrics.ClassStats(track_covariance=False).update(z @ w.T, labels).trace_sigma_w()
                        for z, w in zip(feats[:-1], run.initial, strict=False)])
    return within[1:] / within[:-1], between[1:] / between[:-1], at_init / within[:-1]


def spread_agreement_limit(runs: Sequence[SpreadRun], mode: str, tolerance: float = 0.05,
                           prediction: str = "first_order") -> float | None:
    """The largest spread up to which every run of ``mode`` (from the smallest on) is within ``tolerance`` of the
    prediction at every layer; ``None`` if the first run already is not."""
    chosen = [r for r in runs if r.mode == mode]
    if not chosen:
        raise ValueError(f"no runs of mode {mode!r} (modes here: {sorted({r.mode for r in runs})})")
    return _limit(chosen, lambda r: r.rho, tolerance, prediction)


def spread_series(m: int = 3, layer: int = 3) -> dict[str, object]:
    """The spread law's ratio ``M_l / M_{l-1}`` (over ``kappa``) for ``m`` directions with weights ``w_i`` (the last
    eliminated by ``sum w_i = 1``) and ``f_{j,i} = 1 + rho u_{j,i}``, ``j <= layer``, and its Taylor coefficients in
    ``rho`` up to second order, obtained by differentiating at ``rho = 0`` (sympy).

    Returns ``rho``, ``w`` (the ``m`` weights), ``u`` (``layer`` lists of ``m`` symbols), ``ratio`` and ``terms``
    (``[zeroth, first, second]``, each simplified)."""
    import sympy as sp

    m, layer = _check_int("m", m, 1), _check_int("layer", layer, 1)
    rho = sp.Symbol("rho")
    w = list(sp.symbols(f"w_1:{m}", positive=True))
    w.append(1 - sum(w))
    u = [list(sp.symbols(f"u_{j}_1:{m + 1}", real=True)) for j in range(1, layer + 1)]

    def energy(depth):
        return sum(w[i] * sp.Mul(*[(1 + rho * u[j][i]) ** 2 for j in range(depth)]) for i in range(m))

    ratio = energy(layer) / energy(layer - 1)
    terms = [sp.simplify(sp.diff(ratio, rho, k).subs(rho, 0) / sp.factorial(k)) for k in range(3)]
    return {"rho": rho, "w": w, "u": u, "ratio": ratio, "terms": terms}
