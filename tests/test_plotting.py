"""Tests for pnc.plotting."""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pnc.plotting import fit_geometric_rate, fit_linear, layerwise_plot, use_style  # noqa: E402


def test_use_style_sets_house_rcparams():
    with matplotlib.rc_context():
        use_style()
        assert matplotlib.rcParams["lines.linewidth"] == 2
        assert not matplotlib.rcParams["axes.spines.top"]
        assert not matplotlib.rcParams["axes.spines.right"]
        assert matplotlib.rcParams["figure.dpi"] == 100


def test_fit_geometric_rate_recovers_a_known_ratio():
    values = 13.5 * 0.2846 ** np.arange(6)
    ratio, r2 = fit_geometric_rate(values)
    assert ratio == pytest.approx(0.2846, rel=1e-12)
    assert r2 == pytest.approx(1.0)
    ratio, _ = fit_geometric_rate(values[::2], layers=[0, 2, 4])
    assert ratio == pytest.approx(0.2846, rel=1e-12)
    rng = np.random.default_rng(0)
    noisy = values * np.exp(0.01 * rng.standard_normal(6))
    ratio, r2 = fit_geometric_rate(noisy)
    assert ratio == pytest.approx(0.2846, rel=0.02) and r2 > 0.999


def test_fit_linear():
    l = np.arange(1, 6)
    slope, intercept, r2 = fit_linear(0.82 + 0.03 * l, layers=l)
    assert (slope, intercept, r2) == pytest.approx((0.03, 0.82, 1.0))
    assert fit_linear([1.0, 1.0, 1.0]) == pytest.approx((0.0, 1.0, 1.0))


def test_layerwise_plot_returns_a_two_panel_figure():
    C = 13.5 * 0.28 ** np.arange(6)
    D = 0.95 + 0.008 * np.arange(6)
    fig = layerwise_plot(C, D, theory_compression=13.5 * 0.2846 ** np.arange(6))
    assert isinstance(fig, Figure)
    ax_c, ax_d = fig.axes
    assert ax_c.get_yscale() == "log" and ax_d.get_yscale() == "linear"
    legend = " ".join(t.get_text() for t in ax_c.get_legend().get_texts())
    assert "ratio 0.28" in legend and "theory" in legend
    assert "slope 0.008" in " ".join(t.get_text() for t in ax_d.get_legend().get_texts())
    fig.savefig(io.BytesIO(), format="png")


def test_layerwise_plot_on_given_axes():
    fig, axes = plt.subplots(1, 2)
    try:
        out = layerwise_plot([1.0, 0.1, 0.01], [0.9, 0.95, 1.0], ax=axes, layers=[1, 2, 3])
        assert out is fig
        assert list(axes[0].lines[0].get_xdata()) == [1, 2, 3]
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: fit_geometric_rate([1.0, -0.1, 0.01]), "positive"),
        (lambda: fit_geometric_rate([1.0]), "at least 2"),
        (lambda: fit_linear([1.0, 2.0], layers=[0, 1, 2]), "layers"),
        (lambda: fit_linear([1.0, float("nan")]), "finite"),
        (lambda: layerwise_plot([1.0, 0.1], [0.9, 0.95, 1.0]), "same length"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
