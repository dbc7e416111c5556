r"""Training dynamics of deep linear networks: conservation laws, gradient ranks, low-rank weight updates.

Computations behind the chapter *Deep linear networks and the implicit bias of gradient descent*. For a bias-free
network $f(x)=W_L\cdots W_1x$ trained on a loss of the end-to-end product, gradient flow conserves

$$W_{l+1}^\top W_{l+1}-W_lW_l^\top,\qquad l=1,\dots,L-1$$

(Arora et al. 2018; Du et al. 2018), every gradient $\nabla_{W_l}$ has rank at most $K$ (the number of outputs),
and from a scaled orthogonal initialisation only a few singular values of each $W_l$ move (Yaras et al. 2023).

:func:`train_tracked` trains a :class:`pnc.models.DeepLinearNetwork` with :func:`pnc.train.train` in chunks and
records weight snapshots (imbalance, singular values, distance to the minimum-norm product) between chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from pnc._checks import check_int
from pnc.theory import min_norm_solution
from pnc.train import TrainConfig, cosine_lr, train

__all__ = [
    "DLNTrajectory",
    "imbalance_norms",
    "gradients",
    "gradient_ranks",
    "layer_singular_values",
    "moved_singular_values",
    "train_tracked",
    "trajectory_grid",
]


def _weights_np(weights: Sequence[Any]) -> list[np.ndarray]:
    if hasattr(weights, "weights") and callable(weights.weights):
        weights = weights.weights()
    out = []
    for w in weights:
        a = w.detach().cpu().numpy() if isinstance(w, torch.Tensor) else np.asarray(w)
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"every weight must be a 2-d matrix, got shape {a.shape}")
        out.append(a)
    if not out:
        raise ValueError("weights is empty")
    for i in range(len(out) - 1):
        if out[i + 1].shape[1] != out[i].shape[0]:
            raise ValueError(f"weights do not chain: W_{i + 1} is {out[i].shape}, W_{i + 2} is {out[i + 1].shape}")
    return out


def imbalance_norms(weights: Sequence[Any]) -> np.ndarray:
    r"""Unnormalised imbalance $\lVert W_{l+1}^\top W_{l+1}-W_lW_l^\top\rVert_F$ for $l=1,\dots,L-1$.

    ``weights`` is ``[W_1, ..., W_L]`` (numpy or torch) or a model with ``.weights()``. The classifier pair is
    the last entry. This is the quantity gradient flow conserves; :func:`pnc.theory.imbalance` is the authors'
    normalised version (divided by $\lVert W_l\rVert_F$).
    """
    ws = _weights_np(weights)
    return np.array([np.linalg.norm(ws[i + 1].T @ ws[i + 1] - ws[i] @ ws[i].T) for i in range(len(ws) - 1)])


def layer_singular_values(weights: Sequence[Any]) -> list[np.ndarray]:
    """Singular values (descending) of every weight matrix ``W_1 .. W_L``."""
    return [np.linalg.svd(w, compute_uv=False) for w in _weights_np(weights)]


def moved_singular_values(weights: Sequence[Any], xi: float, rtol: float = 1e-2) -> list[int]:
    r"""Per layer: how many singular values differ from the init scale $\xi$ by more than ``rtol``$\cdot\xi$.

    For an orthogonally initialised square layer all singular values start at $\xi$; the count says how many
    of them training moved.
    """
    xi = float(xi)
    if not np.isfinite(xi) or xi <= 0:
        raise ValueError(f"xi must be a finite number > 0, got {xi}")
    if not rtol > 0:
        raise ValueError(f"rtol must be > 0, got {rtol}")
    return [int(np.sum(np.abs(s - xi) > rtol * xi)) for s in layer_singular_values(weights)]


def gradients(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, config: TrainConfig) -> list[np.ndarray]:
    """Gradients of the training loss of ``config`` (MSE or cross-entropy on ``alpha * output``) w.r.t. each weight.

    The model's parameters and their ``.grad`` are left untouched.
    """
    if config.loss != "mse" and config.loss != "cross_entropy":  # pragma: no cover - TrainConfig validates
        raise ValueError(f"unknown loss {config.loss!r}")
    params = [w for w in model.weights()] if hasattr(model, "weights") else list(model.parameters())
    if not params:
        raise ValueError("model has no weights")
    X = X.to(dtype=params[0].dtype)
    out = config.alpha * model(X)
    if config.loss == "mse":
        target = torch.nn.functional.one_hot(y.long(), out.shape[1]).to(out.dtype)
        loss = ((out - target) ** 2).sum(dim=1).mean()
    else:
        loss = torch.nn.functional.cross_entropy(out, y.long())
    grads = torch.autograd.grad(loss, params)
    return [g.detach().cpu().numpy().astype(np.float64) for g in grads]


def gradient_ranks(
    model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, config: TrainConfig, rtol: float = 1e-10
) -> list[int]:
    """Numerical rank of each layer's gradient: singular values above ``rtol`` times the largest."""
    if not rtol > 0:
        raise ValueError(f"rtol must be > 0, got {rtol}")
    ranks = []
    for g in gradients(model, X, y, config):
        s = np.linalg.svd(g, compute_uv=False)
        ranks.append(int(np.sum(s > rtol * s[0])) if s[0] > 0 else 0)
    return ranks


@dataclass
class DLNTrajectory:
    """Snapshots of a deep linear network during training (arrays indexed by snapshot)."""

    epochs: np.ndarray
    """Epoch of each snapshot (0 = initialisation)."""
    losses: np.ndarray
    """Training loss at each snapshot (NaN at the initialisation)."""
    imbalance: np.ndarray
    """(snapshots, L-1): :func:`imbalance_norms` per pair."""
    singular_values: list[list[np.ndarray]]
    """Per snapshot, per layer: singular values (descending)."""
    min_norm_residual: np.ndarray
    r"""$\lVert W_{L:1}-YX^+/\alpha\rVert_F$ at each snapshot."""
    converged: bool
    epochs_run: int
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def drift(self) -> np.ndarray:
        """Largest change of each pair's imbalance norm from its initial value, over all snapshots."""
        return np.max(np.abs(self.imbalance - self.imbalance[0]), axis=0)


def train_tracked(
    model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, config: TrainConfig, every: int = 10
) -> DLNTrajectory:
    """Train ``model`` in place with :func:`pnc.train.train` in chunks of ``every`` epochs, snapshotting between.

    Only momentum-free full-batch gradient descent is supported (then chunking is exact for a constant learning
    rate; a cosine schedule is followed piecewise constantly, one value per chunk). Stops early once the loss is
    below ``config.loss_tol``. ``model`` needs ``.weights()`` (e.g. :class:`pnc.models.DeepLinearNetwork`).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    if config.optimizer != "gd" or config.momentum != 0:
        raise ValueError("train_tracked needs optimizer='gd' with momentum=0 (chunks must not carry state)")
    every = check_int("every", every, 1)
    if not hasattr(model, "weights"):
        raise ValueError("model must provide .weights() (a DeepLinearNetwork)")
    w_star = min_norm_solution(X, y, config.alpha)

    def snapshot(epoch: int, loss: float) -> None:
        ws = _weights_np(model.weights())
        if not all(np.isfinite(w).all() for w in ws):
            raise ValueError(f"training diverged before epoch {epoch} (non-finite weights); lower config.lr")
        prod = ws[0]
        for w in ws[1:]:
            prod = w @ prod
        epochs.append(epoch)
        losses.append(loss)
        imb.append(imbalance_norms(ws))
        svs.append([np.linalg.svd(w, compute_uv=False) for w in ws])
        resid.append(float(np.linalg.norm(prod - w_star)))

    epochs: list[int] = []
    losses: list[float] = []
    imb: list[np.ndarray] = []
    svs: list[list[np.ndarray]] = []
    resid: list[float] = []
    snapshot(0, float("nan"))
    done = 0
    converged = False
    while done < config.epochs and not converged:
        chunk = min(every, config.epochs - done)
        lr = cosine_lr(done, config)
        sub = config.replace(epochs=chunk, schedule="constant", lr=lr, check_every=1)
        result = train(model, X, y, sub)
        done += result.epochs_run
        converged = result.converged
        snapshot(done, result.final_loss)
        if not np.isfinite(result.final_loss):
            break
    return DLNTrajectory(
        epochs=np.array(epochs),
        losses=np.array(losses),
        imbalance=np.array(imb),
        singular_values=svs,
        min_norm_residual=np.array(resid),
        converged=converged,
        epochs_run=done,
        config={**config.__dict__, "every": every},
    )


def trajectory_grid(
    X: torch.Tensor,
    y: torch.Tensor,
    xis: Sequence[float],
    depths: Sequence[int],
    config: TrainConfig,
    width: int | None = None,
    seed: int = 0,
    every: int = 10,
) -> dict[tuple[float, int], DLNTrajectory]:
    """:func:`train_tracked` for an orthogonally initialised DLN at every ``(xi, L)`` of the grid.

    ``width`` defaults to the data dimension. Returns ``{(xi, L): trajectory}``.
    """
    from pnc.models import DeepLinearNetwork

    if not xis or not depths:
        raise ValueError("xis and depths must be non-empty")
    d = int(X.shape[1])
    m = d if width is None else int(width)
    k = int(y.max()) + 1
    out = {}
    for L in depths:
        for xi in xis:
            net = DeepLinearNetwork(d, m, k, int(L), init="orthogonal", xi=float(xi), seed=seed, dtype=X.dtype)
            out[(xi, L)] = train_tracked(net, X, y, config, every=every)
    return out
