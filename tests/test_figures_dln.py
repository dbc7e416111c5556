"""Tests for pnc.figures.dln."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from pnc import data, dln
from pnc.figures import dln as fd
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
    with pytest.raises(ValueError):
        fd.spectra_and_imbalance("nope", 0.3)
