"""House plotting style (a light and a dark theme), notebook figure display with each figure's light, dark, wide and
narrow renderings (every one with the panel letters "(a)", "(b)", ... of a figure of several panels), the figures'
alternative text and data, and the two-panel layerwise compression/discrimination plot.

Library code never calls ``plt.show()``; it returns figures. The fits drawn here live in :mod:`pnc.fits` (no
matplotlib needed); they are re-exported for convenience.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .fits import fit_geometric_rate, fit_linear, layer_points

__all__ = [
    "COLORS",
    "COLORS_DARK",
    "STYLES",
    "THEMES",
    "alt_text",
    "data_csv",
    "data_html",
    "data_tables",
    "describe",
    "enable_notebook_figures",
    "figure_html",
    "figure_png",
    "figure_renderings",
    "figure_series",
    "fit_geometric_rate",
    "fit_linear",
    "layerwise_plot",
    "legend_overlaps",
    "narrowed",
    "panel_letters",
    "panels_lettered",
    "plain_text",
    "smallest_text_pt",
    "themed",
    "use_style",
]

COLORS = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d5a97", "#30343f", "#e36414"]
"""Colour cycle (colour-blind friendly enough to tell neighbouring lines apart)."""

COLORS_DARK = ["#6cb0e6", "#f08593", "#f2c46d", "#3fbcd0", "#8fcfaa", "#c79ad2", "#c8ccd6", "#f59a5c"]
"""The same cycle for a dark background: each colour lighter, the near-black one a light grey."""

THEMES = ("light", "dark")
"""The two renderings of every figure on the site; the page shows the one matching its colour mode."""

_BASE_STYLE = {
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
}

STYLES: dict[str, dict[str, object]] = {
    "light": {"figure.facecolor": "#ffffff", "axes.facecolor": "#ffffff", "savefig.facecolor": "#ffffff",
              "text.color": "#000000", "axes.labelcolor": "#000000", "axes.edgecolor": "#000000",
              "xtick.color": "#000000", "ytick.color": "#000000", "grid.color": "#b0b0b0",
              "axes.prop_cycle": mpl.cycler(color=COLORS)},
    # the page background of the site's dark mode (pydata-sphinx-theme), so a figure sits on the page as in light mode
    "dark": {"figure.facecolor": "#14181e", "axes.facecolor": "#14181e", "savefig.facecolor": "#14181e",
             "text.color": "#e6e6e6", "axes.labelcolor": "#e6e6e6", "axes.edgecolor": "#d0d0d0",
             "xtick.color": "#d0d0d0", "ytick.color": "#d0d0d0", "grid.color": "#8a8a8a",
             "axes.prop_cycle": mpl.cycler(color=COLORS_DARK)},
}
"""The house matplotlib style's colours, one set per theme (:data:`THEMES`); the rest of the style is shared."""


FIGURE_SCALE = 2
"""Pixels per CSS pixel of the PNG a notebook figure is shown as (2 = sharp on high-density screens)."""

NARROW_WIDTH = 4.8
"""Width (inches, at the figure's 100 dpi: CSS px / 100) of a figure's narrow rendering, shown on screens up to
:data:`NARROW_SCREEN` px: in a phone's 342 px column its 10 pt text is about 10 CSS px tall."""

NARROW_SCREEN = 720
"""Widest screen (CSS px) that gets a figure's narrow rendering."""

PHONE_COLUMN = 342
"""Width (CSS px) of a chapter's text column on a 390 px phone (measured in Chromium), the narrowest screen a
figure is made readable on."""

PHONE_TEXT_PX = 9.5
"""Smallest text (CSS px) a figure's narrow rendering aims for on that phone (9 px and a margin)."""


def figure_png(fig: Figure, dpi: float | None = None, *, tight: bool = True, theme: str = "light") -> bytes:
    """PNG bytes of ``fig`` on an opaque background, in the colours of ``theme`` (:data:`STYLES`; a figure is drawn
    in the light style and re-coloured for the dark one, see :func:`themed`).

    ``dpi`` defaults to ``FIGURE_SCALE`` times the figure's own dpi; ``tight`` crops to the drawn content (explorer
    frames keep the full canvas so that every frame has the same size). A figure of two or more panels is drawn with
    its panel letters (:func:`panels_lettered`): every rendering the book shows passes through here.
    """
    with panels_lettered(fig), themed(fig, theme):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi or FIGURE_SCALE * fig.dpi, bbox_inches="tight" if tight else None,
                    facecolor=STYLES[theme]["figure.facecolor"])
    return buffer.getvalue()


def panel_letters(fig: Figure) -> dict[Axes, str]:
    """The letter of each panel of ``fig``, ``"a"``, ``"b"``, ... in reading order; empty for fewer than two panels.

    A panel is a visible axes placed by a subplot spec (``fig.subplots``, ``add_subplot``, a grid) that is not a
    colour bar; insets and other axes placed by hand are not panels. Axes in the same grid cell (a ``twinx`` or
    ``twiny``) are one panel and share the letter, which the first of them in ``fig.axes`` (the host) shows.
    Reading order is row-major over the subplot grid (on nested or several grids: by the cell's top edge, then its
    left edge), so the letters keep their order when :func:`narrowed` stacks the panels.
    """
    cells: dict[tuple, list[Axes]] = {}
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is None or not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        key = (id(spec.get_gridspec()), spec.rowspan.start, spec.rowspan.stop, spec.colspan.start, spec.colspan.stop)
        cells.setdefault(key, []).append(ax)
    if len(cells) < 2:
        return {}
    if len({key[0] for key in cells}) == 1:
        order = sorted(cells, key=lambda key: (key[1], key[3]))
    else:
        def place(key: tuple) -> tuple[float, float]:
            box = cells[key][0].get_subplotspec().get_position(fig)
            return (-round(box.y1, 6), round(box.x0, 6))

        order = sorted(cells, key=place)
    letters = {}
    for i, key in enumerate(order):
        for ax in cells[key]:
            letters[ax] = _letter(i)
    return letters


def _letter(i: int) -> str:
    """``a`` ... ``z``, then ``aa``, ``ab``, ..."""
    return _letter(i // 26 - 1) + chr(ord("a") + i % 26) if i >= 26 else chr(ord("a") + i)


@contextmanager
def panels_lettered(fig: Figure) -> Iterator[dict[Axes, str]]:
    """While the block runs, each panel of ``fig`` (:func:`panel_letters`) shows its letter in bold, "(a)", "(b)",
    ...; yields the letters. The figure is put back afterwards, so what a caller reads from it (titles, texts) is
    never changed, and a nested use adds nothing: the letters are drawn once.

    With a layout engine the letter opens the panel's left title (which the layout makes room for); a centred title
    joins it there, so that the two cannot overlap on a narrow panel. A figure with fixed margins (no layout engine,
    e.g. an explorer frame) has no room above its panels, so the letter goes inside the panel's top left corner on
    a box of the background colour.
    """
    letters = panel_letters(fig)
    if getattr(fig, "_pnc_lettered", False) or not letters:
        yield letters
        return
    fig._pnc_lettered = True
    engine = fig.get_layout_engine()
    undo = []
    shown = set()
    try:
        for ax, letter in letters.items():
            if letter in shown:
                continue  # a twin: its host, first in fig.axes, shows the letter
            shown.add(letter)
            mark = rf"$\mathbf{{({letter})}}$"
            if engine is None:
                label = ax.text(0.015, 0.985, mark, transform=ax.transAxes, ha="left", va="top",
                                fontsize=mpl.rcParams["axes.titlesize"], zorder=10,
                                bbox={"boxstyle": "square,pad=0.15", "facecolor": ax.get_facecolor(),
                                      "linewidth": 0, "alpha": 0.85})
                undo.append(label.remove)
                continue
            left, centre = _title_texts(ax)
            saved = [(t, t.get_text(), t.get_fontsize(), t.get_fontweight(), t.get_color()) for t in (left, centre)]
            undo.append(lambda saved=saved: _put_back(saved))
            if centre.get_text() and not left.get_text():  # the centred title joins the letter, in its own font
                left.set_text(f"{mark} {centre.get_text()}")
                left.set_fontsize(centre.get_fontsize())
                left.set_fontweight(centre.get_fontweight())
                left.set_color(centre.get_color())
                centre.set_text("")
            else:
                left.set_text(f"{mark} {left.get_text()}".rstrip())
        yield letters
    finally:
        for restore in reversed(undo):
            restore()
        del fig._pnc_lettered


def _title_texts(ax: Axes) -> tuple:
    """The :class:`~matplotlib.text.Text` of ``ax``'s left title and of its centred title (an axes' Text children
    besides its texts are its three titles, aligned left, centre and right)."""
    from matplotlib.text import Text

    titles = {t.get_horizontalalignment(): t for t in ax.get_children() if isinstance(t, Text) and t not in ax.texts}
    return titles["left"], titles["center"]


def _put_back(saved: list) -> None:
    for text, label, size, weight, color in saved:
        text.set_text(label)
        text.set_fontsize(size)
        text.set_fontweight(weight)
        text.set_color(color)


def _png_with_width(fig: Figure) -> tuple[str, dict[str, int | str]]:
    """IPython ``image/png`` formatter: a 2x PNG (base64) whose displayed width is the figure's size in CSS pixels,
    with the figure's alternative text in the metadata (for exporters and the PDF: the light, wide rendering; the
    site uses :func:`_figure_html`)."""
    data = fig.__dict__.pop("_pnc_png", None) or figure_png(fig)
    width = int.from_bytes(data[16:20], "big")  # PNG IHDR: width is bytes 16-19
    return base64.b64encode(data).decode("ascii"), {"width": width // FIGURE_SCALE, "alt": alt_text(fig)}


def _figure_html(fig: Figure) -> str:
    """IPython ``text/html`` formatter: :func:`figure_html` (every rendering of :func:`figure_renderings` with the alt
    text and the data). The light, wide PNG is kept for the ``image/png`` formatter that runs next (the PDF and plain
    notebook viewers use that one)."""
    renderings = figure_renderings(fig)
    fig._pnc_png = renderings[("light", "wide")]
    return figure_html(fig, renderings)


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


def use_style(theme: str = "light") -> None:
    """Apply the house matplotlib style (line width 2, readable fonts, no top/right spines) in the colours of
    ``theme`` (:data:`STYLES`). Figures of the book are built in the light style; :func:`themed` re-colours one.

    In a notebook it also makes figures display (and glue) as high-density PNGs: see :func:`enable_notebook_figures`.
    """
    if theme not in STYLES:
        raise ValueError(f"theme must be one of {THEMES}, got {theme!r}")
    enable_notebook_figures()
    mpl.rcParams.update({**_BASE_STYLE, **STYLES[theme]})


# ---------------------------------------------------------------------------------------------------- renderings
# Every figure on the site is shown in four renderings: light and dark (the page shows the one matching its colour
# mode, switching live: pnc-site.css), each wide (the figure as built) and narrow (:data:`NARROW_WIDTH`, for screens
# up to :data:`NARROW_SCREEN` px, served by a ``<picture>`` media query). The narrow rendering stacks the panels of a
# multi-panel figure (one column, two for four or more columns) at the same font sizes, so that its text stays at
# least 9 CSS px tall on a 390 px phone. The PDF and plain notebook viewers get the light, wide one.

def _rgba(color) -> tuple[float, float, float, float]:
    return tuple(float(v) for v in mpl.colors.to_rgba(color))  # type: ignore[return-value]


def _key(rgba: Sequence[float]) -> tuple[int, int, int]:
    return tuple(int(round(255 * float(v))) for v in rgba[:3])  # type: ignore[return-value]


def _colour_map(theme: str):
    """The function mapping a colour of the light style to ``theme``: the style's own colours and the palette map to
    their counterparts; any other colour keeps its hue and saturation and has its lightness turned around between
    the theme's background and text lightness (white -> background, black -> text, a light grey band -> dark)."""
    import colorsys

    light, target = STYLES["light"], STYLES[theme]
    pairs = {_key(_rgba(a)): _rgba(b) for a, b in zip(COLORS, COLORS_DARK if theme == "dark" else COLORS,
                                                        strict=True)}
    for name, value in light.items():
        if isinstance(value, str):
            pairs.setdefault(_key(_rgba(value)), _rgba(target[name]))
    low = colorsys.rgb_to_hls(*_rgba(target["figure.facecolor"])[:3])[1]
    high = colorsys.rgb_to_hls(*_rgba(target["text.color"])[:3])[1]

    def convert(rgba: Sequence[float]) -> tuple[float, float, float, float]:
        rgba = tuple(float(v) for v in rgba)
        if rgba[3] == 0:
            return rgba  # type: ignore[return-value]
        mapped = pairs.get(_key(rgba))
        if mapped is not None:
            return (*mapped[:3], rgba[3])
        h, lightness, s = colorsys.rgb_to_hls(*rgba[:3])
        return (*colorsys.hls_to_rgb(h, low + (1 - lightness) * (high - low), s), rgba[3])

    return convert


@contextmanager
def themed(fig: Figure, theme: str = "dark") -> Iterator[Figure]:
    """``fig`` re-coloured for ``theme`` (:data:`STYLES`) while the block runs, then restored.

    Every text, line, marker, patch (backgrounds, spines, bars, legend frames) and uncoloured collection gets
    :func:`_colour_map`'s colour; colour-mapped data (heat maps, scatters coloured by a value) and the text and
    outlines drawn over a heat map keep theirs, since they were chosen against the map's colours.
    """
    if theme not in STYLES:
        raise ValueError(f"theme must be one of {THEMES}, got {theme!r}")
    if theme == "light":
        yield fig
        return
    from matplotlib.collections import Collection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Annotation, Text

    convert = _colour_map(theme)
    undo: list[tuple] = []
    over_maps = {id(ax) for ax in fig.axes if ax.get_images()}
    seen: set[int] = set()
    done: set[int] = set()  # patches re-coloured (a text's box may also be found on its own)

    def swap(get, set_, many: bool = False) -> None:
        old = get() if callable(get) else get
        if many:
            old = np.array(old, dtype=float, copy=True)
            if old.size == 0:
                return
            set_(np.array([convert(c) for c in old.reshape(-1, 4)]))
        else:
            if isinstance(old, str) and old.lower() in ("none", "auto", "face"):
                return
            set_(convert(_rgba(old)))
        undo.append((set_, old))

    def patch(p: Patch) -> None:
        if id(p) in done:
            return
        done.add(id(p))
        swap(p.get_facecolor, p.set_facecolor)
        swap(p.get_edgecolor, p.set_edgecolor)

    for artist in fig.findobj(include_self=False):
        if id(artist) in seen:
            continue
        seen.add(id(artist))
        ax = getattr(artist, "axes", None)
        on_map = ax is not None and id(ax) in over_maps and (artist in ax.texts or artist in ax.patches)
        if on_map:
            continue
        if isinstance(artist, Patch):
            patch(artist)
        elif isinstance(artist, Text):
            swap(artist.get_color, artist.set_color)
            if artist.get_bbox_patch() is not None:
                patch(artist.get_bbox_patch())
            if isinstance(artist, Annotation) and artist.arrow_patch is not None:
                patch(artist.arrow_patch)
        elif isinstance(artist, Line2D):  # marker colours read before the line's, which they may follow
            face, edge = artist.get_markerfacecolor(), artist.get_markeredgecolor()
            swap(artist.get_color, artist.set_color)
            swap(face, artist.set_markerfacecolor)
            swap(edge, artist.set_markeredgecolor)
        elif isinstance(artist, Collection) and artist.get_array() is None:
            swap(artist.get_facecolor, artist.set_facecolor, many=True)
            swap(artist.get_edgecolor, artist.set_edgecolor, many=True)
    patch(fig.patch)
    try:
        yield fig
    finally:
        for set_, old in reversed(undo):
            set_(old)


@contextmanager
def narrowed(fig: Figure, width: float = NARROW_WIDTH, min_pt: float = 0.0) -> Iterator[bool]:
    """``fig`` laid out ``width`` inches wide, its text at least ``min_pt`` points, while the block runs (then
    restored); yields whether anything changed.

    Panels on a grid (``fig.subplots``) are stacked: a grid of up to three columns becomes one column, a wider one
    two, in reading order, each panel keeping its aspect ratio. Text smaller than ``min_pt`` is enlarged to it, and
    titles and axis labels wrap at the figure's edge. A figure already at most ``width`` wide keeps its layout; one
    whose panels are not on a single grid is only made narrower.
    """
    from matplotlib.text import Text

    size = fig.get_size_inches().copy()
    fig.draw_without_rendering()  # tick labels exist once drawn
    ticks = {ax: [(axis, which, label.get_fontsize()) for axis in (ax.xaxis, ax.yaxis)
                  for which, labels in (("major", axis.get_majorticklabels()), ("minor", axis.get_minorticklabels()))
                  for label in labels[:1]] for ax in fig.axes}
    tick_labels = {id(t) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
                   for t in axis.get_majorticklabels() + axis.get_minorticklabels()}
    texts = [t for t in fig.findobj(Text) if id(t) not in tick_labels and t.get_text().strip()]
    small = [(t, t.get_fontsize()) for t in texts if t.get_fontsize() < min_pt]
    small_ticks = [(axis, which, pt) for entries in ticks.values() for axis, which, pt in entries if pt < min_pt]
    wide = size[0] > width + 1e-9
    if not (wide or small or small_ticks):
        yield False
        return
    for t, _pt in small:
        t.set_fontsize(min_pt)
    for axis, which, _pt in small_ticks:
        axis.set_tick_params(which=which, labelsize=min_pt)
    # the Text children of an axes besides its texts are its three titles; of the figure, its sup-title and labels
    headings = [t for ax in fig.axes for t in ax.get_children() if isinstance(t, Text) and t not in ax.texts]
    headings += [t for ax in fig.axes for t in (ax.xaxis.label, ax.yaxis.label)] + list(fig.texts)
    headings += [t for t in fig.get_children() if isinstance(t, Text) and t not in fig.texts]
    wraps = [(t, t.get_wrap()) for t in headings]
    for t, _wrap in wraps:
        t.set_wrap(True)
    axes = [ax for ax in fig.axes if ax.get_subplotspec() is not None] if wide else []
    specs = {ax: ax.get_subplotspec() for ax in axes}
    grids = {id(s.get_gridspec()) for s in specs.values()}
    cells = all(s.rowspan.stop - s.rowspan.start == 1 and s.colspan.stop - s.colspan.start == 1
                for s in specs.values())
    height = size[1] * min(width, size[0]) / size[0]
    if axes and len(grids) == 1 and cells:
        grid = next(iter(specs.values())).get_gridspec()
        rows, cols = grid.get_geometry()
        new_cols = 1 if cols <= 3 else 2
        new_rows = -(-rows * cols // new_cols)
        panel_height = (size[1] / rows) * (width / new_cols) / (size[0] / cols)
        height = panel_height * new_rows
        stacked = fig.add_gridspec(new_rows, new_cols)
        for ax, spec in specs.items():
            k = spec.rowspan.start * cols + spec.colspan.start
            ax.set_subplotspec(stacked[k // new_cols, k % new_cols])
    fig.set_size_inches(min(width, size[0]), height)
    try:
        yield True
    finally:
        for ax, spec in specs.items():
            ax.set_subplotspec(spec)
        fig.set_size_inches(*size)
        for t, wrap in wraps:
            t.set_wrap(wrap)
        for t, pt in small:
            t.set_fontsize(pt)
        for axis, which, pt in small_ticks:
            axis.set_tick_params(which=which, labelsize=pt)


def _drawn_points(ax: Axes) -> np.ndarray:
    """Display coordinates of the data drawn in ``ax``: line vertices and 16 points along each segment, scatter
    points, bar corners and centres."""
    from matplotlib.collections import PathCollection

    points = []
    for line in ax.get_lines():
        if not line.get_visible():
            continue
        xy = line.get_transform().transform(np.ma.filled(np.ma.asarray(line.get_xydata(), dtype=float), np.nan))
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        if len(xy) > 1 and line.get_linestyle() not in ("None", "", " ", "none"):
            t = np.linspace(0, 1, 16)[:, None, None]
            xy = np.concatenate([xy, (xy[:-1] + t * (xy[1:] - xy[:-1])).reshape(-1, 2)])
        points.append(xy)
    for collection in ax.collections:
        if isinstance(collection, PathCollection) and collection.get_visible():
            points.append(collection.get_offset_transform().transform(collection.get_offsets()))
    for container in ax.containers:
        for bar in getattr(container, "patches", []):
            box = bar.get_window_extent()
            points.append(np.array([[box.x0, box.y1], [box.x1, box.y1], [(box.x0 + box.x1) / 2, box.y1]]))
    return np.concatenate(points) if points else np.empty((0, 2))


def legend_overlaps(fig: Figure) -> list[Axes]:
    """The axes of ``fig`` whose legend covers some of their data (:func:`_drawn_points`), after a draw."""
    fig.draw_without_rendering()
    covered = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or not legend.get_visible():
            continue
        box = legend.get_window_extent()
        xy = _drawn_points(ax)
        inside = (xy[:, 0] > box.x0) & (xy[:, 0] < box.x1) & (xy[:, 1] > box.y0) & (xy[:, 1] < box.y1)
        if inside.any():
            covered.append(ax)
    return covered


@contextmanager
def _legends_clear_of_data(fig: Figure, beside: bool = False) -> Iterator[None]:
    """While the block runs, a legend that covers data (:func:`legend_overlaps`), and with ``beside`` one placed
    beside its axes (no room for it on a narrow figure), hangs below its axes' tick labels and axis label instead
    (a fixed distance in points below the axes, measured by a draw), and the figure grows by the height that the
    legends below each row of panels take (a layout engine would otherwise shrink the panels to make room); then
    all is put back."""
    from matplotlib.transforms import ScaledTranslation

    chosen = legend_overlaps(fig)  # draws the figure
    if beside:
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is None or ax in chosen or not legend.get_visible():
                continue
            box = legend.get_window_extent()
            if box.x0 < ax.bbox.x0 - 1 or box.x1 > ax.bbox.x1 + 1:
                chosen.append(ax)
    moved = [(ax.get_legend(), ax.get_legend()._loc, ax.get_legend()._bbox_to_anchor) for ax in chosen]
    size = fig.get_size_inches().copy()
    try:
        for legend, _loc, _anchor in moved:
            ax = legend.axes
            legend.set_visible(False)
            fig.draw_without_rendering()
            drop = (ax.bbox.y0 - ax.get_tightbbox().y0) / fig.dpi + 4 / 72  # inches, plus 4 pt
            legend.set_visible(True)
            legend._loc = 9  # upper center
            legend.set_bbox_to_anchor((0.5, 0.0), transform=ax.transAxes + ScaledTranslation(0, -drop,
                                                                                              fig.dpi_scale_trans))
        if moved:
            fig.draw_without_rendering()
            below: dict[float, float] = {}  # per row of panels (bottom edge), the tallest legend hung below it
            for legend, _loc, _anchor in moved:
                row = round(float(legend.axes.bbox.y0), 1)
                below[row] = max(below.get(row, 0.0), legend.get_window_extent().height / fig.dpi + 4 / 72)
            fig.set_size_inches(size[0], size[1] + sum(below.values()))
        yield
    finally:
        fig.set_size_inches(*size)
        for legend, loc, anchor in moved:
            legend._loc = loc
            legend._bbox_to_anchor = anchor  # as it was (set_bbox_to_anchor would transform it again)


def figure_renderings(fig: Figure, dpi: float | None = None, *, tight: bool = True) -> dict[tuple[str, str], bytes]:
    """The PNGs of ``fig`` the site shows, keyed ``(theme, "wide" | "narrow")`` for each of :data:`THEMES`; the narrow
    ones only if the figure is wider than :data:`NARROW_WIDTH` or has text that would fall below
    :data:`PHONE_TEXT_PX` in a :data:`PHONE_COLUMN` column (see :func:`narrowed`). ``dpi`` and ``tight`` are
    :func:`figure_png`'s (explorer frames keep their full canvas, so that every frame of the wide or the narrow
    rendering has one size)."""
    # the PNG is at most NARROW_WIDTH wide plus savefig's padding (0.1 in a side, none without tight), shown in the
    # phone's column
    pad = 2 * mpl.rcParams["savefig.pad_inches"] if tight else 0.0
    min_pt = PHONE_TEXT_PX * 72 * (NARROW_WIDTH + pad) / PHONE_COLUMN
    out = {}
    font_px = {}  # the smallest text of each rendering, in CSS px at its natural size (figure_html records it)
    with _legends_clear_of_data(fig):
        out.update({(theme, "wide"): figure_png(fig, dpi, tight=tight, theme=theme) for theme in THEMES})
        font_px["wide"] = smallest_text_pt(fig, drawn=True) * fig.dpi / 72
    with narrowed(fig, NARROW_WIDTH, min_pt) as changed, _legends_clear_of_data(fig, beside=True):
        if changed:
            out.update({(theme, "narrow"): figure_png(fig, dpi, tight=tight, theme=theme) for theme in THEMES})
            font_px["narrow"] = smallest_text_pt(fig, drawn=True) * fig.dpi / 72
    fig._pnc_font_px = font_px
    return out


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

MAX_SERIES_IN_ALT = 2
"""Series named per panel in the alternative text of a figure that does not say what it shows (:func:`describe`);
the rest are counted (the data table has them all)."""

MAX_PANELS_IN_ALT = 2
"""Panels whose values the alternative text of such a figure gives; the others' are in the data table."""

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
    letter: str = ""
    """Its panel letter (:func:`panel_letters`, shown in the figure as "(a)"), or "" in a one-panel figure."""

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
    letters = panel_letters(fig)
    for ax in fig.axes:
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        title = " ".join(t for t in (ax.get_title("left"), ax.get_title(), ax.get_title("right")) if t)
        panel = Panel(title=plain_text(title), xlabel=plain_text(ax.get_xlabel()), ylabel=plain_text(ax.get_ylabel()),
                      xlog=ax.get_xscale() in ("log", "symlog"), ylog=ax.get_yscale() in ("log", "symlog"),
                      letter=letters.get(ax, ""))
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


_PLURAL = {"chart": "charts", "plot": "plots", "map": "maps"}


def _panel_head(panel: Panel) -> str:
    """The kind of plot and its axes: ``"line chart of compression C_l (log scale) against layer l"``."""
    y = f"{panel.ylabel}{' (log scale)' if panel.ylog else ''}" if panel.ylabel else "values"
    x = f"{panel.xlabel}{' (log scale)' if panel.xlog else ''}" if panel.xlabel else ""
    return f"{_panel_kind(panel).lower()} of {y}" + (f" against {x}" if x else "")


def _panel_numbers(panel: Panel) -> list[str]:
    """The key numbers of a panel when no sentence says what the figure shows: its title, a heat map's range, how
    tight groups of points are, or the first :data:`MAX_SERIES_IN_ALT` series' first and last values."""
    parts = [f"titled '{panel.title}'"] if panel.title else []
    if panel.images:
        image = panel.images[0]
        parts.append(f"a {image.shape[0]} by {image.shape[1] if image.ndim > 1 else 1} grid of values from "
                     f"{_num(float(np.nanmin(image)))} to {_num(float(np.nanmax(image)))}")
    scatters = [s for s in panel.series if s.kind == "scatter"]
    if len(scatters) > 1 and len(scatters) == len(panel.series):
        parts.append(f"{sum(s.y.size for s in scatters)} points in {len(scatters)} groups; {_spread(scatters)}")
        return parts
    named = [s for s in panel.series if not s.label.startswith("series ")] or panel.series
    shown = named[:MAX_SERIES_IN_ALT]
    parts.extend(_trend(s, panel) for s in shown)
    if len(panel.series) > len(shown):
        parts.append(f"{len(panel.series) - len(shown)} more series in the data table")
    return parts


def alt_text(fig: Figure, prefix: str = "") -> str:
    """Alternative text of ``fig``: ``prefix``, the kind of plot and its axes (per panel, read from the artists, and
    named by the letter the panel shows, :func:`panel_letters`),
    then the one thing it shows, the sentence given to :func:`describe` with its key numbers. A figure without that
    sentence is described by its panels' titles and first and last values instead. Every value plotted is in the
    data table (:func:`data_html`), not here."""
    if getattr(fig, "_pnc_alt", None):
        return " ".join(t for t in (prefix, fig._pnc_alt) if t)
    panels = figure_series(fig)
    summary = getattr(fig, "_pnc_summary", "")
    texts = [prefix.rstrip(".") + "."] if prefix else []
    heads: dict[str, list[str]] = {}
    for panel in panels:
        heads.setdefault(_panel_head(panel), []).append(panel.letter)
    described = []
    for head, letters in heads.items():
        if len(letters) > 1:
            kind, rest = head.split(" of ", 1)
            first, last = kind.rsplit(" ", 1)
            head = f"{len(letters)} {first} {_PLURAL.get(last, last)} of {rest}"
        if len(panels) > 1 and all(letters):
            head = f"{_letter_list(letters)} {head}"
        described.append(head)
    if not panels:
        texts.append("A figure without plotted data.")
    elif len(panels) == 1:
        texts.append(described[0][0].upper() + described[0][1:] + ".")
    else:
        texts.append(f"{len(panels)} panels: " + "; ".join(described) + ".")
    if summary:
        texts.append(summary.rstrip(".") + ".")
        return " ".join(texts)
    written = [plain_text(t.get_text()) for t in fig.texts if t.get_visible() and t.get_text().strip()]
    texts += [f"The figure reads '{t}'." for t in written]
    for i, panel in enumerate(panels[:MAX_PANELS_IN_ALT], start=1):
        numbers = "; ".join(_panel_numbers(panel))
        if numbers and len(panels) > 1:
            texts.append(f"Panel {f'({panel.letter})' if panel.letter else i}: {numbers}.")
        elif numbers:
            texts[-1] = f"{texts[-1].rstrip('.')}; {numbers}."
    if len(panels) > MAX_PANELS_IN_ALT:
        texts.append(f"The values of the other {len(panels) - MAX_PANELS_IN_ALT} panels are in the data table.")
    return " ".join(texts)


def _letter_list(letters: list[str]) -> str:
    """Panel letters as a reader names them: ``"(a)"``, ``"(a, c)"``, ``"(a)–(c)"`` for three or more in a row."""
    codes = [ord(x) if len(x) == 1 else -1 for x in letters]
    if len(letters) > 2 and min(codes) > 0 and codes == list(range(codes[0], codes[0] + len(codes))):
        return f"({letters[0]})–({letters[-1]})"
    return f"({', '.join(letters)})"


def data_tables(fig: Figure) -> list[tuple[str, list[str], list[list[float | str]]]]:
    """The numbers behind ``fig``: per panel and per shared x grid, ``(title, header, rows)``; series drawn over the
    same x values share one table (x first, one column per series), others get a table each."""
    tables = []
    for i, panel in enumerate(figure_series(fig), start=1):
        if panel.letter:
            where = f"Panel ({panel.letter}): {panel.name}"
        else:
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


def _png_size(data: bytes, scale: float = FIGURE_SCALE) -> tuple[int, int]:
    """Width and height of a PNG in CSS px at ``scale`` PNG px per CSS px (IHDR: width in bytes 16-19, height
    20-23)."""
    return (int(int.from_bytes(data[16:20], "big") // scale), int(int.from_bytes(data[20:24], "big") // scale))


def smallest_text_pt(fig: Figure, *, drawn: bool = False) -> float:
    """Size in points of the smallest text drawn in ``fig`` (tick labels, labels, titles, legends, notes); ``drawn``
    says the figure was drawn in its current state (a saved PNG), so its tick labels exist and no draw is needed."""
    from matplotlib.text import Text

    if not drawn:
        fig.draw_without_rendering()  # tick labels exist once drawn
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return float(min(sizes)) if sizes else float(mpl.rcParams["font.size"])


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_html(fig: Figure, png: bytes | Mapping[tuple[str, str], bytes] | None = None, *, prefix: str = "",
                css_class: str = "pnc-figure-image", fill: bool = False, drawn: bool = False,
                scale: float = FIGURE_SCALE) -> str:
    """The HTML a page shows for ``fig``: its image(s) with :func:`alt_text` (opened by ``prefix``) as ``alt``,
    followed by :func:`data_html`.

    ``png`` is one PNG (one image, across its container with ``fill``), or renderings keyed like those of
    :func:`figure_renderings` (rendered here when None): then one ``<picture>`` per theme, marked
    ``pnc-theme-light`` / ``pnc-theme-dark`` (pnc-site.css shows the one of the page's colour mode; the dark one is
    hidden by an inline style that the site's stylesheet overrides, so a notebook viewer shows the light one only),
    each offering its narrow rendering to screens up to :data:`NARROW_SCREEN` px (phones get a narrow rendering with
    the panels stacked, not the wide one shrunk); ``data-pnc-font-px`` (and ``data-pnc-narrow-font-px``) is
    :func:`smallest_text_pt` of the wide (narrow) rendering in CSS px at the image's natural size (``scale`` PNG px
    per CSS px). The images load lazily, so the hidden theme's is never fetched once the site serves them as files
    (book_ext/pnc_site.py moves them out of the page); ``dark-light`` keeps the theme from dimming them. An image is
    shown at its PNG's width over ``scale`` CSS px (at most the column's), or across its container with ``fill``
    (explorer frames, whose light and dark renderings :mod:`pnc.book.widgets` passes with ``scale`` their dpi over
    the figure's and ``drawn``: the figure was just drawn, so its text sizes are read without another draw).
    """
    alt = escape(alt_text(fig, prefix))
    if isinstance(png, bytes):
        if fill:
            size = 'style="width: 100%; height: auto"'
        else:
            size = f'width="{_png_size(png)[0]}"'
        return (f'<div class="pnc-figure"><img class="{css_class}" src="{_data_url(png)}" alt="{alt}" {size}>'
                f'{data_html(fig)}</div>')
    renderings = png if png is not None else figure_renderings(fig)
    # the smallest text of each rendering in CSS px at its natural size (a browser test scales it by the width shown)
    font_px = getattr(fig, "_pnc_font_px", None) or {"wide": smallest_text_pt(fig, drawn=drawn) * fig.dpi / 72}
    narrow_px = f' data-pnc-narrow-font-px="{font_px["narrow"]:.2f}"' if "narrow" in font_px else ""
    parts = [f'<div class="pnc-figure" data-pnc-font-px="{font_px["wide"]:.2f}"{narrow_px} '
             f'data-pnc-scale="{scale:g}">']
    across = ' style="width: 100%; height: auto"' if fill else ""
    for theme in THEMES:
        wide = renderings[(theme, "wide")]
        # a notebook without the site's stylesheet (Jupyter, Colab) shows the light one only
        hidden = ' style="display: none"' if theme != "light" else ""
        parts.append(f'<picture class="pnc-theme-{theme}"{hidden}>')
        narrow = renderings.get((theme, "narrow"))
        if narrow is not None:
            w, h = _png_size(narrow, scale)
            parts.append(f'<source media="(max-width: {NARROW_SCREEN}px)" srcset="{_data_url(narrow)}" '
                         f'width="{w}" height="{h}">')
        w, h = _png_size(wide, scale)
        parts.append(f'<img class="{css_class} dark-light" src="{_data_url(wide)}" alt="{alt}" width="{w}" '
                     f'height="{h}"{across} loading="lazy" decoding="async"></picture>')
    parts.append(data_html(fig) + "</div>")
    return "".join(parts)
