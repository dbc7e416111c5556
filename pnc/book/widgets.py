"""Kernel-free interactive explorers for the static book.

A static HTML page has no Python behind it, so callbacks (``interact``, ``observe``) cannot run there. An
:func:`explorer` therefore renders one figure per point of a small grid of slider values *at build time* and wires the
sliders to the frames entirely in the browser: each slider is ``jslink``-ed to the ``selected_index`` of a
``widgets.Stack`` of PNG images (nested stacks for two or more sliders). The page then needs only the widget embed
script, which the book serves itself.

In a live kernel (Jupyter, Colab) the same widget works, and :func:`live_explorer` additionally computes views for any
slider value off the grid.

**Explorers drawn from their data** (issue #25; ``explorer(..., in_page=True)``, a :class:`DataExplorer`). Where a
view is made of curves (per-layer measurements), :func:`figure_data` reads the numbers back from the render
function's matplotlib figure instead of keeping a PNG: per axes its title, axis labels (plain text), scales, fixed
limits and ticks, and every line (x, y, label, light and dark colour, dash, marker; ``axhline``/``axvline`` as
reference lines), ``axvspan`` shading as a band, and the figure's and axes' texts as lines above the plot. The page
(``book_ext/static/pnc-live.js``, added by book_ext/pnc_site.py like the formula explorers of :mod:`pnc.book.live`)
draws each panel with uPlot: hover shows the values, the controls are the explorer's grid, and a folded "Data" table
holds the numbers of the current view. Anything the page could not show faithfully (scatter collections, images,
bars, other patches, twin axes) is a ``ValueError`` naming the artist, and that explorer stays on frames. The render
function stays the single source of every view; the default view is a PNG for the PDF, and in a live kernel
(:func:`pnc.book.live.live_kernel`) the explorer is the ipywidgets frame explorer.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import math
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.spines import Spine
from matplotlib.text import Text

from pnc import plotting

__all__ = ["DataExplorer", "Explorer", "Param", "as_params", "explorer", "figure_data", "figure_png", "is_choice",
           "label_text", "live_explorer", "round_sig", "tick_text"]

MAX_FRAMES = 64
"""Upper bound on the number of precomputed frames of one explorer (page weight: frames are inlined)."""

DEFAULT_DPI = 144
"""Frame resolution: a 6.4 in wide frame is 922 px, shown at up to :data:`DISPLAY_WIDTH_PX` CSS px."""

DISPLAY_WIDTH_PX = 720
"""CSS width at which explorer frames are shown on a wide screen (the explorer's maximum width)."""

BODY_TEXT_PX = 16
"""The site's body text size in CSS px; frame text must be at least this large at :data:`DISPLAY_WIDTH_PX`."""

FRAME_STYLE = {
    "font.size": 12,
    "axes.titlesize": 12,
    "axes.labelsize": 12,
    "legend.fontsize": 11,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "figure.facecolor": "white",
}
"""matplotlib settings applied while frames are rendered (text sizes readable at the displayed size)."""


def min_font_pt(width_in: float) -> float:
    """Smallest font (points) that shows at :data:`BODY_TEXT_PX` when a ``width_in`` inch frame fills the display.

    A ``p``-point font at ``dpi`` is ``p * dpi / 72`` image pixels; the frame's ``width_in * dpi`` pixels are shown at
    ``DISPLAY_WIDTH_PX`` CSS px, so the text is ``p * DISPLAY_WIDTH_PX / (72 * width_in)`` CSS px whatever the dpi.
    """
    return BODY_TEXT_PX * 72 * width_in / DISPLAY_WIDTH_PX


@dataclass(frozen=True)
class Param:
    """One slider of an explorer: the keyword passed to ``render`` and the grid of values it takes.

    ``label`` is what the reader sees (e.g. ``"init scale ξ"``), ``unit`` is appended to every value in the readout,
    ``fmt`` formats a value (``"{:g}"``), and ``default`` (a value from ``values``) is shown first; it defaults to the
    middle of the grid.
    """

    name: str
    values: Sequence[Any]
    label: str | None = None
    unit: str = ""
    fmt: str = "{:g}"
    default: Any = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"Param name must be a Python identifier, got {self.name!r}")
        values = tuple(self.values)
        if len(values) < 2:
            raise ValueError(f"Param {self.name!r} needs at least 2 values, got {len(values)}")
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"Param {self.name!r} has repeated values: {values}")
        object.__setattr__(self, "values", values)
        if self.default is not None and self.default not in values:
            raise ValueError(f"default {self.default!r} of Param {self.name!r} is not one of its values {values}")

    @property
    def default_index(self) -> int:
        """Index of the value shown first."""
        return self.values.index(self.default) if self.default is not None else (len(self.values) - 1) // 2

    def readout(self, value: Any) -> str:
        """The text shown for ``value`` next to the slider."""
        text = self.fmt.format(value)
        return f"{text} {self.unit}".strip() if self.unit else text


def figure_png(fig: Figure, dpi: int = DEFAULT_DPI) -> bytes:
    """Render a matplotlib figure to a full-canvas PNG (every frame the same size) and close it."""
    try:
        return plotting.figure_png(fig, dpi=dpi, tight=False)
    finally:
        plt.close(fig)


def _visible_font_sizes(fig: Figure) -> list[tuple[float, str]]:
    """``(size in points, text)`` of every non-empty visible text of a drawn figure (titles, labels, ticks, legends)."""
    out = []
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text().strip() and text.get_figure() is not None:
            parent = text.axes
            if parent is not None and not parent.get_visible():
                continue
            out.append((float(text.get_fontsize()), text.get_text()))
    return out


def _axis_limits(fig: Figure) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    return [(tuple(ax.get_xlim()), tuple(ax.get_ylim())) for ax in fig.axes if ax.get_visible()]


@dataclass
class Explorer:
    """A built explorer: the widget to display, and what it was built from (for tests and reuse)."""

    widget: widgets.VBox
    params: tuple[Param, ...]
    frames: dict[tuple[int, ...], bytes]
    """PNG bytes per tuple of slider indices (the light, wide frame; :attr:`pages` also carry the dark and the narrow
    renderings)."""
    sliders: tuple[widgets.SelectionSlider | widgets.ToggleButtons, ...]
    """One control per parameter: a slider, or toggle buttons for a two-way choice."""
    pages: dict[tuple[int, ...], str] = field(default_factory=dict)
    """The HTML shown per tuple of slider indices: the frame with its alternative text and data
    (:func:`pnc.plotting.figure_html`)."""
    stacks: list[list[widgets.Stack]] = field(default_factory=list)
    """``stacks[i]`` are the stacks switched by slider ``i``."""
    links: list[widgets.Link] = field(default_factory=list)
    """The browser-side links slider ``index`` -> stack ``selected_index`` (one per stack)."""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # the widget for the site and Jupyter; its default view as a still image for the PDF and plain viewers
        bundle = self.widget._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data = dict(data or {})
        data["image/png"] = base64.b64encode(self.default_frame).decode("ascii")
        settings = ", ".join(f"{p.label or p.name} = {p.readout(p.values[p.default_index])}" for p in self.params)
        data["text/plain"] = f"Interactive explorer (shown at {settings}; move the controls on the site)"
        return (data, bundle[1]) if isinstance(bundle, tuple) else data

    @property
    def default_frame(self) -> bytes:
        """The PNG shown when every control is at its default."""
        return self.frames[tuple(p.default_index for p in self.params)]

    @property
    def page_bytes(self) -> int:
        """Total size of the light, wide PNG frames (before base64; the notebook's HTML carries each frame's other
        renderings too, the site serves them as files and a reader's browser fetches the frames shown)."""
        return sum(len(frame) for frame in self.frames.values())


def as_params(params: Sequence[Param] | Mapping[str, Sequence[Any]]) -> tuple[Param, ...]:
    """``params`` as a tuple of :class:`Param` (a mapping name -> values gives one each); checks the names."""
    if isinstance(params, Mapping):
        params = [Param(name, values) for name, values in params.items()]
    params = tuple(params)
    if not params:
        raise ValueError("an explorer needs at least one Param")
    if not all(isinstance(p, Param) for p in params):
        raise ValueError("params must be Param objects or a mapping name -> values")
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ValueError(f"Param names must be distinct, got {names}")
    return params


def explorer(
    render: Callable[..., Figure],
    params: Sequence[Param] | Mapping[str, Sequence[Any]],
    *,
    title: str = "",
    caption: str = "",
    dpi: int = DEFAULT_DPI,
    fixed: Mapping[str, Any] | None = None,
    fixed_axes: bool = True,
    in_page: bool = False,
) -> Explorer | DataExplorer:
    """Precompute ``render(**values)`` over the grid of ``params`` and link the controls to the frames in the browser.

    ``render`` returns a matplotlib figure for one combination of values (plus the ``fixed`` keywords); it is called
    once per grid point, at most :data:`MAX_FRAMES` times, under :data:`FRAME_STYLE`. A parameter with two values is
    shown as toggle buttons, as is a categorical one (strings, up to :data:`MAX_TOGGLES` values); an ordered grid of
    numbers is a slider. The returned :class:`Explorer` displays as the widget; the
    default view (each control at its default) is meaningful without moving anything.

    Frames must be readable and comparable: every text must be at least :func:`min_font_pt` points for the frame's
    width, and, unless ``fixed_axes=False``, every frame must have the same axis limits (set them in ``render``), so
    that moving a control moves the picture, not the axes. Otherwise a ``ValueError`` names the frame and the text.

    With ``in_page=True`` the views are plot data drawn in the page instead of frames (a
    :class:`DataExplorer`, same ``render``): for views made of lines, where hover then shows
    the values; a figure with an artist the page cannot draw is a ``ValueError`` naming it.
    """
    if in_page:
        return DataExplorer.build(render, params, title=title, caption=caption, fixed=fixed, fixed_axes=fixed_axes)
    params = as_params(params)
    n_frames = math.prod(len(p.values) for p in params)
    if n_frames > MAX_FRAMES:
        raise ValueError(f"{n_frames} frames exceed MAX_FRAMES={MAX_FRAMES}; use a coarser grid")
    if dpi < 20 or dpi > 300:
        raise ValueError(f"dpi must be between 20 and 300, got {dpi}")
    fixed = dict(fixed or {})
    clash = set(fixed) & {p.name for p in params}
    if clash:
        raise ValueError(f"keywords {sorted(clash)} are both fixed and sliders")

    frames: dict[tuple[int, ...], bytes] = {}
    pages: dict[tuple[int, ...], str] = {}
    first_limits: list | None = None
    smallest = math.inf
    for index, values, fig in _grid_figures(render, params, fixed):
        # the frame in the light and the dark style (the site's colour modes, pnc-site.css), each also in a narrow
        # rendering with its panels stacked for phones, as every figure of the book
        renderings = plotting.figure_renderings(fig, dpi, tight=False)
        frames[index] = renderings[("light", "wide")]
        pages[index] = plotting.figure_html(fig, renderings, prefix=_settings(params, index),
                                            css_class="pnc-frame-image", fill=True, scale=dpi / fig.dpi)
        sizes = _visible_font_sizes(fig)
        limits = _axis_limits(fig)
        width_in = float(fig.get_figwidth())
        floor = min_font_pt(width_in)
        small = [(size, text) for size, text in sizes if size < floor - 1e-9]
        if small:
            size, text = min(small)
            raise ValueError(f"frame {values}: text {text!r} is {size:g} pt, below the {floor:.1f} pt that a "
                             f"{width_in:g} in wide frame needs to show at {BODY_TEXT_PX} px; enlarge it or make the "
                             "figure narrower")
        smallest = min([smallest, *(size for size, _ in sizes)])
        if first_limits is None:
            first_limits = limits
        elif fixed_axes and not _same_limits(limits, first_limits):
            raise ValueError(f"frame {values} has axis limits {limits}, the first frame {first_limits}: set fixed "
                             "limits in render (ax.set_xlim/set_ylim) or pass fixed_axes=False")

    stacks: list[list[widgets.Stack]] = [[] for _ in params]

    def build(depth: int, prefix: tuple[int, ...]) -> widgets.Widget:
        if depth == len(params):
            frame = widgets.HTML(value=pages[prefix], layout=widgets.Layout(width="100%"))
            frame.add_class("pnc-frame")
            return frame
        children = [build(depth + 1, prefix + (i,)) for i in range(len(params[depth].values))]
        stack = widgets.Stack(children=children, selected_index=params[depth].default_index)
        stacks[depth].append(stack)
        return stack

    view = build(0, ())
    sliders = tuple(_control(p) for p in params)
    links = [widgets.jslink((slider, "index"), (stack, "selected_index"))
             for slider, linked in zip(sliders, stacks, strict=True) for stack in linked]

    parts: list[widgets.Widget] = []
    if title:
        parts.append(widgets.HTML(f"<b>{title}</b>"))
    parts.extend(sliders)
    parts.append(view)
    note = "Views are precomputed for the values shown; run the notebook to compute others."
    # the data attributes let the browser tests compute the size of the frame text as displayed
    parts.append(widgets.HTML(f'<small class="pnc-explorer-caption" data-pnc-frame-dpi="{dpi}" '
                              f'data-pnc-min-font-pt="{smallest:g}">{caption + " " if caption else ""}{note}</small>'))
    box = widgets.VBox(parts, layout=widgets.Layout(max_width=f"{DISPLAY_WIDTH_PX}px"))
    box.add_class("pnc-explorer")
    return Explorer(widget=box, params=params, frames=frames, pages=pages, sliders=sliders, stacks=stacks, links=links)


def _grid_figures(render: Callable[..., Figure], params: Sequence[Param],
                  fixed: Mapping[str, Any]) -> Iterator[tuple[tuple[int, ...], dict[str, Any], Figure]]:
    """Each point of the grid of ``params``: its indices, its values and ``render(**values, **fixed)``, drawn under
    :data:`FRAME_STYLE` (the caller's loop body runs inside it) and closed once the body is done."""
    for index in itertools.product(*(range(len(p.values)) for p in params)):
        values = {p.name: p.values[i] for p, i in zip(params, index, strict=True)}
        with mpl.rc_context(FRAME_STYLE):
            fig = render(**values, **fixed)
            if not isinstance(fig, Figure):
                raise ValueError(f"render must return a matplotlib Figure, got {type(fig).__name__} for {values}")
            try:
                yield index, values, fig
            finally:
                plt.close(fig)


def _settings(params: Sequence[Param], index: Sequence[int]) -> str:
    """The control settings of one frame, as its alternative text opens (``"View at layer l = 3"``)."""
    return "View at " + ", ".join(f"{plotting.plain_text(p.label or p.name)} = {p.readout(p.values[i])}"
                                  for p, i in zip(params, index, strict=True))


def _same_limits(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
        for pair_a, pair_b in zip(a, b, strict=True) for lim_a, lim_b in zip(pair_a, pair_b, strict=True)
        for x, y in zip(lim_a, lim_b, strict=True))


MAX_TOGGLES = 5
"""Categorical parameters with at most this many values are toggle buttons (a slider suggests an order)."""


def is_choice(p: Param) -> bool:
    """Whether ``p`` is shown as a choice (toggle buttons, radio buttons) rather than a slider."""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in p.values)
    return len(p.values) == 2 or (not numeric and len(p.values) <= MAX_TOGGLES)


def _control(p: Param) -> widgets.SelectionSlider | widgets.ToggleButtons:
    """Toggle buttons for a two-way or categorical choice, a selection slider for an ordered grid of numbers.

    Both expose ``index`` for the links.
    """
    options = [(p.readout(v), i) for i, v in enumerate(p.values)]
    if is_choice(p):
        return widgets.ToggleButtons(options=options, index=p.default_index, description=p.label or p.name,
                                     style={"description_width": "initial", "button_width": "auto"})
    return widgets.SelectionSlider(
        options=options,
        index=p.default_index,
        description=p.label or p.name,
        continuous_update=True,
        style={"description_width": "initial"},
        layout=widgets.Layout(width="min(100%, 480px)"),
    )


def live_explorer(
    render: Callable[..., Figure],
    params: Sequence[Param] | Mapping[str, Sequence[Any]],
    *,
    fixed: Mapping[str, Any] | None = None,
    dpi: int = DEFAULT_DPI,
) -> widgets.VBox:
    """Like :func:`explorer`, but renders on demand for *any* value between each grid's ends (needs a live kernel).

    Numeric parameters get a continuous slider from the smallest to the largest grid value; others a dropdown.
    """
    params = as_params(params)
    fixed = dict(fixed or {})
    controls: dict[str, widgets.ValueWidget] = {}
    for p in params:
        default = p.values[p.default_index]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in p.values)
        if numeric and all(isinstance(v, int) for v in p.values):
            controls[p.name] = widgets.IntSlider(value=default, min=min(p.values), max=max(p.values),
                                                 description=p.label or p.name, continuous_update=False)
        elif numeric:
            lo, hi = float(min(p.values)), float(max(p.values))
            controls[p.name] = widgets.FloatSlider(value=float(default), min=lo, max=hi, step=(hi - lo) / 100,
                                                   description=p.label or p.name, continuous_update=False)
        else:
            controls[p.name] = widgets.Dropdown(options=list(p.values), value=default, description=p.label or p.name)
    image = widgets.Image(format="png")

    def update(**values: Any) -> None:
        image.value = figure_png(render(**values, **fixed), dpi=dpi)

    widgets.interactive_output(update, controls)
    return widgets.VBox([*controls.values(), image])


# ------------------------------------------------------------------------------- explorers drawn from their data

DIGITS = 6
"""Significant digits of the numbers embedded in the page."""

_DASHES = {"--": "lines.dashed_pattern", ":": "lines.dotted_pattern", "-.": "lines.dashdot_pattern"}
_SUPERSCRIPT = str.maketrans("0123456789-+.", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺·")


def round_sig(value: Any, digits: int = DIGITS) -> float | None:
    """``value`` rounded to ``digits`` significant digits; ``None`` for NaN or infinity (JSON has neither)."""
    v = float(value)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def _numbers(values: Any) -> list[float | None]:
    array = np.ma.filled(np.ma.asarray(values, dtype=float), np.nan).ravel()
    return [round_sig(v) for v in array]


def _hex(color: Any) -> str:
    return mpl.colors.to_hex(color, keep_alpha=mpl.colors.to_rgba(color)[3] < 1)


def _powers(text: str) -> str:
    """Mathtext powers of digits as superscripts (``10^{-2}`` -> ``10⁻²``, ``R^2`` -> ``R²``); others unchanged."""
    def sup(match: re.Match) -> str:
        body = match.group(1) or match.group(2)
        return body.replace("−", "-").translate(_SUPERSCRIPT) if re.fullmatch(r"[−+\-]?[0-9.]+", body) \
            else match.group(0)

    return re.sub(r"\^\{([^{}]*)\}|\^([0-9])", sup, text)


def label_text(label: str) -> str:
    """A matplotlib label as plain text (:func:`pnc.plotting.plain_text`) with powers of digits as superscripts."""
    return plotting.plain_text(_powers(label)) if "$" in label else label


def tick_text(label: str) -> str:
    """A tick label as text: mathtext powers as superscripts (``$\\mathdefault{10^{-2}}$`` -> ``10⁻²``)."""
    text = label.replace("\\mathdefault", "").replace("\\times", "×").replace("\\minus", "−")
    return label_text(text).replace("-", "−")


def _scale(ax: Axes, which: str) -> dict[str, Any]:
    axis = ax.xaxis if which == "x" else ax.yaxis
    scale = axis.get_scale()
    out: dict[str, Any] = {"scale": scale}
    if scale == "log":
        base = float(axis.get_transform().base)
        if base != 10:
            raise ValueError(f"{which} axis of panel {ax.get_label() or ax}: log base {base:g} (only base 10)")
    elif scale == "symlog":
        out["linthresh"] = round_sig(axis.get_transform().linthresh)
    elif scale != "linear":
        raise ValueError(f"{which} axis of panel {ax.get_label() or ax}: {scale!r} scale is not supported")
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    if lo > hi:
        raise ValueError(f"{which} axis of panel {ax.get_label() or ax}: an inverted axis is not supported")
    out["range"] = [round_sig(lo), round_sig(hi)]
    label = ax.get_xlabel() if which == "x" else ax.get_ylabel()
    out["label"] = label_text(label)
    ticks = []
    for tick_label in axis.get_majorticklabels() + axis.get_minorticklabels():
        if not tick_label.get_text().strip():
            continue
        v = float(tick_label.get_position()[0 if which == "x" else 1])
        if tick_label.get_visible() and lo - 1e-9 * abs(hi - lo) <= v <= hi + 1e-9 * abs(hi - lo):
            ticks.append([round_sig(v), tick_text(tick_label.get_text())])
    out["ticks"] = sorted({t[0]: t for t in ticks}.values())
    return out


def _line(ax: Axes, line: Line2D, panel: int) -> dict[str, Any]:
    x, y = _numbers(line.get_xdata()), _numbers(line.get_ydata())
    label = line.get_label()
    named = bool(label) and not label.startswith("_")
    style = line.get_linestyle()
    width = float(line.get_linewidth())
    marker = line.get_marker()
    marker = None if marker in (None, "None", "none", "", " ") else str(marker)
    out: dict[str, Any] = {"label": label_text(label) if named else "", "legend": named,
                           "color": _hex(line.get_color()), "width": round(width, 2),
                           "dash": [round(v * width, 2) for v in mpl.rcParams[_DASHES[style]]] if style in _DASHES
                           else None,
                           "line": style not in ("None", "none", "", " "),
                           "marker": marker, "size": round(float(line.get_markersize()), 2) if marker else 0}
    transform = line.get_transform()
    if transform == ax.get_yaxis_transform() and len(x) == 2 and y[0] == y[1]:
        return {**out, "kind": "hline", "y": y[0]}  # axhline: x in axes units
    if transform == ax.get_xaxis_transform() and len(x) == 2 and x[0] == x[1]:
        return {**out, "kind": "vline", "x": x[0]}  # axvline: y in axes units
    if transform != ax.transData:
        raise ValueError(f"line {label!r} of panel {panel}: drawn in other than data coordinates")
    if not out["line"] and marker is None:
        raise ValueError(f"line {label!r} of panel {panel}: neither a line nor markers")
    steps = np.diff([v for v in x if v is not None])
    if not (np.all(steps > 0) or np.all(steps < 0)):
        raise ValueError(f"line {label!r} of panel {panel}: its x values are not strictly monotonic (a curve that "
                         "turns back cannot be drawn over one x axis)")
    return {**out, "kind": "line", "x": x, "y": y}


def _band(ax: Axes, patch: Patch, panel: int) -> dict[str, Any]:
    """An ``axvspan``: a patch that spans the axes' whole height; its x extent in data coordinates."""
    box = patch.get_window_extent()
    frame = ax.bbox
    if abs(box.y0 - frame.y0) > 1 or abs(box.y1 - frame.y1) > 1:
        raise ValueError(f"{type(patch).__name__} {patch.get_label()!r} of panel {panel}: a patch that is not a "
                         "vertical span (axvspan) is not supported")
    x0, x1 = ax.transData.inverted().transform([[box.x0, box.y0], [box.x1, box.y1]])[:, 0]
    return {"x": [round_sig(x0), round_sig(x1)], "color": _hex(patch.get_facecolor())}


def _texts(artists: Sequence[Text]) -> list[str]:
    lines = []
    for t in artists:
        if t.get_visible() and t.get_text().strip():
            lines += [label_text(part) for part in t.get_text().split("\n") if part.strip()]
    return lines


def _panel(ax: Axes, number: int) -> dict[str, Any]:
    ignored = {id(ax.patch), id(ax.xaxis), id(ax.yaxis)}
    legend = ax.get_legend()
    if legend is not None:
        ignored.add(id(legend))
    series, bands, notes = [], [], []
    for artist in ax.get_children():
        if id(artist) in ignored or isinstance(artist, Spine) or not artist.get_visible():
            continue
        if isinstance(artist, Line2D):
            series.append(_line(ax, artist, number))
        elif isinstance(artist, Text):
            if artist in ax.texts:  # the others are its three titles (get_title)
                notes += _texts([artist])
        elif isinstance(artist, Patch) and artist in ax.patches:
            bands.append(_band(ax, artist, number))
        else:
            raise ValueError(f"{type(artist).__name__} {artist.get_label()!r} in panel {number} cannot be drawn as "
                             "data in the page (lines, reference lines, vertical spans and texts only); keep this "
                             "explorer on frames")
    titles = [ax.get_title(loc) for loc in ("left", "center", "right")]
    spec = ax.get_subplotspec()
    rows, cols = spec.get_gridspec().get_geometry() if spec is not None else (1, 1)
    return {"title": _texts([Text(text=t) for t in titles if t]), "notes": notes,
            "row": spec.rowspan.start if spec is not None else 0, "col": spec.colspan.start if spec is not None else 0,
            "rows": rows, "cols": cols,
            "x": _scale(ax, "x"), "y": _scale(ax, "y"), "series": series, "bands": bands}


def _read(fig: Figure) -> dict[str, Any]:
    """The data of ``fig`` as drawn now (its colours those of its current theme)."""
    for what, artists in (("line", fig.lines), ("patch", fig.patches), ("image", fig.images),
                          ("artist", fig.artists), ("subfigure", fig.subfigs)):
        if artists:
            raise ValueError(f"figure-level {what} {artists[0]!r} cannot be drawn as data in the page; keep this "
                             "explorer on frames")
    fig.draw_without_rendering()  # tick labels and layout exist once drawn
    axes = [ax for ax in fig.axes if ax.get_visible()]
    places = [tuple(np.round(ax.get_position().bounds, 6)) for ax in axes]
    for ax, place in zip(axes, places, strict=True):
        if ax.get_label() == "<colorbar>":
            raise ValueError("a colorbar cannot be drawn as data in the page; keep this explorer on frames")
        if places.count(place) > 1:
            raise ValueError(f"twin axes (panel at {place}) cannot be drawn as data in the page; keep this explorer "
                             "on frames")
    # the figure's texts (its sup-title among them) in reading order, top to bottom
    texts = _texts(sorted(fig.texts, key=lambda t: -float(t.get_position()[1])))
    panels = [_panel(ax, i) for i, ax in enumerate(axes, start=1)]
    letters = plotting.panel_letters(fig)  # "(a)", "(b)", ... as every rendering of the figure shows them
    for ax, panel in zip(axes, panels, strict=True):
        panel["letter"] = letters.get(ax, "")
    return {"texts": texts, "panels": panels}


def figure_data(fig: Figure) -> dict[str, Any]:
    """What the page draws for ``fig``: ``texts`` (lines above the plots) and ``panels``, each with ``letter`` (its
    panel letter, :func:`pnc.plotting.panel_letters`, or ``""``), ``title``,
    ``notes`` (texts on the axes), its grid place (``row``, ``col`` of ``rows`` × ``cols``), ``x`` and ``y`` (``label``,
    ``scale`` ``"linear"``/``"log"``/``"symlog"`` with ``linthresh``, fixed ``range``, ``ticks`` as ``[value, text]``),
    ``series`` (``kind`` ``"line"`` with ``x``/``y``, ``"hline"`` with ``y``, ``"vline"`` with ``x``; ``label``,
    ``legend``, ``color`` and ``dark`` (the colour in :func:`pnc.plotting.themed`'s dark rendering), ``width``,
    ``dash``, ``line``, ``marker``, ``size``) and ``bands`` (``x`` extent, ``color``, ``dark``). Numbers have
    :data:`DIGITS` significant digits, NaN is ``None``.

    Raises ``ValueError`` naming the first artist that cannot be shown faithfully this way.
    """
    if not isinstance(fig, Figure):
        raise ValueError(f"figure_data needs a matplotlib Figure, got {type(fig).__name__}")
    light = _read(fig)
    with plotting.themed(fig, "dark"):
        dark = _read(fig)
    for panel, dark_panel in zip(light["panels"], dark["panels"], strict=True):
        for s, d in zip(panel["series"], dark_panel["series"], strict=True):
            s["dark"] = d["color"]
        for b, d in zip(panel["bands"], dark_panel["bands"], strict=True):
            b["dark"] = d["color"]
    return light


# ------------------------------------------------------------------------------------------------- the explorer
@dataclass
class DataExplorer:
    """An explorer whose views are plot data (:func:`figure_data`), drawn in the page; display it as the last
    expression of a cell. Build it with :meth:`build` (or ``explorer(..., in_page=True)``)."""

    render: Callable[..., Figure]
    params: tuple[Param, ...]
    views: list[dict[str, Any]]
    """:func:`figure_data` per grid point, in ``itertools.product`` order of the parameters' indices."""
    title: str = ""
    caption: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    default_png: bytes = b""
    default_alt: str = ""

    @classmethod
    def build(cls, render: Callable[..., Figure], params: Sequence[Param] | Mapping[str, Sequence[Any]], *,
              title: str = "", caption: str = "", fixed: Mapping[str, Any] | None = None,
              fixed_axes: bool = True) -> DataExplorer:
        """Call ``render(**values, **fixed)`` at every grid point of ``params`` and keep each figure's data.

        Unless ``fixed_axes=False``, every view must have the same panels with the same axis ranges (the axes stay put
        while a control moves); a ``ValueError`` names the first view that differs, or the artist
        :func:`figure_data` cannot represent."""
        params = as_params(params)
        n_views = math.prod(len(p.values) for p in params)
        if n_views > MAX_FRAMES:
            raise ValueError(f"{n_views} views exceed MAX_FRAMES={MAX_FRAMES}; use a coarser grid")
        fixed = dict(fixed or {})
        clash = set(fixed) & {p.name for p in params}
        if clash:
            raise ValueError(f"keywords {sorted(clash)} are both fixed and controls")
        views = []
        default = tuple(p.default_index for p in params)
        png, alt = b"", ""
        for index, values, fig in _grid_figures(render, params, fixed):
            try:
                data = figure_data(fig)
            except ValueError as err:
                raise ValueError(f"view {values}: {err}") from err
            if index == default:
                png = plotting.figure_png(fig, dpi=DEFAULT_DPI, tight=False)
                alt = plotting.alt_text(fig, _settings(params, index))
            if fixed_axes and views and _ranges(data) != _ranges(views[0]):
                raise ValueError(f"view {values} has axes {_ranges(data)}, the first view {_ranges(views[0])}: set "
                                 "fixed limits in render (ax.set_xlim/set_ylim) or pass fixed_axes=False")
            views.append(data)
        return cls(render=render, params=params, views=views, title=title, caption=caption, fixed=fixed,
                   default_png=png, default_alt=alt)

    # ------------------------------------------------------------------------------------------------ the page
    def config(self) -> dict[str, Any]:
        """The JSON the page script reads: the controls and one :func:`figure_data` per grid point."""
        return {
            "kind": "data",
            "title": self.title,
            "params": [{"name": p.name, "label": plotting.plain_text(p.label or p.name),
                        "values": [p.readout(v) for v in p.values], "default": p.default_index,
                        "choice": is_choice(p)} for p in self.params],
            "views": self.views,
        }

    def view(self, **values: Any) -> dict[str, Any]:
        """The data of the view at ``values`` (parameter name -> one of its grid values; defaults for the rest)."""
        index = 0
        for p in self.params:
            value = values.get(p.name, p.values[p.default_index])
            if value not in p.values:
                raise ValueError(f"{value!r} is not a grid value of {p.name!r}: {p.values}")
            index = index * len(p.values) + p.values.index(value)
        return self.views[index]

    def html(self) -> str:
        """The explorer as the site shows it (``pnc-live.js`` draws the panels from :meth:`config`)."""
        config = json.dumps(self.config(), separators=(",", ":"), allow_nan=False)
        uid = "pnc-data-" + uuid.uuid5(uuid.NAMESPACE_URL, config).hex[:10]
        controls = []
        for k, p in enumerate(self.params):
            cid = f"{uid}-{p.name}"
            label = html.escape(plotting.plain_text(p.label or p.name))
            if is_choice(p):
                buttons = "".join(
                    f'<label class="pnc-data-choice"><input type="radio" name="{cid}" value="{i}" data-param="{k}"'
                    f'{" checked" if i == p.default_index else ""}><span>{html.escape(p.readout(v))}</span></label>'
                    for i, v in enumerate(p.values))
                controls.append(f'<fieldset class="pnc-data-control pnc-data-radios" role="radiogroup">'
                                f'<legend>{label}</legend>{buttons}</fieldset>')
            else:
                shown = html.escape(p.readout(p.values[p.default_index]))
                controls.append(
                    f'<div class="pnc-data-control pnc-data-slider"><label for="{cid}">{label}</label>'
                    f'<input type="range" id="{cid}" data-param="{k}" min="0" max="{len(p.values) - 1}" step="1" '
                    f'value="{p.default_index}" aria-valuetext="{shown}">'
                    f'<output for="{cid}" class="pnc-data-value">{shown}</output></div>')
        caption = f'<p class="pnc-live-caption">{html.escape(self.caption)}</p>' if self.caption else ""
        script = config.replace("</", "<\\/")
        title = html.escape(self.title or "Explorer")
        return (f'<div class="pnc-live pnc-live-data" id="{uid}" role="group" aria-label="{title}">'
                + (f'<p class="pnc-live-title"><b>{html.escape(self.title)}</b></p>' if self.title else "")
                + f'<div class="pnc-data-controls">{"".join(controls)}</div>'
                '<div class="pnc-data-texts"></div><div class="pnc-data-panels"></div>'
                '<p class="pnc-live-status pnc-visually-hidden" aria-live="polite"></p>'
                '<details class="pnc-figure-data"><summary>Data behind the figure</summary>'
                '<div class="pnc-data-tables"></div></details>'
                f'{caption}<script type="application/json" class="pnc-live-config">'
                f'{script}</script></div>')

    # ------------------------------------------------------------------------------------ print and live kernel
    def frames(self) -> Explorer:
        """The ipywidgets frame explorer of the same render function (for a live kernel)."""
        return explorer(self.render, self.params, title=self.title, caption=self.caption, fixed=self.fixed,
                                fixed_axes=False)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        from pnc.book.live import live_kernel

        if live_kernel():
            return self.frames()._repr_mimebundle_(**kwargs)
        settings = ", ".join(f"{p.label or p.name} = {p.readout(p.values[p.default_index])}" for p in self.params)
        return {"text/html": self.html(), "image/png": base64.b64encode(self.default_png).decode("ascii"),
                "text/plain": f"Interactive explorer (shown at {settings}; move the controls on the site)"}


def _ranges(data: Mapping[str, Any]) -> list[tuple]:
    return [(tuple(p["x"]["range"]), tuple(p["y"]["range"])) for p in data["panels"]]
