r"""Layerwise collapse metrics: compression, discrimination, NC1–NC4, CDNV, ranks and coding rates.

Notation (theory reference §1–2): features $z\in\mathbb R^d$ of $N$ samples in $K$ classes of $n_k$ samples,
class means $\mu_k$, global mean $\mu=\frac1N\sum_iz_i=\sum_k\frac{n_k}N\mu_k$ (the sample mean, as in Papyan et al.
and the authors' code),

$$\Sigma_W=\frac1N\sum_{k,i}(z_{k,i}-\mu_k)(z_{k,i}-\mu_k)^\top,\qquad
\Sigma_B=\frac1K\sum_k(\mu_k-\mu)(\mu_k-\mu)^\top$$

(unweighted over classes). Every function that centres the class means (:meth:`ClassStats.sigma_b`,
:func:`compression`, :func:`nc1`, :func:`nc1_two_pass`, :func:`nc2`, :func:`nc3`) takes a keyword
``between_centre``: ``"sample_mean"`` (the default) or ``"class_means"`` for the mean of the class means
$\frac1K\sum_k\mu_k$. The two coincide for balanced classes; on imbalanced ones $C$ and NC1 differ. CDNV, NC4 and
the discrimination do not depend on the centre.

All statistics are accumulated in float64 by :class:`ClassStats`, which streams over batches and merges
partial results with the pairwise formula of Chan, Golub & LeVeque (1979): for two partial results $a, b$ of
the same class with $\delta=\mu_b-\mu_a$,

$$M2_{ab}=M2_a+M2_b+\frac{n_an_b}{n_a+n_b}\,\delta\delta^\top .$$

The centred sums of squares are never formed as $E[zz^\top]-\mu\mu^\top$, which loses every significant digit
when the features carry a large common offset.

Any number of classes works (a language model's vocabulary, K = 50,000): :class:`ClassStats` admits new classes with
no per-class Python loop, every K×K computation (CDNV's distances, D's cosines, nearest class means) runs in tiles
whose size comes from the memory budget :data:`PAIRWISE_BUDGET_BYTES` (``tile_size=`` overrides it, see
:func:`pairwise_tile_size`), and NC2 forms no K×K matrix. A class with a single sample has variance 0: it adds
nothing to $\Sigma_W$ and enters CDNV with $V_k=0$.

Every metric function accepts either a :class:`ClassStats`, a ``(features, labels)`` pair as two arguments,
or a ``(features, labels)`` tuple; features may be numpy arrays or torch tensors on any device and dtype.
Degenerate inputs raise :class:`ValueError`; no function returns NaN.
"""

from __future__ import annotations

import math
import threading
from typing import Any, NamedTuple

import numpy as np
import torch

from ._checks import _is_torch_tensor, as_features, as_labels, check_classes, to_numpy

__all__ = [
    "BETWEEN_CENTRES",
    "PAIRWISE_BUDGET_BYTES",
    "check_centre",
    "ClassStats",
    "NC2",
    "compression",
    "discrimination",
    "nc1",
    "nc1_two_pass",
    "nc2",
    "equinorm",
    "nc3",
    "nc4",
    "cdnv",
    "separation_fuzziness",
    "nearest_class_mean",
    "pairwise_tile_size",
    "predicted_classes",
    "singular_values",
    "rank_from_singular_values",
    "numerical_rank",
    "effective_rank",
    "coding_rate",
    "class_coding_rate",
    "rate_reduction",
]

_EPS = np.finfo(np.float64).eps

BETWEEN_CENTRES: tuple[str, ...] = ("sample_mean", "class_means")
"""Allowed values of the ``between_centre`` keyword (the first is the default)."""


def check_centre(between_centre: Any) -> str:
    """Validate a ``between_centre`` value and return it."""
    if not (isinstance(between_centre, str) and between_centre in BETWEEN_CENTRES):
        raise ValueError(
            f"between_centre must be one of {', '.join(repr(c) for c in BETWEEN_CENTRES)}, got {between_centre!r}"
        )
    return between_centre


# ----------------------------------------------------------------------------------------------------------
# Streaming class statistics
# ----------------------------------------------------------------------------------------------------------


def _folded(field: str) -> property:
    private = "_s_" + field

    def get(self: ClassStats) -> Any:
        if self._pending is not None:
            self._flush()
        return getattr(self, private)

    def put(self: ClassStats, value: Any) -> None:
        setattr(self, private, value)
        self._gram_eig = None  # new statistics: the cached eigenvalues are stale

    return property(get, put)


class ClassStats:
    """Streaming per-class statistics (counts, means, centred scatter) in float64.

    Args:
        dim: expected feature dimension; ``None`` infers it from the first batch.
        track_covariance: also keep the total within-class scatter $\\sum_k M2_k$ ($d\\times d$), needed for
            :func:`nc1`, :meth:`sigma_w` and :meth:`gram`. Traces (compression, CDNV) never need it.

    Per class it keeps the count $n_k$, the mean $\\mu_k$ and the centred sum of squares
    $\\mathrm{tr}\\,M2_k=\\sum_i\\lVert z_{k,i}-\\mu_k\\rVert^2$. Batches are reduced into shifted per-class sums (a few
    passes over the features; one syrk per few batches for the tracked scatter) and merged with Chan's pairwise
    formula, so ``update`` order and :meth:`merge` order do not matter (up to rounding).
    """

    _compensated: bool | None = None  # None: float64 where the device has it; True forces float32 + Kahan (tests)

    def __init__(self, dim: int | None = None, track_covariance: bool = True) -> None:
        if dim is not None and (int(dim) != dim or dim <= 0):
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self._dim0 = None if dim is None else int(dim)
        self.track_covariance = bool(track_covariance)
        self.reset()

    # -- state -------------------------------------------------------------------------------------------
    # The folded statistics live in ``_s_*``; reading them through these properties folds pending batches first.
    _classes = _folded("classes")
    _counts = _folded("counts")
    _means = _folded("means")
    _ss = _folded("ss")
    _scatter = _folded("scatter")

    def reset(self) -> None:
        """Forget all data (the constructor's ``dim`` is kept)."""
        self._pending: _Pending | None = None
        self._gram_eig: np.ndarray | None = None
        self._dim = self._dim0
        self._classes = np.zeros(0, dtype=np.int64)
        self._counts = np.zeros(0, dtype=np.int64)
        self._means = np.zeros((0, self._dim or 0))
        self._ss = np.zeros(0)
        self._scatter: np.ndarray | None = None

    def copy(self) -> ClassStats:
        """Return an independent copy."""
        self._flush()
        new = ClassStats(self._dim0, self.track_covariance)
        new._dim = self._dim
        new._classes = self._classes.copy()
        new._counts = self._counts.copy()
        new._means = self._means.copy()
        new._ss = self._ss.copy()
        new._scatter = None if self._scatter is None else self._scatter.copy()
        return new

    def _check_dim(self, d: int) -> None:
        if self._dim is not None and d != self._dim:
            raise ValueError(f"feature dimension changed: expected {self._dim}, got {d}")

    def update(self, features: Any, labels: Any) -> ClassStats:
        """Add a batch of ``features`` (N×d, numpy or torch on any device) with integer ``labels`` (N,).

        The batch is reduced where it lives (a CUDA tensor stays on its GPU: no host copy per batch) into shifted
        per-class sums, in float64, or in float32 with compensated (Kahan) summation on devices without float64.
        They are folded into the float64 statistics when a result is read. Returns self.
        """
        x = _feature_tensor(features)
        groups = labels if isinstance(labels, _Groups) else _Groups(as_labels(labels, x.shape[0]))
        if groups.inv.size != x.shape[0]:
            raise ValueError(f"length mismatch: {x.shape[0]} features but {groups.inv.size} labels")
        self._check_dim(x.shape[1])
        self._dim = x.shape[1]
        if self._pending is not None and self._pending.device != x.device:
            self._flush()
        if self._pending is None:
            self._pending = _Pending(x.device, x.shape[1], self.track_covariance, self._compensated)
        rows = max(1, _CHUNK_ELEMENTS // x.shape[1])
        if x.shape[0] <= rows:
            self._pending.add(x, groups)
        else:  # a large array in cache-sized chunks: bounded float64 working memory, same sums
            for start in range(0, x.shape[0], rows):
                self._pending.add(x[start : start + rows], _Groups(groups.labels[start : start + rows]))
        return self

    def _flush(self) -> None:
        """Fold the pending device sums into the float64 statistics (a no-op when nothing is pending)."""
        pending, self._pending = self._pending, None
        if pending is not None and pending.count.size:
            self._combine(*pending.finish(), pending.dim, self.track_covariance)

    def _combine(self, cb, nb, mb, ssb, sb, d, tracked_b) -> None:
        self._check_dim(d)
        if self._classes.size == 0:
            self._dim = d
            self._classes, self._counts, self._means, self._ss = cb.copy(), nb.copy(), mb.copy(), ssb.copy()
            self._scatter = sb.copy() if (self.track_covariance and tracked_b) else None
            if not tracked_b:
                self.track_covariance = False
            return
        allc = np.union1d(self._classes, cb)
        ia = np.searchsorted(allc, self._classes)
        ib = np.searchsorted(allc, cb)
        k = allc.size
        na = np.zeros(k)
        nbf = np.zeros(k)
        na[ia] = self._counts
        nbf[ib] = nb
        ma = np.zeros((k, d))
        mbf = np.zeros((k, d))
        ma[ia] = self._means
        mbf[ib] = mb
        n = na + nbf
        delta = mbf - ma
        coef = na * nbf / n
        means = ma + delta * (nbf / n)[:, None]
        ss = np.zeros(k)
        ss[ia] += self._ss
        ss[ib] += ssb
        ss += coef * np.einsum("ij,ij->i", delta, delta)
        if self.track_covariance and tracked_b:
            scaled = delta * np.sqrt(coef)[:, None]
            self._scatter += sb
            self._scatter += scaled.T @ scaled  # A.T @ A: exactly symmetric
        else:
            self._scatter = None
            self.track_covariance = False
        self._classes = allc
        self._counts = n.astype(np.int64)
        self._means = means
        self._ss = ss

    def merge(self, other: ClassStats) -> ClassStats:
        """Return a new :class:`ClassStats` holding the data of both ``self`` and ``other``."""
        if not isinstance(other, ClassStats):
            raise TypeError(f"can only merge ClassStats, got {type(other).__name__}")
        out = self.copy()
        if other._classes.size == 0:
            if other._dim is not None:
                out._check_dim(other._dim)
            return out
        out._combine(
            other._classes, other._counts, other._means, other._ss, other._scatter, other._dim,
            other.track_covariance,
        )
        return out

    __add__ = merge

    # -- accessors ---------------------------------------------------------------------------------------
    def _require(self) -> None:
        if self._classes.size == 0:
            raise ValueError("ClassStats is empty: call update() with some data first")

    def _require_cov(self) -> np.ndarray:
        self._require()
        if self._scatter is None:
            raise ValueError(
                "this ClassStats was built with track_covariance=False; the d×d scatter is needed"
            )
        return self._scatter

    @property
    def dim(self) -> int | None:
        """Feature dimension d (None before the first update)."""
        return self._dim

    @property
    def classes(self) -> np.ndarray:
        """Sorted distinct label values seen so far (need not be contiguous)."""
        return self._classes.copy()

    @property
    def num_classes(self) -> int:
        """Number of classes K."""
        return int(self._classes.size)

    @property
    def counts(self) -> np.ndarray:
        """Samples per class, ordered like :attr:`classes`."""
        return self._counts.copy()

    @property
    def n_samples(self) -> int:
        """Total number of samples N."""
        return int(self._counts.sum())

    @property
    def means(self) -> np.ndarray:
        """Class means, K×d, rows ordered like :attr:`classes`."""
        self._require()
        return self._means.copy()

    @property
    def global_mean(self) -> np.ndarray:
        """Sample mean of all features, $\\frac1N\\sum_iz_i=\\sum_k\\frac{n_k}N\\mu_k$ (exact from counts and means)."""
        return self.centre("sample_mean")

    def centre(self, between_centre: str = "sample_mean") -> np.ndarray:
        """The centre $\\mu$ of the between-class scatter (d,).

        ``"sample_mean"`` (default): $\\sum_k\\frac{n_k}N\\mu_k$, the mean of all samples; ``"class_means"``:
        $\\frac1K\\sum_k\\mu_k$, the mean of the class means. They coincide for balanced classes.
        """
        between_centre = check_centre(between_centre)
        self._require()
        if between_centre == "class_means":
            return self._means.mean(axis=0)
        return (self._counts / self._counts.sum()) @ self._means

    def centred_means(self, between_centre: str = "sample_mean") -> np.ndarray:
        """Rows $\\mu_k-\\mu$ (K×d), with $\\mu$ from :meth:`centre`."""
        return self._means - self.centre(between_centre)

    @property
    def class_sum_squares(self) -> np.ndarray:
        """Per class $\\sum_i\\lVert z_{k,i}-\\mu_k\\rVert^2$."""
        return self._ss.copy()

    @property
    def class_variances(self) -> np.ndarray:
        """Per class $V_k=\\frac1{n_k}\\sum_i\\lVert z_{k,i}-\\mu_k\\rVert^2$ (0 for a class with a single sample)."""
        self._require()
        return self._ss / self._counts

    @property
    def within_scatter(self) -> np.ndarray:
        """$\\Sigma_W$ (d×d); same as :meth:`sigma_w`."""
        return self.sigma_w()

    def sigma_w(self) -> np.ndarray:
        """Within-class covariance $\\Sigma_W=\\frac1N\\sum_k M2_k$ (d×d)."""
        return self._require_cov() / self.n_samples

    def sigma_b(self, between_centre: str = "sample_mean") -> np.ndarray:
        """Between-class covariance $\\Sigma_B=\\frac1K\\sum_k(\\mu_k-\\mu)(\\mu_k-\\mu)^\\top$ (d×d).

        Unweighted over classes; the centre $\\mu$ is the sample mean by default (see :meth:`centre`).
        """
        mc = self.centred_means(between_centre)
        return mc.T @ mc / mc.shape[0]

    def trace_sigma_w(self) -> float:
        """$\\operatorname{Tr}\\Sigma_W$, computed from per-class sums of squares (no d×d matrix)."""
        self._require()
        return float(self._ss.sum() / self.n_samples)

    def trace_sigma_b(self, between_centre: str = "sample_mean") -> float:
        """$\\operatorname{Tr}\\Sigma_B$ (no d×d matrix); ``between_centre`` as in :meth:`sigma_b`."""
        mc = self.centred_means(between_centre)
        return float(np.einsum("ij,ij->", mc, mc) / mc.shape[0])

    def gram(self) -> np.ndarray:
        """Uncentred Gram matrix of all features, $X^\\top X=\\sum_k(M2_k+n_k\\mu_k\\mu_k^\\top)$ (d×d)."""
        scatter = self._require_cov()
        return scatter + (self._means * self._counts[:, None]).T @ self._means

    def gram_eigenvalues(self) -> np.ndarray:
        """Eigenvalues of :meth:`gram`, descending (computed once per state: ranks and coding rates share them)."""
        scatter = self._require_cov()  # folds pending batches, which clears the cache
        if self._gram_eig is None:
            self._gram_eig = np.linalg.eigvalsh(scatter + (self._means * self._counts[:, None]).T @ self._means)[::-1]
        return self._gram_eig.copy()

    def __repr__(self) -> str:
        if self._classes.size == 0:
            return f"ClassStats(empty, dim={self._dim})"
        return (
            f"ClassStats(K={self.num_classes}, N={self.n_samples}, dim={self._dim}, "
            f"track_covariance={self.track_covariance})"
        )


_MAX_ABS = 1e100
_MIN_ABS = 1e-100
_ONE_HOT_MAX = 64  # off the CPU, up to this many classes in a batch, class sums are (exact) one-hot GEMMs
_CHUNK_ELEMENTS = 1 << 20  # ClassStats.update reduces larger batches in chunks of about this many features
_BLOCK_ELEMENTS = 1 << 16  # on the CPU a batch passes through a cache-sized scratch block of about this many features
_BUFFER_ELEMENTS = 1 << 22  # rows of small batches are gathered up to this many features for one scatter syrk


def _feature_tensor(features: Any) -> torch.Tensor:
    """``features`` as a 2-D real torch tensor on its own device (numpy arrays are wrapped without a copy)."""
    if _is_torch_tensor(features):
        x = features.detach()
        if x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"features must be real numbers, got dtype {x.dtype}")
    else:
        arr = np.asarray(features)
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise ValueError(f"features must be real numbers, got dtype {arr.dtype}")
        if arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float64)
        x = torch.from_numpy(np.ascontiguousarray(arr))
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array of shape (N, d), got {x.ndim}-D array with shape "
                         f"{tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"features are empty: shape {tuple(x.shape)}")
    return x


def _has_float64(device: torch.device) -> bool:
    try:
        torch.zeros(1, dtype=torch.float64, device=device)
    except (TypeError, RuntimeError):
        return False
    return True


def _gram(c: torch.Tensor) -> torch.Tensor:
    """cᵀc; on the CPU through numpy, whose matmul takes the symmetric rank-k (syrk) path at half the cost."""
    if c.device.type == "cpu":
        cn = c.numpy()
        return torch.from_numpy(cn.T @ cn)
    return c.T @ c


_SCRATCH = threading.local()


def _scratch_blocks(rows: int, dim: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Two rows×dim CPU scratch tensors: views of one buffer per thread and dtype, shared by every layer so that it
    stays in the cache from layer to layer (and costs the memory of one block, not one per layer)."""
    cache = _SCRATCH.__dict__
    views = cache.get((rows, dim, dtype))
    if views is None:
        flat = cache.get(dtype)
        if flat is None or flat.numel() < 2 * rows * dim:
            for key in [key for key in cache if isinstance(key, tuple) and key[2] == dtype]:
                del cache[key]  # views of the buffer being replaced
            flat = cache[dtype] = torch.empty(2 * max(rows * dim, _BLOCK_ELEMENTS), dtype=dtype)
        views = cache[(rows, dim, dtype)] = (flat[: rows * dim].view(rows, dim),
                                             flat[rows * dim : 2 * rows * dim].view(rows, dim))
    return views


class _Groups:
    """The class structure of one batch of labels, shared by every layer measured on that batch.

    ``classes`` (sorted), ``inv`` (each sample's index into ``classes``) and ``counts``; per device it keeps the
    index tensor of ``inv`` (and, off the CPU with few classes, the one-hot matrix), made once for all layers.
    """

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels
        self.classes, inv, self.counts = np.unique(labels, return_inverse=True, return_counts=True)
        self.inv = inv.reshape(-1)
        self._cache: dict[tuple[Any, Any], torch.Tensor] = {}

    def _get(self, kind: str, like: torch.Tensor) -> torch.Tensor:
        key = (kind, like.device, like.dtype if kind != "inv" else None)
        t = self._cache.get(key)
        if t is None:
            if kind == "one_hot":
                t = torch.zeros(self.inv.size, self.classes.size, dtype=like.dtype, device=like.device)
                t[torch.arange(self.inv.size, device=like.device), torch.from_numpy(self.inv).to(like.device)] = 1.0
            elif kind == "counts":
                t = torch.from_numpy(self.counts).to(device=like.device, dtype=like.dtype)
            else:
                t = torch.from_numpy(self.inv).to(like.device)
            self._cache[key] = t
        return t

    def counts_as(self, like: torch.Tensor) -> torch.Tensor:
        return self._get("counts", like)

    def class_sums(self, values: torch.Tensor) -> torch.Tensor:
        """Per-class sums of the rows of ``values`` (N or N×d), ordered like ``classes``.

        On the CPU one ``index_add_`` pass (a memory-bound sweep, several times faster than a skinny GEMM); on
        accelerators with few classes an exact one-hot GEMM (deterministic, unlike atomic ``index_add_``).
        """
        if values.device.type != "cpu" and self.classes.size <= _ONE_HOT_MAX:
            return self._get("one_hot", values).T @ values
        out = torch.zeros((self.classes.size, *values.shape[1:]), dtype=values.dtype, device=values.device)
        return out.index_add_(0, self._get("inv", values), values)

    def shifted_sums(
        self, x: torch.Tensor, shift: torch.Tensor, scratch: tuple[torch.Tensor, torch.Tensor] | None,
        keep: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-class sums and per-row norms of the shifted rows ``x[i] - shift[inv[i]]``, in ``shift``'s dtype
        (exact: a float32 feature minus a float64 shift is computed in float64).

        On the CPU (``scratch`` given: two rows×d tensors) the batch passes through the scratch block by block, so
        each block is converted, shifted, normed and summed while it is in the cache; ``keep`` (N×d), when given,
        receives the shifted rows instead (the scatter needs them). Elsewhere the batch is one pass in ``keep``.
        """
        n = x.shape[0]
        inv = self._get("inv", shift)
        norms = torch.empty(n, dtype=shift.dtype, device=shift.device)
        if scratch is None:
            torch.index_select(shift, 0, inv, out=keep)
            torch.sub(x, keep, out=keep)  # one kernel converts and subtracts
            torch.linalg.vector_norm(keep, dim=1, out=norms)
            return self.class_sums(keep), norms
        sums = torch.zeros(self.classes.size, shift.shape[1], dtype=shift.dtype)
        block, shifts = scratch
        rows = block.shape[0]
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            xb, where, nb = (x, inv, norms) if n <= rows else (x[start:stop], inv[start:stop], norms[start:stop])
            rb = block[: stop - start] if keep is None else keep[start:stop]
            sb = torch.index_select(shift, 0, where, out=shifts[: stop - start])
            rb.copy_(xb).sub_(sb)  # on the CPU faster than one mixed-dtype subtraction
            torch.linalg.vector_norm(rb, dim=1, out=nb)
            sums.index_add_(0, where, rb)
        return sums, norms


class _Pending:
    """Per-class sums of the batches added since the last fold, kept on the features' device.

    Each class has a fixed shift $s_k$ (its mean in the first batch that holds it); the sums are of the shifted
    features $c=z-s_k$: count, $\\sum c$, $\\sum\\lVert c\\rVert^2$ and (tracked) $\\sum cc^\\top$. Because $s_k$ is
    close to the class mean, $M2_k=\\sum\\lVert c\\rVert^2-n_k\\lVert\\bar c\\rVert^2$ loses no digits to a common
    offset, and a batch costs a few passes over its features (:meth:`_Groups.shifted_sums`), with no per-batch merge.
    Where the device has no float64 the sums are float32 with Kahan compensation.
    """

    def __init__(self, device: torch.device, dim: int, track: bool, compensated: bool | None = None) -> None:
        self.device = device
        self.dim = dim
        self.compensated = (not _has_float64(device)) if compensated is None else compensated
        self.dtype = torch.float32 if self.compensated else torch.float64
        self.labels = np.zeros(0, dtype=np.int64)  # the label of each slot, in slot order
        self._sorted = np.zeros(0, dtype=np.int64)  # the labels sorted, and their slots: a batch's classes are
        self._sorted_slots = np.zeros(0, dtype=np.int64)  # found by one searchsorted, with no per-class loop
        self.count = np.zeros(0, dtype=np.int64)
        self.peak = 0.0  # largest |shift| or centred sample norm seen (the magnitude check)
        self.shift_peak = 0.0
        self._pending_peak: torch.Tensor | None = None
        self._buffer: torch.Tensor | None = None  # CPU: shifted rows of several batches awaiting one syrk
        self._used = 0
        self._known: tuple[bytes, np.ndarray, torch.Tensor, torch.Tensor] | None = None  # the last batch's classes
        zeros = lambda *shape: torch.zeros(shape, dtype=self.dtype, device=device)  # noqa: E731
        self.shift, self.sum, self.sq = zeros(0, dim), zeros(0, dim), zeros(0)
        self.scatter = zeros(dim, dim) if track else None
        self._zeros = zeros
        if self.compensated:  # running compensations of the Kahan sums
            self.sum_c, self.sq_c = zeros(0, dim), zeros(0)
            self.scatter_c = zeros(dim, dim) if track else None

    def _grow(self, new: np.ndarray) -> None:
        """Give the (sorted, unseen) labels ``new`` the next slots; the per-class tensors grow geometrically, so
        adding K classes batch by batch copies O(K·d) in all."""
        k0, k = self.labels.size, self.labels.size + new.size
        self.labels = np.concatenate([self.labels, new])
        where = np.searchsorted(self._sorted, new)
        self._sorted = np.insert(self._sorted, where, new)
        self._sorted_slots = np.insert(self._sorted_slots, where, np.arange(k0, k, dtype=np.int64))
        self.count = np.concatenate([self.count, np.zeros(new.size, dtype=np.int64)])
        if k > self.shift.shape[0]:
            capacity = max(k, 2 * self.shift.shape[0])
            names = ["shift", "sum", "sq"] + (["sum_c", "sq_c"] if self.compensated else [])
            for name in names:
                old = getattr(self, name)
                setattr(self, name, torch.cat([old, self._zeros(capacity - old.shape[0], *old.shape[1:])]))

    def _accumulate(self, name: str, value: torch.Tensor, index: torch.Tensor | None = None) -> None:
        """``self.name += value`` (rows ``index``); Kahan-compensated when the sums are float32."""
        total = getattr(self, name)
        if not self.compensated:
            if index is None:
                total.add_(value)
            else:
                total.index_add_(0, index, value)
            return
        if index is not None:
            value = self._zeros(*total.shape).index_add_(0, index, value)
        comp = getattr(self, name + "_c")
        y = value - comp
        t = total + y
        comp.copy_((t - total) - y)
        total.copy_(t)

    def _admit(self, x: torch.Tensor, groups: _Groups) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """Slots of the batch's classes (host and device) and their shifts; a new class gets a slot, and its mean in
        this batch as its shift. Shifts never change afterwards."""
        classes = groups.classes
        where = np.minimum(np.searchsorted(self._sorted, classes), max(self._sorted.size - 1, 0))
        known = (self._sorted[where] == classes) if self._sorted.size else np.zeros(classes.size, dtype=bool)
        if not known.all():
            self._grow(classes[~known])
            where = np.searchsorted(self._sorted, classes)
        host_slots = self._sorted_slots[where]
        slots = torch.from_numpy(host_slots).to(self.device)
        if not known.all():
            fresh = torch.from_numpy(~known).to(self.device)
            means = groups.class_sums(x.to(self.dtype)) / groups.counts_as(self.shift)[:, None]
            self.shift[slots[fresh]] = means[fresh]
            self.shift_peak = max(self.shift_peak, float(means[fresh].abs().max()))
        return host_slots, slots, self.shift.index_select(0, slots)

    def add(self, x: torch.Tensor, groups: _Groups) -> None:
        key = groups.classes.tobytes()
        if self._known is None or self._known[0] != key:  # consecutive batches usually hold the same classes
            self._known = (key, *self._admit(x, groups))
        _, host_slots, slots, shift = self._known
        kept = self._rows(x.shape[0])
        sums, norms = groups.shifted_sums(x, shift, self._scratch(), kept)
        if self.device.type == "cpu":  # cheap here; on a GPU the check waits for the fold (no sync per batch)
            self._check(norms, x)
        else:
            peak = norms.max()
            self._pending_peak = peak if self._pending_peak is None else torch.maximum(peak, self._pending_peak)
        self._accumulate("sum", sums, slots)
        self._accumulate("sq", groups.class_sums(norms.square_()), slots)
        if self.scatter is not None:
            if self._buffer is None:
                self._accumulate("scatter", _gram(kept))
            elif self._used == self._buffer.shape[0]:
                self._drain()
        self.count[host_slots] += groups.counts  # the slots of one batch are distinct

    def _check(self, norms: torch.Tensor, c: torch.Tensor | None = None) -> None:
        largest = float(norms.max())
        if not math.isfinite(largest) and (c is None or not bool(torch.isfinite(c).all())):
            raise ValueError("features contain NaN or inf values" if c is not None else
                             "features contain NaN or inf values, or values whose squares overflow float64 "
                             "(then rescale the features)")
        self.peak = max(self.peak, largest, self.shift_peak)
        if self.peak > _MAX_ABS or 0.0 < self.peak < _MIN_ABS:
            raise ValueError(
                f"features have magnitude {self.peak:.1e}: their second moments would over/underflow float64 "
                f"(supported: largest |value| in [{_MIN_ABS:g}, {_MAX_ABS:g}] or all zero); rescale the features"
            )

    def _rows(self, n: int) -> torch.Tensor | None:
        """Where the next batch's shifted rows are kept: in the scatter buffer on the CPU (several batches await one
        syrk), in a fresh tensor on other devices; ``None`` on the CPU without the scatter (they need not be kept)."""
        cpu = self.device.type == "cpu"
        if cpu and self.scatter is None:
            return None
        if cpu and n < _BUFFER_ELEMENTS // self.dim:
            if self._buffer is None:
                self._buffer = torch.empty(_BUFFER_ELEMENTS // self.dim, self.dim, dtype=self.dtype)
            if self._used + n > self._buffer.shape[0]:
                self._drain()
            self._used += n
            return self._buffer[self._used - n : self._used]
        return torch.empty(n, self.dim, dtype=self.dtype, device=self.device)  # GPUs: from the caching allocator

    def _scratch(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """On the CPU, the cache-sized scratch blocks of :meth:`_Groups.shifted_sums`; elsewhere None."""
        if self.device.type != "cpu":
            return None
        return _scratch_blocks(max(1, _BLOCK_ELEMENTS // self.dim), self.dim, self.dtype)

    def _drain(self) -> None:
        """Add the buffered rows' scatter: one syrk over several batches runs closer to the BLAS peak."""
        if self._buffer is not None and self._used:
            self._accumulate("scatter", _gram(self._buffer[: self._used]))
        self._used = 0

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Sorted classes, counts, means, centred sums of squares and scatter, as float64 numpy arrays."""
        self._drain()
        self._buffer = None
        if self._pending_peak is not None:
            self._check(self._pending_peak.reshape(1))
        host = lambda t: t.detach().to("cpu", torch.float64).numpy()  # noqa: E731
        order = np.argsort(self.labels)
        n = self.count[order].astype(np.float64)
        delta = host(self.sum)[order] / n[:, None]
        means = host(self.shift)[order] + delta
        ss = np.maximum(host(self.sq)[order] - n * np.einsum("ij,ij->i", delta, delta), 0.0)
        scatter = None
        if self.scatter is not None:
            scaled = delta * np.sqrt(n)[:, None]
            scatter = host(self.scatter) - scaled.T @ scaled
            scatter = (scatter + scatter.T) / 2
        if not (np.isfinite(ss).all() and np.isfinite(means).all()):
            raise ValueError("features too large: their second moments overflow float64; rescale them")
        return self.labels[order], self.count[order], means, ss, scatter


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------


def _stats(obj: Any, labels: Any = None, *, covariance: bool = False) -> ClassStats:
    """Turn a ClassStats / (features, labels) input into a ClassStats with at least two classes."""
    if isinstance(obj, ClassStats):
        if labels is not None:
            raise ValueError("labels must not be given together with a ClassStats")
        st = obj
        if covariance:
            st._require_cov()
    else:
        st = ClassStats(track_covariance=covariance)
        st.update(*_raw_pair(obj, labels))
    st._require()
    check_classes(st._classes)
    return st


def _raw_pair(obj: Any, labels: Any) -> tuple[Any, Any]:
    """``(features, labels)`` from the two arguments of a metric, or from a pair passed as the first one."""
    if isinstance(obj, tuple) and labels is None:
        if len(obj) != 2:
            raise ValueError("expected a (features, labels) pair")
        obj, labels = obj
    if labels is None:
        raise ValueError("labels are required when passing raw features")
    return obj, labels


def _check_between(st: ClassStats, between_centre: str = "sample_mean") -> float:
    """Return Tr Σ_B, raising if it is zero (to rounding) relative to the size of the class means."""
    tr_b = st.trace_sigma_b(between_centre)
    scale = float(np.max(np.einsum("ij,ij->i", st._means, st._means)))
    if tr_b <= 0.0 or tr_b <= (16 * _EPS) ** 2 * scale:
        raise ValueError("between-class scatter is zero (all class means coincide)")
    return tr_b


PAIRWISE_BUDGET_BYTES: int = 32 * 2**20
"""Memory budget (bytes) of one tile of a K×K computation (CDNV's distances, NC2's Gram, D's cosines, the
nearest-class-centre decisions): a tile of t×t classes holds at most two float64 t×t arrays, so by default
t = 1448 and a tile takes 32 MiB whatever K is. Every function that forms one takes ``tile_size=`` to override t."""


def _cosine_tile(u: np.ndarray, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
    """The cosines of rows i0:i1 with rows j0:j1 of the unit rows ``u``; on a diagonal tile, -inf on the diagonal."""
    if i0 != j0:
        return u[i0:i1] @ u[j0:j1].T
    cos = u[i0:i1] @ u[i0:i1].T  # A @ A.T: exactly symmetric
    np.fill_diagonal(cos, -np.inf)  # i = j is no pair
    return cos


def pairwise_tile_size(tile_size: int | None = None) -> int:
    """Classes per side of a tile of a K×K computation: ``tile_size`` if given (an integer ≥ 1), else the largest
    t with two float64 t×t arrays within :data:`PAIRWISE_BUDGET_BYTES` (1448 for 32 MiB).

    Tiling never changes a result beyond rounding: every pair is computed once, as without tiles.
    """
    if tile_size is None:
        return max(1, math.isqrt(PAIRWISE_BUDGET_BYTES // (2 * 8)))
    if isinstance(tile_size, bool) or not isinstance(tile_size, int | np.integer) or tile_size < 1:
        raise ValueError(f"tile_size must be a positive integer (classes per side of a tile) or None, got "
                         f"{tile_size!r}")
    return int(tile_size)


def _upper_tiles(k: int, t: int):
    """Tiles ``(i0, i1, j0, j1)`` of the upper triangle (with the diagonal blocks) of a k×k matrix, t×t each."""
    for i0 in range(0, k, t):
        for j0 in range(i0, k, t):
            yield i0, min(i0 + t, k), j0, min(j0 + t, k)


# ----------------------------------------------------------------------------------------------------------
# compression / discrimination (theory §2)
# ----------------------------------------------------------------------------------------------------------


def compression(stats_or_features: Any, labels: Any = None, *, between_centre: str = "sample_mean") -> float:
    """Within-class compression $C=\\operatorname{Tr}\\Sigma_W/\\operatorname{Tr}\\Sigma_B$ (inverse-free).

    ``between_centre``: centre of $\\Sigma_B$, ``"sample_mean"`` (default) or ``"class_means"``
    (see :meth:`ClassStats.centre`).
    """
    between_centre = check_centre(between_centre)
    st = _stats(stats_or_features, labels)
    tr_b = _check_between(st, between_centre)
    return st.trace_sigma_w() / tr_b


def discrimination(stats_or_features: Any, labels: Any = None, *, tile_size: int | None = None) -> float:
    """Between-class discrimination $D=1-\\max_{k<k'}\\cos(\\mu_k,\\mu_{k'})$.

    Uses the **uncentred** class means and the **signed** cosine (as the authors' code), so $D\\in[0,2]$.
    A zero class mean makes the cosine undefined and raises :class:`ValueError`. The K×K cosines are formed in
    tiles of at most ``tile_size`` × ``tile_size`` classes (see :func:`pairwise_tile_size`), so memory stays
    bounded for any K.
    """
    st = _stats(stats_or_features, labels)
    m = st._means
    big = np.abs(m).max()
    if big > 0.0:
        m = m / big  # the cosine is scale-free; rescaling keeps the squared norms in range
    norms = np.sqrt(np.einsum("ij,ij->i", m, m))
    if np.any(norms == 0.0):
        bad = st._classes[norms == 0.0].tolist()
        raise ValueError(f"class mean is zero for class(es) {bad}: cosine undefined")
    u = m / norms[:, None]
    k, d = u.shape
    tiles = list(_upper_tiles(k, pairwise_tile_size(tile_size)))
    # A float32 sweep finds the tiles that can hold the largest cosine: for unit vectors a float32 dot product is
    # within (d+2)·2⁻²⁴ of the float64 one (conversion and summation), taken twice here as a margin. Only those tiles
    # are computed in float64, so the result is the float64 maximum over all pairs.
    u32 = u.astype(np.float32)
    peaks = np.array([_cosine_tile(u32, *tile).max() for tile in tiles], dtype=np.float64)
    bound = 2.0 * (d + 2) * 2.0**-24
    best = max(float(_cosine_tile(u, *tiles[n]).max()) for n in np.flatnonzero(peaks >= peaks.max() - 2 * bound))
    return float(1.0 - min(max(best, -1.0), 1.0))


# ----------------------------------------------------------------------------------------------------------
# neural-collapse metrics NC1–NC4, CDNV
# ----------------------------------------------------------------------------------------------------------


def _between_directions(st: ClassStats, rcond: float, between_centre: str) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-directions (rows, r×d) and eigenvalues of $\\Sigma_B$ kept by the pseudo-inverse cut-off ``rcond``.

    $\\Sigma_B=\\frac1K\\tilde M^\\top\\tilde M$ is eigendecomposed through the thin SVD of the K×d matrix of
    centred means (same eigenvectors, eigenvalues $s_i^2/K$).
    """
    if not (isinstance(rcond, int | float) and math.isfinite(rcond) and 0.0 <= rcond < 1.0):
        raise ValueError(f"rcond must be a number in [0, 1), got {rcond!r}")
    _check_between(st, between_centre)
    mc = st.centred_means(between_centre)
    k, d = mc.shape
    if k > d:  # more classes than dimensions: the d×d eigenproblem is cheaper than the K×d SVD ...
        lam, vecs = np.linalg.eigh(mc.T @ mc / k)
        lam, vt = lam[::-1], vecs[:, ::-1].T
        # ... and as accurate as long as every kept eigenvalue is far above its absolute error d·eps·λ_max
        if lam[-1] > 1e6 * d * _EPS * lam[0]:
            keep = lam > rcond * lam[0]
            return vt[keep], lam[keep]
    _, sv, vt = np.linalg.svd(mc, full_matrices=False)
    lam = sv**2 / k
    keep = lam > rcond * lam.max()
    return vt[keep], lam[keep]


def _nc1_value(within_along: np.ndarray, lam: np.ndarray, k: int, return_rank: bool) -> float | tuple[float, int]:
    value = float(np.sum(within_along / lam) / k)
    return (value, int(lam.size)) if return_rank else value


def nc1(
    stats_or_features: Any,
    labels: Any = None,
    rcond: float = 1e-10,
    return_rank: bool = False,
    *,
    between_centre: str = "sample_mean",
) -> float | tuple[float, int]:
    """NC1 $=\\frac1K\\operatorname{Tr}(\\Sigma_W\\Sigma_B^+)$ with a Moore–Penrose pseudo-inverse.

    Eigenvalues of $\\Sigma_B$ below ``rcond`` times the largest are dropped; ``return_rank=True`` also returns
    the number of eigen-directions kept (at most K−1). Only $v^\\top\\Sigma_W v$ along those directions is
    needed: from a :class:`ClassStats` it is read off the tracked d×d scatter; from raw features it is computed
    directly (:func:`nc1_two_pass` on one batch), O(N·d·K) time and no d×d matrix. ``between_centre`` is the
    centre of $\\Sigma_B$, ``"sample_mean"`` (default) or ``"class_means"`` (see :meth:`ClassStats.centre`).
    """
    between_centre = check_centre(between_centre)
    if not isinstance(stats_or_features, ClassStats):
        pair = _raw_pair(stats_or_features, labels)
        return nc1_two_pass([pair], rcond=rcond, return_rank=return_rank, between_centre=between_centre)
    st = _stats(stats_or_features, labels, covariance=True)
    v, lam = _between_directions(st, rcond, between_centre)
    proj = np.einsum("ij,ij->i", v @ st.sigma_w(), v)
    return _nc1_value(proj, lam, st.num_classes, return_rank)


def nc1_two_pass(
    batches: Any, rcond: float = 1e-10, return_rank: bool = False, *, between_centre: str = "sample_mean"
) -> float | tuple[float, int]:
    """NC1 from batches of ``(features, labels)`` in two passes, without the d×d within-class scatter.

    Pass 1 streams the class means (a :class:`ClassStats` without the scatter); pass 2 centres every sample
    by its class mean and projects it on the $r\\le K-1$ eigen-directions $v_j$ of $\\Sigma_B$ kept by
    the pseudo-inverse, accumulating $v_j^\\top\\Sigma_W v_j$. Time O(N·d·K), memory O(K·d + batch): the
    choice when the features can be read twice (arrays, a dataset); a single stream needs
    ``nc1(ClassStats(track_covariance=True)...)`` instead.

    Args:
        batches: a re-iterable of ``(features, labels)`` pairs (a list, a tuple, any iterable whose ``iter()``
            returns a fresh iterator) or a zero-argument callable returning a fresh iterable. Both passes must
            see the same data.
        rcond, return_rank, between_centre: as in :func:`nc1`.
    """
    between_centre = check_centre(between_centre)
    first = _fresh_batches(batches)
    st = ClassStats(track_covariance=False)
    for pair in first:
        st.update(*_as_pair(pair))
    st._require()
    check_classes(st._classes)
    v, lam = _between_directions(st, rcond, between_centre)
    means = st._means
    within_along = np.zeros(lam.size)
    seen = 0
    for pair in _fresh_batches(batches):
        x, y = _as_pair(pair)
        arr = to_numpy(x)
        y = as_labels(y)
        if arr.ndim != 2 or arr.shape[1] != st.dim or arr.shape[0] != y.shape[0]:
            raise ValueError(f"batches changed between the two passes: got features of shape {arr.shape}")
        idx = np.searchsorted(st._classes, y)
        idx = np.minimum(idx, st._classes.size - 1)
        if not np.array_equal(st._classes[idx], y):
            raise ValueError("batches changed between the two passes: unseen class labels in the second pass")
        centred = means[idx]
        np.subtract(arr, centred, out=centred)
        along = centred @ v.T
        within_along += np.einsum("ij,ij->j", along, along)
        seen += arr.shape[0]
    if seen != st.n_samples:
        raise ValueError(f"batches changed between the two passes: {st.n_samples} samples, then {seen}")
    if not np.isfinite(within_along).all():
        raise ValueError("features contain NaN or inf values (second pass)")
    return _nc1_value(within_along / seen, lam, st.num_classes, return_rank)


def _fresh_batches(batches: Any) -> Any:
    """A fresh iterator over ``batches`` (see :func:`nc1_two_pass`), refusing one-shot iterators."""
    source = batches() if callable(batches) else batches
    try:
        it = iter(source)
    except TypeError:
        raise ValueError(
            f"batches must be an iterable of (features, labels) pairs, got {type(source).__name__}"
        ) from None
    if it is source and not callable(batches):
        raise ValueError(
            "batches is a one-shot iterator (e.g. a generator) but two passes are needed: pass a list, or a "
            "function that returns a fresh iterator"
        )
    return it


def _as_pair(pair: Any) -> tuple[Any, Any]:
    if not (isinstance(pair, tuple | list) and len(pair) == 2):
        raise ValueError(f"each batch must be a (features, labels) pair, got {type(pair).__name__}")
    return pair[0], pair[1]


class NC2(NamedTuple):
    """NC2 diagnostics: distance of the centred-mean Gram to a simplex ETF, and the spread of their norms."""

    etf_error: float
    equinorm: float


def nc2(stats_or_features: Any, labels: Any = None, *, between_centre: str = "sample_mean") -> NC2:
    """NC2 as ``NC2(etf_error, equinorm)``.

    ``etf_error`` = ||G/||G||_F - (I_K - 11ᵀ/K)/sqrt(K-1)||_F with G the Gram matrix of the centred class
    means; ``equinorm`` = std_k ||μ_k - μ|| / mean_k ||μ_k - μ||. The centre μ is the sample mean by default
    (Papyan et al.'s global mean); ``between_centre="class_means"`` uses the mean of the class means.

    The K×K matrix G is never formed: with $P=I-\\frac1K11^\\top$, $\\tilde M=A+1b^\\top$ ($A=P\\tilde M$, $b$ the
    mean of the rows of $\\tilde M$), $g=\\lVert G\\rVert_F=\\lVert\\tilde M^\\top\\tilde M\\rVert_F$ and
    $c=1/\\sqrt{K-1}$, the error splits over the orthogonal blocks of $P$ and $11^\\top/K$ into sums of squares
    (no cancellation):

    $$\\text{etf}^2=\\sum_{i\\le\\min(d,K-1)}\\Big(\\frac{\\lambda_i}g-c\\Big)^2+\\max(0,K-1-d)\\,c^2
    +\\frac{2K\\lVert Ab\\rVert^2+K^2\\lVert b\\rVert^4}{g^2},$$

    $\\lambda_1\\ge\\lambda_2\\ge\\dots$ the eigenvalues of $A^\\top A$ (d×d) or, when K < d, of $AA^\\top$ (K×K): the
    same nonzero ones, and $A$ has rank at most K−1. Time O(K·d·min(K, d)), memory O(K·d + min(K, d)²), for any K.
    """
    between_centre = check_centre(between_centre)
    st = _stats(stats_or_features, labels)
    _check_between(st, between_centre)
    mc = st.centred_means(between_centre)
    k, d = mc.shape
    small = (lambda z: z.T @ z) if d <= k else (lambda z: z @ z.T)  # the smaller Gram: same nonzero eigenvalues
    g = float(np.linalg.norm(small(mc)))  # ||M Mᵀ||_F = ||Mᵀ M||_F
    b = mc.mean(axis=0)
    a = mc - b  # P M̃: rows summing to zero, rank ≤ K-1
    lam = np.linalg.eigvalsh(small(a))[::-1][: min(d, k - 1)]
    c = 1.0 / math.sqrt(k - 1)
    ab = a @ b
    parts = [float(np.sum((lam / g - c) ** 2)), max(0, k - 1 - d) * c * c,
             (2.0 * k * float(ab @ ab) + (k * float(b @ b)) ** 2) / (g * g)]
    etf = math.sqrt(math.fsum(parts))
    norms = np.sqrt(np.einsum("ij,ij->i", mc, mc))
    return NC2(etf_error=etf, equinorm=float(norms.std() / norms.mean()))


def equinorm(stats_or_features: Any, labels: Any = None, *, between_centre: str = "sample_mean") -> float:
    """Coefficient of variation of the centred class-mean norms (the equinorm part of NC2)."""
    return nc2(stats_or_features, labels, between_centre=between_centre).equinorm


def nc3(stats: Any, classifier_weight: Any, *, between_centre: str = "sample_mean") -> float:
    """NC3 self-duality $\\lVert W^\\top/\\lVert W\\rVert_F-\\tilde M/\\lVert\\tilde M\\rVert_F\\rVert_F$.

    ``stats`` is a :class:`ClassStats` or a ``(features, labels)`` tuple; ``classifier_weight`` is K×d with
    rows ordered like the sorted classes (for non-contiguous labels select rows, e.g. ``W[stats.classes]``).
    $\\tilde M$ holds the class means centred on ``between_centre`` (default the sample mean, as in :func:`nc2`).
    """
    between_centre = check_centre(between_centre)
    st = _stats(stats)
    _check_between(st, between_centre)
    w = to_numpy(classifier_weight, np.float64)
    k, d = st.num_classes, st.dim
    if w.shape != (k, d):
        raise ValueError(f"classifier_weight must have shape (K, d) = ({k}, {d}), got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("classifier_weight contains NaN or inf values")
    wn = np.linalg.norm(w)
    if wn == 0.0:
        raise ValueError("classifier_weight is zero")
    mc = st.centred_means(between_centre)
    return float(np.linalg.norm(w / wn - mc / np.linalg.norm(mc)))


def predicted_classes(logits: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The class each row of ``logits`` predicts (arg-max).

    With K logit columns, column j means the j-th sorted class; with more columns (e.g. 10 outputs but only some
    classes present), column j means label value j.
    """
    if logits.shape[1] == classes.size:
        return classes[np.argmax(logits, axis=1)]
    if classes.min() >= 0 and logits.shape[1] > classes.max():
        return np.argmax(logits, axis=1)
    raise ValueError(f"logits have {logits.shape[1]} columns, which matches neither the {classes.size} classes nor "
                     f"the largest label {classes.max()}")


def nearest_class_mean(stats: ClassStats, features: Any, *, tile_size: int | None = None) -> np.ndarray:
    """The class whose mean (in ``stats``) is nearest to each row of ``features`` (Euclidean; the first on ties).

    The N×K squared distances are formed in tiles of at most ``tile_size`` rows × ``tile_size`` classes (see
    :func:`pairwise_tile_size`), with a running minimum over the class tiles.
    """
    x = as_features(features)
    t = pairwise_tile_size(tile_size)
    gm = stats.global_mean  # any centre gives the same argmin (|x-μ_k|² - |x-gm|²)
    mc = stats._means - gm
    k = mc.shape[0]
    # |μ_k|² - 2 x·μ_k as one GEMM of the rows [x - gm, 1] and [-2μ_k, |μ_k|²]
    right = np.concatenate([-2.0 * mc, np.einsum("ij,ij->i", mc, mc)[:, None]], axis=1)
    out = np.empty(x.shape[0], dtype=np.int64)
    for r0 in range(0, x.shape[0], t):
        left = np.concatenate([x[r0 : r0 + t] - gm, np.ones((min(t, x.shape[0] - r0), 1))], axis=1)
        best = np.full(left.shape[0], np.inf)
        arg = np.zeros(left.shape[0], dtype=np.int64)
        for c0 in range(0, k, t):
            d2 = left @ right[c0 : c0 + t].T
            j = np.argmin(d2, axis=1)
            val = d2[np.arange(d2.shape[0]), j]
            better = val < best  # strict: an earlier class wins a tie, as np.argmin does
            best[better], arg[better] = val[better], c0 + j[better]
        out[r0 : r0 + t] = arg
    return stats._classes[out]


def nc4(features: Any, labels: Any, logits: Any, *, tile_size: int | None = None) -> float:
    """NC4: fraction of samples whose arg-max logit differs from the nearest-class-centre prediction.

    Logit columns are read as in :func:`predicted_classes`; ``tile_size`` as in :func:`nearest_class_mean`.
    """
    x = as_features(features)
    y = as_labels(labels, x.shape[0])
    z = as_features(logits, name="logits")
    if z.shape[0] != x.shape[0]:
        raise ValueError(f"length mismatch: {x.shape[0]} features but {z.shape[0]} logits")
    st = _stats(x, y)
    return float(np.mean(predicted_classes(z, st._classes) != nearest_class_mean(st, x, tile_size=tile_size)))


def separation_fuzziness(features: Any, labels: Any = None, rcond: float = 1e-10) -> float:
    r"""He & Su's fuzziness $\operatorname{Tr}(SS_w\,SS_b^+)$ with between-class scatter weighted by $n_k/N$.

    $SS_b=\sum_k\frac{n_k}{N}(\mu_k-\bar z)(\mu_k-\bar z)^\top$, $SS_w=\Sigma_W$, $\bar z$ the sample mean (He & Su
    2023). For balanced classes it equals $K\cdot$NC1. Accepts a
    :class:`~pnc.metrics.ClassStats` (with covariance) or ``(features, labels)``. Eigenvalues of $SS_b$ below ``rcond``
    times the largest are dropped.
    """
    st = _stats(features, labels, covariance=True)
    _check_between(st)
    counts = st.counts.astype(np.float64)
    weights = counts / counts.sum()
    mean = weights @ st.means
    mc = (st.means - mean) * np.sqrt(weights)[:, None]
    _, s, vt = np.linalg.svd(mc, full_matrices=False)
    lam = s**2
    keep = lam > rcond * lam.max()
    v = vt[keep]
    proj = np.einsum("ij,ij->i", v @ st.sigma_w(), v)
    return float(np.sum(proj / lam[keep]))


def cdnv(stats_or_features: Any, labels: Any = None, *, tile_size: int | None = None) -> float:
    """Class-distance normalised variance, mean over i≠j of (V_i + V_j) / (2 ||μ_i - μ_j||²).

    $V_k=\\frac1{n_k}\\sum_i\\lVert z_{k,i}-\\mu_k\\rVert^2$ (Galanti et al. 2022); squared distance. A class with a
    single sample has $V_k=0$ and counts as such. The K×K distances are formed in tiles of at most ``tile_size`` ×
    ``tile_size`` classes (see :func:`pairwise_tile_size`): memory O(K·d + tile²) for any K, the same value.
    """
    st = _stats(stats_or_features, labels)
    m = st.centred_means()  # only differences of means enter: the centre does not matter
    k, d = m.shape
    t = pairwise_tile_size(tile_size)
    sq = np.einsum("ij,ij->i", m, m)
    v = st.class_variances
    # ||μ_i-μ_j||² = sq_i + sq_j - 2 μ_i·μ_j as one GEMM of the rows [μ_i, sq_i, 1] and [-2μ_j, 1, sq_j]
    left = np.concatenate([m, sq[:, None], np.ones((k, 1))], axis=1)
    right = np.concatenate([-2.0 * m, np.ones((k, 1)), sq[:, None]], axis=1)
    # the Gram form has absolute error about 4·d·eps·(|μ_i|²+|μ_j|²): pairs it could get wrong are recomputed directly
    rel = 1e6 * d * _EPS
    total = []
    for i0, i1, j0, j1 in _upper_tiles(k, t):
        dist = left[i0:i1] @ right[j0:j1].T
        if i0 == j0:
            np.fill_diagonal(dist, np.inf)  # i = j is no pair
        if dist.min() <= rel * (sq[i0:i1].max() + sq[j0:j1].max()):  # some pair may be close: look at each
            _recompute_close(dist, m, sq, i0, j0, rel)
            if dist.min() == 0.0:
                i, j = np.argwhere(dist == 0.0)[0]
                raise ValueError(f"class means of classes {st._classes[i0 + i]} and {st._classes[j0 + j]} coincide")
        np.reciprocal(dist, out=dist)
        # the tile's sum of (V_i + V_j) / (2 d_ij) = ½ (V_I·R1 + 1·R V_J), R = 1/d: one pass over R
        rows = dist @ np.stack([np.ones(j1 - j0), v[j0:j1]], axis=1)
        part = 0.5 * (float(v[i0:i1] @ rows[:, 0]) + float(rows[:, 1].sum()))
        total.append(part if i0 == j0 else 2.0 * part)  # an off-diagonal tile stands for its mirror image too
    return math.fsum(total) / (k * (k - 1))


def _recompute_close(dist: np.ndarray, m: np.ndarray, sq: np.ndarray, i0: int, j0: int, rel: float) -> None:
    """Replace the Gram-form distances of a tile's close pairs (within ``rel`` of the squared norms) by the direct
    ``||μ_i-μ_j||²``, in chunks of bounded size."""
    close = np.argwhere(dist <= rel * (sq[i0 : i0 + dist.shape[0], None] + sq[None, j0 : j0 + dist.shape[1]]))
    step = max(1, PAIRWISE_BUDGET_BYTES // (8 * m.shape[1]))
    for c0 in range(0, close.shape[0], step):
        ii, jj = close[c0 : c0 + step, 0], close[c0 : c0 + step, 1]
        diff = m[i0 + ii] - m[j0 + jj]
        dist[ii, jj] = np.einsum("ij,ij->i", diff, diff)


# ----------------------------------------------------------------------------------------------------------
# ranks
# ----------------------------------------------------------------------------------------------------------


def singular_values(features: Any) -> np.ndarray:
    """Singular values (descending) of the **uncentred** N×d feature matrix.

    For a :class:`ClassStats` they come from the eigenvalues of the accumulated Gram $X^\\top X$,
    $\\sigma_i=\\sqrt{\\lambda_i}$. Squaring loses relative accuracy in singular values below about
    $10^{-8}\\sigma_{\\max}$, which does not affect the 95 %-of-nuclear-norm rank. Eigenvalues below
    $d\\,\\epsilon_{\\text{mach}}\\lambda_{\\max}$ are rounding noise of the Gram and count as zero (their square
    roots, about $10^{-7}\\sigma_{\\max}$, would otherwise depend on the order the batches were added in).
    """
    if isinstance(features, ClassStats):
        lam = features.gram_eigenvalues()
        noise = lam.size * np.finfo(np.float64).eps * max(float(lam[0]), 0.0) if lam.size else 0.0
        return np.sqrt(np.where(lam > noise, lam, 0.0))
    x = as_features(features)
    return np.linalg.svd(x, compute_uv=False)


def rank_from_singular_values(s: Any, threshold: float = 0.95, squared: bool = False) -> int:
    """Smallest r with sum_{i≤r} σ_i ≥ ``threshold`` · sum_i σ_i (σ² instead of σ if ``squared``)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    s = np.sort(np.asarray(s, dtype=np.float64))[::-1]
    if squared:
        s = s**2
    total = s.sum()
    if total <= 0.0:
        return 0
    csum = np.cumsum(s)
    r = int(np.searchsorted(csum, threshold * total * (1.0 - 1e-12))) + 1
    return min(r, s.size)


def numerical_rank(features: Any, threshold: float = 0.95, squared: bool = False) -> int:
    """Numerical rank of the uncentred N×d features: smallest r holding ``threshold`` of $\\sum_i\\sigma_i$.

    ``squared=False`` (the authors' choice) uses the nuclear-norm share; ``squared=True`` the energy share
    $\\sum\\sigma_i^2$. ``features`` may also be a :class:`ClassStats` (tracked covariance needed).
    """
    return rank_from_singular_values(singular_values(features), threshold, squared)


def effective_rank(features: Any) -> float:
    """Effective rank (Roy & Vetterli 2007): exp(-sum_i p_i log p_i) with p_i = σ_i / sum_j σ_j."""
    s = singular_values(features)
    total = s.sum()
    if total <= 0.0:
        raise ValueError("effective rank undefined: features are all zero")
    p = s / total
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


# ----------------------------------------------------------------------------------------------------------
# coding rates (MCR²)
# ----------------------------------------------------------------------------------------------------------


def _eps_sq(eps: float | None, eps_sq: float | None) -> float:
    if (eps is None) == (eps_sq is None):
        raise ValueError("give exactly one of eps or eps_sq")
    e2 = float(eps) ** 2 if eps is not None else float(eps_sq)
    if not np.isfinite(e2) or e2 <= 0.0:
        raise ValueError(f"eps must be positive and finite, got eps²={e2}")
    return e2


def _logdet_rate(x: np.ndarray, a: float) -> float:
    """½ logdet(I + a XᵀX) via the smaller of the d×d and N×N Gram matrices (Sylvester)."""
    n, d = x.shape
    g = x.T @ x if d <= n else x @ x.T
    lam = np.clip(np.linalg.eigvalsh(g), 0.0, None)
    return float(0.5 * np.sum(np.log1p(a * lam)))


def coding_rate(features: Any, eps: float | None = None, eps_sq: float | None = None) -> float:
    """Coding rate R = ½ logdet(I + d/(N ε²) Z Zᵀ) in **nats**, with Z = featuresᵀ (d×N).

    ``features`` is an N×d array or a :class:`ClassStats` with the scatter (then from its Gram $X^\\top X$).
    Give exactly one of ``eps`` (ε) or ``eps_sq`` (ε²). Note that the MCR² reference code's ``--eps`` and
    CRATE's coding-rate utility pass ε², i.e. correspond to ``eps_sq`` here.
    """
    e2 = _eps_sq(eps, eps_sq)
    if isinstance(features, ClassStats):
        n, d = features.n_samples, features.dim
        lam = np.clip(features.gram_eigenvalues(), 0.0, None)
        return float(0.5 * np.sum(np.log1p(d / (n * e2) * lam)))
    x = as_features(features)
    n, d = x.shape
    return _logdet_rate(x, d / (n * e2))


def class_coding_rate(
    features: Any, labels: Any, eps: float | None = None, eps_sq: float | None = None
) -> float:
    """Class-conditional rate R^c = sum_k N_k/(2N) logdet(I + d/(N_k ε²) Z_k Z_kᵀ) in nats."""
    x = as_features(features)
    y = as_labels(labels, x.shape[0])
    e2 = _eps_sq(eps, eps_sq)
    n, d = x.shape
    classes, inv = np.unique(y, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    counts = np.bincount(inv)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    xs = x[order]
    total = 0.0
    for j in range(classes.size):  # loop over classes
        xk = xs[bounds[j] : bounds[j + 1]]
        nk = xk.shape[0]
        total += (nk / n) * _logdet_rate(xk, d / (nk * e2))
    return total


def rate_reduction(
    features: Any, labels: Any, eps: float | None = None, eps_sq: float | None = None
) -> float:
    """Rate reduction $\\Delta R=R-R^c$ (nats). It grows with the scale of the features: normalise first."""
    x = as_features(features)
    y = as_labels(labels, x.shape[0])
    return coding_rate(x, eps, eps_sq) - class_coding_rate(x, y, eps, eps_sq)
