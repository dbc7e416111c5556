"""Checking the assumptions of the compression law, and breaking them one at a time (chapter 5).

Two experiments, both built on :func:`pnc.book.recipes.train_dln`:

- :func:`assumption_check` re-runs the authors' assumption check (chapter 6 of the book) at a reduced size: for
  several depths, widths and seeds it trains a deep linear network and records the three diagnostics of assumption
  A2 -- the minimum-norm residual, the imbalance of consecutive layers and the variance of the middle singular
  values -- next to the imbalance that gradient flow predicts (:func:`predicted_imbalance`).
- :func:`failure_sweep` starts from the chapter-4 recipe and makes one thing worse at a time (:data:`FAILURE_MODES`:
  a larger initialisation, weight decay, fewer data dimensions than samples, less orthogonal data). Every run also
  gets the exact balanced minimum-norm construction on the *same* data (:func:`pnc.theory.balanced_min_norm_network`),
  which separates a failure of the data assumption A1 (the construction bends with the trained network) from a
  failure of the weight assumption A2 (the trained network leaves the construction).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pnc import data as _data
from pnc import metrics as _metrics
from pnc import theory as _theory
from pnc import train as _train
from pnc._checks import check_int as _check_int
from pnc._checks import check_positive as _check_pos
from pnc._checks import check_seed as _check_seed

from .recipes import RecipeResult, train_dln

__all__ = [
    "BASE_RECIPE",
    "FAILURE_MODES",
    "FailureRun",
    "assumption_check",
    "failure_run",
    "failure_sweep",
    "failure_table",
    "predicted_imbalance",
    "projected_dataset",
    "weight_decay_eps",
]

BASE_RECIPE: dict[str, Any] = {"xi": 0.3, "n": 10, "K": 3, "L": 6, "alpha": 100.0, "dim": 50, "lr": 0.1}
"""The chapter-4 recipe that :func:`failure_run` perturbs (chapter 4 of the book)."""

FAILURE_MODES: dict[str, tuple[str, tuple[float, ...]]] = {
    "init scale": ("xi", (0.3, 0.4, 0.5, 0.6)),
    "weight decay": ("weight_decay", (0.0, 5e-3, 1.5e-2, 5e-2)),
    "data dimension": ("d", (50, 40, 30, 20)),
    "non-orthogonal data": ("perturbation", (1.0, 3.0, 6.0, 10.0)),
}
"""mode -> (knob, levels); level 0 is the recipe itself, later levels break one assumption more and more."""


# ------------------------------------------------------------------------------------------------
# Closed-form predictions
# ------------------------------------------------------------------------------------------------
def predicted_imbalance(xi: float, n: int, K: int, d: int, width: int, L: int, alpha: float = 1.0) -> list[float]:
    """Imbalance per pair ``(W_l, W_{l+1})``, ``l = 1..L-1``, left by gradient flow from the orthogonal init.

    Gradient flow conserves ``W_l W_l^T - W_{l+1}^T W_{l+1}``, so each pair keeps its initial value:
    ``xi^2 sqrt(width - d)`` for ``(W_1, W_2)``, ``0`` for square hidden pairs and ``xi^2 sqrt(width - K)`` for the
    classifier pair (``xi^2 sqrt(d + K)`` approximately when ``L = 2``). The normalisers are the trained norms
    ``||W_1||_F^2 = K s^2 + xi^2 (d - K)`` and ``||W_l||_F^2 = K s^2 + xi^2 (width - K)`` with signal gain
    ``s^2 = (n / alpha^2)^(1/L)`` (our derivation, chapter 6 of the book).
    """
    xi = _check_pos("xi", xi)
    alpha = _check_pos("alpha", alpha)
    n = _check_int("n", n, 1)
    K = _check_int("K", K, 1)
    d = _check_int("d", d, K)
    L = _check_int("L", L, 2)
    width = _check_int("width", width, d)
    s2 = (n / alpha**2) ** (1.0 / L)
    norm_first = math.sqrt(K * s2 + xi**2 * (d - K))
    norm_hidden = math.sqrt(K * s2 + xi**2 * (width - K))
    if L == 2:
        return [xi**2 * math.sqrt(d + K) / norm_first]
    out = [xi**2 * math.sqrt(width - d) / norm_first]
    out += [0.0] * (L - 3)
    out.append(xi**2 * math.sqrt(width - K) / norm_hidden)
    return out


def weight_decay_eps(xi: float, weight_decay: float, lr: float = 0.1, epochs: int = 500,
                     final_lr_factor: float = 0.01) -> float:
    """The non-signal singular value left by full-batch GD with weight decay: ``xi * prod_t (1 - lr_t wd)``.

    Along directions that the (rank ``<= K``) gradients never touch, one step multiplies the weights by
    ``1 - lr_t * weight_decay``; ``lr_t`` follows the cosine schedule of :func:`pnc.train.cosine_lr`.
    """
    xi = _check_pos("xi", xi)
    if isinstance(weight_decay, bool) or not math.isfinite(float(weight_decay)) or float(weight_decay) < 0:
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    config = _train.TrainConfig(lr=lr, epochs=epochs, final_lr_factor=final_lr_factor, weight_decay=weight_decay)
    factors = [1.0 - _train.cosine_lr(t, config) * config.weight_decay for t in range(config.epochs)]
    if min(factors) <= 0:
        raise ValueError("lr * weight_decay >= 1: weight decay alone would flip or zero the weights")
    return float(xi * np.prod(factors))


# ------------------------------------------------------------------------------------------------
# Data for the failure modes
# ------------------------------------------------------------------------------------------------
def projected_dataset(
    n_per_class: int, n_classes: int, d: int, full_dim: int = 50, perturbation: float = 1.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearly orthonormal data in ``full_dim`` dimensions, keeping only the first ``d`` coordinates.

    The samples of :func:`pnc.data.orthogonal_dataset` are Haar-random, so keeping ``d`` coordinates is a random
    projection; it is rescaled by ``sqrt(full_dim / d)`` to keep the norms near 1. With ``d >= N`` the samples stay
    linearly independent (interpolation is possible); with ``d < N`` they cannot be (assumption A1 fails for good).
    """
    full_dim = _check_int("full_dim", full_dim, 1)
    d = _check_int("d", d, 1)
    if d > full_dim:
        raise ValueError(f"d must be <= full_dim={full_dim}, got {d}")
    X, y = _data.orthogonal_dataset(n_per_class, n_classes, full_dim, perturbation=perturbation, seed=seed)
    return X[:, :d] * math.sqrt(full_dim / d), y


# ------------------------------------------------------------------------------------------------
# The authors' assumption check, reduced
# ------------------------------------------------------------------------------------------------
def assumption_check(
    depths: Sequence[int] = (2, 3, 4),
    widths: Sequence[int] = (100, 200, 400),
    seeds: Sequence[int] = (1, 2, 3),
    *,
    depth_width: int = 100,
    width_depth: int = 3,
    xi: float = 0.1,
    alpha: float = 1.0,
    n: int = 10,
    K: int = 3,
    dim: int = 50,
    lr: float = 0.5,
    loss_tol: float = 1e-8,
    epochs: int = 5000,
):
    """Train one network per (panel, setting, seed) and return a pandas DataFrame of the A2 diagnostics.

    Depth panel: width ``depth_width``, ``L`` in ``depths``; width panel: ``L = width_depth``, widths ``widths``
    (a run in both panels is trained once). The authors' check is ``L = 2..5``, widths 200..700, 10 seeds,
    ``lr = 0.1``, loss ``< 1e-10`` (the authors' code); the defaults here are smaller and faster. Columns:
    ``panel, L, width, seed, residual, rel_residual, imbalance`` (mean over pairs), ``predicted_imbalance``,
    ``spread`` (largest variance of the middle singular values over the layers), ``middle_sv`` (their mean),
    ``epochs, converged, final_loss``.
    """
    import pandas as pd

    depths = [_check_int("depth", L, 2) for L in depths]
    widths = [_check_int("width", w, dim) for w in widths]
    seeds = [_check_seed(s) for s in seeds]
    if not depths or not widths or not seeds:
        raise ValueError("depths, widths and seeds must be non-empty")
    cache: dict[tuple[int, int, int], RecipeResult] = {}

    def run(L: int, width: int, seed: int) -> RecipeResult:
        key = (L, width, seed)
        if key not in cache:
            X, y = _data.orthogonal_dataset(n, K, dim, seed=seed)
            cache[key] = train_dln(X, y, xi=xi, L=L, alpha=alpha, width=width, seed=seed, lr=lr, epochs=epochs,
                                   loss_tol=loss_tol, final_lr_factor=1e-3)
        return cache[key]

    rows = []
    settings = [("depth", L, depth_width) for L in depths] + [("width", width_depth, w) for w in widths]
    for panel, L, width in settings:
        for seed in seeds:
            r = run(L, width, seed)
            X, y = _data.orthogonal_dataset(n, K, dim, seed=seed)
            w_star = np.linalg.norm(_theory.min_norm_solution(X, y, alpha))
            rows.append({
                "panel": panel, "L": L, "width": width, "seed": seed,
                "residual": r.residual, "rel_residual": r.residual / w_star,
                "imbalance": float(np.mean(r.imbalance)),
                "predicted_imbalance": float(np.mean(predicted_imbalance(xi, n, K, dim, width, L, alpha))),
                "spread": float(max(r.spread)), "middle_sv": float(np.mean(r.middle_sv)),
                "epochs": r.epochs_run, "converged": r.converged, "final_loss": r.final_loss,
            })
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# Breaking one assumption at a time
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FailureRun:
    """One trained network of a failure sweep, with the exact construction on the same data."""

    mode: str
    level: float
    result: RecipeResult
    construction: np.ndarray
    """``C_l`` of the balanced minimum-norm network (``eps = xi``) built on the same data: assumption A2 exactly,
    whatever the data."""
    w_star_norm: float
    """``||Y X^+ / alpha||_F`` (to normalise the residual)."""

    @property
    def knob(self) -> str:
        return FAILURE_MODES[self.mode][0]

    @property
    def kappa(self) -> float:
        return self.result.kappa

    @property
    def ratios_over_kappa(self) -> np.ndarray:
        """Measured ``(C_{l+1} / C_l) / kappa``, ``l = 0..L-2``."""
        return self.result.ratios / self.kappa

    @property
    def construction_ratios_over_kappa(self) -> np.ndarray:
        """The same for the construction on the same data."""
        return self.construction[1:] / self.construction[:-1] / self.kappa

    @property
    def rel_residual(self) -> float:
        return self.result.residual / self.w_star_norm

    def label(self) -> str:
        """E.g. ``"weight decay = 0.01"``."""
        return f"{self.knob} = {self.level:g}"


def failure_run(mode: str, level: float, seed: int = 1, epochs: int = 300) -> FailureRun:
    """Train the chapter-4 recipe (:data:`BASE_RECIPE`) with one knob of :data:`FAILURE_MODES` set to ``level``.

    ``"init scale"`` sets ``xi``; ``"weight decay"`` adds weight decay and trains for exactly ``epochs`` epochs (no
    early stop, so that the decay has time to act); ``"data dimension"`` keeps ``d`` coordinates of the data
    (:func:`projected_dataset`, width stays 50); ``"non-orthogonal data"`` sets the data perturbation. Other modes
    stop at loss ``1e-11`` or after ``epochs`` epochs.
    """
    if mode not in FAILURE_MODES:
        raise ValueError(f"mode must be one of {sorted(FAILURE_MODES)}, got {mode!r}")
    level = float(level)
    if not math.isfinite(level) or level < 0:
        raise ValueError(f"level must be a finite number >= 0, got {level}")
    b = BASE_RECIPE
    xi, wd, d, pert = b["xi"], 0.0, b["dim"], 1.0
    loss_tol: float | None = 1e-11
    if mode == "init scale":
        xi = _check_pos("level (xi)", level)
    elif mode == "weight decay":
        wd, loss_tol = level, None
    elif mode == "data dimension":
        if level != round(level) or not 1 <= level <= b["dim"]:
            raise ValueError(f"data dimension must be an integer in [1, {b['dim']}], got {level}")
        d = int(level)
    else:
        pert = level
    X, y = projected_dataset(b["n"], b["K"], d, full_dim=b["dim"], perturbation=pert, seed=seed)
    result = train_dln(X, y, xi=xi, L=b["L"], alpha=b["alpha"], width=b["dim"], seed=seed, lr=b["lr"],
                       epochs=epochs, loss_tol=loss_tol, weight_decay=wd,
                       data_config={"mode": mode, "level": level, "perturbation": pert})
    weights = _theory.balanced_min_norm_network(X, y, L=b["L"], eps=xi, alpha=b["alpha"])
    labels = y.numpy()
    construction = np.array([_metrics.compression(z, labels) for z in _theory.layer_features(weights, X)])
    w_star = float(np.linalg.norm(_theory.min_norm_solution(X, y, b["alpha"])))
    return FailureRun(mode=mode, level=level, result=result, construction=construction, w_star_norm=w_star)


def failure_sweep(
    modes: Mapping[str, tuple[str, Iterable[float]]] | None = None, seed: int = 1, epochs: int = 300
) -> dict[tuple[str, int], FailureRun]:
    """:func:`failure_run` for every mode and level; keys are ``(mode, level index)``."""
    modes = FAILURE_MODES if modes is None else modes
    out: dict[tuple[str, int], FailureRun] = {}
    for mode, (_, levels) in modes.items():
        for i, level in enumerate(levels):
            out[(mode, i)] = failure_run(mode, level, seed=seed, epochs=epochs)
    if not out:
        raise ValueError("failure_sweep needs at least one mode with one level")
    return out


def failure_table(runs: Mapping[tuple[str, int], FailureRun] | Iterable[FailureRun]):
    """A pandas DataFrame with one row per run: the knob, the diagnostics and how far the ratios are from kappa."""
    import pandas as pd

    items = list(runs.values()) if isinstance(runs, Mapping) else list(runs)
    if not items:
        raise ValueError("failure_table needs at least one run")
    rows = []
    for run in items:
        r = run.result
        hidden = r.imbalance[:-1] if len(r.imbalance) > 1 else r.imbalance
        rows.append({
            "mode": run.mode, "setting": run.label(), "final loss": r.final_loss,
            "rel. residual": run.rel_residual, "hidden imbalance": float(np.max(hidden)),
            "middle sv": float(np.mean(r.middle_sv)) if r.middle_sv else float("nan"),
            "kappa": run.kappa,
            "first ratio/kappa": float(run.ratios_over_kappa[0]),
            "last ratio/kappa": float(run.ratios_over_kappa[-1]),
            "construction last ratio/kappa": float(run.construction_ratios_over_kappa[-1]),
        })
    return pd.DataFrame(rows)
