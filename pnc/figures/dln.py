"""Figures for the chapter *Deep linear networks and the implicit bias of gradient descent*."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from ..dln import DLNTrajectory
from ..plotting import COLORS

__all__ = ["spectra_and_imbalance", "render_trajectory"]


def spectra_and_imbalance(traj: DLNTrajectory, xi: float, n_top: int | None = None) -> Figure:
    r"""Left: singular values of $W_1..W_{L}$ after training (log axis) with the init scale $\xi$ dashed.
    Right: the imbalance $\lVert W_{l+1}^\top W_{l+1}-W_lW_l^\top\rVert_F$ of every pair over training."""
    if not isinstance(traj, DLNTrajectory):
        raise ValueError(f"traj must be a DLNTrajectory, got {type(traj).__name__}")
    xi = float(xi)
    if not np.isfinite(xi) or xi <= 0:
        raise ValueError(f"xi must be > 0, got {xi}")
    final = traj.singular_values[-1]
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    ax_s, ax_i = fig.subplots(1, 2)
    for l, s in enumerate(final, start=1):
        k = s.size if n_top is None else min(n_top, s.size)
        ax_s.semilogy(np.arange(1, k + 1), s[:k], "o-", ms=3, lw=1.2, color=COLORS[(l - 1) % len(COLORS)],
                      label=f"$W_{{{l}}}$")
    ax_s.axhline(xi, ls="--", color="0.3", lw=1.2, label=r"$\xi$")
    ax_s.set_xlabel("index $i$")
    ax_s.set_ylabel(r"$\sigma_i(W_l)$ after training")
    ax_s.legend(fontsize=7, ncol=2)
    for p in range(traj.imbalance.shape[1]):
        ax_i.plot(traj.epochs, traj.imbalance[:, p], color=COLORS[p % len(COLORS)],
                  label=f"pair ({p + 1},{p + 2})")
    ax_i.set_xlabel("epoch")
    ax_i.set_ylabel("imbalance (Frobenius, symlog)")
    ax_i.set_yscale("symlog", linthresh=1e-3)
    ax_i.set_ylim(bottom=0.0)
    ax_i.legend(fontsize=7)
    return fig


def render_trajectory(xi: float, L: int, trajectories: Mapping[tuple[float, int], DLNTrajectory]) -> Figure:
    """Explorer frame: :func:`spectra_and_imbalance` of the precomputed run with init scale ``xi`` and depth ``L``."""
    key = (xi, L)
    if key not in trajectories:
        raise ValueError(f"no precomputed trajectory for xi={xi}, L={L}; have {sorted(trajectories)}")
    return spectra_and_imbalance(trajectories[key], xi, n_top=12)
