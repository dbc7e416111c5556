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

All statistics are accumulated in float64 by :class:`~pnc.stats.ClassStats` (in :mod:`pnc.stats`, re-exported
here and as ``pnc.ClassStats``), which streams over batches and merges
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
or a ``(features, labels)`` tuple; features may be numpy arrays or torch tensors on any device and dtype. NC4 judges
every sample, so with a :class:`ClassStats` it also takes the samples' ``features=`` and ``logits=`` (:func:`nc4`).
Degenerate inputs raise :class:`ValueError`; no function returns NaN.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ._checks import as_features, as_labels, check_classes, to_numpy
from .stats import BETWEEN_CENTRES, ClassStats, check_centre

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
            st.require(covariance=True)
    else:
        st = ClassStats(track_covariance=covariance)
        st.update(*_raw_pair(obj, labels))
    st.require()
    check_classes(st.classes)
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
    scale = float(np.max(np.einsum("ij,ij->i", st.means, st.means)))
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
    m = st.means
    big = np.abs(m).max()
    if big > 0.0:
        m = m / big  # the cosine is scale-free; rescaling keeps the squared norms in range
    norms = np.sqrt(np.einsum("ij,ij->i", m, m))
    if np.any(norms == 0.0):
        bad = st.classes[norms == 0.0].tolist()
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
    st.require()
    check_classes(st.classes)
    v, lam = _between_directions(st, rcond, between_centre)
    means, classes = st.means, st.classes
    within_along = np.zeros(lam.size)
    seen = 0
    for pair in _fresh_batches(batches):
        x, y = _as_pair(pair)
        arr = to_numpy(x)
        y = as_labels(y)
        if arr.ndim != 2 or arr.shape[1] != st.dim or arr.shape[0] != y.shape[0]:
            raise ValueError(f"batches changed between the two passes: got features of shape {arr.shape}")
        idx = np.searchsorted(classes, y)
        idx = np.minimum(idx, classes.size - 1)
        if not np.array_equal(classes[idx], y):
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
    mc = stats.means - gm
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
    return stats.classes[out]


def nc4(
    stats_or_features: Any,
    labels: Any = None,
    logits: Any = None,
    *,
    features: Any = None,
    tile_size: int | None = None,
) -> float:
    """NC4: fraction of samples whose arg-max logit differs from the nearest-class-centre prediction.

    NC4 compares every sample's prediction with the class whose mean is nearest to its features, so besides the class
    means it needs per-sample features and logits. The first argument takes the forms of the other metrics:

    - ``nc4(features, labels, logits)`` or ``nc4((features, labels), logits=logits)``: the class means come from
      these samples;
    - ``nc4(stats, logits=logits, features=features)``: the class means come from a :class:`ClassStats` (e.g.
      accumulated over the whole data set) and ``features``/``logits`` are the N samples to judge (any N, no labels
      needed). A :class:`ClassStats` alone raises :class:`ValueError`: it holds no per-sample data.

    Logit columns are read as in :func:`predicted_classes`; ``tile_size`` as in :func:`nearest_class_mean`.
    """
    if isinstance(stats_or_features, ClassStats):
        if labels is not None:
            raise ValueError("labels must not be given together with a ClassStats (its class means are used)")
        if features is None or logits is None:
            raise ValueError("nc4 compares each sample's arg-max logit with its nearest class mean, so it needs "
                             "per-sample data that a ClassStats does not hold: pass features= and logits= of the "
                             "samples, nc4(stats, logits=logits, features=features), or nc4(features, labels, "
                             "logits); pnc.measure(model, data, metrics=('nc4',)) reads them in a second pass")
        st = _stats(stats_or_features)
        x = as_features(features)
    else:
        if features is not None:
            raise ValueError("features= is for a ClassStats first argument; with raw features call "
                             "nc4(features, labels, logits)")
        if logits is None:
            raise ValueError("nc4 needs the model's logits: nc4(features, labels, logits)")
        raw, y = _raw_pair(stats_or_features, labels)
        x = as_features(raw)
        st = _stats(x, as_labels(y, x.shape[0]))
    z = as_features(logits, name="logits")
    if z.shape[0] != x.shape[0]:
        raise ValueError(f"length mismatch: {x.shape[0]} features but {z.shape[0]} logits")
    if x.shape[1] != st.dim:
        raise ValueError(f"features have dimension {x.shape[1]} but the class means {st.dim}")
    return float(np.mean(predicted_classes(z, st.classes) != nearest_class_mean(st, x, tile_size=tile_size)))


def separation_fuzziness(features: Any, labels: Any = None, rcond: float = 1e-10) -> float:
    r"""He & Su's fuzziness $\operatorname{Tr}(SS_w\,SS_b^+)$ with between-class scatter weighted by $n_k/N$.

    $SS_b=\sum_k\frac{n_k}{N}(\mu_k-\bar z)(\mu_k-\bar z)^\top$, $SS_w=\Sigma_W$, $\bar z$ the sample mean (He & Su
    2023). For balanced classes it equals $K\cdot$NC1. Accepts a
    :class:`~pnc.stats.ClassStats` (with covariance) or ``(features, labels)``. Eigenvalues of $SS_b$ below ``rcond``
    times the largest are dropped.
    """
    st = _stats(features, labels, covariance=True)
    _check_between(st)
    counts = st.counts.astype(np.float64)
    weights = counts / counts.sum()
    means = st.means
    mc = (means - weights @ means) * np.sqrt(weights)[:, None]
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
                raise ValueError(f"class means of classes {st.classes[i0 + i]} and {st.classes[j0 + j]} coincide")
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
