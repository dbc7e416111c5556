"""Fast, seeded linear probes on frozen features.

A linear probe asks how much class information a layer's features carry *linearly*: fit an affine
classifier ``x -> argmax_k (W x + b)_k`` on the features of a training split and report its accuracy on
the training split and on held-out samples.

The authors train a ``Linear`` probe with SGD for 100 epochs on the MSE loss against one-hot targets
(chapter 8 of the book). Its minimiser is the least-squares solution, which we compute in closed form with a
small ridge term, so one probe on cached features costs one ``d x d`` (or ``N x N``) solve:

.. math::  W = \\arg\\min_W \\|\\tilde F W - Y\\|_F^2 + \\lambda \\|W\\|_F^2,

where ``F~`` is the centred feature matrix and the bias is the mean target. ``lambda`` is relative:
``ridge * Tr(F~^T F~) / d``, so it does not depend on the scale of the features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import as_features, as_labels
from .data import stratified_split

__all__ = ["LinearProbe", "ProbeResult", "fit_probe", "probe_accuracy", "probe_layers", "stratified_split"]


@dataclass(frozen=True)
class ProbeResult:
    """Train and test accuracy of one probe (``test_accuracy`` is NaN without a test split)."""

    train_accuracy: float
    test_accuracy: float


@dataclass(frozen=True)
class LinearProbe:
    """A fitted affine classifier: ``predict(F) = argmax(F W + b)`` over ``classes``."""

    weight: np.ndarray
    bias: np.ndarray
    classes: np.ndarray

    def scores(self, features: Any) -> np.ndarray:
        """Class scores ``F W + b`` of shape ``(N, K)``."""
        f = as_features(features)
        if f.shape[1] != self.weight.shape[0]:
            raise ValueError(f"features have dimension {f.shape[1]}, the probe expects {self.weight.shape[0]}")
        return f @ self.weight + self.bias

    def predict(self, features: Any) -> np.ndarray:
        """Predicted labels."""
        return self.classes[np.argmax(self.scores(features), axis=1)]

    def accuracy(self, features: Any, labels: Any) -> float:
        """Fraction of correctly classified samples."""
        f = as_features(features)
        y = as_labels(labels, f.shape[0])
        return float(np.mean(self.predict(f) == y))


def _check_ridge(ridge: float) -> float:
    ridge = float(ridge)
    if not np.isfinite(ridge) or ridge < 0:
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge}")
    return ridge


def fit_probe(features: Any, labels: Any, ridge: float = 1e-4) -> LinearProbe:
    """Least-squares (ridge) linear probe on ``features`` (N×d) with integer ``labels``.

    Solves in the primal (d×d) when ``d <= N`` and in the dual (N×N) otherwise; deterministic.
    """
    ridge = _check_ridge(ridge)
    f = as_features(features)
    y = as_labels(labels, f.shape[0])
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(f"a probe needs at least 2 classes in its training labels, got {classes.size}")
    targets = (y[:, None] == classes[None, :]).astype(np.float64)
    mean_f = f.mean(axis=0)
    mean_t = targets.mean(axis=0)
    fc = f - mean_f
    tc = targets - mean_t
    n, d = fc.shape
    scale = float(np.sum(fc * fc)) / max(d, 1)
    lam = ridge * scale if scale > 0 else ridge
    lam = max(lam, 1e-12 * max(scale, 1.0))
    if d <= n:
        gram = fc.T @ fc + lam * np.eye(d)
        w = np.linalg.solve(gram, fc.T @ tc)
    else:
        gram = fc @ fc.T + lam * np.eye(n)
        w = fc.T @ np.linalg.solve(gram, tc)
    bias = mean_t - mean_f @ w
    return LinearProbe(weight=w, bias=bias, classes=classes)


def probe_accuracy(
    features: Any, labels: Any, test_fraction: float = 0.3, seed: int = 0, ridge: float = 1e-4
) -> ProbeResult:
    """Fit a probe on a seeded stratified training split and report train and test accuracy."""
    f = as_features(features)
    y = as_labels(labels, f.shape[0])
    train, test = stratified_split(y, test_fraction, seed)
    probe = fit_probe(f[train], y[train], ridge=ridge)
    train_acc = probe.accuracy(f[train], y[train])
    test_acc = probe.accuracy(f[test], y[test]) if test.size else float("nan")
    return ProbeResult(train_accuracy=train_acc, test_accuracy=test_acc)


def probe_layers(
    features: Sequence[Any], labels: Any, test_fraction: float = 0.3, seed: int = 0, ridge: float = 1e-4
) -> list[ProbeResult]:
    """:func:`probe_accuracy` for each entry of ``features`` (e.g. ``model.forward_features(X)``), same split."""
    if isinstance(features, (np.ndarray,)) or not isinstance(features, Sequence) or len(features) == 0:
        raise ValueError("features must be a non-empty sequence of per-layer feature matrices")
    return [probe_accuracy(f, labels, test_fraction, seed, ridge) for f in features]
