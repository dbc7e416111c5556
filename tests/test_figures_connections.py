"""Tests for pnc.book.figures.connections (figures of the chapter "Connections")."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pnc.book import widgets  # noqa: E402
from pnc.book.connections import NeuralCollapse  # noqa: E402
from pnc.book.dynamics import ModeTrace  # noqa: E402
from pnc.book.figures import connections as F  # noqa: E402
from pnc.report import LayerReport  # noqa: E402


def _report() -> LayerReport:
    rows = tuple(
        {"layer": i, "name": f"l{i}", "dim": 8, "fuzziness": 5.0 * 0.5**i, "nc1": 1.25 * 0.5**i, "rate": 10.0 - i,
         "class_rate": 6.0 - 1.5 * i, "rate_reduction": 4.0 + 0.5 * i, "numerical_rank": 8 - i,
         "probe_train": min(1.0, 0.8 + 0.1 * i), "probe_test": min(1.0, 0.75 + 0.1 * i)}
        for i in range(4)
    )
    return LayerReport(columns=tuple(rows[0]), rows=rows)


def test_nc_trajectory_figure():
    nc = [NeuralCollapse(1.0 / (e + 1), 0.5, 0.1, 0.8 / (e + 1), 0.1 / (e + 1), 0.2 / (e + 1)) for e in range(3)]
    fig = F.nc_trajectory_figure([0, 10, 20], nc)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert len(fig.axes[0].lines) == 3
    with pytest.raises(ValueError, match=r"as many \(>= 2\) epochs as measurements, got 2 and 3"):
        F.nc_trajectory_figure([0, 10], nc)


def test_separation_and_tunnel_figures():
    fig = F.separation_figure(_report())
    assert len(fig.axes) == 2
    assert "ratio 0.5" in fig.axes[0].get_legend().get_texts()[1].get_text()
    fig = F.tunnel_figure(_report())
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [8, 7, 6, 5])
    bad = LayerReport(columns=("layer",), rows=({"layer": 0}, {"layer": 1}))
    with pytest.raises(ValueError, match="lacks"):
        F.separation_figure(bad)
    with pytest.raises(ValueError, match="report must be a LayerReport, got str"):
        F.tunnel_figure("not a report")


def test_saxe_figure_and_render():
    t = np.arange(0, 50, 5.0)
    th = np.stack([2 / (1 + 100 * np.exp(-0.2 * t)), 1 / (1 + 100 * np.exp(-0.1 * t))], axis=1)
    trace = ModeTrace(steps=t, measured=th, theory=th, s=np.array([2.0, 1.0]), u0=np.array([0.02, 0.01]), tau=10.0)
    fig = F.saxe_figure(trace)
    assert len(fig.axes[0].lines) == 5  # 2 modes x (markers, dashed) + legend proxy
    with pytest.raises(ValueError, match="trace must be a ModeTrace, got ndarray"):
        F.saxe_figure(th)
    fig = F.saxe_render(xi=0.3, counts=(2, 5), tau=20.0, steps=40, every=10, width=8, dim=12)
    assert isinstance(fig, Figure)
    measured = fig.axes[0].lines[0].get_ydata()
    assert measured[-1] == pytest.approx(np.sqrt(5), rel=0.05)  # strongest mode learned


def test_saxe_explorer_keeps_its_axes():
    params = [widgets.Param("xi", [0.1, 0.3]), widgets.Param("counts", [(2, 5), (4, 9)], fmt="{}")]
    ex = widgets.explorer(F.saxe_render, params, dpi=40,
                          fixed={"tau": 20.0, "steps": 40, "every": 10, "width": 8, "dim": 16, "u_max": 3.0})
    assert len(ex.frames) == 4


def _rate_law():
    from pnc import theory
    from pnc.book.connections import RateLaw

    K, n, L, eps, alpha, width = 3, 4, 5, 0.4, 3.0, 20
    layers = np.arange(L)
    C = theory.layerwise_compression(layers, eps, n, K, L, alpha)
    predicted = theory.layerwise_coding_rates(layers, eps, n, K, L, alpha, width=width, eps_sq=0.5)
    measured = theory.CodingRates(*(1.01 * np.asarray(r) for r in predicted))
    return RateLaw(measured=measured, predicted=predicted,
                   from_compression=theory.coding_rates_from_compression(C, n, K, width=width, eps_sq=0.5),
                   collapsed=theory.coding_rates_from_compression(0.0, n, K, width=width, eps_sq=0.5),
                   compression=C, theory_compression=C, kappa=theory.compression_ratio(eps, n, L, alpha),
                   eps_sq=0.5, width=width, n=n, K=K)


def test_rate_law_figure():
    law = _rate_law()
    fig = F.rate_law_figure(law)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    left, right = fig.axes
    np.testing.assert_allclose(left.lines[0].get_ydata(), law.measured.rate)  # R trained, first
    np.testing.assert_allclose(left.lines[1].get_ydata(), law.predicted.rate)
    assert len(left.lines) == 9 and len(right.lines) == 9  # 3 rates x (markers, closed form, limit)
    np.testing.assert_allclose(right.lines[0].get_xdata(), law.compression)
    assert right.get_xscale() == "log" and right.xaxis_inverted()
    np.testing.assert_allclose(law.relative_errors()["rate"], 1 - 1 / 1.01, rtol=1e-9)  # |predicted/measured - 1|
    with pytest.raises(ValueError, match="RateLaw"):
        F.rate_law_figure(_report())
    with pytest.raises(ValueError, match="n_grid"):
        F.rate_law_figure(law, n_grid=1)
