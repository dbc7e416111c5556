r"""Streaming per-class statistics: the accumulator engine behind every collapse metric.

:class:`ClassStats` keeps, per class, the count $n_k$, the mean $\mu_k$ and the centred sum of squares
$\mathrm{tr}\,M2_k$ (and, tracked, the total $d\times d$ within-class scatter $\sum_kM2_k$), all in float64. Batches
are reduced where they live (a CUDA tensor stays on its GPU) into shifted per-class sums and merged with the pairwise
formula of Chan, Golub & LeVeque (1979): for two partial results $a, b$ of the same class with $\delta=\mu_b-\mu_a$,

$$M2_{ab}=M2_a+M2_b+\frac{n_an_b}{n_a+n_b}\,\delta\delta^\top .$$

The state protocol follows torchmetrics: :meth:`ClassStats.state_dict` gives the sufficient statistics as plain
numpy arrays (what :mod:`pnc.distributed` sends between processes, what :meth:`ClassStats.copy` and pickling use),
:meth:`ClassStats.load_state_dict` restores them, :meth:`ClassStats.merge` combines two states exactly (to rounding).
:class:`LabelGroups` is the class structure of one batch of labels, shared by every layer measured on it.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import torch

from ._checks import as_labels, is_torch_tensor

__all__ = ["BETWEEN_CENTRES", "ClassStats", "LabelGroups", "check_centre"]

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


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``: the accessors hand out the statistics without copying them (K×d at K = 50,000)."""
    view = a.view()
    view.flags.writeable = False
    return view


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
        """Return an independent copy (through :meth:`state_dict`)."""
        return ClassStats(self._dim0, self.track_covariance).load_state_dict(self.state_dict())

    # -- state protocol (torchmetrics' spirit) -----------------------------------------------------------
    STATE_KEYS: tuple[str, ...] = ("dim", "track_covariance", "classes", "counts", "means", "class_sum_squares",
                                   "scatter")
    """The keys of :meth:`state_dict`: the sufficient statistics, nothing else."""

    def state_dict(self) -> dict[str, Any]:
        """The sufficient statistics as plain Python values and float64/int64 numpy arrays (copies).

        ``dim`` (None before the first update), ``track_covariance``, ``classes`` (K, sorted), ``counts`` (K),
        ``means`` (K×d), ``class_sum_squares`` (K: per class $\\sum_i\\lVert z_{k,i}-\\mu_k\\rVert^2$) and
        ``scatter`` (the d×d $\\sum_kM2_k$, or None when not tracked). Pending batches are folded in first. What
        :mod:`pnc.distributed` sends between processes, and what :meth:`copy` and pickling use.
        """
        self._flush()
        return {"dim": self._dim, "track_covariance": self.track_covariance, "classes": self._classes.copy(),
                "counts": self._counts.copy(), "means": self._means.copy(), "class_sum_squares": self._ss.copy(),
                "scatter": None if self._scatter is None else self._scatter.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> ClassStats:
        """Replace this object's statistics by ``state`` (from :meth:`state_dict`), checked and copied; returns self.

        A state that holds data must agree with this object's ``dim`` (when it was given); ``track_covariance`` is
        the state's.
        """
        if not isinstance(state, dict):
            raise ValueError(f"state must be a dict from ClassStats.state_dict(), got {type(state).__name__}")
        missing = [key for key in self.STATE_KEYS if key not in state]
        if missing:
            raise ValueError(f"state misses {missing}: pass a dict from ClassStats.state_dict()")
        dim, track = state["dim"], bool(state["track_covariance"])
        classes = np.array(state["classes"], dtype=np.int64).reshape(-1)
        k = classes.size
        counts = np.array(state["counts"], dtype=np.int64).reshape(-1)
        ss = np.array(state["class_sum_squares"], dtype=np.float64).reshape(-1)
        if k and dim is None:
            raise ValueError("state holds classes but no dim")
        width = 0 if dim is None else int(dim)
        means = np.array(state["means"], dtype=np.float64)
        if means.shape != (k, width) and k:
            raise ValueError(f"state's means must be K×d = {k}×{width}, got shape {means.shape}")
        means = means.reshape(k, width)
        scatter = None if state["scatter"] is None else np.array(state["scatter"], dtype=np.float64)
        if counts.shape != (k,) or ss.shape != (k,) or (k and np.any(counts <= 0)):
            raise ValueError(f"state's counts and class_sum_squares must hold one entry per class ({k}), counts > 0")
        if k and np.any(np.diff(classes) <= 0):
            raise ValueError("state's classes must be sorted and distinct")
        if track and k and (scatter is None or scatter.shape != (width, width)):
            raise ValueError(f"state tracks the covariance but its scatter is not {width}×{width}")
        if k:
            self._check_dim(width)
        self._pending = None
        self._dim = self._dim0 if dim is None else int(dim)
        self.track_covariance = track
        self._classes, self._counts, self._means, self._ss = classes, counts, means, ss
        self._scatter = scatter if track else None
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {"constructor_dim": self._dim0, "state": self.state_dict()}

    def __setstate__(self, saved: dict[str, Any]) -> None:
        self.__init__(saved["constructor_dim"], saved["state"]["track_covariance"])
        self.load_state_dict(saved["state"])

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
        groups = labels if isinstance(labels, LabelGroups) else LabelGroups(as_labels(labels, x.shape[0]))
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
                self._pending.add(x[start : start + rows], LabelGroups(groups.labels[start : start + rows]))
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
        """Return a new :class:`ClassStats` holding the data of both ``self`` and ``other`` (Chan's formula)."""
        if not isinstance(other, ClassStats):
            raise TypeError(f"can only merge ClassStats, got {type(other).__name__}")
        return self.copy().merge_state(other.state_dict())

    def merge_state(self, state: dict[str, Any]) -> ClassStats:
        """Add the data of a :meth:`state_dict` (of another process, say) to this object, in place; returns self."""
        part = ClassStats().load_state_dict(state)
        if part._classes.size == 0:
            if part._dim is not None:
                self._check_dim(part._dim)
            return self
        self._flush()
        self._combine(part._classes, part._counts, part._means, part._ss, part._scatter, part._dim,
                      part.track_covariance)
        return self

    __add__ = merge

    # -- accessors ---------------------------------------------------------------------------------------
    def require(self, covariance: bool = False) -> None:
        """Raise ``ValueError`` when empty, or (``covariance=True``) when the d×d scatter was not tracked."""
        if self._classes.size == 0:
            raise ValueError("ClassStats is empty: call update() with some data first")
        if covariance and self._scatter is None:
            raise ValueError(
                "this ClassStats was built with track_covariance=False; the d×d scatter is needed"
            )

    def _require(self) -> None:
        self.require()

    def _require_cov(self) -> np.ndarray:
        self.require(covariance=True)
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
        """Class means, K×d, rows ordered like :attr:`classes`: a read-only view (copy it to modify it)."""
        self._require()
        return _read_only(self._means)

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
    if is_torch_tensor(features):
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


class LabelGroups:
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
    offset, and a batch costs a few passes over its features (:meth:`LabelGroups.shifted_sums`), with no per-batch
    merge.
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

    def _admit(self, x: torch.Tensor, groups: LabelGroups) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
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

    def add(self, x: torch.Tensor, groups: LabelGroups) -> None:
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
        """On the CPU, the cache-sized scratch blocks of :meth:`LabelGroups.shifted_sums`; elsewhere None."""
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
