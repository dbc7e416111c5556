"""The continuous explorers (pnc/book/live.py) in the built site, in Debian chromium.

- Every formula a page computes is the JavaScript sympy printed from the expression in pnc.book.laws (its source, as
  the page holds it), and it agrees with the lambdified expression (float64) to 1e-12 relative at 200 random
  parameter points; the same check rejects the code of the expression with one constant changed.
- Every control of every explorer, moved with the keyboard and with the pointer, changes what is plotted (or
  tabulated), and a typed value between the steps of the old frame grids gives the formula at that value.
- No request to another host and no console error at 1400 and 390 px; each plot fits its column and its legend sits
  below the data. Screenshots of every explorer at both widths go to test-artifacts/screenshots/live-*.png.

One browser and one page per width for the module: the whole file takes a few seconds on a built site.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser_support import open_ready, site_pages
from conftest import ARTIFACTS

from pnc.book import laws

pytestmark = [pytest.mark.browser, pytest.mark.book]

MARK = 'class="pnc-live '
FORMULA_MARKS = ('class="pnc-live pnc-live-plot"', 'class="pnc-live pnc-live-panel"')
"""The explorers that compute a formula; those of class pnc-live-data (trained networks drawn from their data) are
tested in test_browser_data.py."""
FORMULA = ".pnc-live:not(.pnc-live-data)"
WIDTHS = {"desktop": (1400, 1000), "phone": (390, 844)}
N_POINTS = 200
RTOL = 1e-12
SHOTS = ARTIFACTS / "screenshots"


def live_pages(html_dir: Path) -> list[str]:
    """Pages (relative) that hold a continuous explorer of a formula."""
    return [p.relative_to(html_dir).as_posix() for p in site_pages(html_dir)
            if any(mark in p.read_text(errors="replace") for mark in FORMULA_MARKS)]


@pytest.fixture(scope="module")
def pages(built_book: Path, site: str, chromium: Any) -> Iterator[dict[tuple[str, str], tuple[Any, Any]]]:
    """``(relative page, width name) -> (page, log)``, every explorer drawn."""
    relatives = live_pages(built_book)
    assert relatives, "no page of the built book holds a continuous explorer (pnc.book.live)"
    opened = open_ready(chromium, site, relatives, WIDTHS, "() => document.querySelectorAll('.pnc-live').length > 0 "
                        "&& Array.from(document.querySelectorAll('.pnc-live')).every(el => "
                        "el.classList.contains('pnc-live-ready'))")
    yield opened
    for page, _ in opened.values():
        page.context.close()


DOMAINS = {"imbalance_ratio": {"L": (2, 20), "l": (1, 19)}}
"""Narrower ranges where a formula needs them (the tilted scales need two layers at least)."""


def _points(formula: laws.Formula, rng: np.random.Generator) -> np.ndarray:
    """``N_POINTS`` random argument tuples in the ranges the explorers offer (wider for the free ones)."""
    ranges = {"varepsilon": (0.01, 1.0), "alpha": (0.1, 1000.0), "n": (2, 1000), "L": (1, 20), "K": (2, 100),
              "l": (0, 19), "max_E": (-0.5, 0.5), "t": (0.0, 300.0), "sigma": (0.5, 7.0), "u_0": (0.001, 0.3),
              "vartheta": (20.0, 300.0), "omega": (0.01, 1.0), "zeta": (0.1, 4.0), "m": (1, 200),
              "tau": (-0.5, 0.5), "beta_0": (0.0, 2.0), "tilt": (-0.95, 0.95)}
    ranges |= DOMAINS.get(formula.name, {})
    cols = []
    for name in formula.arg_names:
        lo, hi = ranges[name]
        integer = name in ("n", "L", "K", "l", "m")
        cols.append(rng.integers(lo, hi + 1, N_POINTS).astype(float) if integer else rng.uniform(lo, hi, N_POINTS))
    return np.column_stack(cols)


def _agrees(got: list[float], expected: np.ndarray) -> bool:
    got_a = np.asarray(got, dtype=float)
    return bool(np.all(np.abs(got_a - expected) <= RTOL * np.abs(expected) + 1e-300))


EVAL_PAGE = "([name, pts]) => pts.map(p => window.pncLaws[name](...p))"
EVAL_SOURCE = "([src, pts]) => { const f = (0, eval)('(' + src + ')'); return pts.map(p => f(...p)); }"


def test_page_formulas_are_the_sympy_expressions(pages: dict) -> None:
    rng = np.random.default_rng(25)
    checked = set()
    for (relative, width), (page, _) in pages.items():
        if width != "desktop":
            continue
        names = page.evaluate("() => Object.keys(window.pncLaws || {})")
        assert names, f"{relative}: no generated formula"
        for name in names:
            assert name in laws.FORMULAS, f"{relative}: formula {name} is not in pnc.book.laws"
            formula = laws.FORMULAS[name]
            source = page.evaluate("name => window.pncLaws[name].toString()", name)
            assert source == formula.javascript(), f"{relative}: {name} is not the code sympy prints"
            pts = _points(formula, rng)
            expected = formula.numpy()(*pts.T).astype(np.float64)
            got = page.evaluate(EVAL_PAGE, [name, pts.tolist()])
            assert _agrees(got, expected), f"{relative}: {name} differs from sympy beyond {RTOL}"
            # the comparison can fail: the code of the expression with one constant changed does not pass it
            mutated = formula.with_expr(laws.mutate_constant(formula.expr)).javascript()
            assert mutated != formula.javascript()
            assert not _agrees(page.evaluate(EVAL_SOURCE, [mutated, pts.tolist()]), expected), name
            checked.add(name)
    assert set(laws.FORMULAS) <= checked, f"formulas no page computes: {set(laws.FORMULAS) - checked}"


SHOWN_JS = """
el => el.pncLive.plot ? JSON.stringify(el.pncLive.plot.data)
                      : el.querySelector('.pnc-live-table').innerText + '|' +
                        el.querySelector('.pnc-live-scalars').innerText
"""


def _expected(config: dict, values: dict[str, float]) -> list[list[float | None]]:
    """What a plot must show for ``values``, computed in numpy from pnc.book.laws and the page's configuration."""
    env = {**config["fixed"], **values}
    out = []
    for curve in config["curves"]:
        f = laws.FORMULAS[curve["formula"]].numpy()
        limit = env[curve["upto"]] + curve["offset"] if curve["upto"] else np.inf
        out.append([float(f(*[x if a == config["x"]["name"] else env[a] for a in curve["args"]]))
                    if x <= limit + 1e-9 else None for x in config["x"]["values"]])
    return out


def _check_curves(got: list, want: list, where: str) -> None:
    for g_curve, w_curve in zip(got, want, strict=True):
        for g, w in zip(g_curve, w_curve, strict=True):
            assert (g is None) == (w is None), where
            if w is not None:
                assert abs(g - w) <= RTOL * abs(w), f"{where}: {g} != {w}"


def _desktop_explorers(pages: dict) -> Iterator[tuple[str, Any, int, Any, dict]]:
    """(page path, page, explorer number, its element, its configuration) of every continuous explorer at desktop
    width."""
    for (relative, width), (page, _) in pages.items():
        if width != "desktop":
            continue
        boxes = page.locator(FORMULA)
        for b in range(boxes.count()):
            box = boxes.nth(b)
            yield relative, page, b, box, box.evaluate("el => el.pncLive.config")


def test_every_control_moves_by_keyboard_pointer_and_typed_value(pages: dict) -> None:
    moved = 0
    for relative, page, b, box, config in _desktop_explorers(pages):
        for control in config["controls"]:
            name = control["name"]
            where = f"{relative} explorer {b} control {name}"
            rng_input = box.locator(f'input[type=range][data-name="{name}"]')
            number = box.locator(f'input[type=number][data-name="{name}"]')
            # keyboard
            before = box.evaluate(SHOWN_JS)
            rng_input.focus()
            at_max = float(rng_input.input_value()) >= control["max"]
            page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
            assert box.evaluate(SHOWN_JS) != before, f"{where}: the arrow key changed nothing"
            assert float(number.input_value()) == pytest.approx(float(rng_input.input_value())), where
            # pointer: a click at 90 % and then at 10 % of the track
            for frac in (0.9, 0.1):
                before = box.evaluate(SHOWN_JS)
                bb = rng_input.bounding_box()
                page.mouse.click(bb["x"] + frac * bb["width"], bb["y"] + bb["height"] / 2)
                assert box.evaluate(SHOWN_JS) != before, f"{where}: a click at {frac:.0%} changed nothing"
            # a typed value off every old grid (between steps for a real-valued control)
            lo, hi = control["min"], control["max"]
            typed = round(lo + 0.37 * (hi - lo)) if control["digits"] == 0 else lo + 0.3713 * (hi - lo)
            number.fill(repr(typed))
            values = box.evaluate("el => Object.assign({}, el.pncLive.values)")
            assert values[name] == pytest.approx(typed, rel=1e-15), where
            if config["kind"] == "plot":
                got = box.evaluate("el => el.pncLive.plot.data.slice(1, 1 + el.pncLive.config.curves.length)")
                _check_curves(got, _expected(config, values), where)
            else:
                got = box.evaluate("el => el.pncLive.shown.curves")
                _check_curves(got, _expected(config, values), where)
            # back to the default, so the next control starts from the page's first view
            number.fill(repr(control["value"]))
            moved += 1
    assert moved >= 4


FIT_JS = """
el => {
  const col = el.closest('article') || document.body;
  const canvas = el.querySelector('canvas');
  const legend = el.querySelector('.u-legend');
  const c = canvas ? canvas.getBoundingClientRect() : null;
  const g = legend ? legend.getBoundingClientRect() : null;
  return {
    kind: el.pncLive.config.kind,
    colRight: col.getBoundingClientRect().right, colLeft: col.getBoundingClientRect().left,
    right: el.getBoundingClientRect().right, scroll: el.scrollWidth - el.clientWidth,
    canvasRight: c ? c.right : null, canvasBottom: c ? c.bottom : null, canvasWidth: c ? c.width : null,
    legendTop: g ? g.top : null,
  };
}
"""


@pytest.mark.parametrize("width", list(WIDTHS))
def test_offline_no_errors_and_fits_its_column(pages: dict, width: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for (relative, w), (page, log) in pages.items():
        if w != width:
            continue
        assert not log.problems(), f"{relative}: {log.problems()}"  # other hosts, failed requests, console errors
        boxes = page.locator(FORMULA)
        for b in range(boxes.count()):
            box = boxes.nth(b)
            box.scroll_into_view_if_needed()
            fit = box.evaluate(FIT_JS)
            where = f"{relative} explorer {b} at {width}"
            assert fit["right"] <= fit["colRight"] + 1 and fit["scroll"] <= 1, f"{where}: wider than its column {fit}"
            if fit["kind"] == "plot":
                assert fit["canvasRight"] <= fit["colRight"] + 1, f"{where}: plot wider than its column {fit}"
                assert fit["canvasWidth"] >= 250, f"{where}: plot too small {fit}"
                assert fit["legendTop"] >= fit["canvasBottom"] - 1, f"{where}: legend over the data {fit}"
            box.screenshot(path=str(SHOTS / f"live-{Path(relative).stem}-{b}-{width}.png"))


def test_plotting_library_only_on_pages_with_an_explorer(built_book: Path) -> None:
    """uPlot and pnc-live.js are added to the pages that hold a continuous explorer or one drawn from its data
    (book_ext/pnc_site.py), no other."""
    for path in site_pages(built_book):
        text = path.read_text(errors="replace")
        loads = "_static/uplot/uPlot.iife.min.js" in text and "_static/pnc-live.js" in text
        assert loads == (MARK in text), path.relative_to(built_book)


A11Y_JS = """
el => Array.from(el.querySelectorAll('input')).map(input => ({
  type: input.type,
  name: input.type === 'range' ? (input.labels[0] || {}).textContent : input.getAttribute('aria-label'),
  valuetext: input.getAttribute('aria-valuetext'),
}))
"""


def test_controls_are_named_focus_ringed_and_announced(pages: dict) -> None:
    """Every input has an accessible name (its visible label); a range slider reached with the keyboard shows a focus
    ring, and a change made with the arrow keys is announced in the explorer's live region."""
    for relative, page, b, box, config in _desktop_explorers(pages):
        where = f"{relative} explorer {b}"
        inputs = box.evaluate(A11Y_JS)
        labels = [c["label"] for c in config["controls"]]
        assert [i["name"] for i in inputs if i["type"] == "range"] == labels, where
        assert [i["name"] for i in inputs if i["type"] == "number"] == [f"{x}, typed value" for x in labels]
        assert all(i["valuetext"] for i in inputs if i["type"] == "range"), where
        slider = box.locator("input[type=range]").first
        slider.focus()
        page.keyboard.press("ArrowRight")
        outline = slider.evaluate("e => [e.matches(':focus-visible'), getComputedStyle(e).outlineStyle,"
                                  " parseFloat(getComputedStyle(e).outlineWidth)]")
        assert outline[0] and outline[1] != "none" and outline[2] >= 2, f"{where}: no focus ring {outline}"
        value = slider.evaluate("e => e.getAttribute('aria-valuetext')")
        status = box.locator(".pnc-live-status")
        assert status.get_attribute("aria-live") == "polite"
        page.wait_for_function("([el, v]) => el.textContent.includes(v)", arg=[status.element_handle(), value],
                               timeout=5_000)
        page.keyboard.press("ArrowLeft")


RANGE_JS = "el => [el.pncLive.yRange.slice(), el.pncLive.plot.data.slice(1)]"


def _spans(r: list[float], data: list[list[float | None]], config_range: list[float]) -> bool:
    """Whether the y range ``r`` holds every plotted value inside the configured range."""
    ys = [y for col in data for y in col if y is not None and config_range[0] <= y <= config_range[1]]
    return bool(ys) and r[0] <= min(ys) and max(ys) <= r[1]


def test_phone_log_axis_follows_the_data_once_a_control_settles(pages: dict) -> None:
    """At 390 px a log axis spans the decades the data occupy (not the whole configured range), stays put while a
    control moves, and re-fits to the new data once the control has settled."""
    checked = 0
    for (relative, width), (page, _) in pages.items():
        boxes = page.locator(".pnc-live.pnc-live-plot")
        for b in range(boxes.count()):
            box = boxes.nth(b)
            config = box.evaluate("el => el.pncLive.config")
            if width != "phone" or not config["y"]["log"]:
                continue
            where = f"{relative} plot {b}"
            lo_cfg, hi_cfg = config["y"]["range"]

            before, data = box.evaluate(RANGE_JS)
            assert _spans(before, data, [lo_cfg, hi_cfg]), f"{where}: {before}"
            assert before[1] / before[0] < hi_cfg / lo_cfg, f"{where}: the whole configured range {before}"
            assert before[1] / before[0] >= 1e3 - 1e-6, f"{where}: fewer than three decades {before}"
            # drag the first slider to its left end: the data change while the pointer is down, the axis does not
            slider = box.locator("input[type=range]").first
            slider.scroll_into_view_if_needed()
            bb = slider.bounding_box()
            page.mouse.move(bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2)
            page.mouse.down()
            page.mouse.move(bb["x"] + 1, bb["y"] + bb["height"] / 2, steps=8)
            page.wait_for_timeout(900)
            moved, moved_data = box.evaluate(RANGE_JS)
            assert moved_data != data, f"{where}: the drag changed nothing"
            assert moved == before, f"{where}: the axis moved with the slider"
            page.mouse.up()
            page.wait_for_timeout(900)
            after, data = box.evaluate(RANGE_JS)
            assert _spans(after, data, [lo_cfg, hi_cfg]), f"{where}: not re-fitted {after}"
            assert lo_cfg <= after[0] and after[1] <= hi_cfg, f"{where}: beyond the configured range {after}"
            box.locator("input[type=number]").first.fill(repr(config["controls"][0]["value"]))
            checked += 1
    assert checked >= 1
