"""One call from a model and a data set to a layer-by-layer table of collapse metrics.

>>> report = measure(model, (X, y))            # doctest: +SKIP
>>> report.column("compression")               # doctest: +SKIP
>>> report.to_pandas()                         # doctest: +SKIP

The numerical rank needs the singular values of the uncentred N×d feature matrix of the whole data set.
They are obtained without storing the features: the streaming statistics give the Gram matrix
$X^\\top X=\\sum_k\\big(M2_k+n_k\\mu_k\\mu_k^\\top\\big)$ and $\\sigma_i=\\sqrt{\\lambda_i(X^\\top X)}$.
"""

from __future__ import annotations

import html
import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from . import metrics as M
from .cache import atomic_write_bytes
from .classifier import classifier_input_row, find_classifier, prediction_disagreement
from .features import ForwardOptions, collect_features
from .registry import DEFAULT_METRICS, METRICS, MetricInputs, metric_columns, needs_scatter, resolve_metrics

__all__ = ["LayerReport", "measure", "report_from_features", "report_from_stats", "DEFAULT_METRICS"]

@dataclass(frozen=True)
class LayerReport:
    """Immutable table with one row (a dict) per layer.

    ``report[i]`` is row i, ``report["compression"]`` (or ``report.column("compression")``) a column as a
    numpy array; missing values are NaN in columns and ``None`` in :meth:`to_dict`.
    """

    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    notes: tuple[str, ...] = ()
    """Layers that were not measured, and why (e.g. not called in the forward pass)."""

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, key: int | str) -> Any:
        """``report[i]``: row i; ``report["compression"]``: a column; ``report["layer1.0"]``: that layer's row."""
        if isinstance(key, str):
            if key in self.columns:
                return self.column(key)
            if key in self.names:
                return self.row(key)
            raise KeyError(f"{key!r} is neither a column ({list(self.columns)}) nor a layer ({self.names})")
        return self.rows[key]

    def row(self, name: str) -> dict[str, Any]:
        """The row of the layer called ``name``."""
        names = self.names
        if name not in names:
            raise KeyError(f"no layer {name!r}; layers: {names}")
        return self.rows[names.index(name)]

    def column(self, name: str) -> np.ndarray:
        """Column ``name`` as a numpy array (float with NaN for missing values, except ``name``)."""
        if name not in self.columns:
            raise KeyError(f"unknown column {name!r}; columns: {list(self.columns)}")
        vals = [r.get(name) for r in self.rows]
        if name in ("name", "note"):
            return np.array(vals, dtype=object)
        return np.array([np.nan if v is None else v for v in vals], dtype=np.float64)

    @property
    def names(self) -> list[str]:
        """Layer names."""
        return [r["name"] for r in self.rows]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly ``{"columns": [...], "rows": [{...}, ...]}`` (NaN becomes None)."""

        def clean(v: Any) -> Any:
            if isinstance(v, (np.integer,)):
                return int(v)
            if isinstance(v, (float, np.floating)):
                return None if not math.isfinite(float(v)) else float(v)
            return v

        rows = [{c: clean(r.get(c)) for c in self.columns} for r in self.rows]
        return {"columns": list(self.columns), "rows": rows}

    @classmethod
    def from_dict(cls, table: Any) -> LayerReport:
        """The inverse of :meth:`to_dict` (also accepts its ``notes`` and a bare list of row dicts).

        ``None`` stays ``None`` in the rows (and reads as NaN in :meth:`column`).
        """
        if isinstance(table, LayerReport):
            return table
        if isinstance(table, dict):
            if "rows" not in table:
                raise ValueError(f"a layer table needs 'rows' (and 'columns'); got keys {sorted(table)}")
            rows, columns, notes = table["rows"], table.get("columns"), tuple(table.get("notes", ()))
        else:
            rows, columns, notes = table, None, ()
        if not isinstance(rows, (list, tuple)) or not all(isinstance(r, dict) for r in rows):
            raise ValueError("a layer table's rows must be a list of dicts, one per layer")
        if columns is None:
            columns = list(dict.fromkeys(k for r in rows for k in r))
        return cls(columns=tuple(columns), rows=tuple(dict(r) for r in rows), notes=notes)

    def with_columns(self, **columns: Sequence[Any]) -> LayerReport:
        """A copy with columns added or replaced, one value per layer (e.g. a probe's accuracy)."""
        for name, values in columns.items():
            if len(values) != len(self.rows):
                raise ValueError(f"column {name!r} has {len(values)} values for {len(self.rows)} layers")
        extra = [c for c in columns if c not in self.columns]
        order = [c for c in self.columns if c != "note"] + extra + (["note"] if "note" in self.columns else [])
        rows = tuple({**r, **{c: _plain(v[i]) for c, v in columns.items()}} for i, r in enumerate(self.rows))
        return LayerReport(columns=tuple(order), rows=rows, notes=self.notes)

    def to_json(self, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> str:
        """The table as JSON (:meth:`to_dict` plus ``notes``); also written to ``path`` (atomically) if given."""
        text = json.dumps({**self.to_dict(), "notes": list(self.notes)}, **({"indent": 1} | kwargs))
        if path is not None:
            atomic_write_bytes(path, (text + "\n").encode("utf-8"))
        return text

    def plot(self, ax: Any = None, label: str = "measured") -> Any:
        """The standard layerwise figure: ``C_l`` (log axis, fitted rate) and ``D_l`` (fitted slope) against the layer.

        Needs matplotlib (``pip install "pnc[plot]"``) and the compression and discrimination columns.
        """
        for needed in ("compression", "discrimination"):
            if needed not in self.columns:
                raise ValueError(f"plot needs the {needed!r} column: measure with metrics including {needed!r}")
        try:
            from .plotting import layerwise_plot
        except ImportError as err:
            raise ImportError(f"LayerReport.plot needs matplotlib: pip install 'pnc[plot]' ({err})") from None
        c, d = self.column("compression"), self.column("discrimination")
        keep = np.isfinite(c) & np.isfinite(d) & (c > 0)
        return layerwise_plot(c[keep], d[keep], ax=ax, layers=self.column("layer")[keep], label=label)

    def to_pandas(self):
        """A :class:`pandas.DataFrame` with one row per layer (pandas is imported lazily)."""
        import pandas as pd

        records = [{c: r.get(c) for c in self.columns} for r in self.rows]
        return pd.DataFrame(records, columns=list(self.columns))

    def _cells(self) -> list[list[str]]:
        def fmt(v: Any) -> str:
            if v is None:
                return "—"
            if isinstance(v, (float, np.floating)):
                return "nan" if not math.isfinite(v) else f"{v:.4g}"
            return str(v)

        return [[fmt(r.get(c)) for c in self.columns] for r in self.rows]

    def __repr__(self) -> str:
        cols = [c for c in self.columns if c != "note"]
        idx = [self.columns.index(c) for c in cols]
        cells = [[row[i] for i in idx] for row in self._cells()]
        widths = [max(len(c), *(len(r[j]) for r in cells)) if cells else len(c) for j, c in enumerate(cols)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
        return f"LayerReport({len(self.rows)} layers)\n" + "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in self._cells()
        )
        # in a box that scrolls sideways where the table is wider than the page (a phone, a narrow notebook)
        return (f'<div class="pnc-scroll" style="overflow-x: auto; max-width: 100%"><table><thead><tr>{head}</tr>'
                f"</thead><tbody>{body}</tbody></table></div>")


def _plain(v: Any) -> Any:
    """numpy scalars as Python numbers, so rows stay JSON-friendly."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _check_rank_threshold(threshold: Any) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise ValueError(f"rank_threshold must be a share of the singular values in (0, 1], got {threshold!r}")


def report_from_stats(
    stats: dict[str, M.ClassStats],
    metrics: Sequence[str] = DEFAULT_METRICS,
    rank_threshold: float = 0.95,
    *,
    between_centre: str = "sample_mean",
    layer_notes: dict[str, str] | None = None,
    coding_rate_eps: float = 0.5,
    classifier_row: str | None = None,
    classifier_weight: Any = None,
    nc4_value: float | None = None,
    tile_size: int | None = None,
) -> LayerReport:
    """Build a :class:`LayerReport` from an ordered ``{name: ClassStats}`` mapping (layer index = position).

    ``metrics`` are names in :data:`pnc.registry.METRICS` (or ``"all"``); each fills its entry's columns.

    A metric that is undefined for a layer (e.g. zero between-class scatter) is recorded as NaN, with a
    :class:`RuntimeWarning` and an explanation in the ``note`` column. ``between_centre`` is the centre of
    $\\Sigma_B$ for compression, NC1 and NC2: ``"sample_mean"`` (default) or ``"class_means"``. ``tile_size``: classes
    per side of a tile of the K×K computations (D, CDNV), see :func:`pnc.metrics.pairwise_tile_size`.
    """
    metrics = resolve_metrics(metrics)
    M.pairwise_tile_size(tile_size)  # a bad value fails here, not as a NaN in every row
    between_centre = M.check_centre(between_centre)
    _check_rank_threshold(rank_threshold)
    layer_notes = dict(layer_notes or {})
    columns = ["layer", "name", "dim", *metric_columns(metrics), "note"]
    inputs = MetricInputs(between_centre=between_centre, tile_size=tile_size, rank_threshold=rank_threshold,
                          coding_rate_eps=coding_rate_eps, classifier_weight=classifier_weight,
                          prediction_disagreement=nc4_value)
    on_classifier = [m for m in metrics if METRICS[m].needs_classifier]

    rows = []
    for i, (name, st) in enumerate(stats.items()):
        row: dict[str, Any] = {"layer": i, "name": name, "dim": st.dim}
        notes = [layer_notes[name]] if name in layer_notes else []
        for m in metrics:
            metric = METRICS[m]
            cols = metric.columns
            if metric.needs_classifier and name != classifier_row:
                row.update({c: None for c in cols})  # defined at the classifier's input only
                continue
            try:
                vals = tuple(metric.compute(st, inputs))
            except ValueError as err:
                vals = (math.nan,) * len(cols)
                reason = layer_notes.get(name) if name in layer_notes and not st.track_covariance else str(err)
                if reason != layer_notes.get(name):
                    notes.append(f"{m}: {reason}")
                warnings.warn(f"layer {i} ({name}): {m} undefined: {reason}", RuntimeWarning, stacklevel=3)
            if len(vals) != len(cols):
                raise ValueError(f"metric {m!r} returned {len(vals)} values for its {len(cols)} columns {cols}: fix "
                                 "its entry in pnc.registry.METRICS")
            for c, v in zip(cols, vals, strict=True):
                row[c] = int(v) if isinstance(v, (int, np.integer)) else float(v)
        if classifier_row is None and on_classifier and i == len(stats) - 1:
            notes.append(f"{'/'.join(on_classifier)}: no measured layer feeds the classifier")
        row["note"] = "; ".join(notes)
        rows.append(row)
    skipped = tuple(part for part in layer_notes.get("skipped", "").split("; ") if part)
    return LayerReport(columns=tuple(columns), rows=tuple(rows), notes=skipped)


def report_from_features(
    features: Sequence[Any] | dict[str, Any],
    labels: Any,
    metrics: Sequence[str] | str = DEFAULT_METRICS,
    rank_threshold: float = 0.95,
    *,
    between_centre: str = "sample_mean",
    coding_rate_eps: float = 0.5,
    tile_size: int | None = None,
) -> LayerReport:
    """The :class:`LayerReport` of feature arrays already in memory, one per layer (a list, or ``{name: array}``).

    Every array is ``(N, d_l)`` for the same ``N`` samples with ``labels``; the table is the one :func:`measure`
    gives for the same features (list entries are named ``z0, z1, ...``). ``nc3``/``nc4`` need a model: use
    :func:`measure`. Any number of classes works (a vocabulary of 50,000): ``tile_size`` bounds the K×K work, see
    :func:`pnc.metrics.pairwise_tile_size`.
    """
    metrics = resolve_metrics(metrics, classifier=False)  # "all": everything that needs no classifier
    bad = [m for m in metrics if METRICS[m].needs_classifier]
    if bad:
        raise ValueError(f"metrics {bad} need the model's classifier: use pnc.measure(model, data, metrics=...)")
    named = dict(features) if isinstance(features, dict) else {f"z{i}": f for i, f in enumerate(features)}
    if not named:
        raise ValueError("report_from_features needs at least one layer's features")
    need_cov = needs_scatter(metrics)
    stats = {name: M.ClassStats(track_covariance=need_cov).update(f, labels) for name, f in named.items()}
    if len(next(iter(stats.values())).classes) < 2:
        raise ValueError("the labels hold a single class; collapse metrics compare classes")
    return report_from_stats(stats, metrics, rank_threshold=rank_threshold, between_centre=between_centre,
                             coding_rate_eps=coding_rate_eps, tile_size=tile_size)


def measure(
    model: Any,
    data: Any,
    layers: Sequence[Any] | str | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    batch_size: int = 512,
    device: Any = None,
    include_input: bool = True,
    rank_threshold: float = 0.95,
    max_cov_dim: int | None = 8192,
    *,
    between_centre: str = "sample_mean",
    layer_types: Any = None,
    pool: Any = "auto",
    batch_fn: Any = None,
    reused: str = "each",
    distributed: bool = False,
    classifier: Any = None,
    coding_rate_eps: float = 0.5,
    token_labels: str | None = None,
    tile_size: int | None = None,
) -> LayerReport:
    """Measure collapse metrics at every layer of ``model`` in one pass over ``data``.

    Row 0 is the flattened input (named ``"input"``) when ``include_input``; the other rows are the measured layers
    in the order the forward pass calls them. By default these are the model's blocks (residual blocks, transformer
    layers, an LSTM, the children of a ``Sequential``: see :func:`pnc.features.default_layers`); choose others with
    ``layers`` (names, patterns like ``"layer*"``, modules) or ``layer_types``. Outputs with more than two dimensions
    are pooled to one vector per sample with ``pool`` (default ``"auto"``: the last token for decoders, the class
    token for models with one, else the mean over tokens or positions, see :func:`pnc.features.auto_pool`;
    ``"mean"``, ``"flatten"``, ``"first"``, ``"last"`` or a callable). With dict batches such as HuggingFace's
    ``({"input_ids": ..., "attention_mask": ...}, y)`` the padding tokens never enter a statistic. ``batch_fn``
    turns a batch that is not an ``(inputs, labels)`` pair into one; ``reused`` says what to do with a module called
    several times per pass (``"each"`` call is a row).

    Metric names: see :data:`pnc.registry.METRICS` (``"rank"`` fills the ``numerical_rank`` column, ``"nc1"`` fills
    ``nc1`` and ``nc1_rank``); ``metrics="all"`` computes every one (NC3/NC4 only if the model has a
    classifier). The default, :data:`DEFAULT_METRICS`, is the metrics that need no d×d scatter (C, D, CDNV,
    NC2), so a pass costs little more than the forward pass. ``between_centre`` centres $\\Sigma_B$ on the
    ``"sample_mean"`` (default) or the mean of the ``"class_means"`` (see :meth:`pnc.ClassStats.centre`). Layers
    that were skipped, and why, are listed in
    :attr:`LayerReport.notes`.

    ``nc3`` and ``nc4`` use the classifier: ``classifier`` (a module with a ``weight`` or a K×d weight), by default
    ``model.classifier`` when it is an ``nn.Linear``, else the model's last ``nn.Linear`` (see
    :func:`pnc.classifier.find_classifier`); they are reported at the row that feeds it. ``nc4`` reads the data twice
    (the
    nearest class mean needs the final means), so ``data`` must be re-iterable. ``coding_rate`` uses distortion
    ``coding_rate_eps`` (ε, not ε²).

    With ``distributed=True`` every process of the initialised ``torch.distributed`` group measures its own shard of
    the data and all of them get the table of the whole data (see :func:`pnc.distributed.all_reduce_stats`).

    **Token level** (a language model, as in "linguistic collapse"): with ``token_labels="next"`` every real token
    position is a sample whose class is the next token; the labels are shaped ``(batch, tokens)``, the sequence's own
    token ids (pnc shifts them: position t gets the token at t + 1, the last position has none and is not counted),
    and positions that are padding in the ``attention_mask``, or labelled -100, are left out. ``"aligned"`` takes
    labels already shifted. See :func:`pnc.features.token_targets`. The classes are then the vocabulary: every K×K
    computation runs in tiles of ``tile_size`` classes (default from :data:`pnc.metrics.PAIRWISE_BUDGET_BYTES`).
    """
    every = isinstance(metrics, str) and metrics == "all"
    has_classifier = classifier is not None or any(isinstance(m, nn.Linear) for m in model.modules())
    metrics = resolve_metrics(metrics, classifier=has_classifier or not every)  # "all" that this model has
    between_centre = M.check_centre(between_centre)
    _check_rank_threshold(rank_threshold)
    M.pairwise_tile_size(tile_size)
    need_cov = needs_scatter(metrics)
    forward = ForwardOptions(layers=layers, batch_size=batch_size, device=device, include_input=include_input,
                             layer_types=layer_types, pool=pool, batch_fn=batch_fn, reused=reused,
                             token_labels=token_labels)  # the same for both passes
    stats = collect_features(model, data, track_covariance=need_cov, max_cov_dim=max_cov_dim, **forward.kwargs())
    if distributed:
        from .distributed import all_reduce_stats

        notes = stats.notes
        stats = all_reduce_stats(stats)
        stats_notes = notes
    else:
        stats_notes = stats.notes
    first = next(iter(stats.values()))
    if len(first.classes) < 2:
        raise ValueError(f"the data hold a single class ({first.classes.tolist()}); collapse metrics compare classes, "
                         "so measure on data with at least two")
    row, weight, nc4_value = None, None, None
    if any(METRICS[m].needs_classifier for m in metrics):
        module, weight = find_classifier(model, classifier)
        row = classifier_input_row(stats, module, weight)
        if row is not None and len(weight) != first.num_classes:
            if len(weight) <= first.classes.max() or first.classes.min() < 0:
                raise ValueError(f"the classifier has {len(weight)} outputs for {first.num_classes} classes with "
                                 f"labels up to {first.classes.max()}; pass classifier= with one row per class")
            weight = weight[first.classes]
        if row is not None and any("predictions" in METRICS[m].statistics for m in metrics):
            nc4_value = prediction_disagreement(model, data, stats[row], row, distributed=distributed,
                                                tile_size=tile_size, **forward.kwargs())
    return report_from_stats(stats, metrics, rank_threshold=rank_threshold, between_centre=between_centre,
                             layer_notes=stats_notes, coding_rate_eps=coding_rate_eps, classifier_row=row,
                             classifier_weight=weight, nc4_value=nc4_value, tile_size=tile_size)
