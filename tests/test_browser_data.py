"""The explorers of trained networks drawn in the page from their data (pnc.book.widgets.DataExplorer), in Debian
chromium on the built site.

- Every control of every such explorer, moved with the keyboard and with the pointer, changes what is plotted, and
  what each panel plots is then exactly the data of the page's configuration for that grid point (every line's
  points, in every panel).
- No request to another host and no console error at 1400 and 390 px; no explorer is wider than its column, the
  panels are side by side on a wide screen and stacked on a phone, the axis text is at least 9 CSS px, and the
  legend sits below the data.
- In dark mode (switched with the theme button, as a reader does) every series is drawn in its dark colour, and
  back in light mode in its light one.
- The block is a named group with an aria-live readout of the current setting and a folded data table of the
  current view. Screenshots go to test-artifacts/screenshots/data-*.png.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import open_ready, set_colour_mode, site_pages
from conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.book]

MARK = 'class="pnc-live pnc-live-data"'
WIDTHS = {"desktop": (1400, 1000), "phone": (390, 844)}
SHOTS = ARTIFACTS / "screenshots"
READY_JS = ("() => document.querySelectorAll('.pnc-live-data').length > 0 && Array.from(document.querySelectorAll("
            "'.pnc-live-data')).every(el => el.classList.contains('pnc-live-ready'))")


def data_pages(html_dir: Path) -> list[str]:
    """Pages (relative) that hold an explorer drawn from its data."""
    return [p.relative_to(html_dir).as_posix() for p in site_pages(html_dir) if MARK in p.read_text(errors="replace")]


@pytest.fixture(scope="module")
def pages(built_book: Path, site: str, chromium: Any) -> Iterator[dict[tuple[str, str], tuple[Any, Any]]]:
    """``(relative page, width name) -> (page, log)``, every data explorer drawn."""
    relatives = data_pages(built_book)
    assert relatives, "no page of the built book holds an explorer drawn from its data (pnc.book.widgets.DataExplorer)"
    opened = open_ready(chromium, site, relatives, WIDTHS, READY_JS, mode="light")
    yield opened
    for page, _ in opened.values():
        page.context.close()


def _explorers(pages: dict, width: str = "desktop") -> Iterator[tuple[str, Any, int, Any, dict]]:
    for (relative, w), (page, _) in pages.items():
        if w != width:
            continue
        boxes = page.locator(".pnc-live-data")
        for b in range(boxes.count()):
            box = boxes.nth(b)
            yield relative, page, b, box, box.evaluate("el => el.pncLive.config")


def _flat(config: dict, index: list[int]) -> int:
    k = 0
    for p, i in zip(config["params"], index, strict=True):
        k = k * len(p["values"]) + i
    return k


def _expected(view: dict) -> list[list[list[list[float | None]]]]:
    """Per panel, per drawn series (lines, and labelled horizontal reference lines), its points as the config holds
    them; the points of a line at a value the log axis cannot show are None (a gap)."""
    out = []
    for panel in view["panels"]:
        xs = sorted({x for s in panel["series"] if s["kind"] == "line" for x in s["x"] if x is not None})
        log = panel["y"]["scale"] == "log"
        series = []
        for s in panel["series"]:
            if s["kind"] == "line":
                series.append([[x, None if y is None or (log and y <= 0) else y]
                               for x, y in sorted(zip(s["x"], s["y"], strict=True)) if x is not None])
            elif s["kind"] == "hline" and s["legend"]:
                series.append([[x, s["y"]] for x in xs])
        out.append(series)
    return out


def _drawn(box: Any) -> list[list[list[list[float | None]]]]:
    return [[s["points"] for s in panel] for panel in box.evaluate("el => el.pncLive.series()")]


def _check_view(box: Any, config: dict, where: str) -> None:
    index = box.evaluate("el => el.pncLive.index.slice()")
    view = config["views"][_flat(config, index)]
    assert _drawn(box) == _expected(view), f"{where}: the plots are not the data of the view at {index}"
    titles = box.evaluate("el => Array.from(el.querySelectorAll('.pnc-data-title')).map(t => t.textContent)")
    assert titles == [t for p in view["panels"] for t in p["title"]], where
    letters = box.evaluate("el => Array.from(el.querySelectorAll('.pnc-data-letter')).map(t => t.textContent)")
    expected = [f"({p['letter']})" for p in view["panels"] if p["letter"]]
    assert letters == expected and (len(view["panels"]) < 2 or len(letters) == len(view["panels"])), \
        f"{where}: panel letters {letters}, the captions name {expected}"


def _move_by_keyboard(page: Any, box: Any, k: int, param: dict) -> None:
    if param["choice"]:
        box.locator(f'input[type=radio][data-param="{k}"]:checked').focus()
    else:
        box.locator(f'input[type=range][data-param="{k}"]').focus()
    index = box.evaluate("el => el.pncLive.index.slice()")
    at_end = index[k] == len(param["values"]) - 1
    page.keyboard.press("ArrowLeft" if at_end else "ArrowRight")


def _move_by_pointer(page: Any, box: Any, k: int, param: dict, target: int) -> None:
    if param["choice"]:
        box.locator(f'input[type=radio][data-param="{k}"][value="{target}"] + span').click()
    else:
        slider = box.locator(f'input[type=range][data-param="{k}"]')
        bb = slider.bounding_box()
        n = len(param["values"])
        frac = target / (n - 1)  # the thumb's centre runs from half a thumb in to half a thumb from the end
        thumb = 16
        page.mouse.click(bb["x"] + thumb / 2 + frac * (bb["width"] - thumb), bb["y"] + bb["height"] / 2)


def test_every_control_moves_by_keyboard_and_pointer_and_shows_its_view(pages: dict) -> None:
    moved = 0
    for relative, page, b, box, config in _explorers(pages):
        where = f"{relative} data explorer {b}"
        _check_view(box, config, where + " (first view)")
        for k, param in enumerate(config["params"]):
            before = _drawn(box)
            start = box.evaluate("el => el.pncLive.index.slice()")
            _move_by_keyboard(page, box, k, param)
            after = box.evaluate("el => el.pncLive.index.slice()")
            assert after[k] != start[k] and after[:k] + after[k + 1:] == start[:k] + start[k + 1:], where
            # what is plotted changes, unless the two grid points hold the same numbers (chapter 10's batch size:
            # the measurement does not depend on it, which is what that explorer shows)
            same = config["views"][_flat(config, start)] == config["views"][_flat(config, after)]
            assert same or _drawn(box) != before, f"{where}: the arrow key on {param['label']} changed nothing"
            _check_view(box, config, f"{where} after a key on {param['label']}")
            status = box.locator(".pnc-live-status")
            page.wait_for_function("([el, v]) => el.textContent.includes(v)",
                                   arg=[status.element_handle(), f"{param['label']} = {param['values'][after[k]]}"],
                                   timeout=5_000)
            # the pointer: to the first and the last value of the grid
            for target in (0, len(param["values"]) - 1):
                _move_by_pointer(page, box, k, param, target)
                assert box.evaluate("el => el.pncLive.index.slice()")[k] == target, f"{where}: pointer to {target}"
                _check_view(box, config, f"{where} after a click on {param['label']} value {target}")
            box.evaluate(f"el => el.pncLive.set({k}, {param['default']})")
            moved += 1
    assert moved >= 1


def test_every_view_of_the_grid_is_its_data(pages: dict) -> None:
    """Each grid point, set through the page's API, draws the data of its own entry of the configuration."""
    for relative, _page, b, box, config in _explorers(pages):
        for index in itertools.product(*(range(len(p["values"])) for p in config["params"])):
            for k, i in enumerate(index):
                box.evaluate(f"el => el.pncLive.set({k}, {i})")
            _check_view(box, config, f"{relative} data explorer {b} at {index}")
        for k, p in enumerate(config["params"]):
            box.evaluate(f"el => el.pncLive.set({k}, {p['default']})")


FIT_JS = """
el => {
  const col = el.closest('article') || document.body;
  const r = el.getBoundingClientRect();
  const panels = Array.from(el.querySelectorAll('.pnc-data-panel')).map(p => {
    const c = p.querySelector('canvas').getBoundingClientRect();
    const g = p.querySelector('.u-legend').getBoundingClientRect();
    return {left: c.left, right: c.right, top: c.top, bottom: c.bottom, legendTop: g.top,
            boxLeft: p.getBoundingClientRect().left};
  });
  return {colLeft: col.getBoundingClientRect().left, colRight: col.getBoundingClientRect().right, left: r.left,
          right: r.right, scroll: el.scrollWidth - el.clientWidth, panels: panels,
          fontPx: el.pncLive.plots.map(p => p.pncFontPx),
          legendPx: Array.from(el.querySelectorAll('.u-legend')).map(g => parseFloat(getComputedStyle(g).fontSize)),
          textPx: Array.from(el.querySelectorAll('.pnc-data-title, .pnc-data-texts p, label, output, legend'))
                    .map(t => parseFloat(getComputedStyle(t).fontSize))};
}
"""


@pytest.mark.parametrize("width", list(WIDTHS))
def test_offline_no_errors_and_fits_its_column(pages: dict, width: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for (relative, w), (page, log) in pages.items():
        if w != width:
            continue
        assert not log.problems(), f"{relative}: {log.problems()}"  # other hosts, failed requests, console errors
        boxes = page.locator(".pnc-live-data")
        for b in range(boxes.count()):
            box = boxes.nth(b)
            box.scroll_into_view_if_needed()
            fit = box.evaluate(FIT_JS)
            where = f"{relative} data explorer {b} at {width}"
            assert fit["right"] <= fit["colRight"] + 1 and fit["scroll"] <= 1, f"{where}: wider than its column {fit}"
            for panel in fit["panels"]:
                assert panel["right"] <= fit["colRight"] + 1, f"{where}: a plot wider than its column {fit}"
                assert panel["right"] - panel["left"] >= 250, f"{where}: a plot too small {fit}"
                assert panel["legendTop"] >= panel["bottom"] - 1, f"{where}: legend over the data {fit}"
            if len(fit["panels"]) > 1:
                stacked = len({round(p["boxLeft"]) for p in fit["panels"]}) == 1  # one column
                assert stacked == (width == "phone"), f"{where}: panels {'not ' if width == 'phone' else ''}stacked"
            assert min(fit["fontPx"] + fit["legendPx"] + fit["textPx"]) >= 9, f"{where}: text below 9 px {fit}"
            box.screenshot(path=str(SHOTS / f"data-{Path(relative).stem}-{b}-{width}.png"))


def test_series_follow_the_colour_mode_live(pages: dict) -> None:
    for width in WIDTHS:
        for relative, page, b, box, config in _explorers(pages, width):
            where = f"{relative} data explorer {b} at {width}"
            for mode in ("dark", "light"):
                set_colour_mode(page, mode)
                page.wait_for_timeout(200)
                index = box.evaluate("el => el.pncLive.index.slice()")
                view = config["views"][_flat(config, index)]
                want = [[s["dark" if mode == "dark" else "color"] for s in p["series"]
                         if s["kind"] == "line" or (s["kind"] == "hline" and s["legend"])] for p in view["panels"]]
                got = box.evaluate("el => el.pncLive.colors()")
                assert got == want, f"{where}: series colours in {mode} mode {got} != {want}"
                box.scroll_into_view_if_needed()
                box.screenshot(path=str(SHOTS / f"data-{Path(relative).stem}-{b}-{width}-{mode}.png"))


def test_named_group_readout_and_data_table(pages: dict) -> None:
    for relative, _page, b, box, config in _explorers(pages):
        where = f"{relative} data explorer {b}"
        assert box.get_attribute("role") == "group" and box.get_attribute("aria-label"), where
        assert box.locator(".pnc-live-status").get_attribute("aria-live") == "polite", where
        names = box.evaluate("el => Array.from(el.querySelectorAll('input[type=range]'))"
                             ".map(i => [(i.labels[0] || {}).textContent, i.getAttribute('aria-valuetext')])")
        sliders = [p for p in config["params"] if not p["choice"]]
        assert [n for n, _ in names] == [p["label"] for p in sliders], where
        assert [v for _, v in names] == [p["values"][p["default"]] for p in sliders], where
        for p in config["params"]:
            if p["choice"]:
                assert box.locator(f"fieldset legend:text-is('{p['label']}')").count() == 1, where
        # the folded table is the current view's data: every value of its lines
        details = box.locator("details.pnc-figure-data")
        details.locator("summary").click()
        details.locator("table").first.wait_for()
        table = details.inner_text()
        index = box.evaluate("el => el.pncLive.index.slice()")
        view = config["views"][_flat(config, index)]
        for panel in view["panels"]:
            for s in panel["series"]:
                if s["kind"] == "line":
                    for y in s["y"]:
                        assert y is None or str(y) in table or repr(y) in table, f"{where}: {y} not in the table"
        assert details.locator("a.pnc-figure-csv").count() == 1, where
        # while it is open it follows the controls
        last = len(config["params"][0]["values"]) - 1
        other = 0 if index[0] == last else last
        box.evaluate(f"el => el.pncLive.set(0, {other})")
        setting = details.locator(".pnc-data-setting").text_content()
        assert f"{config['params'][0]['label']} = {config['params'][0]['values'][other]}" in setting, where
        box.evaluate(f"el => el.pncLive.set(0, {config['params'][0]['default']})")
        details.locator("summary").click()


FOCUS_JS = """
el => {
  const active = document.activeElement;
  if (!active || !el.contains(active)) { return null; }
  const ring = active.type === 'radio' ? active.nextElementSibling : active;
  const style = getComputedStyle(ring);
  return {param: active.dataset.param, type: active.type, visible: active.matches(':focus-visible'),
          outline: style.outlineStyle, width: parseFloat(style.outlineWidth)};
}
"""


def test_controls_are_in_the_tab_order_with_a_focus_ring(pages: dict) -> None:
    """From each control Tab away and Shift+Tab back: it is in the Tab order and shows a focus ring (on the button
    of a radio group), and its value text is the value shown next to it."""
    checked = 0
    for relative, page, b, box, config in _explorers(pages):
        for k, param in enumerate(config["params"]):
            where = f"{relative} data explorer {b} control {param['label']}"
            control = box.locator(f'input[data-param="{k}"]' + (":checked" if param["choice"] else ""))
            control.focus()
            page.keyboard.press("Tab")
            page.keyboard.press("Shift+Tab")
            focus = box.evaluate(FOCUS_JS)
            assert focus and focus["param"] == str(k), f"{where}: Shift+Tab does not return to it ({focus})"
            assert focus["visible"] and focus["outline"] != "none" and focus["width"] >= 2, f"{where}: {focus}"
            if not param["choice"]:
                shown = box.locator(f'input[data-param="{k}"] + output').text_content()
                assert control.get_attribute("aria-valuetext") == shown, where
            checked += 1
    assert checked >= 1
