r"""Measurements that connect progressive collapse to neighbouring results (chapter "Connections").

- :func:`last_layer_collapse`: NC1–NC4 of Papyan, Han & Donoho (2020) at the last hidden layer of a model;
- :func:`pnc.metrics.separation_fuzziness`: the "fuzziness" $D=\operatorname{Tr}(SS_w\,SS_b^+)$ of He & Su's law of data
  separation, with $SS_b$ weighted by the class proportions $n_k/N$ (equal to $K\cdot$NC1 for balanced classes);
- :func:`layerwise_connections`: one table over all layers with the fuzziness, coding rates (Ma et al.), numerical
  rank and linear-probe accuracy (the tunnel effect of Masarczyk et al.).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from pnc import metrics as M
from pnc._checks import as_features, as_labels
from pnc.features import collect_features
from pnc.probes import probe_accuracy
from pnc.report import LayerReport

__all__ = ["NeuralCollapse", "last_layer_collapse", "layerwise_connections", "normalize_rows"]


class NeuralCollapse(NamedTuple):
    """Last-layer neural-collapse diagnostics (all tend to 0 in the terminal phase of training)."""

    nc1: float
    """$\\frac1K\\operatorname{Tr}(\\Sigma_W\\Sigma_B^+)$ (within-class variability collapse)."""
    nc2: float
    """Distance of the centred class means' Gram matrix to a simplex ETF."""
    equinorm: float
    """Coefficient of variation of the centred class-mean norms."""
    nc3: float
    """Distance between the normalised classifier and the normalised centred means (self-duality)."""
    nc4: float
    """Fraction of samples where the network and the nearest class centre disagree."""
    train_error: float
    """Fraction of misclassified samples."""


def _classifier(model: nn.Module) -> nn.Linear:
    clf = getattr(model, "classifier", None)
    if isinstance(clf, nn.Linear):
        return clf
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("model has no nn.Linear layer to act as the classifier")
    return linears[-1]


def last_layer_collapse(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> NeuralCollapse:
    """NC1–NC4 of the features entering the classifier (``model.classifier`` or the last ``nn.Linear``).

    The classifier must be bias-free or its bias is ignored in NC3; labels must be ``0..K-1`` with every class
    present, so that classifier row ``k`` belongs to class ``k``.
    """
    clf = _classifier(model)
    h, logits = _classifier_io(model, clf, X, batch_size)
    labels = as_labels(y, h.shape[0])
    classes = np.unique(labels)
    if classes.size != clf.out_features or np.any(classes != np.arange(clf.out_features)):
        raise ValueError(f"labels must be 0..{clf.out_features - 1} with every class present, got {classes.tolist()}")
    w = clf.weight.detach().to(torch.float64).cpu().numpy()
    nc2 = M.nc2(h, labels)
    return NeuralCollapse(
        nc1=float(M.nc1(h, labels)),
        nc2=nc2.etf_error,
        equinorm=nc2.equinorm,
        nc3=float(M.nc3((h, labels), w)),
        nc4=float(M.nc4(h, labels, logits)),
        train_error=float(np.mean(np.argmax(logits, axis=1) != labels)),
    )


def _classifier_io(model: nn.Module, clf: nn.Linear, X: torch.Tensor, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (penultimate features) and outputs (logits) of ``clf`` over ``X``, in eval mode without gradients."""
    ins: list[np.ndarray] = []
    outs: list[np.ndarray] = []

    def hook(_mod: nn.Module, inputs: Any, out: torch.Tensor) -> None:
        ins.append(inputs[0].detach().to(torch.float64).reshape(inputs[0].shape[0], -1).cpu().numpy())
        outs.append(out.detach().to(torch.float64).cpu().numpy())

    handle = clf.register_forward_hook(hook)
    was_training = model.training
    p = next(model.parameters())
    try:
        model.eval()
        with torch.no_grad():
            for i in range(0, X.shape[0], batch_size):
                model(X[i : i + batch_size].to(device=p.device, dtype=p.dtype))
    finally:
        handle.remove()
        model.train(was_training)
    return np.concatenate(ins), np.concatenate(outs)


def normalize_rows(features: Any) -> np.ndarray:
    """Scale every sample (row) to unit Euclidean norm, as rate-reduction comparisons require."""
    x = as_features(features)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0.0):
        raise ValueError("cannot normalise: some samples are exactly zero")
    return x / norms


def layerwise_connections(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    eps_sq: float = 0.5,
    probe_test_fraction: float = 0.3,
    seed: int = 0,
    layers: Any = None,
) -> LayerReport:
    """One row per layer (input first): fuzziness, NC1, coding rates, numerical rank and probe accuracy.

    Columns: ``fuzziness`` (:func:`pnc.metrics.separation_fuzziness`), ``nc1``, ``rate`` $R$, ``class_rate`` $R^c$ and
    ``rate_reduction`` $\\Delta R$ (nats, of the row-normalised features, $\\varepsilon^2=$ ``eps_sq``),
    ``numerical_rank`` (95 % of the nuclear norm), ``probe_train`` / ``probe_test`` (closed-form linear probe on a
    seeded stratified split, :func:`pnc.probes.probe_accuracy`).
    """
    feats = collect_features(model, (X, y), layers=layers, keep=True)
    labels = feats.labels
    rows = []
    for i, name in enumerate(feats.names):
        f = feats.features[name].astype(np.float64)
        z = normalize_rows(f)
        probe = probe_accuracy(f, labels, test_fraction=probe_test_fraction, seed=seed)
        rate = M.coding_rate(z, eps_sq=eps_sq)
        class_rate = M.class_coding_rate(z, labels, eps_sq=eps_sq)
        rows.append({
            "layer": i, "name": name, "dim": int(f.shape[1]),
            "fuzziness": M.separation_fuzziness(feats[name]),
            "nc1": float(M.nc1(feats[name])),
            "rate": rate, "class_rate": class_rate, "rate_reduction": rate - class_rate,
            "numerical_rank": int(M.numerical_rank(feats[name])),
            "probe_train": probe.train_accuracy, "probe_test": probe.test_accuracy,
        })
    columns = ("layer", "name", "dim", "fuzziness", "nc1", "rate", "class_rate", "rate_reduction",
               "numerical_rank", "probe_train", "probe_test")
    return LayerReport(columns=columns, rows=tuple(rows))
