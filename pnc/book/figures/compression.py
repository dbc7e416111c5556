"""Figures of chapter 4 (the progressive compression law): discrimination vs its first-order law, and explorer frames.

Every function returns a matplotlib :class:`~matplotlib.figure.Figure` and never calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from pnc.plotting import COLORS, describe, fit_linear

from .. import laws
from ..live import Control, Curve, LiveExplorer, Measured
from ..recipes import PracticePair, RecipeResult

__all__ = ["compression_explorer", "discrimination_figure", "explorer_frame", "law_panel", "practice_figure"]


def discrimination_figure(results: Sequence[RecipeResult], labels: Sequence[str] | None = None) -> Figure:
    """One panel per result: measured ``D_l`` (points) against the first-order law ``1 - (1 - l/L) max E`` (dashed),
    both continued to ``l = L`` where the law gives exactly 1."""
    results = list(results)
    if not results:
        raise ValueError("discrimination_figure needs at least one RecipeResult")
    if labels is not None and len(labels) != len(results):
        raise ValueError(f"got {len(labels)} labels for {len(results)} results")
    if any(not np.isfinite(r.max_E) for r in results):
        raise ValueError("every result needs a finite max_E (interpolating data, X^T X invertible)")
    fig = Figure(figsize=(5.0 * len(results), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(results), squeeze=False)[0])
    for i, (ax, r) in enumerate(zip(axes, results, strict=True)):
        layers = np.arange(r.L)
        line = np.linspace(0, r.L, 50)
        slope, icpt, r2 = fit_linear(r.discrimination, layers)
        ax.plot(line, 1.0 - (1.0 - line / r.L) * r.max_E, "--", color=COLORS[1],
                label=rf"first order, $\max E$ = {r.max_E:.3f}")
        ax.plot(layers, r.discrimination, "o", color=COLORS[0], label=f"measured (fit $R^2$={r2:.3f})")
        ax.axhline(1.0, color="0.6", lw=1)
        ax.set_xlabel("layer $l$")
        ax.set_ylabel(r"discrimination $D_l$")
        ax.set_xlim(-0.2, r.L + 0.2)
        text = labels[i] if labels is not None else rf"$K$={r.config['K']}, seed {r.config['seed']}"
        ax.text(0.02, 0.97, text, transform=ax.transAxes, va="top", fontsize=10)
        ax.legend(loc="lower right")
    worst = [float(np.max(np.abs(r.discrimination - (1.0 - (1.0 - np.arange(r.L) / r.L) * r.max_E))))
             for r in results]
    return describe(fig, "Measured discrimination D_l against the first-order law 1 - (1 - l/L) max E; the largest "
                         "gap between them is " + ", ".join(f"{w:.2g}" for w in worst) + " (one value per panel)")


def explorer_frame(
    xi: float, L: int, runs: Mapping[tuple[float, int], RecipeResult] | None = None, n: int = 10,
    alpha: float = 100.0, K: int = 3,
) -> Figure:
    """One explorer view for ``(xi, L)``: the theory line ``C_l`` (left, log scale) and the per-layer ratios against
    ``kappa`` (right). When ``runs`` holds a trained network for ``(xi, L)``, its measured points are added;
    otherwise the frame is marked "theory only"."""
    from pnc.theory import compression_ratio, layerwise_compression

    kappa = compression_ratio(xi, n, L, alpha)
    layers = np.arange(L)
    theory = layerwise_compression(layers, eps=xi, n=n, K=K, L=L, alpha=alpha)
    run = None if runs is None else runs.get((float(xi), int(L)))
    fig = Figure(figsize=(6.4, 3.2), layout="none")  # fixed margins: a layout engine doubles the rendering time
    ax_c, ax_r = fig.subplots(1, 2, gridspec_kw={"left": 0.12, "right": 0.975, "bottom": 0.17, "top": 0.95,
                                                   "wspace": 0.3})
    ax_c.semilogy(layers, theory, "--", color=COLORS[1], label="theory")
    ax_r.axhline(kappa, ls="--", color=COLORS[1], label=rf"$\kappa$ = {kappa:.3f}")
    if run is not None:
        ax_c.semilogy(layers, run.compression, "o", color=COLORS[0], label="trained")
        ax_r.plot(np.arange(1, L), run.ratios, "o-", color=COLORS[0],
                  label=f"measured (worst {run.worst_ratio_error:.1%})")
    else:
        ax_c.text(0.5, 0.9, "theory only", transform=ax_c.transAxes, ha="center")
    ax_c.set_ylim(1e-6, 1e2)
    ax_c.set_xlim(-0.5, 7.5)
    ax_c.yaxis.set_minor_locator(NullLocator())
    ax_c.set_xlabel("layer $l$")
    ax_c.set_ylabel("$C_l$")
    ax_c.legend(loc="center right")
    ax_r.set_ylim(0.0, 1.2)
    ax_r.set_xlim(0.5, 7.5)
    ax_r.set_xlabel("layer $l$")
    ax_r.set_ylabel(r"$C_l / C_{l-1}$")
    ax_r.legend(loc="upper right")
    measured = ("no trained network for these settings (theory only)" if run is None else
                f"the trained network's ratios differ from κ by at most {run.worst_ratio_error:.1%}")
    return describe(fig, f"Theory for ξ = {xi:g}, L = {L}: C_l falls by κ = {kappa:.3f} per layer; {measured}")


def practice_figure(pair: PracticePair) -> Figure:
    """C_l (log scale) and D_l per layer of the linear and the nonlinear network of :class:`PracticePair`, the DLN's
    C_l beside the law ``C_0 kappa^l``."""
    lin = pair.linear
    c_nl = pair.nonlinear.column("compression")
    d_nl = pair.nonlinear.column("discrimination")
    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    ax_c, ax_d = fig.subplots(1, 2)
    layers = np.arange(lin.L)
    ax_c.semilogy(layers, lin.compression, "o", color=COLORS[0], label=f"deep linear, $L$ = {lin.L}")
    ax_c.semilogy(layers, lin.compression[0] * lin.kappa ** layers, "--", color=COLORS[0], lw=1,
                  label=rf"law $C_0\kappa^l$, $\kappa$ = {lin.kappa:.4f}")
    ax_c.semilogy(np.arange(c_nl.size), c_nl, "s-", color=COLORS[1], label=f"nonlinear MLP, {c_nl.size} layers")
    ax_c.set_xlabel("layer $l$")
    ax_c.set_ylabel("compression $C_l$")
    ax_c.legend(loc="center right")
    ax_d.plot(layers[1:], lin.discrimination[1:], "o-", color=COLORS[0], label="deep linear")
    ax_d.plot(np.arange(1, d_nl.size), d_nl[1:], "s-", color=COLORS[1], label="nonlinear MLP")
    ax_d.set_xlabel("layer $l$")
    ax_d.set_ylabel("discrimination $D_l$")
    ax_d.set_ylim(0, 1.05)
    ax_d.legend(loc="lower right")
    return describe(fig, f"The deep linear network's C_l falls on the law C_0 κ^l with κ = {lin.kappa:.4f}, from "
                         f"{lin.compression[0]:.3g} to {lin.compression[-1]:.3g}; the MLP's C_l falls only from "
                         f"{c_nl[0]:.3g} to {c_nl[-1]:.3g} over {c_nl.size} layers, unevenly")


def compression_explorer(runs: Mapping[tuple[float, int], RecipeResult], n: int = 10, alpha: float = 100.0,
                         K: int = 3) -> LiveExplorer:
    """The continuous explorer of chapter 4: ``C_l = C_0 kappa^l`` (:data:`pnc.book.laws.COMPRESSION`) over the
    layers, computed in the page for any ``xi``, ``L``, ``n`` and ``alpha``; the trained networks of ``runs`` (keyed
    ``(xi, L)``, trained at ``n`` and ``alpha``) appear as points at their settings."""
    measured = [Measured(when={"varepsilon": xi, "L": L, "n": n, "alpha": alpha},
                         x=list(range(L)), y=[float(c) for c in run.compression])
                for (xi, L), run in sorted(runs.items())]
    depths = sorted({L for _, L in runs} | {2, 12})
    return LiveExplorer(
        title="Compression per layer: the law (dashed) and trained networks (points)",
        controls=[Control("varepsilon", "init scale ξ", 0.05, 0.6, 0.005, 0.3),
                  Control("L", "depth L", 2, max(depths), 1, 6),
                  Control("n", "samples per class n", 2, 50, 1, n),
                  Control("alpha", "output scale α", 1, 200, 1, alpha)],
        curves=[Curve(laws.COMPRESSION, "law C₀κˡ", upto="L", offset=-1)],
        scalars=[(laws.KAPPA, "κ")],
        fixed={"K": K},
        x_name="l", x_values=list(range(max(depths))), x_label="layer l", y_label="Cₗ (log scale)",
        y_log=True, y_range=(1e-12, 1e2), measured=measured,
        caption=(f"The curve is computed in your browser from the closed form for any setting (K = {K}). Points: "
                 f"networks trained with the recipe (n = {n}, α = {alpha:g}, seed 1) at ξ ∈ "
                 f"{{{', '.join(f'{x:g}' for x in sorted({x for x, _ in runs}))}}} and L ∈ "
                 f"{{{', '.join(str(d) for d in sorted({d for _, d in runs}))}}}; set those values to see them."),
    )


def law_controls(xi: float, alpha: float, n: int, L: int, K: int, min_depth: int = 1) -> list[Control]:
    """The controls of the law's parameters ``xi, alpha, n, L, K`` that every "what does the law predict" panel
    starts with (``min_depth``: the smallest depth its laws allow)."""
    return [Control("varepsilon", "init scale ξ", 0.01, 1.0, 0.001, xi),
            Control("alpha", "output scale α", 0.1, 1000, 0.1, alpha, digits=1),
            Control("n", "samples per class n", 2, 1000, 1, n),
            Control("L", "depth L", min_depth, 20, 1, L),
            Control("K", "classes K", 2, 100, 1, K)]


def law_panel(max_E: float, xi: float = 0.3, n: int = 10, L: int = 6, alpha: float = 100.0, K: int = 3
              ) -> LiveExplorer:
    """Chapter 4's "what does the law predict" panel: type ``xi, alpha, n, L, K`` and ``max E``, read ``kappa`` and
    ``C_l`` and ``D_l`` per layer, with the formulas typeset."""
    return LiveExplorer(
        title="What does the law predict?",
        controls=law_controls(xi, alpha, n, L, K, min_depth=1)
        + [Control("max_E", "max E of the data", -0.5, 0.5, 0.0001, round(max_E, 4), digits=4)],
        curves=[Curve(laws.COMPRESSION, "Cₗ", upto="L", offset=-1),
                Curve(laws.DISCRIMINATION, "Dₗ", upto="L", offset=-1)],
        scalars=[(laws.KAPPA, "κ")],
        x_name="l", x_values=list(range(20)), x_label="layer l", kind="panel",
        caption=("Computed in your browser from the formulas above (generated from the sympy expressions this "
                 "chapter checks). The default max E is the recipe's data."),
    )
