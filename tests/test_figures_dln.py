"""Tests for pnc.book.figures.dln."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from pnc import data
from pnc.book import dln, widgets
from pnc.book.figures import dln as fd
from pnc.train import TrainConfig


def test_spectra_and_render():
    X, y = data.orthogonal_dataset(4, 3, 12, seed=0)
    cfg = TrainConfig(lr=0.05, alpha=10.0, epochs=20, schedule="constant")
    grid = dln.trajectory_grid(X, y, [0.2, 0.3], [3], cfg, every=10)
    fig = fd.render_trajectory(0.3, 3, grid)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert len(fig.axes[1].lines) == 2  # one imbalance curve per pair
    with pytest.raises(ValueError, match="precomputed"):
        fd.render_trajectory(0.1, 3, grid)
    with pytest.raises(ValueError, match="traj must be a DLNTrajectory, got str"):
        fd.spectra_and_imbalance("nope", 0.3)


def test_trajectory_explorer_keeps_its_axes():
    # runs of different depth, length and spectrum share the axes of the whole grid
    X, y = data.orthogonal_dataset(4, 3, 12, seed=0)
    cfg = TrainConfig(lr=0.05, alpha=10.0, epochs=60, schedule="constant", loss_tol=1e-3)
    grid = dln.trajectory_grid(X, y, [0.1, 0.3], [2, 3], cfg, every=5)
    assert len({int(t.epochs[-1]) for t in grid.values()}) > 1
    ex = widgets.explorer(fd.render_trajectory, [widgets.Param("xi", [0.1, 0.3]), widgets.Param("L", [2, 3])],
                          dpi=40, fixed={"trajectories": grid})
    assert len(ex.frames) == 4
    limits = fd.trajectory_limits(grid, n_top=12)
    assert limits["epoch"] == (0.0, max(float(t.epochs[-1]) for t in grid.values()))
