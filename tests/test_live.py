"""The closed forms of pnc.book.laws and the continuous explorers of pnc.book.live (no browser: see
tests/test_browser_live.py for the page)."""

from __future__ import annotations

import base64
import html
import re

import numpy as np
import pytest
import sympy as sp

from pnc import theory
from pnc.book import laws
from pnc.book.figures import compression as compression_figures
from pnc.book.live import Control, Curve, LiveExplorer, Measured, live_kernel


def _points(rng: np.random.Generator, size: int = 200) -> dict[str, np.ndarray]:
    return {"varepsilon": rng.uniform(0.01, 1.0, size), "alpha": rng.uniform(0.1, 1000, size),
            "n": rng.integers(2, 1000, size).astype(float), "L": rng.integers(1, 20, size).astype(float),
            "K": rng.integers(2, 100, size).astype(float), "max_E": rng.uniform(-0.5, 0.5, size)}


def test_numerical_theory_is_the_sympy_expression() -> None:
    """pnc.theory's numpy functions compute the expressions of pnc.book.laws (the chapter checks its derivation
    against the same expressions), at 200 random points each."""
    rng = np.random.default_rng(0)
    p = _points(rng)
    kappa = laws.KAPPA.numpy()(p["varepsilon"], p["alpha"], p["n"], p["L"])
    ours = [theory.compression_ratio(e, int(n), int(L), a)
            for e, a, n, L in zip(p["varepsilon"], p["alpha"], p["n"], p["L"], strict=True)]
    np.testing.assert_allclose(ours, kappa, rtol=1e-12)
    for e, a, n, L, K, mE in list(zip(*(p[k] for k in ("varepsilon", "alpha", "n", "L", "K", "max_E")),
                                      strict=True))[:50]:
        ls = np.arange(int(L))
        np.testing.assert_allclose(theory.layerwise_compression(ls, e, int(n), int(K), int(L), a),
                                   laws.COMPRESSION.numpy()(e, a, n, L, K, ls), rtol=1e-12)
        np.testing.assert_allclose(theory.discrimination_first_order(ls, int(L), mE),
                                   laws.DISCRIMINATION.numpy()(ls, L, mE), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("formula", list(laws.FORMULAS.values()), ids=list(laws.FORMULAS))
def test_javascript_is_printed_by_sympy(formula: laws.Formula) -> None:
    code = formula.javascript()
    assert code.startswith(f"function ({', '.join(formula.arg_names)}) {{ return ")
    assert sp.jscode(formula.expr) in code
    assert "Not supported" not in code


def test_formula_rejects_what_the_page_cannot_run() -> None:
    x = sp.Symbol("x")
    with pytest.raises(ValueError, match="not arguments"):
        laws.Formula("f", x * laws.eps, (x,), "f")
    with pytest.raises(ValueError, match="JavaScript identifier"):
        laws.Formula("my-f", x, (x,), "f")
    with pytest.raises(ValueError, match="cannot print"):
        laws.Formula("g", sp.Function("g_unknown")(x), (x,), "g").javascript()


def test_mutating_a_constant_changes_every_formula() -> None:
    rng = np.random.default_rng(1)
    for formula in laws.FORMULAS.values():
        mutated = formula.with_expr(laws.mutate_constant(formula.expr))
        args = [rng.uniform(1.5, 3.0, 20) for _ in formula.args]
        assert not np.allclose(formula.numpy()(*args), mutated.numpy()(*args), rtol=1e-6)


def _explorer(**kw: object) -> LiveExplorer:
    base: dict = dict(title="t", controls=[Control("varepsilon", "ξ", 0.05, 0.6, 0.005, 0.3),
                                           Control("L", "L", 2, 8, 1, 6)],
                      curves=[Curve(laws.COMPRESSION, "C_l", upto="L", offset=-1)], fixed={"K": 3, "n": 10,
                                                                                           "alpha": 100.0},
                      x_name="l", x_values=list(range(8)), x_label="layer l", y_log=True, y_range=(1e-12, 1e2),
                      scalars=[(laws.KAPPA, "κ")],
                      measured=[Measured({"varepsilon": 0.3, "L": 6}, list(range(6)), [1, 2, 3, 4, 5, 6])])
    base.update(kw)
    return LiveExplorer(**base)


def test_explorer_evaluates_the_formulas() -> None:
    ex = _explorer()
    shown = ex.evaluate({"varepsilon": 0.3123, "L": 5})
    expected = theory.layerwise_compression(np.arange(5), 0.3123, 10, 3, 5, 100.0)
    np.testing.assert_allclose(shown["curves"][0][:5], expected, rtol=1e-12)
    assert shown["curves"][0][5:] == [None] * 3  # beyond the last layer L - 1
    assert shown["measured"] == [None]  # trained at L = 6 only
    assert ex.evaluate({})["measured"] == [[1, 2, 3, 4, 5, 6]]
    assert shown["scalars"] == [pytest.approx(theory.compression_ratio(0.3123, 10, 5, 100.0), rel=1e-12)]


def test_explorer_checks_its_definition() -> None:
    with pytest.raises(ValueError, match="needs"):
        _explorer(fixed={"K": 3})
    with pytest.raises(ValueError, match="y_range"):
        _explorer(y_range=None)
    with pytest.raises(ValueError, match="lo < hi"):
        Control("x", "x", 1, 0, 0.1, 0.5)


def test_explorer_html_is_accessible_and_carries_generated_code() -> None:
    ex = _explorer()
    page = ex.html()
    for c in ex.controls:
        ids = re.findall(rf'<label for="([^"]+)">{re.escape(html.escape(c.label))}</label>', page)
        assert ids and f'<input type="range" id="{ids[0]}" data-name="{c.name}"' in page
        assert f'aria-label="{html.escape(c.label)}, typed value"' in page
    assert 'aria-live="polite"' in page
    for formula in ex.formulas:
        assert formula.javascript() in page
    assert "</script" not in page.split('class="pnc-live-config">')[1].split("</script>")[0]


def test_bundle_is_html_and_a_still_for_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PNC_LIVE", "0")
    assert not live_kernel()
    bundle = _explorer()._repr_mimebundle_()
    assert 'class="pnc-live pnc-live-plot"' in bundle["text/html"]
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    monkeypatch.setenv("PNC_LIVE", "1")  # Colab / Jupyter: ipywidgets that compute in Python
    data = _explorer()._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert "application/vnd.jupyter.widget-view+json" in data


def test_chapter_4_builders() -> None:
    class Run:
        compression = np.geomspace(15, 1e-3, 6)

    ex = compression_figures.compression_explorer({(0.3, 6): Run()})
    assert ex.evaluate({})["measured"][0] == pytest.approx(list(Run.compression))
    panel = compression_figures.law_panel(max_E=0.05)
    shown = panel.evaluate({"L": 4})
    assert [y is None for y in shown["curves"][1]] == [False] * 4 + [True] * 16
    assert shown["curves"][1][:4] == pytest.approx(list(1 - (1 - np.arange(4) / 4) * 0.05))


def test_chapter_9_saxe_explorer_binds_one_formula_to_three_modes() -> None:
    from pnc.book import dynamics
    from pnc.book.figures import connections as connection_figures

    steps = np.arange(0, 301, 10.0)
    s = np.array([6.0, 4.0, 2.0])
    theory_ = np.column_stack([dynamics.saxe_mode_strength(steps, sk, 0.004, 100.0) for sk in s])
    trace = dynamics.ModeTrace(steps=steps, measured=theory_, theory=theory_, s=s, u0=np.full(3, 0.004), tau=100.0)
    ex = connection_figures.saxe_explorer({(4, 16, 36): trace}, xi=0.1, u0=0.004)
    shown = ex.evaluate({"sigma_2": 3.3})
    np.testing.assert_allclose(shown["curves"][1], dynamics.saxe_mode_strength(steps, 3.3, 0.004, 100.0),
                               rtol=1e-12)
    np.testing.assert_allclose(shown["curves"][0], theory_[:, 0], rtol=1e-12)
    assert all(m is None for m in shown["measured"])  # sigma_2 = 3.3: no network was trained there
    assert all(m is not None for m in ex.evaluate({})["measured"])
    assert [c["args"] for c in ex.config()["curves"]] == [["t", f"sigma_{k}", "u_0", "vartheta"] for k in (1, 2, 3)]


def test_chapter_2_mixture_explorer_is_the_expected_compression() -> None:
    from pnc.book import measuring
    from pnc.book.figures import measuring as measuring_figures

    ex = measuring_figures.compression_explorer(n=50, K=3, m=20, zeta=1.0, omegas=(0.2,), seeds=2)
    shown = ex.evaluate({"zeta": 1.37, "m": 31})
    expected = [measuring.expected_compression(50, 3, 31, 1.37, w) for w in ex.x_values]
    np.testing.assert_allclose(shown["curves"][0], expected, rtol=1e-12)
    assert shown["measured"] == [None] and ex.evaluate({})["measured"][0][0] == pytest.approx(
        measuring.expected_compression(50, 3, 20, 1.0, 0.2), rel=0.1)
    with pytest.raises(ValueError, match="grid"):
        measuring_figures.compression_explorer(omegas=(0.205,), seeds=1)


def test_chapter_5_laws_are_the_numerical_theory() -> None:
    """pnc.book.laws.PERTURBATION is pnc.theory's first-order perturbation law (the ratio into layer l), and
    IMBALANCE its first-order imbalance law at the initial scales of a tilted initialisation, at random settings."""
    from pnc import data
    from pnc.book import perturbation

    rng = np.random.default_rng(5)
    for p in (0.5, 2.0, 6.0):
        X, y = data.orthogonal_dataset(n_per_class=6, n_classes=4, dim=40, perturbation=p, seed=2)
        eps, alpha, L = rng.uniform(0.1, 0.5), rng.uniform(1, 200), int(rng.integers(2, 9))
        law = theory.perturbation_law(X.double(), y, L, eps, alpha)
        tau = law.gain_shift * (4 - 1) * L
        ours = laws.PERTURBATION.numpy()(eps, alpha, 6, L, 4, tau, law.leak, np.arange(1, L))
        np.testing.assert_allclose(ours, law.first_order_ratios, rtol=1e-12)
    for _ in range(50):
        xi, alpha, n, L, tilt = rng.uniform(0.05, 1), rng.uniform(1, 500), int(rng.integers(2, 100)), \
            int(rng.integers(2, 15)), rng.uniform(-0.95, 0.95)
        law = perturbation.init_scale_law(xi * perturbation.tilted_scales(tilt, L), n, alpha)
        np.testing.assert_allclose(laws.IMBALANCE.numpy()(xi, alpha, n, L, tilt, np.arange(1, L)),
                                   law.first_order_ratios, rtol=1e-11)


def test_typeset_forms_are_the_chapters() -> None:
    """The page typesets D_l as chapter 4 writes it (not in sympy's term order), and every typeset form is checked
    against its expression."""
    assert laws.DISCRIMINATION.latex() == r"D_l = 1 - \left(1 - \frac{l}{L}\right) \max E"
    assert r"\kappa \left(1 + \frac{\operatorname{Tr}(JE)}{\left(K - 1\right) L}" in laws.PERTURBATION.latex()
    assert r"f_{l} = 1 + t" in laws.IMBALANCE.latex()
    with pytest.raises(ValueError, match="typeset form"):
        laws.Formula("d", laws.DISCRIMINATION.expr, (laws.l, laws.L, laws.max_E), "D_l",
                     shown=1 - (1 - laws.l / laws.L) * 2 * laws.max_E)


def test_chapter_5_panel_shows_the_trained_networks_at_their_settings() -> None:
    from types import SimpleNamespace

    from pnc.book.figures import perturbation as perturbation_figures

    config = {"xi": 0.3, "n": 10, "L": 6, "alpha": 100.0, "K": 3}

    def run(**kw: float) -> SimpleNamespace:
        ratios = np.linspace(0.3, 0.28, 5) + kw.get("tilt", 0) + kw.get("perturbation", 0)
        law = SimpleNamespace(gain_shift=-0.02 * kw.get("perturbation", 0), leak=0.1 * kw.get("perturbation", 0))
        return SimpleNamespace(trained=SimpleNamespace(config=config, ratios=ratios), law=law, **kw)

    runs, tilts = [run(perturbation=p) for p in (0.0, 2.0)], [run(tilt=t) for t in (-0.4, 0.4)]
    panel = perturbation_figures.law_panel(runs, tilts, shown=2.0)
    opened = panel.evaluate({})
    assert panel.defaults["tau"] == pytest.approx(-0.02 * 2 * 2 * 6) and panel.defaults["beta_0"] == 0.2
    assert opened["measured"][1] == pytest.approx(list(runs[1].trained.ratios))
    assert [m is None for m in opened["measured"]] == [True, False, True, True]
    expected = laws.PERTURBATION.numpy()(0.3, 100.0, 10, 6, 3, -0.48, 0.2, np.arange(1, 6))
    np.testing.assert_allclose(opened["curves"][0][:5], expected, rtol=1e-12)
    tilted = panel.evaluate({"tau": 0, "beta_0": 0, "tilt": 0.4})
    assert [m is None for m in tilted["measured"]] == [True, True, True, False]
    with pytest.raises(ValueError, match="perturbation 1"):
        perturbation_figures.law_panel(runs, tilts, shown=1.0)
