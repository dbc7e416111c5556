"""Closed forms and exact constructions for deep linear networks (the book's chapters 2 to 6).

These formulas are **our derivation** (idealised case: orthonormal data, exact minimum-norm
product, exactly balanced hidden layers, every non-signal singular value equal to ``eps``), not a
quotation of the paper.

Convention: data matrices are ``(N, d)`` with one sample per row (the theory's ``X`` is ``X.T``);
weight lists are ``[W_1, ..., W_L]`` with ``W_l`` acting on column vectors (``W_1`` is ``m x d``), i.e.
exactly ``[lin.weight for lin in model.linear_layers()]``. Arrays may be NumPy or torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from ._checks import check_int as _int
from ._checks import check_positive as _pos

__all__ = [
    "balanced_min_norm_network",
    "class_gram_deviation",
    "CodingRates",
    "coding_rates_from_compression",
    "compression_ratio",
    "discrimination_first_order",
    "end_to_end",
    "imbalance",
    "imbalance_law",
    "ImbalanceLaw",
    "layer_features",
    "layerwise_coding_rates",
    "layerwise_compression",
    "min_norm_residual",
    "min_norm_solution",
    "one_hot",
    "PerturbationLaw",
    "perturbation_law",
    "singular_value_spread",
    "spread_law",
    "SpreadLaw",
]

ArrayLike = np.ndarray | torch.Tensor


def _np(a: ArrayLike | Sequence[float]) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().to(torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def _weights(weights: Sequence[ArrayLike]) -> list[np.ndarray]:
    ws = [_np(w) for w in weights]
    if not ws:
        raise ValueError("weights must be a non-empty list [W_1, ..., W_L]")
    for i, w in enumerate(ws):
        if w.ndim != 2:
            raise ValueError(f"W_{i + 1} must be a 2-d matrix, got shape {w.shape}")
    for i in range(len(ws) - 1):
        if ws[i + 1].shape[1] != ws[i].shape[0]:
            raise ValueError(
                f"W_{i + 2} (shape {ws[i + 1].shape}) cannot follow W_{i + 1} (shape {ws[i].shape})"
            )
    return ws


def _data(X: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = _np(X)
    labels = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
    if x.ndim != 2:
        raise ValueError(f"X must be 2-d (N, d), got shape {x.shape}")
    if labels.ndim != 1 or labels.shape[0] != x.shape[0]:
        raise ValueError(f"y must be 1-d with N={x.shape[0]} labels, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError("y must hold non-negative integer class labels")
    return x, labels.astype(np.int64)


# ------------------------------------------------------------------------------------------------
# Closed forms (chapters 4 and 5 of the book)
# ------------------------------------------------------------------------------------------------
def compression_ratio(eps: float, n: int, L: int, alpha: float = 1.0) -> float:
    """Per-layer compression ``kappa = eps^2 (alpha^2 / n)^(1/L)`` = (init scale / signal gain)^2.

    ``n`` is the number of samples per class and ``L`` the number of weight matrices.
    """
    eps = _pos("eps", eps)
    n = _int("n", n, 2)
    L = _int("L", L, 1)
    alpha = _pos("alpha", alpha)
    return eps**2 * (alpha**2 / n) ** (1.0 / L)


def layerwise_compression(
    l: int | ArrayLike, eps: float, n: int, K: int, L: int, alpha: float = 1.0
) -> float | np.ndarray:
    """Idealised ``C_l = K (n - 1) / (K - 1) * kappa^l`` for ``0 <= l <= L - 1`` (vectorised over ``l``)."""
    kappa = compression_ratio(eps, n, L, alpha)
    K = _int("K", K, 2)
    ls = _np(l)
    if np.any(ls < 0) or np.any(ls > L - 1) or np.any(ls != np.round(ls)):
        raise ValueError(f"l must be an integer layer index in [0, L-1] = [0, {L - 1}], got {l}")
    out = K * (n - 1) / (K - 1) * kappa**ls
    return float(out) if out.ndim == 0 else out


def discrimination_first_order(l: int | ArrayLike, L: int, max_E: float) -> float | np.ndarray:
    """First-order ``D_l ~ 1 - (1 - l/L) max_E`` (vectorised over ``l``).

    ``max_E`` is the largest off-diagonal entry of ``E`` from :func:`class_gram_deviation`
    (chapter 4 of the book); it may be negative, in which case ``D_l`` decreases towards 1.
    """
    L = _int("L", L, 1)
    max_E = float(max_E)
    if not np.isfinite(max_E):
        raise ValueError(f"max_E must be finite, got {max_E}")
    ls = _np(l)
    if np.any(ls < 0) or np.any(ls > L):
        raise ValueError(f"l must lie in [0, L] = [0, {L}], got {l}")
    out = 1.0 - (1.0 - ls / L) * max_E
    return float(out) if out.ndim == 0 else out


def class_gram_deviation(X: ArrayLike, y: ArrayLike) -> np.ndarray:
    """``E = I - H / n`` with ``H = Y (X^T X)^{-1} Y^T`` (chapter 4 of the book), for balanced classes.

    ``E = 0`` for orthonormal data; to first order ``E_{kk'}`` is the cosine between the input class
    means, and ``max_{k != k'} E_{kk'}`` is the ``max_E`` of :func:`discrimination_first_order`.
    """
    x, labels = _data(X, y)
    counts = np.bincount(labels)
    if counts.shape[0] < 2 or np.any(counts != counts[0]):
        raise ValueError(f"class_gram_deviation needs >= 2 balanced classes, got sizes {counts.tolist()}")
    Y = one_hot(labels)
    H = Y @ np.linalg.solve(x @ x.T, Y.T)
    return np.eye(Y.shape[0]) - H / counts[0]


# ------------------------------------------------------------------------------------------------
# Exact construction (chapter 4 of the book)
# ------------------------------------------------------------------------------------------------
def one_hot(y: ArrayLike, n_classes: int | None = None) -> np.ndarray:
    """One-hot targets ``Y`` of shape ``(K, N)`` (the theory's layout)."""
    labels = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y, dtype=np.int64)
    k = int(labels.max()) + 1 if n_classes is None else n_classes
    out = np.zeros((k, labels.shape[0]))
    out[labels, np.arange(labels.shape[0])] = 1.0
    return out


def min_norm_solution(X: ArrayLike, y: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """The minimum-norm product ``W* = Y X^+ / alpha`` (shape ``(K, d)``; ``X`` given as ``(N, d)``)."""
    x, labels = _data(X, y)
    alpha = _pos("alpha", alpha)
    return one_hot(labels) @ np.linalg.pinv(x.T) / alpha


def balanced_min_norm_network(
    X: ArrayLike, y: ArrayLike, L: int, eps: float, alpha: float = 1.0, width: int | None = None
) -> list[np.ndarray]:
    """Exact balanced minimum-norm factorisation ``[W_1, ..., W_L]`` of ``W* = Y X^+ / alpha``.

    With the SVD ``W* = U diag(sigma) V^T`` (``K`` singular values), every factor has singular
    values ``s_k = sigma_k^(1/L)`` on the ``K`` signal directions and ``eps`` on all others:

    - ``W_1 = P diag(s, eps, ..., eps) [V, V_perp]^T`` (``m x d``, ``P = [I_d; 0]``);
    - hidden ``W_l = diag(s, eps, ..., eps)`` (``m x m``);
    - classifier ``W_L = U [diag(s), 0]`` (``K x m``).

    The product is exactly ``W*`` (the ``eps`` directions are annihilated by the classifier) and the
    hidden pairs are exactly balanced, ``W_{l+1}^T W_{l+1} = W_l W_l^T``. With the default
    ``width = d`` the pair ``(W_1, W_2)`` is balanced too; for ``width > d`` it carries the imbalance
    ``eps^2 sqrt(width - d)`` that orthogonal initialisation leaves in trained networks. The classifier
    pair is balanced along the signal only (it cannot be balanced outright: chapter 3 of the book, exactly
    balanced factorisations). For orthonormal ``X`` the features of this network follow
    :func:`layerwise_compression` exactly and have ``D_l = 1``.
    """
    x, labels = _data(X, y)
    L = _int("L", L, 1)
    eps = _pos("eps", eps)
    alpha = _pos("alpha", alpha)
    n_samples, d = x.shape
    k = int(labels.max()) + 1
    if k < 2:
        raise ValueError("y must contain at least 2 classes")
    if np.any(np.bincount(labels, minlength=k) == 0):
        raise ValueError("every class 0..K-1 must have at least one sample")
    if d < k:
        raise ValueError(f"the data dimension d={d} must be >= the number of classes K={k}")
    m = d if width is None else _int("width", width, 1)
    if m < d:
        raise ValueError(f"width must be >= the data dimension d={d}, got {m}")

    w_star = min_norm_solution(x, labels, alpha)  # (K, d)
    u, sigma, vt = np.linalg.svd(w_star, full_matrices=True)  # vt: (d, d), first K rows = V^T
    if np.any(sigma <= 0):
        raise ValueError("Y X^+ is rank deficient; cannot build a factorisation with K signal directions")
    if L == 1:
        return [w_star]
    s = sigma ** (1.0 / L)
    gains = np.full(m, eps)
    gains[:k] = s

    w1 = np.zeros((m, d))
    w1[:d, :] = gains[:d, None] * vt  # diag(gains[:d]) @ [V, V_perp]^T
    weights = [w1]
    for _ in range(L - 2):
        weights.append(np.diag(gains))
    w_last = np.zeros((k, m))
    w_last[:, :k] = u * s  # U diag(s)
    weights.append(w_last)
    return weights


def end_to_end(weights: Sequence[ArrayLike]) -> np.ndarray:
    """The product ``W_{L:1} = W_L ... W_1``."""
    ws = _weights(weights)
    prod = ws[0]
    for w in ws[1:]:
        prod = w @ prod
    return prod


def layer_features(
    weights: Sequence[ArrayLike], X: ArrayLike, include_output: bool = False
) -> list[np.ndarray]:
    """Features ``[z^0 = X, z^1, ..., z^{L-1}]`` (each ``(N, width)``) of the linear network ``weights``.

    ``include_output=True`` appends the output ``W_{L:1} X`` (without the multiplier alpha). Matches
    ``model.forward_features`` of a :class:`pnc.models.DeepLinearNetwork`.
    """
    ws = _weights(weights)
    x = _np(X)
    if x.ndim != 2 or x.shape[1] != ws[0].shape[1]:
        raise ValueError(
            f"X must be (N, d) with d={ws[0].shape[1]} (the columns of W_1), got shape {x.shape}"
        )
    feats = [x]
    h = x
    upto = ws if include_output else ws[:-1]
    for w in upto:
        h = h @ w.T
        feats.append(h)
    return feats


# ------------------------------------------------------------------------------------------------
# Assumption diagnostics (chapter 6 of the book)
# ------------------------------------------------------------------------------------------------
def min_norm_residual(weights: Sequence[ArrayLike], X: ArrayLike, y: ArrayLike, alpha: float = 1.0) -> float:
    """Unnormalised ``|| W_{L:1} - Y X^+ / alpha ||_F`` (assumption A2(a))."""
    prod = end_to_end(weights)
    w_star = min_norm_solution(X, y, alpha)
    if prod.shape != w_star.shape:
        raise ValueError(f"W_(L:1) has shape {prod.shape} but Y X^+ has shape {w_star.shape}")
    return float(np.linalg.norm(prod - w_star))


def imbalance(weights: Sequence[ArrayLike]) -> list[float]:
    """Per pair ``l = 1..L-1``: ``||W_l W_l^T - W_{l+1}^T W_{l+1}||_F / ||W_l||_F`` (A2(b)).

    The normaliser is the unsquared Frobenius norm and the classifier pair is the last entry; the
    authors report the mean of this list.
    """
    ws = _weights(weights)
    return [
        float(np.linalg.norm(ws[i] @ ws[i].T - ws[i + 1].T @ ws[i + 1]) / np.linalg.norm(ws[i]))
        for i in range(len(ws) - 1)
    ]


def singular_value_spread(weights: Sequence[ArrayLike], K: int, d: int) -> list[float]:
    """Per layer ``l = 1..L-1`` (classifier excluded): the variance of ``sigma_i(W_l)`` for
    ``K < i <= d - K`` (A2(c); the authors' slice ``[K:d-K]`` with ``d`` the data dimension).

    Zero when all these singular values are equal (to ``eps``).
    """
    ws = _weights(weights)
    K = _int("K", K, 1)
    d = _int("d", d, 1)
    if d - K <= K:
        raise ValueError(f"need d - K > K for a non-empty slice of singular values, got K={K}, d={d}")
    out = []
    for w in ws[:-1]:
        sv = np.linalg.svd(w, compute_uv=False)
        if sv.shape[0] < d - K:
            raise ValueError(f"a layer of shape {w.shape} has fewer than d - K = {d - K} singular values")
        out.append(float(np.var(sv[K : d - K])))
    return out


# ------------------------------------------------------------------------------------------------
# The law under perturbation (our analysis; chapter "The law under perturbation")
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PerturbationLaw:
    """``C_l`` of the balanced minimum-norm construction (:func:`balanced_min_norm_network`) on any data.

    Our analysis, not the paper's theorem. Exactly, for ``l = 0 .. L-1``,
    ``C_l = eps^(2l) w / (b(l) + eps^(2l) b_perp)`` with ``b(l) = Tr(J (H / alpha^2)^(l/L - 1)) / (K alpha^2)``
    (the between-class energy along the signal directions), ``b_perp`` the between-class energy of the inputs
    outside them and ``w`` their within-class energy outside them; ``J = I - 11^T / K``.
    """

    compression: np.ndarray
    """The exact closed form ``C_l``, ``l = 0 .. L-1``."""
    kappa: float
    """The idealised per-layer ratio ``eps^2 (alpha^2 / n)^(1/L)``."""
    gain_shift: float
    """``Tr(J E) / ((K - 1) L)``: the first-order change of the signal gain, ``E = I - H / n``."""
    leak: float
    """``beta_0 = b_perp / b(0)``: the share of the inputs' between-class energy outside the signal directions."""
    E: np.ndarray
    """The class Gram deviation (:func:`class_gram_deviation`)."""

    @property
    def ratios(self) -> np.ndarray:
        """Exact ``C_{l+1} / C_l``, ``l = 0 .. L-2``."""
        return self.compression[1:] / self.compression[:-1]

    @property
    def first_order_ratios(self) -> np.ndarray:
        """``kappa (1 + gain_shift + (1 - kappa) kappa^l beta_0)``, ``l = 0 .. L-2`` (first order in E and beta_0)."""
        ls = np.arange(self.compression.size - 1)
        return self.kappa * (1.0 + self.gain_shift + (1.0 - self.kappa) * self.kappa**ls * self.leak)


def perturbation_law(X: ArrayLike, y: ArrayLike, L: int, eps: float, alpha: float = 1.0) -> PerturbationLaw:
    """The compression law of the balanced minimum-norm network on data ``X`` (``(N, d)``, rank ``N``) with
    balanced labels ``y``: exact closed form and its first-order version (:class:`PerturbationLaw`)."""
    x, labels = _data(X, y)
    L = _int("L", L, 2)
    eps = _pos("eps", eps)
    alpha = _pos("alpha", alpha)
    N = x.shape[0]
    if x.shape[1] < N or np.linalg.matrix_rank(x) < N:
        raise ValueError(f"the {N} samples must be linearly independent (needs d >= N, got d = {x.shape[1]}): "
                         "the law is stated for an invertible Gram matrix X^T X")
    E = class_gram_deviation(x, labels)  # checks balance
    K = E.shape[0]
    n = N // K
    Y = one_hot(labels)
    H = n * (np.eye(K) - E)
    h, U = np.linalg.eigh(H)
    J = np.eye(K) - 1.0 / K
    JU = np.einsum("ij,jk,ki->i", U.T, J, U)  # diag(U^T J U)

    def b(l: np.ndarray) -> np.ndarray:
        powers = (h[None, :] / alpha**2) ** (l[:, None] / L - 1.0)
        return powers @ JU / (K * alpha**2)

    w_star = Y @ np.linalg.solve(x @ x.T, x) / alpha  # (K, d)
    Q, _ = np.linalg.qr(w_star.T)  # orthonormal basis of the signal directions
    means = (Y @ x) / n
    centred = means - x.mean(axis=0)
    within = x - means[labels]
    b_perp = float(np.sum((centred - centred @ Q @ Q.T) ** 2) / K)
    w = float(np.sum((within - within @ Q @ Q.T) ** 2) / N)
    ls = np.arange(L, dtype=np.float64)
    b_sig = b(ls)
    decay = eps ** (2 * ls)
    compression = decay * w / (b_sig + decay * b_perp)
    return PerturbationLaw(compression=compression, kappa=compression_ratio(eps, n, L, alpha),
                           gain_shift=float(np.trace(J @ E)) / ((K - 1) * L), leak=b_perp / float(b_sig[0]), E=E)


# ------------------------------------------------------------------------------------------------
# Imbalanced layers (our analysis; chapter "The law under perturbation")
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImbalanceLaw:
    """``C_l`` of aligned, imbalanced layers on orthonormal data with the minimum-norm product.

    Our analysis, not the paper's theorem. Layer ``j`` multiplies the ``K`` signal directions by ``s_j`` and every
    other direction by ``eps_j``; the pair ``(W_j, W_{j+1})`` has imbalance ``g_j = s_{j+1}^2 - s_j^2`` along the
    signal, and ``prod_j s_j = sqrt(n) / alpha``. Then exactly ``C_l / C_{l-1} = eps_l^2 / s_l^2``.
    """

    gains_sq: np.ndarray
    """``s_j^2``, ``j = 1 .. L``."""
    eps: np.ndarray
    """``eps_j``, ``j = 1 .. L-1``."""
    gaps: np.ndarray
    """``g_j``, ``j = 1 .. L-1``."""
    balanced_gain_sq: float
    """``s^2 = (n / alpha^2)^(1/L)``, the gain of balanced layers."""

    @property
    def ratios(self) -> np.ndarray:
        """Exact ``C_l / C_{l-1} = eps_l^2 / s_l^2``, ``l = 1 .. L-1``."""
        return self.eps**2 / self.gains_sq[:-1]

    @property
    def first_order_ratios(self) -> np.ndarray:
        """``(eps_l^2 / s^2)(1 - u_l)``, first order in the imbalances:
        ``u_l = sum_j g_j (1[j < l] - (L - j) / L) / s^2``."""
        L = self.gains_sq.size
        j = np.arange(1, L)
        l_index = np.arange(1, L)
        weights = (j[None, :] < l_index[:, None]).astype(np.float64) - (L - j[None, :]) / L
        u = weights @ self.gaps / self.balanced_gain_sq
        return self.eps**2 / self.balanced_gain_sq * (1.0 - u)


def imbalance_law(eps: Sequence[float], gaps: Sequence[float], n: int, alpha: float = 1.0) -> ImbalanceLaw:
    """The per-layer law of :class:`ImbalanceLaw` for the non-signal singular values ``eps`` (``eps_1 .. eps_{L-1}``)
    and the signal imbalances ``gaps`` (``g_1 .. g_{L-1}``) of an ``L``-layer network, ``n`` samples per class.

    Solves ``prod_j s_j = sqrt(n) / alpha`` with ``s_j^2 = s_1^2 + g_1 + ... + g_{j-1}`` by bisection."""
    e = np.asarray(eps, dtype=np.float64).reshape(-1)
    g = np.asarray(gaps, dtype=np.float64).reshape(-1)
    if e.size < 1 or e.size != g.size:
        raise ValueError(f"eps and gaps need one value per pair of layers (L - 1 >= 1 each), got {e.size} and {g.size}")
    if not (np.all(np.isfinite(e)) and np.all(e > 0)):
        raise ValueError(f"eps must be finite and > 0, got {e.tolist()}")
    if not np.all(np.isfinite(g)):
        raise ValueError(f"gaps must be finite, got {g.tolist()}")
    n = _int("n", n, 1)
    alpha = _pos("alpha", alpha)
    L = e.size + 1
    offsets = np.concatenate([[0.0], np.cumsum(g)])  # s_j^2 - s_1^2, j = 1 .. L
    target = np.log(n / alpha**2)  # sum_j log s_j^2

    def excess(s1_sq: float) -> float:
        return float(np.sum(np.log(s1_sq + offsets))) - target

    lo = max(0.0, -float(offsets.min()))
    hi = lo + max(1.0, float(np.exp(target / L)))
    while excess(hi) < 0:
        hi = lo + 2.0 * (hi - lo)
    for _ in range(200):  # excess increases in s_1^2: bisection to the last bit
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if excess(mid) < 0 else (lo, mid)
    return ImbalanceLaw(gains_sq=hi + offsets, eps=e, gaps=g, balanced_gain_sq=float(np.exp(target / L)))


# Spread non-signal singular values (our analysis; chapter "The law under perturbation")
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpreadLaw:
    """``C_l`` of aligned, balanced layers whose non-signal singular values spread around ``eps``.

    Our analysis, not the paper's theorem. Orthonormal data, the minimum-norm product, balanced signal gains ``s``,
    and layers aligned so that direction ``i`` of the within-class space stays direction ``i``; layer ``l``
    multiplies it by ``eps f_{l,i}``. With ``w_i`` the share of the input's within-class energy in direction ``i``
    and ``M_l = sum_i w_i prod_{j<=l} f_{j,i}^2``, exactly ``C_l / C_{l-1} = kappa M_l / M_{l-1}``.
    """

    factors: np.ndarray
    """``f_{l,i}``, shape ``(L - 1, m)``: layer ``l = 1 .. L-1``, within-class direction ``i``."""
    weights: np.ndarray
    """``w_i`` (summing to 1)."""
    kappa: float
    """``eps^2 (alpha^2 / n)^(1/L)``, the law without a spread."""

    @property
    def ratios(self) -> np.ndarray:
        """Exact ``C_l / C_{l-1} = kappa M_l / M_{l-1}``, ``l = 1 .. L-1``."""
        energy = np.concatenate([[1.0], np.cumprod(self.factors**2, axis=0) @ self.weights])
        return self.kappa * energy[1:] / energy[:-1]

    @property
    def first_order_ratios(self) -> np.ndarray:
        """``kappa (1 + 2 E_w delta_l)`` with ``delta_{l,i} = f_{l,i} - 1``: first order in the spread."""
        return self.kappa * (1.0 + 2.0 * ((self.factors - 1.0) @ self.weights))

    @property
    def second_order_ratios(self) -> np.ndarray:
        """``kappa (1 + 2 E_w delta_l + E_w delta_l^2 + 4 Cov_w(delta_l, delta_1 + ... + delta_{l-1}))``."""
        delta = self.factors - 1.0
        earlier = np.cumsum(delta, axis=0) - delta  # sum_{j<l} delta_j
        mean = delta @ self.weights
        cov = (delta * earlier) @ self.weights - mean * (earlier @ self.weights)
        return self.kappa * (1.0 + 2.0 * mean + (delta**2) @ self.weights + 4.0 * cov)

    @property
    def mean_square_ratios(self) -> np.ndarray:
        """``kappa E_w f_l^2``: each layer's mean square singular value in place of ``eps^2``, no memory of the
        layers before (what a random rotation between layers would give on average)."""
        return self.kappa * ((self.factors**2) @ self.weights)


def spread_law(factors: ArrayLike, eps: float, n: int, alpha: float = 1.0,
               weights: ArrayLike | None = None) -> SpreadLaw:
    """The law of :class:`SpreadLaw` for the relative non-signal singular values ``factors`` (``(L - 1, m)``,
    ``sigma_{l,i} / eps``) of an ``L``-layer network on ``n`` samples per class; ``weights`` (default uniform) is
    the within-class energy of the input per direction."""
    f = np.asarray(factors, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 1 or f.shape[1] < 1:
        raise ValueError(f"factors must be a 2-d array (L - 1 layers, m directions), got shape {f.shape}")
    if not (np.all(np.isfinite(f)) and np.all(f > 0)):
        raise ValueError("factors must be finite and > 0 (singular values over eps)")
    m = f.shape[1]
    w = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (m,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must hold {m} finite values >= 0, not all 0, got shape {w.shape}")
    L = f.shape[0] + 1
    return SpreadLaw(factors=f, weights=w / w.sum(), kappa=compression_ratio(eps, _int("n", n, 2), L, alpha))

# ------------------------------------------------------------------------------------------------
# Coding rates of the idealised network (our derivation; chapter "Connections")
# ------------------------------------------------------------------------------------------------
class CodingRates(NamedTuple):
    """Coding rate ``R``, class-conditional rate ``R^c`` and rate reduction ``Delta R = R - R^c`` (nats): arrays over
    the layers, or floats for a single layer."""

    rate: np.ndarray | float
    class_rate: np.ndarray | float
    rate_reduction: np.ndarray | float


def _rates_from_spectrum(between: np.ndarray, within: np.ndarray, n: int, K: int, width: int,
                         eps_sq: float) -> CodingRates:
    """Rates of features whose Gram ``Z^T Z`` has eigenvalue ``between`` on each class indicator (``K`` of them)
    and ``within`` on the ``K (n - 1)`` within-class contrasts; each class's Gram has ``between`` once and
    ``within`` ``n - 1`` times."""
    a = width / (n * K * eps_sq)  # m / (N eps^2); a class has m / (n eps^2) = K a
    rate = 0.5 * (K * np.log1p(a * between) + K * (n - 1) * np.log1p(a * within))
    class_rate = 0.5 * (np.log1p(K * a * between) + (n - 1) * np.log1p(K * a * within))
    return CodingRates(rate, class_rate, rate - class_rate)


def _rate_args(n: int, K: int, width: int, eps_sq: float) -> tuple[int, int, int, float]:
    n = _int("n", n, 2)
    K = _int("K", K, 2)
    width = _int("width", width, 1)
    if width < n * K:
        raise ValueError(f"width must be >= N = n K = {n * K} (the features of N orthonormal samples), got {width}")
    return n, K, width, _pos("eps_sq", eps_sq)


def coding_rates_from_compression(C: float | ArrayLike, n: int, K: int, *, width: int,
                                  eps_sq: float) -> CodingRates:
    """``R``, ``R^c`` and ``Delta R`` of unit-normalised features with the idealised spectrum and compression ``C``.

    Our derivation (chapter "Connections"). In the idealised network every sample has the same norm, and after
    scaling the samples to unit norm the Gram ``Z^T Z`` has eigenvalue ``n / (1 + (n - 1) t)`` on each of the ``K``
    class indicators and ``n t / (1 + (n - 1) t)`` on the ``K (n - 1)`` within-class contrasts, with
    ``t = (K - 1) C / (K (n - 1))``; so the three rates depend on the layer only through ``C``. ``width`` is the
    feature dimension ``m`` and ``eps_sq`` the precision ``eps^2`` of :func:`pnc.metrics.coding_rate`. Vectorised
    over ``C`` (every ``C >= 0``).
    """
    n, K, width, eps_sq = _rate_args(n, K, width, eps_sq)
    c = _np(C)
    if np.any(~np.isfinite(c)) or np.any(c < 0):
        raise ValueError(f"C must be finite and >= 0, got {C}")
    t = (K - 1) * c / (K * (n - 1))
    between = n / (1.0 + (n - 1) * t)
    rates = _rates_from_spectrum(between, t * between, n, K, width, eps_sq)
    if c.ndim == 0:
        return CodingRates(*(float(r) for r in rates))
    return rates


def layerwise_coding_rates(
    l: int | ArrayLike, eps: float, n: int, K: int, L: int, alpha: float = 1.0, *, width: int, eps_sq: float,
    normalize: bool = True,
) -> CodingRates:
    """Closed-form ``R_l``, ``R^c_l`` and ``Delta R_l`` of layer ``l`` (``0 <= l <= L - 1``) of the idealised network.

    Our derivation (chapter "Connections"), for the setting of :func:`layerwise_compression`: orthonormal data, the
    balanced minimum-norm network of :func:`balanced_min_norm_network` of width ``width``. The Gram ``Z_l^T Z_l`` has
    eigenvalue ``s^(2l)`` (``s^2 = (n / alpha^2)^(1/L)``) on each class indicator and ``eps^(2l)`` on the
    ``K (n - 1)`` within-class contrasts. ``normalize=True`` (the default, as for the book's rate tables) gives the
    rates of the features scaled to unit norm per sample, which depend on ``l`` only through ``C_l``
    (:func:`coding_rates_from_compression`); ``normalize=False`` those of the raw features. ``eps`` is the
    network's non-signal singular value, ``eps_sq`` the coding precision of :func:`pnc.metrics.coding_rate`.
    """
    compression = layerwise_compression(l, eps, n, K, L, alpha)  # validates l, eps, n, K, L, alpha
    n, K, width, eps_sq = _rate_args(n, K, width, eps_sq)
    if normalize:
        return coding_rates_from_compression(compression, n, K, width=width, eps_sq=eps_sq)
    ls = _np(l)
    signal_sq = (n / alpha**2) ** (1.0 / L)
    rates = _rates_from_spectrum(signal_sq**ls, eps ** (2 * ls), n, K, width, eps_sq)
    if ls.ndim == 0:
        return CodingRates(*(float(r) for r in rates))
    return rates
