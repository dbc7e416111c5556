"""pnc.book.recipes: the chapter-4 recipe for any (xi, n, L, alpha) and its comparison with the closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pnc import data, theory
from pnc.book import recipes


@pytest.fixture(scope="module")
def recipe() -> recipes.RecipeResult:
    return recipes.run_recipe()


def test_recipe_matches_kappa(recipe) -> None:
    assert recipe.converged
    assert recipe.kappa == pytest.approx(0.2846, abs=5e-5)
    assert recipe.worst_ratio_error < 0.03
    assert recipe.compression[0] == pytest.approx(13.5, abs=1.0)
    np.testing.assert_allclose(recipe.ratios, recipe.compression[1:] / recipe.compression[:-1])


def test_recipe_discrimination_first_order(recipe) -> None:
    assert recipe.max_E > 0
    assert np.max(np.abs(recipe.discrimination - recipe.theory_discrimination)) < 0.01
    np.testing.assert_allclose(recipe.theory_discrimination,
                               theory.discrimination_first_order(np.arange(6), 6, recipe.max_E))


def test_recipe_diagnostics(recipe) -> None:
    assert recipe.residual < 0.02
    assert len(recipe.imbalance) == 5 and max(recipe.imbalance[:-1]) < 0.01
    np.testing.assert_allclose(recipe.spread, theory.singular_value_spread(recipe.weights, K=3, d=50), atol=1e-15)
    np.testing.assert_allclose(recipe.middle_sv, 0.3, atol=1e-3)
    assert recipe.fitted_ratio == pytest.approx(recipe.kappa, rel=0.05)


def test_other_settings_within_three_percent() -> None:
    for setting in (dict(xi=0.3, n=5, L=6, alpha=100.0), dict(xi=0.3, n=10, L=6, alpha=10.0)):
        run = recipes.run_recipe(**setting)
        assert run.converged and run.worst_ratio_error < 0.03, setting


def test_deterministic() -> None:
    a = recipes.run_recipe(n=5, seed=2)
    b = recipes.run_recipe(n=5, seed=2)
    np.testing.assert_array_equal(a.compression, b.compression)


def test_table_and_grid(recipe) -> None:
    grid = recipes.recipe_grid((0.3,), (4, 6))
    assert set(grid) == {(0.3, 4), (0.3, 6)}
    np.testing.assert_array_equal(grid[(0.3, 6)].compression, recipe.compression)
    table = recipes.recipe_table([recipe, grid[(0.3, 4)]])
    assert list(table.columns[:6]) == ["xi", "n", "L", "alpha", "seed", "kappa"]
    assert "C5/C4" in table.columns and np.isnan(table.loc[1, "C5/C4"])
    assert table.loc[0, "kappa"] == pytest.approx(recipe.kappa)


def test_divergence_gives_nan_not_error() -> None:
    run = recipes.run_recipe(xi=0.7, epochs=50)
    assert run.diverged and not run.converged
    assert np.isnan(run.residual)


def test_train_dln_on_any_data() -> None:
    X, y = data.near_orthogonal_gaussian(4, 3, 20, seed=0)  # d >= N: interpolation possible
    run = recipes.train_dln(X, y, xi=0.3, L=3, alpha=10.0, epochs=2000, loss_tol=1e-9)
    assert run.config["n"] == 4 and run.config["K"] == 3 and run.config["width"] == 20
    assert np.isfinite(run.max_E)
    X2, y2 = data.near_orthogonal_gaussian(10, 3, 20, seed=0)  # d < N: singular Gram
    assert np.isnan(recipes.train_dln(X2, y2, L=3, epochs=10).max_E)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(xi=0.0), "xi"),
        (dict(xi=float("nan")), "xi"),
        (dict(alpha=-1.0), "alpha"),
        (dict(L=1), "L"),
        (dict(n=20, dim=50), "dim"),
        (dict(n=1.5), "n"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_input(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        recipes.run_recipe(**kwargs)


def test_train_dln_bad_input() -> None:
    X, y = data.orthogonal_dataset(5, 3, 20, seed=0)
    with pytest.raises(ValueError, match="X"):
        recipes.train_dln(X.numpy(), y)
    with pytest.raises(ValueError, match="balanced"):
        recipes.train_dln(X[:-1], y[:-1])
    with pytest.raises(ValueError, match="y"):
        recipes.train_dln(X, y[:-1])
    with pytest.raises(ValueError, match="at least one"):
        recipes.recipe_grid((), (4,))
    with pytest.raises(ValueError, match="at least one"):
        recipes.recipe_table([])
    assert torch.is_tensor(X)


def test_theory_and_practice_pair_linear_follows_the_law_and_the_mlp_does_not():
    from pnc.book.recipes import theory_and_practice

    pair = theory_and_practice(seed=1)
    assert pair.linear.config["alpha"] == 1.0 and pair.linear.kappa == pytest.approx(0.0613, abs=1e-4)
    assert np.all(np.abs(pair.linear.ratios / pair.linear.kappa - 1) < 0.05)
    c = pair.nonlinear.column("compression")
    d = pair.nonlinear.column("discrimination")
    assert pair.nonlinear.names[0] == "input" and len(c) == 10  # the input and nine blocks
    assert pair.nonlinear_loss < 1e-8
    assert c[0] == pytest.approx(pair.linear.compression[0], rel=1e-12)  # the same data
    ratios = pair.nonlinear_ratios()
    assert 0.05 < c[-1] / c[0] < 0.5 and ratios.max() > 1.2 * ratios.min() and d[-1] > d[1] + 0.2


def test_recipe_setup_is_run_recipes_defaults_and_its_data() -> None:
    """RecipeSetup's knobs default to run_recipe's, feed it as keywords, and its dataset() is the recipe's data; the
    sweeps of pnc.book.perturbation take their knobs through it, so an unknown one is refused."""
    import inspect

    from pnc.book import perturbation

    setup = recipes.RecipeSetup()
    params = inspect.signature(recipes.run_recipe).parameters
    assert {name: params[name].default for name in setup.kwargs()} == setup.kwargs()
    X, y = recipes.RecipeSetup(n=4, K=2, dim=12).dataset(0.5, seed=3)
    X0, y0 = data.orthogonal_dataset(n_per_class=4, n_classes=2, dim=12, perturbation=0.5, seed=3)
    assert torch.equal(X, X0) and torch.equal(y, y0)
    with pytest.raises(TypeError, match="width"):
        perturbation.perturbation_sweep((0.0,), width=10)
