"""Unit tests of pnc.book.widgets: the frame grid, defaults, the browser-side wiring, input checks, page weight."""

from __future__ import annotations

import hashlib
import itertools
import json

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pytest
from browser_support import STATE_MIME, VIEW_MIME, WidgetState, frame_png
from ipywidgets.embed import dependency_state, embed_data

from pnc.book.widgets import (
    FRAME_STYLE,
    MAX_FRAMES,
    Explorer,
    Param,
    explorer,
    figure_png,
    live_explorer,
    min_font_pt,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny(**values: object) -> plt.Figure:
    """A small figure whose pixels depend on every keyword (so frames differ)."""
    fig, ax = plt.subplots(figsize=(1.2, 0.8))
    ax.set_axis_off()
    ax.text(0.0, 0.5, ",".join(f"{k}={v}" for k, v in sorted(values.items())), fontsize=5)
    return fig


def two_sliders(**kwargs: object) -> Explorer:
    params = [Param("xi", [0.1, 0.2, 0.3], label="init scale ξ"), Param("L", [4, 6], label="depth L", fmt="{:d}")]
    return explorer(tiny, params, dpi=30, **kwargs)


def test_frames_cover_the_grid_and_are_png() -> None:
    calls: list[dict[str, object]] = []

    def render(**values: object) -> plt.Figure:
        calls.append(values)
        return tiny(**values)

    ex = explorer(render, [Param("a", [1, 2, 3]), Param("b", ["x", "y"], fmt="{}")], dpi=30, fixed={"c": 7})
    assert len(ex.frames) == 6 == len(calls)
    assert set(ex.frames) == set(itertools.product(range(3), range(2)))
    assert all(frame.startswith(PNG_MAGIC) for frame in ex.frames.values())
    assert len({hashlib.sha256(f).digest() for f in ex.frames.values()}) == 6
    assert all(call["c"] == 7 for call in calls)
    assert {(call["a"], call["b"]) for call in calls} == set(itertools.product([1, 2, 3], ["x", "y"]))
    assert not plt.get_fignums(), "render figures must be closed"


def test_default_index_middle_or_explicit() -> None:
    assert Param("a", [1, 2, 3, 4]).default_index == 1
    assert Param("a", [1, 2, 3]).default_index == 1
    assert Param("a", [1, 2, 3], default=3).default_index == 2
    ex = explorer(tiny, [Param("a", [1, 2, 3], default=1), Param("b", [5, 6, 7, 8])], dpi=30)
    assert [s.index for s in ex.sliders] == [0, 1]
    assert all(stack.selected_index == 0 for stack in ex.stacks[0])
    assert all(stack.selected_index == 1 for stack in ex.stacks[1])


def test_readout_labels_and_units() -> None:
    p = Param("n", [10, 20], label="samples n", unit="per class", fmt="{:d}")
    assert p.readout(10) == "10 per class"
    ex = explorer(tiny, [p], dpi=30, title="T", caption="C")
    (slider,) = ex.sliders
    assert slider.description == "samples n"
    assert [label for label, _ in slider.options] == ["10 per class", "20 per class"]
    assert isinstance(ex.widget, widgets.VBox) and "pnc-explorer" in ex.widget._dom_classes


def test_jslink_wiring_selects_the_precomputed_frame() -> None:
    ex = two_sliders()
    # one link per stack, from the slider index to the stack's selected_index
    assert len(ex.stacks[0]) == 1 and len(ex.stacks[1]) == 3
    wired = {(id(link.source[0]), link.source[1], id(link.target[0]), link.target[1]) for link in ex.links}
    expected = {(id(slider), "index", id(stack), "selected_index")
                for slider, stacks in zip(ex.sliders, ex.stacks, strict=True) for stack in stacks}
    assert wired == expected
    # following the nested stacks with any slider indices reaches exactly that frame
    (top,) = ex.stacks[0]
    for index in itertools.product(range(3), range(2)):
        node: widgets.Widget = top
        for i in index:
            node = node.children[i]
        assert isinstance(node, widgets.HTML) and node.value == ex.pages[index]
        assert frame_png(node.value) == ex.frames[index]


def test_embedded_state_maps_every_slider_position_to_its_frame() -> None:
    """What the static page embeds: decoding it the way the browser test does gives the frame for each position."""
    ex = two_sliders()
    data = embed_data(views=[ex.widget], drop_defaults=False,
                      state=dependency_state([ex.widget, *ex.links], drop_defaults=False))
    page = (f'<script type="{STATE_MIME}">{json.dumps(data["manager_state"])}</script>'
            f'<script type="{VIEW_MIME}">{json.dumps(data["view_specs"][0])}</script>')
    state = WidgetState.from_html(page)
    (view,) = state.views
    sliders = state.controls(view)
    assert len(sliders) == 2 and state.n_frames() == 6
    assert [state.name(m) for m in sliders] == ["SelectionSliderModel", "ToggleButtonsModel"]
    assert state.frame_bytes() == ex.page_bytes
    for index in itertools.product(range(3), range(2)):
        values = state.initial_values()
        for slider, i in zip(sliders, index, strict=True):
            state.set_value(values, (slider, "index"), i)
        assert state.expected_frames(view, values) == [hashlib.sha256(ex.frames[index]).hexdigest()]


def test_page_bytes_is_the_sum_of_frames() -> None:
    ex = two_sliders()
    assert ex.page_bytes == sum(len(f) for f in ex.frames.values()) > 0
    small = explorer(tiny, [Param("a", [1, 2])], dpi=25)
    large = explorer(tiny, [Param("a", [1, 2])], dpi=100)
    assert small.page_bytes < large.page_bytes


def test_mapping_params_and_repr() -> None:
    ex = explorer(tiny, {"a": [1, 2], "b": [3, 4]}, dpi=25)
    assert [p.name for p in ex.params] == ["a", "b"]
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Param("not a name", [1, 2]), "identifier"),
        (lambda: Param("a", [1]), "at least 2"),
        (lambda: Param("a", [1, 1]), "repeated"),
        (lambda: Param("a", [1, 2], default=3), "not one of its values"),
        (lambda: explorer(tiny, []), "at least one Param"),
        (lambda: explorer(tiny, [Param("a", [1, 2]), Param("a", [3, 4])]), "distinct"),
        (lambda: explorer(tiny, [("a", [1, 2])]), "Param objects"),
        (lambda: explorer(tiny, [Param("a", list(range(MAX_FRAMES + 1)))]), "MAX_FRAMES"),
        (lambda: explorer(tiny, [Param("a", [1, 2])], dpi=5), "dpi"),
        (lambda: explorer(tiny, [Param("a", [1, 2])], fixed={"a": 1}), "both fixed and sliders"),
        (lambda: explorer(lambda a: None, [Param("a", [1, 2])]), "matplotlib Figure"),
    ],
)
def test_bad_input_raises_value_error(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_figure_png_closes_the_figure() -> None:
    fig = tiny(a=1)
    data = figure_png(fig, dpi=30)
    assert data.startswith(PNG_MAGIC)
    assert not plt.fignum_exists(fig.number)


def test_two_way_choices_are_toggle_buttons() -> None:
    ex = two_sliders()
    assert isinstance(ex.sliders[0], widgets.SelectionSlider)
    assert isinstance(ex.sliders[1], widgets.ToggleButtons)
    assert ex.sliders[1].options == (("4", 0), ("6", 1)) and ex.sliders[1].index == 0


def moving_axes(scale: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(3.0, 2.0))
    ax.plot([0, 1], [0, scale])
    return fig


def fixed_axes(scale: float) -> plt.Figure:
    fig = moving_axes(scale)
    fig.axes[0].set_ylim(0, 10)
    return fig


def test_frames_must_share_axis_limits() -> None:
    with pytest.raises(ValueError, match="axis limits.*fixed_axes=False"):
        explorer(moving_axes, [Param("scale", [1.0, 5.0])], dpi=30)
    explorer(moving_axes, [Param("scale", [1.0, 5.0])], dpi=30, fixed_axes=False)
    assert len(explorer(fixed_axes, [Param("scale", [1.0, 5.0])], dpi=30).frames) == 2


def test_frame_text_must_be_readable_at_the_displayed_size() -> None:
    def small_legend(scale: float) -> plt.Figure:
        fig = fixed_axes(scale)
        fig.axes[0].legend(["line"], fontsize=3)
        return fig

    assert min_font_pt(6.4) == pytest.approx(16 * 72 * 6.4 / 720)  # 10.24 pt for the book's 6.4 in frames
    with pytest.raises(ValueError, match="'line' is 3 pt"):
        explorer(small_legend, [Param("scale", [1.0, 5.0])], dpi=30)


def test_caption_tells_the_browser_the_frame_text_size() -> None:
    ex = explorer(fixed_axes, [Param("scale", [1.0, 5.0])], dpi=30, caption="cap")
    caption = ex.widget.children[-1].value
    assert 'data-pnc-frame-dpi="30"' in caption and "cap" in caption
    smallest = float(caption.split('data-pnc-min-font-pt="')[1].split('"')[0])
    assert smallest == min(FRAME_STYLE["xtick.labelsize"], FRAME_STYLE["ytick.labelsize"])


def test_live_explorer_controls() -> None:
    box = live_explorer(tiny, [Param("a", [1, 3]), Param("x", [0.5, 1.5]), Param("s", ["u", "v"], fmt="{}")])
    kinds = [type(child) for child in box.children[:-1]]
    assert kinds == [widgets.IntSlider, widgets.FloatSlider, widgets.Dropdown]
    assert isinstance(box.children[-1], widgets.Image)
    plt.close("all")


def test_categorical_choices_are_toggle_buttons_numbers_are_sliders() -> None:
    ex = explorer(tiny, [Param("metric", ["C", "D", "rank"], fmt="{}"), Param("n", [1, 2, 3])], dpi=30)
    assert isinstance(ex.sliders[0], widgets.ToggleButtons)
    assert isinstance(ex.sliders[1], widgets.SelectionSlider)


def two_panels(k: int) -> plt.Figure:
    """A 6.4 in wide two-panel frame with body-size text (so that a phone needs its narrow rendering)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(6.4, 3.0), layout="constrained")
    left.plot([0, 1, 2], [k, k + 1, k + 2], label="rising")
    right.plot([0, 1, 2], [2, 1, 0], label="falling")
    for ax in (left, right):
        ax.set_xlim(-0.5, 2.5)
        ax.set_ylim(-1, 5)
        ax.legend(loc="upper left")
    return fig


def test_frames_offer_phones_a_narrow_rendering_with_readable_text() -> None:
    """Every frame, in both colour modes, has a narrow rendering (panels stacked) that a phone's browser picks, and
    its recorded smallest text shows at 9 CSS px or more in a phone's column; the wide frames are unchanged."""
    import re

    from pnc import plotting

    ex = explorer(two_panels, [Param("k", [0, 1])], dpi=72)
    for page in ex.pages.values():
        sources = re.findall(r'<source media="\(max-width: (\d+)px\)" srcset="data:image/png;base64,[^"]+" '
                             r'width="(\d+)" height="(\d+)"', page)
        assert len(sources) == 2, "a narrow rendering per colour mode"
        width, height = int(sources[0][1]), int(sources[0][2])
        assert int(sources[0][0]) == plotting.NARROW_SCREEN
        assert abs(width - plotting.NARROW_WIDTH * 100) <= 1 and height > width, "the two panels stacked"
        narrow_px = float(re.search(r'data-pnc-narrow-font-px="([0-9.]+)"', page).group(1))
        assert narrow_px * plotting.PHONE_COLUMN / width >= 9
        wide_px = float(re.search(r'data-pnc-font-px="([0-9.]+)"', page).group(1))
        assert wide_px * plotting.PHONE_COLUMN / 640 < 9, "the wide frame alone would be unreadable on a phone"
    assert all(frame.startswith(PNG_MAGIC) for frame in ex.frames.values())
