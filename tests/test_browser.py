"""The built site in a real browser (Debian chromium via Playwright), served on 127.0.0.1, no network.

For every page of the build that embeds widget state: no request leaves 127.0.0.1, no console error comes from our
code, every widget renders, and moving every slider with the keyboard shows exactly the frame precomputed for that
value (SHA-256 of the displayed image == the image buffer decoded from the page's widget state, found by following the
jslinks, Stack children and selected_index). MathJax must have typeset the math. Screenshots of the widgets before
and after a slider move are written to test-artifacts/screenshots/ (CI keeps that folder).

Needs /usr/bin/chromium (``python3 dev.py test`` installs it) and the book build shared with tests/test_book.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    FRAME_HASHES_JS,
    MARK_VIEWS_JS,
    MATHJAX_JS,
    SHIM_TYPESET_JS,
    WidgetState,
    open_page,
    site_pages,
    widget_pages,
)
from conftest import ARTIFACTS
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = [pytest.mark.browser, pytest.mark.book]

SCREENSHOTS = ARTIFACTS / "screenshots"
RENDER_TIMEOUT_MS = 30_000  # the CI machine is small and shared; widgets render in ~2 s there
FRAME_TIMEOUT_S = 5.0


def _check_math(page: Any, where: str) -> list[str]:
    """MathJax (served locally) typeset every math element of the page, without errors."""
    info = page.evaluate(MATHJAX_JS)
    if info is None:
        return [f"{where}: MathJax did not load"]
    problems = []
    if not all("/_static/mathjax/" in src for src in info["script"]):
        problems.append(f"{where}: MathJax not served by the site: {info['script']}")
    if info["source"] and info["containers"] < info["source"]:
        problems.append(f"{where}: {info['source']} math elements but only {info['containers']} typeset")
    if info["errors"]:
        problems.append(f"{where}: {info['errors']} MathJax errors (mjx-merror)")
    return problems


def _wait_frames(page: Any, root: Any, expected: list[str]) -> list[str]:
    deadline = time.monotonic() + FRAME_TIMEOUT_S
    shown = root.evaluate(FRAME_HASHES_JS)
    while shown != expected and time.monotonic() < deadline:
        page.wait_for_timeout(25)
        shown = root.evaluate(FRAME_HASHES_JS)
    return shown


def _exercise_widget(page: Any, state: WidgetState, view: str, where: str, shots: str | None) -> list[str]:
    """Move every slider of one displayed widget through all its positions; check each displayed frame."""
    problems: list[str] = []
    root = page.locator(f'[data-pnc-view="{view}"]')
    values = state.initial_values()
    expected = state.expected_frames(view, values)
    shown = _wait_frames(page, root, expected)
    if shown != expected:
        return [f"{where}: initial view shows frames {_short(shown)}, expected {_short(expected)}"]
    sliders = state.sliders(view)
    choices = state.choices(view)
    handles = root.locator(".noUi-handle")
    readouts = root.locator(".widget-readout")
    groups = root.locator(".widget-toggle-buttons")
    if handles.count() != len(sliders):
        return [f"{where}: {len(sliders)} sliders in the widget state but {handles.count()} slider handles on screen"]
    if groups.count() != len(choices):
        return [f"{where}: {len(choices)} toggle groups in the widget state but {groups.count()} on screen"]
    if shots:
        root.screenshot(path=str(SCREENSHOTS / f"{shots}-before.png"))
    for number, slider in enumerate(sliders):
        attr = "index" if state.name(slider) == "SelectionSliderModel" else "value"
        positions = state.slider_positions(slider)
        start = positions.index(values[(slider, attr)])
        problems += _distinct_frames(state, view, values, slider, attr, positions, where)
        # up to the last position, down to the first, back to the start: every position, both directions
        path = ([("ArrowRight", i) for i in range(start + 1, len(positions))]
                + [("ArrowLeft", i) for i in range(len(positions) - 2, -1, -1)]
                + [("ArrowRight", i) for i in range(1, start + 1)])
        for key, position in path:
            handles.nth(number).focus()
            page.keyboard.press(key)
            state.set_value(values, (slider, attr), positions[position])
            expected = state.expected_frames(view, values)
            shown = _wait_frames(page, root, expected)
            label = f"{where}: slider {number} ({state.state(slider).get('description')!r}) at position {position}"
            if shown != expected:
                problems.append(f"{label}: shows {_short(shown)}, expected precomputed {_short(expected)}")
                return problems
            readout = readouts.nth(number).inner_text().strip()
            wanted = state.slider_readout(slider, positions[position])
            if readout != wanted:
                problems.append(f"{label}: readout {readout!r}, expected {wanted!r}")
            if shots and number == 0 and key == "ArrowRight" and position == start + 1:
                root.screenshot(path=str(SCREENSHOTS / f"{shots}-after.png"))
    for number, choice in enumerate(choices):
        positions = state.slider_positions(choice)
        start = positions.index(values[(choice, "index")])
        problems += _distinct_frames(state, view, values, choice, "index", positions, where)
        buttons = groups.nth(number).locator("button")
        if buttons.count() != len(positions):
            problems.append(f"{where}: toggle group {number} has {buttons.count()} buttons, {len(positions)} options")
            continue
        # click every other option, then the starting one again
        for position in [*(p for p in positions if p != start), start]:
            buttons.nth(position).click()
            state.set_value(values, (choice, "index"), position)
            expected = state.expected_frames(view, values)
            shown = _wait_frames(page, root, expected)
            label = f"{where}: toggle {number} ({state.state(choice).get('description')!r}) at option {position}"
            if shown != expected:
                problems.append(f"{label}: shows {_short(shown)}, expected precomputed {_short(expected)}")
                return problems
            pressed = groups.nth(number).locator("button.mod-active").inner_text().strip()
            wanted = state.slider_readout(choice, position)
            if pressed != wanted:
                problems.append(f"{label}: pressed button {pressed!r}, expected {wanted!r}")
            if shots and not sliders and number == 0 and position != start:
                root.screenshot(path=str(SCREENSHOTS / f"{shots}-after.png"))
    return problems


def _distinct_frames(state: WidgetState, view: str, values: dict, control: str, attr: str, positions: list,
                     where: str) -> list[str]:
    """Every position of a control must select its own precomputed frame (a control linked to nothing would not).

    Frames are compared as image widgets, not bytes: a parameter may legitimately leave the picture unchanged.
    """
    shown_models = set()
    for position in positions:
        trial = dict(values)
        state.set_value(trial, (control, attr), position)
        shown_models.add(tuple(state.displayed_images(view, trial)))
    if len(shown_models) != len(positions):
        return [f"{where}: control {state.state(control).get('description')!r} has {len(positions)} positions but "
                f"selects only {len(shown_models)} distinct frames; is it jslinked to the frames?"]
    return []


def _short(hashes: list[str]) -> list[str]:
    return [h[:10] for h in hashes]


def test_book_has_widget_pages(built_book: Path) -> None:
    assert widget_pages(built_book), "no page of the built book embeds widget state: every chapter needs an explorer"


def test_widget_pages_offline_interactive_and_typeset(built_book: Path, site: str, chromium: Any) -> None:
    pages = widget_pages(built_book)
    assert pages, "no page of the built book embeds widget state"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    problems: list[str] = []
    screenshot_pages = 0
    for path in pages:
        relative = path.relative_to(built_book).as_posix()
        state = WidgetState.from_html(path.read_text(), base=path.parent)
        page, log = open_page(chromium, site + relative)
        try:
            try:
                page.wait_for_function(
                    "(n) => document.querySelectorAll('.widget-subarea').length >= n && "
                    "Array.from(document.querySelectorAll('.widget-subarea')).every(e => e.children.length > 0)",
                    arg=len(state.views), timeout=RENDER_TIMEOUT_MS)
            except PlaywrightTimeout:
                problems.append(f"{relative}: the {len(state.views)} widgets did not render in "
                                f"{RENDER_TIMEOUT_MS / 1000:.0f} s")
                problems += [f"{relative}: {p}" for p in log.problems()]
                continue
            rendered = page.evaluate(MARK_VIEWS_JS)
            missing = [view for view, ok in rendered if not ok]
            if missing or len(rendered) != len(state.views):
                problems.append(f"{relative}: widgets not rendered: {missing} ({len(rendered)} views on the page)")
            if page.locator("text=Error displaying widget").count():
                problems.append(f"{relative}: 'Error displaying widget' on the page")
            stem = relative.removesuffix(".html").replace("/", "_")
            for number, view in enumerate(state.views):
                shots = f"{stem}-widget{number}" if number == 0 else None
                problems += _exercise_widget(page, state, view, f"{relative} widget {number}", shots)
            if (SCREENSHOTS / f"{stem}-widget0-after.png").exists():
                screenshot_pages += 1
            problems += _check_math(page, relative)
            shim = page.evaluate(SHIM_TYPESET_JS)
            if shim != "ok":
                problems.append(f"{relative}: widget labels cannot be typeset: {shim}")
            page.wait_for_timeout(100)  # let late console messages arrive
            problems += [f"{relative}: {p}" for p in log.problems()]
        finally:
            page.context.close()
    assert not problems, "\n".join(problems)
    assert screenshot_pages >= min(2, len(pages)), "before/after screenshots were not written"
    assert len(list(SCREENSHOTS.glob("*.png"))) >= 2 * min(2, len(pages))


def test_plain_pages_are_offline_and_typeset(built_book: Path, site: str, chromium: Any) -> None:
    """The landing page and a chapter page load with zero external or failed requests and no console errors."""
    chapters = [p for p in site_pages(built_book) if p.parent.name == "chapters"]
    assert chapters, "no chapter page in the build"
    problems: list[str] = []
    typeset = 0
    for relative in ("index.html", chapters[0].relative_to(built_book).as_posix()):
        page, log = open_page(chromium, site + relative)
        try:
            page.wait_for_load_state("networkidle")
            problems += _check_math(page, relative)
            typeset += page.locator("mjx-container").count()
            problems += [f"{relative}: {p}" for p in log.problems()]
            assert log.requests > 5, f"{relative}: suspiciously few requests ({log.requests})"
        finally:
            page.context.close()
    assert not problems, "\n".join(problems)
    assert typeset > 0, "no math typeset on the landing page or the first chapter"
