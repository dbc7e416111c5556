"""Explorers of trained networks as data plotted in the page (pnc.book.widgets.DataExplorer, issue #25).

The extractor reads back from a figure exactly what the page draws: lines with their colours (light, and dark from
the themed figure), dashes and markers; log and linear scales with the fixed limits; axhline/axvline as reference
lines; axvspan as a band; figure and axes texts as lines of text. An artist it cannot draw faithfully is a ValueError
naming it. An explorer of a real book render function holds one view per grid point, each the data of that figure.
"""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.figure import Figure

from pnc import plotting
from pnc.book import widgets
from pnc.book.figures import hierarchy
from pnc.book.widgets import DataExplorer, figure_data, label_text, round_sig, tick_text


def _fig() -> Figure:
    fig = Figure(figsize=(6.4, 3.2))
    return fig


def test_lines_colours_dashes_markers_and_labels() -> None:
    fig = _fig()
    ax = fig.subplots()
    ax.plot([0, 1, 2], [1.0, 2.0, 3.0], "o-", color=plotting.COLORS[0], label="measured $C_l$")
    ax.plot([0, 2], [3.0, 1.0], "--", color="0.7")  # unlabelled
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(r"$\kappa$")
    ax.set_title("epoch 3")
    ax.set_xlim(-0.5, 2.5)
    ax.set_ylim(0, 4)
    data = figure_data(fig)
    (panel,) = data["panels"]
    assert panel["title"] == ["epoch 3"]
    assert panel["x"]["label"] == "layer l" and panel["y"]["label"] == "κ"
    assert panel["x"]["scale"] == "linear" and panel["x"]["range"] == [-0.5, 2.5] and panel["y"]["range"] == [0, 4]
    first, second = panel["series"]
    assert first["kind"] == "line" and first["x"] == [0, 1, 2] and first["y"] == [1, 2, 3]
    assert first["label"] == "measured C_l" and first["legend"] is True
    assert first["color"] == plotting.COLORS[0] and first["dark"] == plotting.COLORS_DARK[0]
    assert first["marker"] == "o" and first["line"] is True and first["dash"] is None
    assert second["legend"] is False and second["marker"] is None
    width = second["width"]
    assert second["dash"] == pytest.approx([v * width for v in mpl.rcParams["lines.dashed_pattern"]], abs=0.01)
    # a grey of the light style is a dark grey in the dark one (pnc.plotting.themed)
    assert second["color"] == "#b2b2b2" and second["dark"] != second["color"]
    assert [t[0] for t in panel["x"]["ticks"]] == [-0.5, 0, 0.5, 1, 1.5, 2, 2.5]  # the ticks matplotlib drew
    assert panel["x"]["ticks"][0][1] == "−0.5"


def test_log_axes_reference_lines_bands_and_texts() -> None:
    fig = _fig()
    ax_c, ax_r = fig.subplots(1, 2)
    ax_c.semilogy([0, 1, 2, 3], [1.0, 0.1, 0.01, np.nan], "o-", label="C")
    ax_c.set_ylim(1e-3, 10)
    ax_c.axvspan(0.75, 2.25, color="0.9", lw=0)
    ax_c.axhline(0.5, ls=":", color=plotting.COLORS[1], label="level")
    ax_r.plot([1, 2, 3], [1.0, 2.0, 3.0])
    ax_r.axvline(2.0, color="0.5")
    ax_r.annotate("last: C = 0.25", xy=(0.03, 0.04), xycoords="axes fraction")
    fig.text(0.5, 0.9, "run A: final loss $10^{-3}$\nsecond line")
    fig.suptitle("title")
    data = figure_data(fig)
    assert data["texts"] == ["title", "run A: final loss 10⁻³", "second line"]
    left, right = data["panels"]
    assert (left["row"], left["col"], right["col"], left["cols"]) == (0, 0, 1, 2)
    assert left["y"]["scale"] == "log" and left["y"]["range"] == [0.001, 10]
    line, level = left["series"]
    assert line["y"] == [1, 0.1, 0.01, None]  # NaN: a gap
    assert level["kind"] == "hline" and level["y"] == 0.5 and level["label"] == "level"
    assert level["dash"] is not None and level["color"] == plotting.COLORS[1]
    (band,) = left["bands"]
    assert band["x"] == pytest.approx([0.75, 2.25]) and band["color"] == "#e6e6e6" and band["dark"] != band["color"]
    assert right["notes"] == ["last: C = 0.25"]
    assert right["series"][1]["kind"] == "vline" and right["series"][1]["x"] == 2.0
    assert json.dumps(data, allow_nan=False)  # the page's JSON: no NaN


def test_symlog_scale_and_six_significant_digits() -> None:
    fig = _fig()
    ax = fig.subplots()
    ax.plot([0, 10, 100], [1 / 3, 2 / 3, 1.0])
    ax.set_xscale("symlog", linthresh=10)
    panel = figure_data(fig)["panels"][0]
    assert panel["x"]["scale"] == "symlog" and panel["x"]["linthresh"] == 10
    assert panel["series"][0]["y"] == [0.333333, 0.666667, 1.0]
    assert round_sig(math.pi) == 3.14159 and round_sig(float("inf")) is None


def test_label_and_tick_text() -> None:
    assert label_text(r"fit: ratio 0.51, $R^2$ 0.99") == "fit: ratio 0.51, R² 0.99"
    assert label_text(r"$(C_l/C_{l-1})\,/\,\kappa$") == "(C_l/C_(l-1)) / κ"
    assert tick_text(r"$\mathdefault{10^{-2}}$") == "10⁻²"
    assert tick_text("-0.5") == "−0.5"


@pytest.mark.parametrize(("draw", "name"), [
    (lambda ax: ax.scatter([1, 2], [3, 4], label="samples"), "PathCollection 'samples'"),
    (lambda ax: ax.imshow(np.eye(3)), "AxesImage"),
    (lambda ax: ax.bar([1, 2], [3, 4]), "Rectangle"),
    (lambda ax: ax.fill_between([1, 2], [0, 0], [1, 1]), "FillBetweenPolyCollection|PolyCollection"),
    (lambda ax: ax.axhspan(0.2, 0.4), "not a vertical span"),
    (lambda ax: ax.plot([0, 2, 1], [0, 1, 2]), "not strictly monotonic"),
    (lambda ax: ax.twinx(), "twin axes"),
])
def test_an_artist_the_page_cannot_draw_is_a_value_error(draw, name: str) -> None:
    fig = _fig()
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    draw(ax)
    with pytest.raises(ValueError, match=name):
        figure_data(fig)


def test_not_a_figure() -> None:
    with pytest.raises(ValueError, match="needs a matplotlib Figure"):
        figure_data("figure")  # type: ignore[arg-type]


def _history() -> list[dict]:
    rng = np.random.default_rng(7)
    return [{"epoch": e, "loss": 1.0 / e, "accuracy": 0.5 + e / 100,
             "compression": list(np.exp(-0.2 * np.arange(7) * e / 20) * (1 + 0.1 * rng.random(7)))}
            for e in (5, 10, 20)]


class _Parse(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.config = ""
        self._in_config = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_config = tag == "script" and dict(attrs).get("class") == "pnc-live-config"

    def handle_data(self, data: str) -> None:
        if self._in_config:
            self.config += data


def test_epoch_view_explorer_has_one_view_per_grid_point() -> None:
    history = _history()
    params = [widgets.Param("epoch", [5, 10, 20], label="epoch", fmt="{:d}", default=10)]
    ex = widgets.explorer(hierarchy.epoch_view, params, title="Along training", caption="C_l per layer.",
                          fixed={"history": history, "fit_layers": [1, 2, 3, 4]}, in_page=True)
    assert isinstance(ex, DataExplorer)
    config = ex.config()
    assert config["kind"] == "data" and len(config["views"]) == 3
    assert config["params"] == [{"name": "epoch", "label": "epoch", "values": ["5", "10", "20"], "default": 1,
                                 "choice": False}]
    for epoch, view in zip((5, 10, 20), config["views"], strict=True):
        with mpl.rc_context(widgets.FRAME_STYLE):
            assert view == figure_data(hierarchy.epoch_view(history, [1, 2, 3, 4], epoch))
        (panel,) = view["panels"]
        chosen = [s for s in panel["series"] if s["label"] == f"epoch {epoch}"]
        assert chosen[0]["y"] == [round_sig(v) for v in history[[5, 10, 20].index(epoch)]["compression"]]
        assert panel["y"]["scale"] == "log" and len(panel["bands"]) == 1
    assert ex.view(epoch=20) is config["views"][2]
    with pytest.raises(ValueError, match="not a grid value"):
        ex.view(epoch=7)
    # the page: a named group with the slider over the grid and the JSON the script reads
    parsed = _Parse()
    parsed.feed(ex.html())
    group = parsed.tags[0][1]
    assert group["role"] == "group" and group["aria-label"] == "Along training"
    assert "pnc-live " in group["class"] and "pnc-live-data" in group["class"]
    slider = next(attrs for tag, attrs in parsed.tags if tag == "input")
    assert (slider["type"], slider["min"], slider["max"], slider["value"], slider["aria-valuetext"]) == \
        ("range", "0", "2", "1", "10")
    assert json.loads(parsed.config) == json.loads(json.dumps(config))
    # the PDF and plain viewers get the default view as a PNG; the site the HTML
    bundle = ex._repr_mimebundle_()
    assert set(bundle) == {"text/html", "image/png", "text/plain"} and "epoch = 10" in bundle["text/plain"]


def test_categorical_parameter_is_a_radio_group_and_axes_must_stay_put() -> None:
    def render(kind: str, k: int) -> Figure:
        fig = Figure()
        ax = fig.subplots()
        ax.plot([0, 1, 2], [k, k + 1, k + 2] if kind == "up" else [k + 2, k + 1, k])
        ax.set_ylim(0, 5)
        return fig

    ex = widgets.explorer(render, [widgets.Param("kind", ["up", "down", "flat"], fmt="{}"),
                                   widgets.Param("k", [0, 1, 2])], in_page=True)
    assert len(ex.views) == 9 and ex.config()["params"][0]["choice"] is True
    assert 'type="radio"' in ex.html() and 'role="radiogroup"' in ex.html()
    assert ex.view(kind="down", k=2)["panels"][0]["series"][0]["y"] == [4, 3, 2]

    def moving(k: int) -> Figure:
        fig = Figure()
        fig.subplots().plot([0, 1], [0, k])
        return fig

    with pytest.raises(ValueError, match="has axes"):
        widgets.explorer(moving, [widgets.Param("k", [1, 10])], in_page=True)
    assert len(widgets.explorer(moving, [widgets.Param("k", [1, 10])], in_page=True, fixed_axes=False).views) == 2


def test_an_unsupported_view_names_the_grid_point() -> None:
    def render(k: int) -> Figure:
        fig = Figure()
        ax = fig.subplots()
        ax.scatter([0, 1], [k, k])
        return fig

    with pytest.raises(ValueError, match=r"view \{'k': 1\}: PathCollection"):
        widgets.explorer(render, [widgets.Param("k", [1, 2])], in_page=True)


# ----------------------------------------------------------------------------- the book's other render functions
# Each explorer the chapters draw from its data: its render function gives figures the extractor represents in full.

def _check_views(ex: DataExplorer) -> None:
    assert isinstance(ex, DataExplorer)
    for view in ex.views:
        assert view["panels"] and all(p["series"] for p in view["panels"])
        json.dumps(view, allow_nan=False)


def test_the_other_book_explorers_are_data() -> None:
    import torch
    from torch import nn

    from pnc import data
    from pnc.book import assumptions, dln
    from pnc.book.figures import assumptions as assumption_figures
    from pnc.book.figures import dln as fig_dln
    from pnc.book.figures import measure_own
    from pnc.train import TrainConfig

    rows = [{"layer": lay, "kind": "linear", "compression": 2.0 * 0.3 ** lay, "discrimination": 0.3 + 0.1 * lay,
             "numerical_rank": 50 - 5 * lay} for lay in range(6)]
    depths = [{"depth": d, "layers": rows[:d + 1]} for d in (3, 5)]
    ex = widgets.explorer(hierarchy.depth_view, [widgets.Param("depth", [3, 5], fmt="{:d}"),
                                                 widgets.Param("metric", ["compression", "numerical_rank"], fmt="{}")],
                          fixed={"depths": depths}, fixed_axes=False, in_page=True)
    _check_views(ex)
    assert ex.view(depth=3, metric="compression")["panels"][0]["y"]["scale"] == "log"
    assert ex.view(depth=3, metric="numerical_rank")["panels"][0]["y"]["scale"] == "linear"

    heads = [{"head_layers": h, "layer": 2, "compression": 0.1 / h, "transfer_accuracy": 0.9, "layers": rows}
             for h in (1, 2)]
    designs = {"grow": {"heads": heads}, "cut": {"heads": heads}}
    ex = widgets.explorer(hierarchy.transfer_design_view, [widgets.Param("design", list(designs), fmt="{}"),
                                                           widgets.Param("head_layers", [1, 2], fmt="{:d}")],
                          fixed={"designs": designs}, in_page=True)
    _check_views(ex)
    panel = ex.view(design="cut", head_layers=2)["panels"][0]
    assert panel["title"][0] == "cut" and [s["kind"] for s in panel["series"]] == ["line", "line", "vline"]

    X, y = data.orthogonal_dataset(4, 3, 12, seed=0)
    cfg = TrainConfig(lr=0.05, alpha=10.0, epochs=20, schedule="constant")
    grid = dln.trajectory_grid(X, y, [0.2, 0.3], [2, 3], cfg, every=10)
    ex = widgets.explorer(fig_dln.render_trajectory, [widgets.Param("xi", [0.2, 0.3]), widgets.Param("L", [2, 3])],
                          fixed={"trajectories": grid}, in_page=True)
    _check_views(ex)
    spectra, imbalance = ex.view(xi=0.3, L=3)["panels"]
    assert imbalance["x"]["scale"] == "symlog" and imbalance["y"]["scale"] == "symlog"
    assert [s["label"] for s in spectra["series"]] == ["W_1", "W_2", "W_3", "ξ"]
    assert spectra["series"][-1]["kind"] == "hline" and spectra["series"][-1]["y"] == 0.3

    runs = assumptions.failure_sweep({"init scale": ("xi", (0.3, 0.4)), "weight decay": ("weight_decay", (0.0, 0.01))},
                                     epochs=30)
    ex = widgets.explorer(assumption_figures.failure_frame,
                          [widgets.Param("mode", ("init scale", "weight decay"), fmt="{}"),
                           widgets.Param("severity", (0, 1), fmt="{:d}")], fixed={"runs": runs}, in_page=True)
    _check_views(ex)
    view = ex.view(mode="weight decay", severity=1)
    assert len(view["texts"]) == 2 and view["texts"][0].startswith("weight_decay = 0.01: final loss")
    assert [p["y"]["scale"] for p in view["panels"]] == ["log", "log"]

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Flatten(), nn.Linear(8, 5), nn.Tanh(), nn.Linear(5, 3))
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    features = torch.randn(60, 6, generator=g) + torch.eye(6)[labels] * 3
    ex = widgets.explorer(measure_own.measure_render, [widgets.Param("layers", ["children", "weights"], fmt="{}"),
                                                       widgets.Param("batch_size", [16, 128], fmt="{:d}")],
                          fixed={"model": model, "data": (features, labels)}, in_page=True)
    _check_views(ex)
    left = ex.view(layers="weights", batch_size=16)["panels"][0]
    assert left["notes"][0].startswith("last: C = ")
    assert [t[1] for t in left["x"]["ticks"]][:2] == ["in", "0"]  # the layer names, as the frame's tick labels


def test_a_live_kernel_gets_the_frame_explorer(monkeypatch: pytest.MonkeyPatch) -> None:
    def render(k: int) -> Figure:
        fig = Figure(figsize=(4.0, 2.5))
        ax = fig.subplots()
        ax.plot([0, 1, 2], [k, k + 1, k + 2])
        ax.set_ylim(0, 5)
        return fig

    ex = widgets.explorer(render, [widgets.Param("k", [0, 1])], in_page=True)
    monkeypatch.setenv("PNC_LIVE", "1")
    bundle = ex._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data and "text/html" not in data
    assert isinstance(ex.frames(), widgets.Explorer) and len(ex.frames().frames) == 2


def test_panels_carry_the_letters_the_captions_name() -> None:
    """A figure of two panels: each panel's data has the letter its renderings show ("a", "b" in reading order), as
    the captions name them; a one-panel figure has none."""
    fig = Figure(figsize=(6.4, 3.0), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot([0, 1], [1, 2])
    right.plot([0, 1], [2, 1])
    assert [p["letter"] for p in figure_data(fig)["panels"]] == ["a", "b"]
    fig = Figure(layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [1, 2])
    assert [p["letter"] for p in figure_data(fig)["panels"]] == [""]
