"""Figures of the chapter "The law under perturbation": trained per-layer ratios against the laws, and the sweeps.

Every function returns a matplotlib :class:`~matplotlib.figure.Figure` and never calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from pnc.plotting import COLORS

from ..perturbation import ImbalanceRun, PerturbationRun, agreement_limit, agreement_range

__all__ = ["imbalance_figure", "perturbation_figure"]


def perturbation_figure(runs: Sequence[PerturbationRun], shown: Sequence[float] | None = None,
                        tolerance: float = 0.05) -> Figure:
    """Left: ``C_{l+1}/C_l`` of the trained networks (points) for the perturbations ``shown``, with the first-order
    law (solid) and the idealised ``kappa`` (dashed). Right: the worst per-layer deviation of the trained ratios
    from the first-order law and from ``kappa`` over the whole sweep, the ``tolerance`` band shaded and the range
    where the first-order law holds within it marked."""
    runs = sorted(runs, key=lambda r: r.perturbation)
    if len(runs) < 2:
        raise ValueError("perturbation_figure needs at least two runs of the sweep")
    by_value = {r.perturbation: r for r in runs}
    shown = [runs[0].perturbation, runs[len(runs) // 2].perturbation, runs[-1].perturbation] if shown is None \
        else [float(p) for p in shown]
    missing = [p for p in shown if p not in by_value]
    if missing:
        raise ValueError(f"shown perturbations {missing} are not in the sweep {list(by_value)}")
    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    ax_l, ax_r = fig.subplots(1, 2)
    for color, p in zip(COLORS, shown, strict=False):
        run = by_value[p]
        layers = np.arange(run.law.ratios.size)
        ax_l.plot(layers, run.trained.ratios, "o", color=color, label=f"trained, perturbation {p:g}")
        ax_l.plot(layers, run.law.first_order_ratios, "-", color=color, lw=1.5)
    ax_l.axhline(runs[0].law.kappa, ls="--", color="0.4", lw=1, label=r"idealised $\kappa$")
    ax_l.set_xlabel("layer $l$")
    ax_l.set_ylabel(r"$C_{l+1}/C_l$")
    ax_l.set_xticks(np.arange(runs[0].law.ratios.size))
    ax_l.legend(fontsize="small", title="lines: first-order law", title_fontsize="small")

    values = np.array([r.perturbation for r in runs])
    first = np.array([r.worst_error("first_order") for r in runs])
    ideal = np.array([r.worst_error("ideal") for r in runs])
    ax_r.axhspan(0, tolerance, color="0.9", zorder=0, label=f"within {100 * tolerance:g} %")
    limit = agreement_limit(runs, tolerance)
    if limit is not None:
        ax_r.axvspan(values[0], limit, color=COLORS[2], alpha=0.12, zorder=0,
                     label=f"first order within {100 * tolerance:g} % (perturbation ≤ {limit:g})")
    ax_r.plot(values, first, "o-", color=COLORS[0], label="against the first-order law")
    ax_r.plot(values, ideal, "s--", color=COLORS[1], label=r"against $\kappa$")
    ax_r.set_xlabel("perturbation (Frobenius norm of the noise)")
    ax_r.set_ylabel(r"worst $|$trained / predicted $- 1|$")
    ax_r.set_ylim(0, max(0.2, 1.05 * float(np.nanmax(np.r_[first, ideal]))))
    ax_r.legend(fontsize="small", loc="upper left")
    return fig


def imbalance_figure(runs: Sequence[ImbalanceRun], shown: Sequence[float] | None = None,
                     tolerance: float = 0.05) -> Figure:
    """Left: ``C_l/C_{l-1}`` of networks trained from tilted initial scales (points) for the tilts ``shown``, with
    the imbalance law (solid), its first-order form (dashed) and the balanced ``kappa`` (dotted). Right: the worst
    per-layer deviation of the trained ratios from each prediction over the sweep, the ``tolerance`` band shaded
    and the tilts where the first-order form holds within it marked."""
    runs = sorted(runs, key=lambda r: r.tilt)
    if len(runs) < 2:
        raise ValueError("imbalance_figure needs at least two runs of the sweep")
    by_tilt = {r.tilt: r for r in runs}
    shown = [runs[0].tilt, runs[len(runs) // 2].tilt, runs[-1].tilt] if shown is None else [float(t) for t in shown]
    missing = [t for t in shown if t not in by_tilt]
    if missing:
        raise ValueError(f"shown tilts {missing} are not in the sweep {list(by_tilt)}")
    fig = Figure(figsize=(11.5, 3.8), layout="constrained")
    ax_l, ax_r = fig.subplots(1, 2)
    layers = np.arange(1, runs[0].law.ratios.size + 1)
    for color, tilt in zip(COLORS, shown, strict=False):
        run = by_tilt[tilt]
        ax_l.plot(layers, run.trained.ratios, "o", color=color, label=f"trained, tilt {tilt:+g}")
        ax_l.plot(layers, run.law.ratios, "-", color=color, lw=1.5)
        ax_l.plot(layers, run.law.first_order_ratios, "--", color=color, lw=1)
    ax_l.axhline(runs[0].trained.kappa, ls=":", color="0.4", lw=1.2, label=r"balanced $\kappa$")
    ax_l.set_xlabel("layer $l$")
    ax_l.set_ylabel(r"$C_l/C_{l-1}$")
    ax_l.set_xticks(layers)
    ax_l.legend(fontsize="small", title="solid: law, dashed: first order", title_fontsize="small")

    tilts = np.array([r.tilt for r in runs])
    curves = {"exact": ("o-", COLORS[0], "against the imbalance law"),
              "first_order": ("^-", COLORS[2], "against its first-order form"),
              "ideal": ("s--", COLORS[1], r"against the balanced $\kappa$")}
    ax_r.axhspan(0, tolerance, color="0.9", zorder=0, label=f"within {100 * tolerance:g} %")
    span = agreement_range(runs, tolerance, "first_order")
    if span is not None:
        ax_r.axvspan(span[0], span[1], color=COLORS[2], alpha=0.12, zorder=0,
                     label=f"first order within {100 * tolerance:g} % ({span[0]:+g} to {span[1]:+g})")
    worst = {}
    for key, (style, color, label) in curves.items():
        worst[key] = np.array([r.worst_error(key) for r in runs])
        ax_r.plot(tilts, worst[key], style, color=color, label=label)
    ax_r.set_xlabel(r"tilt of the initial scales ($\xi_j$ from $\xi(1-$tilt$)$ to $\xi(1+$tilt$)$)")
    ax_r.set_ylabel(r"worst $|$trained / predicted $- 1|$")
    ax_r.set_ylim(0, min(0.6, max(0.2, 1.05 * float(np.nanmax(np.concatenate(list(worst.values())))))))
    ax_r.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig
