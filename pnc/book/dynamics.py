r"""Exact learning dynamics of a two-layer linear network (Saxe, McClelland & Ganguli 2014), and training in rounds.

For whitened inputs the loss of a bias-free two-layer network $f(x)=W_2W_1x$ decouples along the singular modes
$(s_i, u_i, v_i)$ of the input-output map. With a balanced mode of strength $u=u_i^\top W_2W_1v_i$ gradient flow
reads $\tau\dot u=2u(s-u)$, whose solution from $u(0)=u_0$ is the sigmoid

$$u(t)=\frac{s\,e^{2st/\tau}}{e^{2st/\tau}-1+s/u_0}.$$

In pnc's setting (orthonormal samples $x_{k,i}$, one-hot targets, loss $\frac1N\lVert\alpha f(X)-Y\rVert_F^2$,
gradient descent with step ``lr``) the target map $YX^\top$ has one mode per class with $s_k=\sqrt{n_k}$ and
$v_k=\frac1{\sqrt{n_k}}\sum_i x_{k,i}$, and one step of gradient descent is $\mathrm dt=1$ with
$\tau=N/(2\,\mathrm{lr}\,\alpha)$ (measuring the strength of $\alpha W_2W_1$).

From a small *random* initialisation a mode is not balanced: with $a=W_1v$ and $b=W_2^\top u$ (vectors), the
decoupled flow $\tau\dot a=b(s-u)$, $\tau\dot b=a(s-u)$, $u=a^\top b$ conserves $p\,q$ for
$p=\lVert a+b\rVert^2/4$, $q=\lVert a-b\rVert^2/4$, $u=p-q$. Since $p$ grows and $q$ shrinks, $u(t)$ follows the
sigmoid with the *effective* initial strength $p_0=\lVert a_0+b_0\rVert^2/4$ (:func:`effective_initial_strength`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from pnc._checks import as_features, as_labels, to_numpy
from pnc._checks import check_positive as _positive
from pnc.theory import end_to_end
from pnc.train import TrainConfig, train

__all__ = [
    "ModeTrace",
    "Modes",
    "effective_initial_strength",
    "gd_time_constant",
    "input_output_modes",
    "mode_strengths",
    "saxe_learning_time",
    "saxe_mode_strength",
    "trace_modes",
    "train_in_rounds",
]


def saxe_mode_strength(t: Any, s: float, u0: float, tau: float = 1.0) -> np.ndarray:
    r"""Closed-form mode strength $u(t)=s\,e^{2st/\tau}/(e^{2st/\tau}-1+s/u_0)$ solving $\tau\dot u=2u(s-u)$.

    ``t`` (scalar or array, $\ge 0$) is time in units where ``tau`` is the time constant; ``s`` the singular value
    of the target mode and ``u0`` the initial strength ($0<u_0$). Computed in a form that does not overflow.
    """
    s, u0, tau = _positive("s", s), _positive("u0", u0), _positive("tau", tau)
    t = np.asarray(t, dtype=np.float64)
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError(f"t must be finite and >= 0, got {t[~(np.isfinite(t) & (t >= 0))].tolist()}")
    decay = np.exp(-2.0 * s * t / tau)  # divide numerator and denominator by e^{2st/tau}
    return s / (1.0 + (s / u0 - 1.0) * decay)


def saxe_learning_time(s: float, u0: float, tau: float = 1.0) -> float:
    r"""Time at which the mode reaches half its final strength, $t_{1/2}=\frac{\tau}{2s}\ln(s/u_0-1)$ ($u_0<s/2$)."""
    s, u0, tau = _positive("s", s), _positive("u0", u0), _positive("tau", tau)
    if u0 >= s / 2:
        raise ValueError(f"u0 must be below s/2 for the half-way time to be in the future, got u0={u0}, s={s}")
    return tau / (2.0 * s) * math.log(s / u0 - 1.0)


def gd_time_constant(n_samples: int, lr: float, alpha: float = 1.0) -> float:
    r"""$\tau=N/(2\,\mathrm{lr}\,\alpha)$: the time constant, in gradient-descent steps, of pnc's MSE loss."""
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    return float(n_samples) / (2.0 * _positive("lr", lr) * _positive("alpha", alpha))


@dataclass(frozen=True)
class Modes:
    """Singular modes of the target map $YX^\\top$: strengths ``s`` (descending), outputs ``U`` (K×r), inputs ``V``."""

    s: np.ndarray
    U: np.ndarray
    V: np.ndarray


def input_output_modes(X: Any, y: Any, n_classes: int | None = None) -> Modes:
    r"""SVD of the input-output map $YX^\top$ ($K\times d$) for samples ``X`` (N×d) with one-hot targets of ``y``.

    For orthonormal samples these are Saxe's modes: $s_k=\sqrt{n_k}$ and $v_k$ the normalised class sums. Only
    modes with $s_i>0$ are returned.
    """
    x = as_features(X)
    labels = as_labels(y, x.shape[0])
    if labels.min() < 0:
        raise ValueError("labels must be >= 0")
    k = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    if k <= labels.max():
        raise ValueError(f"n_classes={k} but the largest label is {labels.max()}: pass n_classes > {labels.max()} "
                         "or leave n_classes=None to read it from the labels")
    onehot = np.zeros((k, x.shape[0]))
    onehot[labels, np.arange(x.shape[0])] = 1.0
    u, s, vt = np.linalg.svd(onehot @ x, full_matrices=False)
    keep = s > 1e-12 * max(s.max(), 1e-300)
    u, s, v = u[:, keep], s[keep], vt[keep].T
    # fix signs so that every mode's output vector has a positive largest entry (deterministic)
    signs = np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(u.shape[1])])
    return Modes(s=s, U=u * signs, V=v * signs)


def mode_strengths(weights: Sequence[Any], modes: Modes, alpha: float = 1.0) -> np.ndarray:
    r"""Strengths $u_i=u_i^\top(\alpha W_L\cdots W_1)v_i$ of the end-to-end map along each target mode."""
    w = _positive("alpha", alpha) * end_to_end(weights)
    if w.shape != (modes.U.shape[0], modes.V.shape[0]):
        raise ValueError(f"end-to-end map has shape {w.shape}, modes expect {(modes.U.shape[0], modes.V.shape[0])}")
    return np.einsum("ki,kd,di->i", modes.U, w, modes.V)


def effective_initial_strength(weights: Sequence[Any], modes: Modes, alpha: float = 1.0) -> np.ndarray:
    r"""$p_0=\alpha\lVert W_1v+W_2^\top u\rVert^2/4$ per mode for a two-layer network ``[W_1, W_2]``.

    The strength that a random initialisation effectively starts the sigmoid from (module docstring). For a
    balanced aligned start ($W_1v=W_2^\top u$) it equals the initial strength itself.
    """
    if len(weights) != 2:
        raise ValueError(f"effective_initial_strength needs a two-layer network [W1, W2], got {len(weights)} layers")
    w1, w2 = (to_numpy(w, np.float64) for w in weights)
    alpha = _positive("alpha", alpha)
    if w1.shape[1] != modes.V.shape[0] or w2.shape[0] != modes.U.shape[0] or w2.shape[1] != w1.shape[0]:
        raise ValueError(f"weight shapes {w1.shape}, {w2.shape} do not match the modes")
    a = w1 @ modes.V  # (m, r)
    b = w2.T @ modes.U  # (m, r)
    return alpha * np.sum((a + b) ** 2, axis=0) / 4.0


def _linear_weights(model: nn.Module) -> list[torch.Tensor]:
    weights = getattr(model, "weights", None)
    if callable(weights):
        return list(weights())
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]


def train_in_rounds(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    checkpoints: Sequence[int],
    measure: Callable[[nn.Module], Any],
) -> tuple[list[int], list[Any], list[float]]:
    """Train with :func:`pnc.train.train` up to each epoch in ``checkpoints`` and call ``measure(model)`` there.

    Returns ``(epochs, measurements, losses)`` where ``losses`` are the training losses of every epoch run.
    ``checkpoints`` are increasing epoch counts (0 allowed: measure at initialisation). Each round is a separate
    call, so the optimizer state and the schedule restart every round: the result equals one uninterrupted run
    exactly for plain gradient descent (``optimizer="gd"``, ``schedule="constant"``, no momentum, no weight decay)
    and approximately otherwise. ``config.epochs`` is ignored.
    """
    cps = [int(c) for c in checkpoints]
    if not cps or any(c < 0 for c in cps) or any(b <= a for a, b in zip(cps, cps[1:], strict=False)):
        raise ValueError(f"checkpoints must be a non-empty strictly increasing list of epochs >= 0, got {cps}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    done, losses, out = 0, [], []
    for c in cps:
        if c > done:
            result = train(model, X, y, config.replace(epochs=c - done))
            losses.extend(result.losses)
            if not all(math.isfinite(v) for v in result.losses):
                raise ValueError(f"training diverged before epoch {c} (loss {result.losses[-1]}); lower the lr")
            done = c
        out.append(measure(model))
    return cps, out, losses


@dataclass
class ModeTrace:
    """Mode strengths of a trained two-layer linear network against Saxe's closed form."""

    steps: np.ndarray
    """Gradient-descent steps at which the strengths were measured."""
    measured: np.ndarray
    """Measured strengths, shape (len(steps), r)."""
    theory: np.ndarray
    """Closed form from the effective initial strengths, same shape."""
    s: np.ndarray
    """Target singular values (descending)."""
    u0: np.ndarray
    """Effective initial strengths $p_0$."""
    tau: float
    """Time constant in steps."""
    losses: list[float] = field(default_factory=list)

    @property
    def max_abs_error(self) -> float:
        """Largest gap between measured and closed-form strength, relative to the largest ``s``."""
        return float(np.max(np.abs(self.measured - self.theory)) / self.s.max())

    def learning_times(self) -> np.ndarray:
        """Closed-form half-way times $t_{1/2}$ of every mode, in steps."""
        return np.array([saxe_learning_time(s, u, self.tau) for s, u in zip(self.s, self.u0, strict=True)])


def trace_modes(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, lr: float, steps: int, every: int = 5, alpha: float = 1.0
) -> ModeTrace:
    """Train ``model`` (two bias-free linear layers) by plain gradient descent and record its mode strengths.

    Uses :func:`pnc.train.train` with full-batch GD, a constant learning rate and MSE with output multiplier
    ``alpha``, measuring every ``every`` steps up to ``steps``; the closed form uses
    :func:`effective_initial_strength` and :func:`gd_time_constant`. Saxe's theory needs whitened inputs, e.g.
    ``pnc.data.orthogonal_dataset(..., perturbation=0)``.
    """
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(every, bool) or int(every) != every or every < 1 or every > steps:
        raise ValueError(f"every must be an integer in [1, steps], got {every!r}")
    weights = _linear_weights(model)
    if len(weights) != 2:
        raise ValueError(f"trace_modes needs a network with exactly two linear layers, got {len(weights)}")
    modes = input_output_modes(X, y, n_classes=weights[-1].shape[0])
    u0 = effective_initial_strength(weights, modes, alpha)
    tau = gd_time_constant(X.shape[0], lr, alpha)
    config = TrainConfig(optimizer="gd", lr=lr, loss="mse", alpha=alpha, schedule="constant", epochs=1)
    checkpoints = list(range(0, int(steps) + 1, int(every)))
    cps, strengths, losses = train_in_rounds(
        model, X, y, config, checkpoints, lambda m: mode_strengths(_linear_weights(m), modes, alpha)
    )
    t = np.asarray(cps, dtype=np.float64)
    theory = np.stack([saxe_mode_strength(t, s, u, tau) for s, u in zip(modes.s, u0, strict=True)], axis=1)
    return ModeTrace(steps=t, measured=np.array(strengths), theory=theory, s=modes.s, u0=u0, tau=tau, losses=losses)
