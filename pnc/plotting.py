"""House plotting style, notebook figure display, the figures' alternative text and data, and the two-panel
layerwise compression/discrimination plot.

Library code never calls ``plt.show()``; it returns figures. The fits drawn here live in :mod:`pnc.fits` (no
matplotlib needed); they are re-exported for convenience.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .fits import fit_geometric_rate, fit_linear, layer_points

__all__ = [
    "COLORS",
    "alt_text",
    "data_csv",
    "data_html",
    "data_tables",
    "describe",
    "enable_notebook_figures",
    "figure_html",
    "figure_png",
    "figure_series",
    "fit_geometric_rate",
    "fit_linear",
    "layerwise_plot",
    "plain_text",
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


def _png_with_width(fig: Figure) -> tuple[str, dict[str, int | str]]:
    """IPython ``image/png`` formatter: a 2x PNG (base64) whose displayed width is the figure's size in CSS pixels,
    with the figure's alternative text in the metadata (for exporters; the site uses :func:`_figure_html`)."""
    data = fig.__dict__.pop("_pnc_png", None) or figure_png(fig)
    width = int.from_bytes(data[16:20], "big")  # PNG IHDR: width is bytes 16-19
    return base64.b64encode(data).decode("ascii"), {"width": width // FIGURE_SCALE, "alt": alt_text(fig)}


def _figure_html(fig: Figure) -> str:
    """IPython ``text/html`` formatter: :func:`figure_html` (the image with its alt text and its data). The PNG is
    kept for the ``image/png`` formatter that runs next (the PDF and plain notebook viewers use that one)."""
    data = figure_png(fig)
    fig._pnc_png = data
    return figure_html(fig, data)


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
    formatters["text/html"].for_type(Figure, _figure_html)
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
    x, c = layer_points(compression, layers)
    xd, d = layer_points(discrimination, layers)
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
        xt, t = layer_points(theory_compression, x)
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
    return describe(fig, f"Compression C_l falls from {_num(c[0])} to {_num(c[-1])} over layers {_num(x[0])} to "
                         f"{_num(x[-1])}, a geometric rate of {ratio:.3g} per layer (R^2 {r2:.3f}), while "
                         f"discrimination D_l goes from {_num(d[0])} to {_num(d[-1])}")


# ---------------------------------------------------------------------------------------------------- accessibility
# One mechanism gives every figure of the book (glued, displayed, or an explorer frame) its alternative text and the
# numbers behind it: :func:`describe` attaches a sentence saying what the figure shows; :func:`figure_series` reads the
# plotted data back from the figure's artists; :func:`alt_text` and :func:`data_tables` are written from those; and
# :func:`figure_html` is the HTML a page shows (the image with its alt text and a folded "Data" table with a CSV
# download), used by the notebook display formatter and by :mod:`pnc.book.widgets` for every explorer frame.

MAX_SERIES_IN_ALT = 4
"""Series named per panel in the alternative text; the rest are counted (the data table has them all)."""

MAX_TABLE_ROWS = 40
"""Rows shown per data table on the page; the CSV download holds every row."""

_GREEK = {name: chr(code) for name, code in [
    ("alpha", 945), ("beta", 946), ("gamma", 947), ("delta", 948), ("epsilon", 949), ("varepsilon", 949),
    ("zeta", 950), ("eta", 951), ("theta", 952), ("vartheta", 977), ("iota", 953), ("kappa", 954), ("lambda", 955),
    ("mu", 956), ("nu", 957), ("xi", 958), ("pi", 960), ("rho", 961), ("sigma", 963), ("tau", 964),
    ("phi", 966), ("varphi", 966), ("chi", 967), ("psi", 968), ("omega", 969), ("Gamma", 915), ("Delta", 916),
    ("Theta", 920), ("Lambda", 923), ("Sigma", 931), ("Phi", 934), ("Psi", 936), ("Omega", 937)]}
_SYMBOLS = {"lVert": "‖", "rVert": "‖", "Vert": "‖", "|": "‖", "cdot": "·", "times": "×", "leq": "≤", "le": "≤",
            "geq": "≥", "ge": "≥", "to": "→", "sqrt": "√", "ell": "ℓ", "approx": "≈", "infty": "∞", "pm": "±",
            "max": "max", "min": "min", "log": "log", "top": "ᵀ", ",": " ", ";": " ", " ": " ", "!": "", "%": "%"}


def plain_text(label: str) -> str:
    """A matplotlib label with its mathtext made readable as plain text (``r"$\\lVert\\Gamma_l\\rVert_F$"`` ->
    ``"‖Γ_l‖_F"``), for alternative text and table headers."""
    def command(match: re.Match) -> str:
        name = match.group(1)
        return _GREEK.get(name) or _SYMBOLS.get(name, name)

    text = label.replace("$", "")
    text = re.sub(r"([_^])\{([^{}]{2,})\}", r"\1(\2)", text)  # C_{l-1} -> C_(l-1)
    text = re.sub(r"\\(?:mathrm|mathbf|mathit|text|operatorname|mathcal|bar|hat|tilde)\s*\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\([A-Za-z]+|[|,; !%])", command, text)
    text = text.replace("{", "").replace("}", "").replace("\\", "")
    return re.sub(r"\s+", " ", text).strip()


def _num(value: float) -> str:
    """A number as the alternative text and the tables print it (3 significant digits in the text)."""
    if not np.isfinite(value):
        return "not a number" if np.isnan(value) else ("infinity" if value > 0 else "minus infinity")
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3g}".replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")
    return f"{value:.3g}"


@dataclass
class Series:
    """One plotted data series read back from a figure: ``x`` and ``y`` as drawn (data coordinates)."""

    label: str
    kind: str
    """``"line"``, ``"points"``, ``"scatter"``, ``"bars"``, ``"hline"`` (a reference level) or ``"vline"``."""
    x: np.ndarray
    y: np.ndarray
    names: list[str] | None = None
    """Category names of bars (the tick labels at their positions), if the axis is categorical."""


@dataclass
class Panel:
    """One axes of a figure: its title, axis labels and scales, and the series drawn in it."""

    title: str
    xlabel: str
    ylabel: str
    xlog: bool
    ylog: bool
    series: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Text written on the panel (annotations such as ``"C = 0.5"``), as plain text."""
    bands: int = 0
    """Shaded regions (``fill_between``, ``axvspan``) drawn in it."""
    images: list[np.ndarray] = field(default_factory=list)
    """Heat maps (``imshow``) drawn in it."""

    @property
    def name(self) -> str:
        return self.title or (f"{self.ylabel} against {self.xlabel}" if self.ylabel and self.xlabel else "panel")


def _as_float(values) -> np.ndarray:
    array = np.ma.filled(np.ma.asarray(values, dtype=float), np.nan)
    return np.asarray(array, dtype=float).ravel()


def figure_series(fig: Figure) -> list[Panel]:
    """The panels of ``fig`` and the data drawn in each, read back from its lines, scatters, bars and images."""
    from matplotlib.collections import PathCollection, PolyCollection
    from matplotlib.container import BarContainer
    from matplotlib.image import AxesImage

    panels = []
    for ax in fig.axes:
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        title = " ".join(t for t in (ax.get_title("left"), ax.get_title(), ax.get_title("right")) if t)
        panel = Panel(title=plain_text(title), xlabel=plain_text(ax.get_xlabel()), ylabel=plain_text(ax.get_ylabel()),
                      xlog=ax.get_xscale() in ("log", "symlog"), ylog=ax.get_yscale() in ("log", "symlog"))
        panel.notes = [plain_text(t.get_text()) for t in ax.texts if t.get_visible() and t.get_text().strip()]
        unnamed = 0

        def name(label: str) -> str:
            nonlocal unnamed
            if label and not label.startswith("_"):
                return plain_text(label)
            unnamed += 1
            return f"series {unnamed}"

        in_bars = {id(p) for c in ax.containers if isinstance(c, BarContainer) for p in c.patches}
        for line in ax.get_lines():
            if not line.get_visible():
                continue
            x, y = _as_float(line.get_xdata()), _as_float(line.get_ydata())
            if x.size == 0:
                continue
            if line.get_transform() is not ax.transData and x.size == 2:
                # axhline / axvline: one coordinate is in axes units
                if np.allclose(y, y[0]) and not np.allclose(x, x[0]):
                    panel.series.append(Series(name(line.get_label()), "hline", x[:1] * np.nan, y[:1]))
                    continue
                if np.allclose(x, x[0]):
                    panel.series.append(Series(name(line.get_label()), "vline", x[:1], y[:1] * np.nan))
                    continue
            drawn = line.get_linestyle() not in ("None", "", " ", "none")
            panel.series.append(Series(name(line.get_label()), "line" if drawn else "points", x, y))
        for collection in ax.collections:
            if not collection.get_visible():
                continue
            if isinstance(collection, PathCollection):
                offsets = np.asarray(collection.get_offsets(), dtype=float)
                if offsets.size:
                    panel.series.append(Series(name(collection.get_label()), "scatter", offsets[:, 0], offsets[:, 1]))
            elif isinstance(collection, PolyCollection):
                panel.bands += 1
        for container in ax.containers:
            if isinstance(container, BarContainer):
                patches = list(container.patches)
                vertical = container.orientation != "horizontal"
                pos = [p.get_x() + p.get_width() / 2 if vertical else p.get_y() + p.get_height() / 2 for p in patches]
                size = [p.get_height() if vertical else p.get_width() for p in patches]
                ticks = ax.get_xticks() if vertical else ax.get_yticks()
                labels = [t.get_text() for t in (ax.get_xticklabels() if vertical else ax.get_yticklabels())]
                where = {round(float(t), 6): plain_text(text) for t, text in zip(ticks, labels, strict=False) if text}
                names = [where.get(round(float(v), 6), "") for v in pos]
                categorical = all(names) and not all(_is_number(n) for n in names)
                x, y = (pos, size) if vertical else (size, pos)
                panel.series.append(Series(name(container.get_label()), "bars", _as_float(x), _as_float(y),
                                           names if categorical else None))
        panel.bands += sum(1 for p in ax.patches if id(p) not in in_bars and p.get_visible())
        panel.images = [np.asarray(im.get_array(), dtype=float) for im in ax.get_images() if isinstance(im, AxesImage)]
        if panel.series or panel.images:
            panels.append(panel)
    return panels


def _is_number(text: str) -> bool:
    try:
        float(text.replace("−", "-"))
    except ValueError:
        return False
    return True


def describe(fig: Figure, summary: str = "", *, alt: str | None = None) -> Figure:
    """Attach to ``fig`` the one thing it shows (``summary``, a sentence with its key numbers), which opens its
    alternative text; ``alt`` replaces the whole generated text. Returns ``fig``, so a builder can end with
    ``return describe(fig, ...)``."""
    fig._pnc_summary = summary.strip()
    fig._pnc_alt = alt
    return fig


def _trend(s: Series, panel: Panel) -> str:
    finite = np.isfinite(s.y) & np.isfinite(s.x)
    x, y = s.x[finite], s.y[finite]
    if s.kind == "hline":
        return f"{s.label}: a reference level at {_num(float(s.y[0]))}"
    if s.kind == "vline":
        return f"{s.label}: a vertical marker at {panel.xlabel or 'x'} = {_num(float(s.x[0]))}"
    if y.size == 0:
        return f"{s.label}: no finite values"
    if s.kind == "scatter":
        return (f"{s.label}: {y.size} points, {panel.xlabel or 'x'} from {_num(x.min())} to {_num(x.max())}, "
                f"{panel.ylabel or 'y'} from {_num(y.min())} to {_num(y.max())}")
    if s.kind == "bars" and s.names:
        return f"{s.label}: " + ", ".join(f"{n} {_num(v)}" for n, v in zip(s.names, s.y, strict=True))
    if s.kind == "bars":
        top = int(np.argmax(y))
        return f"{s.label}: {y.size} bars from {_num(y.min())} to {_num(y.max())} (highest at {_num(x[top])})"
    if y.size == 1:
        return f"{s.label}: {_num(y[0])} at {_num(x[0])}"
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    at = f"at {panel.xlabel} =" if panel.xlabel else "at"
    if _num(y[0]) == _num(y[-1]):  # a change the printed digits do not show is no trend to a reader
        text = f"{s.label}: stays at {_num(y[0])} from {at.removeprefix('at ')} {_num(x[0])} to {_num(x[-1])}"
    else:
        verb = "rises" if y[-1] > y[0] else "falls"
        text = f"{s.label}: {verb} from {_num(y[0])} {at} {_num(x[0])} to {_num(y[-1])} at {_num(x[-1])}"
    lo, hi = int(np.argmin(y)), int(np.argmax(y))
    if 0 < lo < y.size - 1 and y[lo] < min(y[0], y[-1]):
        text += f" (lowest {_num(y[lo])} at {_num(x[lo])})"
    elif 0 < hi < y.size - 1 and y[hi] > max(y[0], y[-1]):
        text += f" (highest {_num(y[hi])} at {_num(x[hi])})"
    return text


def _spread(groups: list[Series]) -> str:
    """How tight groups of points are: mean distance of a point to its group's centre, and of the centres to theirs."""
    points = [np.column_stack([s.x, s.y]) for s in groups]
    points = [p[np.all(np.isfinite(p), axis=1)] for p in points]
    points = [p for p in points if len(p)]
    centres = np.array([p.mean(axis=0) for p in points])
    within = float(np.mean(np.concatenate([np.linalg.norm(p - c, axis=1) for p, c in zip(points, centres,
                                                                                         strict=True)])))
    between = float(np.mean(np.linalg.norm(centres - centres.mean(axis=0), axis=1)))
    ratio = f" (ratio {_num(within / between)})" if between > 0 else ""
    return (f"points lie on average {_num(within)} from their group's centre and the group centres "
            f"{_num(between)} from the overall centre{ratio}")


def _panel_kind(panel: Panel) -> str:
    kinds = [s.kind for s in panel.series if s.kind not in ("hline", "vline")]
    if panel.images and not kinds:
        return "Heat map"
    if kinds and all(k == "scatter" for k in kinds):
        return "Scatter plot"
    if kinds and all(k == "bars" for k in kinds):
        return "Bar chart"
    if kinds and all(k == "points" for k in kinds):
        return "Dot plot"
    return "Line chart"


def _panel_alt(panel: Panel, list_groups: bool = True) -> str:
    kind = _panel_kind(panel)
    y = f"{panel.ylabel}{' (log scale)' if panel.ylog else ''}" if panel.ylabel else "values"
    x = f"{panel.xlabel}{' (log scale)' if panel.xlog else ''}" if panel.xlabel else ""
    head = f"{kind} of {y}" + (f" against {x}" if x else "")
    if panel.title:
        head = f"{head}, titled '{panel.title}'"
    parts = [head]
    if panel.images:
        image = panel.images[0]
        parts.append(f"a {image.shape[0]} by {image.shape[1] if image.ndim > 1 else 1} grid of values from "
                     f"{_num(float(np.nanmin(image)))} to {_num(float(np.nanmax(image)))}")
    scatters = [s for s in panel.series if s.kind == "scatter"]
    if len(scatters) > 1 and len(scatters) == len(panel.series):
        n = sum(s.y.size for s in scatters)
        groups = f"{n} points in {len(scatters)} groups"
        parts.append(groups + (f" ({', '.join(s.label for s in scatters)})" if list_groups else ""))
        parts.append(_spread(scatters))
    else:
        named = [s for s in panel.series if not s.label.startswith("series ")] or panel.series
        shown = named[:MAX_SERIES_IN_ALT]
        parts.extend(_trend(s, panel) for s in shown)
        rest = len(panel.series) - len(shown)
        if rest > 0:
            parts.append(f"{rest} more series in the data table")
    if panel.bands:
        parts.append("shaded regions mark ranges")
    if not panel.images:  # a heat map's cell labels are its values: they are in the data table
        parts.extend(f"the panel reads '{note}'" for note in panel.notes[:3])
    return "; ".join(parts)


def alt_text(fig: Figure, prefix: str = "") -> str:
    """Alternative text of ``fig``: ``prefix``, the sentence given to :func:`describe`, then per panel the kind of plot,
    its axes and scales, and each series' first and last values (read from the plotted data)."""
    if getattr(fig, "_pnc_alt", None):
        return " ".join(t for t in (prefix, fig._pnc_alt) if t)
    panels = figure_series(fig)
    summary = getattr(fig, "_pnc_summary", "")
    texts = [t.rstrip(".") + "." for t in (prefix, summary) if t]
    written = [plain_text(t.get_text()) for t in fig.texts if t.get_visible() and t.get_text().strip()]
    texts += [f"The figure reads '{t}'." for t in written]
    if len(panels) > 1:
        texts.append(f"{len(panels)} panels.")
        # groups of points (classes) are named in the first panel that has them only
        named_groups: set[tuple[str, ...]] = set()
        for i, p in enumerate(panels, start=1):
            groups = tuple(s.label for s in p.series if s.kind == "scatter")
            texts.append(f"Panel {i}: {_panel_alt(p, list_groups=groups not in named_groups)}.")
            named_groups.add(groups)
    elif panels:
        texts.append(_panel_alt(panels[0]) + ".")
    else:
        texts.append("A figure without plotted data.")
    return " ".join(texts)


def data_tables(fig: Figure) -> list[tuple[str, list[str], list[list[float | str]]]]:
    """The numbers behind ``fig``: per panel and per shared x grid, ``(title, header, rows)``; series drawn over the
    same x values share one table (x first, one column per series), others get a table each."""
    tables = []
    for i, panel in enumerate(figure_series(fig), start=1):
        where = f"Panel {i}: {panel.name}" if len(fig.axes) > 1 else panel.name
        xname = panel.xlabel or "x"
        groups: list[tuple[np.ndarray, list[Series]]] = []
        for s in panel.series:
            if s.kind in ("hline", "vline", "scatter"):
                continue
            for x, members in groups:
                if x.shape == s.x.shape and np.array_equal(x, s.x, equal_nan=True):
                    members.append(s)
                    break
            else:
                groups.append((s.x, [s]))
        for x, members in groups:
            names = members[0].names
            rows = [[names[j] if names else float(x[j]), *(float(s.y[j]) for s in members)] for j in range(x.size)]
            tables.append((where, [xname, *(s.label for s in members)], rows))
        scatters = [s for s in panel.series if s.kind == "scatter"]
        if scatters:
            rows = [[s.label, float(a), float(b)] for s in scatters for a, b in zip(s.x, s.y, strict=True)]
            tables.append((where, ["series", xname, panel.ylabel or "y"], rows))
        levels = [s for s in panel.series if s.kind in ("hline", "vline")]
        if levels:
            rows = [[s.label, "horizontal" if s.kind == "hline" else "vertical",
                     float(s.y[0] if s.kind == "hline" else s.x[0])] for s in levels]
            tables.append((f"{where}: reference lines", ["series", "direction", "at"], rows))
        for k, image in enumerate(panel.images, start=1):
            grid = np.atleast_2d(image)
            rows = [[r, *map(float, grid[r])] for r in range(grid.shape[0])]
            tables.append((f"{where}: heat map {k}", ["row", *map(str, range(grid.shape[1]))], rows))
    return tables


def data_csv(fig: Figure) -> str:
    """Every table of :func:`data_tables` in one CSV (a ``table`` column says which), full precision."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for title, header, rows in data_tables(fig):
        writer.writerow(["table", *header])
        for row in rows:
            writer.writerow([title, *(repr(v) if isinstance(v, float) else v for v in row)])
    return buffer.getvalue()


def _cell(value: float | str) -> str:
    return escape(_num(value)) if isinstance(value, float) else escape(str(value))


def data_html(fig: Figure, filename: str = "figure-data.csv") -> str:
    """A folded ``<details>`` "Data" block: the tables of :func:`data_tables` (at most :data:`MAX_TABLE_ROWS` rows each
    on the page) and a download of :func:`data_csv` with every value."""
    tables = data_tables(fig)
    if not tables:
        return ""
    parts = ['<details class="pnc-figure-data"><summary>Data behind the figure</summary>']
    for title, header, rows in tables:
        parts.append(f'<div class="pnc-figure-table" tabindex="0" role="region" aria-label="{escape(title)}">'
                     '<table><caption>' + escape(title) + "</caption><thead><tr>"
                     + "".join(f'<th scope="col">{escape(h)}</th>' for h in header) + "</tr></thead><tbody>")
        for row in rows[:MAX_TABLE_ROWS]:
            parts.append("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>")
        parts.append("</tbody></table>")
        if len(rows) > MAX_TABLE_ROWS:
            parts.append(f"<p>First {MAX_TABLE_ROWS} of {len(rows)} rows; the CSV file has all of them.</p>")
        parts.append("</div>")
    csv_b64 = base64.b64encode(data_csv(fig).encode("utf-8")).decode("ascii")
    parts.append(f'<p><a class="pnc-figure-csv" download="{escape(filename)}" '
                 f'href="data:text/csv;charset=utf-8;base64,{csv_b64}">Download the data (CSV)</a></p></details>')
    return "".join(parts)


def figure_html(fig: Figure, png: bytes | None = None, *, prefix: str = "", css_class: str = "pnc-figure-image",
                fill: bool = False) -> str:
    """The HTML a page shows for ``fig``: the PNG (``png``, or rendered by :func:`figure_png`) with :func:`alt_text`
    (opened by ``prefix``) as its ``alt``, followed by :func:`data_html`. The image is shown at the PNG's width over
    :data:`FIGURE_SCALE` CSS px, or across its container with ``fill`` (explorer frames)."""
    data = png if png is not None else figure_png(fig)
    if fill:
        size = 'style="width: 100%; height: auto"'
    else:
        size = f'width="{int.from_bytes(data[16:20], "big") // FIGURE_SCALE}"'  # PNG IHDR: width is bytes 16-19
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f'<div class="pnc-figure"><img class="{css_class}" src="{src}" alt="{escape(alt_text(fig, prefix))}" '
            f'{size}>{data_html(fig)}</div>')
