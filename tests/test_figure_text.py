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
    fig = _two_panels()
    text = plotting.alt_text(fig)
    # the kind of plot and the axes, read from the artists, then what it shows (layerwise_plot's describe sentence)
    # each panel named by the letter the figure shows on it (pnc.plotting.panel_letters)
    assert text.startswith("2 panels: (a) line chart of compression C_l (log scale) against layer l; (b) line chart of "
                           "discrimination D_l against layer l. Compression C_l falls from 12 to 1e-5 over layers 0 "
                           "to 5, a geometric rate of 0.0618")
    assert "measured: falls" not in text  # per-series values are in the data table
    assert "$" not in text and "\\" not in text  # mathtext made plain
    # without the sentence, the panels' first and last values say it
    plain = plotting.alt_text(plotting.describe(fig, ""))
    assert "Panel (a): titled 'within / between class variation'; measured: falls from 12 at layer l = 0 to 1e-5 at 5" \
        in plain
    assert "Panel (b):" in plain and "rises from 0.1 at layer l = 0 to 0.972 at 5" in plain


def test_alt_text_is_short_where_the_figure_says_what_it_shows() -> None:
    fig = Figure()
    ax = fig.subplots()
    for k in range(8):
        ax.plot(np.arange(50), np.geomspace(1, 10.0 ** -k, 50), label=f"seed {k}")
    text = plotting.alt_text(plotting.describe(fig, "Every seed falls, the last to 1e-7"))
    assert text == "Line chart of values. Every seed falls, the last to 1e-7."
    panels = Figure().subplots(2, 4)
    for a in panels.flat:
        a.scatter([1, 2], [3, 4])
    text = plotting.alt_text(panels.flat[0].figure)
    assert text.startswith("8 panels: (a)–(h) 8 scatter plots of values. Panel (a): ")
    assert "Panel (b): " in text and "Panel (c)" not in text
    assert text.endswith("The values of the other 6 panels are in the data table.")


def test_describe_opens_the_alt_text_and_alt_replaces_it() -> None:
    fig = plotting.describe(_two_panels(), "The compression falls by six decades over five layers")  # replaces it
    assert plotting.alt_text(fig).endswith("against layer l. The compression falls by six decades over five layers.")
    assert plotting.alt_text(fig, prefix="View at ξ = 0.3").startswith("View at ξ = 0.3. 2 panels: (a) line chart")
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
    assert text.endswith("; 3 more series in the data table.")


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
    assert html.count("<table>") == 2 and "<caption>Panel (a): within / between class variation</caption>" in html
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
        assert alt == f"View at scale s = {value:g}. Line chart of values. A line that ends at {3 * value:g}."
        assert len(alt) >= 40
        assert html.count('class="pnc-frame-image dark-light"') == 2 and "<details" in html  # light and dark
        assert f"<td>{3 * value:g}</td>" in html


def test_a_curve_whose_printed_ends_agree_stays_and_a_stuck_network_is_named() -> None:
    """A loss that moves from 1 to 0.9996 is read as staying at 1 (not "falls from 1 to 1"), and the loss-curve
    figure's summary names the network that does not train instead of saying every seed's loss falls."""
    from pnc.book.figures import hierarchy

    stuck, trained = np.linspace(1.0, 0.9996, 50), np.geomspace(1.0, 0.003, 50)
    fig = hierarchy.training_curves_figure({"flat": [stuck, stuck], "fit": [trained]}, 0.01)
    assert "The training loss stays near its start for the flat and falls for the others" in plotting.alt_text(fig)
    text = plotting.alt_text(plotting.describe(fig, ""))
    assert "flat (2 seeds): stays at 1 from epoch = 1 to 50" in text
    assert "fit (1 seed): falls from 1 at epoch = 1 to 0.003 at 50" in text
    both = plotting.alt_text(hierarchy.training_curves_figure({"fit": [trained]}))
    assert "The training loss of every seed falls over training" in both


def test_the_site_serves_figure_renderings_as_files(tmp_path) -> None:
    """book_ext/pnc_site.py moves each rendering of a figure out of the page's body into _images/ (named by content),
    and the light and dark images of each explorer frame out of the page's widget state (a JSON string in a script
    of the page), which stays valid JSON."""
    import importlib.util
    import json
    from pathlib import Path
    from types import SimpleNamespace

    from sphinx.builders.html._assets import _JavaScript

    spec = importlib.util.spec_from_file_location("pnc_site", Path(__file__).parents[1] / "book_ext" / "pnc_site.py")
    site = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(site)
    fig = _two_panels()
    renderings = plotting.figure_renderings(fig)
    ex = explorer(_frame, [Param("scale", [1.0, 5.0], label="scale $s$")], dpi=30)
    state = json.dumps({"state": {"m": {"model_name": "HTMLModel", "state": {"value": ex.pages[(0,)]}}}})
    assert state.count("data:image/png") == 2  # the frame's light and dark images
    other = _JavaScript("other.js", priority=200)
    scripts = [other, _JavaScript(None, priority=500, type=site.WIDGET_STATE, body=state)]
    context = {"body": plotting.figure_html(fig, renderings), "script_files": scripts,
               "pathto": lambda name, resource=0: "../" + name}
    site._figures_as_files(SimpleNamespace(outdir=str(tmp_path)), "chapters/x", "page.html", context, None)
    body = context["body"]
    files = re.findall(r'(?:src|srcset)="\.\./(_images/pnc-[0-9a-f]{24}\.png)"', body)
    assert len(files) == len(renderings) == 4 and "data:image/png" not in body
    assert sorted((tmp_path / f).read_bytes() for f in files) == sorted(renderings.values())
    assert context["script_files"][0] is other
    moved = context["script_files"][1].attributes["body"]
    value = json.loads(moved)["state"]["m"]["state"]["value"]  # still JSON
    frame_files = re.findall(r'src="\.\./(_images/pnc-[0-9a-f]{24}\.png)"', value)
    assert len(frame_files) == 2 and "data:image/png" not in moved
    assert (tmp_path / frame_files[0]).read_bytes() == ex.frames[(0,)]  # the light one first
    assert _luminance_of((tmp_path / frame_files[1]).read_bytes()) < 0.35 < _luminance_of(ex.frames[(0,)])


def _luminance_of(png: bytes) -> float:
    import io

    from matplotlib.image import imread

    rgb = imread(io.BytesIO(png))[..., :3]
    return float((rgb @ np.array([0.2126, 0.7152, 0.0722])).mean())
