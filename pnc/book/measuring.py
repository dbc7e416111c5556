r"""Synthetic mixtures and closed forms for comparing collapse metrics (chapter *Measuring compression and
discrimination*).

:func:`structured_mixture` draws Gaussian classes whose within-class noise lies in a chosen subspace: isotropic,
inside the between-class subspace (spanned by the centred class means) or orthogonal to every class mean. With the
same total within-class variance, the trace ratio $C=\operatorname{Tr}\Sigma_W/\operatorname{Tr}\Sigma_B$ is the same
in all three cases while NC1 $=\frac1K\operatorname{Tr}(\Sigma_W\Sigma_B^+)$ ranges from 0 to large.
:func:`expected_traces` gives the exact expectations of both traces for :func:`pnc.data.gaussian_mixture`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pnc._checks import check_int
from pnc.data import class_counts, labels_from_counts
from pnc.metrics import ClassStats, cdnv, compression, discrimination, nc1, numerical_rank

__all__ = [
    "NOISE_KINDS",
    "structured_mixture",
    "expected_traces",
    "expected_compression",
    "metric_summary",
]

NOISE_KINDS = ("isotropic", "between", "orthogonal")


def _nonneg(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def structured_mixture(
    n_per_class: int,
    n_classes: int,
    dim: int,
    class_separation: float = 1.0,
    within_std: float = 0.1,
    noise: str = "isotropic",
    offset: float = 0.0,
    recentre: bool = True,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Gaussian classes with orthonormal means (times ``class_separation``) and structured within-class noise.

    ``noise`` chooses the subspace of the within-class noise: ``"isotropic"`` (all of $\R^d$),
    ``"between"`` (the $K-1$ dimensional span of the centred class means) or ``"orthogonal"`` (the $d-K-1$
    dimensional complement of the class means and the offset direction). The noise is scaled so that the
    expected squared norm per sample is ``within_std**2 * dim`` in every case (equal $\operatorname{Tr}\Sigma_W$).
    ``offset`` adds the common vector ``offset * u`` ($u$ a unit vector orthogonal to the means) to every sample:
    it changes no centred statistic but lowers the uncentred cosine-based $D$. With ``recentre=True`` the noise is
    centred within each class, so the class sample means equal the population means exactly.
    """
    counts = class_counts(n_per_class, n_classes)
    k = len(counts)
    dim = check_int("dim", dim, k + 2)
    if noise not in NOISE_KINDS:
        raise ValueError(f"noise must be one of {NOISE_KINDS}, got {noise!r}")
    sep = _nonneg("class_separation", class_separation)
    std = _nonneg("within_std", within_std)
    offset = float(offset)
    if not np.isfinite(offset):
        raise ValueError(f"offset must be finite, got {offset}")
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    means = sep * q[:, :k].T  # (K, d) orthonormal rows times the separation
    u = q[:, k]  # offset direction, orthogonal to the means
    if noise == "isotropic":
        basis = np.eye(dim)
    elif noise == "between":
        centred = q[:, :k] - q[:, :k].mean(axis=1, keepdims=True)
        basis = np.linalg.svd(centred, full_matrices=False)[0][:, : k - 1]
    else:
        basis = q[:, k + 1 :]
    r = basis.shape[1]
    n_total = sum(counts)
    noise_x = rng.standard_normal((n_total, r)) * (std * np.sqrt(dim / r))
    y = labels_from_counts(counts).numpy()
    if recentre:
        for c in range(k):  # loop over classes
            noise_x[y == c] -= noise_x[y == c].mean(axis=0)
    x = means[y] + noise_x @ basis.T + offset * u
    return torch.from_numpy(x).to(dtype), torch.from_numpy(y)


def expected_traces(n: int, K: int, d: int, class_separation: float, within_std: float) -> tuple[float, float]:
    r"""Exact $(\E\operatorname{Tr}\Sigma_W,\ \E\operatorname{Tr}\Sigma_B)$ for :func:`pnc.data.gaussian_mixture`.

    With $n$ samples per class, noise $\mathcal N(0,\sigma^2I_d)$ and orthonormal means times $s$ ($d\ge K$):
    $\E\operatorname{Tr}\Sigma_W=\sigma^2d\,\frac{n-1}n$ and
    $\E\operatorname{Tr}\Sigma_B=\frac{K-1}K\big(s^2+\frac{\sigma^2d}n\big)$.
    """
    for name, v in (("n", n), ("K", K), ("d", d)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {v!r}")
    if d < K:
        raise ValueError(f"d must be >= K for orthonormal means, got d={d}, K={K}")
    s = _nonneg("class_separation", class_separation)
    sigma = _nonneg("within_std", within_std)
    tr_w = sigma**2 * d * (n - 1) / n
    tr_b = (K - 1) / K * (s**2 + sigma**2 * d / n)
    return float(tr_w), float(tr_b)


def expected_compression(n: int, K: int, d: int, class_separation: float, within_std: float) -> float:
    r"""Ratio of expectations $\E\operatorname{Tr}\Sigma_W/\E\operatorname{Tr}\Sigma_B
    =\frac{K(n-1)\sigma^2d}{(K-1)(ns^2+\sigma^2d)}$, which $C$ concentrates around when $nKd$ is large."""
    tr_w, tr_b = expected_traces(n, K, d, class_separation, within_std)
    if tr_b == 0:
        raise ValueError("class_separation and within_std are both zero: Tr Σ_B is zero")
    return tr_w / tr_b


def metric_summary(features: Any, labels: Any) -> dict[str, float]:
    """All chapter-2 metrics of one feature matrix: ``C``, ``NC1``, ``D``, ``CDNV`` and ``rank`` (95 % of σ)."""
    st = ClassStats().update(features, labels)
    return {
        "C": compression(st),
        "NC1": float(nc1(st)),
        "D": discrimination(st),
        "CDNV": cdnv(st),
        "rank": float(numerical_rank(st)),
    }
