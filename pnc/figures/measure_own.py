"""Figures of the appendix "Measure your own model": a layer selection helper and the explorer's render function."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from torch import nn

from ..features import default_layers
from ..plotting import COLORS
from ..report import LayerReport, measure

__all__ = ["LAYER_SELECTIONS", "layer_selection", "measure_render", "report_bars"]

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


def report_bars(report: LayerReport, figsize: tuple[float, float] = (6.4, 3.2)) -> Figure:
    """Compression (log scale) and discrimination per measured layer, labelled by layer name."""
    if not isinstance(report, LayerReport):
        raise ValueError(f"report must be a LayerReport, got {type(report).__name__}")
    for col in ("compression", "discrimination"):
        if col not in report.columns:
            raise ValueError(f"report lacks the {col!r} column; measure with metrics including {col!r}")
    x = np.arange(len(report))
    fig = Figure(figsize=figsize, layout="constrained")
    ax_c, ax_d = fig.subplots(1, 2)
    ax_c.semilogy(x, report.column("compression"), "o-", color=COLORS[0])
    ax_c.set_ylabel("compression $C$")
    ax_d.plot(x, report.column("discrimination"), "s-", color=COLORS[1])
    ax_d.set_ylabel("discrimination $D$")
    for ax in (ax_c, ax_d):
        ax.set_xticks(x, report.names, rotation=45, fontsize=8)
        ax.set_xlabel("layer name")
    return fig


def measure_render(model: nn.Module, data: Any, layers: str = "children", batch_size: int = 128) -> Figure:
    """Measure ``model`` on ``data`` at the layers of :func:`layer_selection` with ``batch_size`` and plot the report.

    The numbers do not depend on ``batch_size`` (streaming statistics are exact); the annotation shows the last
    layer's compression so a reader can check that.
    """
    report = measure(model, data, layers=layer_selection(model, layers), batch_size=batch_size,
                     metrics=("compression", "discrimination"))
    fig = report_bars(report)
    fig.axes[0].annotate(f"last: C = {report.column('compression')[-1]:.6g}", xy=(0.02, 0.04),
                         xycoords="axes fraction", fontsize=8)
    return fig
