"""Shared input validation for features and labels.

Every public metric funnels its inputs through these helpers, so that numpy arrays and torch tensors (on any
device, in any floating dtype including float16/bfloat16) are handled identically and bad input fails early
with a :class:`ValueError` that names the problem.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["as_features", "as_labels", "check_classes", "check_int", "check_positive", "check_seed", "is_torch_tensor",
           "to_numpy"]


def is_torch_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (checked without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def to_numpy(x: Any, dtype: Any = None) -> np.ndarray:
    """Convert a numpy array, torch tensor (any device/dtype) or array-like to a numpy array.

    Torch tensors are detached and moved to the CPU (bfloat16, unknown to numpy, is converted in torch first);
    the cast to ``dtype`` then happens in numpy.
    """
    if is_torch_tensor(x):
        import torch

        t = x.detach()
        if dtype is not None and np.dtype(dtype) == np.float64 and t.dtype == torch.bfloat16:
            t = t.to(device="cpu", dtype=torch.float64)
        else:
            t = t.cpu()
            if t.dtype == torch.bfloat16:
                t = t.to(torch.float32)
        arr = t.numpy()
    else:
        arr = np.asarray(x)
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return arr


def as_features(x: Any, name: str = "features") -> np.ndarray:
    """Return ``x`` as a finite float64 array of shape ``(N, d)``.

    Raises:
        ValueError: if ``x`` is not 2-D, is empty, is not numeric, or contains NaN/inf.
    """
    if is_torch_tensor(x):
        import torch

        if x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"{name} must be real numbers, got dtype {x.dtype}")
        arr = to_numpy(x, np.float64)
    else:
        arr = np.asarray(x)
        if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number)) or np.iscomplexobj(arr):
            raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
        arr = arr.astype(np.float64, copy=False)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (N, d), got {arr.ndim}-D array with shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} are empty: shape {arr.shape}")
    # one summation pass usually suffices: a finite sum proves every entry finite; otherwise look closer
    with np.errstate(over="ignore", invalid="ignore"):
        total = arr.sum()
    if not np.isfinite(total) and not np.isfinite(arr).all():
        raise ValueError(f"{name} contain NaN or inf values")
    return arr


def as_labels(y: Any, n: int | None = None) -> np.ndarray:
    """Return ``y`` as a 1-D int64 array, checking its length against ``n`` features.

    Float labels are accepted when every value is exactly an integer; booleans are rejected.

    Raises:
        ValueError: on wrong dimension, length mismatch, or non-integer labels.
    """
    arr = to_numpy(y)
    if arr.ndim != 1:
        raise ValueError(f"labels must be a 1-D array, got {arr.ndim}-D array with shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"length mismatch: {n} features but {arr.shape[0]} labels")
    if arr.dtype == bool:
        raise ValueError("labels must be integers, got booleans")
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise ValueError("labels must be integers (got non-integer float values)")
        if arr.size and np.abs(arr).max() >= 2.0**53:
            raise ValueError("labels must be integers (float labels too large to be exact)")
        return arr.astype(np.int64)
    raise ValueError(f"labels must be integers, got dtype {arr.dtype}")


def check_classes(labels: np.ndarray, min_classes: int = 2) -> np.ndarray:
    """Return the sorted distinct labels, raising ValueError if there are fewer than ``min_classes``."""
    classes = np.unique(labels)
    if classes.size < min_classes:
        word = {2: "two", 3: "three"}.get(min_classes, str(min_classes))
        raise ValueError(f"need at least {word} classes, got {classes.size}")
    return classes


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an ``int`` (numpy integers accepted, bools refused), or ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_seed(seed: object, name: str = "seed") -> int:
    """A random seed as an ``int`` >= 0 (numpy integers accepted, bools refused), or ``ValueError`` naming ``name``."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {seed!r}")
    return int(seed)


def check_positive(name: str, value: object) -> float:
    """``value`` as a finite ``float`` > 0, or ``ValueError`` naming ``name``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {number}")
    return number
