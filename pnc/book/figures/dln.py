"""Figures for the chapter *Deep linear networks and the implicit bias of gradient descent*."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from pnc.plotting import COLORS, describe

from ..dln import DLNTrajectory

__all__ = ["spectra_and_imbalance", "render_trajectory", "trajectory_limits"]

_PLAIN = FuncFormatter(lambda v, _: f"{v:g}")


def _top_singular_values(traj: DLNTrajectory, n_top: int | None) -> list[np.ndarray]:
    return [s if n_top is None else s[: min(n_top, s.size)] for s in traj.singular_values[-1]]


def trajectory_limits(trajectories: Mapping[object, DLNTrajectory] | list[DLNTrajectory],
                      n_top: int | None = None) -> dict[str, tuple[float, float]]:
    """Axis limits of :func:`spectra_and_imbalance` that hold every trajectory: ``index``, ``sv`` (singular values,
    log), ``epoch`` and ``imbalance`` (symlog), each ``(low, high)``."""
    trajs = list(trajectories.values()) if isinstance(trajectories, Mapping) else list(trajectories)
    if not trajs or not all(isinstance(t, DLNTrajectory) for t in trajs):
        raise ValueError("trajectories must be a non-empty collection of DLNTrajectory")
    sv = np.concatenate([s for t in trajs for s in _top_singular_values(t, n_top)])
    sv = sv[sv > 0]
    k = max(s.size for t in trajs for s in _top_singular_values(t, n_top))
    epochs = max(float(np.max(t.epochs)) for t in trajs)
    imbalance = max(float(np.max(t.imbalance)) for t in trajs)
    # the imbalance axis gets a decade of headroom for the legend
    return {"index": (0.5, k + 0.5), "sv": (float(sv.min()) / 1.4, float(sv.max()) * 1.4),
            "epoch": (0.0, epochs), "imbalance": (0.0, max(imbalance, 1e-3) * 16)}


def spectra_and_imbalance(traj: DLNTrajectory, xi: float, n_top: int | None = None,
                          limits: Mapping[str, tuple[float, float]] | None = None) -> Figure:
    r"""Left: singular values of $W_1..W_{L}$ after training (log axis) with the init scale $\xi$ dashed.
    Right: the imbalance $\lVert W_{l+1}^\top W_{l+1}-W_lW_l^\top\rVert_F$ of every pair over training (the hidden
    pairs in one colour, the last pair in another).

    ``limits`` (see :func:`trajectory_limits`) fixes the axes, e.g. to those of a whole grid of runs; by default they
    fit ``traj``. Epochs are on a symlog axis (linear up to 10) so that short and long runs both show."""
    if not isinstance(traj, DLNTrajectory):
        raise ValueError(f"traj must be a DLNTrajectory, got {type(traj).__name__}")
    xi = float(xi)
    if not np.isfinite(xi) or xi <= 0:
        raise ValueError(f"xi must be > 0, got {xi}")
    lim = dict(trajectory_limits([traj], n_top))
    lim.update(limits or {})
    final = _top_singular_values(traj, n_top)
    n_layers = len(final)
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax_s, ax_i = fig.subplots(1, 2)
    handles = []
    for l, s in enumerate(final, start=1):
        (line,) = ax_s.semilogy(np.arange(1, s.size + 1), s, "o-", ms=3, lw=1.2, color=COLORS[(l - 1) % len(COLORS)],
                                label=f"$W_{{{l}}}$")
        handles.append(line)
    handles.append(ax_s.axhline(xi, ls="--", color="0.3", lw=1.2, label=r"$\xi$"))
    ax_s.set_xlim(*lim["index"])
    ax_s.xaxis.set_major_locator(MaxNLocator(6, integer=True))
    ax_s.set_ylim(*lim["sv"])
    ax_s.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax_s.yaxis.set_major_formatter(_PLAIN)
    ax_s.yaxis.set_minor_locator(NullLocator())
    ax_s.set_xlabel("index $i$")
    ax_s.set_ylabel(r"$\sigma_i(W_l)$ after training")
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles), handlelength=1.2,
               columnspacing=0.9, handletextpad=0.4)
    n_pairs = traj.imbalance.shape[1]
    for p in range(n_pairs):
        last = p == n_pairs - 1
        label = rf"last pair ($W_{{{n_layers - 1}}}$, $W_{{{n_layers}}}$)" if last else (
            "hidden pairs" if p == 0 else None)
        ax_i.plot(traj.epochs, traj.imbalance[:, p], color=COLORS[1] if last else COLORS[0], label=label)
    ax_i.set_xscale("symlog", linthresh=10)
    ax_i.set_xlim(*lim["epoch"])
    ax_i.set_xlabel("epoch")
    ax_i.set_ylabel(r"imbalance norm $\|\Gamma_l\|_F$ (symlog)")
    ax_i.set_yscale("symlog", linthresh=1e-3)
    ax_i.set_ylim(*lim["imbalance"])
    ax_i.legend(loc="upper right")
    end = traj.imbalance[-1]
    hidden = f"the hidden pairs' imbalance ends at most {np.max(end[:-1]):.3g}, " if end.size > 1 else ""
    return describe(fig, f"After training, the largest singular value of the {n_layers} layers ranges from "
                         f"{min(float(v.max()) for v in final):.3g} to {max(float(v.max()) for v in final):.3g} "
                         f"against the initial scale ξ = {xi:g}; {hidden}the last pair's at {end[-1]:.3g}")


def render_trajectory(xi: float, L: int, trajectories: Mapping[tuple[float, int], DLNTrajectory]) -> Figure:
    """Explorer frame: :func:`spectra_and_imbalance` of the precomputed run with init scale ``xi`` and depth ``L``,
    on axes that hold every run of ``trajectories`` (so frames compare)."""
    key = (xi, L)
    if key not in trajectories:
        raise ValueError(f"no precomputed trajectory for xi={xi}, L={L}; have {sorted(trajectories)}")
    return spectra_and_imbalance(trajectories[key], xi, n_top=12, limits=trajectory_limits(trajectories, n_top=12))
