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
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import metrics as M
from .features import collect_features

__all__ = ["LayerReport", "measure", "report_from_stats", "AVAILABLE_METRICS", "DEFAULT_METRICS"]

DEFAULT_METRICS: tuple[str, ...] = ("compression", "discrimination", "nc1", "cdnv", "rank")

# metric name -> (columns it fills, needs the d×d scatter)
AVAILABLE_METRICS: dict[str, tuple[tuple[str, ...], bool]] = {
    "compression": (("compression",), False),
    "discrimination": (("discrimination",), False),
    "nc1": (("nc1", "nc1_rank"), True),
    "nc2": (("nc2_etf", "nc2_equinorm"), False),
    "cdnv": (("cdnv",), False),
    "rank": (("numerical_rank",), True),
    "effective_rank": (("effective_rank",), True),
}


@dataclass(frozen=True)
class LayerReport:
    """Immutable table with one row (a dict) per layer.

    ``report[i]`` is row i, ``report["compression"]`` (or ``report.column("compression")``) a column as a
    numpy array; missing values are NaN in columns and ``None`` in :meth:`to_dict`.
    """

    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self.column(key)
        return self.rows[key]

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
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [m for m in metrics if m not in AVAILABLE_METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {list(AVAILABLE_METRICS)}")
    return tuple(metrics)


def report_from_stats(
    stats: dict[str, M.ClassStats],
    metrics: Sequence[str] = DEFAULT_METRICS,
    rank_threshold: float = 0.95,
) -> LayerReport:
    """Build a :class:`LayerReport` from an ordered ``{name: ClassStats}`` mapping (layer index = position).

    A metric that is undefined for a layer (e.g. zero between-class scatter) is recorded as NaN, with a
    :class:`RuntimeWarning` and an explanation in the ``note`` column.
    """
    metrics = _check_metrics(metrics)
    columns = ["layer", "name", "dim"]
    for m in metrics:
        columns += list(AVAILABLE_METRICS[m][0])
    columns.append("note")

    def run(st: M.ClassStats, m: str) -> tuple[Any, ...]:
        if m == "compression":
            return (M.compression(st),)
        if m == "discrimination":
            return (M.discrimination(st),)
        if m == "nc1":
            return M.nc1(st, return_rank=True)
        if m == "nc2":
            return tuple(M.nc2(st))
        if m == "cdnv":
            return (M.cdnv(st),)
        if m == "rank":
            return (M.rank_from_singular_values(M.singular_values(st), rank_threshold),)
        if m == "effective_rank":
            return (M.effective_rank(st),)
        raise AssertionError(m)

    rows = []
    for i, (name, st) in enumerate(stats.items()):
        row: dict[str, Any] = {"layer": i, "name": name, "dim": st.dim}
        notes = []
        for m in metrics:
            cols = AVAILABLE_METRICS[m][0]
            try:
                vals = run(st, m)
            except ValueError as err:
                vals = (math.nan,) * len(cols)
                notes.append(f"{m}: {err}")
                warnings.warn(f"layer {i} ({name}): {m} undefined: {err}", RuntimeWarning, stacklevel=3)
            for c, v in zip(cols, vals, strict=True):
                row[c] = int(v) if isinstance(v, (int, np.integer)) else float(v)
        row["note"] = "; ".join(notes)
        rows.append(row)
    return LayerReport(columns=tuple(columns), rows=tuple(rows))


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
) -> LayerReport:
    """Measure collapse metrics at every layer of ``model`` in one pass over ``data``.

    Row 0 is the flattened input (named ``"input"``) when ``include_input``; the other rows follow
    :func:`pnc.features.collect_features`'s layer order. Metric names: see :data:`AVAILABLE_METRICS`
    (``"rank"`` fills the ``numerical_rank`` column, ``"nc1"`` fills ``nc1`` and ``nc1_rank``).
    """
    metrics = _check_metrics(metrics)
    need_cov = any(AVAILABLE_METRICS[m][1] for m in metrics)
    stats = collect_features(
        model, data, layers=layers, batch_size=batch_size, device=device, include_input=include_input,
        track_covariance=need_cov, max_cov_dim=max_cov_dim,
    )
    return report_from_stats(stats, metrics, rank_threshold=rank_threshold)
