"""What a reader sees on the built site, in Debian chromium: figures, navigation on a phone, console, dark mode.

- Every ``figure`` of every chapter holds an image that loaded (the one shown: a figure has a light and a dark
  rendering, pnc.plotting.figure_html), at least 300 px wide in its natural size, high density (natural width at
  least 1.9x the displayed width, or SVG), on an opaque background, and no page contains matplotlib's text repr
  ``<Figure size ...>``. One screenshot per figure is written to test-artifacts/figures/.
- Figures follow the colour mode: after the reader toggles the theme with the page's theme button (no reload), the
  mean luminance of every figure image shown is below 0.35 in dark mode and above 0.65 in light mode, measured in
  the browser from the displayed image drawn into a canvas; no filter dims them.
- No page logs a console error or an uncaught exception.
- At 390 px the ☰ button opens the navigation drawer, a chapter link in it can be clicked and loads that chapter; the
  "contents" button opens the page's table of contents; the header shows one search button.
- Explorer frames show their smallest text at least as large as the body text, at the width they are displayed.

Needs /usr/bin/chromium and the book build shared with tests/test_book.py (conftest.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    MARK_VIEWS_JS,
    SHOWN_IMAGE_JS,
    open_page,
    set_colour_mode,
    site_pages,
    wait_for_widgets,
    widget_pages,
)
from conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.book]

FIGURES = ARTIFACTS / "figures"
PHONE = (390, 844)
DESKTOP = (1400, 1000)
RENDER_TIMEOUT_MS = 30_000


# For each figure element: its id, the image's load state, natural and displayed size, and whether its corners are
# opaque (drawn into a canvas; same-origin, so the pixels can be read).
FIGURES_JS = """
async () => {
  const shown = """ + SHOWN_IMAGE_JS + """;
  const out = [];
  for (const fig of document.querySelectorAll('figure')) {
    const img = await shown(fig);
    if (!img) { out.push({id: fig.id, img: false, text: fig.innerText.slice(0, 80)}); continue; }
    let opaque = null;
    if (img.naturalWidth > 0 && !img.src.endsWith('.svg')) {
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
      const ctx = canvas.getContext('2d');
      ctx.drawImage(img, 0, 0);
      const w = img.naturalWidth - 1, h = img.naturalHeight - 1;
      opaque = [[0, 0], [w, 0], [0, h], [w, h]].every(([x, y]) => ctx.getImageData(x, y, 1, 1).data[3] === 255);
    }
    out.push({id: fig.id, img: true, src: img.src, complete: img.complete, natural: img.naturalWidth,
              naturalHeight: img.naturalHeight, shown: img.getBoundingClientRect().width,
              shownHeight: img.getBoundingClientRect().height, opaque: opaque});
  }
  return out;
}
"""

BODY_FONT_JS = """
() => parseFloat(getComputedStyle(document.querySelector('article p') || document.body).fontSize)
"""

# Per explorer: the smallest frame text (points, as the explorer measured it), the frame dpi, and the displayed and
# natural width of its visible frame.
EXPLORER_TEXT_JS = """
() => Array.from(document.querySelectorAll('.pnc-explorer')).map(box => {
  const caption = box.querySelector('[data-pnc-min-font-pt]');
  const img = Array.from(box.querySelectorAll('img.pnc-frame-image')).find(i => i.offsetParent !== null);
  return {
    minPt: caption ? parseFloat(caption.dataset.pncMinFontPt) : null,
    dpi: caption ? parseFloat(caption.dataset.pncFrameDpi) : null,
    shown: img ? img.getBoundingClientRect().width : null,
    natural: img ? img.naturalWidth : null,
  };
})
"""


# Scroll to each explorer's frame in turn and wait until it has loaded (a lazy image loads when scrolled to).
LOAD_FRAMES_JS = """
async () => {
  const shown = """ + SHOWN_IMAGE_JS + """;
  for (const box of document.querySelectorAll('.pnc-explorer')) { await shown(box); }
}
"""


def _chapters(built_book: Path) -> list[str]:
    return [p.relative_to(built_book).as_posix() for p in site_pages(built_book) if p.parent.name == "chapters"]


def test_no_page_shows_a_figure_repr_instead_of_a_figure(built_book: Path) -> None:
    for page in site_pages(built_book):
        text = page.read_text(errors="replace")
        assert "&lt;Figure size" not in text and "<Figure size" not in text, f"{page}: a figure rendered as text"


def test_every_figure_is_a_sharp_loaded_image(built_book: Path, site: str, chromium: Any) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    for old in FIGURES.glob("*.png"):
        old.unlink()
    problems: list[str] = []
    seen = 0
    for relative in _chapters(built_book):
        page, log = open_page(chromium, site + relative, viewport=DESKTOP)
        try:
            # the load event, not network idle (which a page of lazy images can miss): FIGURES_JS scrolls each
            # figure's image into view and waits for it
            page.wait_for_load_state("load")
            for info in page.evaluate(FIGURES_JS):
                seen += 1
                where = f"{relative}#{info['id']}"
                if not info["img"]:
                    problems.append(f"{where}: no image in the figure (shows {info['text']!r})")
                    continue
                if not info["complete"] or info["natural"] < 300:
                    problems.append(f"{where}: image not loaded or too small (natural width {info['natural']} px)")
                    continue
                svg = info["src"].endswith(".svg")
                if not svg and info["natural"] < 1.9 * info["shown"]:
                    problems.append(f"{where}: {info['natural']} px shown at {info['shown']:.0f} px: not high density")
                if info["shown"] < 300:
                    problems.append(f"{where}: shown only {info['shown']:.0f} px wide")
                ratio = info["naturalHeight"] / info["natural"]
                if abs(info["shownHeight"] / info["shown"] - ratio) > 0.02 * ratio + 1 / info["shown"]:
                    problems.append(f"{where}: aspect ratio distorted on the page")
                if info["opaque"] is False:
                    problems.append(f"{where}: transparent background (unreadable in dark mode)")
                if info["id"]:
                    page.locator(f"figure#{info['id']}").screenshot(path=str(FIGURES / f"{info['id']}.png"))
            problems += [f"{relative}: {p}" for p in log.problems()]
        finally:
            page.context.close()
    assert seen >= 10, f"only {seen} figures found in the chapters"
    assert not problems, "\n".join(problems)
    assert len(list(FIGURES.glob("*.png"))) == seen


def test_no_console_errors_on_any_page(built_book: Path, site: str, chromium: Any) -> None:
    problems: list[str] = []
    for path in site_pages(built_book):
        relative = path.relative_to(built_book).as_posix()
        page, log = open_page(chromium, site + relative, viewport=DESKTOP)
        try:
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(200)  # late console messages
            problems += [f"{relative}: {p}" for p in log.problems()]
        finally:
            page.context.close()
    assert not problems, "\n".join(problems)


def _visible(page: Any, selector: str) -> Any:
    return page.locator(f"{selector} >> visible=true")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1400px"])
def test_one_search_box_on_the_page(built_book: Path, site: str, chromium: Any, viewport: tuple) -> None:
    page, _ = open_page(chromium, site + _chapters(built_book)[1], viewport=viewport)
    try:
        page.wait_for_load_state("networkidle")
        count = _visible(page, ".search-button-field, .search-button").count()
        assert count == 1, f"{count} visible search buttons at {viewport[0]} px"
    finally:
        page.context.close()


def test_phone_navigation_drawer_opens_and_its_links_work(built_book: Path, site: str, chromium: Any) -> None:
    chapters = _chapters(built_book)
    start, target = chapters[1], chapters[3]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, log = open_page(chromium, site + start, viewport=PHONE)
    try:
        page.wait_for_load_state("networkidle")
        toggle = _visible(page, ".primary-toggle")
        assert toggle.count() == 1, f"{toggle.count()} visible ☰ buttons at 390 px"
        toggle.click()
        drawer = page.locator("dialog#pst-primary-sidebar-modal[open]")
        drawer.wait_for(state="visible", timeout=5000)
        page.screenshot(path=str(ARTIFACTS / "phone-drawer-open.png"))
        link = drawer.locator(f'a.reference.internal[href$="{Path(target).name}"]')
        assert link.count() >= 1, f"no link to {target} in the open drawer"
        box = link.first.bounding_box()
        assert box and box["width"] > 0 and 0 <= box["x"] < PHONE[0], f"the link to {target} is not on screen: {box}"
        with page.expect_navigation():
            link.first.click()
        assert page.url.endswith(target), f"clicking the drawer link went to {page.url}"
        assert page.locator("h1").first.inner_text().strip(), "the chapter did not load"

        contents = _visible(page, ".secondary-toggle")
        assert contents.count() == 1, f"{contents.count()} visible 'contents' buttons at 390 px"
        contents.click()
        toc = page.locator("dialog#pst-secondary-sidebar-modal[open]")
        toc.wait_for(state="visible", timeout=5000)
        assert toc.locator("a").count() > 2, "the page contents drawer is empty"
        page.screenshot(path=str(ARTIFACTS / "phone-contents-open.png"))
        page.keyboard.press("Escape")
        toc.wait_for(state="hidden", timeout=5000)
        assert not log.problems(), log.problems()
    finally:
        page.context.close()


def test_explorer_text_is_at_least_body_size(built_book: Path, site: str, chromium: Any) -> None:
    problems: list[str] = []
    checked = 0
    for path in widget_pages(built_book):
        relative = path.relative_to(built_book).as_posix()
        page, _ = open_page(chromium, site + relative, viewport=DESKTOP)
        try:
            rendered = f"({MARK_VIEWS_JS})().every(v => v[1])"
            page.wait_for_function(f"() => document.querySelectorAll('.pnc-explorer').length > 0 && {rendered}",
                                   timeout=RENDER_TIMEOUT_MS)
            page.evaluate(LOAD_FRAMES_JS)  # frames load lazily, when scrolled to
            body = page.evaluate(BODY_FONT_JS)
            for number, info in enumerate(page.evaluate(EXPLORER_TEXT_JS)):
                checked += 1
                if info["minPt"] is None or not info["natural"]:
                    problems.append(f"{relative} explorer {number}: no frame or no font record")
                    continue
                shown_px = info["minPt"] * info["dpi"] / 72 * info["shown"] / info["natural"]
                if shown_px < body - 0.5:
                    problems.append(f"{relative} explorer {number}: smallest text {shown_px:.1f} px, "
                                    f"body text {body:.1f} px")
        finally:
            page.context.close()
    assert checked >= len(widget_pages(built_book)) > 0
    assert not problems, "\n".join(problems)


# Per figure (a .pnc-figure with its theme renderings): the mean luminance of the image shown (drawn into a canvas at
# its natural size; sRGB values weighted 0.2126/0.7152/0.0722), its CSS filter, and which rendering it is.
LUMINANCE_JS = """
async () => {
  const shown = """ + SHOWN_IMAGE_JS + """;
  const out = [];
  // every figure, and the frame each explorer shows (its other frames are not displayed)
  for (const holder of document.querySelectorAll('.pnc-figure:has(> picture)')) {
    const frame = !!holder.closest('.pnc-frame');
    if (frame && !holder.checkVisibility()) { continue; }
    const img = await shown(holder);
    const where = (frame ? 'explorer frame in ' : '') + holder.closest('figure, section').id;
    if (!img || img.naturalWidth === 0) { out.push({where: where, img: false}); continue; }
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) { sum += 0.2126 * data[i] + 0.7152 * data[i + 1] + 0.0722 * data[i + 2]; }
    out.push({where: where, img: true, frame: frame, luminance: sum / (data.length / 4) / 255,
              theme: img.closest('picture').className, filter: getComputedStyle(img).filter});
  }
  return out;
}
"""


# Per explorer: the background of its widget area and the colour of its control labels (CSS colour strings).
EXPLORER_COLOURS_JS = """
() => Array.from(document.querySelectorAll('.widget-subarea:has(.pnc-explorer)')).map(area => ({
  background: getComputedStyle(area).backgroundColor,
  labels: Array.from(area.querySelectorAll('.widget-label, .widget-readout, .widget-toggle-button'))
               .filter(el => el.textContent.trim()).map(el => getComputedStyle(el).color),
}))
"""


def _luminance(css: str) -> float:
    """Relative luminance (WCAG) of a CSS ``rgb()``/``rgba()`` colour."""
    r, g, b = (float(v) / 255 for v in re.findall(r"[\d.]+", css)[:3])
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_figures_follow_the_colour_mode_live(built_book: Path, site: str, chromium: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    seen = frames = explorers = 0
    for relative in _chapters(built_book):
        page, log = open_page(chromium, site + relative, viewport=DESKTOP)
        try:
            page.wait_for_load_state("load")
            # the explorers' frames are checked too: wait until every widget is rendered
            wait_for_widgets(page)
            page.evaluate("() => { window.pncNoReload = true; }")  # gone if the page reloads
            # the explorers that switch frames (those drawn from their data follow the mode in test_browser_data.py)
            explorers += page.evaluate("() => document.querySelectorAll('.pnc-explorer').length")
            for mode in ("light", "dark", "light"):
                set_colour_mode(page, mode)
                for info in page.evaluate(LUMINANCE_JS):
                    seen += 1
                    frames += bool(info.get("frame"))
                    where = f"{relative}#{info['where']} ({mode})"
                    if not info["img"]:
                        problems.append(f"{where}: no image shown")
                        continue
                    if info["theme"] != f"pnc-theme-{mode}":
                        problems.append(f"{where}: shows {info['theme']}")
                    if info["filter"] != "none":
                        problems.append(f"{where}: dimmed by a filter ({info['filter']})")
                    dark = mode == "dark"
                    if (dark and info["luminance"] >= 0.35) or (not dark and info["luminance"] <= 0.65):
                        problems.append(f"{where}: mean luminance {info['luminance']:.3f}")
                if mode == "dark":  # an explorer's area and controls follow the page, not light grey panels
                    for k, box in enumerate(page.evaluate(EXPLORER_COLOURS_JS)):
                        if _luminance(box["background"]) > 0.05:
                            problems.append(f"{relative}: explorer {k} has a light area ({box['background']})")
                        dim = [c for c in box["labels"] if _luminance(c) < 0.4]
                        if not box["labels"] or dim:
                            problems.append(f"{relative}: explorer {k} control text {dim or 'missing'} in dark mode")
                if mode == "dark" and re.search(r"/04_", relative):
                    image = page.locator(".pnc-figure picture.pnc-theme-dark img").first
                    image.scroll_into_view_if_needed()
                    page.wait_for_function("(i) => i.complete && i.naturalWidth > 0", arg=image.element_handle())
                    page.screenshot(path=str(ARTIFACTS / "dark-mode-figure.png"))
            assert page.evaluate("() => window.pncNoReload === true"), f"{relative}: the page reloaded"
            problems += [f"{relative}: {p}" for p in log.problems()]
        finally:
            page.context.close()
    assert seen >= 3 * 20, f"only {seen // 3} figures found in the chapters"
    # each frame explorer shows one frame in each of the three passes; chapters 1 and 2 (sample scatters) at least
    # stay frames, the explorers of per-layer curves are drawn from their data (pnc.book.widgets.DataExplorer)
    assert explorers >= 2 and frames == 3 * explorers, f"{frames // 3} explorer frames checked of {explorers}"
    assert not problems, "\n".join(problems)
