"""Least-squares fits of layerwise curves: the geometric rate of compression and the linear trend of discrimination.

Plain numpy, so experiments can fit without importing a plotting library.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["fit_geometric_rate", "fit_linear", "layer_points"]


def layer_points(values: Sequence[float] | np.ndarray, layers: Sequence[float] | np.ndarray | None) -> tuple:
    """``(x, values)`` as float64 arrays for a fit: ``x`` is ``layers`` or 0, 1, 2, ...; at least 2 finite values."""
    v = np.asarray(values, dtype=np.float64).ravel()
    x = np.arange(v.shape[0], dtype=np.float64) if layers is None else np.asarray(layers, np.float64).ravel()
    if x.shape != v.shape:
        raise ValueError(f"layers has {x.shape[0]} entries but values has {v.shape[0]}")
    if v.shape[0] < 2:
        raise ValueError(f"need at least 2 values to fit, got {v.shape[0]}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite")
    return x, v


def _r2(v: np.ndarray, fitted: np.ndarray) -> float:
    ss_res = float(np.sum((v - fitted) ** 2))
    ss_tot = float(np.sum((v - v.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res <= 1e-30 else 0.0
    return 1.0 - ss_res / ss_tot


def fit_linear(
    values: Sequence[float] | np.ndarray, layers: Sequence[float] | np.ndarray | None = None
) -> tuple[float, float, float]:
    """Least-squares line ``values ~ slope * l + intercept``; returns ``(slope, intercept, r2)``.

    ``layers`` defaults to ``0, 1, ..., len(values) - 1``.
    """
    x, v = layer_points(values, layers)
    slope, intercept = np.polyfit(x, v, 1)
    return float(slope), float(intercept), _r2(v, slope * x + intercept)


def fit_geometric_rate(
    values: Sequence[float] | np.ndarray, layers: Sequence[float] | np.ndarray | None = None
) -> tuple[float, float]:
    """Fit ``log10 values`` linearly in ``l`` (as the authors do); returns ``(ratio, r2)``.

    ``ratio = 10**slope`` is the fitted per-layer factor ``C_{l+1} / C_l``; ``r2`` is measured in log
    space. All values must be positive.
    """
    x, v = layer_points(values, layers)
    if np.any(v <= 0):
        raise ValueError("fit_geometric_rate needs strictly positive values")
    slope, _, r2 = fit_linear(np.log10(v), x)
    return float(10.0**slope), r2
