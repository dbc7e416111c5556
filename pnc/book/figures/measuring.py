"""Figures for the chapter *Measuring compression and discrimination* (house style from :mod:`pnc.plotting`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from pnc.plotting import COLORS

from .. import laws
from ..live import Control, Curve, LiveExplorer, Measured
from ..measuring import metric_summary, structured_mixture

__all__ = ["MIXTURE_LIMIT", "between_plane", "compression_explorer", "mixture_view", "noise_geometry_figure",
           "render_mixture"]


def between_plane(features: Any, labels: Any) -> np.ndarray:
    """Coordinates (N×2) of the features in the plane of the two leading centred class-mean directions."""
    x = np.asarray(features.detach().cpu().numpy() if hasattr(features, "detach") else features, dtype=np.float64)
    y = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"features must be (N, d) with N = len(labels), got {x.shape} and {y.shape}")
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError("need at least 2 classes")
    means = np.stack([x[y == c].mean(axis=0) for c in classes])
    centred = means - means.mean(axis=0)
    vt = np.linalg.svd(centred, full_matrices=False)[2]
    basis = vt[:2] if vt.shape[0] >= 2 else np.vstack([vt[0], np.zeros_like(vt[0])])
    return (x - means.mean(axis=0)) @ basis.T


def _short(value: float) -> str:
    """Two significant digits in at most six characters (``0.087``, ``45``, ``3.4e-4``) for a bar label."""
    if value == 0 or 0.01 <= abs(value) < 1000:
        return f"{value:.2g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


MIXTURE_LIMIT = 6.0
"""Half-width of the scatter axes of :func:`render_mixture`: holds the chapter's widest mixture (ζ = 4, ω = 0.8)."""


def mixture_view(features: Any, labels: Any, metrics: Mapping[str, float] | None = None,
                 limit: float | None = None) -> Figure:
    """Left: the features in the between-class plane; right: bars of C, NC1, CDNV (log axis) and D.

    ``limit`` fixes the scatter axes to ``[-limit, limit]`` in both directions (so that views of different mixtures
    share their axes); by default they fit the data.
    """
    pts = between_plane(features, labels)
    y = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels)
    m = dict(metrics) if metrics is not None else metric_summary(features, labels)
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax_s, ax_b = fig.subplots(1, 2, gridspec_kw={"width_ratios": [0.9, 1.1]})
    for j, c in enumerate(np.unique(y)):
        ax_s.scatter(*pts[y == c].T, s=8, alpha=0.6, color=COLORS[j % len(COLORS)], label=f"class {c}")
    if limit is not None:
        limit = float(limit)
        if not np.isfinite(limit) or limit <= 0:
            raise ValueError(f"limit must be > 0, got {limit}")
        ax_s.set_xlim(-limit, limit)
        ax_s.set_ylim(-limit, limit)
        ax_s.set_aspect("equal", adjustable="box")
        for axis in (ax_s.xaxis, ax_s.yaxis):
            axis.set_major_locator(MaxNLocator(4, integer=limit >= 2))
    else:
        ax_s.set_aspect("equal", adjustable="datalim")
    ax_s.set_xlabel("between-class dir. 1")
    ax_s.set_ylabel("direction 2")
    names = ["C", "NC1", "CDNV", "D"]
    vals = [max(float(m[k]), 1e-6) for k in names]
    bars = ax_b.bar(names, vals, color=[COLORS[0], COLORS[1], COLORS[3], COLORS[2]])
    ax_b.set_yscale("log")
    ax_b.set_ylim(1e-4, 1e3)
    ax_b.set_yticks([1e-4, 1e-2, 1e0, 1e2])
    ax_b.yaxis.set_minor_locator(NullLocator())
    for bar, k in zip(bars, names, strict=True):
        ax_b.text(bar.get_x() + bar.get_width() / 2, max(bar.get_height(), 1e-4) * 1.3, _short(float(m[k])),
                  ha="center", va="bottom")
    ax_b.set_ylabel("value (log scale)")
    return fig


def render_mixture(
    within_std: float, class_separation: float, n_per_class: int = 60, n_classes: int = 3, dim: int = 20,
    seed: int = 0, limit: float | None = MIXTURE_LIMIT,
) -> Figure:
    """Explorer frame: an isotropic mixture (:func:`pnc.book.measuring.structured_mixture`) and its metrics.

    The scatter axes are ``[-limit, limit]`` whatever the mixture, so that the cloud visibly grows with ``within_std``
    and the means move apart with ``class_separation``; ``limit=None`` fits them to the data.
    """
    X, y = structured_mixture(n_per_class, n_classes, dim, class_separation, within_std, noise="isotropic",
                              recentre=False, seed=seed)
    return mixture_view(X, y, limit=limit)


def noise_geometry_figure(samples: Mapping[str, tuple[Any, Any]], metrics: Mapping[str, Mapping[str, float]],
                          kinds: Sequence[str] | None = None) -> Figure:
    """One panel per noise kind: the first between-class direction against the direction of largest
    within-class variance orthogonal to it, annotated with C and NC1."""
    kinds = list(kinds or samples)
    if not kinds or any(k not in samples or k not in metrics for k in kinds):
        raise ValueError(f"samples and metrics must both contain every kind in {kinds}")
    fig = Figure(figsize=(9.0, 3.1), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(kinds), sharex=True, sharey=True))
    for ax, kind in zip(axes, kinds, strict=True):
        X, y = samples[kind]
        x = np.asarray(X.detach().cpu().numpy() if hasattr(X, "detach") else X, dtype=np.float64)
        yy = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
        means = np.stack([x[yy == c].mean(axis=0) for c in np.unique(yy)])
        centre = means.mean(axis=0)
        b = np.linalg.svd(means - centre, full_matrices=False)[2][0]
        resid = x - means[yy]
        resid -= np.outer(resid @ b, b)
        w = np.linalg.svd(resid, full_matrices=False)[2][0]
        pts = np.column_stack([(x - centre) @ b, (x - centre) @ w])
        for j, c in enumerate(np.unique(yy)):
            ax.scatter(*pts[yy == c].T, s=8, alpha=0.6, color=COLORS[j % len(COLORS)])
        m = metrics[kind]
        ax.text(0.03, 0.97, f"{kind}\nC = {m['C']:.3g}\nNC1 = {abs(m['NC1']):.3g}", transform=ax.transAxes,
                va="top", fontsize=9)
        ax.set_xlabel("between-class direction")
    axes[0].set_ylabel("top within-class direction (perp.)")
    return fig


def compression_explorer(n: int = 50, K: int = 3, m: int = 20, zeta: float = 1.0,
                         omegas: Sequence[float] = (0.05, 0.1, 0.2, 0.4, 0.8), seeds: int = 10) -> LiveExplorer:
    """Chapter 2's continuous explorer: the expected compression ``C_bar`` of an isotropic Gaussian mixture
    (:data:`pnc.book.laws.MIXTURE_COMPRESSION`) against the within-class spread ``omega``, computed in the page for any
    ``zeta``, ``n``, ``K`` and ``m``; the mean ``C`` of ``seeds`` sampled mixtures at each of ``omegas`` (at ``n``,
    ``K``, ``m``, ``zeta``) appears as points."""
    from pnc import compression
    from pnc.data import gaussian_mixture

    xs = [round(0.01 * i, 2) for i in range(1, 101)]  # omega = 0.01 .. 1.0
    means = []
    for w in omegas:
        if not any(abs(float(w) - x) < 1e-9 for x in xs):
            raise ValueError(f"omega {w} is not on the explorer's grid of 0.01 steps")
        means.append(float(np.mean([compression(*gaussian_mixture(n, K, m, zeta, float(w), seed=seed))
                                    for seed in range(seeds)])))
    return LiveExplorer(
        title="Expected compression of a Gaussian mixture (line) and sampled mixtures (points)",
        controls=[Control("zeta", "separation ζ", 0.1, 4.0, 0.01, zeta, digits=2),
                  Control("n", "samples per class n", 2, 500, 1, n),
                  Control("K", "classes K", 2, 20, 1, K),
                  Control("m", "dimension m", 1, 200, 1, m)],
        curves=[Curve(laws.MIXTURE_COMPRESSION, "C̄", dash=False)],
        x_name="omega", x_values=xs, x_label="within spread ω", y_label="C (log scale)", y_log=True,
        y_range=(1e-4, 1e2),
        measured=[Measured({"zeta": zeta, "n": n, "K": K, "m": m}, [round(float(w), 2) for w in omegas], means,
                           label=f"mean C of {seeds} samples")],
        caption=(f"The line is computed in your browser from the closed form. Points: the mean C of {seeds} sampled "
                 f"mixtures at each ω (n = {n}, K = {K}, m = {m}, ζ = {zeta:g}); set those values to see them."),
    )
