"""Figures of the chapter "The law under perturbation": trained per-layer ratios against the laws, and the sweeps.

Every function returns a matplotlib :class:`~matplotlib.figure.Figure` and never calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from pnc.plotting import COLORS, describe

from .. import laws
from ..live import Control, Curve, LiveExplorer, Measured
from ..perturbation import (
    ImbalanceRun,
    PerturbationRun,
    SpreadRun,
    agreement_limit,
    agreement_range,
    spread_agreement_limit,
)
from .compression import law_controls

__all__ = ["imbalance_figure", "law_panel", "perturbation_figure", "perturbation_grid_figure", "spread_figure"]


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
    held = ("nowhere" if limit is None else f"up to a perturbation of {limit:g}")
    return describe(fig, f"The first-order law predicts the trained ratios within {100 * tolerance:g} % {held}; "
                         f"its worst deviation over the sweep is {100 * np.nanmax(first):.1f} %, that of the "
                         f"idealised κ {100 * np.nanmax(ideal):.1f} %")


def perturbation_grid_figure(runs: Sequence[PerturbationRun], tolerance: float = 0.05) -> Figure:
    """Left: every trained per-layer ratio of a grid of perturbations and initialisation scales against the
    first-order law (one colour per ``xi``; filled where the whole run is within ``tolerance``), with the diagonal
    and its ``tolerance`` band. Right: the worst per-layer deviation of each run from the first-order law over the
    grid, the cells within ``tolerance`` outlined."""
    if len(runs) < 2:
        raise ValueError("perturbation_grid_figure needs at least two runs")
    xis = sorted({float(r.trained.config["xi"]) for r in runs})
    values = sorted({r.perturbation for r in runs})
    worst = np.full((len(xis), len(values)), np.nan)
    fig = Figure(figsize=(11.5, 4.2), layout="constrained")
    ax_l, ax_r = fig.subplots(1, 2)
    lo, hi = np.inf, 0.0
    for run in runs:
        i, j = xis.index(float(run.trained.config["xi"])), values.index(run.perturbation)
        worst[i, j] = run.worst_error("first_order")
        predicted, measured = run.law.first_order_ratios, run.trained.ratios
        inside = worst[i, j] <= tolerance
        colour = COLORS[i % len(COLORS)]
        ax_l.plot(predicted, measured, "o", ms=4, color=colour, mfc=colour if inside else "none", alpha=0.8,
                  label=rf"$\xi={xis[i]:g}$" if j == 0 else None)
        lo, hi = min(lo, predicted.min(), measured.min()), max(hi, predicted.max(), measured.max())
    line = np.geomspace(lo / 1.2, hi * 1.2, 50)
    ax_l.fill_between(line, line * (1 - tolerance), line * (1 + tolerance), color="0.85", zorder=0,
                      label=f"within {100 * tolerance:g} %")
    ax_l.plot(line, line, "-", color="0.4", lw=1)
    ax_l.set_xscale("log")
    ax_l.set_yscale("log")
    ax_l.set_xlabel(r"first-order law, $C_{l+1}/C_l$")
    ax_l.set_ylabel(r"trained, $C_{l+1}/C_l$")
    ax_l.legend(fontsize="small", title="hollow: a layer off by more", title_fontsize="x-small")

    shown = 100 * worst
    image = ax_r.imshow(shown, origin="lower", aspect="auto", cmap="viridis", vmin=0,
                        vmax=min(30.0, float(np.nanmax(shown))))
    for i in range(len(xis)):
        for j in range(len(values)):
            if np.isfinite(shown[i, j]):
                ax_r.text(j, i, f"{shown[i, j]:.1f}", ha="center", va="center", fontsize=7,
                          color="white" if shown[i, j] < 15 else "black")
            if worst[i, j] <= tolerance:
                ax_r.add_patch(_cell(j, i))
    ax_r.set_xticks(range(len(values)), [f"{v:g}" for v in values])
    ax_r.set_yticks(range(len(xis)), [f"{x:g}" for x in xis])
    ax_r.set_xlabel("perturbation (Frobenius norm of the noise)")
    ax_r.set_ylabel(r"initialisation scale $\xi$")
    ax_r.set_title(f"worst deviation from the first-order law (%); outlined: within {100 * tolerance:g} %",
                   fontsize="small")
    fig.colorbar(image, ax=ax_r, shrink=0.9)
    inside = int(np.sum(worst <= tolerance))
    return describe(fig, f"{inside} of {int(np.isfinite(worst).sum())} runs of the grid of {len(xis)} "
                         f"initialisation scales by {len(values)} perturbations follow the first-order law within "
                         f"{100 * tolerance:g} % at every layer; the worst deviation is {np.nanmax(shown):.1f} %")


def _cell(x: int, y: int):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="white", lw=1.5)


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
    held = "at no tilt" if span is None else f"for tilts from {span[0]:+g} to {span[1]:+g}"
    return describe(fig, f"The first-order imbalance law holds within {100 * tolerance:g} % {held}; over the sweep "
                         f"the worst deviation is {100 * np.nanmax(worst['exact']):.1f} % from the imbalance law and "
                         f"{100 * np.nanmax(worst['ideal']):.1f} % from the balanced κ")


_SPREAD_LABELS = {"independent": "aligned, independent", "coherent": "aligned, coherent", "rotated": "rotated"}


def spread_figure(runs: Sequence[SpreadRun], shown: float | None = None, tolerance: float = 0.05) -> Figure:
    """Left: ``C_l/C_{l-1}`` over ``kappa`` of the networks trained with the spread ``shown`` (points), one colour
    per mode, with the exact spread law (solid; aligned modes) and the mean-square form (dashed). Right: the worst
    per-layer deviation over the sweep from the law and its first- and second-order forms (aligned modes) and from
    the mean-square form (rotated), the ``tolerance`` band shaded and, per aligned mode, the spreads where the
    first-order form holds within it."""
    modes = [m for m in _SPREAD_LABELS if any(r.mode == m for r in runs)]
    if len(runs) < 2 or not modes:
        raise ValueError("spread_figure needs at least two runs of the spread sweep")
    rhos = sorted({r.rho for r in runs})
    shown = rhos[len(rhos) // 2] if shown is None else float(shown)
    if shown not in rhos:
        raise ValueError(f"shown spread {shown} is not in the sweep {rhos}")
    fig = Figure(figsize=(11.5, 3.9), layout="constrained")
    ax_l, ax_r = fig.subplots(1, 2)
    colours = dict(zip(_SPREAD_LABELS, COLORS, strict=False))
    for mode in modes:
        run = next(r for r in runs if r.mode == mode and r.rho == shown)
        layers = np.arange(1, run.law.ratios.size + 1)
        kappa = run.law.kappa
        ax_l.plot(layers, run.trained.ratios / kappa, "o", color=colours[mode], label=_SPREAD_LABELS[mode])
        if mode != "rotated":
            ax_l.plot(layers, run.law.ratios / kappa, "-", color=colours[mode], lw=1.5)
        ax_l.plot(layers, run.law.mean_square_ratios / kappa, "--", color=colours[mode], lw=1)
        ax_l.set_xticks(layers)
    ax_l.axhline(1.0, ls=":", color="0.4", lw=1.2, label=r"$\kappa$ (no spread)")
    ax_l.set_xlabel("layer $l$")
    ax_l.set_ylabel(r"$(C_l/C_{l-1})\,/\,\kappa$")
    ax_l.set_title(rf"spread $\rho={shown:g}$", fontsize="medium")
    ax_l.legend(fontsize="small", title="solid: law, dashed: mean square", title_fontsize="small")

    ax_r.axhspan(0, tolerance, color="0.9", zorder=0, label=f"within {100 * tolerance:g} %")
    curves = {"exact": ("o-", "law"), "second_order": ("v-.", "second order"), "first_order": ("^:", "first order"),
              "mean_square": ("s--", "mean square (rotated)")}
    top = 0.2
    for mode in modes:
        chosen = sorted((r for r in runs if r.mode == mode), key=lambda r: r.rho)
        values = np.array([r.rho for r in chosen])
        for key, (style, _) in curves.items():
            if key not in chosen[0].predictions or (key == "mean_square") != (mode == "rotated"):
                continue
            worst = np.array([r.worst_error(key) for r in chosen])
            top = max(top, float(np.nanmax(worst)))
            ax_r.plot(values, worst, style, color=colours[mode], ms=4)
        if mode == "independent":
            limit = spread_agreement_limit(chosen, mode, tolerance, "first_order")
            if limit is not None and limit > values[0]:
                ax_r.axvspan(values[0], limit, color=colours[mode], alpha=0.12, zorder=0,
                             label=f"independent: first order within {100 * tolerance:g} %")
    for style, name in curves.values():  # the line styles, in black; the colours are the left panel's
        ax_r.plot([], [], style, color="0.2", ms=4, label=name)
    ax_r.set_xlabel(r"spread $\rho$ (singular values $\xi(1+\rho u)$, $u\in[-1,1]$)")
    ax_r.set_ylabel(r"worst $|$trained / predicted $- 1|$")
    ax_r.set_ylim(0, min(0.6, 1.05 * top))
    ax_r.legend(fontsize="small", loc="upper left", title="colours as left", title_fontsize="small")
    return describe(fig, f"Per-layer ratios over κ at spread ρ = {shown:g} for the modes "
                         f"{' / '.join(_SPREAD_LABELS[m] for m in modes)}, and the worst deviation of each prediction "
                         f"over the sweep of ρ from {rhos[0]:g} to {rhos[-1]:g} (largest {100 * top:.1f} %)")


def _data_terms(run: PerturbationRun) -> tuple[float, float]:
    """``(Tr(JE), beta_0)`` of a run's data, rounded to the panel's step (the settings at which it is shown)."""
    K, L = run.trained.config["K"], run.trained.config["L"]
    return round(run.law.gain_shift * (K - 1) * L, 4) + 0.0, round(run.law.leak, 4) + 0.0


def law_panel(runs: Sequence[PerturbationRun], tilt_runs: Sequence[ImbalanceRun], shown: float = 2.0
              ) -> LiveExplorer:
    """Chapter 5's "what do the laws predict" panel: type ``xi, alpha, n, L, K``, the data's ``Tr(JE)`` and leak
    ``beta_0`` and the tilt ``t`` of the layer scales, and read the per-layer ratio ``C_l/C_{l-1}`` of the
    first-order perturbation law (:data:`pnc.book.laws.PERTURBATION`) and of the first-order imbalance law for
    tilted scales (:data:`pnc.book.laws.IMBALANCE`), with the formulas typeset. The trained networks of ``runs``
    (perturbation sweep, no tilt) and ``tilt_runs`` (imbalance sweep, orthonormal data) are shown in a last column
    at their settings; the panel opens at the perturbation ``shown``."""
    runs, tilt_runs = list(runs), list(tilt_runs)
    if not runs or not tilt_runs:
        raise ValueError("law_panel needs the runs of both sweeps")
    config = runs[0].trained.config
    xi, n, L, alpha, K = (config[k] for k in ("xi", "n", "L", "alpha", "K"))
    base = {"varepsilon": xi, "alpha": alpha, "n": n, "L": L, "K": K}
    if any(r.trained.config[k] != config[k] for r in runs + tilt_runs for k in ("xi", "n", "L", "alpha", "K")):
        raise ValueError("every run of both sweeps must share xi, n, L, alpha and K")
    opening = next((r for r in runs if r.perturbation == shown), None)
    if opening is None:
        raise ValueError(f"no run at the perturbation {shown} (have {[r.perturbation for r in runs]})")
    layers = list(range(1, L))
    measured = [Measured(when={**base, "tau": tau, "beta_0": beta, "tilt": 0.0}, x=layers,
                         y=[float(v) for v in r.trained.ratios]) for r in runs for tau, beta in [_data_terms(r)]]
    measured += [Measured(when={**base, "tau": 0.0, "beta_0": 0.0, "tilt": float(r.tilt)}, x=layers,
                          y=[float(v) for v in r.trained.ratios]) for r in tilt_runs]
    tau0, beta0 = _data_terms(opening)
    settings = ", ".join(f"{r.perturbation:g} ({tau:.4f}, {beta:.4f})".replace("-", "−")
                         for r in runs for tau, beta in [_data_terms(r)])
    tilts = ", ".join(f"{r.tilt:g}" for r in tilt_runs)
    return LiveExplorer(
        title="What do the laws of this chapter predict?",
        controls=law_controls(xi, alpha, n, L, K, min_depth=2)  # the imbalance law needs two layers
        + [Control("tau", "Tr(JE) of the data", -1.0, 1.0, 0.0001, tau0, digits=4),
           Control("beta_0", "leak β₀ of the data", 0.0, 2.0, 0.0001, beta0, digits=4),
           Control("tilt", "tilt t of the layer scales", -0.95, 0.95, 0.01, 0.0, digits=2)],
        curves=[Curve(laws.PERTURBATION, "perturbed data", upto="L", offset=-1),
                Curve(laws.IMBALANCE, "tilted layers", upto="L", offset=-1)],
        scalars=[(laws.KAPPA, "κ")], measured=measured,
        x_name="l", x_values=list(range(1, 20)), x_label="layer l", kind="panel",
        caption=(f"Each column is one first-order law, computed in your browser from the formula above it "
                 f"(generated from the sympy expressions this chapter checks): perturbed data (Tr(JE) and β₀; the "
                 f"tilt does not enter) and layers whose initial scales ξ_j run linearly from ξ(1 − t) to ξ(1 + t) "
                 f"(orthonormal data). The last column shows the trained networks of this chapter (ξ = {xi:g}, "
                 f"L = {L}, n = {n}, α = {alpha:g}, K = {K}) when the panel is at their settings. On perturbed data "
                 f"(tilt 0), by perturbation (Tr(JE), β₀): {settings}. From tilted scales (Tr(JE) = β₀ = 0): "
                 f"t ∈ {{{tilts.replace('-', '−')}}}. The panel opens at the perturbation {shown:g}."),
    )
