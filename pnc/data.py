"""Seeded synthetic data sets for the deep-linear-network theory, and real data sets.

Every generator takes a ``seed`` and draws only from a local ``numpy.random.Generator``; the global
NumPy and PyTorch random states are never touched. Every generator returns ``(X, y)`` with ``X`` a
float tensor of shape ``(N, d)`` (one sample per row) and ``y`` an ``int64`` tensor of labels, the
classes in contiguous blocks ``0, 0, ..., 1, 1, ..., K-1``.

The real data sets (:func:`load_digits`, :func:`load_mnist1d` offline; MNIST, FashionMNIST and CIFAR-10
through :func:`load_dataset` and :mod:`pnc.download`) also return ``(X, y)``, ``X`` float32 by default and
``y`` ``int64``, in their own sample order.

Note the convention: the theory writes the data as a ``d x N`` matrix with samples as columns; here
(as in PyTorch) samples are rows, so the theory's ``X`` is ``X.T``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ._checks import as_labels
from ._checks import check_int as _check_int
from ._checks import check_seed as _check_seed

__all__ = [
    "DATASETS",
    "OrthogonalityStats",
    "class_counts",
    "gaussian_mixture",
    "labels_from_counts",
    "load_dataset",
    "load_digits",
    "load_mnist1d",
    "near_orthogonal_gaussian",
    "orthogonal_dataset",
    "orthogonality_stats",
    "stratified_split",
    "subsample_per_class",
]


def _check_dtype(dtype: object) -> torch.dtype:
    if dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise ValueError(f"dtype must be a torch floating dtype, got {dtype!r}")
    return dtype  # type: ignore[return-value]


def _check_nonnegative(name: str, value: object) -> float:
    number = float(value)  # type: ignore[arg-type]
    if not np.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {number}")
    return number


def _synthetic_args(n_per_class: int | Sequence[int], n_classes: int, dim: object, seed: object,
                    dtype: object) -> tuple[list[int], int, int, torch.dtype]:
    """The checked arguments every synthetic data set takes: per-class counts, dimension, seed and dtype."""
    return class_counts(n_per_class, n_classes), _check_int("dim", dim, 1), _check_seed(seed), _check_dtype(dtype)


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
    counts, dim, seed, dtype = _synthetic_args(n_per_class, n_classes, dim, seed, dtype)
    perturbation = _check_nonnegative("perturbation", perturbation)
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
    counts, dim, seed, dtype = _synthetic_args(n_per_class, n_classes, dim, seed, dtype)
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
    counts, dim, seed, dtype = _synthetic_args(n_per_class, n_classes, dim, seed, dtype)
    class_separation = _check_nonnegative("class_separation", class_separation)
    within_std = _check_nonnegative("within_std", within_std)
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
    """The authors' near-orthogonality printout (from the authors' code)."""

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


# ---------------------------------------------------------------------------------------------------------------
# Real data: offline sets (scikit-learn digits, MNIST-1D generated locally) and the downloadable paper sets.
# ---------------------------------------------------------------------------------------------------------------

_SPLITS = ("train", "test", "all")
DATASETS = ("digits", "mnist1d", "mnist", "fashion_mnist", "cifar10")
"""Names accepted by :func:`load_dataset`."""
_MNIST1D_CACHE: dict[tuple[Any, ...], dict[str, np.ndarray]] = {}


def _check_split(split: object, allowed: tuple[str, ...] = _SPLITS) -> str:
    if split not in allowed:
        raise ValueError(f"split must be one of {allowed}, got {split!r}")
    return str(split)


def stratified_split(
    y: np.ndarray | torch.Tensor, test_fraction: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split: ``(train_idx, test_idx)`` (sorted) with ``round(test_fraction * n_k)`` test
    samples from each class ``k`` (at least one sample of every class stays in the training part);
    ``test_fraction = 0`` gives an empty test part."""
    y = as_labels(y)
    seed = _check_seed(seed)
    test_fraction = float(test_fraction)
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        idx = idx[rng.permutation(idx.size)]
        n_test = min(int(round(test_fraction * idx.size)), idx.size - 1)
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(test_idx))


def subsample_per_class(
    X: torch.Tensor, y: torch.Tensor, n_per_class: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded class-balanced subset: ``n_per_class`` samples of every class (original order kept).

    Raises ``ValueError`` if a class has fewer than ``n_per_class`` samples.
    """
    n_per_class = _check_int("n_per_class", n_per_class, 1)
    rng = np.random.default_rng(_check_seed(seed))
    labels = y.cpu().numpy()
    keep = []
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        if idx.size < n_per_class:
            raise ValueError(f"class {int(k)} has only {idx.size} samples, fewer than n_per_class={n_per_class}")
        keep.append(rng.choice(idx, size=n_per_class, replace=False))
    sel = torch.from_numpy(np.sort(np.concatenate(keep)))
    return X[sel], y[sel]


_DIGITS: list[tuple[np.ndarray, np.ndarray]] = []


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``(x float64 (1797, 64), labels int64)``, read once per process.

    The CSV file shipped inside scikit-learn is parsed directly (0.5 s), which skips importing scikit-learn
    itself (several seconds); ``sklearn.datasets.load_digits`` is the fallback if the file moves.
    """
    if not _DIGITS:
        import importlib.util

        spec = importlib.util.find_spec("sklearn")
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
        if path is not None and path.exists():
            table = np.loadtxt(path, delimiter=",", dtype=np.float64)
            x, labels = table[:, :-1], table[:, -1].astype(np.int64)
        else:  # pragma: no cover - depends on scikit-learn's layout
            from sklearn.datasets import load_digits as _sk_load_digits

            bunch = _sk_load_digits()
            x, labels = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)
        if x.shape != (1797, 64):
            raise ValueError(f"unexpected shape {x.shape} of scikit-learn's digits data")
        x.setflags(write=False)
        labels.setflags(write=False)
        _DIGITS.append((x, labels))
    return _DIGITS[0]


def load_digits(
    split: str = "train",
    test_fraction: float = 0.25,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    normalize: bool = True,
    flatten: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's handwritten digits (1797 real 8x8 images, 10 classes, shipped with scikit-learn; offline).

    ``split`` is ``"train"``, ``"test"`` (a seeded stratified split, :func:`stratified_split`) or ``"all"``
    (every image, in scikit-learn's order). With ``normalize=True`` every pixel is standardised with the mean
    and standard deviation of the **training** part (pixels constant there are only centred), for every split,
    so ``"all"`` is exactly the union of ``"train"`` and ``"test"``; with ``normalize=False`` the raw
    intensities 0..16 are returned. ``X`` has shape ``(N, 64)``, or ``(N, 1, 8, 8)`` with ``flatten=False``.
    """
    split = _check_split(split)
    dtype = _check_dtype(dtype)
    x, labels = _digits_arrays()
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    if normalize:
        mean = x[train_idx].mean(axis=0)
        std = x[train_idx].std(axis=0)
        x = (x - mean) / np.where(std > 1e-12, std, 1.0)
    sel = {"train": train_idx, "test": test_idx, "all": np.arange(labels.size)}[split]
    X = torch.from_numpy(x[sel]).to(dtype)
    if not flatten:
        X = X.reshape(-1, 1, 8, 8)
    return X, torch.from_numpy(labels[sel])


def _mnist1d_arrays(seed: int, num_samples: int, cache: bool, root: str | Path | None) -> dict[str, np.ndarray]:
    key = (seed, num_samples)
    if key in _MNIST1D_CACHE:
        return _MNIST1D_CACHE[key]
    from importlib.metadata import PackageNotFoundError, version

    try:
        mnist1d_version = version("mnist1d")
    except PackageNotFoundError as exc:  # pragma: no cover - mnist1d is a dependency of the book
        raise ImportError("load_mnist1d needs the 'mnist1d' package (pip install mnist1d)") from exc
    path = None
    if cache:
        from pnc.download import data_dir

        path = data_dir(root) / "mnist1d" / f"mnist1d-v{mnist1d_version}-seed{seed}-n{num_samples}.npz"
        if path.exists():
            from pnc.cache import load_npz

            try:
                arrays = load_npz(path)
                if {"x", "y", "x_test", "y_test"} <= set(arrays):
                    _MNIST1D_CACHE[key] = arrays
                    return arrays
            except (OSError, ValueError):
                pass  # corrupt file: regenerate below and overwrite it
    arrays = _generate_mnist1d(seed, num_samples)
    if path is not None:
        from pnc.cache import atomic_write_npz

        try:
            atomic_write_npz(path, arrays)
        except OSError:
            pass  # a read-only cache folder only costs the regeneration next time
    _MNIST1D_CACHE[key] = arrays
    return arrays


def _generate_mnist1d(seed: int, num_samples: int) -> dict[str, np.ndarray]:
    import random

    # The generator only (never mnist1d's get_dataset(), which downloads a pickle). It reseeds the global
    # `random` and `numpy.random` states; restore them so loading data has no side effects.
    from mnist1d.data import get_dataset_args, make_dataset

    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002 (restoring mnist1d's side effect)
    try:
        args = get_dataset_args()
        args.seed = seed
        args.num_samples = num_samples
        d = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
    return {
        "x": np.asarray(d["x"], dtype=np.float64),
        "y": np.asarray(d["y"], dtype=np.int64),
        "x_test": np.asarray(d["x_test"], dtype=np.float64),
        "y_test": np.asarray(d["y_test"], dtype=np.int64),
    }


def load_mnist1d(
    split: str = "train",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    num_samples: int = 5000,
    cache: bool = True,
    root: str | Path | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST-1D (Greydanus), generated locally with ``mnist1d``'s generator: 40-d signals, 10 classes.

    ``seed`` seeds the generator (``mnist1d``'s own frozen data set used seed 42); ``num_samples`` (default
    5000) are split 80/20 into ``"train"`` (4000) and ``"test"`` (1000); ``"all"`` is both. The generator
    already centres the data and scales them to unit standard deviation. Generating takes a few seconds, so
    the arrays are kept in memory and, with ``cache=True``, in an ``.npz`` under :func:`pnc.download.data_dir`
    (``root``) keyed by the ``mnist1d`` version, seed and size; a damaged file is regenerated.
    """
    split = _check_split(split)
    seed = _check_seed(seed)
    dtype = _check_dtype(dtype)
    num_samples = _check_int("num_samples", num_samples, 50)
    a = _mnist1d_arrays(seed, num_samples, cache, root)
    if split == "train":
        x, labels = a["x"], a["y"]
    elif split == "test":
        x, labels = a["x_test"], a["y_test"]
    else:
        x, labels = np.concatenate([a["x"], a["x_test"]]), np.concatenate([a["y"], a["y_test"]])
    return torch.from_numpy(np.array(x)).to(dtype), torch.from_numpy(np.array(labels, dtype=np.int64))


def load_dataset(
    name: str,
    split: str = "train",
    root: str | Path | None = None,
    download: bool = True,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    normalize: bool = True,
    flatten: bool = True,
    n_per_class: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a real data set by name: ``"digits"``, ``"mnist1d"`` (offline) or ``"mnist"``, ``"fashion_mnist"``,
    ``"cifar10"`` (downloaded once into ``root``, see :mod:`pnc.download`).

    ``split`` is ``"train"`` or ``"test"`` (``"all"`` too for the offline sets). ``normalize=True`` standardises
    the inputs (digits: per pixel with training statistics; MNIST/FashionMNIST/CIFAR-10: intensities scaled to
    [0, 1] then per channel with the usual published means and standard deviations, the authors' for CIFAR-10;
    MNIST-1D comes standardised). ``flatten=True`` returns ``X`` as ``(N, d)``, else images as ``(N, C, H, W)``.
    ``n_per_class`` keeps a seeded class-balanced subset (:func:`subsample_per_class`), e.g. 500 images per class
    for a CPU run. ``seed`` also seeds the digits split and the MNIST-1D generator. Labels are ``int64``.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {DATASETS}")
    if name == "digits":
        X, y = load_digits(split, seed=seed, dtype=dtype, normalize=normalize, flatten=flatten)
    elif name == "mnist1d":
        X, y = load_mnist1d(split, seed=seed, dtype=dtype, root=root)
    else:
        from pnc import download as _dl

        _check_split(split, ("train", "test"))
        X, y = _dl.load(name, split, root=root, download=download, dtype=dtype, normalize=normalize, flatten=flatten)
    if n_per_class is not None:
        X, y = subsample_per_class(X, y, n_per_class, seed=seed)
    return X, y
