"""Alternative text and data of figures (pnc.plotting.alt_text, data_tables, figure_html) and of explorer frames."""

from __future__ import annotations

import base64
import csv
import io
import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from pnc import plotting
from pnc.book.widgets import Param, explorer

FILE_NAME = re.compile(r"^\S*\.(png|jpe?g|svg|gif)$|/_images/|^[0-9a-f]{16,}", re.I)


def _two_panels() -> Figure:
    c = np.array([12.0, 0.6, 0.045, 2.8e-3, 1.6e-4, 1e-5])
    d = np.array([0.1, 0.851, 0.883, 0.913, 0.942, 0.972])
    return plotting.layerwise_plot(c, d, theory_compression=c * 1.1)


def test_alt_text_says_kind_axes_scale_and_key_numbers() -> None:
    text = plotting.alt_text(_two_panels())
    # layerwise_plot says what it shows first (its describe sentence), then the panels read from the artists
    assert text.startswith("Compression C_l falls from 12 to 1e-5 over layers 0 to 5, a geometric rate of 0.0618")
    assert "2 panels." in text
    assert "Line chart of compression C_l (log scale) against layer l" in text
    assert "measured: falls from 12 at layer l = 0 to 1e-5 at 5" in text
    assert "discrimination D_l" in text and "rises from 0.1 at layer l = 0 to 0.972 at 5" in text
    assert "$" not in text and "\\" not in text  # mathtext made plain


def test_describe_opens_the_alt_text_and_alt_replaces_it() -> None:
    fig = plotting.describe(_two_panels(), "The compression falls by six decades over five layers")  # replaces it
    assert plotting.alt_text(fig).startswith("The compression falls by six decades over five layers. 2 panels.")
    assert plotting.alt_text(fig, prefix="View at ξ = 0.3").startswith("View at ξ = 0.3. The compression")
    plotting.describe(fig, alt="Only this.")
    assert plotting.alt_text(fig) == "Only this."


def test_data_tables_hold_exactly_the_plotted_values() -> None:
    fig = Figure()
    ax = fig.subplots()
    ax.plot([0, 1, 2], [3.0, 2.0, 1.0], label="a")
    ax.plot([0, 1, 2], [5.0, 6.0, 7.0], label="b")
    ax.plot([0.5, 1.5], [9.0, 8.0], "o", label="$\\xi$")
    ax.scatter([1.0, 2.0], [3.0, 4.0], label="dots")
    ax.axhline(0.25, label="level")
    tables = plotting.data_tables(fig)
    assert tables[0][1] == ["x", "a", "b"] and tables[0][2] == [[0, 3, 5], [1, 2, 6], [2, 1, 7]]
    assert tables[1][1] == ["x", "ξ"] and tables[1][2] == [[0.5, 9.0], [1.5, 8.0]]
    assert tables[2][2] == [["dots", 1.0, 3.0], ["dots", 2.0, 4.0]]
    assert tables[3][2] == [["level", "horizontal", 0.25]]
    rows = list(csv.reader(io.StringIO(plotting.data_csv(fig))))
    assert rows[0] == ["table", "x", "a", "b"] and [float(v) for v in rows[1][1:]] == [0, 3, 5]
    text = plotting.alt_text(fig)
    assert text.startswith("Line chart of values; a: falls from 3 at 0 to 1 at 2; b: rises from 5 at 0 to 7 at 2")
    assert "level: a reference level at 0.25" in text


def test_figure_html_has_the_image_alt_and_folded_data() -> None:
    fig = _two_panels()
    png = plotting.figure_png(fig)
    html = plotting.figure_html(fig, png)
    alt = re.search(r'alt="([^"]*)"', html).group(1)
    assert len(alt) >= 40 and not FILE_NAME.search(alt)
    src = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(src) == png
    assert f'width="{int.from_bytes(png[16:20], "big") // plotting.FIGURE_SCALE}"' in html
    assert "<details" in html and "<summary>Data behind the figure</summary>" in html
    assert html.count("<table>") == 2 and "<caption>Panel 1: within / between class variation</caption>" in html
    csv_b64 = re.search(r'href="data:text/csv;charset=utf-8;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(csv_b64).decode() == plotting.data_csv(fig)


def test_long_tables_are_cut_on_the_page_but_not_in_the_csv() -> None:
    fig = Figure()
    fig.subplots().plot(np.arange(100), np.arange(100) ** 2)
    html = plotting.data_html(fig)
    assert html.count("<tr>") == plotting.MAX_TABLE_ROWS + 1
    assert "First 40 of 100 rows" in html
    assert len(plotting.data_csv(fig).splitlines()) == 101


@pytest.mark.parametrize("label, plain", [
    (r"$C_l / C_{l-1}$", "C_l / C_(l-1)"),
    (r"$\lVert\Gamma_l\rVert_F$", "‖Γ_l‖_F"),
    (r"law $C_0\kappa^l$, $\kappa$ = 0.3", "law C_0κ^l, κ = 0.3"),
    (r"fit $R^2$", "fit R^2"),
    (r"$\mathrm{NC1}$", "NC1"),
])
def test_plain_text(label: str, plain: str) -> None:
    assert plotting.plain_text(label) == plain


def _frame(scale: float) -> Figure:
    fig = Figure(figsize=(3.0, 2.0))
    ax = fig.subplots()
    ax.plot([0, 1, 2], [scale, 2 * scale, 3 * scale], label="line")
    ax.set_xlim(0, 2)
    ax.set_ylim(0, 20)
    ax.tick_params(labelsize=14)
    return plotting.describe(fig, f"A line that ends at {3 * scale:g}")


def test_every_explorer_frame_has_its_own_alt_text_and_data() -> None:
    ex = explorer(_frame, [Param("scale", [1.0, 5.0], label="scale $s$")], dpi=30)
    for (i,), html in ex.pages.items():
        value = (1.0, 5.0)[i]
        alt = re.search(r'alt="([^"]*)"', html).group(1)
        assert alt.startswith(f"View at scale s = {value:g}. A line that ends at {3 * value:g}.")
        assert len(alt) >= 40
        assert 'class="pnc-frame-image"' in html and "<details" in html
        assert f"<td>{3 * value:g}</td>" in html


def test_a_curve_whose_printed_ends_agree_stays_and_a_stuck_network_is_named() -> None:
    """A loss that moves from 1 to 0.9996 is read as staying at 1 (not "falls from 1 to 1"), and the loss-curve
    figure's summary names the network that does not train instead of saying every seed's loss falls."""
    from pnc.book.figures import hierarchy

    stuck, trained = np.linspace(1.0, 0.9996, 50), np.geomspace(1.0, 0.003, 50)
    text = plotting.alt_text(hierarchy.training_curves_figure({"flat": [stuck, stuck], "fit": [trained]}, 0.01))
    assert text.startswith("The training loss stays near its start for the flat and falls for the others")
    assert "flat (2 seeds): stays at 1 from epoch = 1 to 50" in text
    assert "fit (1 seed): falls from 1 at epoch = 1 to 0.003 at 50" in text
    both = plotting.alt_text(hierarchy.training_curves_figure({"fit": [trained]}))
    assert both.startswith("The training loss of every seed falls over training")
