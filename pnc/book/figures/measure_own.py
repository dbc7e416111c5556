"""Figures of the appendix "Measure your own model": a layer selection helper and the explorer's render function."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from torch import nn

from pnc.features import default_layers
from pnc.plotting import COLORS
from pnc.report import LayerReport, measure

__all__ = ["LAYER_SELECTIONS", "all_selected_layers", "layer_selection", "measure_render", "report_bars"]

LAYER_SELECTIONS = ("children", "activations", "weights")
"""Names accepted by :func:`layer_selection`."""


def layer_selection(model: nn.Module, which: str) -> list[str]:
    """Names of the layers to measure: ``"children"`` (pnc's default for an ``nn.Sequential``), ``"activations"``
    (outputs of activation modules such as ``nn.ReLU``) or ``"weights"`` (modules with their own parameters)."""
    if which not in LAYER_SELECTIONS:
        raise ValueError(f"which must be one of {LAYER_SELECTIONS}, got {which!r}")
    if which == "children":
        return [name for name, _ in default_layers(model)]
    out = []
    for name, mod in model.named_modules():
        if name == "" or any(True for _ in mod.children()):
            continue
        has_params = any(True for _ in mod.parameters(recurse=False))
        is_activation = type(mod).__module__ == "torch.nn.modules.activation"
        if (which == "weights" and has_params) or (which == "activations" and is_activation):
            out.append(name)
    if not out:
        raise ValueError(f"model has no {which} layers")
    return out


def all_selected_layers(model: nn.Module) -> list[str]:
    """Every layer that some selection of :data:`LAYER_SELECTIONS` measures, in the model's module order."""
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    names: set[str] = set()
    for which in LAYER_SELECTIONS:
        try:
            names.update(layer_selection(model, which))
        except ValueError:  # e.g. a model without activation modules
            continue
    return sorted(names, key=lambda name: order.get(name, len(order)))


def report_bars(report: LayerReport, figsize: tuple[float, float] = (6.4, 3.4),
                context: LayerReport | None = None) -> Figure:
    """Compression (log scale) and discrimination per measured layer, labelled by layer name.

    With ``context`` (a report of more layers of the same model, e.g. at :func:`all_selected_layers`), its values are
    drawn as a grey line behind, ``report``'s layers sit at their places among its layers, and the axes are those of
    ``context``: views of different selections then share their axes.
    """
    for name, r in (("report", report), ("context", context)):
        if r is None:
            continue
        if not isinstance(r, LayerReport):
            raise ValueError(f"{name} must be a LayerReport, got {type(r).__name__}")
        for col in ("compression", "discrimination"):
            if col not in r.columns:
                raise ValueError(f"{name} lacks the {col!r} column; measure with metrics including {col!r}")
    names = list(context.names) if context is not None else list(report.names)
    missing = [n for n in report.names if n not in names]
    if missing:
        raise ValueError(f"context lacks the layers {missing} of report")
    x = np.array([names.index(n) for n in report.names], dtype=float)
    fig = Figure(figsize=figsize, layout="constrained")
    ax_c, ax_d = fig.subplots(1, 2)
    if context is not None:
        ax_c.semilogy(np.arange(len(names)), context.column("compression"), "-", color="0.75", lw=1.5, zorder=1)
        ax_d.plot(np.arange(len(names)), context.column("discrimination"), "-", color="0.75", lw=1.5, zorder=1)
    ax_c.semilogy(x, report.column("compression"), "o-", color=COLORS[0], zorder=2)
    ax_c.set_ylabel("compression $C$")
    ax_d.plot(x, report.column("discrimination"), "s-", color=COLORS[1], zorder=2)
    ax_d.set_ylabel("discrimination $D$")
    if context is not None:
        c, d = context.column("compression"), context.column("discrimination")
        c = c[np.isfinite(c) & (c > 0)]
        if c.size:
            ax_c.set_ylim(float(c.min()) / 2, float(c.max()) * 1.6)
        top = float(np.nanmax(d)) if np.isfinite(d).any() else 1.0
        ax_d.set_ylim(0.0, max(1.0, 1.08 * top))
    for ax in (ax_c, ax_d):
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_xticks(np.arange(len(names)), ["in" if n == "input" else n for n in names])
        ax.set_xlabel("layer name")
    return fig


def measure_render(model: nn.Module, data: Any, layers: str = "children", batch_size: int = 128) -> Figure:
    """Measure ``model`` on ``data`` at the layers of :func:`layer_selection` with ``batch_size`` and plot the report.

    The numbers do not depend on ``batch_size`` (streaming statistics are exact); the annotation shows the last
    layer's compression so a reader can check that. Every layer that any selection measures is drawn in grey behind
    (and sets the axes, the same for every selection and batch size), so a view shows where its layers sit.
    """
    report = measure(model, data, layers=layer_selection(model, layers), batch_size=batch_size,
                     metrics=("compression", "discrimination"))
    context = measure(model, data, layers=all_selected_layers(model), metrics=("compression", "discrimination"))
    fig = report_bars(report, context=context)
    fig.axes[0].annotate(f"last: C = {report.column('compression')[-1]:.6g}", xy=(0.03, 0.04),
                         xycoords="axes fraction")
    return fig
