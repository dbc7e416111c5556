"""Shared helpers for the benchmarks: timing, result tables and the markdown report."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


def sync(device: str) -> None:
    """Wait for queued GPU work so wall-clock times are honest."""
    if device == "cuda":
        torch.cuda.synchronize()


def timeit(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1, device: str = "cpu") -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fmt_time(seconds: float) -> str:
    """Human-readable duration."""
    if seconds != seconds:  # NaN
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def fmt_bytes(n: float) -> str:
    """Human-readable size in MiB."""
    return f"{n / 2**20:.1f} MiB"


@dataclass
class Row:
    """One line of a result table: what was measured, against what, and the goal if there is one."""

    what: str
    measured: str
    reference: str = ""
    ratio: str = ""
    goal: str = ""
    ok: bool | None = None  # None: informational, no goal

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("PASS" if self.ok else "FAIL")


@dataclass
class Section:
    """A benchmark's result: a title, a paragraph of setup, a table and free-form notes."""

    title: str
    setup: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra_md: str = ""
    seconds: float = 0.0

    def add(self, *args: Any, **kwargs: Any) -> Row:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        return row

    @property
    def goals(self) -> list[bool]:
        return [r.ok for r in self.rows if r.ok is not None]

    def markdown(self) -> str:
        out = [f"## {self.title}", "", self.setup, ""]
        if self.rows:
            out += [
                "| measured | value | reference | ratio | goal | result |",
                "|---|---:|---:|---:|---|---|",
            ]
            for r in self.rows:
                out.append(f"| {r.what} | {r.measured} | {r.reference} | {r.ratio} | {r.goal} | {r.verdict} |")
            out.append("")
        if self.extra_md:
            out += [self.extra_md, ""]
        for n in self.notes:
            out.append(f"- {n}")
        if self.notes:
            out.append("")
        out.append(f"*(section ran in {fmt_time(self.seconds)})*")
        out.append("")
        return "\n".join(out)


def ratio_row(
    section: Section, what: str, t: float, t_ref: float, ref_name: str, goal: float | None, *, at_most: bool = True,
    ratio: float | None = None,
) -> Row:
    """Add a row comparing time ``t`` with ``t_ref``; the goal is ``t/t_ref <= goal`` (or ``t_ref/t >= goal``).

    ``ratio`` overrides ``t/t_ref`` (e.g. a median of per-round ratios of interleaved runs)."""
    if at_most:
        r = t / t_ref if ratio is None else ratio
        goal_s = "" if goal is None else f"≤ {goal:g}× {ref_name}"
        ok = None if goal is None else r <= goal
        return section.add(what, fmt_time(t), f"{fmt_time(t_ref)} ({ref_name})", f"{r:.2f}×", goal_s, ok)
    r = t_ref / t
    goal_s = "" if goal is None else f"≥ {goal:g}× faster than {ref_name}"
    ok = None if goal is None else r >= goal
    return section.add(what, fmt_time(t), f"{fmt_time(t_ref)} ({ref_name})", f"{r:.0f}× faster", goal_s, ok)
