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


# ------------------------------------------------------------------------------------------ themes and narrow screens

def _luminance(png: bytes) -> float:
    """Mean relative luminance (0 black .. 1 white, sRGB values weighted 0.2126/0.7152/0.0722) of a PNG."""
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float) / 255
    return float((rgb @ np.array([0.2126, 0.7152, 0.0722])).mean())


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _two_panel_figure() -> Figure:
    from pnc import plotting

    with matplotlib.rc_context():
        plotting.use_style()
        c = np.geomspace(1.5, 4e-4, 8)
        return layerwise_plot(c, np.linspace(0.03, 0.99, 8), theory_compression=c * 1.2)


def test_use_style_has_a_light_and_a_dark_theme():
    from pnc import plotting

    with matplotlib.rc_context():
        use_style("dark")
        assert matplotlib.rcParams["axes.facecolor"] == plotting.STYLES["dark"]["axes.facecolor"]
        assert matplotlib.rcParams["lines.linewidth"] == 2  # the shared part of the style
        use_style()
        assert matplotlib.rcParams["axes.facecolor"] == plotting.STYLES["light"]["axes.facecolor"]
        with pytest.raises(ValueError, match="theme must be one of"):
            use_style("sepia")


def test_dark_rendering_is_dark_and_the_figure_is_restored():
    from pnc import plotting

    fig = _two_panel_figure()
    line = fig.axes[0].get_lines()[0]
    for _ in range(3):  # constrained layout settles over the first draws
        light = plotting.figure_png(fig)
    with plotting.themed(fig, "dark"):
        assert matplotlib.colors.to_hex(line.get_color()) == plotting.COLORS_DARK[0]  # the palette maps to its twin
        assert matplotlib.colors.to_hex(fig.axes[0].xaxis.label.get_color()) == plotting.STYLES["dark"]["text.color"]
    dark = plotting.figure_png(fig, theme="dark")
    assert _luminance(light) > 0.65 and _luminance(dark) < 0.35
    assert matplotlib.colors.to_hex(line.get_color()) == plotting.COLORS[0]
    assert np.array_equal(_pixels(plotting.figure_png(fig)), _pixels(light))  # back as it was
    with pytest.raises(ValueError, match="theme must be one of"):
        plotting.figure_png(fig, theme="sepia")


def test_heat_map_keeps_its_colours_and_labels_in_dark_mode():
    from pnc import plotting

    fig = Figure()
    ax = fig.subplots()
    ax.imshow(np.arange(12.0).reshape(3, 4), cmap="viridis")
    label = ax.text(0, 0, "0", color="white")
    with plotting.themed(fig, "dark"):
        assert label.get_color() == "white"
        assert matplotlib.colors.to_hex(fig.patch.get_facecolor()) == plotting.STYLES["dark"]["figure.facecolor"]


def test_narrow_rendering_stacks_the_panels_and_its_text_fits_a_phone():
    from pnc import plotting

    fig = _two_panel_figure()
    left, right = fig.axes
    fig.draw_without_rendering()
    assert left.get_position().x1 <= right.get_position().x0  # side by side
    with plotting.narrowed(fig) as changed:
        assert changed
        fig.draw_without_rendering()
        assert tuple(fig.get_size_inches())[0] == plotting.NARROW_WIDTH
        assert left.get_position().y0 >= right.get_position().y1  # stacked, in reading order
        png = plotting.figure_png(fig)
    assert tuple(fig.get_size_inches()) == (10, 4)
    # on a 390 px phone the column is PHONE_COLUMN CSS px; the PNG is shown at most at its width over FIGURE_SCALE
    shown = min(plotting.PHONE_COLUMN, int.from_bytes(png[16:20], "big") / plotting.FIGURE_SCALE)
    natural = int.from_bytes(png[16:20], "big") / plotting.FIGURE_SCALE
    smallest_pt = min(t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip())
    assert smallest_pt * fig.dpi / 72 * shown / natural >= 9
    with plotting.narrowed(Figure(figsize=(4, 3))) as changed:
        assert not changed  # already narrow


def test_a_legend_covering_data_is_moved_off_it_in_every_rendering():
    from pnc import plotting

    fig = Figure(figsize=(10, 4))
    ax, other = fig.subplots(1, 2)
    x = np.linspace(0, 1, 30)
    for k in range(5):
        ax.plot(x, 1 - x + 0.02 * k, label=f"series {k}")
    ax.legend(loc="upper left")
    other.plot(x, x)
    assert plotting.legend_overlaps(fig) == [ax]
    with plotting._legends_clear_of_data(fig):
        assert plotting.legend_overlaps(fig) == []
        with plotting.narrowed(fig):
            assert plotting.legend_overlaps(fig) == []
    assert plotting.legend_overlaps(fig) == [ax]  # put back
    assert set(plotting.figure_renderings(fig)) == {(t, w) for t in plotting.THEMES for w in ("wide", "narrow")}


def test_figure_html_offers_each_theme_and_a_narrow_rendering():
    import base64
    import re

    from pnc import plotting

    fig = _two_panel_figure()
    html = plotting.figure_html(fig)
    pictures = re.findall(r'<picture class="pnc-theme-(\w+)"([^>]*)>(.*?)</picture>', html)
    assert [theme for theme, _, _ in pictures] == list(plotting.THEMES)
    # without the site's stylesheet (a notebook viewer) only the light one shows
    assert [style for _, style, _ in pictures] == ["", ' style="display: none"']
    pictures = [(theme, body) for theme, _, body in pictures]
    for theme, body in pictures:
        narrow = re.search(r'<source media="\(max-width: (\d+)px\)" srcset="data:image/png;base64,([^"]+)"', body)
        assert int(narrow.group(1)) == plotting.NARROW_SCREEN
        wide = re.search(r'<img class="pnc-figure-image dark-light" src="data:image/png;base64,([^"]+)"', body)
        luminance = _luminance(base64.b64decode(wide.group(1)))
        assert luminance < 0.35 if theme == "dark" else luminance > 0.65
        assert 'loading="lazy"' in body and f'alt="{plotting.escape(plotting.alt_text(fig))}"' in body
    assert html.count("<details") == 1  # one data block for both


def test_small_text_is_enlarged_and_long_titles_wrap_in_the_narrow_rendering():
    from pnc import plotting

    fig = _two_panel_figure()
    for ax in fig.axes:
        ax.tick_params(labelsize=7)
    fig.axes[1].set_title("a very long title that is wider than a phone's column at any readable size", fontsize=7)
    fig.axes[1].text(2, 0.5, "7.5", fontsize=7)
    assert plotting.smallest_text_pt(fig) == 7
    png = plotting.figure_renderings(fig)[("light", "narrow")]
    natural = int.from_bytes(png[16:20], "big") / plotting.FIGURE_SCALE
    pad = 2 * matplotlib.rcParams["savefig.pad_inches"]
    assert natural <= (plotting.NARROW_WIDTH + pad) * fig.dpi + 1  # the title wrapped instead of widening the image
    with plotting.narrowed(fig, plotting.NARROW_WIDTH, min_pt=10):
        smallest = plotting.smallest_text_pt(fig)
    assert smallest * fig.dpi / 72 * min(plotting.PHONE_COLUMN, natural) / natural >= 9
    assert plotting.smallest_text_pt(fig) == 7  # put back


def test_figure_html_records_the_smallest_text_of_each_rendering():
    """The browser test scales the recorded size by the width the shown image has, so each rendering needs its own:
    the narrow one enlarges 7 pt text, the wide one keeps it."""
    import re

    from pnc import plotting

    fig = _two_panel_figure()
    for ax in fig.axes:
        ax.tick_params(labelsize=7)
    html = plotting.figure_html(fig)
    wide = float(re.search(r'data-pnc-font-px="([0-9.]+)"', html).group(1))
    narrow = float(re.search(r'data-pnc-narrow-font-px="([0-9.]+)"', html).group(1))
    assert wide == pytest.approx(7 * fig.dpi / 72, abs=0.01)
    shown = plotting.PHONE_COLUMN / int(re.search(r'<source [^>]*width="(\d+)"', html).group(1))
    assert narrow * shown >= 9 > wide * shown


def test_a_legend_moved_below_its_panel_grows_the_figure_instead_of_shrinking_the_panel():
    """On a narrow figure a legend beside its axes hangs below them; the figure grows by the legend's height, so
    that the panel keeps its size and the legend stays on a full canvas (explorer frames are not cropped)."""
    from pnc import plotting

    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    for k in range(10):
        ax.plot([0, 1], [k, k + 1], "o", label=f"class {k}")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.draw_without_rendering()
    with plotting.narrowed(fig) as changed:
        assert changed
        fig.draw_without_rendering()
        panel_alone = ax.bbox.height
        with plotting._legends_clear_of_data(fig, beside=True):
            fig.draw_without_rendering()
            legend = ax.get_legend().get_window_extent()
            assert legend.y1 < ax.bbox.y0, "below the panel"
            assert legend.y0 >= 0 and legend.x0 >= 0 and legend.x1 <= fig.bbox.x1, "inside the canvas"
            assert ax.bbox.height >= 0.9 * panel_alone, "the panel keeps its size"
        assert fig.get_size_inches()[1] < 4.0  # put back
    assert tuple(fig.get_size_inches()) == (6.4, 3.6)


# ------------------------------------------------------------------------------------------------------ panel letters

def _drawn_letters(fig: Figure, render) -> list[tuple[str, float, float]]:
    """``(left title, axes x0, axes y1)`` of every axes of ``fig`` with a left title, as drawn while ``render`` runs
    (read in a draw event, so the state of each PNG, not of the figure before or after)."""
    seen: list[list[tuple[str, float, float]]] = []

    def record(event) -> None:
        seen.append([(ax.get_title("left"), ax.get_position().x0, ax.get_position().y1) for ax in fig.axes
                     if ax.get_title("left")])

    cid = fig.canvas.mpl_connect("draw_event", record)
    try:
        render()
    finally:
        fig.canvas.mpl_disconnect(cid)
    return seen[-1]


def test_every_rendering_of_a_two_panel_figure_carries_its_letters_in_reading_order():
    from pnc import plotting

    fig = _two_panel_figure()
    titles = [(ax.get_title(), ax.get_title("left")) for ax in fig.axes]
    assert list(plotting.panel_letters(fig).values()) == ["a", "b"]
    wide = _drawn_letters(fig, lambda: plotting.figure_png(fig, theme="dark"))
    assert [t for t, _, _ in wide] == [r"$\mathbf{(a)}$ within / between class variation",
                                       r"$\mathbf{(b)}$ 1 - max cosine of class means"]  # the centred title joins
    assert wide[0][1] < wide[1][1]  # (a) left of (b)
    with plotting.narrowed(fig):
        narrow = _drawn_letters(fig, lambda: plotting.figure_png(fig))
    assert [t.split()[0] for t, _, _ in narrow] == [r"$\mathbf{(a)}$", r"$\mathbf{(b)}$"]
    assert narrow[0][2] > narrow[1][2]  # stacked: (a) above (b)
    assert set(plotting.figure_renderings(fig)) == {(t, w) for t in plotting.THEMES for w in ("wide", "narrow")}
    assert [(ax.get_title(), ax.get_title("left")) for ax in fig.axes] == titles  # the figure is put back


def test_panel_letters_are_drawn_once_and_one_panel_gets_none():
    from pnc import plotting

    fig = Figure(figsize=(8, 3), layout="constrained")
    a, b = fig.subplots(1, 2)
    a.plot([0, 1])
    b.set_title("mode", loc="left")
    with plotting.panels_lettered(fig), plotting.panels_lettered(fig):  # nested: still one letter each
        assert [a.get_title("left"), b.get_title("left")] == [r"$\mathbf{(a)}$", r"$\mathbf{(b)}$ mode"]
        drawn = _drawn_letters(fig, lambda: plotting.figure_png(fig))  # rendering inside adds nothing either
    assert [t for t, _, _ in drawn] == [r"$\mathbf{(a)}$", r"$\mathbf{(b)}$ mode"]
    plotting.figure_png(fig)
    twice = _drawn_letters(fig, lambda: plotting.figure_png(fig))  # a second rendering: the same letters
    assert [t for t, _, _ in twice] == [r"$\mathbf{(a)}$", r"$\mathbf{(b)}$ mode"]
    assert [a.get_title("left"), b.get_title("left")] == ["", "mode"]
    single = Figure()
    ax = single.subplots()
    ax.plot([0, 1])
    single.colorbar(ax.imshow(np.eye(2)), ax=ax)  # a colour bar is no panel
    assert plotting.panel_letters(single) == {}
    assert _drawn_letters(single, lambda: plotting.figure_png(single)) == []


def test_panel_letters_follow_the_grid_and_twins_share_their_hosts():
    from pnc import plotting

    fig = Figure(figsize=(9, 5), layout="constrained")
    axes = fig.subplots(2, 3)
    twin = axes[0, 1].twinx()
    inset = axes[1, 0].inset_axes([0.6, 0.6, 0.3, 0.3])
    axes[1, 2].set_visible(False)
    letters = plotting.panel_letters(fig)
    assert [letters[ax] for ax in axes.flat[:5]] == ["a", "b", "c", "d", "e"]
    assert letters[twin] == "b" and inset not in letters and axes[1, 2] not in letters
    drawn = _drawn_letters(fig, lambda: plotting.figure_png(fig))
    assert [t for t, _, _ in drawn] == [rf"$\mathbf{{({c})}}$" for c in "abcde"]  # the twin draws no second (b)
    # a figure with fixed margins (an explorer frame): the letter sits in the panel's corner, then is removed
    frame = Figure(figsize=(6.4, 3.2), layout="none")
    left, right = frame.subplots(1, 2)
    with plotting.panels_lettered(frame):
        assert [t.get_text() for t in left.texts + right.texts] == [r"$\mathbf{(a)}$", r"$\mathbf{(b)}$"]
    assert len(left.texts) == len(right.texts) == 0
