"""Tests for pnc.book.ufm: the unconstrained-features model trained by gradient descent (chapter 8)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import sympy as sp  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pnc.book import ufm  # noqa: E402
from pnc.book.figures import connections as F  # noqa: E402

SETUP = dict(n_classes=4, n_per_class=10, dim=8, lambda_h=5e-3, lambda_w=5e-3)


@pytest.fixture(scope="module")
def mse_run() -> ufm.UFMRun:
    return ufm.train_ufm(loss="mse", steps=3000, record_at=(0, 100, 3000), **SETUP)


def _derived_scale() -> sp.Expr:
    """p = wh at the stationary point of the reduced scalar problem, derived with sympy."""
    w, h, lw, lh, k, n = sp.symbols("w h lambda_W lambda_H K n", positive=True)
    reduced = (k - 1) / k * ((1 - w * h) ** 2 / 2 + lw * k * w**2 / 2 + lh * k * n * h**2 / 2)
    (opt,) = sp.solve([sp.diff(reduced, w), sp.diff(reduced, h)], [w, h], dict=True)
    return sp.simplify(opt[w] * opt[h]), (k, n, lw, lh)


def test_closed_form_matches_sympy_and_a_changed_constant_does_not():
    p, (k, n, lw, lh) = _derived_scale()
    point = {k: 4, n: 10, lw: sp.Rational(3, 1000), lh: sp.Rational(7, 1000)}
    closed = ufm.mse_optimum(4, 10, lambda_h=7e-3, lambda_w=3e-3)
    assert math.isclose(float(p.subs(point)), closed.scale, rel_tol=1e-12)
    wrong = 1 - (4 - 1) * math.sqrt(10 * 3e-3 * 7e-3)     # K - 1 in place of K
    assert not math.isclose(float(p.subs(point)), wrong, rel_tol=1e-3)
    # balance lambda_W ||W||^2 = lambda_H ||H||^2 and the threshold
    assert math.isclose(3e-3 * closed.classifier_norm_sq, 7e-3 * closed.feature_norm_sq * 40, rel_tol=1e-12)
    assert ufm.mse_optimum(4, 10, lambda_h=0.1, lambda_w=0.1) == (0.0, 0.0, 0.0)


def test_trained_mse_ufm_reaches_the_closed_form(mse_run):
    closed = ufm.mse_optimum(4, 10, lambda_h=5e-3, lambda_w=5e-3)
    assert mse_run.feature_norm_sq == pytest.approx(closed.feature_norm_sq, rel=1e-3)
    assert mse_run.classifier_norm_sq == pytest.approx(closed.classifier_norm_sq, rel=1e-3)
    value = 3 / 8 * (1 - closed.scale**2)
    assert mse_run.snapshots[-1].objective == pytest.approx(value, rel=1e-5)
    # one constant changed (rank K instead of K - 1): the comparison fails
    no_bias = ufm.mse_optimum(4, 10, lambda_h=5e-3, lambda_w=5e-3, bias=False)
    assert mse_run.feature_norm_sq != pytest.approx(no_bias.feature_norm_sq, rel=0.1)
    np.testing.assert_allclose(mse_run.bias, 0.25, atol=1e-3)


def test_collapse_metrics_small_and_falling(mse_run):
    first, last = mse_run.snapshots[0], mse_run.snapshots[-1]
    assert first.compression > 1.0 and last.compression < 1e-20
    assert last.nc1 < 1e-20 and last.nc2 < 1e-2 and last.nc3 < 0.05
    assert mse_run.train_accuracy == 1.0
    assert mse_run.report.column("compression")[0] == pytest.approx(last.compression, rel=1e-6, abs=1e-30)


def test_without_bias_matches_its_own_closed_form():
    run = ufm.train_ufm(loss="mse", bias=False, steps=2000, record_at=(), **SETUP)
    closed = ufm.mse_optimum(4, 10, lambda_h=5e-3, lambda_w=5e-3, bias=False)
    assert run.bias is None
    assert run.feature_norm_sq == pytest.approx(closed.feature_norm_sq, rel=1e-3)


def test_above_threshold_the_minimiser_is_zero():
    size = {k: v for k, v in SETUP.items() if not k.startswith("lambda")}
    assert ufm.mse_optimum(4, 10, lambda_h=0.1, lambda_w=0.1).scale == 0.0      # mu K sqrt(n) = 1.26 > 1
    run = ufm.train_ufm(loss="mse", lambda_h=0.1, lambda_w=0.1, steps=1000, record_at=(), **size)
    assert run.feature_norm_sq < 1e-6 and run.classifier_norm_sq < 1e-5
    below = ufm.train_ufm(loss="mse", lambda_h=0.07, lambda_w=0.07, steps=1000, record_at=(), **size)
    assert ufm.mse_optimum(4, 10, lambda_h=0.07, lambda_w=0.07).scale > 0.1                # just below: not zero
    assert below.classifier_norm_sq > 0.1


def test_deep_and_cross_entropy_runs_collapse_and_are_seeded():
    deep = ufm.train_ufm(loss="ce", depth=3, steps=1000, record_at=(0, 30, 1000), **SETUP)
    assert len(deep.report) == 3 and len(deep.weights) == 3
    assert np.all(deep.report.column("compression") < 1e-20)
    assert len(deep.snapshots[1].layer_compression) == 3
    again = ufm.train_ufm(loss="ce", depth=3, steps=1000, record_at=(0, 30, 1000), **SETUP)
    assert again.snapshots == deep.snapshots
    other = ufm.train_ufm(loss="ce", depth=3, steps=1000, record_at=(0, 30, 1000), seed=1, **SETUP)
    assert other.snapshots[0].compression != deep.snapshots[0].compression


@pytest.mark.parametrize(("bad", "message"), [
    (dict(loss="hinge"), r"loss must be one of \('mse', 'ce'\), got 'hinge'"),
    (dict(depth=0), "depth must be an integer >= 1, got 0"),
    (dict(dim=3), r"dim must be at least n_classes \(d >= K\), got dim=3, n_classes=4"),
    (dict(n_classes=1), "n_classes must be an integer >= 2, got 1"),
    (dict(lambda_h=-1.0), "lambda_h must be >= 0, got -1.0"),
    (dict(lr=0.0), "lr must be > 0, got 0.0"),
    (dict(steps=0), "steps must be an integer >= 1, got 0"),
    (dict(lambda_w=float("nan")), "lambda_w must be a finite number, got nan"),
    (dict(record_at=(-1,)), "record_at entry must be an integer >= 0, got -1"),
])
def test_bad_input_raises(bad, message):
    with pytest.raises(ValueError, match=message):
        ufm.train_ufm(**bad)


def test_bad_closed_form_input_raises():
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2, got 1"):
        ufm.mse_optimum(1, 10, 1e-3, 1e-3)
    with pytest.raises(ValueError, match="lambda_h must be > 0, got 0.0"):
        ufm.mse_optimum(4, 10, 0.0, 1e-3)


def test_divergence_raises():
    with pytest.raises(ValueError, match="diverged"):
        ufm.train_ufm(lr=50.0, steps=200, record_at=())


def test_ufm_figure(mse_run):
    deep = ufm.train_ufm(loss="mse", depth=2, steps=100, record_at=(0, 30, 100), **SETUP)
    fig = F.ufm_figure({"shallow": mse_run, "deep": deep}, deep, (30, 100))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert len(fig.axes[0].lines) == 2 + 1 and len(fig.axes[2].lines) == 2   # two runs and the floor; two steps
    with pytest.raises(ValueError, match=r"deep must be a deep UFM run \(depth >= 2\), got depth 1"):
        F.ufm_figure({"shallow": mse_run}, mse_run, (100,))
    with pytest.raises(ValueError, match=r"steps \[7\] not recorded in the deep run \(recorded: \[0, 30, 100\]\)"):
        F.ufm_figure({"deep": deep}, deep, (7,))
    with pytest.raises(ValueError, match="runs must be a non-empty"):
        F.ufm_figure({}, deep, (30,))


def test_ce_etf_objective_is_reached_shallow_and_beaten_deep():
    shallow = ufm.train_ufm(loss="ce", steps=3000, record_at=(3000,), **SETUP)
    etf = ufm.ce_etf_objective(4, 10, lambda_h=5e-3, lambda_w=5e-3)
    assert shallow.snapshots[-1].objective == pytest.approx(etf, rel=1e-5)
    assert ufm.ce_etf_objective(4, 10, lambda_h=5e-3, lambda_w=5e-3, depth=4) < etf      # more factors, cheaper
    with pytest.raises(ValueError, match="depth must be an integer >= 1, got 0"):
        ufm.ce_etf_objective(4, 10, lambda_h=5e-3, lambda_w=5e-3, depth=0)
