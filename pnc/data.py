"""Seeded synthetic data sets for the deep-linear-network theory.

Every generator takes a ``seed`` and draws only from a local ``numpy.random.Generator``; the global
NumPy and PyTorch random states are never touched. Every generator returns ``(X, y)`` with ``X`` a
float tensor of shape ``(N, d)`` (one sample per row) and ``y`` an ``int64`` tensor of labels, the
classes in contiguous blocks ``0, 0, ..., 1, 1, ..., K-1``.

Note the convention: the theory writes the data as a ``d x N`` matrix with samples as columns; here
(as in PyTorch) samples are rows, so the theory's ``X`` is ``X.T``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "OrthogonalityStats",
    "class_counts",
    "gaussian_mixture",
    "labels_from_counts",
    "near_orthogonal_gaussian",
    "orthogonal_dataset",
    "orthogonality_stats",
]


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_seed(seed: object) -> int:
    return _check_int("seed", seed, 0)


def _check_dtype(dtype: object) -> torch.dtype:
    if dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise ValueError(f"dtype must be a torch floating dtype, got {dtype!r}")
    return dtype  # type: ignore[return-value]


def class_counts(n_per_class: int | Sequence[int], n_classes: int) -> list[int]:
    """Return the list of per-class sample counts.

    ``n_per_class`` is either one integer (balanced classes) or a sequence of ``n_classes`` integers.
    """
    n_classes = _check_int("n_classes", n_classes, 2)
    if isinstance(n_per_class, (int, np.integer)) and not isinstance(n_per_class, bool):
        return [_check_int("n_per_class", n_per_class, 1)] * n_classes
    if not isinstance(n_per_class, Sequence) or isinstance(n_per_class, str):
        raise ValueError(f"n_per_class must be an int or a sequence of ints, got {n_per_class!r}")
    if len(n_per_class) != n_classes:
        raise ValueError(
            f"n_per_class has {len(n_per_class)} entries but n_classes={n_classes}; they must match"
        )
    return [_check_int(f"n_per_class[{k}]", c, 1) for k, c in enumerate(n_per_class)]


def labels_from_counts(counts: Sequence[int]) -> torch.Tensor:
    """Contiguous-block ``int64`` labels: ``counts[0]`` zeros, then ``counts[1]`` ones, ..."""
    return torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(list(counts), dtype=torch.int64))


def orthogonal_dataset(
    n_per_class: int | Sequence[int],
    n_classes: int,
    dim: int,
    perturbation: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearly orthonormal data (assumption A1), re-implementing the authors' generator.

    The ``N`` samples are the first ``N`` columns of the orthogonal factor ``Q`` of the QR
    factorisation of a ``dim x dim`` Gaussian matrix, plus a Gaussian perturbation rescaled so that
    its **total** Frobenius norm (over all ``N`` samples together) equals ``perturbation``. The
    authors used ``perturbation=1``; with ``N=30, d=50`` this gives near-orthogonality numbers
    (see :func:`orthogonality_stats`) of order ``5e-3``. ``perturbation=0`` gives exactly
    orthonormal samples. Requires ``dim >= N``.
    """
    counts = class_counts(n_per_class, n_classes)
    dim = _check_int("dim", dim, 1)
    seed = _check_seed(seed)
    dtype = _check_dtype(dtype)
    perturbation = float(perturbation)
    if not np.isfinite(perturbation) or perturbation < 0:
        raise ValueError(f"perturbation must be a finite number >= 0, got {perturbation}")
    n_total = sum(counts)
    if dim < n_total:
        raise ValueError(
            f"orthogonal_dataset needs dim >= N (number of samples) for orthonormal samples; "
            f"got dim={dim} < N={n_total}"
        )
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    x = q[:, :n_total].T.copy()  # (N, d), orthonormal rows
    noise = rng.standard_normal((n_total, dim))
    x += noise * (perturbation / np.linalg.norm(noise))
    return torch.from_numpy(x).to(dtype), labels_from_counts(counts)


def near_orthogonal_gaussian(
    n_per_class: int | Sequence[int],
    n_classes: int,
    dim: int,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """I.i.d. ``N(0, I/d)`` samples: unit norm and mutually orthogonal up to ``O(1/sqrt(d))``.

    The labels carry no information about the inputs (any labelling of generic points can be
    interpolated when ``d >= N``).
    """
    counts = class_counts(n_per_class, n_classes)
    dim = _check_int("dim", dim, 1)
    seed = _check_seed(seed)
    dtype = _check_dtype(dtype)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((sum(counts), dim)) / np.sqrt(dim)
    return torch.from_numpy(x).to(dtype), labels_from_counts(counts)


def gaussian_mixture(
    n_per_class: int | Sequence[int],
    n_classes: int,
    dim: int,
    class_separation: float = 1.0,
    within_std: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian mixture: class ``k`` is ``N(mu_k, within_std**2 I)``.

    The class means are ``class_separation`` times random orthonormal vectors when
    ``dim >= n_classes`` (so every pair of means is ``class_separation * sqrt(2)`` apart), and
    ``class_separation`` times random unit vectors otherwise. ``n_per_class`` may be a list for
    uneven classes.
    """
    counts = class_counts(n_per_class, n_classes)
    dim = _check_int("dim", dim, 1)
    seed = _check_seed(seed)
    dtype = _check_dtype(dtype)
    class_separation = float(class_separation)
    within_std = float(within_std)
    if not np.isfinite(class_separation) or class_separation < 0:
        raise ValueError(f"class_separation must be a finite number >= 0, got {class_separation}")
    if not np.isfinite(within_std) or within_std < 0:
        raise ValueError(f"within_std must be a finite number >= 0, got {within_std}")
    rng = np.random.default_rng(seed)
    k = len(counts)
    if dim >= k:
        means, _ = np.linalg.qr(rng.standard_normal((dim, k)))
        means = means.T  # (K, d), orthonormal rows
    else:
        means = rng.standard_normal((k, dim))
        means /= np.linalg.norm(means, axis=1, keepdims=True)
    means = class_separation * means
    x = np.repeat(means, counts, axis=0) + within_std * rng.standard_normal((sum(counts), dim))
    return torch.from_numpy(x).to(dtype), labels_from_counts(counts)


class OrthogonalityStats(NamedTuple):
    """The authors' near-orthogonality printout (theory.md section 2, item 4)."""

    norm_deviation: float
    """``max_i | ||x_i||^2 - 1 | / N``."""
    max_inner_product: float
    """``max_{i != j} |<x_i, x_j>| / N``."""


def orthogonality_stats(X: torch.Tensor | np.ndarray) -> OrthogonalityStats:
    """Near-orthogonality of the rows of ``X`` (shape ``(N, d)``), both numbers divided by ``N``."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().to(torch.float64).numpy()
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"X must be a 2-d array (N, d) with N >= 2, got shape {x.shape}")
    n = x.shape[0]
    gram = x @ x.T
    norm_dev = float(np.max(np.abs(np.diag(gram) - 1.0)) / n)
    off = gram[~np.eye(n, dtype=bool)]
    return OrthogonalityStats(norm_dev, float(np.max(np.abs(off)) / n))
