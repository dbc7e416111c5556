"""pnc.book.figures.assumptions: chapter-5 figures render and reject bad input."""

from __future__ import annotations

import matplotlib as mpl
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pnc.book import assumptions, widgets
from pnc.book.figures import assumptions as figures


@pytest.fixture(scope="module")
def runs():
    return assumptions.failure_sweep({"init scale": ("xi", (0.3, 0.4)), "weight decay": ("weight_decay", (0.0, 0.01))},
                                     epochs=60)


def test_assumption_check_figure() -> None:
    frame = assumptions.assumption_check(depths=(2, 3), widths=(100, 150), seeds=(1, 2), depth_width=100)
    fig = figures.assumption_check_figure(frame)
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    assert widgets.figure_png(fig)[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="columns"):
        figures.assumption_check_figure(pd.DataFrame({"panel": ["depth"]}))


def test_failure_figure_and_frame(runs) -> None:
    fig = figures.failure_figure(runs)
    assert sum(ax.get_visible() for ax in fig.axes) == 2
    frame = figures.failure_frame("weight decay", 1, runs)
    assert len(frame.axes) == 2
    with pytest.raises(ValueError, match="no run"):
        figures.failure_frame("weight decay", 3, runs)
    with pytest.raises(ValueError, match="no known"):
        figures.failure_figure({})


def test_failure_explorer_keeps_its_axes_and_fits_its_text(runs) -> None:
    params = [widgets.Param("mode", ("init scale", "weight decay"), fmt="{}"), widgets.Param("severity", (0, 1))]
    ex = widgets.explorer(figures.failure_frame, params, dpi=40, fixed={"runs": runs})
    assert len(ex.frames) == 4
    limits = figures.failure_frame_limits(runs)
    low, high = limits["compression"]
    assert all(low <= c <= high for run in runs.values() for c in run.result.compression)
    with mpl.rc_context(widgets.FRAME_STYLE):
        fig = figures.failure_frame("weight decay", 1, runs)
        FigureCanvasAgg(fig)
        fig.canvas.draw()
        box = fig.get_tightbbox(fig.canvas.get_renderer())
    width, height = fig.get_size_inches()
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height
