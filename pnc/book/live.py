"""Continuous explorers that compute a closed form in the page, with no Python kernel.

Where a plot is driven by a closed form the book derives (:mod:`pnc.book.laws`), the page does not switch between
precomputed frames: it evaluates the formula itself, on every input event, with JavaScript that sympy's code printer
generated from the verified expression when the book was built (:meth:`pnc.book.laws.Formula.javascript`). The reader
gets range sliders with fine steps and a number field for typing any value, and measurements of trained networks are
embedded as numbers and drawn as points at the settings where they were measured.

Two kinds of view, both a :class:`LiveExplorer`:

- ``kind="plot"``: curves of formulas over an x variable (e.g. the layer ``l``), drawn by uPlot (vendored by
  ``dev.py setup``; the site adds it, with ``pnc-live.js``, to the pages that hold one, book_ext/pnc_site.py) on fixed
  axes;
- ``kind="panel"``: typed values in, numbers out: scalar formulas (``kappa``) and a per-layer table (``C_l``,
  ``D_l``), with the formulas typeset.

Displayed in the book's build, the explorer is HTML (the site) plus its default view as a PNG (the PDF, whose builder
prefers images). In a live kernel (Colab, Jupyter: :func:`live_kernel`), it is an ipywidgets version with the same
controls that re-renders the matplotlib view in Python.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import sys
import textwrap
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from pnc import plotting
from pnc.book.laws import Formula

__all__ = ["Control", "Curve", "LiveExplorer", "Measured", "live_kernel"]

COLORS = ("#1b6ca8", "#d1495b", "#2e7d32", "#6a4c93")
"""Curve colours (the book's palette; contrast at least 4.5:1 on white)."""


def live_kernel() -> bool:
    """True in a kernel a reader drives (Colab, Jupyter server, or ``PNC_LIVE=1``), False while the book executes."""
    if os.environ.get("PNC_LIVE") is not None:
        return os.environ["PNC_LIVE"] not in ("", "0")
    return "google.colab" in sys.modules or "JPY_SESSION_NAME" in os.environ


@dataclass(frozen=True)
class Control:
    """One input: the formula argument it sets (``name``), what the reader sees (``label``, plain text), its range,
    step (an integer step and ends make an integer control) and default, and the decimals shown."""

    name: str
    label: str
    lo: float
    hi: float
    step: float
    default: float
    digits: int = 3

    def __post_init__(self) -> None:
        if not (self.lo < self.hi and self.step > 0 and self.lo <= self.default <= self.hi):
            raise ValueError(f"control {self.name}: need lo < hi, step > 0 and lo <= default <= hi")

    @property
    def integer(self) -> bool:
        """Whether the control takes whole numbers only."""
        return all(float(v).is_integer() for v in (self.lo, self.step, self.default))


@dataclass(frozen=True)
class Curve:
    """A formula drawn (or tabulated) over the explorer's x variable; ``upto`` names a control that bounds it
    (``x <= value + offset``, e.g. the layers ``l <= L - 1``)."""

    formula: Formula
    label: str
    upto: str | None = None
    offset: float = 0.0
    dash: bool = True
    bind: Mapping[str, str] = field(default_factory=dict)
    """Formula argument -> the control (or fixed value) that feeds it, where their names differ (three curves of one
    formula with ``sigma`` taken from ``sigma_1``, ``sigma_2``, ``sigma_3``)."""

    @property
    def args(self) -> list[str]:
        """The names the formula's arguments are read from, in order."""
        return [self.bind.get(a, a) for a in self.formula.arg_names]


@dataclass(frozen=True)
class Measured:
    """Measurements of a trained network, drawn as points when every control named in ``when`` has that value.

    Measurements with the same ``label`` share one series (one legend entry); give the series of different curves
    different labels."""

    when: Mapping[str, float]
    x: Sequence[float]
    y: Sequence[float]
    label: str = "trained network"


@dataclass
class LiveExplorer:
    """A continuous explorer; display it as the last expression of a cell (see the module docstring)."""

    title: str
    controls: Sequence[Control]
    curves: Sequence[Curve]
    x_name: str
    x_values: Sequence[float]
    x_label: str
    y_label: str = ""
    y_log: bool = False
    y_range: tuple[float, float] | None = None
    fixed: Mapping[str, float] = field(default_factory=dict)
    measured: Sequence[Measured] = ()
    scalars: Sequence[tuple[Formula, str]] = ()
    """``(formula, label)`` of single numbers shown above the plot or table (e.g. ``kappa``)."""
    caption: str = ""
    kind: str = "plot"

    def __post_init__(self) -> None:
        if self.kind not in ("plot", "panel"):
            raise ValueError(f"kind must be 'plot' or 'panel', got {self.kind!r}")
        if self.kind == "plot" and self.y_range is None:
            raise ValueError("a plot needs a fixed y_range (axes that stay put)")
        known = {c.name for c in self.controls} | set(self.fixed) | {self.x_name}
        needs = [(c.formula.name, c.args) for c in self.curves] + [(f.name, list(f.arg_names)) for f, _ in
                                                                    self.scalars]
        for name, args in needs:
            missing = set(args) - known
            if missing:
                raise ValueError(f"formula {name} needs {sorted(missing)}: not a control, fixed or x")
        names = [c.name for c in self.controls]
        if len(set(names)) != len(names):
            raise ValueError(f"control names must be distinct, got {names}")

    # ----------------------------------------------------------------------------------------------- evaluation
    @property
    def formulas(self) -> list[Formula]:
        """Every formula the explorer evaluates (each once)."""
        seen: dict[str, Formula] = {}
        for formula in [f for f, _ in self.scalars] + [c.formula for c in self.curves]:
            seen.setdefault(formula.name, formula)
        return list(seen.values())

    @property
    def defaults(self) -> dict[str, float]:
        """Every control at its default."""
        return {c.name: float(c.default) for c in self.controls}

    def evaluate(self, values: Mapping[str, float]) -> dict[str, Any]:
        """What the page shows for ``values`` (controls; missing ones at their defaults), computed in numpy from the
        same expressions: ``x``, ``curves`` (one list per curve, ``None`` beyond ``upto``), ``scalars`` and
        ``measured`` (the points shown, ``None`` when the settings do not match)."""
        env = {**self.defaults, **{k: float(v) for k, v in values.items()}, **dict(self.fixed)}
        xs = np.asarray(self.x_values, dtype=float)
        curves = []
        for curve in self.curves:
            args = [xs if name == self.x_name else np.full_like(xs, env[name]) for name in curve.args]
            ys = np.broadcast_to(np.asarray(curve.formula.numpy()(*args), dtype=float), xs.shape)
            limit = env[curve.upto] + curve.offset if curve.upto else math.inf
            curves.append([float(y) if x <= limit + 1e-9 else None for x, y in zip(xs, ys, strict=True)])
        scalars = [float(f.numpy()(*[env[a] for a in f.arg_names])) for f, _ in self.scalars]
        measured = [list(m.y) if _matches(m, env) else None for m in self.measured]
        return {"x": xs.tolist(), "curves": curves, "scalars": scalars, "measured": measured}

    # ------------------------------------------------------------------------------------------------- the page
    def config(self) -> dict[str, Any]:
        """The JSON the page script reads (everything but the formulas' code)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "controls": [{"name": c.name, "label": c.label, "min": c.lo, "max": c.hi, "step": c.step,
                          "value": c.default, "digits": 0 if c.integer else c.digits} for c in self.controls],
            "fixed": dict(self.fixed),
            "x": {"name": self.x_name, "values": [float(v) for v in self.x_values], "label": self.x_label},
            "y": {"label": self.y_label, "log": self.y_log, "range": list(self.y_range) if self.y_range else None},
            "curves": [{"formula": c.formula.name, "args": c.args, "label": c.label,
                        "upto": c.upto, "offset": c.offset, "dash": c.dash, "color": COLORS[i % len(COLORS)]}
                       for i, c in enumerate(self.curves)],
            "measured": [{"when": dict(m.when), "x": [float(v) for v in m.x], "y": [float(v) for v in m.y],
                          "label": m.label} for m in self.measured],
            "scalars": [{"formula": f.name, "args": list(f.arg_names), "label": label} for f, label in self.scalars],
        }

    def formulas_script(self) -> str:
        """The generated JavaScript: each formula registered as ``window.pncLaws[name]``."""
        lines = ["window.pncLaws = window.pncLaws || {};"]
        lines += [f"window.pncLaws[{json.dumps(f.name)}] = {f.javascript()};" for f in self.formulas]
        return "\n".join(lines)

    def html(self) -> str:
        """The explorer as the site shows it (``pnc-live.js`` builds the plot or table from the config)."""
        uid = "pnc-live-" + uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(self.config(), sort_keys=True)).hex[:10]
        rows = []
        for c in self.controls:
            cid = f"{uid}-{c.name}"
            bounds = f'min="{c.lo:g}" max="{c.hi:g}" step="{c.step:g}" value="{c.default:g}"'
            rows.append(
                f'<div class="pnc-live-control"><label for="{cid}">{html.escape(c.label)}</label>'
                f'<input type="range" id="{cid}" data-name="{c.name}" {bounds}>'
                f'<input type="number" data-name="{c.name}" aria-label="{html.escape(c.label)}, typed value" '
                f'{bounds}></div>')
        # Sphinx's MathJax configuration typesets only elements of class "math"
        shown = "".join(f'<div class="math notranslate nohighlight">\\[{line}\\]</div>'
                        for f in self.formulas for line in f.latex_lines())
        config = json.dumps(self.config()).replace("</", "<\\/")
        target = ('<div class="pnc-live-plot"></div>' if self.kind == "plot"
                  else '<div class="pnc-live-table" tabindex="0"></div>')
        caption = f'<p class="pnc-live-caption">{html.escape(self.caption)}</p>' if self.caption else ""
        return (
            f'<div class="pnc-live pnc-live-{self.kind}" id="{uid}" role="group" '
            f'aria-label="{html.escape(self.title)}">'
            f'<p class="pnc-live-title"><b>{html.escape(self.title)}</b></p>'
            f'<div class="pnc-live-formulas">{shown}</div>'
            f'<div class="pnc-live-controls">{"".join(rows)}</div>'
            f'<p class="pnc-live-scalars"></p>{target}'
            f'<p class="pnc-live-status pnc-visually-hidden" aria-live="polite"></p>{caption}'
            f'<script type="application/json" class="pnc-live-config">{config}</script>'
            f"<script>{self.formulas_script()}</script></div>")

    # ------------------------------------------------------------------------------------ print and live kernel
    def figure(self, **values: float) -> Figure:
        """The view at ``values`` (defaults for the rest) as a matplotlib figure: the PDF's still and the live
        kernel's picture. A panel is drawn as one plot per column."""
        shown = self.evaluate(values)
        env = {**self.defaults, **values}
        panels = self.curves if self.kind == "panel" else [None]
        fig = Figure(figsize=(6.4, 3.2 if len(panels) == 1 else 3.0), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        xs = shown["x"]
        for i, curve in enumerate(self.curves):
            ax = axes[i if self.kind == "panel" else 0]
            ys = [np.nan if y is None else y for y in shown["curves"][i]]
            ax.plot(xs, ys, "--" if curve.dash else "-", marker="o" if len(xs) <= 30 else None, ms=3,
                    color=COLORS[i % len(COLORS)],
                    label=curve.label)
            if self.kind == "panel":
                ax.set_xlabel(self.x_label)
                ax.set_ylabel(_mathtext(curve.label))
                if curve.formula.name == "compression":
                    ax.set_yscale("log")
        main = axes[0]
        labels = list(dict.fromkeys(m.label for m in self.measured))
        labelled: set[str] = set()
        for m, ys in zip(self.measured, shown["measured"], strict=True):
            if ys is not None:  # coloured like the curves when there are several (as in the page)
                k = labels.index(m.label)
                color = COLORS[k % len(self.curves) % len(COLORS)] if len(self.curves) > 1 else "#222222"
                main.plot(m.x, ys, "o", ms=4, color=color, label=None if m.label in labelled else m.label)
                labelled.add(m.label)
        if self.y_log:
            main.set_yscale("log")
        if self.y_range is not None:
            main.set_ylim(*self.y_range)
        if self.kind == "plot":
            pad = 0.03 * (max(xs) - min(xs))  # as the page
            main.set_xlim(min(xs) - pad, max(xs) + pad)
            main.set_xlabel(self.x_label)
            main.set_ylabel(_mathtext(self.y_label))
            main.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)  # beside the data, not on it
        settings = ", ".join(f"{c.label} = {env[c.name]:.{0 if c.integer else c.digits}f}" for c in self.controls)
        numbers = "; ".join(f"{label} = {value:.4g}" for (_, label), value in
                            zip(self.scalars, shown["scalars"], strict=True))
        fig.suptitle(textwrap.fill(settings + (f"  ({numbers})" if numbers else ""), 90), fontsize=9)
        return plotting.describe(fig, f"{self.title} at {settings}" + (f": {numbers}" if numbers else ""))

    def widget(self) -> Any:
        """The ipywidgets version for a live kernel: the same controls, the view re-rendered in Python."""
        import ipywidgets as widgets

        controls: dict[str, Any] = {}
        for c in self.controls:
            kind = widgets.IntSlider if c.integer else widgets.FloatSlider
            controls[c.name] = kind(value=c.default, min=c.lo, max=c.hi, step=c.step, description=c.label,
                                    continuous_update=False, style={"description_width": "initial"})
        image = widgets.Image(format="png")

        def update(**values: float) -> None:
            image.value = plotting.figure_png(self.figure(**values), dpi=96)

        widgets.interactive_output(update, controls)
        return widgets.VBox([widgets.HTML(f"<b>{html.escape(self.title)}</b>"), *controls.values(), image])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if live_kernel():
            return self.widget()._repr_mimebundle_(**kwargs)
        png = plotting.figure_png(self.figure(), dpi=144, tight=False)
        settings = ", ".join(f"{c.label} = {c.default:g}" for c in self.controls)
        return {"text/html": self.html(), "image/png": base64.b64encode(png).decode("ascii"),
                "text/plain": f"{self.title} (shown at {settings}; move the controls on the site)"}


def _mathtext(label: str) -> str:
    """``C_l`` as matplotlib mathtext (``$C_l$``); other labels unchanged."""
    return f"${label}$" if re.fullmatch(r"[A-Za-z]+_[A-Za-z0-9]+", label) else label


def _matches(m: Measured, env: Mapping[str, float]) -> bool:
    return all(abs(env[k] - float(v)) <= 1e-9 * max(1.0, abs(float(v))) for k, v in m.when.items())
