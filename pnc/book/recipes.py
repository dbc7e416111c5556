"""Train a deep linear network with the authors' theory recipe and measure it against the closed forms.

One call trains a bias-free deep linear network from the scaled orthogonal initialisation by full-batch gradient
descent (chapter 4 of the book) and returns a :class:`RecipeResult`: the measured compression ``C_l`` and
discrimination ``D_l`` of every layer, the predicted per-layer ratio ``kappa`` and the first-order ``D_l`` law, and
the assumption diagnostics of the trained weights (minimum-norm residual, imbalance, singular-value spread).

:func:`run_recipe` builds the nearly orthonormal data of the recipe itself; :func:`train_dln` takes any data (used
by :mod:`pnc.book.assumptions` to break the assumptions one at a time). Everything is float64 and seeded: the same
arguments give the same numbers on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from pnc import data as _data
from pnc import models as _models
from pnc import theory as _theory
from pnc import train as _train
from pnc._checks import check_int as _check_int
from pnc._checks import check_positive as _check_pos
from pnc._checks import check_seed as _check_seed
from pnc.report import LayerReport, report_from_features

__all__ = ["PracticePair", "RecipeResult", "RecipeSetup", "recipe_grid", "recipe_table", "run_recipe",
           "theory_and_practice", "train_dln"]


@dataclass(frozen=True)
class RecipeSetup:
    """The recipe's data and network, as the studies built on it vary them: ``n`` samples per class of ``K`` classes
    in ``dim`` dimensions, a deep linear network of depth ``L`` initialised at scale ``xi``, output scale ``alpha``.
    The defaults are :func:`run_recipe`'s (``kappa = 0.2846``)."""

    xi: float = 0.3
    n: int = 10
    K: int = 3
    dim: int = 50
    L: int = 6
    alpha: float = 100.0

    def kwargs(self) -> dict[str, Any]:
        """The knobs as keyword arguments of :func:`run_recipe`."""
        return asdict(self)

    def dataset(self, perturbation: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The recipe's nearly orthonormal data (:func:`pnc.data.orthogonal_dataset`) of this setup."""
        return _data.orthogonal_dataset(n_per_class=self.n, n_classes=self.K, dim=self.dim, perturbation=perturbation,
                                        seed=seed)


@dataclass(frozen=True)
class RecipeResult:
    """A trained deep linear network, measured layer by layer and compared with the idealised theory.

    ``layers`` is the :class:`pnc.LayerReport` of the features ``z^0 .. z^{L-1}`` (``l = 0`` is the input), the table
    :func:`pnc.measure` gives; ``compression``/``discrimination`` are its columns and ``ratios[i] = C_{i+1} / C_i``.
    """

    config: dict[str, Any]
    """Every knob of the run (``xi, n, K, L, alpha, seed, width, lr, epochs, loss_tol, weight_decay``, data)."""
    layers: LayerReport
    kappa: float
    """Predicted per-layer ratio ``xi^2 (alpha^2 / n)^(1/L)`` (:func:`pnc.theory.compression_ratio`)."""
    max_E: float
    """Largest off-diagonal entry of ``E = I - Y (X^T X)^{-1} Y^T / n`` (NaN when ``X^T X`` is singular)."""
    epochs_run: int
    final_loss: float
    converged: bool
    residual: float
    """Minimum-norm residual ``||W_{L:1} - Y X^+ / alpha||_F``."""
    imbalance: list[float]
    """Per pair ``(W_l, W_{l+1})``, ``l = 1 .. L-1`` (:func:`pnc.theory.imbalance`)."""
    spread: list[float]
    """Variance of the middle singular values of ``W_1 .. W_{L-1}`` (empty when not defined)."""
    middle_sv: list[float] = field(default_factory=list)
    """Mean of the middle singular values ``sigma_i(W_l)``, ``K < i <= d - K``, per layer ``l = 1 .. L-1``."""
    weights: list[np.ndarray] = field(default_factory=list, repr=False)
    wall_time: float = 0.0

    @property
    def compression(self) -> np.ndarray:
        """Measured ``C_l``, ``l = 0 .. L-1`` (NaN everywhere when training diverged)."""
        return self.layers.column("compression")

    @property
    def discrimination(self) -> np.ndarray:
        """Measured ``D_l``, ``l = 0 .. L-1``."""
        return self.layers.column("discrimination")

    @property
    def diverged(self) -> bool:
        """Whether training blew up (non-finite weights or features; every metric is then NaN)."""
        return bool(np.any(~np.isfinite(self.compression)))

    @property
    def L(self) -> int:
        return int(self.config["L"])

    @property
    def ratios(self) -> np.ndarray:
        """Measured ``C_{l+1} / C_l`` for ``l = 0 .. L-2``."""
        return self.compression[1:] / self.compression[:-1]

    @property
    def ratio_errors(self) -> np.ndarray:
        """Relative deviations ``ratio / kappa - 1``."""
        return self.ratios / self.kappa - 1.0

    @property
    def worst_ratio_error(self) -> float:
        """``max |ratio / kappa - 1|`` over the layers."""
        return float(np.max(np.abs(self.ratio_errors)))

    @property
    def theory_compression(self) -> np.ndarray:
        """The idealised ``C_l = K (n - 1) / (K - 1) kappa^l`` for ``l = 0 .. L-1``."""
        c = self.config
        return _theory.layerwise_compression(np.arange(self.L), eps=c["xi"], n=c["n"], K=c["K"], L=c["L"],
                                             alpha=c["alpha"])

    @property
    def theory_discrimination(self) -> np.ndarray:
        """The first-order ``D_l = 1 - (1 - l/L) max_E`` for ``l = 0 .. L-1``."""
        return _theory.discrimination_first_order(np.arange(self.L), self.L, self.max_E)

    @property
    def fitted_ratio(self) -> float:
        """Per-layer ratio of a least-squares line through ``log10 C_l`` (the authors' fit)."""
        slope = np.polyfit(np.arange(self.L), np.log10(self.compression), 1)[0]
        return float(10.0**slope)

    def summary(self) -> dict[str, Any]:
        """One flat row: the knobs, ``kappa``, the measured ratios and the worst deviation."""
        row: dict[str, Any] = {k: self.config[k] for k in ("xi", "n", "L", "alpha", "seed")}
        row["kappa"] = self.kappa
        row.update({f"C{i + 1}/C{i}": float(r) for i, r in enumerate(self.ratios)})
        row["worst |ratio/kappa-1|"] = self.worst_ratio_error
        row["epochs"] = self.epochs_run
        return row


def _max_E(x: np.ndarray, labels: np.ndarray) -> float:
    if x.shape[1] < x.shape[0] or np.linalg.matrix_rank(x) < x.shape[0]:
        return float("nan")  # X^T X singular: no interpolating Gram inverse
    try:
        E = _theory.class_gram_deviation(x, labels)
    except (ValueError, np.linalg.LinAlgError):
        return float("nan")
    off = E[~np.eye(E.shape[0], dtype=bool)]
    return float(off.max())


def train_dln(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    xi: float = 0.3,
    L: int = 6,
    alpha: float = 100.0,
    width: int | None = None,
    seed: int = 1,
    lr: float = 0.1,
    epochs: int = 5000,
    loss_tol: float | None = 1e-11,
    weight_decay: float = 0.0,
    final_lr_factor: float = 0.01,
    init_scales: Sequence[float] | None = None,
    init_weights: Sequence[np.ndarray] | None = None,
    data_config: Mapping[str, Any] | None = None,
) -> RecipeResult:
    """Train a float64 :class:`pnc.models.DeepLinearNetwork` of depth ``L`` on ``(X, y)`` and measure it.

    ``X`` is ``(N, d)``, ``y`` holds ``K`` balanced classes of ``n`` samples. The network has width ``width``
    (default ``d``) and the orthogonal initialisation of scale ``xi``; it is trained by full-batch GD on
    ``(1/N) ||alpha f(X) - Y||_F^2`` with a cosine schedule from ``lr`` to ``lr * final_lr_factor`` over ``epochs``,
    stopping once the loss is below ``loss_tol``. ``init_scales`` (one factor per layer) multiplies layer ``j``'s
    initialisation, so it starts at scale ``xi * init_scales[j]`` (imbalanced pairs). ``init_weights`` (the ``L``
    matrices ``W_1 .. W_L``, shaped as the network's) replaces the initialisation altogether; ``xi`` then only sets
    the ``kappa`` the result compares with. ``data_config`` is recorded in ``result.config``.
    """
    if not isinstance(X, torch.Tensor) or X.ndim != 2:
        raise ValueError(f"X must be a 2-d torch tensor (N, d), got {getattr(X, 'shape', type(X))}")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be a 1-d torch tensor with {X.shape[0]} labels")
    xi = _check_pos("xi", xi)
    alpha = _check_pos("alpha", alpha)
    L = _check_int("L", L, 2)
    seed = _check_seed(seed)
    labels = y.detach().cpu().numpy().astype(np.int64)
    counts = np.bincount(labels)
    if counts.shape[0] < 2 or np.any(counts != counts[0]) or counts[0] < 2:
        raise ValueError(f"y must hold >= 2 balanced classes of >= 2 samples each, got sizes {counts.tolist()}")
    K, n = int(counts.shape[0]), int(counts[0])
    d = int(X.shape[1])
    width = d if width is None else _check_int("width", width, K)
    if init_scales is not None:
        scales = [float(f) for f in init_scales]
        if len(scales) != L or not all(np.isfinite(f) and f > 0 for f in scales):
            raise ValueError(f"init_scales must hold L = {L} finite factors > 0, got {list(init_scales)}")
    if init_weights is not None and init_scales is not None:
        raise ValueError("give init_scales or init_weights, not both (scale the given weights instead)")

    net = _models.DeepLinearNetwork(in_dim=d, width=width, n_classes=K, depth=L, init="orthogonal", xi=xi,
                                    seed=seed, dtype=torch.float64)
    if init_scales is not None:
        with torch.no_grad():
            for weight, factor in zip(net.weights(), scales, strict=True):
                weight.mul_(factor)
    if init_weights is not None:
        given = [np.asarray(w, dtype=np.float64) for w in init_weights]
        shapes = [tuple(w.shape) for w in net.weights()]
        if [g.shape for g in given] != shapes or not all(np.all(np.isfinite(g)) for g in given):
            raise ValueError(f"init_weights must be {L} finite matrices of shapes {shapes}, "
                             f"got {[g.shape for g in given]}")
        with torch.no_grad():
            for weight, start in zip(net.weights(), given, strict=True):
                weight.copy_(torch.from_numpy(start))
    config = _train.TrainConfig(optimizer="gd", lr=lr, loss="mse", alpha=alpha, epochs=epochs, schedule="cosine",
                                final_lr_factor=final_lr_factor, loss_tol=loss_tol, seed=seed,
                                weight_decay=weight_decay)
    result = _train.train(net, X.to(torch.float64), y, config)

    weights = [w.detach().cpu().numpy().copy() for w in net.weights()]
    x = X.detach().cpu().to(torch.float64).numpy()
    feats = _theory.layer_features(weights, x)
    finite = all(np.all(np.isfinite(w)) for w in weights) and all(np.all(np.isfinite(z)) for z in feats)
    if finite:
        layers = report_from_features(feats, labels, ("compression", "discrimination"))
    else:  # diverged: the table's shape, every value missing
        layers = LayerReport(columns=("layer", "name", "dim", "compression", "discrimination", "note"),
                             rows=tuple({"layer": i, "name": f"z{i}", "dim": int(z.shape[1]), "compression": None,
                                         "discrimination": None, "note": "training diverged"}
                                        for i, z in enumerate(feats)))
    spread: list[float] = []
    middle: list[float] = []
    if finite and d - K > K and width >= d - K:
        # One SVD per layer; the spread is pnc.theory.singular_value_spread (the variance of the same slice).
        middle_values = [np.linalg.svd(w, compute_uv=False)[K : d - K] for w in weights[:-1]]
        spread = [float(np.var(v)) for v in middle_values]
        middle = [float(np.mean(v)) for v in middle_values]
    cfg = {"xi": xi, "n": n, "K": K, "L": L, "alpha": alpha, "seed": seed, "d": d, "width": width, "lr": lr,
           "epochs": epochs, "loss_tol": loss_tol, "weight_decay": weight_decay,
           **({"init_scales": scales} if init_scales is not None else {}),
           **({"init": "given"} if init_weights is not None else {}), **dict(data_config or {})}
    return RecipeResult(
        config=cfg,
        layers=layers,
        kappa=_theory.compression_ratio(xi, n, L, alpha),
        max_E=_max_E(x, labels),
        epochs_run=result.epochs_run,
        final_loss=float(result.final_loss),
        converged=bool(result.converged),
        residual=_theory.min_norm_residual(weights, x, labels, alpha=alpha) if finite else float("nan"),
        imbalance=_theory.imbalance(weights) if finite else [float("nan")] * (L - 1),
        spread=spread,
        middle_sv=middle,
        weights=weights,
        wall_time=float(result.wall_time),
    )


def run_recipe(
    xi: float = 0.3,
    n: int = 10,
    L: int = 6,
    alpha: float = 100.0,
    seed: int = 1,
    *,
    K: int = 3,
    dim: int = 50,
    width: int | None = None,
    perturbation: float = 1.0,
    **train_options: Any,
) -> RecipeResult:
    """The authors' theory-verification recipe (chapter 4 of the book) for any ``(xi, n, L, alpha, seed)``.

    Data: :func:`pnc.data.orthogonal_dataset` with ``n`` samples per class, ``K`` classes in ``dim`` dimensions
    (needs ``dim >= n K``) and total perturbation ``perturbation``, seeded with ``seed``; the network has width
    ``width`` (default ``dim``) and the same seed. The defaults reproduce the recipe exactly (``kappa = 0.2846``).
    ``train_options`` go to :func:`train_dln` (``lr``, ``epochs``, ``loss_tol``, ``weight_decay``).
    """
    n = _check_int("n", n, 2)
    K = _check_int("K", K, 2)
    dim = _check_int("dim", dim, 1)
    seed = _check_seed(seed)
    if dim < n * K:
        raise ValueError(f"the recipe needs dim >= N = n K = {n * K} (orthonormal samples), got dim={dim}")
    X, y = _data.orthogonal_dataset(n_per_class=n, n_classes=K, dim=dim, perturbation=perturbation, seed=seed)
    return train_dln(X, y, xi=xi, L=L, alpha=alpha, width=width, seed=seed,
                     data_config={"data": "orthogonal", "perturbation": float(perturbation)}, **train_options)


def recipe_table(results: Iterable[RecipeResult]):
    """A pandas DataFrame with one :meth:`RecipeResult.summary` row per result (ratio columns may be NaN)."""
    import pandas as pd

    rows: Sequence[dict[str, Any]] = [r.summary() for r in results]
    if not rows:
        raise ValueError("recipe_table needs at least one result")
    frame = pd.DataFrame(rows)
    ratio_cols = [c for c in frame.columns if c.startswith("C") and "/" in c]
    ratio_cols.sort(key=lambda c: int(c[1:].split("/")[0]))
    first = ["xi", "n", "L", "alpha", "seed", "kappa"]
    return frame[first + ratio_cols + ["worst |ratio/kappa-1|", "epochs"]]


def recipe_grid(
    xis: Sequence[float], Ls: Sequence[int], n: int = 10, alpha: float = 100.0, seed: int = 1, **options: Any
) -> dict[tuple[float, int], RecipeResult]:
    """:func:`run_recipe` for every ``(xi, L)`` of a grid (keys ``(xi, L)``); ``options`` go to :func:`run_recipe`."""
    xis, Ls = list(xis), list(Ls)
    if not xis or not Ls:
        raise ValueError("recipe_grid needs at least one xi and one L")
    return {(float(xi), int(L)): run_recipe(xi, n, L, alpha, seed, **options) for xi in xis for L in Ls}


@dataclass(frozen=True)
class PracticePair:
    """The paper's "theory matches practice" pair: a deep linear network and a nonlinear MLP on the same data."""

    linear: RecipeResult
    """The DLN of the recipe (``L = 6``, ``alpha = 1``): C_l should fall by ``kappa`` per layer."""
    nonlinear: Any
    """:class:`pnc.LayerReport` of the MLP (input and its ``depth - 1`` blocks; columns ``compression``,
    ``discrimination``), measured in eval mode after training."""
    nonlinear_loss: float
    nonlinear_epochs: int

    def nonlinear_ratios(self) -> np.ndarray:
        """``C_{l+1} / C_l`` of the MLP, ``l = 0 .. depth-2``."""
        c = self.nonlinear.column("compression")
        return c[1:] / c[:-1]


def theory_and_practice(
    seed: int = 1,
    *,
    xi: float = 0.3,
    n: int = 10,
    K: int = 3,
    dim: int = 50,
    L: int = 6,
    alpha: float = 1.0,
    nonlinear_depth: int = 10,
    nonlinear_lr: float = 0.05,
) -> PracticePair:
    """Train the recipe's DLN and an MLP of ``nonlinear_depth`` layers (Linear→BatchNorm→ReLU blocks of width
    ``dim``, the same scaled orthogonal initialisation) on the same nearly orthonormal data, both by full-batch GD
    on the MSE with output scale ``alpha`` until the loss is below 1e-8 (float64, seeded)."""
    import pnc

    linear = run_recipe(xi=xi, n=n, L=L, alpha=alpha, seed=seed, K=K, dim=dim)
    X, y = _data.orthogonal_dataset(n_per_class=n, n_classes=K, dim=dim, perturbation=1.0, seed=seed)
    net = _models.MLP(dim, dim, K, depth=_check_int("nonlinear_depth", nonlinear_depth, 2), init="orthogonal",
                      xi=xi, seed=seed, dtype=torch.float64)
    config = _train.TrainConfig(optimizer="gd", lr=_check_pos("nonlinear_lr", nonlinear_lr), loss="mse",
                                alpha=alpha, epochs=5000, schedule="cosine", loss_tol=1e-8, seed=seed)
    result = _train.train(net, X.to(torch.float64), y, config)
    report = pnc.measure(net, (X.to(torch.float64), y), metrics=("compression", "discrimination"))
    return PracticePair(linear=linear, nonlinear=report, nonlinear_loss=float(result.final_loss),
                        nonlinear_epochs=int(result.epochs_run))
