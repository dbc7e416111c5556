"""House plotting style and the two-panel layerwise compression/discrimination plot.

Library code never calls ``plt.show()``; it returns figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["COLORS", "fit_geometric_rate", "fit_linear", "layerwise_plot", "use_style"]

COLORS = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d5a97", "#30343f", "#e36414"]
"""Colour cycle (colour-blind friendly enough to tell neighbouring lines apart)."""


def use_style() -> None:
    """Apply the house matplotlib style (line width 2, readable fonts, no top/right spines)."""
    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "figure.figsize": (6.4, 4.0),
            "figure.constrained_layout.use": True,
            "font.size": 12,
            "axes.titlesize": 13,
            "axes.labelsize": 12,
            "legend.fontsize": 10,
            "legend.frameon": False,
            "xtick.labelsize": 11,
            "ytick.labelsize": 11,
            "lines.linewidth": 2,
            "lines.markersize": 6,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.prop_cycle": mpl.cycler(color=COLORS),
        }
    )


def _xy(values: Sequence[float] | np.ndarray, layers: Sequence[float] | np.ndarray | None) -> tuple:
    v = np.asarray(values, dtype=np.float64).ravel()
    x = np.arange(v.shape[0], dtype=np.float64) if layers is None else np.asarray(layers, np.float64).ravel()
    if x.shape != v.shape:
        raise ValueError(f"layers has {x.shape[0]} entries but values has {v.shape[0]}")
    if v.shape[0] < 2:
        raise ValueError(f"need at least 2 values to fit, got {v.shape[0]}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite")
    return x, v


def _r2(v: np.ndarray, fitted: np.ndarray) -> float:
    ss_res = float(np.sum((v - fitted) ** 2))
    ss_tot = float(np.sum((v - v.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res <= 1e-30 else 0.0
    return 1.0 - ss_res / ss_tot


def fit_linear(
    values: Sequence[float] | np.ndarray, layers: Sequence[float] | np.ndarray | None = None
) -> tuple[float, float, float]:
    """Least-squares line ``values ~ slope * l + intercept``; returns ``(slope, intercept, r2)``.

    ``layers`` defaults to ``0, 1, ..., len(values) - 1``.
    """
    x, v = _xy(values, layers)
    slope, intercept = np.polyfit(x, v, 1)
    return float(slope), float(intercept), _r2(v, slope * x + intercept)


def fit_geometric_rate(
    values: Sequence[float] | np.ndarray, layers: Sequence[float] | np.ndarray | None = None
) -> tuple[float, float]:
    """Fit ``log10 values`` linearly in ``l`` (as the authors do); returns ``(ratio, r2)``.

    ``ratio = 10**slope`` is the fitted per-layer factor ``C_{l+1} / C_l``; ``r2`` is measured in log
    space. All values must be positive.
    """
    x, v = _xy(values, layers)
    if np.any(v <= 0):
        raise ValueError("fit_geometric_rate needs strictly positive values")
    slope, _, r2 = fit_linear(np.log10(v), x)
    return float(10.0**slope), r2


def layerwise_plot(
    compression: Sequence[float] | np.ndarray,
    discrimination: Sequence[float] | np.ndarray,
    theory_compression: Sequence[float] | np.ndarray | None = None,
    ax: Sequence[Axes] | None = None,
    layers: Sequence[float] | np.ndarray | None = None,
    label: str = "measured",
) -> Figure:
    """Two panels: ``C_l`` on a log axis with its fitted geometric rate, and ``D_l`` with its fitted slope.

    ``ax`` may be a pair of existing axes; otherwise a new figure is created. ``theory_compression``
    (same length) is overlaid as a dashed line. ``layers`` defaults to ``0, 1, ..., L-1``.
    """
    x, c = _xy(compression, layers)
    xd, d = _xy(discrimination, layers)
    if c.shape != d.shape:
        raise ValueError(
            f"compression and discrimination must have the same length, got {c.shape[0]} and {d.shape[0]}"
        )
    if ax is None:
        fig = Figure(figsize=(10, 4), layout="constrained")
        ax_c, ax_d = fig.subplots(1, 2)
    else:
        if len(ax) != 2:
            raise ValueError(f"ax must be a pair of axes, got {len(ax)}")
        ax_c, ax_d = ax
        fig = ax_c.get_figure()

    ratio, r2 = fit_geometric_rate(c, x)
    ax_c.semilogy(x, c, "o-", label=label)
    slope_log, icpt_log, _ = fit_linear(np.log10(c), x)
    ax_c.semilogy(x, 10.0 ** (slope_log * x + icpt_log), ":", color="0.4",
                  label=f"fit: ratio {ratio:.3g} ($R^2$={r2:.3f})")
    if theory_compression is not None:
        xt, t = _xy(theory_compression, x)
        ax_c.semilogy(xt, t, "--", label="theory")
    ax_c.set_xlabel("layer $l$")
    ax_c.set_ylabel(r"compression $C_l$")
    ax_c.set_title("within / between class variation")
    ax_c.legend()

    slope, icpt, r2d = fit_linear(d, xd)
    ax_d.plot(xd, d, "o-", label=label)
    ax_d.plot(xd, slope * xd + icpt, ":", color="0.4", label=f"fit: slope {slope:.3g} ($R^2$={r2d:.3f})")
    ax_d.set_xlabel("layer $l$")
    ax_d.set_ylabel(r"discrimination $D_l$")
    ax_d.set_title("1 - max cosine of class means")
    ax_d.legend()
    return fig
