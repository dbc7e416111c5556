"""The autograder of the book's coding exercises: a checker per exercise and a runner over a folder of submissions.

Every coding exercise of chapters 1-9 says what to submit (named variables) and what counts as correct (the tolerance
its solution asserts). :data:`EXERCISES` holds one :class:`Exercise` per such exercise: the variables it reads, the
points of its statement, and a checker that grades the automatic part of those points, criterion by criterion
(:func:`check`). The rest of the points (proofs, sentences) are graded by hand with the exercise's grading note.

A submission is a student's ``.py`` file or notebook holding the code of one exercise, in
``FOLDER/<student>/<exercise label>.py`` (or ``.ipynb``), e.g. ``submissions/ada/ex-ch2-cdnv.ipynb``.
:func:`grade_folder` runs each one in a fresh Python process after its chapter's setup (the chapter's first code
cell, the imports or the loading of the chapter's runs: every coding exercise is self-contained after it), reads the
named variables back and checks them. Where a statement says so, a checker compares a value with its own run of the
exercise's recipe (once per grading process, seconds each). It returns one :class:`Row` per student and exercise;
:func:`write_csv` and :func:`summary` give the grade table. The command line:
``python -m pnc.book grade FOLDER --out grades.csv`` (``python -m pnc.book grade --list`` lists the exercises).

It runs the students' code with the instructor's rights, offline, as running their notebooks would: grade in a
container or a throwaway account if that matters. :func:`write_solutions` writes the book's own solutions as one
student's submissions, a folder to try the grader on.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "EXERCISES",
    "Exercise",
    "Grade",
    "Part",
    "Row",
    "check",
    "default_chapters",
    "exercise_code",
    "find_submissions",
    "grade_folder",
    "grade_submission",
    "summary",
    "write_csv",
    "write_solutions",
]

SUFFIXES = (".py", ".ipynb")


class _Reject(Exception):
    """A criterion is not met; the message says why."""


@dataclass(frozen=True)
class Part:
    """One graded criterion of an exercise: its points, the points earned and why."""

    name: str
    points: float
    earned: float
    reason: str


@dataclass(frozen=True)
class Grade:
    """The automatic grade of one answer to one exercise."""

    exercise: str
    parts: tuple[Part, ...]
    error: str = ""

    @property
    def earned(self) -> float:
        """Points earned by the answer."""
        return float(sum(p.earned for p in self.parts))

    @property
    def points(self) -> float:
        """Points the checker grades (the rest of the exercise's points are graded by hand)."""
        return float(sum(p.points for p in self.parts))

    @property
    def passed(self) -> bool:
        """Whether every criterion is met."""
        return not self.error and all(p.earned == p.points for p in self.parts)

    @property
    def reason(self) -> str:
        """The error, or the reasons of the criteria not met ("all criteria met" if none)."""
        if self.error:
            return self.error
        failed = [f"{p.name}: {p.reason}" for p in self.parts if p.earned < p.points]
        return "; ".join(failed) if failed else "all criteria met"


Check = Callable[[Mapping[str, Any], str], list[Part]]


@dataclass(frozen=True)
class Exercise:
    """A coding exercise the grader checks.

    ``points`` is the exercise's total in its statement; the checker grades ``auto_points`` of them. An answer runs
    after the chapter's first code cell; ``context`` names chapter variables the checker reads besides the submitted
    ``variables``.
    """

    label: str
    chapter: str
    points: int
    variables: tuple[str, ...]
    checker: Check
    auto_points: float
    context: tuple[str, ...] = ()


# --- helpers for the checkers --------------------------------------------------------------------------------------


def _get(answer: Mapping[str, Any], name: str) -> Any:
    if name not in answer:
        raise _Reject(f"`{name}` is not defined")
    return answer[name]


def _float(answer: Mapping[str, Any], name: str) -> float:
    value = _get(answer, name)
    try:
        out = float(np.asarray(value, dtype=float).reshape(()))
    except (TypeError, ValueError):
        raise _Reject(f"`{name}` should be a number, got {type(value).__name__}") from None
    if not math.isfinite(out):
        raise _Reject(f"`{name}` is {out}")
    return out


def _array(answer: Mapping[str, Any], name: str, length: int | None = None, ndim: int = 1) -> np.ndarray:
    value = _get(answer, name)
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        out = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise _Reject(f"`{name}` should be an array of numbers, got {type(value).__name__}") from None
    if out.ndim != ndim:
        raise _Reject(f"`{name}` should have {ndim} dimension(s), got shape {out.shape}")
    if length is not None and out.shape[0] != length:
        raise _Reject(f"`{name}` should have {length} entries, got {out.shape[0]}")
    if not np.all(np.isfinite(out)):
        raise _Reject(f"`{name}` holds a NaN or an infinity")
    return out


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise _Reject(reason)


def _part(name: str, points: float, test: Callable[[], str]) -> Part:
    try:
        detail = test()
    except _Reject as rejected:
        return Part(name, points, 0.0, str(rejected))
    except Exception as exc:  # a student's value that breaks the check itself
        return Part(name, points, 0.0, f"{type(exc).__name__}: {exc}")
    return Part(name, points, points, detail)


def _close(value: float, reference: float, rtol: float) -> bool:
    return abs(value - reference) <= rtol * abs(reference)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run a reference computation on one torch thread (as the chapters do: fastest for these tiny models), then
    give the caller its setting back."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _rerun(name: str, value: float, reference: float, rtol: float = 1e-3) -> None:
    """``value`` agrees with the grader's own run of the exercise's recipe to a relative ``rtol``."""
    tolerance = f"{rtol:.0e}".replace("e-0", "e-")   # 1e-3, as the statements write it
    _require(_close(value, reference, rtol), f"{name} = {value:.6g} is not the value of the stated recipe, which the "
             f"grader reruns ({reference:.6g}), to a relative {tolerance}")


# --- the checkers, one per exercise (each criterion is the statement's "Correct if", with its points) ---------------


def _check_ch1_code(a: Mapping[str, Any], source: str) -> list[Part]:
    def same() -> str:
        raw, wide = _float(a, "acc_raw"), _float(a, "acc_wide")
        _require(0 < raw <= 1, f"acc_raw = {raw} is not an accuracy in (0, 1]")
        _require(abs(wide - raw) < 1e-9, f"|acc_wide - acc_raw| = {abs(wide - raw):.2e}, not below 1e-9")
        return f"acc_raw = acc_wide = {raw:.4f}"

    def narrow() -> str:
        raw, small = _float(a, "acc_raw"), _float(a, "acc_narrow")
        _require(small < raw, f"acc_narrow = {small:.4f} is not below acc_raw = {raw:.4f}")
        return f"acc_narrow = {small:.4f} < acc_raw"

    return [_part("acc_raw and acc_wide agree to 1e-9", 2, same), _part("acc_narrow < acc_raw", 1, narrow)]


def _check_ch2_cdnv(a: Mapping[str, Any], source: str) -> list[Part]:
    def test() -> str:
        from pnc import compression, data, metrics

        lhs, rhs = _float(a, "lhs"), _float(a, "rhs")
        X, y = data.gaussian_mixture(400, 5, 30, 1.0, 0.3, seed=1)
        ref_lhs, ref_rhs = metrics.cdnv(X, y), 4 / 10 * compression(X, y)
        _require(_close(lhs, ref_lhs, 1e-6),
                 f"lhs = {lhs:.6g} is not metrics.cdnv of the stated mixture ({ref_lhs:.6g})")
        _require(_close(rhs, ref_rhs, 1e-6),
                 f"rhs = {rhs:.6g} is not (K-1)/(2K) C of the stated mixture ({ref_rhs:.6g})")
        _require(abs(lhs / rhs - 1) < 0.02, f"|lhs/rhs - 1| = {abs(lhs / rhs - 1):.4f}, not below 0.02")
        return f"lhs/rhs = {lhs / rhs:.4f}"

    return [_part("|lhs/rhs - 1| < 0.02 on the stated mixture", 1, test)]


_CH3_RATES = (0.1, 0.05, 0.025)
_CH3_TIME = 6.0   # the training time eta * steps of every run


@functools.lru_cache(maxsize=1)
def _ch3_reference() -> tuple[tuple[float, float], ...]:
    """(eta, largest drift) of the exercise's runs: its data, network and training, eta * steps = 6, every 10 steps."""
    from pnc import data, models, train
    from pnc.book import dln

    X, y = data.orthogonal_dataset(n_per_class=10, n_classes=3, dim=50, seed=1)
    config = train.TrainConfig(optimizer="gd", alpha=100.0, schedule="constant", loss_tol=None)
    out = []
    with _one_thread():
        for lr in _CH3_RATES:
            net = models.DeepLinearNetwork(50, 50, 3, depth=4, init="orthogonal", xi=0.3, seed=1)
            run = dln.train_tracked(net, X, y, config.replace(lr=lr, epochs=round(_CH3_TIME / lr)), every=10)
            out.append((lr, float(run.drift.max())))
    return tuple(out)


def _check_ch3_drift(a: Mapping[str, Any], source: str) -> list[Part]:
    def by_rate(name: str) -> Mapping[Any, Any]:
        value = _get(a, name)
        _require(isinstance(value, Mapping),
                 f"`{name}` should be a dict from the learning rate, got {type(value).__name__}")
        _require(set(value) == set(_CH3_RATES),
                 f"`{name}` should have the keys 0.1, 0.05, 0.025, got {sorted(value, key=str)}")
        return value

    def same_time() -> str:
        steps = by_rate("steps")
        n = {lr: _float(steps, lr) for lr in _CH3_RATES}
        if len(set(n.values())) == 1:
            raise _Reject(f"steps = {n[0.1]:g} at every eta: runs over the same number of steps, not the same time "
                          f"eta * steps = {_CH3_TIME:g}")
        off = [f"{lr * v:g} at eta = {lr}" for lr, v in n.items() if abs(lr * v - _CH3_TIME) > 1e-9]
        _require(not off, f"eta * steps is {', '.join(off)}, not {_CH3_TIME:g}")
        return f"eta * steps = {_CH3_TIME:g} at every eta"

    def values() -> str:
        drifts = by_rate("drifts")
        submitted = {lr: _float(drifts, lr) for lr in _CH3_RATES}
        for lr, ref in _ch3_reference():   # the grader's own runs of the stated recipe (about a second)
            rel = abs(submitted[lr] / ref - 1)
            _require(rel < 1e-3, f"drifts[{lr}] = {submitted[lr]:.5g} is {rel:.2%} from the largest drift of the "
                     f"stated run ({ref:.5g}), not within a relative 1e-3")
        return "every entry within 1e-3 of the stated runs"

    def ratio() -> str:
        drifts = by_rate("drifts")
        r = _float(drifts, 0.1) / _float(drifts, 0.05)
        _require(1.5 < r < 2.6, f"drifts[0.1] / drifts[0.05] = {r:.3f}, not in (1.5, 2.6)")
        return f"drifts[0.1] / drifts[0.05] = {r:.3f}"

    def slope() -> str:
        drifts, s = by_rate("drifts"), _float(a, "drift_slope")
        _require(abs(s - 1) < 0.3, f"drift_slope = {s:.3f}, not within 0.3 of 1")
        lrs = np.array(sorted(_CH3_RATES))
        fitted = float(np.polyfit(np.log(lrs), np.log([_float(drifts, lr) for lr in lrs]), 1)[0])
        _require(abs(fitted - s) < 1e-6, f"drift_slope = {s:.4f} is not the log-log slope of `drifts` ({fitted:.4f})")
        return f"slope {s:.3f}"

    return [_part("steps: eta * steps = 6 at every eta", 1, same_time),
            _part("drifts: the stated runs' largest drifts, to a relative 1e-3", 1, values),
            _part("1.5 < drifts[0.1]/drifts[0.05] < 2.6", 0.5, ratio), _part("|drift_slope - 1| < 0.3", 0.5, slope)]


@functools.lru_cache(maxsize=1)
def _ch4_fitted_ratio() -> float:
    """The fitted per-layer ratio of C_l of the exercise's recipe (xi = 0.2; about a second)."""
    import pnc
    from pnc import data, models, plotting, train

    X, y = data.orthogonal_dataset(n_per_class=10, n_classes=3, dim=50, seed=1)
    net = models.DeepLinearNetwork(in_dim=50, width=50, n_classes=3, depth=6, init="orthogonal", xi=0.2, seed=1)
    config = train.TrainConfig(optimizer="gd", lr=0.1, loss="mse", alpha=100.0, epochs=5000, schedule="cosine",
                               loss_tol=1e-11, seed=1)
    with _one_thread():
        train.train(net, X, y, config)
        return float(plotting.fit_geometric_rate(pnc.measure(net, (X, y)).column("compression"))[0])


def _check_ch4_code(a: Mapping[str, Any], source: str) -> list[Part]:
    def trained() -> str:
        fitted = _float(a, "fitted_ratio")
        _rerun("fitted_ratio", fitted, _ch4_fitted_ratio())
        return f"fitted_ratio = {fitted:.4f}, the recipe's"

    def test() -> str:
        from pnc import theory

        fitted, kappa = _float(a, "fitted_ratio"), theory.compression_ratio(0.2, 10, 6, 100.0)
        _require(abs(fitted / kappa - 1) < 0.05, f"fitted_ratio = {fitted:.4f} is {abs(fitted / kappa - 1):.1%} from "
                 f"kappa = {kappa:.4f}, not within 5%")
        return f"fitted_ratio = {fitted:.4f}, kappa = {kappa:.4f}"

    return [_part("fitted_ratio: the recipe's, to a relative 1e-3", 2, trained),
            _part("|fitted_ratio/kappa - 1| < 0.05", 2, test)]


@functools.lru_cache(maxsize=1)
def _ch4_discrimination_reference() -> tuple[float, float, float]:
    """(deviation[4], deviation[8], slope_ratio) of the exercise's two runs of the recipe (about two seconds)."""
    from pnc import plotting
    from pnc.book import recipes

    with _one_thread():
        runs = [recipes.run_recipe(xi=0.3, n=10, L=depth, alpha=100.0, seed=1) for depth in (4, 8)]
    devs = [float(np.abs(r.discrimination - (1 - (1 - np.arange(r.L) / r.L) * r.max_E)).max()) for r in runs]
    slopes = [plotting.fit_linear(r.discrimination)[0] for r in runs]
    return devs[0], devs[1], float(slopes[0] / slopes[1])


def _check_ch4_discrimination(a: Mapping[str, Any], source: str) -> list[Part]:
    def deviation(depth: int) -> Callable[[], str]:
        def test() -> str:
            dev = _get(a, "deviation")
            _require(isinstance(dev, Mapping) and depth in dev, f"`deviation` should be a dict with the key {depth}")
            value = _float(dev, depth)
            _require(0 <= value < 0.01, f"deviation[{depth}] = {value:.4g}, not in [0, 0.01)")
            _rerun(f"deviation[{depth}]", value, _ch4_discrimination_reference()[0 if depth == 4 else 1])
            return f"deviation[{depth}] = {value:.4g}"

        return test

    def slope() -> str:
        r = _float(a, "slope_ratio")
        _require(1.7 < r < 2.3, f"slope_ratio = {r:.3f}, not in (1.7, 2.3)")
        _rerun("slope_ratio", r, _ch4_discrimination_reference()[2])
        return f"slope_ratio = {r:.3f}"

    return [_part("deviation[4] < 0.01, the recipe's to a relative 1e-3", 1, deviation(4)),
            _part("deviation[8] < 0.01, the recipe's to a relative 1e-3", 1, deviation(8)),
            _part("1.7 < slope_ratio < 2.3, the recipe's to a relative 1e-3", 1, slope)]


def _ch4b_reference() -> np.ndarray:
    from pnc import data, metrics, theory

    X, y = data.orthogonal_dataset(n_per_class=10, n_classes=3, dim=50, perturbation=0.3, seed=0)
    weights = theory.balanced_min_norm_network(X, y, L=6, eps=0.3, alpha=100.0)
    return np.array([metrics.compression(z, y) for z in theory.layer_features(weights, X)])


def _check_ch5_code(a: Mapping[str, Any], source: str) -> list[Part]:
    def measured() -> str:
        m, ref = _array(a, "measured", 6), _ch4b_reference()
        worst = float(np.max(np.abs(m / ref - 1)))
        _require(worst < 1e-6, f"`measured` differs from C_l of the stated construction by {worst:.1e} (relative)")
        return "the six C_l of the construction"

    def predicted() -> str:
        _require("perturbation_law" not in source, "`predicted` must be written out, not theory.perturbation_law")
        m, p = _array(a, "measured", 6), _array(a, "predicted", 6)
        _require(not np.array_equal(p, m), "`predicted` is `measured` itself (equal in every bit), not the closed "
                 "form: a closed form written out with numpy differs from the measurement in the last digits")
        worst = float(np.max(np.abs(p / m - 1)))
        _require(worst < 1e-8, f"max |predicted/measured - 1| = {worst:.1e}, not below 1e-8")
        return f"max |predicted/measured - 1| = {worst:.1e}"

    return [_part("measured: C_l of the construction", 2, measured),
            _part("max |predicted/measured - 1| < 1e-8", 4, predicted)]


@functools.lru_cache(maxsize=1)
def _ch6_measured() -> float:
    """C_1/C_0 of the recipe trained 300 steps with weight decay 0.03 (one training, about two seconds)."""
    from pnc.book import assumptions

    with _one_thread():
        return float(assumptions.failure_run("weight decay", 0.03).result.ratios[0])


def _check_ch6_weight_decay(a: Mapping[str, Any], source: str) -> list[Part]:
    def predicted() -> str:
        from pnc import theory
        from pnc.book import assumptions

        p = _float(a, "predicted")
        ref = theory.compression_ratio(assumptions.weight_decay_eps(0.3, 0.03, lr=0.1, epochs=300), 10, 6, 100.0)
        _require(_close(p, ref, 1e-6), f"predicted = {p:.4f}, the law with the decayed epsilon gives {ref:.4f}")
        return f"predicted = {p:.4f}"

    def measured() -> str:
        p, m = _float(a, "predicted"), _float(a, "measured")
        _require(abs(m / p - 1) < 0.05, f"measured = {m:.4f} is {abs(m / p - 1):.1%} from predicted, not within 5%")
        _rerun("measured", m, _ch6_measured())
        return f"measured = {m:.4f}"

    return [_part("predicted from the decayed epsilon", 2, predicted),
            _part("measured: the run's, within 5% of predicted", 2, measured)]


def _check_ch7_ratio(a: Mapping[str, Any], source: str) -> list[Part]:
    def test() -> str:
        two, lsq = _array(a, "two_point", 3), _array(a, "least_squares", 3)
        _require(bool(np.all(two > 0) and np.all(lsq > 0)), "the ratios must be positive")
        worst = float(np.max(np.abs(two / lsq - 1)))
        _require(worst < 0.1, f"max |two_point/least_squares - 1| = {worst:.3f}, not below 0.1")
        return f"max |two_point/least_squares - 1| = {worst:.3f}"

    return [_part("|two_point/least_squares - 1| < 0.1 for every seed", 2, test)]


def _check_ch7_code(a: Mapping[str, Any], source: str) -> list[Part]:
    def order() -> str:
        settle, met = _array(a, "settle", 3), _array(a, "met", 3)
        _require(bool(np.all(settle >= met)), f"the ratio settles (epochs {settle.tolist()}) before the fit "
                 f"criterion is met (epochs {met.tolist()})")
        return f"settle {settle.astype(int).tolist()} >= met {met.astype(int).tolist()}"

    def spread() -> str:
        settle = _array(a, "settle", 3)
        _require(float(settle.max() - settle.min()) <= 30, f"the settling epochs {settle.tolist()} differ by more "
                 "than 30")
        return f"spread {settle.max() - settle.min():.0f} epochs"

    return [_part("settle >= met for every seed", 3, order), _part("settling epochs within 30", 3, spread)]


def _ch8_tolerated(runs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Per seed and head: the largest recorded ridge whose accuracy is within one point of the weakest ridge's."""
    grid = list(runs[0]["heads"][0]["transfer_accuracy_by_ridge"])
    ridges = np.array([float(lam) for lam in grid])
    recorded = np.array([[[float(head["transfer_accuracy_by_ridge"][lam]) for head in r["heads"]] for r in runs]
                         for lam in grid])                                       # (ridges, seeds, h)
    within = recorded >= recorded[int(np.argmin(ridges))][None] - 0.01
    return np.array([[ridges[within[:, s, h]].max() for h in range(within.shape[2])] for s in range(within.shape[1])])


def _check_ch8_code(a: Mapping[str, Any], source: str) -> list[Part]:
    def rows() -> str:
        t = _array(a, "tolerated", ndim=2)
        _require(t.shape[1] == 5, f"`tolerated` should have 5 columns (h = 1..5), got shape {t.shape}")
        _require(bool(np.all(np.diff(t, axis=1) >= 0)), "a row of `tolerated` decreases with h")
        ref = _ch8_tolerated(_get(a, "cut100_runs"))   # the chapter's runs: their recorded accuracies
        _require(t.shape == ref.shape and bool(np.allclose(t, ref, rtol=1e-9, atol=0)),
                 f"`tolerated` is not what the recorded accuracies give: {ref.tolist()}")
        return "the recorded runs' values, every row non-decreasing"

    def factor() -> str:
        t = _array(a, "tolerated", ndim=2)
        _require(bool(np.all(t[:, -1] >= 100 * t[:, 0])),
                 "a row's value at h = 5 is below 100 times its value at h = 1")
        return "h = 5 at least 100 times h = 1"

    def weakest() -> str:
        t = _array(a, "tolerated", ndim=2)
        runs = _get(a, "cut100_runs")   # the chapter's runs: the grid of recorded ridges
        weakest_ridge = min(float(r) for r in runs[0]["heads"][0]["transfer_accuracy_by_ridge"])
        _require(bool(np.all(t[:, 0] == weakest_ridge)), f"at h = 1 the tolerated ridges are {t[:, 0].tolist()}, "
                 f"not the weakest recorded {weakest_ridge:g}")
        return f"h = 1: {weakest_ridge:g}"

    return [_part("the runs' values, rows non-decreasing", 1, rows), _part("h = 5 >= 100 x h = 1", 1, factor),
            _part("h = 1: only the weakest ridge", 1, weakest)]


def _ch8_reference() -> np.ndarray:
    import pnc
    from pnc import data

    X, y = data.orthogonal_dataset(n_per_class=6, n_classes=4, dim=40, perturbation=0.0, seed=0)
    weights = pnc.theory.balanced_min_norm_network(X, y, L=5, eps=0.2)
    return np.array([pnc.compression(z, y) for z in pnc.theory.layer_features(weights, X)])


def _check_ch9_nc1_zero(a: Mapping[str, Any], source: str) -> list[Part]:
    def values() -> str:
        ref = _ch8_reference()
        c = _array(a, "c_layers", len(ref))
        _array(a, "nc1_layers", len(ref))
        _array(a, "fuzz_layers", len(ref))
        worst = float(np.max(np.abs(c / ref - 1)))
        _require(worst < 1e-6, f"`c_layers` is not C_l of the stated network (relative difference {worst:.1e})")
        return f"{len(ref)} layers"

    def nc1() -> str:
        c, v = _array(a, "c_layers"), _array(a, "nc1_layers", len(_array(a, "c_layers")))
        bad = np.flatnonzero(~(v < 1e-12 * c))
        _require(bad.size == 0, f"NC1 is not below 1e-12 C_l at layer(s) {bad.tolist()}")
        return "NC1 < 1e-12 C_l at every layer"

    return [_part("the values of the stated network", 1, values), _part("NC1 < 1e-12 C_l", 1, nc1)]


@functools.lru_cache(maxsize=1)
def _ch9_step_ratio() -> float:
    """The exercise's ratio of the largest gaps at tau = 100 and tau = 200 (two runs of the Saxe experiment)."""
    from pnc import data, models
    from pnc.book import dynamics

    X, y = data.orthogonal_dataset([4, 16, 36], 3, dim=64, perturbation=0.0, seed=0)
    gaps = []
    with _one_thread():
        for tau, steps, every in ((100.0, 300, 5), (200.0, 600, 20)):
            net = models.DeepLinearNetwork(64, 32, 3, depth=2, init="orthogonal", xi=0.1, seed=0)
            gaps.append(dynamics.trace_modes(net, X, y, lr=X.shape[0] / (2 * tau), steps=steps,
                                             every=every).max_abs_error)
    return float(gaps[0] / gaps[1])


def _check_ch9_step(a: Mapping[str, Any], source: str) -> list[Part]:
    def test() -> str:
        r = _float(a, "ratio")
        _require(1.6 < r < 2.4, f"ratio = {r:.3f}, not in (1.6, 2.4)")
        _rerun("ratio", r, _ch9_step_ratio())
        return f"ratio = {r:.3f}"

    return [_part("1.6 < ratio < 2.4, the recipe's to a relative 1e-3", 2, test)]


def _check_ch9_imbalanced(a: Mapping[str, Any], source: str) -> list[Part]:
    def test() -> str:
        import pnc

        feats, labels = _array(a, "feats_imb", ndim=2), np.asarray(_get(a, "labels_imb"))
        _require(labels.shape == (feats.shape[0],), "`labels_imb` should hold one label per row of `feats_imb`")
        sizes = sorted(np.unique(labels, return_counts=True)[1].tolist())
        _require(sizes == [5, 20, 40], f"the classes have sizes {sizes}, not 5, 20 and 40")
        fuzz, three = _float(a, "fuzziness"), _float(a, "three_nc1")
        ref_fuzz = pnc.metrics.separation_fuzziness(feats, labels)
        ref_three = 3 * pnc.nc1(feats, labels)
        _require(_close(fuzz, ref_fuzz, 1e-6) and _close(three, ref_three, 1e-6),
                 f"`fuzziness` and `three_nc1` are not the metrics of the submitted features ({ref_fuzz:.4g}, "
                 f"{ref_three:.4g})")
        _require(abs(fuzz / three - 1) > 0.1, f"|fuzziness / (3 NC1) - 1| = {abs(fuzz / three - 1):.3f}, not above 0.1")
        return f"fuzziness / (3 NC1) = {fuzz / three:.3f}"

    return [_part("Fuzz and 3 NC1 differ by more than 10%", 2, test)]


@functools.lru_cache(maxsize=1)
def _ch10_reference() -> tuple[float, float]:
    """(c_train, c_test): compression of row ``features.2`` of the exercise's network, trained by its recipe, on the
    training and on the held-out digits (float64, seeded; under a second)."""
    import torch

    import pnc
    from pnc import data, models, train

    X_fit, y_fit = data.load_digits("train", seed=0, dtype=torch.float64)
    X_held, y_held = data.load_digits("test", seed=0, dtype=torch.float64)
    net = models.MLP(64, 64, 10, depth=4, init="default", batch_norm=False, seed=0, dtype=torch.float64)
    with _one_thread():
        train.train(net, X_fit, y_fit, train.TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=64,
                                                         epochs=15, loss="cross_entropy", seed=0))
        on_train, on_test = (float(pnc.measure(net, split)["features.2"]["compression"])
                             for split in ((X_fit, y_fit), (X_held, y_held)))
    return on_train, on_test


def _check_ch10_train_test(a: Mapping[str, Any], source: str) -> list[Part]:
    def split(name: str, which: int) -> Callable[[], str]:
        def test() -> str:
            value = _float(a, name)
            refs = _ch10_reference()
            rel = abs(value / refs[which] - 1)
            if rel >= 1e-3:
                other = ("c_train", "c_test")[1 - which]
                hint = (f" (that is the recipe's `{other}`: the other split)"
                        if abs(value / refs[1 - which] - 1) < 1e-3 else "")
                raise _Reject(f"{name} = {value:.5g} is {rel:.2%} from the recipe's value ({refs[which]:.5g}), not "
                              f"within a relative 1e-3{hint}")
            return f"{name} = {value:.4f}"

        return test

    return [_part("c_train: the recipe's value on the training images, to a relative 1e-3", 1, split("c_train", 0)),
            _part("c_test: the recipe's value on the held-out images, to a relative 1e-3", 1, split("c_test", 1))]


def _check_ch10_twice(a: Mapping[str, Any], source: str) -> list[Part]:
    def names() -> str:
        got = _get(a, "names")
        _require(list(got) == ["input", "0", "0#2"], f"names = {list(got)}, not ['input', '0', '0#2']")
        return "['input', '0', '0#2']"

    def by_hand() -> str:
        hand, reported = _float(a, "by_hand"), _float(a, "reported")
        _require(_close(hand, reported, 1e-6), f"by_hand = {hand:.6g} differs from row 0#2's {reported:.6g} by more "
                 "than a relative 1e-6")
        return f"by_hand = {hand:.6g}"

    return [_part("the row names", 1, names), _part("the second row by hand, to 1e-6", 2, by_hand)]


def _check_ch10_mean(a: Mapping[str, Any], source: str) -> list[Part]:
    def test() -> str:
        feats, labels = _array(a, "offset_features", ndim=2), np.asarray(_get(a, "labels_one")).ravel()
        _require(labels.shape == (feats.shape[0],), "`labels_one` should hold one label per row of `offset_features`")
        _require(float(np.abs(feats).mean()) >= 1e6, "the features should carry a large common offset (>= 1e6)")
        _float(a, "naive")
        stable = _float(a, "stable")
        _require("ClassStats" in source, "`stable` should come from pnc.ClassStats, which the code does not use")
        true = float(np.var(feats[labels == labels.min()]))
        _require(abs(stable / true - 1) < 1e-8, f"stable = {stable:.10g}, np.var gives {true:.10g}: not within 1e-8")
        return f"stable = {stable:.6f}"

    return [_part("ClassStats's variance = np.var to 1e-8", 1, test)]


def _exercises() -> dict[str, Exercise]:
    specs = [
        Exercise("ex-ch1-code", "01_hierarchical_features", 5, ("acc_raw", "acc_wide", "acc_narrow"),
                 _check_ch1_code, 3),
        Exercise("ex-ch2-cdnv", "02_measuring", 4, ("lhs", "rhs"), _check_ch2_cdnv, 1),
        Exercise("ex-ch3-drift", "03_deep_linear_networks", 5, ("steps", "drifts", "drift_slope"),
                 _check_ch3_drift, 3),
        Exercise("ex-ch4-code", "04_progressive_compression", 4, ("fitted_ratio",), _check_ch4_code, 4),
        Exercise("ex-ch4-discrimination-depth", "04_progressive_compression", 5, ("deviation", "slope_ratio"),
                 _check_ch4_discrimination, 3),
        Exercise("ex-ch5-code", "05_perturbation", 6, ("measured", "predicted"), _check_ch5_code, 6),
        Exercise("ex-ch6-weight-decay", "06_assumptions", 4, ("predicted", "measured"), _check_ch6_weight_decay, 4),
        Exercise("ex-ch7-ratio", "07_nonlinear_hybrid", 6, ("two_point", "least_squares"), _check_ch7_ratio, 2),
        Exercise("ex-ch7-code", "07_nonlinear_hybrid", 6, ("settle", "met"), _check_ch7_code, 6),
        Exercise("ex-ch8-code", "08_transfer", 5, ("tolerated",), _check_ch8_code, 3, context=("cut100_runs",)),
        Exercise("ex-ch9-nc1-zero", "09_connections", 4, ("c_layers", "nc1_layers", "fuzz_layers"),
                 _check_ch9_nc1_zero, 2),
        Exercise("ex-ch9-step", "09_connections", 3, ("ratio",), _check_ch9_step, 2),
        Exercise("ex-ch9-imbalanced", "09_connections", 4, ("feats_imb", "labels_imb", "fuzziness", "three_nc1"),
                 _check_ch9_imbalanced, 2),
        Exercise("ex-ch10-train-test", "10_measure_your_model", 3, ("c_train", "c_test"), _check_ch10_train_test, 2),
        Exercise("ex-ch10-twice", "10_measure_your_model", 4, ("names", "by_hand", "reported"), _check_ch10_twice, 3),
        Exercise("ex-ch10-mean", "10_measure_your_model", 3, ("offset_features", "labels_one", "naive", "stable"),
                 _check_ch10_mean, 1),
    ]
    return {spec.label: spec for spec in specs}


EXERCISES: dict[str, Exercise] = _exercises()


def _exercise(label: str) -> Exercise:
    if label not in EXERCISES:
        raise ValueError(f"no checker for exercise {label!r}; the graded coding exercises are: "
                         f"{', '.join(EXERCISES)}")
    return EXERCISES[label]


def check(label: str, answer: Mapping[str, Any], source: str = "") -> Grade:
    """Grade ``answer`` (the submitted variables by name) to exercise ``label``; ``source`` is the submitted code.

    A missing or malformed variable fails its criterion with the reason; an unknown label or an ``answer`` that is
    not a mapping is a ``ValueError``.
    """
    spec = _exercise(label)
    if not isinstance(answer, Mapping):
        raise ValueError(f"answer must be a mapping from variable names to values, got {type(answer).__name__}")
    return Grade(label, tuple(spec.checker(answer, source)))


# --- the chapters: setup code and the book's solutions --------------------------------------------------------------


def default_chapters() -> Path:
    """The book's ``chapters`` folder next to the ``pnc`` package (a source checkout)."""
    return Path(__file__).resolve().parents[2] / "chapters"


def _cells(chapter: str, chapters: Path | None) -> list[dict[str, Any]]:
    folder = Path(chapters) if chapters is not None else default_chapters()
    path = folder / f"{chapter}.ipynb"
    if not path.is_file():
        raise ValueError(f"chapter notebook {path} not found: pass the book's chapters folder (--chapters)")
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def exercise_code(label: str, chapters: Path | None = None) -> tuple[str, str]:
    """(setup, solution): the code an answer to ``label`` runs after, and the book's own solution code."""
    spec = _exercise(label)
    cells = _cells(spec.chapter, chapters)
    setup = next(_source(c) for c in cells if c["cell_type"] == "code")   # the chapter's first code cell
    marker = f"solution-start}} {label}"
    start = next(i for i, c in enumerate(cells) if marker in _source(c))
    after = _source(cells[start]).split(marker, 1)[1]   # one markdown cell may close the previous solution too
    end = start if "{solution-end}" in after else next(
        i for i in range(start + 1, len(cells)) if "{solution-end}" in _source(cells[i]))
    solution = "\n\n".join(_source(cells[i]) for i in range(start, end + 1) if cells[i]["cell_type"] == "code")
    return setup, solution


def write_solutions(folder: str | os.PathLike[str], labels: Iterable[str] | None = None,
                    chapters: Path | None = None, student: str = "book-solution") -> list[Path]:
    """Write the book's solutions as ``folder/<student>/<label>.py``: a submission folder to try the grader on."""
    out = Path(folder) / student
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for label in labels if labels is not None else EXERCISES:
        path = out / f"{label}.py"
        _write_atomic(path, exercise_code(label, chapters)[1] + "\n")
        written.append(path)
    return written


# --- the runner ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the grade table."""

    student: str
    exercise: str
    earned: float
    auto_points: float
    points: int
    status: str  # "pass", "fail" or "error"
    reason: str


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def submission_code(path: str | os.PathLike[str]) -> str:
    """The code of a ``.py`` submission, or the code cells of a notebook (IPython magics and shell lines removed)."""
    path = Path(path)
    if path.suffix == ".py":
        return path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        raise ValueError(f"{path}: a submission is a .py file or a .ipynb notebook")
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise _Reject(f"not a readable notebook ({type(exc).__name__}: {exc})") from None
    lines = []
    for cell in cells:
        if cell.get("cell_type") == "code":
            src = _source(cell)
            lines.append("\n".join(f"# {ln}" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines()))
    return "\n\n".join(lines)


def find_submissions(folder: str | os.PathLike[str]) -> list[tuple[str, str, Path]]:
    """(student, exercise label, path) of every submission in ``folder/<student>/<label>.py|.ipynb``."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"submission folder {root} does not exist or is not a folder")
    found = []
    for student_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(p for p in student_dir.iterdir() if p.suffix in SUFFIXES and not p.name.startswith(".")):
            if path.stem not in EXERCISES:
                raise ValueError(f"{path}: the file name should be an exercise label with .py or .ipynb; the "
                                 f"graded exercises are: {', '.join(EXERCISES)}")
            found.append((student_dir.name, path.stem, path))
    if not found:
        raise ValueError(f"no submissions in {root}: expected {root}/<student>/<exercise label>.py or .ipynb, e.g. "
                         f"{root}/ada/ex-ch2-cdnv.ipynb")
    return found


_DRIVER = textwrap.dedent('''
    import json, sys, traceback
    job = json.load(open(sys.argv[1], encoding="utf-8"))
    ns = {"__name__": "__main__"}

    def encode(value):
        # JSON with tags for what JSON lacks (arrays, tuples, dicts with other keys, complex numbers); anything else
        # raises TypeError and is reported as unreadable. No pickle: the grader never unpickles a submission's output.
        import numpy as np
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, complex):
            return {"__complex__": [value.real, value.imag]}
        if type(value).__module__ == "torch" and hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.generic):
            return encode(value.item())
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biufc":
                raise TypeError(f"an array of {value.dtype}")
            return {"__ndarray__": encode(value.tolist()), "dtype": str(value.dtype), "shape": list(value.shape)}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if isinstance(value, tuple):
            return {"__tuple__": [encode(v) for v in value]}
        if isinstance(value, dict):
            return {"__dict__": [[encode(k), encode(v)] for k, v in value.items()]}
        raise TypeError(type(value).__name__)

    def report(result):
        with open(job["out"], "w", encoding="utf-8") as fh:
            json.dump(result, fh)

    def _fail(stage):
        lines = traceback.format_exc().strip().splitlines()
        report({"error": stage + ": " + lines[-1], "traceback": "\\n".join(lines[-12:])})
        sys.exit(0)
    try:
        exec(compile(job["setup"], "<chapter setup>", "exec"), ns)
    except BaseException:
        _fail("the chapter's setup failed")
    try:
        exec(compile(job["code"], job["path"], "exec"), ns)
    except BaseException:
        _fail("the submission raised")
    values, unreadable = {}, []
    for name in job["names"]:
        if name in ns:
            try:
                values[name] = encode(ns[name])
            except Exception:
                unreadable.append(name)
    report({"values": values, "unreadable": unreadable})
''')


def _decode(value: Any) -> Any:
    """A value the grading process wrote (the tagged JSON of ``_DRIVER``'s ``encode``), rebuilt."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        return np.array(_decode(value["__ndarray__"]), dtype=value["dtype"]).reshape(value["shape"])
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__complex__" in value:
        return complex(*value["__complex__"])
    if "__dict__" in value:
        return {_decode(k): _decode(v) for k, v in value["__dict__"]}
    raise ValueError(f"the grading process wrote an unknown value: {str(value)[:80]}")



def grade_submission(path: str | os.PathLike[str], label: str | None = None, *, chapters: Path | None = None,
                     timeout: float = 600.0, python: str | None = None) -> Grade:
    """Run one submission in a fresh Python process after its chapter's setup and grade its variables.

    ``label`` defaults to the file's name. A submission that raises, runs past ``timeout`` seconds or is not
    readable gets 0 points with the reason.
    """
    path = Path(path)
    spec = _exercise(label or path.stem)
    if not path.is_file():
        raise ValueError(f"submission {path} not found")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    setup, _ = exercise_code(spec.label, chapters)
    folder = Path(chapters) if chapters is not None else default_chapters()

    def failed(reason: str) -> Grade:
        return Grade(spec.label, tuple(Part(p.name, p.points, 0.0, "not graded") for p in
                                       spec.checker({}, "")), error=reason)

    try:
        code = submission_code(path)
        compile(code, str(path), "exec")
    except _Reject as rejected:
        return failed(str(rejected))
    except SyntaxError as exc:
        return failed(f"the submission does not parse: SyntaxError: {exc.msg} (line {exc.lineno})")
    with tempfile.TemporaryDirectory(prefix="pnc-grade-") as tmp:
        job, out = Path(tmp) / "job.json", Path(tmp) / "out.json"
        job.write_text(json.dumps({"setup": setup, "code": code, "path": str(path), "out": str(out),
                                   "names": [*spec.variables, *spec.context]}), encoding="utf-8")
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
        try:
            subprocess.run([python or sys.executable, "-c", _DRIVER, str(job)], cwd=folder, env=env, timeout=timeout,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        except subprocess.TimeoutExpired:
            return failed(f"ran longer than {timeout:g} s")
        if not out.is_file():
            return failed("the process died before it reported (out of memory or a crash)")
        try:
            result = json.loads(out.read_text(encoding="utf-8"))
            values = {} if "error" in result else {k: _decode(v) for k, v in result["values"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            return failed(f"the grading process wrote an unreadable report ({exc})")
    if "error" in result:
        return failed(str(result["error"]))
    grade = check(spec.label, values, code)
    if result["unreadable"]:
        reason = f"variables that could not be read back: {', '.join(result['unreadable'])}"
        grade = Grade(grade.exercise, tuple(Part(p.name, p.points, p.earned, p.reason + (
            f" ({reason})" if p.earned < p.points else "")) for p in grade.parts))
    return grade


def grade_folder(folder: str | os.PathLike[str], *, chapters: Path | None = None, timeout: float = 600.0,
                 exercises: Sequence[str] | None = None, progress: Callable[[str], None] | None = None) -> list[Row]:
    """Grade every submission in ``folder/<student>/<label>.py|.ipynb``: one :class:`Row` per student and exercise.

    ``exercises`` restricts the grading to those labels. Each row's ``points`` is the exercise's total in its
    statement and ``auto_points`` the part the checker grades.
    """
    if exercises is not None:
        for label in exercises:
            _exercise(label)
    rows = []
    for student, label, path in find_submissions(folder):
        if exercises is not None and label not in exercises:
            continue
        if progress is not None:
            progress(f"{student} {label}")
        spec = EXERCISES[label]
        grade = grade_submission(path, label, chapters=chapters, timeout=timeout)
        status = "error" if grade.error else ("pass" if grade.passed else "fail")
        rows.append(Row(student, label, grade.earned, spec.auto_points, spec.points, status, grade.reason))
    return rows


CSV_FIELDS = ("student", "exercise", "earned", "auto_points", "points", "status", "reason")


def write_csv(rows: Iterable[Row], path: str | os.PathLike[str]) -> Path:
    """Write the grade table as CSV (one line per student and exercise), through a temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)
        for r in rows:
            writer.writerow([r.student, r.exercise, f"{r.earned:g}", f"{r.auto_points:g}", r.points, r.status,
                             r.reason])
    tmp.replace(path)
    return path


def summary(rows: Sequence[Row]) -> str:
    """The grade table as text: earned/automatic points per student and exercise, totals, and what failed."""
    students = sorted({r.student for r in rows})
    labels = [label for label in EXERCISES if any(r.exercise == label for r in rows)]
    cell = {(r.student, r.exercise): r for r in rows}
    width = max([len("student"), *(len(s) for s in students)])
    head = f"{'student':<{width}}  " + "  ".join(f"{label:>{max(len(label), 7)}}" for label in labels) + "    total"
    lines = [head]
    for s in students:
        got = [cell.get((s, label)) for label in labels]
        shown = [f"{r.earned:g}/{r.auto_points:g}" + ("!" if r.status == "error" else "") if r else "-" for r in got]
        earned = sum(r.earned for r in got if r)
        possible = sum(r.auto_points for r in got if r)
        lines.append(f"{s:<{width}}  " + "  ".join(f"{v:>{max(len(label), 7)}}" for v, label in zip(shown, labels,
                     strict=True)) + f"  {earned:g}/{possible:g}")
    problems = [r for r in rows if r.status != "pass"]
    if problems:
        lines.append("")
        lines.append("not passed (! = the submission did not run):")
        lines.extend(f"  {r.student} {r.exercise} [{r.status}]: {r.reason}" for r in problems)
    lines.append("")
    lines.append("Points are the automatic part of each exercise; grade the rest (proofs, sentences) by hand with the "
                 "exercise's grading note.")
    return "\n".join(lines)
