"""Tests for pnc.figures.measure_own (appendix "Measure your own model")."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from pnc import measure  # noqa: E402
from pnc.figures.measure_own import layer_selection, measure_render, report_bars  # noqa: E402


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
    with pytest.raises(ValueError):
        layer_selection(m, "convolutions")
    with pytest.raises(ValueError, match="no activations"):
        layer_selection(nn.Sequential(nn.Linear(2, 2)), "activations")


def test_measure_render_does_not_depend_on_batch_size():
    m, (X, y) = _model(), _data()
    figs = [measure_render(m, (X, y), layers="activations", batch_size=b) for b in (7, 60)]
    assert all(isinstance(f, Figure) for f in figs)
    a, b = (f.axes[0].lines[0].get_ydata() for f in figs)
    np.testing.assert_allclose(a, b, rtol=1e-10)
    assert len(a) == 3  # input + 2 activations


def test_report_bars_checks_columns():
    m, (X, y) = _model(), _data()
    with pytest.raises(ValueError, match="discrimination"):
        report_bars(measure(m, (X, y), metrics=("compression",)))
    with pytest.raises(ValueError):
        report_bars("report")
