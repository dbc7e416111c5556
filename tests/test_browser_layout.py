"""No element of any page is wider than the text column, at 1400 px and at 390 px (Debian chromium).

Sideways scrolling is allowed only where it is designed: a displayed equation wider than the column
(``mjx-container[display]``), an inline formula wider than its line (``mjx-container.pnc-wide-inline``, marked by
``book_ext/static/pnc-site.js`` once MathJax has typeset the page; the test waits for that), a table of
``pnc.book.tables`` (in ``.pnc-scroll``), a figure's data table (``.pnc-figure-table``, :func:`pnc.plotting.data_html`,
focusable) and a Markdown table (the theme's ``.pst-scrollable-table-container``).
Code cells and their printed output wrap (``book_ext/static/pnc-site.css``). Inline math may overhang its line by a
few pixels (glyph overhang), no more; the theme's ``span.math`` around it clips that overhang, which is not a scroll
bar. For each page and width the test collects

- elements whose box runs past the article's left or right edge (outside an allowed scroller), and
- elements whose own content is wider than their box and would scroll or be cut sideways (``scrollWidth`` beyond
  ``clientWidth``) that are not allowed scrollers.

On failure a screenshot of each offending page goes to ``test-artifacts/layout/``.

At 390 px the same page load also checks that every figure's text is readable on a phone: its smallest text is at
least :data:`PHONE_MIN_TEXT_PX` CSS px tall, the smallest font size of the rendering shown in CSS px at the image's
natural size (``data-pnc-font-px``, or ``data-pnc-narrow-font-px`` for the narrow rendering a phone must be served)
times the displayed width over the natural width (pnc.plotting.figure_html). The frame each explorer shows is
measured the same way, once the page's widgets have rendered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser_support import FIGURE_TEXT_JS, open_page, site_pages, wait_for_widgets
from conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.book]

SHOTS = ARTIFACTS / "layout"
WIDTHS = {"1400px": (1400, 1000), "390px": (390, 844)}
PHONE_MIN_TEXT_PX = 9

OVERFLOW_JS = """
() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  const box = article.getBoundingClientRect();
  // displayed equations, inline formulas marked wide and .pnc-scroll tables scroll by design
  const scrollers = 'mjx-container[display="true"], mjx-container.pnc-wide-inline, .pnc-scroll, ' +
                    '.pst-scrollable-table-container, .pnc-figure-table';
  const allowed = el => el.closest(scrollers) !== null;
  const SLACK = 8;  // px: sub-pixel rounding and glyph overhangs are not a scroll bar
  const describe = (el, r) => ({
    tag: el.tagName.toLowerCase(), cls: String(el.className || '').slice(0, 60), id: el.id,
    left: Math.round(r.left - box.left), right: Math.round(r.right - box.left),
    scroll: el.scrollWidth, client: el.clientWidth,
    text: (el.innerText || el.textContent || '').trim().slice(0, 70),
  });
  const wide = [], scrolls = [];
  for (const el of article.querySelectorAll('*')) {
    if (allowed(el) || el.closest('mjx-assistive-mml')) continue;  // MathJax's clipped copy for screen readers
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.position === 'fixed') continue;
    // text for screen readers only (a 1 px box clipped to nothing, e.g. an explorer's live region): never seen
    if (style.clip === 'rect(0px, 0px, 0px, 0px)' && r.width <= 1 && r.height <= 1) continue;
    const slack = el.closest('span.math') !== null ? SLACK : 1;  // inline math: glyph overhang only
    if (r.right > box.right + slack || r.left < box.left - slack) { wide.push(describe(el, r)); continue; }
    // MathJax's own boxes, and the theme's span.math around an inline formula (which clips the glyph overhang)
    if (el.tagName.toLowerCase().startsWith('mjx-') || el.matches('span.math')) continue;
    const ox = style.overflowX;
    if ((ox === 'auto' || ox === 'scroll' || ox === 'hidden') && el.scrollWidth > el.clientWidth + SLACK) {
      scrolls.push(describe(el, r));
    }
  }
  return {column: Math.round(box.width), wide: wide.slice(0, 8), scrolls: scrolls.slice(0, 8),
          n_wide: wide.length, n_scrolls: scrolls.length};
}
"""


@pytest.mark.parametrize("width", list(WIDTHS), ids=list(WIDTHS))
def test_nothing_is_wider_than_the_column(built_book: Path, site: str, chromium: Any, width: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    figures = frames = 0
    pages = site_pages(built_book)
    assert len(pages) >= 10, f"only {len(pages)} pages in the build"
    for path in pages:
        relative = path.relative_to(built_book).as_posix()
        page, _ = open_page(chromium, site + relative, viewport=WIDTHS[width])
        try:
            # the load event, not network idle: lazily loading figure images (pnc.plotting.figure_html) fetch as they
            # are scrolled to, and each carries its width and height, so the layout does not wait for them
            page.wait_for_load_state("load")
            # pnc-site.js marks wide inline formulas once MathJax has typeset the page
            page.wait_for_function("document.documentElement.getAttribute('data-pnc-math') === 'marked'")
            found = page.evaluate(OVERFLOW_JS)
            if found["n_wide"] or found["n_scrolls"]:
                for kind, items in (("wider than the column", found["wide"]), ("scrolls sideways", found["scrolls"])):
                    for item in items:
                        problems.append(
                            f"{relative} at {width} (column {found['column']} px): <{item['tag']} "
                            f"class={item['cls']!r}> {kind}: x {item['left']}..{item['right']}, content "
                            f"{item['scroll']} px in {item['client']} px: {item['text']!r}")
                page.screenshot(path=str(SHOTS / f"{relative.replace('/', '_')}-{width}.png"), full_page=False)
            if width == "390px" and path.parent.name == "chapters":
                wait_for_widgets(page)
                measured = _phone_text_problems(page, relative, problems)
                figures += measured["figures"]
                frames += measured["frames"]
        finally:
            page.context.close()
    assert width != "390px" or figures >= 20, f"only {figures} figures found in the chapters"
    assert width != "390px" or frames >= 2, f"only {frames} explorer frames found in the chapters"
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def _phone_text_problems(page: Any, relative: str, problems: list[str]) -> dict[str, int]:
    """Append to ``problems`` every figure and shown explorer frame of the page whose smallest text is below
    :data:`PHONE_MIN_TEXT_PX` as shown (each image scrolled into view and loaded); return how many figures and frames
    were measured."""
    infos = page.evaluate(FIGURE_TEXT_JS)
    for info in infos:
        where = f"{relative}#{info['where']}{' (explorer frame)' if info['frame'] else ''} at 390px"
        if not info["natural"] or not info["font"]:
            problems.append(f"{where}: no image shown or no font size recorded")
        elif info["has_narrow"] and not info["narrow"]:
            problems.append(f"{where}: the wide rendering is shown on a phone")
        elif info["px"] < PHONE_MIN_TEXT_PX:
            problems.append(f"{where}: figure text {info['px']:.1f} CSS px ({info['src']}, {info['natural']} px "
                            f"shown at {info['shown']:.0f} px)")
    if "/04_" in relative and infos:
        image = page.locator(".pnc-figure").first.locator("img >> visible=true").first
        image.scroll_into_view_if_needed()  # a lazy image: loads now
        page.wait_for_function("(i) => i.complete && i.naturalWidth > 0", arg=image.element_handle())
        page.screenshot(path=str(ARTIFACTS / "phone-figure.png"))
    frames = sum(info["frame"] for info in infos)
    return {"figures": len(infos) - frames, "frames": frames}
