"""Figures of the chapter "Connections": neural collapse over training, data separation, coding rates, the tunnel
effect, Saxe's learning dynamics and the unconstrained-features model. Every function returns a matplotlib Figure
(never shows it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from pnc.plotting import COLORS, describe, fit_geometric_rate, fit_linear
from pnc.report import LayerReport
from pnc.theory import coding_rates_from_compression

from .. import laws
from ..connections import NeuralCollapse, RateLaw
from ..dynamics import ModeTrace
from ..live import Control, Curve, LiveExplorer, Measured
from ..ufm import UFMRun

__all__ = ["nc_trajectory_figure", "rate_law_figure", "saxe_explorer", "saxe_figure", "saxe_render", "saxe_trace",
           "separation_figure",
           "tunnel_figure", "ufm_figure"]


def _check_report(report: LayerReport, needed: Sequence[str]) -> None:
    if not isinstance(report, LayerReport):
        raise ValueError(f"report must be a LayerReport, got {type(report).__name__}")
    missing = [c for c in needed if c not in report.columns]
    if missing:
        raise ValueError(f"report lacks column(s) {missing}; use pnc.book.connections.layerwise_connections")
    if len(report) < 2:
        raise ValueError("report needs at least 2 layers")


def nc_trajectory_figure(epochs: Sequence[int], collapse: Sequence[NeuralCollapse]) -> Figure:
    """Left: NC1, NC2 (ETF error) and NC3 over training (log scale). Right: training error and NC4."""
    if len(epochs) != len(collapse) or len(epochs) < 2:
        raise ValueError(f"need as many (>= 2) epochs as measurements, got {len(epochs)} and {len(collapse)}")
    e = np.asarray(epochs, dtype=np.float64)
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_l, ax_r = fig.subplots(1, 2)
    for i, (key, label) in enumerate([("nc1", "NC1"), ("nc2", "NC2 (ETF error)"), ("nc3", "NC3 (self-duality)")]):
        ax_l.semilogy(e, [getattr(c, key) for c in collapse], "o-", color=COLORS[i], label=label)
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("distance to collapse")
    ax_l.legend()
    ax_r.plot(e, [100 * c.train_error for c in collapse], "o-", color=COLORS[3], label="training error")
    ax_r.plot(e, [100 * c.nc4 for c in collapse], "s--", color=COLORS[4], label="NC4: disagreement with NCC")
    ax_r.set_xlabel("epoch")
    ax_r.set_ylabel("% of training samples")
    ax_r.legend()
    return describe(fig, f"Over {int(e[0])} to {int(e[-1])} epochs NC1 goes from {collapse[0].nc1:.3g} to "
                         f"{collapse[-1].nc1:.3g}, NC2 from {collapse[0].nc2:.3g} to {collapse[-1].nc2:.3g} and NC3 "
                         f"from {collapse[0].nc3:.3g} to {collapse[-1].nc3:.3g}; the training error ends at "
                         f"{100 * collapse[-1].train_error:.1f} %")


def separation_figure(report: LayerReport) -> Figure:
    """Left: He & Su's fuzziness per layer (log scale) with its geometric fit. Right: coding rates per layer."""
    _check_report(report, ("layer", "fuzziness", "rate", "class_rate", "rate_reduction"))
    layers = report.column("layer")
    fuzz = report.column("fuzziness")
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_l, ax_r = fig.subplots(1, 2)
    ratio, r2 = fit_geometric_rate(fuzz, layers)
    slope, icpt, _ = fit_linear(np.log10(fuzz), layers)
    ax_l.semilogy(layers, fuzz, "o-", color=COLORS[0], label="measured")
    ax_l.semilogy(layers, 10.0 ** (slope * layers + icpt), "--", color="0.4",
                  label=f"fit: ratio {ratio:.3g} ($R^2$={r2:.3f})")
    ax_l.set_xlabel("layer $l$")
    ax_l.set_ylabel(r"fuzziness $\mathrm{Tr}(SS_w SS_b^+)$")
    ax_l.legend()
    ax_r.plot(layers, report.column("rate"), "o-", color=COLORS[1], label=r"$R$ (all samples)")
    ax_r.plot(layers, report.column("class_rate"), "s-", color=COLORS[2], label=r"$R^c$ (per class)")
    ax_r.plot(layers, report.column("rate_reduction"), "^-", color=COLORS[3], label=r"$\Delta R=R-R^c$")
    ax_r.set_xlabel("layer $l$")
    ax_r.set_ylabel("nats")
    ax_r.legend()
    return describe(fig, f"He and Su's fuzziness falls geometrically through the layers, by a ratio of {ratio:.3g} "
                         f"per layer (R^2 {r2:.3f}), from {fuzz[0]:.3g} to {fuzz[-1]:.3g}")


def tunnel_figure(report: LayerReport) -> Figure:
    """Left: numerical rank per layer. Right: linear-probe accuracy (train and held out) per layer."""
    _check_report(report, ("layer", "numerical_rank", "probe_train", "probe_test"))
    layers = report.column("layer")
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_l, ax_r = fig.subplots(1, 2)
    ax_l.plot(layers, report.column("numerical_rank"), "o-", color=COLORS[0])
    ax_l.set_xlabel("layer $l$")
    ax_l.set_ylabel("numerical rank (95 %)")
    ax_r.plot(layers, 100 * report.column("probe_train"), "o-", color=COLORS[1], label="probe, train split")
    ax_r.plot(layers, 100 * report.column("probe_test"), "s-", color=COLORS[2], label="probe, held out")
    ax_r.set_xlabel("layer $l$")
    ax_r.set_ylabel("accuracy (%)")
    ax_r.legend()
    rank, test = report.column("numerical_rank"), 100 * report.column("probe_test")
    return describe(fig, f"The numerical rank goes from {rank[0]:.0f} at the input to {rank[-1]:.0f} at the last "
                         f"layer, while the held-out probe accuracy peaks at {test.max():.1f} % at layer "
                         f"{int(layers[int(np.argmax(test))])}")


def saxe_figure(trace: ModeTrace, figsize: tuple[float, float] = (6.4, 3.4), u_max: float | None = None,
                t_max: float | None = None) -> Figure:
    """Mode strengths of a trained two-layer linear network (markers) and Saxe's closed form (dashed).

    The strength axis runs to ``u_max`` (default: the largest target ``s``) and the step axis to ``t_max`` (default:
    the last step), so that several traces can share their axes; the legend sits above the axes.
    """
    if not isinstance(trace, ModeTrace):
        raise ValueError(f"trace must be a ModeTrace, got {type(trace).__name__}")
    top = float(trace.s.max() if u_max is None else u_max)
    if not np.isfinite(top) or top <= 0:
        raise ValueError(f"u_max must be > 0, got {u_max}")
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    for i, s in enumerate(trace.s):
        color = COLORS[i % len(COLORS)]
        ax.plot(trace.steps, trace.measured[:, i], "o", ms=4, color=color, label=f"$\\sigma_{i + 1}$ = {s:.3g}")
        ax.plot(trace.steps, trace.theory[:, i], "--", color=color, lw=1.5)
    ax.plot([], [], "--", color="0.4", lw=1.5, label="closed form")
    ax.set_xlabel("gradient-descent step $t$")
    ax.set_ylabel("mode strength $u_i(t)$")
    ax.set_xlim(0, float(trace.steps.max() if t_max is None else t_max))
    ax.set_ylim(-0.05 * top, 1.08 * top)
    fig.legend(loc="outside upper center", ncol=len(trace.s) + 1, handlelength=1.5, columnspacing=1.2)
    return fig


def saxe_render(
    xi: float,
    counts: Sequence[int],
    tau: float = 100.0,
    steps: int = 300,
    every: int = 6,
    width: int = 32,
    dim: int = 64,
    seed: int = 0,
    u_max: float | None = None,
) -> Figure:
    """Train a two-layer linear network on orthonormal data with class sizes ``counts`` and plot its modes.

    The learning rate is chosen so that one step is ``1/tau`` of Saxe's time unit (``lr = N / (2 tau)``); the
    initialisation is pnc's scaled orthogonal one with scale ``xi``. Used by the chapter's explorer, which passes
    the same ``u_max`` (the largest ``sigma_k = sqrt(n_k)`` of its grid) to every view so that they share their axes;
    by default the axis fits ``sqrt(max(counts))``. The step axis always runs from 0 to ``steps``.
    """
    trace = saxe_trace(xi, counts, tau=tau, steps=steps, every=every, width=width, dim=dim, seed=seed)
    return saxe_figure(trace, u_max=float(np.sqrt(max(counts))) if u_max is None else u_max, t_max=steps)


def saxe_trace(xi: float, counts: Sequence[int], tau: float = 100.0, steps: int = 300, every: int = 6,
               width: int = 32, dim: int = 64, seed: int = 0) -> ModeTrace:
    """The modes of the two-layer network :func:`saxe_render` trains (class sizes ``counts``, init scale ``xi``)."""
    from pnc.data import orthogonal_dataset
    from pnc.models import DeepLinearNetwork

    from ..dynamics import trace_modes

    counts = [int(c) for c in counts]
    X, y = orthogonal_dataset(counts, len(counts), dim=dim, perturbation=0.0, seed=seed)
    net = DeepLinearNetwork(dim, width, len(counts), depth=2, init="orthogonal", xi=xi, seed=seed)
    return trace_modes(net, X, y, lr=X.shape[0] / (2.0 * tau), steps=steps, every=every)


def saxe_explorer(traces: Mapping[tuple[int, ...], ModeTrace], xi: float, tau: float = 100.0, steps: int = 300,
                  every: int = 10, u0: float = 0.01) -> LiveExplorer:
    """Chapter 9's continuous explorer: Saxe's closed form :data:`pnc.book.laws.SAXE` for three modes, computed in
    the page for any singular values ``sigma_k``, initial strength ``u_0`` and time constant ``vartheta``; the
    measured modes of the networks in ``traces`` (keyed by class sizes, trained at ``xi`` and ``tau``) appear at
    their ``sigma_k = sqrt(n_k)``, whatever ``u_0`` (move it to fit them)."""
    measured = []
    for counts, trace in sorted(traces.items()):
        sig = sorted((float(np.sqrt(c)) for c in counts), reverse=True)
        when = {"sigma_1": sig[0], "sigma_2": sig[1], "sigma_3": sig[2], "vartheta": tau}
        for k in range(3):
            measured.append(Measured(when, [float(v) for v in trace.steps],
                                     [float(v) for v in trace.measured[:, k]], label=f"trained σ{'₁₂₃'[k]}"))
    top = max(max(np.sqrt(c)) for c in traces)
    defaults = sorted((float(np.sqrt(c)) for c in sorted(traces)[len(traces) // 2]), reverse=True)
    return LiveExplorer(
        title="Saxe dynamics: closed form (dashed) and trained two-layer networks (points)",
        controls=[Control("sigma_1", "σ₁", 0.5, 7.0, 0.01, round(defaults[0], 2), digits=2),
                  Control("sigma_2", "σ₂", 0.5, 7.0, 0.01, round(defaults[1], 2), digits=2),
                  Control("sigma_3", "σ₃", 0.5, 7.0, 0.01, round(defaults[2], 2), digits=2),
                  Control("u_0", "initial strength u₀", 0.001, 0.3, 0.001, u0),
                  Control("vartheta", "time constant ϑ (steps)", 20, 300, 1, tau)],
        curves=[Curve(laws.SAXE, f"u{'₁₂₃'[k]}(t)", bind={"sigma": f"sigma_{k + 1}"}) for k in range(3)],
        x_name="t", x_values=[float(v) for v in range(0, steps + 1, every)], x_label="gradient-descent step t",
        y_label="mode strength u(t)", y_range=(-0.05 * 7.0, 1.08 * 7.0), measured=measured,
        caption=(f"The curves are computed in your browser from the closed form. Points: two-layer networks trained "
                 f"from init scale ξ = {xi:g} with ϑ = {tau:g} steps and class sizes "
                 + ", ".join("(" + ", ".join(map(str, c)) + ")" for c in sorted(traces))
                 + f", so σ_k = √n_k (largest {top:g}); set the σ_k to see them and move u₀ to fit them."),
    )


def rate_law_figure(law: RateLaw, n_grid: int = 200) -> Figure:
    """Left: measured ``R``, ``R^c``, ``Delta R`` per layer (markers) against the idealised closed form from the
    recipe's knobs (lines) and the collapsed limit ``C -> 0`` (dotted). Right: the same measurements against their
    measured ``C_l`` (log scale), with the closed form as a function of ``C`` alone
    (:func:`pnc.theory.coding_rates_from_compression`)."""
    if not isinstance(law, RateLaw):
        raise ValueError(f"law must be a RateLaw (pnc.book.connections.rate_law), got {type(law).__name__}")
    if n_grid < 2:
        raise ValueError(f"n_grid must be >= 2, got {n_grid}")
    layers = law.layers
    grid = np.logspace(np.log10(law.compression.min()) - 2, np.log10(law.compression.max()), n_grid)
    curve = coding_rates_from_compression(grid, law.n, law.K, width=law.width, eps_sq=law.eps_sq)
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_l, ax_r = fig.subplots(1, 2)
    entries = [("rate", "o", r"$R$"), ("class_rate", "s", r"$R^c$"), ("rate_reduction", "^", r"$\Delta R$")]
    for i, (name, marker, label) in enumerate(entries):
        color = COLORS[i + 1]
        ax_l.plot(layers, getattr(law.measured, name), marker, color=color, label=f"{label} trained")
        ax_l.plot(layers, getattr(law.predicted, name), "-", color=color, label=f"{label} closed form")
        ax_r.semilogx(law.compression, getattr(law.measured, name), marker, color=color)
        ax_r.semilogx(grid, getattr(curve, name), "-", color=color)
        for ax in (ax_l, ax_r):
            ax.axhline(getattr(law.collapsed, name), ls=":", color=color, lw=1)
    ax_l.set_xlabel("layer $l$")
    ax_l.set_ylabel("nats")
    ax_l.legend(loc="upper right", fontsize="small")
    ax_r.set_xlabel(r"compression $C_l$ (measured)")
    ax_r.set_ylabel("nats")
    ax_r.invert_xaxis()  # deeper layers (smaller C) to the right, as on the left
    return fig


def ufm_figure(runs: dict[str, UFMRun], deep: UFMRun, steps: Sequence[int], floor: float = 1e-32) -> Figure:
    """Left and middle: compression $C$ and NC2 (ETF error) of the free features over gradient descent, one line per
    run (log scales). Right: $C_l$ per layer of the deep UFM ``deep`` at the given ``steps`` (log scale). Values
    below ``floor`` (rounding: exactly collapsed features) are drawn at ``floor``."""
    if not runs or not all(isinstance(r, UFMRun) for r in runs.values()) or not isinstance(deep, UFMRun):
        raise ValueError("runs must be a non-empty {label: UFMRun} dict and deep a UFMRun")
    if deep.depth < 2:
        raise ValueError(f"deep must be a deep UFM run (depth >= 2), got depth {deep.depth}")
    recorded = {s.step: s for s in deep.snapshots}
    missing = [t for t in steps if t not in recorded]
    if not steps or missing:
        raise ValueError(f"steps {missing or list(steps)} not recorded in the deep run (recorded: {sorted(recorded)})")
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    ax_c, ax_e, ax_r = fig.subplots(1, 3)
    for i, (label, run) in enumerate(runs.items()):
        t = np.array([max(s.step, 1) for s in run.snapshots], dtype=np.float64)
        style = dict(color=COLORS[i % len(COLORS)], marker="o" if run.depth == 1 else "s",
                     ls="-" if run.depth == 1 else "--", label=label)
        ax_c.loglog(t, np.maximum([s.compression for s in run.snapshots], floor), **style)
        ax_e.loglog(t, np.maximum([s.nc2 for s in run.snapshots], floor), **style)
    ax_c.axhline(floor, color="0.6", lw=0.8, ls=":")
    ax_c.set_ylabel("$C$ of the free features $\\Theta$")
    ax_e.set_ylabel("NC2 (ETF error) of $\\Theta$")
    for ax in (ax_c, ax_e):
        ax.set_xlabel("gradient step (step 0 at 1)")
    ax_e.legend(fontsize="small")
    layers = np.arange(deep.depth)
    for i, t in enumerate(steps):
        ax_r.semilogy(layers, recorded[t].layer_compression, "o-", color=COLORS[i % len(COLORS)], label=f"step {t}")
    ax_r.set_xticks(layers)
    ax_r.set_xlabel("layer $l$ (0: $\\Theta$; $l$: $W_l\\cdots W_1\\Theta$)")
    ax_r.set_ylabel("$C_l$ of the deep UFM")
    ax_r.legend(fontsize="small")
    return fig
