"""Tests for pnc.figures.measuring."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from pnc import measuring
from pnc.figures import measuring as fm


def test_between_plane_separates_means():
    X, y = measuring.structured_mixture(20, 3, 10, 2.0, 0.01, seed=0)
    pts = fm.between_plane(X, y)
    assert pts.shape == (60, 2)
    centres = np.stack([pts[y.numpy() == c].mean(0) for c in range(3)])
    # orthonormal means times 2 -> pairwise distance 2 sqrt(2), preserved in the plane
    d = np.linalg.norm(centres[0] - centres[1])
    assert d == pytest.approx(2 * np.sqrt(2), rel=1e-6)
    with pytest.raises(ValueError):
        fm.between_plane(np.zeros((3, 2)), np.zeros(4))


def test_render_and_noise_figures():
    fig = fm.render_mixture(0.2, 1.0, n_per_class=10)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    samples = {k: measuring.structured_mixture(10, 3, 10, 1.0, 0.2, noise=k) for k in measuring.NOISE_KINDS}
    mets = {k: measuring.metric_summary(*v) for k, v in samples.items()}
    fig = fm.noise_geometry_figure(samples, mets)
    assert len(fig.axes) == 3
    with pytest.raises(ValueError):
        fm.noise_geometry_figure(samples, {}, kinds=["isotropic"])
