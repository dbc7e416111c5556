"""Tests for pnc.book.measuring: structured mixtures and the Gaussian-mixture expectations."""

from __future__ import annotations

import numpy as np
import pytest

from pnc import data, metrics
from pnc.book import measuring


def test_noise_kinds_same_C_different_NC1():
    out = {k: measuring.metric_summary(*measuring.structured_mixture(200, 3, 20, 1.0, 0.2, noise=k, seed=1))
           for k in measuring.NOISE_KINDS}
    cs = [out[k]["C"] for k in measuring.NOISE_KINDS]
    assert max(cs) / min(cs) < 1.15
    assert abs(out["orthogonal"]["NC1"]) < 1e-12
    # population values: isotropic sigma^2 (K-1)/s^2 = 0.08, between sigma^2 d / s^2 = 0.8
    assert out["isotropic"]["NC1"] == pytest.approx(0.08, rel=0.15)
    assert out["between"]["NC1"] == pytest.approx(0.8, rel=0.15)
    assert out["between"]["rank"] <= 3


def test_offset_changes_only_D():
    a = measuring.metric_summary(*measuring.structured_mixture(30, 3, 12, 1.0, 0.2, seed=2))
    b = measuring.metric_summary(*measuring.structured_mixture(30, 3, 12, 1.0, 0.2, offset=1.0, seed=2))
    assert a["C"] == pytest.approx(b["C"], rel=1e-10)
    assert a["NC1"] == pytest.approx(b["NC1"], rel=1e-8)
    assert a["D"] == pytest.approx(1.0, abs=1e-10)
    assert b["D"] == pytest.approx(0.5, abs=1e-10)  # cos = offset^2 / (s^2 + offset^2)


def test_expected_traces_monte_carlo():
    n, K, d, s, sigma = 8, 3, 10, 1.0, 0.3
    tw, tb = [], []
    for seed in range(300):
        st = metrics.ClassStats(track_covariance=False).update(*data.gaussian_mixture(n, K, d, s, sigma, seed=seed))
        tw.append(st.trace_sigma_w())
        tb.append(st.trace_sigma_b())
    ew, eb = measuring.expected_traces(n, K, d, s, sigma)
    assert np.mean(tw) == pytest.approx(ew, rel=0.02)
    assert np.mean(tb) == pytest.approx(eb, rel=0.03)
    assert measuring.expected_compression(n, K, d, s, sigma) == pytest.approx(ew / eb)


def test_validation():
    with pytest.raises(ValueError, match="noise"):
        measuring.structured_mixture(5, 3, 10, noise="diagonal")
    with pytest.raises(ValueError, match="dim"):
        measuring.structured_mixture(5, 3, 4)
    with pytest.raises(ValueError, match="within_std"):
        measuring.structured_mixture(5, 3, 10, within_std=-1)
    with pytest.raises(ValueError, match="d must be"):
        measuring.expected_traces(5, 4, 3, 1.0, 0.1)
    with pytest.raises(ValueError, match="zero"):
        measuring.expected_compression(5, 3, 10, 0.0, 0.0)
