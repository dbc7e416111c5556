"""Collect per-layer class statistics of any torch model in a single streaming pass.

:func:`collect_features` registers forward hooks on chosen modules (by default the model's blocks), runs the model
over the data once in eval mode without gradients, pools every hooked output to one vector per sample (feature maps
and sequences: the mean over positions or tokens; a decoder's last token and a class token where the model has one,
see :func:`auto_pool`; padding marked by an ``attention_mask`` is left out) and feeds one
:class:`~pnc.stats.ClassStats` per layer and call. Nothing but the statistics is stored unless ``keep=True``.
HuggingFace ``transformers`` models work as they are (dict batches, ``ModelOutput`` results); ``transformers`` is never
imported here. With ``token_labels=`` (a language model) every real token position is a sample, labelled by the next
token (see :func:`token_targets`).
"""

from __future__ import annotations

import fnmatch
import inspect
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from ._checks import as_labels, check_int, to_numpy
from .stats import ClassStats, LabelGroups

__all__ = [
    "IGNORE_INDEX",
    "POOLS",
    "ForwardOptions",
    "REUSED",
    "TOKEN_LABELS",
    "LayerFeatures",
    "collect_features",
    "default_layers",
    "auto_pool",
    "eval_mode",
    "forward_features",
    "pool_features",
    "resolve_layers",
    "token_targets",
]

_ACTIVATION_MODULE = "torch.nn.modules.activation"
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

POOLS = ("auto", "mean", "flatten", "first", "last")
"""How a layer's output with more than two dimensions becomes one feature vector per sample (see
:func:`pool_features`; ``"auto"`` picks one for the model, see :func:`auto_pool`); a callable
``(tensor) -> (batch, d) tensor`` may be given instead."""

REUSED = ("each", "skip", "error")
"""What to do with a module called more than once in one forward pass: measure ``each`` call as its own row
(``name``, ``name#2``, ...), ``skip`` it with a note, or raise an ``error``."""

TOKEN_LABELS = ("next", "aligned")
"""Token-level labels (``token_labels=``): every real token position is a sample and ``labels`` are shaped
``(batch, tokens)``. ``"next"``: the labels are the sequence's own token ids (as HuggingFace's ``labels=input_ids``
for a causal LM) and position t is labelled with the token at t + 1, so pnc shifts them by one; ``"aligned"``: label
``[:, t]`` already belongs to position t (shifted by you). See :func:`token_targets`."""

IGNORE_INDEX = -100
"""A token label equal to this (HuggingFace's ``ignore_index``) leaves its position out, like padding."""

Pool = str | Callable[[torch.Tensor], torch.Tensor]


class LayerFeatures(dict):
    """Ordered mapping ``layer name -> ClassStats`` (``"input"`` first when included), in forward-pass order.

    Attributes:
        features: ``name -> (N, d) float array`` when collected with ``keep=True``, else empty.
        labels: all labels (N,) as int64 when ``keep=True``, else None.
        outputs: the model outputs (N, C) when ``keep=True``, else None (useful for :func:`pnc.metrics.nc4`).
        modules: ``name -> module`` for the hooked layers (a reused module appears once per measured call).
        notes: ``name -> note`` for measured layers (e.g. why the d×d scatter was not kept), and ``"skipped"`` ->
            the layers that were not measured and why.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.features: dict[str, np.ndarray] = {}
        self.labels: np.ndarray | None = None
        self.outputs: np.ndarray | None = None
        self.modules: dict[str, nn.Module] = {}
        self.notes: dict[str, str] = {}

    @property
    def names(self) -> list[str]:
        """Layer names in order."""
        return list(self.keys())


def _is_stack(module: nn.Module) -> bool:
    """A container holding at least two blocks of one type (ResNet's ``layer1``, a transformer's ``layers``)."""
    kinds = [type(child) for child in module.children()]
    return len(kinds) >= 2 and len(set(kinds)) < len(kinds)


def _holds_stack(module: nn.Module) -> bool:
    """A stack of repeated blocks among the module's children, or a ``ModuleList`` of them anywhere below it (a
    HuggingFace model keeps its blocks in ``bert.encoder.layer``, ``transformer.h``, ``model.layers``)."""
    if any(isinstance(c, _CONTAINERS) and _is_stack(c) for c in module.children()):
        return True
    return any(isinstance(m, nn.ModuleList) and _is_stack(m) for m in module.modules())


def _blocks(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, _CONTAINERS) or _holds_stack(child):
            out.extend(_blocks(child, full + "."))
        else:
            out.append((full, child))
    return out


def default_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers measured when none are given: the model's *blocks*.

    1. ``model.feature_layers()`` if the model defines it (pnc's own models do);
    2. otherwise the children of the model, where containers (``Sequential``, ``ModuleList``, ``ModuleDict``) and
       modules that hold a stack of repeated blocks (``nn.TransformerEncoder``'s ``layers``; a ``ModuleList`` of
       blocks at any depth, as in HuggingFace's ``bert.encoder.layer``, ``transformer.h``, ``model.layers``) are
       replaced by their children, recursively. A residual block, a transformer layer or an LSTM is one layer; its
       insides are not. For a HuggingFace model this gives the embeddings, each transformer block, the final norm or
       pooler and the head, in forward order.

    A block that the forward pass does not call is skipped with a note; a block called several times is measured at
    each call (see ``reused`` in :func:`collect_features`).
    """
    fl = getattr(model, "feature_layers", None)
    if callable(fl):
        return [(str(n), m) for n, m in fl()]
    return _blocks(model, "")


def resolve_layers(
    model: nn.Module,
    layers: Sequence[str | nn.Module | tuple[str, nn.Module]] | str | nn.Module | None = None,
    layer_types: type[nn.Module] | tuple[type[nn.Module], ...] | None = None,
) -> list[tuple[str, nn.Module]]:
    """Turn a layer selection into ``(name, module)`` pairs.

    ``layers`` holds names from ``model.named_modules()``, shell-style name patterns (``"layer*.?"``,
    ``"encoder.layers.*"``), modules, or ``(name, module)`` pairs; ``layer_types`` selects every module of the given
    types (e.g. ``nn.TransformerEncoderLayer``). Without either, :func:`default_layers`.

    Raises:
        ValueError: for an unknown name, a pattern that matches nothing, or a module that is not part of ``model``.
    """
    named = {n: m for n, m in model.named_modules() if n}
    if layer_types is not None:
        types = layer_types if isinstance(layer_types, tuple) else (layer_types,)
        if not types or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in types):
            raise ValueError(f"layer_types must be nn.Module classes, got {layer_types!r}")
        if layers is not None:
            raise ValueError("give either layers= or layer_types=, not both")
        pairs = [(n, m) for n, m in named.items() if isinstance(m, types)]
        if not pairs:
            present = sorted({type(m).__name__ for m in named.values()})
            raise ValueError(f"no module of type {[t.__name__ for t in types]} in the model; types present: {present}")
        return pairs
    if layers is None:
        pairs = default_layers(model)
        if not pairs:
            raise ValueError("could not find any layers to measure in the model; pass layers=[...]")
        return pairs
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    by_id: dict[int, str] = {}
    for n, m in model.named_modules():
        by_id.setdefault(id(m), n)
    out: list[tuple[str, nn.Module]] = []
    for item in layers:
        if isinstance(item, tuple) and len(item) == 2:
            out.append((str(item[0]), item[1]))
        elif isinstance(item, str) and any(ch in item for ch in "*?["):
            matched = [(n, m) for n, m in named.items() if fnmatch.fnmatchcase(n, item)]
            if not matched:
                raise ValueError(f"layer pattern {item!r} matches no module; names look like: "
                                 f"{', '.join(repr(n) for n in list(named)[:12])}")
            out.extend(matched)
        elif isinstance(item, str):
            if item not in named:
                avail = ", ".join(repr(n) for n in named)
                raise ValueError(f"unknown layer name {item!r}; available: {avail}")
            out.append((item, named[item]))
        elif isinstance(item, nn.Module):
            if id(item) not in by_id:
                raise ValueError(f"module {type(item).__name__} is not part of the model")
            out.append((by_id[id(item)] or type(item).__name__, item))
        else:
            raise ValueError(f"layers must be names, patterns or modules, got {type(item).__name__}")
    names = [n for n, _ in out]
    if len(set(names)) != len(names) or "input" in names:
        raise ValueError(f"layer names must be unique and not 'input', got {names}")
    return out


def auto_pool(model: nn.Module) -> str:
    """The pool that ``pool="auto"`` (the default) uses for ``model``, read from its structure.

    - ``"last"`` for a decoder (a submodule with ``is_causal=True``, as HuggingFace's GPT-2 and Llama attention
      have): with causal attention only the last real token has seen the whole sequence;
    - ``"first"`` for a model with a class token (a parameter named ``cls_token``, as in ViT, or a ``pooler``
      submodule, as in BERT): the class token summarises the sequence;
    - ``"mean"`` otherwise (sequences without a class token, convolutional maps).
    """
    if any(getattr(m, "is_causal", False) is True for m in model.modules()):
        return "last"
    names = [n.rsplit(".", 1)[-1] for n, _ in model.named_parameters()]
    if "cls_token" in names or any(n.rsplit(".", 1)[-1] == "pooler" for n, _ in model.named_modules()):
        return "first"
    return "mean"


def _token_positions(mask: torch.Tensor, pool: str) -> torch.Tensor:
    """Per sample, the index of the first or last real token of a ``(batch, tokens)`` attention mask."""
    real = mask != 0
    if not bool(real.any(dim=1).all()):
        raise ValueError("a sample's attention_mask is all zeros: it has no real token to pool")
    idx = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    if pool == "first":
        return torch.where(real, idx, mask.shape[1]).min(dim=1).values
    return torch.where(real, idx, -1).max(dim=1).values


def pool_features(t: torch.Tensor, pool: Pool = "mean", mask: torch.Tensor | None = None) -> torch.Tensor:
    """One feature vector per sample from a layer output of shape ``(batch, ...)``.

    ``(batch, d)`` outputs are used as they are. Otherwise ``pool`` says how:

    - ``"mean"`` (default): the mean over tokens of a ``(batch, tokens, dim)`` sequence (transformers, LSTMs with
      ``batch_first=True``) or over positions of a ``(batch, channels, *positions)`` map (convolutions);
    - ``"flatten"``: all entries of a sample as one vector (its length must not change from batch to batch);
    - ``"first"`` / ``"last"``: the first (e.g. a class token) or last token of a ``(batch, tokens, dim)`` sequence;
    - a callable mapping the output tensor to ``(batch, d)`` (it sees the output as it is, padding included).

    ``mask`` is a ``(batch, tokens)`` attention mask (1 = real token, 0 = padding): ``"mean"`` then averages the
    real tokens only and ``"first"`` / ``"last"`` take the first / last real token, so padding never enters a
    feature; ``"flatten"`` refuses a batch with padding.
    """
    if callable(pool):
        out = pool(t)
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != t.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"the pool callable must return a (batch, d) tensor with batch {t.shape[0]}, got {shape}")
        return out
    if pool not in POOLS or pool == "auto":
        raise ValueError(f"pool must be one of {POOLS[1:]} or a callable, got {pool!r}")
    if t.ndim <= 1:
        return t.reshape(t.shape[0] if t.ndim else 1, -1)
    if t.ndim == 2:
        return t
    padded = mask is not None and not bool((mask != 0).all())
    if padded and (t.ndim != 3 or tuple(t.shape[:2]) != tuple(mask.shape)):
        raise ValueError(f"the batch has padding (attention_mask of shape {tuple(mask.shape)}) but this output has "
                         f"shape {tuple(t.shape)}, not (batch, tokens, dim): its padded positions are unknown; "
                         "measure other layers (layers=) or pass batches without padding")
    if pool == "flatten":
        if padded:
            raise ValueError("pool='flatten' would put padding tokens into the features; use pool='mean', 'first' "
                             "or 'last', which skip padding")
        return t.reshape(t.shape[0], -1)
    if t.ndim == 3:
        if padded:
            if pool == "mean":
                real = (mask != 0).unsqueeze(-1)
                return torch.where(real, t, 0).sum(dim=1) / real.sum(dim=1).to(t.dtype)
            return t[torch.arange(t.shape[0], device=t.device), _token_positions(mask.to(t.device), pool)]
        if pool == "mean":
            return t.mean(dim=1)
        return t[:, 0] if pool == "first" else t[:, -1]
    if pool == "mean":
        return t.flatten(2).mean(dim=2)
    raise ValueError(f"pool={pool!r} needs a (batch, tokens, dim) output, got shape {tuple(t.shape)}; use "
                     "pool='mean' (over positions), 'flatten' or a callable")


def token_targets(labels: Any, mask: torch.Tensor | None, token_labels: str) -> tuple[torch.Tensor, np.ndarray]:
    """Which token positions of a batch are samples, and their labels: ``(keep, y)``.

    ``labels`` is ``(batch, tokens)``; ``mask`` the batch's ``(batch, tokens)`` attention mask (1 = real token) or
    ``None`` (every token real). ``keep`` is a ``(batch, positions)`` boolean tensor on the mask's device and ``y``
    the int64 labels of the kept positions in row-major order (sample by sample, left to right): the features of a
    ``(batch, tokens, dim)`` output at those positions are ``out[:, :positions][keep]``.

    - ``token_labels="next"`` (a causal LM: each position predicts the next token): ``labels`` are the sequence's own
      token ids, ``positions = tokens - 1``, position t gets ``labels[:, t + 1]`` and is kept when tokens t and t + 1
      are both real; the last position, which has no next token, is never a sample.
    - ``token_labels="aligned"``: ``labels[:, t]`` is already position t's label; ``positions = tokens``, and position
      t is kept when token t is real.

    Either way a label equal to :data:`IGNORE_INDEX` (-100) leaves its position out.
    """
    if token_labels not in TOKEN_LABELS:
        raise ValueError(f"token_labels must be one of {TOKEN_LABELS} or None, got {token_labels!r}")
    lab = torch.as_tensor(labels)
    if lab.ndim != 2:
        raise ValueError(f"token_labels={token_labels!r} needs labels shaped (batch, tokens), one per token, got shape "
                         f"{tuple(lab.shape)}")
    if lab.is_floating_point() or lab.dtype == torch.bool:
        raise ValueError(f"token labels must be integers (token ids), got dtype {lab.dtype}")
    if mask is not None and tuple(mask.shape) != tuple(lab.shape):
        raise ValueError(f"the labels have shape {tuple(lab.shape)} but the attention_mask {tuple(mask.shape)}: token "
                         "labels need one label per token")
    real = torch.ones(lab.shape, dtype=torch.bool) if mask is None else (mask != 0).cpu()
    lab = lab.cpu().long()
    if token_labels == "next":
        if lab.shape[1] < 2:
            raise ValueError("token_labels='next' needs sequences of at least two tokens (the last has no next token)")
        lab, real = lab[:, 1:], real[:, :-1] & real[:, 1:]
    keep = real & (lab != IGNORE_INDEX)
    dev = mask.device if mask is not None else torch.device("cpu")
    return keep.to(dev), lab[keep].numpy()


def _token_rows(t: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The kept positions of a ``(batch, tokens, dim)`` output as ``(samples, dim)`` rows."""
    return t[:, : keep.shape[1]][keep.to(t.device)]


def _default_batch(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, dict):
        raise ValueError(f"batches are dicts (keys {sorted(map(str, batch))}); say how to get (inputs, labels) from "
                         "one with batch_fn=, e.g. batch_fn=lambda b: (b['input_ids'], b['label'])")
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ValueError(f"each batch must be an (inputs, labels) pair, got {type(batch).__name__}; pass batch_fn= to "
                         "say how to get them from a batch")
    return batch[0], batch[1]


def _is_array(a: Any) -> bool:
    return isinstance(a, (torch.Tensor, np.ndarray))


def _batches(data: Any, batch_size: int, batch_fn: Callable[[Any], tuple[Any, Any]] | None) -> Iterator[tuple]:
    """Yield (inputs, labels) batches from an (X, y) pair, a Dataset, a DataLoader or any iterable of batches."""
    from torch.utils.data import DataLoader, Dataset, IterableDataset

    if (batch_fn is None and isinstance(data, (tuple, list)) and len(data) == 2 and _is_array(data[0])
            and (_is_array(data[1]) or isinstance(data[1], (list, tuple, range)))):
        x, y = data
        y = np.asarray(y) if not _is_array(y) else y
        n = len(x)
        if len(y) != n:
            raise ValueError(f"length mismatch: {n} features but {len(y)} labels")
        for i in range(0, n, batch_size):
            yield x[i : i + batch_size], y[i : i + batch_size]
        return
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        data = DataLoader(data, batch_size=batch_size, shuffle=False)
    if not isinstance(data, Iterable) or isinstance(data, (str, bytes)):
        raise ValueError(f"data must be (X, y), a Dataset, a DataLoader or an iterable of batches, got {type(data)}")
    adapt = batch_fn or _default_batch
    for batch in data:
        pair = adapt(batch)
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"batch_fn must return an (inputs, labels) pair, got {type(pair).__name__}")
        yield pair[0], pair[1]


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype | None]:
    for p in model.parameters():
        return p.device, p.dtype
    return torch.device("cpu"), None


def _check_device(device: str | torch.device | None, model_device: torch.device) -> torch.device:
    if device is None:
        return model_device
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a torch device: {err}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}, but this torch build has no usable CUDA device "
                         "(torch.cuda.is_available() is False); use device='cpu'")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device={device!r}, but MPS is not available here; use device='cpu'")
    if dev.type != model_device.type:
        raise ValueError(f"the model's parameters are on {model_device} but device={device!r}: move the model "
                         f"first (model.to({str(dev)!r})) or leave device=None")
    return dev


def _to_device(x: Any, dev: torch.device, dtype: torch.dtype | None) -> Any:
    """Move tensors (also inside dicts, tuples and lists) to ``dev``; floating ones get the model's dtype."""
    if isinstance(x, dict):
        return {k: _to_device(v, dev, dtype) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_to_device(v, dev, dtype) for v in x)
    t = torch.as_tensor(x)
    if dtype is not None and t.is_floating_point():
        t = t.to(dtype=dtype)
    return t.to(dev)


def _call(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return _call_with_dict(model, inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _keywords(fn: Callable[..., Any]) -> tuple[list[str], set[str] | None]:
    """The arguments ``fn`` names, and the other keywords it takes: a ``**kwargs`` typed as ``Unpack[TypedDict]``
    (as HuggingFace types it) takes that dict's keys, an untyped one anything (``None``), none at all nothing."""
    try:
        params = inspect.signature(fn, eval_str=True).parameters
    except Exception:  # an annotation that does not evaluate: read the signature as written
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            return [], None
    named = [n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    extra = [p.annotation for p in params.values() if p.kind == p.VAR_KEYWORD]
    if not extra:
        return named, set()
    typed = [a for a in typing.get_args(extra[0]) if typing.is_typeddict(a)]
    return named, (set(typed[0].__required_keys__ | typed[0].__optional_keys__) if typed else None)


def _call_with_dict(model: nn.Module, inputs: dict[str, Any]) -> Any:
    """``model(**inputs)``; a key the forward does not take, or one it misses, is a ValueError that says so."""
    named, extra = _keywords(model.forward)
    fix = ("map the batch to the forward's argument names with batch_fn=, e.g. "
           "batch_fn=lambda b: ({'input_ids': b[0]['ids'], 'attention_mask': b[0]['mask']}, b[1])")
    unknown = [k for k in inputs if k not in named and (extra is not None and k not in extra)]
    if unknown:
        raise ValueError(f"the batch's keys {unknown} are not arguments of {type(model).__name__}.forward "
                         f"(it takes {named}); {fix}")
    try:
        return model(**inputs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{type(model).__name__}(**batch) failed for a batch with keys {sorted(inputs)}: {err}. "
                         f"Its forward takes {named}; if a key is missing or misnamed, {fix}") from err


def _batch_len(inputs: Any) -> int:
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.ndim else 1
    values = list(inputs.values()) if isinstance(inputs, dict) else list(inputs)
    for v in values:
        if isinstance(v, torch.Tensor) and v.ndim:
            return int(v.shape[0])
    raise ValueError("could not tell the batch size: the inputs hold no tensor")


def _output_tensor(out: Any, n: int) -> torch.Tensor | str:
    """The per-sample tensor of a module's output for a batch of ``n``, or why there is none.

    A tensor is used as it is; from a tuple or list (an LSTM's ``(output, state)``, a HuggingFace block's
    ``(hidden, attention)``) or a mapping (a HuggingFace ``ModelOutput``) the first tensor whose leading dimension is
    the batch. A tensor without the batch dimension (GPT-2's position embedding, broadcast over the batch) is not
    per-sample.
    """
    if isinstance(out, torch.Tensor):
        candidates = [out]
    elif isinstance(out, (tuple, list)):
        candidates = [v for v in out if isinstance(v, torch.Tensor)]
    elif isinstance(out, Mapping):
        candidates = [v for v in out.values() if isinstance(v, torch.Tensor)]
    else:
        return f"returned {type(out).__name__}, not a tensor"
    for t in candidates:
        if t.ndim and t.shape[0] == n:
            return t
    if not candidates:
        return f"returned {type(out).__name__} holding no tensor"
    shapes = ", ".join(str(tuple(t.shape)) for t in candidates)
    return f"output not per-sample (shape {shapes} for a batch of {n})"


class _Plan:
    """Which hooked outputs become which rows, fixed by the first batch (forward-pass order)."""

    def __init__(self, pairs: list[tuple[str, nn.Module]], explicit: bool, reused: str) -> None:
        self.pairs, self.explicit, self.reused = pairs, explicit, reused
        self.rows: list[tuple[str, str, int]] | None = None  # (row name, layer name, call number)
        self.skipped: list[str] = []

    def fix(self, calls: dict[str, list[torch.Tensor | str]]) -> None:
        missing = [n for n, _ in self.pairs if n not in calls]
        if missing and self.explicit:
            raise ValueError(f"layers {missing} were not called in the forward pass (their parent may use their "
                             "weights directly, as nn.MultiheadAttention does with out_proj); measure their parent "
                             "or another module")
        self.skipped += [f"{n}: not called in the forward pass" for n in missing]
        rows: list[tuple[str, str, int]] = []
        for n in calls:  # dict order = the order the forward pass first called each layer
            why = next((c for c in calls[n] if isinstance(c, str)), None)
            if why is not None and self.explicit:
                raise ValueError(f"layer {n!r} {why}; measure one of its submodules, or a module whose output has "
                                 "one row per sample")
            if why is not None:
                self.skipped.append(f"{n}: {why}")
                continue
            count = len(calls[n])
            if count > 1 and self.reused == "error":
                raise ValueError(f"layer {n!r} was called {count} times in one forward pass; pass reused='each' to "
                                 "measure every call or reused='skip' to leave it out")
            if count > 1 and self.reused == "skip":
                self.skipped.append(f"{n}: called {count} times per forward pass (reused='skip')")
                continue
            rows += [(n if k == 0 else f"{n}#{k + 1}", n, k) for k in range(count)]
        if not rows:
            raise ValueError(f"none of the layers could be measured: {'; '.join(self.skipped)}")
        self.rows = rows


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run the ``with`` block with every submodule of ``model`` in eval mode and without gradients; afterwards (also
    on an error, or when a generator using it is closed early) each submodule gets its own mode back, so a BatchNorm
    you froze in eval mode inside a model in training mode stays frozen. Every pnc path that runs a model uses it."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            yield model
    finally:
        for m, mode in modes:
            m.training = mode


def _forward_passes(
    model: nn.Module,
    data: Any,
    plan: _Plan,
    *,
    batch_size: int,
    dev: torch.device,
    dtype: torch.dtype | None,
    pool: Pool,
    batch_fn: Callable[[Any], tuple[Any, Any]] | None,
    include_input: bool,
    token_labels: str | None = None,
) -> Iterator[tuple[np.ndarray, Any, dict[str, torch.Tensor]]]:
    """Per batch: ``(labels, model output, {row: (batch, d) features})`` (``"input"`` first when included); from a
    tuple or ``ModelOutput`` the model output is its first per-sample tensor (the logits). With ``token_labels``
    every kept token position is a sample (see :func:`token_targets`): labels, features and a ``(batch, tokens, C)``
    model output are given per position.

    Hooks are registered for the duration of the iteration; every submodule is in eval mode meanwhile and gets its
    own mode back afterwards, also when the consumer stops early or an error occurs.
    """
    calls: dict[str, list[torch.Tensor | str]] = {}
    batch = [0, 0]  # the size of the batch in flight and (token labels) its number of tokens, read by the hooks

    def make_hook(name: str):
        def hook(_mod: nn.Module, _inp: Any, out: Any) -> None:
            t = _output_tensor(out, batch[0])
            if token_labels is not None and isinstance(t, torch.Tensor) and (t.ndim != 3 or t.shape[1] != batch[1]):
                t = f"output is not one vector per token (shape {tuple(t.shape)}, {batch[1]} tokens)"
            calls.setdefault(name, []).append(t.detach() if isinstance(t, torch.Tensor) else t)

        return hook

    handles = [mod.register_forward_hook(make_hook(name)) for name, mod in plan.pairs]
    try:
        with eval_mode(model):
            for xb, yb in _batches(data, batch_size, batch_fn):
                inputs = _to_device(xb, dev, dtype)
                n = batch[0] = _batch_len(inputs)
                mask = inputs.get("attention_mask") if isinstance(inputs, dict) else None
                mask = mask if isinstance(mask, torch.Tensor) else None
                keep = None
                if token_labels is not None:
                    keep, y = token_targets(yb, mask, token_labels)
                    if keep.shape[0] != n:
                        raise ValueError(f"length mismatch: {n} sequences but token labels for {keep.shape[0]}")
                    batch[1] = int(keep.shape[1]) + (token_labels == "next")
                else:
                    if getattr(yb, "ndim", 1) == 2:
                        raise ValueError(f"labels shaped {tuple(yb.shape)}, one per token: pass token_labels='next' "
                                         "(labels are the token ids, pnc shifts them) or 'aligned' to measure every "
                                         "token position, or give one label per sequence")
                    y = as_labels(yb, n)
                if mask is not None and bool((mask != 0).all()):
                    mask = None  # no padding in this batch
                calls.clear()
                out = _call(model, inputs)
                if plan.rows is None:
                    plan.fix(calls)
                rows: dict[str, torch.Tensor] = {}
                if include_input:
                    if keep is not None and isinstance(inputs, torch.Tensor) and inputs.is_floating_point() \
                            and inputs.ndim == 3 and inputs.shape[1] == batch[1]:
                        rows["input"] = _token_rows(inputs, keep)
                    elif keep is None and isinstance(inputs, torch.Tensor) and inputs.is_floating_point():
                        rows["input"] = inputs.reshape(n, -1)
                    else:
                        include_input = False
                        plan.skipped.append("input: not a single floating-point tensor" + (
                            " of shape (batch, tokens, dim)" if keep is not None else ""))
                for row, name, k in plan.rows:
                    got = calls.get(name, [])
                    if len(got) <= k:
                        raise ValueError(f"layer {name!r} was called {len(got)} times in this batch but "
                                         f"{k + 1} or more in the first; the forward pass must not depend on the data")
                    if isinstance(got[k], str):
                        raise ValueError(f"layer {name!r}: {got[k]} in this batch but not in the first; measure "
                                         "other layers with layers=")
                    try:
                        rows[row] = _token_rows(got[k], keep) if keep is not None else pool_features(got[k], pool, mask)
                    except ValueError as err:
                        raise ValueError(f"layer {row!r}: {err}") from err
                calls.clear()
                logits = _output_tensor(out, n)  # a HuggingFace ModelOutput: its logits
                if keep is not None and isinstance(logits, torch.Tensor) and logits.ndim == 3 \
                        and logits.shape[1] == batch[1]:
                    logits = _token_rows(logits, keep)  # per token: (positions, vocabulary)
                yield y, logits if isinstance(logits, torch.Tensor) else out, rows
    finally:
        for h in handles:
            h.remove()
        calls.clear()


def forward_features(
    model: nn.Module,
    data: Any,
    layers: Sequence[str | nn.Module | tuple[str, nn.Module]] | str | nn.Module | None = None,
    *,
    batch_size: int = 512,
    device: str | torch.device | None = None,
    include_input: bool = True,
    layer_types: type[nn.Module] | tuple[type[nn.Module], ...] | None = None,
    pool: Pool = "auto",
    batch_fn: Callable[[Any], tuple[Any, Any]] | None = None,
    reused: str = "each",
    token_labels: str | None = None,
) -> Iterator[tuple[np.ndarray, Any, dict[str, torch.Tensor]]]:
    """Iterate over ``data`` once, yielding ``(labels, model output, {row: (batch, d) features})`` per batch.

    The rows and every option are those of :func:`collect_features`, which consumes this iterator; use it for a
    statistic that ``ClassStats`` does not hold (e.g. a second pass once the class means are known).
    """
    options = ForwardOptions(layers=layers, batch_size=batch_size, device=device, include_input=include_input,
                             layer_types=layer_types, pool=pool, batch_fn=batch_fn, reused=reused,
                             token_labels=token_labels)
    plan, passes = _setup(model, data, options)
    yield from passes


@dataclass(frozen=True)
class ForwardOptions:
    """How a forward pass over the data runs and what it reads: the options :func:`collect_features`,
    :func:`forward_features`, :func:`pnc.measure` and :mod:`pnc.classifier` share (see :func:`collect_features` for
    each). ``options.kwargs()`` passes them on as keywords."""

    layers: Any = None
    batch_size: int = 512
    device: str | torch.device | None = None
    include_input: bool = True
    layer_types: Any = None
    pool: Pool = "auto"
    batch_fn: Callable[[Any], tuple[Any, Any]] | None = None
    reused: str = "each"
    token_labels: str | None = None

    def kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments (the values themselves, not copies: layers may be modules)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _setup(model: nn.Module, data: Any, options: ForwardOptions) -> tuple[_Plan, Iterator[tuple]]:
    """Check the options, resolve the layers and return the plan with its (not yet started) forward passes."""
    batch_size = check_int("batch_size", options.batch_size, 1)
    token_labels, reused, pool = options.token_labels, options.reused, options.pool
    if token_labels is not None and token_labels not in TOKEN_LABELS:
        raise ValueError(f"token_labels must be one of {TOKEN_LABELS} or None, got {token_labels!r}")
    if reused not in REUSED:
        raise ValueError(f"reused must be one of {REUSED}, got {reused!r}")
    if not callable(pool) and pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS} or a callable, got {pool!r}")
    if pool == "auto":
        pool = auto_pool(model)
    pairs = resolve_layers(model, options.layers, options.layer_types)
    dev0, pdtype = _model_device_dtype(model)
    plan = _Plan(pairs, options.layers is not None or options.layer_types is not None, reused)
    passes = _forward_passes(model, data, plan, batch_size=batch_size, dev=_check_device(options.device, dev0),
                             dtype=pdtype, pool=pool, batch_fn=options.batch_fn, include_input=options.include_input,
                             token_labels=token_labels)
    return plan, passes


def collect_features(
    model: nn.Module,
    data: Any,
    layers: Sequence[str | nn.Module | tuple[str, nn.Module]] | str | nn.Module | None = None,
    batch_size: int = 512,
    device: str | torch.device | None = None,
    include_input: bool = True,
    keep: bool = False,
    track_covariance: bool = True,
    max_cov_dim: int | None = 8192,
    *,
    layer_types: type[nn.Module] | tuple[type[nn.Module], ...] | None = None,
    pool: Pool = "auto",
    batch_fn: Callable[[Any], tuple[Any, Any]] | None = None,
    reused: str = "each",
    token_labels: str | None = None,
) -> LayerFeatures:
    """Run ``model`` once over ``data`` and return ``{layer name: ClassStats}`` in forward-pass order.

    Args:
        model: any :class:`torch.nn.Module`; every submodule is put in eval mode for the pass and each is restored to
            its own mode afterwards (a BatchNorm you froze in eval stays in eval).
        data: ``(X, y)`` arrays/tensors (``y`` may be a list), a Dataset, a DataLoader, or an iterable of batches.
        layers: ``None`` (the model's blocks, see :func:`default_layers`), or names, name patterns, modules.
        batch_size: used when ``data`` is ``(X, y)`` or a Dataset.
        device: where to run; default (and it must match) the device of the model's parameters.
        include_input: also measure the flattened input as layer ``"input"`` (skipped with a note when the input is
            not a single floating-point tensor, e.g. token ids).
        keep: also store every layer's features (N×d, float32 numpy), the labels and the model outputs.
        track_covariance: keep the d×d within-class scatter (needed for NC1 and the numerical rank).
        max_cov_dim: skip the d×d scatter for layers wider than this (memory); ``None`` for no limit.
        layer_types: measure every module of these types instead of ``layers``.
        pool: how outputs with more than two dimensions become one vector per sample, see :func:`pool_features`;
            ``"auto"`` (default) is ``"last"`` for decoders, ``"first"`` for models with a class token, else
            ``"mean"`` (see :func:`auto_pool`). With dict inputs holding an ``attention_mask``, padding tokens never
            enter a feature.
        batch_fn: ``batch -> (inputs, labels)`` for batches that are not ``(inputs, labels)`` pairs (e.g. dicts);
            ``inputs`` may be a tensor, a tuple (``model(*inputs)``) or a dict (``model(**inputs)``, e.g. a
            HuggingFace ``{"input_ids": ..., "attention_mask": ...}`` or ``{"pixel_values": ...}``).
        reused: a module called several times per forward pass: ``"each"`` call measured as its own row, ``"skip"``
            (with a note) or ``"error"``.
        token_labels: ``None`` (one label per sequence or sample), or token-level measurement for a language
            model: every real token position is a sample, the labels are shaped ``(batch, tokens)``, and ``"next"``
            labels position t with the token at t + 1 (pass the token ids; pnc shifts them) while ``"aligned"``
            takes ``labels[:, t]`` as it is. Positions that are padding (``attention_mask`` 0), or whose label is -100,
            are left out; ``pool`` is not used; layers whose output is not ``(batch, tokens, dim)`` are skipped with
            a note. See :func:`token_targets`.
    """
    if max_cov_dim is not None:
        max_cov_dim = check_int("max_cov_dim", max_cov_dim, 1)
    options = ForwardOptions(layers=layers, batch_size=batch_size, device=device, include_input=include_input,
                             layer_types=layer_types, pool=pool, batch_fn=batch_fn, reused=reused,
                             token_labels=token_labels)
    plan, passes = _setup(model, data, options)

    stats: dict[str, ClassStats] = {}
    kept: dict[str, list[np.ndarray]] = {}
    kept_out: list[np.ndarray] = []
    kept_y: list[np.ndarray] = []
    notes: dict[str, str] = {}

    def feed(row: str, flat: torch.Tensor, groups: LabelGroups) -> None:
        st = stats.get(row)
        if st is None:
            d = int(flat.shape[1])
            track = track_covariance and (max_cov_dim is None or d <= max_cov_dim)
            if track_covariance and not track:
                notes[row] = (f"{d} features exceed max_cov_dim={max_cov_dim}, so the d×d scatter was not kept: NC1 "
                              "and ranks need it; raise max_cov_dim or pool the features (pool='mean')")
            st = stats[row] = ClassStats(dim=d, track_covariance=track)
        elif flat.shape[1] != st.dim:
            hint = ("its output length varies between batches (e.g. sequences of different lengths): use "
                    "pool='mean', 'first' or 'last'" if pool == "flatten" else "pass a pool that gives a fixed size")
            raise ValueError(f"layer {row!r}: feature dimension changed from {st.dim} to {flat.shape[1]}; {hint}")
        try:
            st.update(flat, groups)
        except ValueError as err:
            raise ValueError(f"layer {row!r}: {err}") from err
        if keep:
            kept.setdefault(row, []).append(to_numpy(flat).astype(np.float32, copy=False))

    for y, out, rows in passes:
        if y.size == 0:  # token labels: a batch with no position to measure (all padding or ignored)
            continue
        groups = LabelGroups(y)  # the batch's class structure, computed once for all its layers
        for row, flat in rows.items():
            feed(row, flat, groups)
        if keep:
            kept_y.append(y)
            if isinstance(out, torch.Tensor):
                kept_out.append(to_numpy(out.reshape(out.shape[0], -1), np.float64))

    if plan.rows is None:
        raise ValueError("data yielded no batches")
    result = LayerFeatures(stats)
    result.modules = {row: dict(plan.pairs)[name] for row, name, _ in plan.rows}
    result.notes = dict(notes)
    if plan.skipped:
        result.notes["skipped"] = "; ".join(plan.skipped)
    if keep:
        result.features = {row: np.concatenate(kept[row]) for row in stats}
        result.labels = np.concatenate(kept_y)
        result.outputs = np.concatenate(kept_out) if kept_out else None
    return result
