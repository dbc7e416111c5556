"""pnc.figures.assumptions: chapter-5 figures render and reject bad input."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

from pnc import assumptions, widgets
from pnc.figures import assumptions as figures


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
