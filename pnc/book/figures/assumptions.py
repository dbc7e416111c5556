"""Figures of chapter 5 (checking the assumptions): the reduced assumption check, the failure modes, explorer frames.

Every function returns a matplotlib :class:`~matplotlib.figure.Figure` and never calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, NullLocator

from pnc.plotting import COLORS

from ..assumptions import FAILURE_MODES, FailureRun

__all__ = ["assumption_check_figure", "failure_figure", "failure_frame", "failure_frame_limits"]

_CHECK_COLUMNS = ("panel", "L", "width", "seed", "rel_residual", "imbalance", "predicted_imbalance", "spread")


def assumption_check_figure(frame) -> Figure:
    """Two rows (depth panel, width panel) by three diagnostics, mean +- std over seeds as error bars.

    ``frame`` is the DataFrame of :func:`pnc.book.assumptions.assumption_check`. The imbalance panels add the
    gradient-flow prediction (dashed); the spread is on a log axis.
    """
    missing = [c for c in _CHECK_COLUMNS if c not in getattr(frame, "columns", ())]
    if missing:
        raise ValueError(f"frame lacks the columns {missing} (pass the result of assumption_check)")
    fig = Figure(figsize=(10, 5.6), layout="constrained")
    axes = fig.subplots(2, 3)
    for row, (panel, xcol, xlabel) in enumerate([("depth", "L", "depth $L$"), ("width", "width", "width $m$")]):
        sub = frame[frame["panel"] == panel]
        if sub.empty:
            raise ValueError(f"frame has no rows for the {panel} panel")
        cols = ["rel_residual", "imbalance", "predicted_imbalance", "spread"]
        stats = sub[[xcol, *cols]].groupby(xcol).agg(["mean", "std"]).fillna(0.0)
        x = stats.index.to_numpy()
        n_seeds = int(sub.groupby(xcol).size().min())
        for ax, col, label, log in [
            (axes[row, 0], "rel_residual", r"$\|W_{L:1}-YX^+/\alpha\|_F/\|YX^+/\alpha\|_F$", False),
            (axes[row, 1], "imbalance", "imbalance (mean over pairs)", False),
            (axes[row, 2], "spread", r"var. of middle $\sigma_i(W_l)$", True),
        ]:
            mean, std = stats[(col, "mean")].to_numpy(), stats[(col, "std")].to_numpy()
            if log:
                mean = np.maximum(mean, 1e-18)  # an exactly equal spectrum has variance 0
            ax.errorbar(x, mean, yerr=std, fmt="o-", color=COLORS[0], capsize=3, label=f"measured ({n_seeds} seeds)")
            if col == "imbalance":
                ax.plot(x, stats[("predicted_imbalance", "mean")].to_numpy(), "--", color=COLORS[1],
                        label="conserved initial imbalance")
                ax.legend(fontsize=9)
            if log:
                ax.set_yscale("log")
                ax.set_ylim(1e-18, 1e-6)
            else:
                ax.set_ylim(bottom=0.0)
            ax.set_xticks(x)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label, fontsize=10)
    return fig


def _runs_of(runs: Mapping[tuple[str, int], FailureRun], mode: str) -> list[FailureRun]:
    out = [runs[key] for key in sorted(k for k in runs if k[0] == mode)]
    if not out:
        raise ValueError(f"runs has no entries for mode {mode!r}")
    return out


def failure_figure(runs: Mapping[tuple[str, int], FailureRun]) -> Figure:
    """One panel per failure mode: measured ``(C_l / C_{l-1}) / kappa`` per layer for every severity (solid), and the
    same for the exact construction on the same data (dotted). 1 is the idealised law."""
    modes = [m for m in FAILURE_MODES if any(k[0] == m for k in runs)]
    if not modes:
        raise ValueError("runs holds no known failure mode")
    fig = Figure(figsize=(10, 6.4), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for ax, mode in zip(axes, modes, strict=False):
        for i, run in enumerate(_runs_of(runs, mode)):
            layers = np.arange(1, run.result.L)
            color = COLORS[i % len(COLORS)]
            ax.plot(layers, run.ratios_over_kappa, "o-", color=color, label=run.label())
            ax.plot(layers, run.construction_ratios_over_kappa, ":", color=color)
        ax.axhline(1.0, color="0.3", lw=1)
        ax.set_yscale("log")
        ax.set_ylim(0.18, 3.6)
        ax.set_yticks([0.25, 0.5, 1, 2], labels=["0.25", "0.5", "1", "2"])
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("layer $l$")
        ax.set_ylabel(r"$(C_l/C_{l-1})\,/\,\kappa$")
        ax.set_title(mode, loc="left", fontsize=11)
        ax.set_xticks(np.arange(1, runs[(mode, 0)].result.L))
        ax.legend(fontsize=8, loc="best", ncol=2)
    for ax in axes[len(modes):]:
        ax.set_visible(False)
    return fig


def failure_frame_limits(runs: Mapping[tuple[str, int], FailureRun]) -> dict[str, tuple[float, float]]:
    """Axis limits of :func:`failure_frame` that hold every run of ``runs``: ``layer`` (0..L-1), ``compression``
    (whole decades) and ``ratio`` (at least 0.15..4), each ``(low, high)``."""
    if not runs:
        raise ValueError("runs is empty")
    values = np.concatenate([np.r_[r.result.compression, r.construction, r.result.theory_compression]
                             for r in runs.values()])
    ratios = np.concatenate([np.r_[r.ratios_over_kappa, r.construction_ratios_over_kappa] for r in runs.values()])
    values, ratios = values[np.isfinite(values) & (values > 0)], ratios[np.isfinite(ratios) & (ratios > 0)]
    depth = max(int(r.result.L) for r in runs.values())
    return {"layer": (-0.4, depth - 0.6),
            "compression": (10.0 ** np.floor(np.log10(values.min())), 10.0 ** np.ceil(np.log10(values.max()))),
            "ratio": (min(0.15, ratios.min() / 1.2), max(4.0, ratios.max() * 1.2))}


def failure_frame(mode: str, severity: int, runs: Mapping[tuple[str, int], FailureRun]) -> Figure:
    """Explorer view for one failure run: ``C_l`` measured, the idealised law and the construction on the same data
    (left); the ratios over ``kappa`` (right); the setting and the diagnostics as two lines of text above. The axes
    hold every run of ``runs`` (:func:`failure_frame_limits`), so that views compare."""
    key = (mode, int(severity))
    if key not in runs:
        raise ValueError(f"no run for mode {mode!r} at severity {severity}")
    run = runs[key]
    r = run.result
    lim = failure_frame_limits(runs)
    layers = np.arange(r.L)
    fig = Figure(figsize=(6.4, 4.0), layout="none")  # fixed margins: a layout engine doubles the rendering time
    ax_c, ax_r = fig.subplots(1, 2, gridspec_kw={"left": 0.115, "right": 0.985, "bottom": 0.13, "top": 0.775,
                                                   "wspace": 0.34})
    hidden = r.imbalance[:-1] if len(r.imbalance) > 1 else r.imbalance
    middle = f"{np.mean(r.middle_sv):.3f}" if r.middle_sv else "n/a"
    fig.text(0.5, 0.985, f"{run.label()}: final loss {r.final_loss:.1e}, rel. residual {run.rel_residual:.2f}",
             ha="center", va="top")
    fig.text(0.5, 0.93, f"hidden imbalance {max(hidden):.3f}, middle singular value {middle}", ha="center",
             va="top")
    ax_c.semilogy(layers, r.theory_compression, "--", color=COLORS[1], label=r"law ($\kappa$)")
    ax_c.semilogy(layers, run.construction, ":", color=COLORS[3], label="construction, same data")
    ax_c.semilogy(layers, r.compression, "o-", color=COLORS[0], label="trained")
    fig.legend(loc="upper center", bbox_to_anchor=(0.5, 0.88), ncol=3, handlelength=1.6, columnspacing=1.2)
    ax_c.set_xlim(*lim["layer"])
    ax_c.set_ylim(*lim["compression"])
    ax_c.yaxis.set_major_locator(LogLocator(base=10, numticks=5))
    ax_c.yaxis.set_minor_locator(NullLocator())
    ax_c.set_xlabel("layer $l$")
    ax_c.set_ylabel("$C_l$")
    ax_r.plot(layers[1:], run.ratios_over_kappa, "o-", color=COLORS[0])
    ax_r.plot(layers[1:], run.construction_ratios_over_kappa, ":", color=COLORS[3])
    ax_r.axhline(1.0, color=COLORS[1], ls="--", lw=1.5)
    ax_r.set_yscale("log")
    ax_r.set_xlim(lim["layer"][0] + 1, lim["layer"][1])
    ax_r.set_ylim(*lim["ratio"])
    ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8) if lim["ratio"][0] <= t <= lim["ratio"][1]]
    ax_r.set_yticks(ticks, labels=[f"{t:g}" for t in ticks])
    ax_r.yaxis.set_minor_locator(NullLocator())
    ax_r.set_xlabel("layer $l$")
    ax_r.set_ylabel(r"$(C_l/C_{l-1})\,/\,\kappa$")
    return fig
