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

import io
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["Explorer", "Param", "explorer", "figure_png", "live_explorer"]

MAX_FRAMES = 64
"""Upper bound on the number of precomputed frames of one explorer (page weight: frames are inlined)."""

DEFAULT_DPI = 72


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
    """Render a matplotlib figure to PNG bytes and close it."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buffer.getvalue()


@dataclass
class Explorer:
    """A built explorer: the widget to display, and what it was built from (for tests and reuse)."""

    widget: widgets.VBox
    params: tuple[Param, ...]
    frames: dict[tuple[int, ...], bytes]
    """PNG bytes per tuple of slider indices."""
    sliders: tuple[widgets.SelectionSlider, ...]
    stacks: list[list[widgets.Stack]] = field(default_factory=list)
    """``stacks[i]`` are the stacks switched by slider ``i``."""
    links: list[widgets.Link] = field(default_factory=list)
    """The browser-side links slider ``index`` -> stack ``selected_index`` (one per stack)."""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    @property
    def page_bytes(self) -> int:
        """Total size of the PNG frames (what the explorer adds to a page, before base64)."""
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
) -> Explorer:
    """Precompute ``render(**values)`` over the grid of ``params`` and link sliders to the frames in the browser.

    ``render`` returns a matplotlib figure for one combination of slider values (plus the ``fixed`` keywords); it is
    called once per grid point, at most :data:`MAX_FRAMES` times. The returned :class:`Explorer` displays as the
    widget. The default view (each slider at its default) is meaningful without moving anything.
    """
    params = _as_params(params)
    n_frames = math.prod(len(p.values) for p in params)
    if n_frames > MAX_FRAMES:
        raise ValueError(f"{n_frames} frames exceed MAX_FRAMES={MAX_FRAMES}; use a coarser grid")
    if dpi < 20 or dpi > 200:
        raise ValueError(f"dpi must be between 20 and 200, got {dpi}")
    fixed = dict(fixed or {})
    clash = set(fixed) & {p.name for p in params}
    if clash:
        raise ValueError(f"keywords {sorted(clash)} are both fixed and sliders")

    frames: dict[tuple[int, ...], bytes] = {}
    for index in itertools.product(*(range(len(p.values)) for p in params)):
        values = {p.name: p.values[i] for p, i in zip(params, index, strict=True)}
        fig = render(**values, **fixed)
        if not isinstance(fig, Figure):
            raise ValueError(f"render must return a matplotlib Figure, got {type(fig).__name__} for {values}")
        frames[index] = figure_png(fig, dpi=dpi)

    stacks: list[list[widgets.Stack]] = [[] for _ in params]

    def build(depth: int, prefix: tuple[int, ...]) -> widgets.Widget:
        if depth == len(params):
            return widgets.Image(value=frames[prefix], format="png", layout=widgets.Layout(max_width="100%"))
        children = [build(depth + 1, prefix + (i,)) for i in range(len(params[depth].values))]
        stack = widgets.Stack(children=children, selected_index=params[depth].default_index)
        stacks[depth].append(stack)
        return stack

    view = build(0, ())
    sliders = tuple(
        widgets.SelectionSlider(
            options=[(p.readout(v), i) for i, v in enumerate(p.values)],
            index=p.default_index,
            description=p.label or p.name,
            continuous_update=True,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="min(100%, 480px)"),
        )
        for p in params
    )
    links = [widgets.jslink((slider, "index"), (stack, "selected_index"))
             for slider, linked in zip(sliders, stacks, strict=True) for stack in linked]

    parts: list[widgets.Widget] = []
    if title:
        parts.append(widgets.HTML(f"<b>{title}</b>"))
    parts.extend(sliders)
    parts.append(view)
    note = "Views are precomputed for the slider values shown; run the notebook to compute others."
    parts.append(widgets.HTML(f"<small>{caption + ' ' if caption else ''}{note}</small>"))
    box = widgets.VBox(parts, layout=widgets.Layout(max_width="720px"))
    box.add_class("pnc-explorer")
    return Explorer(widget=box, params=params, frames=frames, sliders=sliders, stacks=stacks, links=links)


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
