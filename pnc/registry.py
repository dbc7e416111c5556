"""The metric registry: one table from a metric's name to how it is computed and what it needs.

Every layerwise table (:func:`pnc.measure`, :func:`pnc.report_from_features`, :func:`pnc.report.report_from_stats`,
the command line's ``--metrics``) reads :data:`METRICS`, so a new metric is one entry::

    METRICS["trace_w"] = Metric(
        compute=lambda stats, inputs: (stats.trace_sigma_w(),),
        columns=("trace_w",),
        statistics=("counts", "class_sum_squares"),
        summary="Tr Σ_W",
    )

``compute`` gets a layer's :class:`~pnc.ClassStats` and the table's :class:`MetricInputs` and returns one value per
column; a :class:`ValueError` from it makes that layer's values NaN, with the reason in the ``note`` column.
``statistics`` says what the metric reads (see :data:`STATISTICS`): ``"scatter"`` makes the measurement keep each
layer's d×d within-class scatter, ``"classifier_weight"`` and ``"predictions"`` restrict the metric to the row that
feeds the model's classifier (``"predictions"`` reads the data a second time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import metrics as M
from .stats import ClassStats

__all__ = ["DEFAULT_METRICS", "METRICS", "STATISTICS", "Metric", "MetricInputs", "metric_columns",
           "needs_scatter", "resolve_metrics"]

STATISTICS: dict[str, str] = {
    "counts": "samples per class n_k",
    "means": "class means μ_k",
    "class_sum_squares": "per-class centred sums of squares tr M2_k",
    "scatter": "the d×d within-class scatter Σ_k M2_k (one GEMM per layer and batch)",
    "classifier_weight": "the K×d weight of the model's classifier (the row that feeds it only)",
    "predictions": "the model's predictions, in a second pass over the data (the row that feeds the classifier only)",
}
"""What a metric can read, and what each costs or implies."""


@dataclass(frozen=True)
class MetricInputs:
    """Everything a metric may read besides a layer's :class:`~pnc.ClassStats`: the table's options."""

    between_centre: str = "sample_mean"
    tile_size: int | None = None
    rank_threshold: float = 0.95
    coding_rate_eps: float = 0.5
    classifier_weight: np.ndarray | None = None
    """K×d, rows ordered like the sorted classes (only at the row that feeds the classifier)."""
    prediction_disagreement: float | None = None
    """Share of samples whose predicted class differs from the nearest class mean (NC4's second pass)."""


@dataclass(frozen=True)
class Metric:
    """One registered metric: how to compute it from a layer's statistics and where its values go."""

    compute: Callable[[ClassStats, MetricInputs], Sequence[Any]]
    """``(stats, inputs) -> values``, one per column; raise ``ValueError`` where the metric is undefined."""
    columns: tuple[str, ...]
    """The table columns it fills, in order."""
    statistics: tuple[str, ...]
    """What it reads: keys of :data:`STATISTICS`."""
    summary: str = ""
    """One line for the docs and the command line's help."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.statistics if s not in STATISTICS]
        if unknown:
            raise ValueError(f"unknown statistics {unknown}; known: {list(STATISTICS)}")
        if not self.columns or not all(isinstance(c, str) and c for c in self.columns):
            raise ValueError(f"a metric needs at least one column name, got {self.columns!r}")
        if not callable(self.compute):
            raise ValueError("a metric's compute must be a function (stats, inputs) -> values")

    @property
    def needs_scatter(self) -> bool:
        """Whether it needs each layer's d×d within-class scatter (``track_covariance=True``)."""
        return "scatter" in self.statistics

    @property
    def needs_classifier(self) -> bool:
        """Whether it is defined only at the row that feeds the model's classifier."""
        return "classifier_weight" in self.statistics or "predictions" in self.statistics


def _nc3(stats: ClassStats, inputs: MetricInputs) -> tuple[float]:
    if inputs.classifier_weight is None:
        raise ValueError("nc3 needs the classifier's weight: use pnc.measure(model, data, metrics=...)")
    return (M.nc3(stats, inputs.classifier_weight, between_centre=inputs.between_centre),)


def _nc4(stats: ClassStats, inputs: MetricInputs) -> tuple[float]:
    if inputs.prediction_disagreement is None:
        return (math.nan,)  # the model's predictions were not read (no second pass)
    return (inputs.prediction_disagreement,)


METRICS: dict[str, Metric] = {
    "compression": Metric(
        lambda st, o: (M.compression(st, between_centre=o.between_centre),), ("compression",),
        ("counts", "means", "class_sum_squares"), "C = Tr Σ_W / Tr Σ_B, within-class compression"),
    "discrimination": Metric(
        lambda st, o: (M.discrimination(st, tile_size=o.tile_size),), ("discrimination",),
        ("means",), "D = 1 − max cos(μ_k, μ_k'), between-class discrimination (uncentred means)"),
    "nc1": Metric(
        lambda st, o: M.nc1(st, return_rank=True, between_centre=o.between_centre), ("nc1", "nc1_rank"),
        ("counts", "means", "scatter"), "NC1 = Tr(Σ_W Σ_B⁺)/K and the rank of Σ_B kept by the pseudo-inverse"),
    "nc2": Metric(
        lambda st, o: tuple(M.nc2(st, between_centre=o.between_centre)), ("nc2_etf", "nc2_equinorm"),
        ("counts", "means"), "NC2: distance to a simplex ETF, and the spread of the centred mean norms"),
    "cdnv": Metric(
        lambda st, o: (M.cdnv(st, tile_size=o.tile_size),), ("cdnv",),
        ("counts", "means", "class_sum_squares"), "class-distance normalised variance (Galanti et al.)"),
    "rank": Metric(
        lambda st, o: (M.rank_from_singular_values(M.singular_values(st), o.rank_threshold),), ("numerical_rank",),
        ("counts", "means", "scatter"), "numerical rank of the uncentred features (rank_threshold of Σσ_i)"),
    "effective_rank": Metric(
        lambda st, o: (M.effective_rank(st),), ("effective_rank",),
        ("counts", "means", "scatter"), "effective rank exp(entropy of σ_i/Σσ_j) (Roy & Vetterli)"),
    "coding_rate": Metric(
        lambda st, o: (M.coding_rate(st, eps=o.coding_rate_eps),), ("coding_rate",),
        ("counts", "means", "scatter"), "coding rate ½ logdet(I + d/(Nε²) ZZᵀ) in nats (coding_rate_eps = ε)"),
    "nc3": Metric(
        _nc3, ("nc3",), ("counts", "means", "classifier_weight"),
        "NC3 self-duality of the classifier and the centred class means"),
    "nc4": Metric(
        _nc4, ("nc4",), ("means", "predictions"),
        "NC4: share of predictions that differ from the nearest class mean"),
}
"""The registered metrics, in table order: name -> :class:`Metric`."""

DEFAULT_METRICS: tuple[str, ...] = ("compression", "discrimination", "cdnv", "nc2")
"""What :func:`pnc.measure` computes unless told otherwise: the metrics that need only per-class sums (no d×d
scatter).

NC1 and the ranks need each layer's d×d scatter, one float64 GEMM per layer and batch, which costs more than the
forward pass itself (``benchmarks/RESULTS.md``); ask for them with ``metrics=(..., "nc1", "rank")`` or
``metrics="all"``."""


def resolve_metrics(metrics: Sequence[str] | str, *, classifier: bool = True) -> tuple[str, ...]:
    """Metric names checked against :data:`METRICS`; ``"all"`` is every registered one (without those that need
    the model's classifier when ``classifier=False``)."""
    if isinstance(metrics, str) and metrics == "all":
        return tuple(name for name, m in METRICS.items() if classifier or not m.needs_classifier)
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available (metrics=): {list(METRICS)}")
    return tuple(metrics)


def metric_columns(metrics: Sequence[str]) -> list[str]:
    """The columns the named metrics fill, in order."""
    return [column for name in metrics for column in METRICS[name].columns]


def needs_scatter(metrics: Sequence[str]) -> bool:
    """Whether any of the named metrics needs the d×d within-class scatter."""
    return any(METRICS[name].needs_scatter for name in metrics)
