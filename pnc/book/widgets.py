"""Kernel-free interactive explorers for the static book.

A static HTML page has no Python behind it, so callbacks (``interact``, ``observe``) cannot run there. An
:func:`explorer` therefore renders one figure per point of a small grid of slider values *at build time* and wires the
sliders to the frames entirely in the browser: each slider is ``jslink``-ed to the ``selected_index`` of a
``widgets.Stack`` of PNG images (nested stacks for two or more sliders). The page then needs only the widget embed
script, which the book serves itself.

In a live kernel (Jupyter, Colab) the same widget works, and :func:`live_explorer` additionally computes views for any
slider value off the grid.
"""

from __future__ import annotations

import base64
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.text import Text

from pnc import plotting

__all__ = ["Explorer", "Param", "explorer", "figure_png", "live_explorer"]

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


def _as_params(params: Sequence[Param] | Mapping[str, Sequence[Any]]) -> tuple[Param, ...]:
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
) -> Explorer:
    """Precompute ``render(**values)`` over the grid of ``params`` and link the controls to the frames in the browser.

    ``render`` returns a matplotlib figure for one combination of values (plus the ``fixed`` keywords); it is called
    once per grid point, at most :data:`MAX_FRAMES` times, under :data:`FRAME_STYLE`. A parameter with two values is
    shown as toggle buttons, as is a categorical one (strings, up to :data:`MAX_TOGGLES` values); an ordered grid of
    numbers is a slider. The returned :class:`Explorer` displays as the widget; the
    default view (each control at its default) is meaningful without moving anything.

    Frames must be readable and comparable: every text must be at least :func:`min_font_pt` points for the frame's
    width, and, unless ``fixed_axes=False``, every frame must have the same axis limits (set them in ``render``), so
    that moving a control moves the picture, not the axes. Otherwise a ``ValueError`` names the frame and the text.
    """
    params = _as_params(params)
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
    for index in itertools.product(*(range(len(p.values)) for p in params)):
        values = {p.name: p.values[i] for p, i in zip(params, index, strict=True)}
        with mpl.rc_context(FRAME_STYLE):
            fig = render(**values, **fixed)
            if not isinstance(fig, Figure):
                raise ValueError(f"render must return a matplotlib Figure, got {type(fig).__name__} for {values}")
            try:
                # the frame in the light and the dark style (the site's colour modes, pnc-site.css), each also in a
                # narrow rendering with its panels stacked for phones, as every figure of the book
                renderings = plotting.figure_renderings(fig, dpi, tight=False)
                frames[index] = renderings[("light", "wide")]
                pages[index] = plotting.figure_html(fig, renderings, prefix=_settings(params, index),
                                                    css_class="pnc-frame-image", fill=True, scale=dpi / fig.dpi)
                sizes = _visible_font_sizes(fig)
                limits = _axis_limits(fig)
                width_in = float(fig.get_figwidth())
            finally:
                plt.close(fig)
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


def _is_choice(p: Param) -> bool:
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in p.values)
    return len(p.values) == 2 or (not numeric and len(p.values) <= MAX_TOGGLES)


def _control(p: Param) -> widgets.SelectionSlider | widgets.ToggleButtons:
    """Toggle buttons for a two-way or categorical choice, a selection slider for an ordered grid of numbers.

    Both expose ``index`` for the links.
    """
    options = [(p.readout(v), i) for i, v in enumerate(p.values)]
    if _is_choice(p):
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
    params = _as_params(params)
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
