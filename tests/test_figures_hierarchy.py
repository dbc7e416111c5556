"""Tests for pnc.book.figures.hierarchy (figures of the real-data chapters)."""

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.figure import Figure

from pnc.book import widgets
from pnc.book.figures import hierarchy as H


def _layers(n_nonlinear=2, n_linear=3, ratio=0.3):
    kinds = ["input"] + ["nonlinear"] * n_nonlinear + ["linear"] * n_linear
    rows = []
    for l, kind in enumerate(kinds):
        rows.append({"layer": l, "kind": kind, "compression": 2.0 * ratio**l, "discrimination": 0.3 + 0.1 * l,
                     "numerical_rank": 50 - 5 * l, "probe_accuracy": min(1.0, 0.9 + 0.05 * l),
                     "probe_test_accuracy": None if l == 0 else 0.9})
    return rows


def test_column_and_linear_part():
    rows = _layers()
    np.testing.assert_allclose(H.column(rows, "compression"), 2.0 * 0.3 ** np.arange(6))
    assert np.isnan(H.column(rows, "probe_test_accuracy")[0])
    assert H.linear_part(rows) == [2, 3, 4, 5]
    assert H.linear_part(_layers(n_linear=0)) == []


def test_layer_curves_fits_the_linear_part():
    fig = H.layer_curves({"hybrid": _layers(), "mlp": _layers(n_nonlinear=5, n_linear=0, ratio=0.8)})
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("ratio 0.30" in s and "1.000" in s for s in labels)
    assert fig.axes[0].get_yscale() == "log" and fig.axes[1].get_yscale() == "linear"


def test_rank_probe_depths_and_transfer_figures():
    assert len(H.rank_probe_figure({"hybrid": _layers()}).axes) == 2
    depths = [{"depth": L, "layers": _layers(n_nonlinear=L - 1, n_linear=0)} for L in (5, 7)]
    fig = H.depths_figure(depths)
    assert len(fig.axes[0].get_lines()) == 2
    lines = H.depth_view(depths, 7, "numerical_rank").axes[0].get_lines()
    assert len(lines) == 2  # the other depth in grey behind, the chosen one on top
    assert len(lines[-1].get_xdata()) == 7 and lines[-1].get_label() == "L = 7"
    with pytest.raises(ValueError, match="depth 6"):
        H.depth_view(depths, 6)
    heads = [{"head_layers": h, "compression": 0.01 * 2**h, "transfer_accuracy": 0.6 + 0.01 * h,
              "layers": _layers(n_nonlinear=2, n_linear=h - 1)} for h in (1, 2, 3)]
    fig = H.transfer_figure(heads)
    np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_ydata(), [61, 62, 63])
    for h in heads:
        h["layer"] = 2
    view = H.transfer_network_view(heads, 2)
    assert "h = 2" in view.axes[0].get_title()
    cut_heads = [{"head_layers": h, "layer": 6 - h, "compression": 0.1, "transfer_accuracy": 0.9} for h in (1, 2)]
    view = H.transfer_network_view(cut_heads, 1, layers=_layers(n_nonlinear=2, n_linear=4))
    assert len(view.axes[0].get_lines()) == 3


def test_saturation_layer():
    rows = _layers()  # probe 0.9, 0.95, 1, 1, 1, 1
    assert H.saturation_layer(rows) == 2
    assert H.saturation_layer(rows, level=0.9) == 0
    rows[4]["probe_accuracy"] = 0.5
    assert H.saturation_layer(rows) == 5
    assert H.saturation_layer(rows, level=1.1) == -1


def test_class_projection_separates_blobs():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = 5 * rng.standard_normal((3, 10))[y] + 0.01 * rng.standard_normal((60, 10))
    p = H.class_projection(x, y)
    assert p.shape == (60, 2)
    means = np.stack([p[y == k].mean(0) for k in range(3)])
    assert np.min(np.linalg.norm(means[:, None] - means[None], axis=-1) + 1e9 * np.eye(3)) > 1.0
    fig = H.feature_scatter(np.stack([p, p]), y, 1, compression=[1.0, 0.5])
    assert "0.5" in fig.axes[0].get_title()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: H.layer_curves({}), "at least one label to a layers list"),
        (lambda: H.column([], "compression"), "layers must be a non-empty list of per-layer dicts"),
        (lambda: H.depths_figure([]), "depths must be a non-empty list"),
        (lambda: H.transfer_figure([{"head_layers": 1}]), "needs 'head_layers', 'compression' and 'transfer_accuracy'"),
        (lambda: H.transfer_network_view([{"head_layers": 1, "compression": 1, "transfer_accuracy": 1}], 2),
         "no entry for head_layers=2"),
        (lambda: H.transfer_network_view([{"head_layers": 1, "compression": 1, "transfer_accuracy": 1}], 1),
         r"need the kept layer index \('layer'\)"),
        (lambda: H.feature_scatter(np.ones((1, 4, 2)), np.arange(4) % 2, 3), r"layer must be in \[0, 0\], got 3"),
        (lambda: H.feature_scatter(np.ones((4, 2)), np.arange(4) % 2, 0),
         r"projections must have shape \(L, N, 2\), got \(4, 2\)"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _fits_canvas(fig: Figure) -> bool:
    """Whether everything drawn (labels, ticks, legends, titles) lies inside the figure: nothing is cut at the edge."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    width, height = fig.get_size_inches()
    return box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height


def test_feature_scatter_explorer_keeps_its_axes():
    # layers of very different scale and 10 classes, as in chapter 1: fixed axes, readable legend, nothing cut
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 5)
    proj = np.stack([rng.standard_normal((50, 2)), 100 * rng.standard_normal((50, 2)) + 300 * np.eye(10, 2)[y]])
    fixed = {"projections": proj, "labels": y, "compression": [1.5, 0.001]}
    ex = widgets.explorer(H.feature_scatter, [widgets.Param("layer", [0, 1], fmt="{:d}")], dpi=40, fixed=fixed)
    assert len(ex.frames) == 2
    with mpl.rc_context(widgets.FRAME_STYLE):
        assert _fits_canvas(H.feature_scatter(layer=1, **fixed))


def test_depth_view_explorer_keeps_each_metrics_axes():
    depths = [{"depth": L, "layers": _layers(n_nonlinear=L - 1, n_linear=0, ratio=0.9 - 0.1 * L)} for L in (3, 5)]
    params = [widgets.Param("depth", [3, 5], fmt="{:d}")]
    for metric in ("compression", "discrimination", "numerical_rank"):  # one metric: the same axes at every depth
        widgets.explorer(H.depth_view, params, dpi=40, fixed={"depths": depths, "metric": metric})
    ex = widgets.explorer(H.depth_view, [*params, widgets.Param("metric", ["compression", "numerical_rank"], fmt="{}")],
                          dpi=40, fixed={"depths": depths}, fixed_axes=False)
    assert len(ex.frames) == 4


def test_transfer_network_view_explorer_keeps_its_axes():
    # grow mode: every head has its own, differently long table
    heads = [{"head_layers": h, "layer": 2, "compression": 0.1 / h, "transfer_accuracy": 0.9,
              "layers": _layers(n_nonlinear=2, n_linear=h, ratio=0.2 + 0.2 * h)} for h in (1, 2)]
    ex = widgets.explorer(H.transfer_network_view, [widgets.Param("head_layers", [1, 2], fmt="{:d}")], dpi=40,
                          fixed={"heads": heads})
    assert len(ex.frames) == 2


def test_train_test_figure_draws_both_splits_and_their_fits():
    train = _layers(ratio=0.3)
    test = [{**r, "compression": 2.0 * 0.6 ** r["layer"], "discrimination": 0.2 + 0.05 * r["layer"]} for r in train]
    fig = H.train_test_figure({"hybrid": (train, test)}, fit_layers={"hybrid": [1, 2, 3, 4, 5]})
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax_c, ax_d = fig.axes
    assert ax_c.get_yscale() == "log" and ax_d.get_yscale() == "linear"
    lines = ax_c.get_lines()
    assert [line.get_linestyle() for line in lines] == ["-", "--"]
    np.testing.assert_allclose(lines[1].get_ydata(), 2.0 * 0.6 ** np.arange(6))
    labels = [t.get_text() for t in ax_c.get_legend().get_texts()]
    assert labels == ["hybrid, train (ratio 0.30)", "hybrid, held-out (ratio 0.60)"]
    np.testing.assert_allclose(ax_d.get_lines()[1].get_ydata(), 0.2 + 0.05 * np.arange(6))
    assert len(H.train_test_figure({"a": (train, test), "b": (train, train)}).axes[0].get_lines()) == 4
    with pytest.raises(ValueError, match="at least one"):
        H.train_test_figure({})
    with pytest.raises(ValueError, match="pair"):
        H.train_test_figure({"hybrid": train})
    with pytest.raises(ValueError, match="different layers"):
        H.train_test_figure({"hybrid": (train, test[:-1])})
    with pytest.raises(ValueError, match="fit_layers names"):
        H.train_test_figure({"hybrid": (train, test)}, fit_layers={"mlp": [1, 2]})


def _history(epochs=(0, 10, 20, 30), n_layers=6, part=(2, 3, 4, 5)):
    """A training history whose linear part compresses faster as training goes on (ratio 0.9 -> 0.3)."""
    out = []
    for i, e in enumerate(epochs):
        ratio = 0.9 - 0.6 * i / (len(epochs) - 1)
        c = [2.0 * ratio ** max(0, l - part[0] + 1) if l >= part[0] else 2.0 for l in range(n_layers)]
        out.append({"epoch": e, "loss": 1.0 / (1 + e), "accuracy": min(1.0, 0.5 + 0.02 * e), "compression": c,
                    "discrimination": [0.5] * n_layers})
    return out


def test_history_fits_follow_the_records():
    fits = H.history_fits(_history(), [2, 3, 4, 5])
    np.testing.assert_array_equal(fits["epoch"], [0, 10, 20, 30])
    np.testing.assert_allclose(fits["ratio"], [0.9, 0.7, 0.5, 0.3])
    np.testing.assert_allclose(fits["r2"], 1.0)
    assert fits["accuracy"][-1] == 1.0 and fits["loss"][0] == 1.0
    with pytest.raises(ValueError, match="at least 3 layers"):
        H.history_fits(_history(), [4, 5])
    with pytest.raises(ValueError, match="record_every"):
        H.history_fits([], [2, 3, 4])


def test_emergence_epoch_view_and_loss_figures():
    hist = _history()
    fig = H.emergence_figure([hist, hist], [2, 3, 4, 5], (10, 30), ratio_band=(0.15, 0.4), paper_ratio=0.26)
    assert len(fig.axes) == 3 and len(fig.axes[1].get_lines()) >= 3   # one line per seed and the paper's ratio
    with pytest.raises(ValueError, match="not recorded"):
        H.emergence_figure([hist], [2, 3, 4, 5], (15,))
    view = H.epoch_view(hist, [2, 3, 4, 5], 20)
    assert "epoch 20" in view.axes[0].get_title() and "accuracy 90.0 %" in view.axes[0].get_title()
    assert view.axes[0].get_ylim() == H.epoch_view(hist, [2, 3, 4, 5], 0).axes[0].get_ylim()   # axes stay put
    with pytest.raises(ValueError, match="not recorded"):
        H.epoch_view(hist, [2, 3, 4, 5], 5)
    loss = H.training_curves_figure({"net": [[1.0, 0.1, 0.01], [1.0, 0.2, 0.02]]}, loss_threshold=0.05)
    assert len(loss.axes[0].get_lines()) == 3
    with pytest.raises(ValueError, match="no loss curve"):
        H.training_curves_figure({"net": []})


def test_layer_curves_shade_the_range_over_seeds():
    seeds = [_layers(ratio=r) for r in (0.25, 0.3, 0.35)]
    fig = H.layer_curves({"hybrid": seeds[1]}, bands={"hybrid": seeds})
    assert len(fig.axes[0].collections) >= 1   # the shaded range
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("range over 3 seeds" in s for s in labels)
    with pytest.raises(ValueError, match="bands names"):
        H.layer_curves({"hybrid": seeds[1]}, bands={"mlp": seeds})
    with pytest.raises(ValueError, match="same layers"):
        H.layer_curves({"hybrid": seeds[1]}, bands={"hybrid": [_layers(n_linear=4)]})
