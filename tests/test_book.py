"""Build the whole book from scratch, executing every chapter, exactly as `python3 dev.py book` does.

The build runs with -W -n --keep-going, so a failing cell (including a sympy assertion), a broken cross-reference
or a bad citation fails this test. The build itself is the session fixture ``built_book`` in conftest.py, shared with
the browser tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT


@pytest.mark.book
def test_book_builds_every_chapter(built_book: Path) -> None:
    assert (built_book / "index.html").exists()
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            page = built_book / f"{chapter['file']}.html"
            assert page.exists(), f"missing page {page}"
    assert not list((built_book / "reports").glob("**/*.log")) if (built_book / "reports").exists() else True


@pytest.mark.book
def test_chapters_executed_and_glued_numbers(built_book: Path) -> None:
    page = (built_book / "chapters" / "04_progressive_compression.html").read_text()
    assert "Traceback" not in page
    # A glued number is rendered from the executed notebook, not typed into the prose.
    assert "0.2846" in page
    assert "<img" in page  # the glued figure


@pytest.mark.book
def test_site_serves_its_own_scripts(built_book: Path) -> None:
    """Widget embed script and MathJax come from the site's _static/ (vendored), never from a CDN."""
    static = built_book / "_static"
    for asset in ("ipywidgets/embed.js", "ipywidgets/widgets-shim.js", "mathjax/tex-mml-chtml.js",
                  "uplot/uPlot.iife.min.js", "pnc-live.js"):
        assert (static / asset).is_file(), f"vendored asset missing from the site: {asset}"
    for page in built_book.rglob("*.html"):
        sources = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", page.read_text(errors="replace"))
        remote = [src for src in sources if re.match(r"(https?:)?//", src)]
        assert not remote, f"{page.relative_to(built_book)} loads scripts from other hosts: {remote}"
        links = re.findall(r"<link[^>]*rel=\"stylesheet\"[^>]*href=\"([^\"]+)\"", page.read_text(errors="replace"))
        assert not [h for h in links if re.match(r"(https?:)?//", h)], f"{page}: remote stylesheet"


@pytest.mark.book
def test_chapters_have_launch_and_download_buttons(built_book: Path) -> None:
    page = (built_book / "chapters" / "04_progressive_compression.html").read_text()
    assert "colab.research.google.com/github/" in page
    assert "mybinder.org/v2/gh/" in page
    assert "_sources/chapters/04_progressive_compression.ipynb" in page  # notebook download


@pytest.mark.book
def test_ledger_page_lists_every_entry_with_a_status(built_book: Path) -> None:
    from pnc.book import ledger

    page = (built_book / "chapters" / "11_reproduction_ledger.html").read_text()
    rows = re.findall(r'<tr id="ledger-([\w-]+)" data-status="([a-z ]+)">', page)
    assert len(rows) >= 12
    assert [key for key, _ in rows] == [entry.key for entry in ledger.ENTRIES]
    assert {status for _, status in rows} <= set(ledger.STATUSES)
