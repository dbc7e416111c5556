"""pnc.book.tables: significant digits (a tiny loss is not 0.0000), no pandas index, HTML/LaTeX/text forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pnc.book import tables
from pnc.report import LayerReport


@pytest.mark.parametrize(("value", "text"), [
    (3.2e-9, "3.2e-9"), (0.284613, "0.2846"), (13.5234, "13.52"), (123456.7, "1.235e5"), (7, "7"), (7.0, "7"),
    (np.int64(12), "12"), (0.0, "0"), (None, "—"), (float("nan"), "—"), (float("inf"), "∞"), (-0.5, "-0.5"),
    ("a ± b", "a ± b"), (True, "True"),
])
def test_numbers_keep_significant_digits(value, text) -> None:
    assert tables.format_number(value) == text


def test_a_frame_loses_its_index_and_keeps_small_numbers() -> None:
    frame = pd.DataFrame({"loss": [3e-9, 0.25], "name": ["a", "b"]}, index=pd.Index([10, 11], name="run"))
    t = tables.show(frame)
    assert t.columns == ("loss", "name") and t.rows == (("3e-9", "a"), ("0.25", "b"))
    assert t.numeric == (True, False) and not t.scroll
    html = t._repr_html_()
    assert "0.0000" not in html and '<td class="pnc-num">3e-9</td>' in html and "run" not in html
    kept = tables.show(frame, index=True)
    assert kept.columns == ("run", "loss", "name") and kept.rows[0] == ("10", "3e-9", "a")
    assert not hasattr(t, "_repr_latex_")  # myst-nb would set text/latex as mathematics in the PDF
    assert repr(t).splitlines() == ["loss  name", "3e-9  a", "0.25  b"]


def test_wide_tables_scroll_by_design_and_text_is_escaped() -> None:
    frame = pd.DataFrame({f"c{i}": [i] for i in range(8)})
    assert tables.show(frame).scroll and "pnc-wide" in tables.show(frame)._repr_html_()
    assert "pnc-scroll" in tables.show(frame, scroll=False)._repr_html_()  # any table scrolls on a phone
    assert not tables.show(frame, scroll=False).scroll
    odd = tables.show([{"a_b": "<x> & 50%"}])
    assert "&lt;x&gt; &amp; 50%" in odd._repr_html_() and "<x> & 50%" in repr(odd)


def test_a_layer_report_shows_its_columns() -> None:
    report = LayerReport(columns=("layer", "name", "compression", "note"),
                         rows=({"layer": 0, "name": "in", "compression": 1.23456, "note": ""},
                               {"layer": 1, "name": "fc", "compression": None, "note": ""}))
    t = tables.show(report, digits=3)
    assert t.columns == ("layer", "name", "compression") and t.rows[1] == ("1", "fc", "—")
    assert t.rows[0][2] == "1.23"


@pytest.mark.parametrize(("args", "match"), [
    (([],), "non-empty list of dicts"), ((42,), "got int"), ((pd.DataFrame({"a": []}),), "at least one row"),
    ((pd.DataFrame({"a": [1]}), 0), "digits"), ((pd.DataFrame({"a": [1]}), True), "digits"),
])
def test_bad_input_is_named(args, match) -> None:
    with pytest.raises(ValueError, match=match):
        tables.show(*args)
