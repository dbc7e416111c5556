"""Accessibility of the built site, in Debian chromium: alternative text and data of every figure and explorer
frame, keyboard use of the explorers, and axe-core's WCAG 2.1 A/AA checks on every page at 1400 and 390 px.

- Every ``<img>`` in a page's article (glued figures, displayed figures, explorer frames) has alt text of at least
  :data:`MIN_ALT` characters that is not a file name or path; so does every precomputed frame in the page's widget
  state (the frames not on screen too).
- Every figure and every frame shown carries a folded "Data" table and a CSV download of the plotted numbers.
- Every slider handle of an explorer has an accessible name (its visible label) and a value text equal to the value
  shown; it is in the Tab order, shows a focus ring when reached with the keyboard, and a change made with the arrow
  keys is announced in the explorer's live region.
- axe-core (vendored from requirements/vendor-test.lock into _vendor_test/, never served by the site) reports no
  violation of impact "serious" or "critical" on any page at either width, in light and in dark mode (switched with
  the page's theme button).

Needs /usr/bin/chromium and the book build shared with tests/test_book.py (conftest.py); PNC_BOOK_HTML reuses one.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    STATE_MIME,
    WidgetState,
    colour_mode,
    open_page,
    set_colour_mode,
    site_pages,
    wait_for_widgets,
    widget_pages,
)
from conftest import ARTIFACTS, ensure_vendor_test

pytestmark = [pytest.mark.browser, pytest.mark.book]

MIN_ALT = 40
DESKTOP = (1400, 1000)
PHONE = (390, 844)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}
SHOTS = ARTIFACTS / "a11y"

FILE_NAME = re.compile(r"^\S+\.(png|jpe?g|gif|svg|webp)$|_images/|^[0-9a-f]{16,}|^data:", re.I)


def content_pages(built_book: Path) -> list[Path]:
    """The site's pages minus redirects (``index.html`` only forwards to the first page)."""
    return [p for p in site_pages(built_book) if 'http-equiv="Refresh"' not in p.read_text(errors="replace")[:500]]


def alt_problem(alt: str | None) -> str | None:
    """Why ``alt`` is not alternative text a reader can use (None when it is)."""
    if alt is None:
        return "no alt attribute"
    text = alt.strip()
    if len(text) < MIN_ALT:
        return f"alt text of {len(text)} characters ({text!r})"
    if FILE_NAME.search(text) or "/" in text.split()[0]:
        return f"alt text looks like a file name ({text[:60]!r})"
    return None


def test_alt_problem_catches_what_the_issue_reported() -> None:
    assert alt_problem("../_images/7d031b9a5cd61263bc479ae4f2c8e0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7.png")
    assert alt_problem(None) and alt_problem("") and alt_problem("Figure 3")
    assert alt_problem("7d031b9a5cd61263bc479ae4f2c8e0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7.png")
    assert alt_problem("Line chart of compression C_l against layer l, log scale; the hybrid falls") is None


def _wait_for_widgets(page: Any, relative: str, built_book: Path) -> None:
    if STATE_MIME in (built_book / relative).read_text(errors="replace"):
        assert wait_for_widgets(page), f"{relative} has a widget state but no widget view"


# Every image in the article: where it is, its alt, and whether a data block follows it in its figure or frame.
IMAGES_JS = """
() => Array.from(document.querySelectorAll('article.bd-article img')).map(img => {
  const holder = img.closest('.pnc-figure');
  const details = holder ? holder.querySelector(':scope > details.pnc-figure-data') : null;
  const link = details ? details.querySelector('a.pnc-figure-csv') : null;
  return {
    alt: img.getAttribute('alt'),
    frame: img.classList.contains('pnc-frame-image'),
    inFigure: !!img.closest('figure'),
    where: (img.closest('figure') || {}).id || (img.closest('.pnc-explorer') ? 'explorer' : img.className),
    tables: details ? details.querySelectorAll('table').length : 0,
    rows: details ? details.querySelectorAll('tbody tr').length : 0,
    csv: link ? link.getAttribute('href') : null,
  };
})
"""


def test_every_figure_and_frame_image_has_alt_text_and_data(built_book: Path, site: str, chromium: Any) -> None:
    problems: list[str] = []
    figures = frames = explorers = 0
    for path in content_pages(built_book):
        relative = path.relative_to(built_book).as_posix()
        page, log = open_page(chromium, site + relative, viewport=DESKTOP)
        try:
            page.wait_for_load_state("load")
            _wait_for_widgets(page, relative, built_book)
            explorers += page.evaluate("() => document.querySelectorAll('.pnc-explorer').length")
            for info in page.evaluate(IMAGES_JS):
                where = f"{relative} ({info['where']})"
                problem = alt_problem(info["alt"])
                if problem:
                    problems.append(f"{where}: {problem}")
                if not (info["inFigure"] or info["frame"]):
                    continue
                figures += info["inFigure"]
                frames += info["frame"]
                if info["tables"] == 0 or info["rows"] == 0:
                    problems.append(f"{where}: no data table next to the image")
                if not info["csv"] or not info["csv"].startswith("data:text/csv;charset=utf-8;base64,"):
                    problems.append(f"{where}: no CSV download of the data")
                    continue
                rows = list(csv.reader(io.StringIO(base64.b64decode(info["csv"].split(",", 1)[1]).decode())))
                if len(rows) < 2 or rows[0][0] != "table":
                    problems.append(f"{where}: the CSV holds no data ({rows[:2]})")
        finally:
            page.context.close()
    assert not problems, "\n".join(problems)
    assert figures >= 20, f"only {figures} figure images found"
    # every frame explorer (chapters 1 and 2 at least: the explorers of per-layer curves are drawn from their data,
    # test_browser_data.py) shows frames, each with its alt text and data
    assert explorers >= 2 and frames >= explorers, f"only {frames} explorer frames on screen for {explorers}"


def test_every_precomputed_frame_has_alt_text(built_book: Path) -> None:
    """The frames not on screen (other slider positions) too, read from each page's widget state."""
    problems: list[str] = []
    n = 0
    for path in widget_pages(built_book):
        state = WidgetState.from_html(path.read_text(errors="replace"), base=path.parent)
        for model in state.frames():
            n += 1
            value = state.state(model).get("value", "")
            match = re.search(r'<img[^>]*\balt="([^"]*)"', value) if isinstance(value, str) else None
            problem = alt_problem(html.unescape(match.group(1)) if match else None)
            if problem:
                problems.append(f"{path.name} frame {model}: {problem}")
            if isinstance(value, str) and "pnc-figure-data" not in value:
                problems.append(f"{path.name} frame {model}: no data block")
    # chapter 1's 8 layers and chapter 2's 5 × 4 mixtures (sample scatters); the explorers of per-layer curves are
    # drawn from their data (test_browser_data.py), with no frames
    assert n >= 28, f"only {n} frames in the widget state of the site"
    assert not problems, "\n".join(problems[:40])


# Per slider handle of an explorer: its accessible name (aria-labelledby), the label shown, its value text and the
# readout shown, its tabindex.
SLIDERS_JS = """
() => Array.from(document.querySelectorAll('.pnc-explorer .widget-slider')).map(slider => {
  const handle = slider.querySelector('.noUi-handle');
  const label = slider.querySelector(':scope > .widget-label');
  const ids = (handle.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean);
  const name = ids.map(id => (document.getElementById(id) || {}).textContent || '').join(' ').trim()
    || (handle.getAttribute('aria-label') || '').trim();
  const readout = slider.querySelector(':scope > .widget-readout');
  return {name: name, label: label ? label.textContent.trim() : '', valuetext: handle.getAttribute('aria-valuetext'),
          readout: readout ? readout.textContent.trim() : null, tabindex: handle.tabIndex,
          atEnd: parseFloat(handle.getAttribute('aria-valuenow')) >= parseFloat(handle.getAttribute('aria-valuemax'))};
})
"""

FOCUS_JS = """
() => {
  const el = document.activeElement;
  if (!el) { return null; }
  const style = getComputedStyle(el);
  return {handle: el.classList.contains('noUi-handle'), outline: style.outlineStyle,
          width: parseFloat(style.outlineWidth), visible: el.matches(':focus-visible')};
}
"""


def test_explorer_sliders_have_names_values_focus_and_announcements(built_book: Path, site: str,
                                                                     chromium: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    checked = 0
    for path in widget_pages(built_book):
        relative = path.relative_to(built_book).as_posix()
        page, log = open_page(chromium, site + relative, viewport=DESKTOP)
        try:
            page.wait_for_load_state("load")
            _wait_for_widgets(page, relative, built_book)
            sliders = page.evaluate(SLIDERS_JS)
            for i, info in enumerate(sliders):
                where = f"{relative} slider {i} ({info['label']!r})"
                if not info["name"] or info["name"] != info["label"]:
                    problems.append(f"{where}: accessible name {info['name']!r}, visible label {info['label']!r}")
                if info["valuetext"] != info["readout"]:
                    problems.append(f"{where}: value text {info['valuetext']!r}, shown {info['readout']!r}")
                if info["tabindex"] < 0:
                    problems.append(f"{where}: not in the Tab order")
            if not sliders:
                continue
            # keyboard: from the first handle Tab away and Shift+Tab back (so it is in the Tab order), then step it
            handle = page.locator(".pnc-explorer .noUi-handle").first
            handle.focus()
            page.keyboard.press("Tab")
            page.keyboard.press("Shift+Tab")
            focus = page.evaluate(FOCUS_JS)
            if not focus or not focus["handle"]:
                problems.append(f"{relative}: Shift+Tab does not return to the first slider")
            elif focus["outline"] == "none" or focus["width"] < 2 or not focus["visible"]:
                problems.append(f"{relative}: no visible focus ring on the slider ({focus})")
            status = page.locator(".pnc-explorer").first.locator(".pnc-explorer-status")
            before = status.text_content() if status.count() else None
            key = "ArrowLeft" if sliders[0]["atEnd"] else "ArrowRight"
            page.keyboard.press(key)
            page.wait_for_timeout(300)
            after = page.evaluate(SLIDERS_JS)[0]
            said = status.text_content() if status.count() else None
            if status.count() == 0 or status.get_attribute("aria-live") != "polite":
                problems.append(f"{relative}: the explorer has no polite live region")
            elif said == before or said != f"{after['label']}: {after['readout']}":
                problems.append(f"{relative}: after {key} the live region says {said!r}, the slider shows "
                                f"{after['readout']!r}")
            if after["valuetext"] != after["readout"]:
                problems.append(f"{relative}: after {key} the value text is {after['valuetext']!r}, the slider "
                                f"shows {after['readout']!r}")
            page.locator(".pnc-explorer").first.screenshot(path=str(SHOTS / f"{path.stem}-focused-slider.png"))
            checked += len(sliders)
        finally:
            page.context.close()
    # the sliders of the frame explorers (chapters 1 and 2); those of the explorers drawn from their data are checked
    # the same way in test_browser_data.py
    assert checked >= 3, f"only {checked} sliders checked"
    assert not problems, "\n".join(problems)


AXE_JS = """
async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 200)),
      count: v.nodes.length}));
}
"""


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1400px", "390px"])
def test_axe_finds_no_serious_or_critical_violation(built_book: Path, site: str, chromium: Any,
                                                    viewport: tuple[int, int]) -> None:
    """Each page is loaded in light mode, checked, switched to dark mode with the theme button as a reader does (no
    reload: one page load per page and width) and checked again."""
    axe = ensure_vendor_test() / "axe-core" / "axe.min.js"
    assert not list(built_book.rglob("axe.min.js")), "axe-core must not be served by the site"
    problems: list[str] = []
    counts: dict[str, dict[str, int]] = {"light": {}, "dark": {}}
    for path in content_pages(built_book):
        relative = path.relative_to(built_book).as_posix()
        page, log = open_page(chromium, site + relative, viewport=viewport, mode="light")
        try:
            for mode in ("light", "dark"):
                if mode == "dark":
                    set_colour_mode(page, mode)
                assert colour_mode(page) == mode, relative
                _wait_for_widgets(page, relative, built_book)
                page.evaluate("async () => { if (window.MathJax && MathJax.startup) { "
                              "await MathJax.startup.promise; } }")
                page.wait_for_function("() => document.documentElement.dataset.pncA11y === 'ready'",
                                       timeout=30_000)
                page.add_script_tag(path=str(axe))
                for v in page.evaluate(AXE_JS, AXE_TAGS):
                    counts[mode][v["id"]] = counts[mode].get(v["id"], 0) + v["count"]
                    if v["impact"] in BLOCKING:
                        problems.append(f"{relative} @ {viewport[0]} px, {mode}: {v['id']} ({v['impact']}, "
                                        f"{v['count']} nodes): {v['help']}; e.g. {v['nodes']}")
        finally:
            page.context.close()
    print(f"axe at {viewport[0]} px, all impacts, nodes per rule and mode: {counts}")
    assert not problems, "\n".join(problems)
