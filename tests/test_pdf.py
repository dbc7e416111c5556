"""The PDF edition (``python3 dev.py pdf``): built from the same execution cache as the site, every figure embedded,
theorem boxes, exercises with their solutions and the bibliography in the text, pages that are not blank."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.book


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `python3 dev.py test` installs TeX Live and poppler-utils as root")
    return path


@pytest.fixture(scope="session")
def pdf_text(built_pdf: Path) -> str:
    result = subprocess.run([_tool("pdftotext"), "-layout", str(built_pdf), "-"], capture_output=True, text=True,
                            check=True)
    return result.stdout


def _pages(pdf: Path) -> int:
    info = subprocess.run([_tool("pdfinfo"), str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))


def _site_figures(built_book: Path) -> int:
    """Figures with an image on the site's chapter pages."""
    count = 0
    for page in (built_book / "chapters").glob("*.html"):
        blocks = re.findall(r"<figure\b.*?</figure>", page.read_text(), flags=re.DOTALL)
        count += sum("<img" in block for block in blocks)
    return count


def test_the_pdf_has_every_chapter_and_a_plausible_length(built_pdf: Path, pdf_text: str) -> None:
    pages = _pages(built_pdf)
    assert 60 <= pages <= 1000, pages
    for title in ("The progressive compression law", "Nonlinear and hybrid networks on real data",
                  "reproduction ledger", "Bibliography"):
        assert re.search(re.escape(title).replace(r"\ ", r"\s+"), pdf_text, re.IGNORECASE), title


def test_every_site_figure_is_embedded(built_pdf: Path, built_book: Path) -> None:
    listing = subprocess.run([_tool("pdfimages"), "-list", str(built_pdf)], capture_output=True, text=True,
                             check=True).stdout.splitlines()[2:]
    images = [line.split() for line in listing if line.strip()]
    large = [row for row in images if int(row[3]) >= 300 and int(row[4]) >= 150]  # width, height in pixels
    figures = _site_figures(built_book)
    assert figures >= 15
    assert len(large) >= figures, (len(large), figures)


def test_theorems_exercises_solutions_and_references_are_in_the_text(pdf_text: str) -> None:
    for word in ("Theorem", "Proposition", "Definition", "Exercise", "Solution", "Proof"):
        assert word in pdf_text, word
    assert "Wang" in pdf_text and "2311.02960" in pdf_text or "Understanding Deep Representation" in pdf_text
    for raw in ("{prf:", "{glue", "{cite", "{ref}", ":::"):
        assert raw not in pdf_text, raw
    assert "<Figure size" not in pdf_text


def test_rendered_pages_are_not_blank(built_pdf: Path, pdf_text: str, tmp_path: Path) -> None:
    """Pages spread over the book that hold text (LaTeX leaves some versos blank on purpose) render with ink."""
    from PIL import Image

    with_text = [i + 1 for i, page in enumerate(pdf_text.split("\f")) if len(page.strip()) > 200]
    assert len(with_text) >= 0.8 * _pages(built_pdf)
    picks = [with_text[int(q * (len(with_text) - 1))] for q in (0, 0.2, 0.4, 0.6, 0.8, 1)]
    for page in picks:
        stem = tmp_path / f"page-{page}"
        subprocess.run([_tool("pdftoppm"), "-f", str(page), "-l", str(page), "-r", "40", "-png", "-singlefile",
                        str(built_pdf), str(stem)], check=True)
        pixels = np.asarray(Image.open(f"{stem}.png").convert("L"), dtype=float)
        ink = float((pixels < 200).mean())
        assert ink > 0.002, (page, ink)  # the text (or figure) is drawn


@pytest.mark.browser
def test_every_page_links_the_pdf_edition(built_pdf: Path, pdf_site: Path, chromium) -> None:
    """The footer's "PDF edition" link, followed in the browser from the landing page and a chapter, gives this PDF."""
    from browser_support import open_page, serve

    expected = built_pdf.read_bytes()
    with serve(pdf_site) as site:
        for page_path in ("intro.html", "chapters/04_progressive_compression.html"):
            page, log = open_page(chromium, site + page_path)
            link = page.locator(".extra_footer a.pnc-pdf-link")
            assert link.count() == 1, page_path
            assert link.inner_text().strip() == "PDF edition"
            href = link.evaluate("a => a.href")
            response = page.request.get(href)
            assert response.status == 200, (page_path, href, response.status)
            assert response.body() == expected, (page_path, href)
            assert not log.problems(), log.problems()
            page.context.close()


_TEXT_TABLE_ROW = re.compile(r"^\s*(?:\S+ {2,}){3,}\S+\s*$")
"""A line of a table in its plain-text form: four or more cells apart by two or more spaces."""


def _text_table_rows(text: str) -> list[str]:
    """Lines of ``text`` that are table rows in plain text with at least three numbers."""
    number = re.compile(r"[-+]?[\d.]+(?:e[-+]?\d+)?%?|—|nan")
    return [line for line in text.split("\n")
            if _TEXT_TABLE_ROW.match(line) and sum(bool(number.fullmatch(t)) for t in line.split()) >= 3]


def test_the_text_table_detector_sees_a_table_in_plain_text() -> None:
    from pnc.book import tables

    shown = tables.show([{"layer": 0, "compression": 13.48, "discrimination": 0.9376, "ratio": 0.29},
                         {"layer": 1, "compression": 3.914, "discrimination": 0.95, "ratio": 0.28}])
    assert len(_text_table_rows(repr(shown))) == 2


def test_print_shows_tables_and_not_the_cells_that_fill_them(built_pdf: Path, pdf_text: str) -> None:
    """Tables are typeset (no plain-text table in a listing of book.tex), glue calls and glue/assert-only cells are
    not printed, and code a reader should read still is (book_ext/pnc_print.py)."""
    tex = (built_pdf.parent / "book.tex").read_text()
    listings = re.findall(r"\\begin\{sphinxVerbatim\}.*?\n(.*?)\\end\{sphinxVerbatim\}", tex, flags=re.DOTALL)
    assert len(listings) >= 50
    text_tables = [row for listing in listings for row in _text_table_rows(listing)]
    assert not text_tables, text_tables[:10]
    assert tex.count(r"\begin{tabulary}") + tex.count(r"\begin{longtable}") >= 20
    assert "glue(" not in pdf_text
    for bookkeeping in ("assert max(kappas) == kappa_few_n", "setting_runs = [recipes.run_recipe"):  # chapter 4
        assert bookkeeping not in pdf_text, bookkeeping
    assert re.search(r"config\s*=\s*train\.TrainConfig\(optimizer=", pdf_text)  # chapter 4's training, printed
