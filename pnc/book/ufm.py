r"""The unconstrained-features model (UFM) and a deep linear version of it, trained by gradient descent (chapter 8).

The UFM treats the last-layer features as free: $H\in\mathbb R^{d\times N}$ (one column per sample, $N=Kn$,
balanced classes) is optimised together with the classifier $W\in\mathbb R^{K\times d}$ and an unregularised bias $b$,

$$\min_{W,H,b}\ \mathcal L(WH+b\mathbf 1^\top, Y)+\tfrac{\lambda_W}2\|W\|_F^2+\tfrac{\lambda_H}2\|H\|_F^2,$$

with $\mathcal L$ the mean cross-entropy or the squared loss $\frac1{2N}\|WH+b\mathbf 1^\top-Y\|_F^2$ against the
one-hot targets $Y$. The deep version replaces $W$ by a product $W_M\cdots W_1$ ($W_1,\dots,W_{M-1}$ square,
$W_M$ of size $K\times d$), each factor with weight decay $\lambda_W$; it is *linear* (no activation between the
factors), a simplification of ours.

- :func:`train_ufm`: gradient descent from a seeded random start, with collapse metrics (public ``pnc`` API) at a
  few steps and a layer-by-layer :class:`pnc.report.LayerReport` at the end;
- :func:`ce_etf_objective`: the lowest cross-entropy objective among collapsed configurations of the symmetric
  simplex-ETF form (our reduction), to compare trained runs with;
- :func:`mse_optimum`: the closed form of the collapsed minimiser of the regularised squared-loss UFM (derived in
  chapter 8 with sympy; our derivation, under the collapsed ansatz).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from pnc import metrics as M
from pnc.report import LayerReport, report_from_features

__all__ = ["LOSSES", "MSEOptimum", "UFMRun", "UFMSnapshot", "ce_etf_objective", "mse_optimum", "train_ufm"]

LOSSES = ("mse", "ce")
"""The losses :func:`train_ufm` knows: the squared loss and the cross-entropy."""


class MSEOptimum(NamedTuple):
    """The collapsed minimiser of the regularised squared-loss UFM (:func:`mse_optimum`)."""

    scale: float
    """$p$ with $WH=p\\,(Y-\\frac1K\\mathbf 1\\mathbf 1^\\top)$ (bias) or $WH=pY$ (no bias); 0 above the threshold."""
    feature_norm_sq: float
    """Mean squared feature norm $\\|H\\|_F^2/N$."""
    classifier_norm_sq: float
    """$\\|W\\|_F^2$."""


class UFMSnapshot(NamedTuple):
    """Collapse metrics of the free features $H$ at one step of :func:`train_ufm`."""

    step: int
    objective: float
    nc1: float
    nc2: float
    nc3: float
    compression: float
    layer_compression: tuple[float, ...]
    """$C_l$ of every layer feeding a factor: $H$, $W_1H$, ..., $W_{M-1}\\cdots W_1H$ (one entry at depth 1)."""


@dataclass(frozen=True)
class UFMRun:
    """One gradient-descent run of :func:`train_ufm`."""

    loss: str
    depth: int
    snapshots: tuple[UFMSnapshot, ...]
    report: LayerReport
    """Layer by layer at the end: row 0 is $H$, row $l$ is $W_l\\cdots W_1H$ (the last row feeds $W_M$)."""
    labels: np.ndarray
    features: np.ndarray
    """Final $H^\\top$ (N×d)."""
    weights: tuple[np.ndarray, ...]
    """Final $W_1,\\dots,W_M$ ($W_M$ is the classifier)."""
    bias: np.ndarray | None
    feature_norm_sq: float
    """$\\|H\\|_F^2/N$ at the end."""
    classifier_norm_sq: float
    """$\\|W_M\\cdots W_1\\|_F^2$ at the end for depth 1, $\\|W_M\\|_F^2$ otherwise."""
    train_accuracy: float


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def _count(name: str, value: int, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


def mse_optimum(n_classes: int, n_per_class: int, lambda_h: float, lambda_w: float, *, bias: bool = True
                ) -> MSEOptimum:
    r"""Closed form of the collapsed minimiser of the regularised squared-loss UFM (depth 1; our derivation).

    With $\mu=\sqrt{\lambda_W\lambda_H}$ the logits are $WH=p\,T$ with $p=\max(0,1-K\sqrt{n}\,\mu)$ and $T$ the
    centred targets $Y-\frac1K\mathbf 1\mathbf 1^\top$ (with bias) or $Y$ (without); the factors are balanced,
    $\lambda_W\|W\|_F^2=\lambda_H\|H\|_F^2=\mu\,p\,r\sqrt n$ with $r=K-1$ (bias) or $r=K$ (no bias).
    """
    k = _count("n_classes", n_classes, 2)
    n = _count("n_per_class", n_per_class, 1)
    lam_h, lam_w = _positive("lambda_h", lambda_h), _positive("lambda_w", lambda_w)
    mu = math.sqrt(lam_h * lam_w)
    p = max(0.0, 1.0 - k * math.sqrt(n) * mu)
    rank = k - 1 if bias else k
    return MSEOptimum(scale=p, feature_norm_sq=p * rank * math.sqrt(n) * mu / lam_h / (k * n),
                      classifier_norm_sq=p * rank * math.sqrt(n) * mu / lam_w)


def ce_etf_objective(n_classes: int, n_per_class: int, lambda_h: float, lambda_w: float, *, depth: int = 1) -> float:
    r"""Lowest regularised cross-entropy objective over collapsed configurations of the symmetric ETF form (ours).

    The form: $h_i=h\,e_{y_i}$ with $e_k$ the columns of $E=I-\frac1K\mathbf 1\mathbf 1^\top$, every factor a
    multiple $w_l$ of the same rank-$(K-1)$ map. The logits are then $a\,(e_{y_i}-\frac1K\mathbf 1)$ with
    $a=h\prod_lw_l$, the loss is $\log(1+(K-1)e^{-a})$, and by the AM–GM inequality the cheapest factors for a given
    $a$ cost $\frac{M+1}2\,(c_W^Mc_H)^{1/(M+1)}a^{2/(M+1)}$ with $c_W=\lambda_W(K-1)$, $c_H=\lambda_HN\frac{K-1}K$.
    The remaining one-dimensional problem in $a\ge0$ is solved on a grid and refined by golden-section search.
    """
    k = _count("n_classes", n_classes, 2)
    n = _count("n_per_class", n_per_class, 1)
    m_layers = _count("depth", depth, 1)
    lam_h, lam_w = _positive("lambda_h", lambda_h), _positive("lambda_w", lambda_w)
    c_w, c_h = lam_w * (k - 1), lam_h * k * n * (k - 1) / k
    cost = (m_layers + 1) / 2 * (c_w**m_layers * c_h) ** (1 / (m_layers + 1))

    def value(a: np.ndarray | float) -> np.ndarray | float:
        return np.log1p((k - 1) * np.exp(-a)) + cost * np.power(a, 2 / (m_layers + 1))

    grid = np.linspace(0.0, 100.0, 200_001)
    i = int(np.argmin(value(grid)))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        x1, x2 = hi - golden * (hi - lo), lo + golden * (hi - lo)
        if value(x1) < value(x2):
            hi = x2
        else:
            lo = x1
    return float(min(value(0.5 * (lo + hi)), value(grid[i])))


def _collapse(h: np.ndarray, labels: np.ndarray, classifier: np.ndarray) -> tuple[float, float, float, float]:
    stats = M.ClassStats(track_covariance=True).update(h, labels)
    return (float(M.nc1(stats)), float(M.nc2(stats).etf_error), float(M.nc3(stats, classifier)),
            float(M.compression(stats)))


def train_ufm(
    n_classes: int = 4,
    n_per_class: int = 10,
    dim: int = 8,
    *,
    loss: str = "mse",
    depth: int = 1,
    lambda_h: float = 5e-3,
    lambda_w: float = 5e-3,
    bias: bool = True,
    lr: float = 0.2,
    steps: int = 3000,
    record_at: Sequence[int] = (0, 10, 30, 100, 300, 1000, 3000),
    init_scale: float = 1.0,
    seed: int = 0,
) -> UFMRun:
    r"""Gradient descent on the (deep) UFM from a seeded random start; same seed, same numbers.

    ``depth`` is the number $M$ of linear factors after $H$ (1: the plain UFM). The step on $W_l$ and $b$ is
    ``lr``; the step on $H$ is ``lr``$\cdot N$, because each column of $H$ sees only its own sample's $1/N$ share
    of the loss (a fixed per-block step, so the stationary points are those of the objective). ``record_at``: the
    steps at which :class:`UFMSnapshot` s of $H$ are taken (those beyond ``steps`` are dropped). Float64, CPU.
    """
    k = _count("n_classes", n_classes, 2)
    n = _count("n_per_class", n_per_class, 1)
    d = _count("dim", dim, 1)
    m_layers = _count("depth", depth, 1)
    total = _count("steps", steps, 1)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if d < k:
        raise ValueError(f"dim must be at least n_classes (d >= K), got dim={d}, n_classes={k}")
    lam_h, lam_w = _positive("lambda_h", lambda_h, allow_zero=True), _positive("lambda_w", lambda_w, allow_zero=True)
    step_size, scale = _positive("lr", lr), _positive("init_scale", init_scale)
    marks = sorted({_count("record_at entry", s, 0) for s in record_at})
    marks = [s for s in marks if s <= total]

    big_n = k * n
    labels = np.repeat(np.arange(k), n)
    gen = torch.Generator().manual_seed(int(seed))
    dt = torch.float64
    h = (scale * torch.randn(d, big_n, generator=gen, dtype=dt)).requires_grad_(True)
    shapes = [(d, d)] * (m_layers - 1) + [(k, d)]
    ws = [(scale * torch.randn(*s, generator=gen, dtype=dt) / math.sqrt(d)).requires_grad_(True) for s in shapes]
    b = torch.zeros(k, 1, dtype=dt, requires_grad=bias)
    y_idx = torch.as_tensor(labels)
    y_onehot = torch.nn.functional.one_hot(y_idx, k).to(dt).T  # K×N

    def logits() -> torch.Tensor:
        z = h
        for w in ws:
            z = w @ z
        return z + b if bias else z

    def objective() -> torch.Tensor:
        z = logits()
        if loss == "mse":
            fit = 0.5 * ((z - y_onehot) ** 2).sum() / big_n
        else:
            fit = torch.nn.functional.cross_entropy(z.T, y_idx)
        reg = 0.5 * lam_h * (h**2).sum() + 0.5 * lam_w * sum((w**2).sum() for w in ws)
        return fit + reg

    def classifier() -> np.ndarray:
        prod = ws[0]
        for w in ws[1:]:
            prod = w @ prod
        return prod.detach().numpy()

    snaps: list[UFMSnapshot] = []
    params = [h, *ws] + ([b] if bias else [])
    rates = [step_size * big_n] + [step_size] * (len(params) - 1)
    for t in range(total + 1):
        value = objective()
        if t in marks:
            with torch.no_grad():
                hn = h.detach().numpy().T.copy()
                per_layer, z = [], h
                for w in [None, *ws[:-1]]:
                    z = z if w is None else w @ z
                    per_layer.append(float(M.compression(z.detach().numpy().T, labels)))
                snaps.append(UFMSnapshot(t, float(value.detach()), *_collapse(hn, labels, classifier()),
                                         layer_compression=tuple(per_layer)))
        if t == total:
            break
        grads = torch.autograd.grad(value, params)
        with torch.no_grad():
            for p, g, r in zip(params, grads, rates, strict=True):
                p -= r * g
        if not math.isfinite(float(value.detach())):
            raise ValueError(f"gradient descent diverged at step {t}: lower lr (got {lr})")

    with torch.no_grad():
        feats = [h.detach().numpy().T.copy()]
        z = h
        for w in ws[:-1]:
            z = w @ z
            feats.append(z.detach().numpy().T.copy())
        report = report_from_features(feats, labels, metrics=("compression", "nc1", "nc2"))
        last = ws[-1].detach().numpy()
        nc3_last = float(M.nc3((feats[-1], labels), last))
        report = report.with_columns(nc3=[None] * (len(feats) - 1) + [nc3_last])
        acc = float((logits().argmax(0).numpy() == labels).mean())
        w_norm = float((classifier() ** 2).sum()) if m_layers == 1 else float((last**2).sum())
        return UFMRun(loss=loss, depth=m_layers, snapshots=tuple(snaps), report=report, labels=labels,
                      features=feats[0], weights=tuple(w.detach().numpy().copy() for w in ws),
                      bias=b.detach().numpy().ravel().copy() if bias else None,
                      feature_norm_sq=float((h.detach() ** 2).sum()) / big_n, classifier_norm_sq=w_norm,
                      train_accuracy=acc)
