"""The model's classifier: which module it is, which measured row feeds it, and what it predicts.

One path for every place that needs the classifier (:func:`pnc.measure`'s NC3 and NC4, the book's last-layer
collapse): :func:`find_classifier` picks it, :func:`classifier_input_row` finds the measured row that feeds it,
:func:`classifier_io` reads its inputs and the model's outputs over a data set, and
:func:`prediction_disagreement` is NC4's second pass. The model runs through :func:`pnc.features.forward_features`,
so every submodule is in eval mode meanwhile and gets its own mode back afterwards (:func:`pnc.features.eval_mode`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from . import metrics as M
from ._checks import to_numpy
from .features import forward_features
from .stats import ClassStats

__all__ = ["classifier_input_row", "classifier_io", "find_classifier", "prediction_disagreement"]


def find_classifier(model: nn.Module, classifier: Any = None) -> tuple[nn.Module | None, np.ndarray]:
    """``(module or None, K×d float64 weight)`` of the classifier: ``classifier`` when given (a module with a 2-D
    ``weight``, or the K×d weight itself), else ``model.classifier`` when it is an ``nn.Linear``, else the model's
    last ``nn.Linear``."""
    if classifier is None:
        own = getattr(model, "classifier", None)
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if isinstance(own, nn.Linear):
            classifier = own
        elif linears:
            classifier = linears[-1]
        else:
            raise ValueError("nc3/nc4 need a classifier and the model has no nn.Linear; pass classifier=")
    if isinstance(classifier, nn.Module):
        weight = getattr(classifier, "weight", None)
        if weight is None or weight.ndim != 2:
            raise ValueError(f"classifier {type(classifier).__name__} has no 2-D weight; pass its K×d weight")
        return classifier, to_numpy(weight, np.float64)
    weight = to_numpy(classifier, np.float64)
    if weight.ndim != 2:
        raise ValueError(f"classifier must be a module or a K×d weight, got shape {weight.shape}")
    return None, weight


def classifier_input_row(stats: Any, module: nn.Module | None, weight: np.ndarray) -> str | None:
    """The measured row (of a :class:`pnc.features.LayerFeatures`) that feeds the classifier: the row just before the
    classifier's own row, else the last row as wide as the classifier's input; None when there is none."""
    names = list(stats)
    modules = getattr(stats, "modules", {})
    for i, name in enumerate(names):
        if module is not None and modules.get(name) is module and i > 0 and stats[names[i - 1]].dim == weight.shape[1]:
            return names[i - 1]
    wide = [n for n in names if stats[n].dim == weight.shape[1] and modules.get(n) is not module]
    return wide[-1] if wide else None


def classifier_io(model: nn.Module, data: Any, classifier: nn.Module | None = None,
                  **forward_options: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, classifier inputs N×d, model outputs N×C)`` over ``data``, float64, in one forward pass.

    ``classifier`` as in :func:`find_classifier` (a module); ``forward_options`` are those of
    :func:`pnc.features.forward_features` (``batch_size``, ``device``, ``batch_fn``, ...).
    """
    module, _ = find_classifier(model, classifier)
    if module is None:
        raise ValueError("classifier_io needs the classifier module (its inputs are read by a hook), not a weight")
    seen: list[torch.Tensor] = []

    def hook(_mod: nn.Module, inputs: Any) -> None:
        seen.append(inputs[0].detach())

    labels, ins, outs = [], [], []
    handle = module.register_forward_pre_hook(hook)
    try:
        options = {"include_input": False, "pool": "flatten", **forward_options, "layers": [module]}
        for y, out, _rows in forward_features(model, data, **options):
            x = seen.pop()
            seen.clear()
            labels.append(y)
            ins.append(to_numpy(x.reshape(x.shape[0], -1), np.float64))
            outs.append(to_numpy(out.reshape(out.shape[0], -1), np.float64))
    finally:
        handle.remove()
    return np.concatenate(labels), np.concatenate(ins), np.concatenate(outs)


def prediction_disagreement(model: nn.Module, data: Any, stats: ClassStats, row: str, *, distributed: bool = False,
                            tile_size: int | None = None, **forward_options: Any) -> float:
    """NC4's second pass: the share of samples whose predicted class (the model's arg-max output) differs from the
    class whose mean in ``stats`` is nearest to their features at ``row``.

    ``forward_options`` are those of :func:`pnc.features.forward_features` and must select the same rows as the
    pass that gave ``stats``; with ``distributed=True`` the counts are summed over the ``torch.distributed`` group.
    """
    if iter(data) is data:
        raise ValueError("nc4 reads the data twice, but data is a one-shot iterator: pass a list, a DataLoader or "
                         "(X, y)")
    wrong, total = 0, 0
    for y, out, rows in forward_features(model, data, **forward_options):
        if len(y) == 0:
            continue
        share = M.nc4(stats, logits=out.reshape(out.shape[0], -1), features=rows[row], tile_size=tile_size)
        wrong += round(share * len(y))  # the batch's count of disagreements (exact: share = count / len(y))
        total += len(y)
    if distributed:
        import torch.distributed as dist

        counts = torch.tensor([wrong, total], dtype=torch.float64)
        dist.all_reduce(counts)
        wrong, total = int(counts[0]), int(counts[1])
    return wrong / total
