"""Tests for pnc.book.figures.measuring."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from pnc.book import measuring, widgets
from pnc.book.figures import measuring as fm


def test_between_plane_separates_means():
    X, y = measuring.structured_mixture(20, 3, 10, 2.0, 0.01, seed=0)
    pts = fm.between_plane(X, y)
    assert pts.shape == (60, 2)
    centres = np.stack([pts[y.numpy() == c].mean(0) for c in range(3)])
    # orthonormal means times 2 -> pairwise distance 2 sqrt(2), preserved in the plane
    d = np.linalg.norm(centres[0] - centres[1])
    assert d == pytest.approx(2 * np.sqrt(2), rel=1e-6)
    with pytest.raises(ValueError, match=r"features must be \(N, d\) with N = len\(labels\), got \(3, 2\) and \(4,\)"):
        fm.between_plane(np.zeros((3, 2)), np.zeros(4))


def test_render_and_noise_figures():
    fig = fm.render_mixture(0.2, 1.0, n_per_class=10)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    samples = {k: measuring.structured_mixture(10, 3, 10, 1.0, 0.2, noise=k) for k in measuring.NOISE_KINDS}
    mets = {k: measuring.metric_summary(*v) for k, v in samples.items()}
    fig = fm.noise_geometry_figure(samples, mets)
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match=r"must both contain every kind in \['isotropic'\]"):
        fm.noise_geometry_figure(samples, {}, kinds=["isotropic"])


def test_mixture_explorer_keeps_its_axes_so_the_cloud_grows():
    params = [widgets.Param("within_std", [0.05, 0.8]), widgets.Param("class_separation", [0.5, 4.0])]
    ex = widgets.explorer(fm.render_mixture, params, dpi=40, fixed={"n_per_class": 10})
    assert len(ex.frames) == 4
    # the chapter's widest mixture (60 per class, s = 4, sigma = 0.8) fits the fixed axes
    X, y = measuring.structured_mixture(60, 3, 20, 4.0, 0.8, recentre=False, seed=0)
    assert np.abs(fm.between_plane(X, y)).max() < fm.MIXTURE_LIMIT
    values = [fm.render_mixture(0.05, s, n_per_class=60).axes[1].texts for s in (0.5, 4.0)]
    assert all(len(t.get_text()) <= 6 for texts in values for t in texts)  # bar labels that do not collide
