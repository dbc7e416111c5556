"""Tests for pnc.book.figures.measure_own (appendix "Measure your own model")."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from pnc import measure  # noqa: E402
from pnc.book import widgets  # noqa: E402
from pnc.book.figures.measure_own import all_selected_layers, layer_selection, measure_render, report_bars  # noqa: E402


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Flatten(), nn.Linear(8, 5), nn.Tanh(), nn.Linear(5, 3))


def _data():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    return torch.randn(60, 6, generator=g) + torch.eye(6)[y] * 3, y


def test_layer_selection():
    m = _model()
    assert layer_selection(m, "children") == ["0", "1", "2", "3", "4", "5"]
    assert layer_selection(m, "activations") == ["1", "4"]
    assert layer_selection(m, "weights") == ["0", "3", "5"]
    with pytest.raises(ValueError, match=r"one of \('children', 'activations', 'weights'\), got 'convolutions'"):
        layer_selection(m, "convolutions")
    with pytest.raises(ValueError, match="no activations"):
        layer_selection(nn.Sequential(nn.Linear(2, 2)), "activations")


def test_measure_render_does_not_depend_on_batch_size():
    m, (X, y) = _model(), _data()
    figs = [measure_render(m, (X, y), layers="activations", batch_size=b) for b in (7, 60)]
    assert all(isinstance(f, Figure) for f in figs)
    a, b = (f.axes[0].lines[-1].get_ydata() for f in figs)  # [-1]: the selection, over the grey context
    assert len(a) == 3  # input + 2 activations
    # the input row involves no forward pass: the float64 streaming statistics agree to rounding
    np.testing.assert_allclose(a[0], b[0], rtol=1e-10)
    # the activations come from float32 forward passes, and BLAS picks different GEMM kernels (summation
    # orders) for batches of 7 and 60 rows, so they agree only to float32 rounding (~1e-7 relative; 1.7e-8
    # was seen in C). A batching bug (a dropped, repeated or misaligned batch) moves C by percents.
    np.testing.assert_allclose(a[1:], b[1:], rtol=1e-5)


def test_report_bars_checks_columns():
    m, (X, y) = _model(), _data()
    with pytest.raises(ValueError, match="discrimination"):
        report_bars(measure(m, (X, y), metrics=("compression",)))
    with pytest.raises(ValueError, match="report must be a LayerReport, got str"):
        report_bars("report")


def test_measure_explorer_keeps_its_axes():
    # selections of different layers and batch sizes: the same axes (those of every layer any selection measures)
    m, data = _model(), _data()
    params = [widgets.Param("layers", ["children", "activations"], fmt="{}"), widgets.Param("batch_size", [7, 60])]
    ex = widgets.explorer(measure_render, params, dpi=40, fixed={"model": m, "data": data})
    assert len(ex.frames) == 4
    assert all_selected_layers(m) == ["0", "1", "2", "3", "4", "5"]
