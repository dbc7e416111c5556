"""No page of the built site links a file that is not there (after ``python3 dev.py book`` alone, without the PDF
edition): every relative ``href`` and ``src`` of every page resolves to a file of the site, and the footer links
``pnc-book.pdf`` exactly when the site has it (book_ext/pnc_site.py)."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.book

_ATTR = re.compile(r"""<(?:a|link|script|img|source|iframe)\b[^>]*?\s(?:href|src)=["']([^"']*)["']""", re.I)
PDF = "pnc-book.pdf"


def internal_targets(page: Path, site: Path) -> list[tuple[str, Path]]:
    """``(link, file it names)`` for every relative link of ``page`` (no scheme, not only a fragment)."""
    found = []
    for raw in _ATTR.findall(page.read_text(errors="replace")):
        link = unescape(raw).strip()
        parts = urlsplit(link)
        if not link or parts.scheme or link.startswith(("//", "#")):
            continue
        target = (page.parent / unquote(parts.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        found.append((link, target))
    return found


def test_every_relative_link_of_every_page_resolves(built_book: Path) -> None:
    pages = sorted(p for p in built_book.rglob("*.html") if "_static" not in p.parts)  # (theme macro files)
    assert len(pages) >= 12
    checked, missing = 0, []
    for page in pages:
        for link, target in internal_targets(page, built_book):
            checked += 1
            if not target.is_file():
                missing.append(f"{page.relative_to(built_book)} -> {link}")
    assert checked > 500
    assert not missing, missing[:20]


def test_the_footer_links_the_pdf_only_when_the_site_has_it(built_book: Path, pdf_site: Path) -> None:
    """The site of ``dev.py book`` alone has no PDF and no link to it; the site ``dev.py pdf`` rebuilds has both."""
    assert not (built_book / PDF).exists() and (pdf_site / PDF).is_file()
    for site, has_pdf in ((built_book, False), (pdf_site, True)):
        for page in ("intro.html", "chapters/04_progressive_compression.html", "license.html"):
            text = (site / page).read_text()
            assert text.count("pnc-pdf-link") == (1 if has_pdf else 0), (page, has_pdf)
            assert ("PDF edition" in text) == has_pdf, page


def test_every_relative_link_of_the_pdf_site_resolves(pdf_site: Path) -> None:
    missing = [f"{page.relative_to(pdf_site)} -> {link}" for page in sorted(pdf_site.glob("chapters/*.html"))
               for link, target in internal_targets(page, pdf_site) if not target.is_file()]
    assert not missing, missing[:20]


@pytest.mark.browser
def test_links_followed_in_the_browser_answer(built_book: Path, site: str, chromium) -> None:
    """Every internal link of the landing page and of chapter 4, requested through the served site, answers 200."""
    from browser_support import open_page

    for page_path in ("intro.html", "chapters/04_progressive_compression.html"):
        page, log = open_page(chromium, site + page_path)
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
        internal = sorted({h.split("#", 1)[0] for h in hrefs if h.startswith(site)})
        assert len(internal) >= 10, (page_path, internal)
        for href in internal:
            response = page.request.get(href)
            assert response.status == 200, (page_path, href, response.status)
        page.context.close()
