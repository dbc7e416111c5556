"""Page weight and slider latency of the built book.

For every page of the site: the HTML size (widget frames are inlined into it, base64), the decoded size of the
precomputed frames, and what a first visit transfers in all (HTML + the site's scripts, styles and fonts, shared by
every page). For every page with widgets: the slider -> frame latency in Debian chromium, from the key press to the
new frame being in the DOM (MutationObserver timestamp in the page) and painted (two animation frames later).

For every page with a continuous explorer (pnc/book/live.py, issue #25): key press on a range slider -> the plot
or table recomputed and redrawn in the page (the explorer's ``pnc-live-drawn`` event, fired by uPlot's draw hook after
the canvas is drawn), timed in the page.

Budgets (issue #4): HTML + frames under 3 MB per chapter page; slider -> frame under 100 ms. Issue #25: key press ->
redraw of a continuous explorer, median at most 16 ms (one frame at 60 Hz).

    .venv/bin/python benchmarks/page_weight.py               # reuse _build/html (build it first if missing)
    .venv/bin/python benchmarks/page_weight.py --html DIR    # any built site
    .venv/bin/python benchmarks/page_weight.py --build       # rebuild the book first (python3 dev.py book)
    .venv/bin/python benchmarks/page_weight.py --only 04_ --out /tmp/ch4.md   # some pages only

Writes benchmarks/RESULTS-pages.md. ``main(argv)`` is what benchmarks/run.py calls; it returns 0 when every budget
holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser_support import (  # noqa: E402 - tests/ is put on the path just above
    LATENCY_SETUP_JS,
    MARK_VIEWS_JS,
    WidgetState,
    launch,
    open_page,
    serve,
    site_pages,
)

PAGE_BUDGET_BYTES = 3_000_000
LATENCY_BUDGET_MS = 100.0
LIVE_BUDGET_MS = 16.0
LIVE_MARK = 'class="pnc-live '
RESULTS = ROOT / "benchmarks" / "RESULTS-pages.md"


@dataclass
class PageResult:
    page: str
    html_bytes: int
    widgets: int = 0
    frames: int = 0
    frame_bytes: int = 0
    transferred: int = 0
    latencies_dom: list[float] = field(default_factory=list)
    latencies_paint: list[float] = field(default_factory=list)
    live: int = 0
    latencies_live: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def within_weight(self) -> bool:
        return self.html_bytes < PAGE_BUDGET_BYTES

    @property
    def within_latency(self) -> bool:
        """The typical (median) key press -> painted frame is under budget; the max is reported, not judged (on a
        shared CI machine it mostly measures scheduler stalls)."""
        frames = not self.latencies_paint or statistics.median(self.latencies_paint) < LATENCY_BUDGET_MS
        return frames and (not self.latencies_live or statistics.median(self.latencies_live) <= LIVE_BUDGET_MS)


def build(html_dir: Path) -> None:
    """Build the book the way the README says (executing chapters, cached)."""
    result = subprocess.run([sys.executable, str(ROOT / "dev.py"), "book"], cwd=ROOT)
    if result.returncode != 0 or not (html_dir / "index.html").exists():
        raise SystemExit("the book build failed; see the output above")


def measure_latency(browser: object, url: str, state: WidgetState, result: PageResult, repeats: int) -> None:
    """Press ArrowRight/ArrowLeft on every slider and time key press -> new frame in DOM -> painted."""
    page, log = open_page(browser, url)
    try:
        page.wait_for_function(
            "(n) => document.querySelectorAll('.widget-subarea').length >= n && "
            "Array.from(document.querySelectorAll('.widget-subarea')).every(e => e.children.length > 0)",
            arg=len(state.views), timeout=30_000)
        page.evaluate(MARK_VIEWS_JS)
        for view in state.views:
            root = page.locator(f'[data-pnc-view="{view}"]')
            root.evaluate(LATENCY_SETUP_JS)
            handles = root.locator(".noUi-handle")
            sliders = state.sliders(view)
            if handles.count() != len(sliders):
                result.problems.append(f"{len(sliders)} sliders in the state, {handles.count()} on screen")
                continue
            for number, slider in enumerate(sliders):
                positions = len(state.slider_positions(slider))
                attr = "index" if state.name(slider) == "SelectionSliderModel" else "value"
                index = state.slider_positions(slider).index(state.state(slider)[attr])
                step = 1
                for _ in range(4 * repeats):  # bounce between the ends of the range: every press moves the slider
                    if not 0 <= index + step < positions:
                        step = -step
                    index += step
                    handles.nth(number).focus()
                    page.keyboard.press("ArrowRight" if step > 0 else "ArrowLeft")
                    try:
                        page.wait_for_function("() => window.__pncLatency.paint > 0", timeout=5_000)
                    except Exception:
                        result.problems.append(f"slider {number}: no new frame within 5 s of a key press")
                        continue
                    probe = page.evaluate("() => window.__pncLatency")
                    result.latencies_dom.append(probe["dom"] - probe["t0"])
                    result.latencies_paint.append(probe["paint"] - probe["t0"])
        page.wait_for_timeout(100)
        result.problems += log.problems()
        result.transferred = sum(log.bytes_by_url.values())
    finally:
        page.context.close()


# Time from a keydown on a range slider of a continuous explorer to that explorer's next redraw, in the page.
LIVE_LATENCY_JS = """
el => {
  window.__pncLive = null;
  let t0 = 0;
  const onKey = () => { t0 = performance.now(); };
  const onDraw = () => {
    if (!t0) { return; }
    window.__pncLive = performance.now() - t0;
    document.removeEventListener('keydown', onKey, true);
    el.removeEventListener('pnc-live-drawn', onDraw);
  };
  document.addEventListener('keydown', onKey, true);
  el.addEventListener('pnc-live-drawn', onDraw);
}
"""


def measure_live(browser: object, url: str, result: PageResult, repeats: int) -> None:
    """Press ArrowRight/ArrowLeft on every range slider of every continuous explorer: key press -> redraw."""
    page, log = open_page(browser, url)
    try:
        page.wait_for_function("() => document.querySelectorAll('.pnc-live').length > 0 && Array.from("
                               "document.querySelectorAll('.pnc-live')).every(e => e.classList.contains("
                               "'pnc-live-ready'))", timeout=30_000)
        boxes = page.locator(".pnc-live")
        result.live = boxes.count()
        for b in range(result.live):
            box = boxes.nth(b)
            ranges = box.locator("input[type=range]")
            for i in range(ranges.count()):
                slider = ranges.nth(i)
                slider.scroll_into_view_if_needed()
                # a slider at its right end (an explorer's default may be its last grid point) moves left first
                keys = ("ArrowLeft", "ArrowRight") if slider.evaluate(
                    "e => parseFloat(e.value) >= parseFloat(e.max)") else ("ArrowRight", "ArrowLeft")
                for press in range(4 * repeats):
                    slider.focus()
                    box.evaluate(LIVE_LATENCY_JS)
                    page.keyboard.press(keys[press % 2])
                    try:
                        page.wait_for_function("() => window.__pncLive !== null", timeout=5_000)
                    except Exception:
                        result.problems.append(f"explorer {b} slider {i}: no redraw within 5 s of a key press")
                        continue
                    result.latencies_live.append(float(page.evaluate("() => window.__pncLive")))
        page.wait_for_timeout(100)
        result.problems += log.problems()
        result.transferred = sum(log.bytes_by_url.values())
    finally:
        page.context.close()


def transferred(browser: object, url: str) -> tuple[int, list[str]]:
    page, log = open_page(browser, url)
    try:
        page.wait_for_load_state("networkidle")
        return sum(log.bytes_by_url.values()), log.problems()
    finally:
        page.context.close()


def run(html_dir: Path, repeats: int = 3, only: str = "") -> list[PageResult]:
    results = []
    pages = [p for p in site_pages(html_dir) if only in p.relative_to(html_dir).as_posix()]
    with serve(html_dir) as site, launch() as browser:
        for path in pages:
            relative = path.relative_to(html_dir).as_posix()
            if relative in ("genindex.html", "search.html"):
                continue
            text = path.read_text(errors="replace")
            result = PageResult(page=relative, html_bytes=len(text.encode()))
            if "application/vnd.jupyter.widget-state+json" in text:
                state = WidgetState.from_html(text, base=path.parent)  # frames are files on the site
                result.widgets, result.frames = len(state.views), state.n_frames()
                result.frame_bytes = state.frame_bytes()
                measure_latency(browser, site + relative, state, result, repeats)
            if LIVE_MARK in text:
                measure_live(browser, site + relative, result, repeats)
            if not result.transferred:
                result.transferred, result.problems = transferred(browser, site + relative)
            results.append(result)
    return results


def _ms(values: list[float], how: str) -> str:
    if not values:
        return "–"
    if how == "median":
        return f"{statistics.median(values):.0f}"
    if how == "p90":
        return f"{sorted(values)[int(0.9 * (len(values) - 1))]:.0f}"
    return f"{max(values):.0f}"


def _ms_live(values: list[float], how: str) -> str:
    if not values:
        return "–"
    return f"{statistics.median(values) if how == 'median' else max(values):.1f}"


def _load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg()) + f" (1/5/15 min) on {os.cpu_count()} CPUs"
    except OSError:
        return "unknown"


def report(results: list[PageResult], html_dir: Path, seconds: float) -> str:
    vendor = html_dir / "_static"
    shared = sum(p.stat().st_size for sub in ("ipywidgets", "mathjax", "uplot") for p in (vendor / sub).rglob("*")
                 if p.is_file()) if vendor.exists() else 0
    lines = [
        "# Page weight and slider latency",
        "",
        f"Generated by `benchmarks/page_weight.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.machine()} / Python {platform.python_version()}, Debian chromium (headless) via Playwright; "
        f"site `{html_dir}`; {seconds:.0f} s.",
        "",
        f"Budgets: HTML (frames inlined) < {PAGE_BUDGET_BYTES / 1e6:.0f} MB per page; slider → painted frame < "
        f"{LATENCY_BUDGET_MS:.0f} ms (median key press; p90 and max shown). *key→DOM*: key press to the new frame's "
        "`img` in the page (MutationObserver); *key→paint*: to the first task after the next animation frame. "
        f"Load average while measuring: {_load()}. *Transferred* is a first visit with an empty cache, including "
        f"the site's shared scripts (vendored widget embed script + MathJax: {shared / 1e6:.2f} MB on disk, not all "
        "of it fetched by every page; uPlot only by pages with a continuous explorer). *live*: continuous explorers "
        f"(computed in the page); *key→redraw*: key press on a range slider to the explorer redrawn (budget "
        f"{LIVE_BUDGET_MS:.0f} ms median).",
        "",
        "| page | HTML (KB) | widgets | frames | frames decoded (KB) | transferred (KB) | key→DOM median / max (ms) "
        "| key→paint median / p90 / max (ms) | presses | live | key→redraw median / max (ms) | within budget |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        ok = r.within_weight and r.within_latency and not r.problems
        lines.append(
            f"| {r.page} | {r.html_bytes / 1e3:.0f} | {r.widgets or '–'} | {r.frames or '–'} | "
            f"{r.frame_bytes / 1e3:.0f} | {r.transferred / 1e3:.0f} | "
            f"{_ms(r.latencies_dom, 'median')} / {_ms(r.latencies_dom, 'max')} | "
            f"{_ms(r.latencies_paint, 'median')} / {_ms(r.latencies_paint, 'p90')} / {_ms(r.latencies_paint, 'max')} | "
            f"{len(r.latencies_paint) or '–'} | {r.live or '–'} | "
            f"{_ms_live(r.latencies_live, 'median')} / {_ms_live(r.latencies_live, 'max')} | "
            f"{'yes' if ok else '**no**'} |")
    problems = [f"- {r.page}: {p}" for r in results for p in r.problems]
    if problems:
        lines += ["", "Problems seen while measuring:", "", *problems]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="built site (default _build/html)")
    parser.add_argument("--build", action="store_true", help="rebuild the book first")
    parser.add_argument("--repeats", type=int, default=3, help="key-press rounds per slider")
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown table to write")
    parser.add_argument("--only", default="", help="measure only the pages whose path contains this text")
    args = parser.parse_args(argv)
    html_dir = args.html.resolve()
    if args.build or not (html_dir / "index.html").exists():
        if html_dir != (ROOT / "_build" / "html").resolve():
            raise SystemExit(f"{html_dir} has no built site (only the default _build/html can be built here)")
        build(html_dir)
    started = time.perf_counter()
    results = run(html_dir, repeats=args.repeats, only=args.only)
    text = report(results, html_dir, time.perf_counter() - started)
    args.out.write_text(text)
    print(text)
    print(f"wrote {args.out}")
    ok = all(r.within_weight and r.within_latency and not r.problems for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
