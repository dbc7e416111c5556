"""Measure a model every k steps of your own training loop, into one table.

>>> tracker = Tracker(model, (X_val, y_val), every=100, metrics=("compression", "nc1"))   # doctest: +SKIP
>>> for step, batch in enumerate(loader):                                                # doctest: +SKIP
...     train_step(batch)
...     tracker.step(step)          # measures at steps 0, 100, 200, ... (eval mode, no gradients, modes restored)
>>> tracker.report.to_pandas()      # one row per (step, layer)                         # doctest: +SKIP
>>> steps, values = tracker.series("compression", "layer2.1")                           # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import check_int
from .report import LayerReport, measure

__all__ = ["Tracker"]


class Tracker:
    """Calls :func:`pnc.measure` on ``model`` and ``data`` every ``every`` steps and keeps every table.

    ``measure_options`` are passed to :func:`pnc.measure` (``metrics``, ``layers``, ``pool``, ...). Measuring puts
    the model in eval mode without gradients and gives every submodule its mode back, so it can sit inside a
    training loop; it does not touch the optimiser or BatchNorm statistics.
    """

    def __init__(self, model: Any, data: Any, every: int = 100, **measure_options: Any) -> None:
        self.model = model
        self.data = data
        self.every = check_int("every", every, 1)
        self.options = measure_options
        self.reports: list[tuple[int, LayerReport]] = []

    def step(self, step: int) -> LayerReport | None:
        """Measure if ``step`` is a multiple of ``every`` (returns the new table), else do nothing (``None``)."""
        step = check_int("step", step, 0)
        if step % self.every:
            return None
        return self.measure(step)

    def measure(self, step: int) -> LayerReport:
        """Measure now and record the table under ``step`` (steps must increase)."""
        step = check_int("step", step, 0)
        if self.reports and step <= self.reports[-1][0]:
            raise ValueError(f"step {step} is not after the last measured step {self.reports[-1][0]}")
        report = measure(self.model, self.data, **self.options)
        self.reports.append((step, report))
        return report

    @property
    def report(self) -> LayerReport:
        """All measurements as one table: a ``step`` column first, one row per (step, layer)."""
        if not self.reports:
            raise ValueError("nothing measured yet: call step() or measure() first")
        columns = ("step", *self.reports[0][1].columns)
        rows = tuple({"step": step, **row} for step, report in self.reports for row in report.rows)
        notes = tuple(dict.fromkeys(note for _, report in self.reports for note in report.notes))
        return LayerReport(columns=columns, rows=rows, notes=notes)

    def series(self, metric: str, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of one metric column at one layer over the measurements."""
        if not self.reports:
            raise ValueError("nothing measured yet: call step() or measure() first")
        steps, values = [], []
        for step, report in self.reports:
            if metric not in report.columns:
                raise ValueError(f"unknown metric column {metric!r}; columns: {list(report.columns)}")
            if layer not in report.names:
                raise ValueError(f"no layer {layer!r}; layers: {report.names}")
            value = report.row(layer)[metric]
            steps.append(step)
            values.append(np.nan if value is None else float(value))
        return np.asarray(steps), np.asarray(values)
