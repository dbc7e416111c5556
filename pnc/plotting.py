"""House plotting style, notebook figure display, and the two-panel layerwise compression/discrimination plot.

Library code never calls ``plt.show()``; it returns figures. The fits drawn here live in :mod:`pnc.fits` (no
matplotlib needed); they are re-exported for convenience.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .fits import _xy, fit_geometric_rate, fit_linear

__all__ = [
    "COLORS",
    "enable_notebook_figures",
    "figure_png",
    "fit_geometric_rate",
    "fit_linear",
    "layerwise_plot",
    "use_style",
]

COLORS = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d5a97", "#30343f", "#e36414"]
"""Colour cycle (colour-blind friendly enough to tell neighbouring lines apart)."""


FIGURE_SCALE = 2
"""Pixels per CSS pixel of the PNG a notebook figure is shown as (2 = sharp on high-density screens)."""


def figure_png(fig: Figure, dpi: float | None = None, *, tight: bool = True) -> bytes:
    """PNG bytes of ``fig`` on an opaque white background (legible in dark mode too).

    ``dpi`` defaults to ``FIGURE_SCALE`` times the figure's own dpi; ``tight`` crops to the drawn content (explorer
    frames keep the full canvas so that every frame has the same size).
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi or FIGURE_SCALE * fig.dpi, bbox_inches="tight" if tight else None,
                facecolor="white")
    return buffer.getvalue()


def _png_with_width(fig: Figure) -> tuple[str, dict[str, int]]:
    """IPython ``image/png`` formatter: a 2x PNG (base64) whose displayed width is the figure's size in CSS pixels."""
    data = figure_png(fig)
    width = int.from_bytes(data[16:20], "big")  # PNG IHDR: width is bytes 16-19
    return base64.b64encode(data).decode("ascii"), {"width": width // FIGURE_SCALE}


def enable_notebook_figures() -> bool:
    """Let a bare ``matplotlib.figure.Figure`` display, and ``myst_nb.glue``, as a high-density PNG in IPython.

    Figures built with ``Figure()`` (not pyplot) in a kernel where no inline backend was activated have only a
    ``text/plain`` repr (``<Figure size ...>``), so a glued figure would render as that text. This registers an
    ``image/png`` formatter for :class:`~matplotlib.figure.Figure` on the running IPython shell. Returns False (and does
    nothing) outside IPython.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    formatters = shell.display_formatter.formatters
    for mime in ("image/svg+xml", "image/jpeg", "application/pdf"):
        formatters[mime].pop(Figure, None)
    formatters["image/png"].for_type(Figure, _png_with_width)
    return True


def use_style() -> None:
    """Apply the house matplotlib style (line width 2, readable fonts, no top/right spines).

    In a notebook it also makes figures display (and glue) as high-density PNGs: see :func:`enable_notebook_figures`.
    """
    enable_notebook_figures()
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
