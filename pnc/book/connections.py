r"""Measurements that connect progressive collapse to neighbouring results (chapter "Connections").

- :func:`last_layer_collapse`: NC1–NC4 of Papyan, Han & Donoho (2020) at the last hidden layer of a model;
- :func:`pnc.metrics.separation_fuzziness`: the "fuzziness" $D=\operatorname{Tr}(SS_w\,SS_b^+)$ of He & Su's law of data
  separation, with $SS_b$ weighted by the class proportions $n_k/N$ (equal to $K\cdot$NC1 for balanced classes);
- :func:`layerwise_connections`: one table over all layers with the fuzziness, coding rates (Ma et al.), numerical
  rank and linear-probe accuracy (the tunnel effect of Masarczyk et al.);
- :func:`rate_law`: the coding rates of every layer of a trained deep linear network against the closed form of the
  idealised network (:func:`pnc.theory.layerwise_coding_rates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import nn

from pnc import data as _data
from pnc import metrics as M
from pnc import theory as _theory
from pnc._checks import as_features, as_labels
from pnc.classifier import classifier_io, find_classifier
from pnc.features import collect_features
from pnc.probes import probe_accuracy
from pnc.report import LayerReport

if TYPE_CHECKING:
    from .recipes import RecipeResult

__all__ = ["NeuralCollapse", "RateLaw", "last_layer_collapse", "layerwise_connections", "normalize_rows", "rate_law"]


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


def last_layer_collapse(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> NeuralCollapse:
    """NC1–NC4 of the features entering the classifier (``model.classifier`` or the last ``nn.Linear``).

    The classifier must be bias-free or its bias is ignored in NC3; labels must be ``0..K-1`` with every class
    present, so that classifier row ``k`` belongs to class ``k``.
    """
    clf, _ = find_classifier(model)
    labels, h, logits = classifier_io(model, (X, as_labels(y, X.shape[0])), clf, batch_size=batch_size)
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


@dataclass(frozen=True)
class RateLaw:
    """Coding rates of the unit-normalised features of a trained deep linear network, layer by layer, against the
    idealised closed form (:func:`pnc.theory.layerwise_coding_rates`)."""

    measured: _theory.CodingRates
    """``R``, ``R^c``, ``Delta R`` of the trained network's layers ``l = 0 .. L-1`` (nats)."""
    predicted: _theory.CodingRates
    """The closed form from the recipe's knobs ``(xi, n, K, L, alpha)`` alone (``eps = xi``)."""
    from_compression: _theory.CodingRates
    """The closed form given the *measured* ``C_l`` (:func:`pnc.theory.coding_rates_from_compression`)."""
    collapsed: _theory.CodingRates
    """The limit ``C -> 0`` (every class one point): the rates that ``l -> infinity`` approaches."""
    compression: np.ndarray
    """Measured ``C_l``."""
    theory_compression: np.ndarray
    """Idealised ``C_l`` (:func:`pnc.theory.layerwise_compression`)."""
    kappa: float
    eps_sq: float
    width: int
    n: int
    K: int

    @property
    def layers(self) -> np.ndarray:
        return np.arange(self.compression.size)

    def relative_errors(self, against: str = "predicted") -> dict[str, np.ndarray]:
        """``|closed form / measured - 1|`` per layer for ``rate``, ``class_rate`` and ``rate_reduction``;
        ``against`` is ``"predicted"`` or ``"from_compression"``."""
        if against not in ("predicted", "from_compression"):
            raise ValueError(f"against must be 'predicted' or 'from_compression', got {against!r}")
        closed = getattr(self, against)
        return {name: np.abs(np.asarray(getattr(closed, name)) / np.asarray(getattr(self.measured, name)) - 1.0)
                for name in _theory.CodingRates._fields}


def rate_law(run: RecipeResult, eps_sq: float = 0.5) -> RateLaw:
    """Measure ``R``, ``R^c``, ``Delta R`` of every layer of a :func:`pnc.book.recipes.run_recipe` network (features
    scaled to unit norm per sample, as in :func:`layerwise_connections`) and set them against the closed forms.

    The data are rebuilt from ``run.config`` (the recipe's seeded :func:`pnc.data.orthogonal_dataset`).
    """
    config = run.config
    if config.get("data") != "orthogonal" or not run.weights:
        raise ValueError("rate_law needs a run of pnc.book.recipes.run_recipe (orthogonal data, weights kept)")
    if run.diverged:
        raise ValueError("the run diverged: its features have no coding rates")
    eps_sq = float(eps_sq)
    if not np.isfinite(eps_sq) or eps_sq <= 0:
        raise ValueError(f"eps_sq must be a positive number, got {eps_sq}")
    n, K, L = int(config["n"]), int(config["K"]), int(config["L"])
    X, y = _data.orthogonal_dataset(n_per_class=n, n_classes=K, dim=int(config["d"]),
                                    perturbation=float(config["perturbation"]), seed=int(config["seed"]))
    labels = y.numpy()
    rows = []
    for z in _theory.layer_features(run.weights, X.numpy()):
        unit = normalize_rows(z)
        rate = M.coding_rate(unit, eps_sq=eps_sq)
        class_rate = M.class_coding_rate(unit, labels, eps_sq=eps_sq)
        rows.append((rate, class_rate, rate - class_rate))
    measured = _theory.CodingRates(*(np.array(col) for col in zip(*rows, strict=True)))
    width = int(run.weights[0].shape[0])
    if width != int(config["d"]):
        raise ValueError(f"the closed form needs width = d (every layer the same dimension), got width {width}, "
                         f"d {config['d']}")
    layers = np.arange(L)
    compression = np.asarray(run.compression, dtype=np.float64)
    return RateLaw(
        measured=measured,
        predicted=_theory.layerwise_coding_rates(layers, config["xi"], n, K, L, config["alpha"], width=width,
                                                 eps_sq=eps_sq),
        from_compression=_theory.coding_rates_from_compression(compression, n, K, width=width, eps_sq=eps_sq),
        collapsed=_theory.coding_rates_from_compression(0.0, n, K, width=width, eps_sq=eps_sq),
        compression=compression,
        theory_compression=np.asarray(run.theory_compression, dtype=np.float64),
        kappa=float(run.kappa), eps_sq=eps_sq, width=width, n=n, K=K,
    )
