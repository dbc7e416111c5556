"""Collect per-layer class statistics of any torch model in a single streaming pass.

:func:`collect_features` registers forward hooks on chosen modules, runs the model over the data once in eval
mode without gradients, flattens every hooked output to ``(batch, -1)`` and feeds one
:class:`~pnc.metrics.ClassStats` per layer. Nothing but the statistics is stored unless ``keep=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ._checks import as_labels, to_numpy
from .metrics import ClassStats

__all__ = ["LayerFeatures", "collect_features", "resolve_layers", "default_layers"]

_ACTIVATION_MODULE = "torch.nn.modules.activation"


class LayerFeatures(dict):
    """Ordered mapping ``layer name -> ClassStats`` (``"input"`` first when included).

    Attributes:
        features: ``name -> (N, d) float array`` when collected with ``keep=True``, else empty.
        labels: all labels (N,) as int64 when ``keep=True``, else None.
        outputs: the model outputs (N, C) when ``keep=True``, else None (useful for :func:`pnc.metrics.nc4`).
        modules: ``name -> module`` for the hooked layers.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.features: dict[str, np.ndarray] = {}
        self.labels: np.ndarray | None = None
        self.outputs: np.ndarray | None = None
        self.modules: dict[str, nn.Module] = {}

    @property
    def names(self) -> list[str]:
        """Layer names in order."""
        return list(self.keys())


def default_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers measured when none are given.

    1. ``model.feature_layers()`` if the model defines it (pnc's own models do);
    2. the top-level children of an :class:`torch.nn.Sequential`;
    3. otherwise every leaf module that has parameters or is an activation.
    """
    fl = getattr(model, "feature_layers", None)
    if callable(fl):
        return [(str(n), m) for n, m in fl()]
    if isinstance(model, nn.Sequential):
        return [(n, m) for n, m in model.named_children()]
    out = []
    for name, mod in model.named_modules():
        if name == "" or any(True for _ in mod.children()):
            continue
        has_params = any(True for _ in mod.parameters(recurse=False))
        if has_params or type(mod).__module__ == _ACTIVATION_MODULE:
            out.append((name, mod))
    return out


def resolve_layers(
    model: nn.Module, layers: Sequence[str | nn.Module | tuple[str, nn.Module]] | str | None = None
) -> list[tuple[str, nn.Module]]:
    """Turn a layer selection (names from ``named_modules``, modules, or (name, module) pairs) into pairs.

    Raises:
        ValueError: for an unknown layer name or a module that is not part of ``model``.
    """
    if layers is None:
        pairs = default_layers(model)
        if not pairs:
            raise ValueError("could not find any layers to measure in the model; pass layers=[...]")
        return pairs
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    named = dict(model.named_modules())
    by_id = {}
    for n, m in model.named_modules():
        by_id.setdefault(id(m), n)
    out: list[tuple[str, nn.Module]] = []
    for item in layers:
        if isinstance(item, tuple) and len(item) == 2:
            out.append((str(item[0]), item[1]))
        elif isinstance(item, str):
            if item not in named or item == "":
                avail = ", ".join(repr(n) for n in named if n)
                raise ValueError(f"unknown layer name {item!r}; available: {avail}")
            out.append((item, named[item]))
        elif isinstance(item, nn.Module):
            if id(item) not in by_id:
                raise ValueError(f"module {type(item).__name__} is not part of the model")
            out.append((by_id[id(item)] or type(item).__name__, item))
        else:
            raise ValueError(f"layers must be names or modules, got {type(item).__name__}")
    names = [n for n, _ in out]
    if len(set(names)) != len(names) or "input" in names:
        raise ValueError(f"layer names must be unique and not 'input', got {names}")
    return out


def _batches(data: Any, batch_size: int) -> Iterator[tuple[Any, Any]]:
    """Yield (x, y) batches from an (X, y) pair, a Dataset, a DataLoader or any iterable of pairs."""
    from torch.utils.data import DataLoader, Dataset, IterableDataset

    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
        isinstance(a, (torch.Tensor, np.ndarray)) for a in data
    ):
        x, y = data
        n = len(x)
        if len(y) != n:
            raise ValueError(f"length mismatch: {n} features but {len(y)} labels")
        for i in range(0, n, batch_size):
            yield x[i : i + batch_size], y[i : i + batch_size]
        return
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        data = DataLoader(data, batch_size=batch_size, shuffle=False)
    if not isinstance(data, Iterable):
        raise ValueError(
            f"data must be (X, y), a DataLoader or an iterable of (x, y) batches, got {type(data)}"
        )
    for batch in data:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("each batch must be an (x, y) pair")
        yield batch[0], batch[1]


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype | None]:
    for p in model.parameters():
        return p.device, p.dtype
    return torch.device("cpu"), None


def collect_features(
    model: nn.Module,
    data: Any,
    layers: Sequence[str | nn.Module | tuple[str, nn.Module]] | str | None = None,
    batch_size: int = 512,
    device: str | torch.device | None = None,
    include_input: bool = True,
    keep: bool = False,
    track_covariance: bool = True,
    max_cov_dim: int | None = 8192,
) -> LayerFeatures:
    """Run ``model`` once over ``data`` and return ``{layer name: ClassStats}``.

    Args:
        model: any :class:`torch.nn.Module`; put in eval mode for the pass and restored afterwards.
        data: ``(X, y)`` arrays/tensors, a Dataset, a DataLoader, or an iterable of ``(x, y)`` batches.
        layers: ``None`` (see :func:`default_layers`), or names from ``model.named_modules()`` / modules.
        batch_size: used when ``data`` is ``(X, y)`` or a Dataset.
        device: where to run; default the device of the model's first parameter.
        include_input: also measure the flattened input as layer ``"input"``.
        keep: also store every layer's features (N×d, float32 numpy), the labels and the model outputs.
        track_covariance: keep the d×d within-class scatter (needed for NC1 and the numerical rank).
        max_cov_dim: skip the d×d scatter for layers wider than this (memory); ``None`` for no limit.

    A module called more than once per forward pass cannot be measured and raises :class:`ValueError`.
    """
    pairs = resolve_layers(model, layers)
    dev0, pdtype = _model_device_dtype(model)
    dev = torch.device(device) if device is not None else dev0
    names = (["input"] if include_input else []) + [n for n, _ in pairs]
    stats: dict[str, ClassStats | None] = {n: None for n in names}
    kept: dict[str, list[np.ndarray]] = {n: [] for n in names}
    kept_out: list[np.ndarray] = []
    kept_y: list[np.ndarray] = []
    current: dict[str, torch.Tensor] = {}

    def make_hook(name: str):
        def hook(_mod: nn.Module, _inp: Any, out: Any) -> None:
            if isinstance(out, (tuple, list)):
                out = out[0]
            if not isinstance(out, torch.Tensor):
                raise ValueError(f"layer {name!r} returned {type(out).__name__}, not a tensor")
            if name in current:
                raise ValueError(f"layer {name!r} was called more than once in one forward pass")
            current[name] = out.detach()

        return hook

    def feed(name: str, t: torch.Tensor, y: np.ndarray) -> None:
        flat = t.reshape(t.shape[0], -1)
        st = stats[name]
        if st is None:
            d = flat.shape[1]
            track = track_covariance and (max_cov_dim is None or d <= max_cov_dim)
            st = stats[name] = ClassStats(dim=d, track_covariance=track)
        try:
            st.update(flat, y)
        except ValueError as err:
            raise ValueError(f"layer {name!r}: {err}") from err
        if keep:
            kept[name].append(to_numpy(flat).astype(np.float32, copy=False))

    handles = []
    was_training = model.training
    try:
        for name, mod in pairs:
            handles.append(mod.register_forward_hook(make_hook(name)))
        model.eval()
        with torch.no_grad():
            for xb, yb in _batches(data, batch_size):
                x = torch.as_tensor(xb)
                if pdtype is not None and x.is_floating_point():
                    x = x.to(dtype=pdtype)
                x = x.to(dev)
                y = as_labels(yb, x.shape[0])
                current.clear()
                out = model(x)
                missing = [n for n, _ in pairs if n not in current]
                if missing:
                    raise ValueError(f"layers {missing} were not called in the forward pass")
                if include_input:
                    feed("input", x, y)
                for name, _ in pairs:
                    feed(name, current[name], y)
                if keep:
                    kept_y.append(y)
                    if isinstance(out, torch.Tensor):
                        kept_out.append(to_numpy(out.reshape(out.shape[0], -1), np.float64))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        current.clear()

    if any(st is None for st in stats.values()):
        raise ValueError("data yielded no batches")
    result = LayerFeatures(stats)
    result.modules = dict(pairs)
    if keep:
        result.features = {n: np.concatenate(v) for n, v in kept.items()}
        result.labels = np.concatenate(kept_y)
        result.outputs = np.concatenate(kept_out) if kept_out else None
    return result
