"""pnc.book.assumptions: the reduced assumption check and the failure-mode sweep of chapter 5."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pnc import theory
from pnc.book import assumptions


def test_predicted_imbalance_matches_theory_md() -> None:
    # theory.md section 3: width 400, L = 2..5 -> 0.023, 0.066, 0.048, 0.037 (alpha = 1, xi = 0.1, d = 50, K = 3)
    means = [np.mean(assumptions.predicted_imbalance(0.1, 10, 3, 50, 400, L)) for L in (2, 3, 4, 5)]
    np.testing.assert_allclose(means, [0.023, 0.066, 0.048, 0.037], atol=1e-3)
    per_pair = assumptions.predicted_imbalance(0.1, 10, 3, 50, 200, 5)
    assert len(per_pair) == 4 and per_pair[1] == per_pair[2] == 0.0


def test_weight_decay_eps() -> None:
    assert assumptions.weight_decay_eps(0.3, 0.0) == pytest.approx(0.3)
    eps = assumptions.weight_decay_eps(0.3, 0.01, lr=0.1, epochs=500, final_lr_factor=0.01)
    mean_lr = 0.1 * (1 + 0.01) / 2
    assert eps == pytest.approx(0.3 * math.exp(-0.01 * mean_lr * 500), rel=1e-3)
    with pytest.raises(ValueError, match="weight_decay"):
        assumptions.weight_decay_eps(0.3, -1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        assumptions.weight_decay_eps(0.3, 20.0)


def test_projected_dataset() -> None:
    X, y = assumptions.projected_dataset(10, 3, 20, full_dim=50, seed=1)
    assert X.shape == (30, 20) and y.shape == (30,)
    assert np.linalg.norm(X.numpy(), axis=1).mean() == pytest.approx(1.0, abs=0.2)
    with pytest.raises(ValueError, match="d must be"):
        assumptions.projected_dataset(10, 3, 60, full_dim=50)


def test_assumption_check_small() -> None:
    frame = assumptions.assumption_check(depths=(2, 3), widths=(100, 200), seeds=(1,), depth_width=100)
    assert len(frame) == 4  # (2,100), (3,100) in the depth panel; (3,100), (3,200) in the width panel
    assert frame["converged"].all()
    assert frame["rel_residual"].max() < 0.02
    assert np.max(np.abs(frame["imbalance"] - frame["predicted_imbalance"])) < 0.003
    assert frame["spread"].max() < 1e-8
    np.testing.assert_allclose(frame["middle_sv"], 0.1, atol=1e-3)


def test_failure_run_data_modes_follow_construction() -> None:
    for mode, level in (("non-orthogonal data", 6.0), ("data dimension", 20)):
        run = assumptions.failure_run(mode, level)
        assert abs(run.ratios_over_kappa[-1] / run.construction_ratios_over_kappa[-1] - 1) < 0.05, mode
        assert np.max(np.abs(np.log(run.ratios_over_kappa))) > np.log(1.15)
    assert assumptions.failure_run("data dimension", 20).result.final_loss > 0.1  # d < N: no interpolation


def test_failure_run_weight_decay_lowers_eps() -> None:
    run = assumptions.failure_run("weight decay", 0.015)
    eps = assumptions.weight_decay_eps(0.3, 0.015, epochs=300)
    assert np.mean(run.result.middle_sv) == pytest.approx(eps, abs=1e-3)
    assert run.result.epochs_run == 300  # no early stop with weight decay
    base = assumptions.failure_run("weight decay", 0.0)
    assert run.result.ratios[0] / base.result.ratios[0] == pytest.approx((eps / 0.3) ** 2, rel=0.03)


def test_failure_run_large_init_leaves_construction() -> None:
    run = assumptions.failure_run("init scale", 0.5)
    assert run.construction_ratios_over_kappa[-1] == pytest.approx(1.0, abs=0.02)
    assert run.ratios_over_kappa[-1] < 0.95
    assert run.label() == "xi = 0.5"


def test_failure_sweep_and_table() -> None:
    modes = {"init scale": ("xi", (0.3, 0.4))}
    runs = assumptions.failure_sweep(modes)
    assert set(runs) == {("init scale", 0), ("init scale", 1)}
    table = assumptions.failure_table(runs)
    assert len(table) == 2 and table.loc[0, "kappa"] == pytest.approx(theory.compression_ratio(0.3, 10, 6, 100.0))
    with pytest.raises(ValueError, match="at least one"):
        assumptions.failure_table([])


@pytest.mark.parametrize(
    ("mode", "level", "match"),
    [("gravity", 1.0, "mode"), ("init scale", -1.0, "level"), ("data dimension", 60, "data dimension"),
     ("data dimension", 20.5, "data dimension"), ("init scale", float("inf"), "level")],
)
def test_failure_run_bad_input(mode, level, match) -> None:
    with pytest.raises(ValueError, match=match):
        assumptions.failure_run(mode, level, epochs=5)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="width"):
        assumptions.predicted_imbalance(0.1, 10, 3, 50, 40, 3)
    with pytest.raises(ValueError, match="xi"):
        assumptions.predicted_imbalance(0.0, 10, 3, 50, 400, 3)
    with pytest.raises(ValueError, match="depth"):
        assumptions.assumption_check(depths=(1,))
    with pytest.raises(ValueError, match="non-empty"):
        assumptions.assumption_check(seeds=())
