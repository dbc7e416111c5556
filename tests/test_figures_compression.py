"""pnc.book.figures.compression: chapter-4 figures render and reject bad input."""

from __future__ import annotations

import matplotlib as mpl
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pnc.book import recipes, widgets
from pnc.book.figures import compression


@pytest.fixture(scope="module")
def grid():
    return recipes.recipe_grid((0.3,), (4, 6))


def test_discrimination_figure(grid) -> None:
    fig = compression.discrimination_figure(list(grid.values()), labels=["L=4", "L=6"])
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert widgets.figure_png(fig)[:4] == b"\x89PNG"


def test_discrimination_figure_bad_input(grid) -> None:
    with pytest.raises(ValueError, match="at least one"):
        compression.discrimination_figure([])
    with pytest.raises(ValueError, match="labels"):
        compression.discrimination_figure(list(grid.values()), labels=["one"])


def test_explorer_frame_trained_and_theory_only(grid) -> None:
    trained = compression.explorer_frame(0.3, 6, grid)
    assert len(trained.axes) == 2 and len(trained.axes[0].lines) == 2  # theory + measured
    theory_only = compression.explorer_frame(0.4, 8, grid)
    assert len(theory_only.axes[0].lines) == 1
    assert any("theory only" in t.get_text() for t in theory_only.axes[0].texts)


def test_explorer_builds(grid) -> None:
    ex = widgets.explorer(compression.explorer_frame, [widgets.Param("L", (4, 6), fmt="{:d}")],
                          fixed={"xi": 0.3, "runs": grid})
    assert len(ex.frames) == 2


def test_explorer_keeps_its_axes_and_fits_its_text(grid) -> None:
    # trained and theory-only frames of different depths: the same axes, readable text, nothing cut at the edge
    params = [widgets.Param("xi", (0.3, 0.4)), widgets.Param("L", (4, 8), fmt="{:d}")]
    ex = widgets.explorer(compression.explorer_frame, params, dpi=40, fixed={"runs": grid})
    assert len(ex.frames) == 4
    with mpl.rc_context(widgets.FRAME_STYLE):
        fig = compression.explorer_frame(0.3, 4, grid)
        FigureCanvasAgg(fig)
        fig.canvas.draw()
        box = fig.get_tightbbox(fig.canvas.get_renderer())
    width, height = fig.get_size_inches()
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height


def test_practice_figure_shows_both_networks(grid) -> None:
    import numpy as np

    from pnc.report import LayerReport

    linear = grid[(0.3, 6)]  # a trained recipe network, L = 6
    columns = {"compression": np.linspace(13, 2, 10), "discrimination": np.linspace(0.9, 0.6, 10)}
    table = LayerReport.from_dict([{"layer": i, "name": f"layer{i}", "compression": columns["compression"][i],
                                    "discrimination": columns["discrimination"][i]} for i in range(10)])
    pair = recipes.PracticePair(linear=linear, nonlinear=table, nonlinear_loss=0.0, nonlinear_epochs=0)
    fig = compression.practice_figure(pair)
    ax_c, ax_d = fig.axes
    assert ax_c.get_yscale() == "log" and len(ax_c.lines) == 3 and len(ax_d.lines) == 2
    np.testing.assert_allclose(ax_c.lines[0].get_ydata(), linear.compression)
    np.testing.assert_allclose(ax_c.lines[1].get_ydata(), linear.compression[0] * linear.kappa ** np.arange(6))
    np.testing.assert_allclose(ax_c.lines[2].get_ydata(), columns["compression"])
    np.testing.assert_allclose(ax_d.lines[1].get_ydata(), columns["discrimination"][1:])
    assert widgets.figure_png(fig)[:4] == b"\x89PNG"
