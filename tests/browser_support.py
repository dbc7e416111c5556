"""Helpers shared by the browser tests (tests/test_browser.py) and the page benchmark (benchmarks/page_weight.py).

- :func:`serve` serves a built site on 127.0.0.1 (a ``http.server`` in a thread, on a free port).
- :func:`launch` starts Debian's Chromium through Playwright (never a downloaded browser).
- :class:`WidgetState` decodes a page's embedded ``application/vnd.jupyter.widget-state+json`` and predicts which
  precomputed frames a widget shows for given slider positions, by following ``jslink`` links, ``Stack`` children
  and ``selected_index``.
- :func:`open_page` loads a page with every request routed: requests to other hosts are aborted and recorded, as are
  failed local requests and console errors (minus the known harmless noise of the toolchain).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

CHROMIUM = Path(os.environ.get("PNC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
STATE_MIME = "application/vnd.jupyter.widget-state+json"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"

# Harmless console noise of the toolchain (toolchain.md section 5); anything else from a page is an error.
KNOWN_NOISE = [
    re.compile(r"invalid theme mode", re.I),  # pydata-sphinx-theme
    re.compile(r"strict mode", re.I),  # ajv strict-mode warnings (widget-state schema)
    re.compile(r"unexpected operator"),  # the Debian chromium wrapper script
]

_STATE_RE = re.compile(rf'<script type="{re.escape(STATE_MIME)}">(.*?)</script>', re.S)
_VIEW_RE = re.compile(rf'<script type="{re.escape(VIEW_MIME)}">(.*?)</script>', re.S)
_SLIDERS = {"SelectionSliderModel": "index", "IntSliderModel": "value"}
_CHOICES = {"ToggleButtonsModel": "index"}


def site_pages(html_dir: Path) -> list[Path]:
    """Every content page of a built book (not the copied sources, static assets or execution reports)."""
    skip = {"_static", "_sources", "_images", "reports", "_sphinx_design_static"}
    return sorted(p for p in html_dir.rglob("*.html") if not skip & set(p.relative_to(html_dir).parts))


def widget_pages(html_dir: Path) -> list[Path]:
    """Pages that embed widget state (myst-nb writes it only where a cell displayed a widget)."""
    return [page for page in site_pages(html_dir) if STATE_MIME in page.read_text(errors="replace")]


# --------------------------------------------------------------------------------------------------- widget state


@dataclass
class WidgetState:
    """The widget models embedded in one page, with binary buffers decoded."""

    models: dict[str, dict[str, Any]]
    """model id -> ``{"name": model_name, "state": {...}}`` (buffers decoded into ``state``)."""
    views: list[str]
    """Model ids of the displayed widgets, in page order."""
    links: list[tuple[tuple[str, str], tuple[str, str], bool]] = field(default_factory=list)
    """``((source id, attr), (target id, attr), bidirectional)`` for every jslink / jsdlink."""
    base: Path | None = None
    """Folder of the page, against which a frame's image file (the site serves frames as files) is read."""

    @classmethod
    def from_html(cls, text: str, base: Path | None = None) -> WidgetState:
        blocks = _STATE_RE.findall(text)
        if len(blocks) != 1:
            raise ValueError(f"expected one {STATE_MIME} script, found {len(blocks)}")
        payload = json.loads(blocks[0])
        models: dict[str, dict[str, Any]] = {}
        for model_id, model in payload["state"].items():
            state = dict(model["state"])
            for buffer in model.get("buffers", []):
                if buffer.get("encoding") != "base64":
                    raise ValueError(f"model {model_id}: unsupported buffer encoding {buffer.get('encoding')!r}")
                target = state
                *parents, last = buffer["path"]
                for key in parents:
                    target = target[key]
                target[last] = base64.b64decode(buffer["data"])
            models[model_id] = {"name": model["model_name"], "state": state}
        views = [json.loads(v)["model_id"] for v in _VIEW_RE.findall(text)]
        links = []
        for model in models.values():
            if model["name"] in ("LinkModel", "DirectionalLinkModel"):
                source, target = model["state"]["source"], model["state"]["target"]
                links.append(((_ref(source[0]), source[1]), (_ref(target[0]), target[1]), model["name"] == "LinkModel"))
        return cls(models=models, views=views, links=links, base=base)

    def name(self, model_id: str) -> str:
        return self.models[model_id]["name"]

    def state(self, model_id: str) -> dict[str, Any]:
        return self.models[model_id]["state"]

    def children(self, model_id: str, values: dict[tuple[str, str], Any]) -> list[str]:
        """The children of a container that are on screen given attribute ``values`` (Stack: the selected one)."""
        state = self.state(model_id)
        children = [_ref(c) for c in state.get("children", [])]
        if self.name(model_id) == "StackModel":
            index = values.get((model_id, "selected_index"), state.get("selected_index"))
            return [] if index is None else [children[index]]
        return children

    def displayed(self, root: str, values: dict[tuple[str, str], Any]) -> list[str]:
        """Model ids of the widgets on screen under ``root``, depth first (the order they appear in the page)."""
        out = [root]
        for child in self.children(root, values):
            out.extend(self.displayed(child, values))
        return out

    def sliders(self, root: str) -> list[str]:
        """Sliders (that the keyboard test can drive) shown under ``root`` in the initial state, in page order."""
        return [m for m in self.displayed(root, {}) if self.name(m) in _SLIDERS or self.name(m).endswith("SliderModel")]

    def choices(self, root: str) -> list[str]:
        """Toggle-button groups (two-way choices, clicked by the tests) shown under ``root``, in page order."""
        return [m for m in self.displayed(root, {}) if self.name(m) in _CHOICES]

    def controls(self, root: str) -> list[str]:
        """Sliders and toggle-button groups under ``root``, in page order."""
        return [m for m in self.displayed(root, {}) if m in set(self.sliders(root)) | set(self.choices(root))]

    def initial_values(self) -> dict[tuple[str, str], Any]:
        return {(m, attr): self.state(m)[attr] for m in self.models for attr in ("index", "value", "selected_index")
                if attr in self.state(m) and not isinstance(self.state(m)[attr], bytes)}

    def set_value(self, values: dict[tuple[str, str], Any], key: tuple[str, str], value: Any) -> None:
        """Set ``key`` to ``value`` and propagate through the js links, as the browser does."""
        todo = [key]
        values[key] = value
        seen = {key}
        while todo:
            current = todo.pop()
            for source, target, both in self.links:
                for a, b in ((source, target), (target, source)) if both else ((source, target),):
                    if a == current and b not in seen:
                        values[b] = value
                        seen.add(b)
                        todo.append(b)

    def slider_positions(self, slider: str) -> list[Any]:
        """The values the keyboard steps through, lowest first."""
        state = self.state(slider)
        name = self.name(slider)
        if name in ("SelectionSliderModel", "ToggleButtonsModel"):
            return list(range(len(state["_options_labels"])))
        if name == "IntSliderModel":
            return list(range(state["min"], state["max"] + 1, state["step"]))
        raise ValueError(f"the browser test cannot drive a {name} yet; use a SelectionSlider or an IntSlider")

    def slider_readout(self, slider: str, value: Any) -> str:
        state = self.state(slider)
        labelled = self.name(slider) in ("SelectionSliderModel", "ToggleButtonsModel")
        return state["_options_labels"][value] if labelled else str(value)

    def is_frame(self, model_id: str) -> bool:
        """An explorer frame: an ``HTML`` widget of class ``pnc-frame`` (image, alt text and data) or an image."""
        name = self.name(model_id)
        classes = self.state(model_id).get("_dom_classes", [])
        return name == "ImageModel" or (name == "HTMLModel" and "pnc-frame" in classes)

    def frame_png(self, model_id: str) -> bytes:
        """The PNG bytes a frame shows."""
        value = self.state(model_id)["value"]
        return value if self.name(model_id) == "ImageModel" else frame_png(value, self.base)

    def frames(self) -> list[str]:
        """Model ids of every frame on the page."""
        return [m for m in self.models if self.is_frame(m)]

    def displayed_images(self, root: str, values: dict[tuple[str, str], Any]) -> list[str]:
        """Model ids of the frames on screen under ``root`` for the given values, in page order."""
        return [m for m in self.displayed(root, values) if self.is_frame(m)]

    def expected_frames(self, root: str, values: dict[tuple[str, str], Any]) -> list[str]:
        """SHA-256 of the frame images on screen under ``root`` for the given values, in page order."""
        return [hashlib.sha256(self.frame_png(m)).hexdigest() for m in self.displayed_images(root, values)]

    def frame_bytes(self) -> int:
        """Decoded size of every frame image on the page (the precomputed frames)."""
        return sum(len(self.frame_png(m)) for m in self.frames())

    def n_frames(self) -> int:
        return len(self.frames())


_FRAME_SRC_RE = re.compile(r'<img[^>]*\bsrc="(?:data:image/png;base64,([A-Za-z0-9+/=]+)|([^"]+\.png))"')


def frame_png(html: str, base: Path | None = None) -> bytes:
    """The PNG of an explorer frame from its HTML (``pnc.plotting.figure_html``): its first ``<img>``, the light
    rendering, with a data URL (the notebook) or a file's path relative to the page's folder ``base`` (the site)."""
    match = _FRAME_SRC_RE.search(html)
    if not match:
        raise ValueError("no <img> with a PNG in the frame's HTML")
    if match.group(1):
        return base64.b64decode(match.group(1))
    if base is None:
        raise ValueError(f"the frame's image is the file {match.group(2)}: pass the page's folder as base")
    return (base / match.group(2)).read_bytes()


def _ref(value: str) -> str:
    return value.removeprefix("IPY_MODEL_")


# ------------------------------------------------------------------------------------------------ server, browser


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass


@contextlib.contextmanager
def serve(html_dir: Path) -> Iterator[str]:
    """Serve ``html_dir`` on 127.0.0.1 at a free port; yields the base URL (with a trailing slash)."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def launch() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (no downloaded browser, no network services)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: run `python3 dev.py test` (installs Debian chromium) or "
                                "set PNC_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageLog:
    """What a page did while it was open."""

    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    requests: int = 0
    bytes_by_url: dict[str, int] = field(default_factory=dict)

    def problems(self) -> list[str]:
        return ([f"request to another host: {u}" for u in self.external] + [f"failed request: {u}" for u in self.failed]
                + [f"console error: {m}" for m in self.console_errors])


def _is_noise(text: str) -> bool:
    return any(pattern.search(text) for pattern in KNOWN_NOISE)


PAGE_TIMEOUT_MS = 90_000
"""Waits on a page (load, network idle, selectors). On a loaded 2-core machine a chapter with a dozen figures, its
widgets and MathJax has been seen to need more than Playwright's default of 30 s to fall network-idle."""


def open_page(browser: Any, url: str, viewport: tuple[int, int] = (1200, 1600),
              mode: str | None = None) -> tuple[Any, PageLog]:
    """Open ``url`` in a fresh context that aborts and records requests to other hosts; returns (page, log).

    ``mode`` (``"light"`` or ``"dark"``) is the reader's stored theme choice at the first load (the theme keeps it in
    localStorage and applies it as ``<html data-theme>``); a later choice stored by the page survives reloads."""
    log = PageLog()
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, service_workers="block")
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    if mode is not None:
        if mode not in ("light", "dark"):
            raise ValueError(f"mode must be 'light' or 'dark', not {mode!r}")
        context.add_init_script(f"if (!localStorage.getItem('mode')) localStorage.setItem('mode', '{mode}');")

    def route(route: Any) -> None:
        parsed = urlparse(route.request.url)
        if parsed.scheme in ("data", "blob") or parsed.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            log.external.append(route.request.url)
            route.abort()

    def on_console(message: Any) -> None:
        if message.type != "error" or _is_noise(message.text):
            return
        if (message.location or {}).get("url", "").endswith("/favicon.ico"):
            return  # the browser asks every site for a favicon; the book has none
        log.console_errors.append(f"{message.text} ({(message.location or {}).get('url', '')})")

    def on_response(response: Any) -> None:
        log.requests += 1
        if response.status >= 400:
            log.failed.append(f"{response.status} {response.url}")

    def on_failed(request: Any) -> None:
        if urlparse(request.url).hostname in LOCAL_HOSTS:
            log.failed.append(f"{request.failure} {request.url}")

    def on_finished(request: Any) -> None:
        with contextlib.suppress(Exception):
            log.bytes_by_url[request.url] = request.sizes()["responseBodySize"]

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", on_console)
    page.on("pageerror", lambda err: None if _is_noise(str(err)) else log.console_errors.append(f"uncaught: {err}"))
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    page.on("requestfinished", on_finished)
    page.goto(url, wait_until="load")
    return page, log


def open_ready(browser: Any, site: str, relatives: list[str], widths: dict[str, tuple[int, int]], ready_js: str,
               mode: str | None = None) -> dict[tuple[str, str], tuple[Any, PageLog]]:
    """Open each page (relative to ``site``) at each width (name -> viewport), in colour ``mode`` as
    :func:`open_page`, and wait until ``ready_js`` is true there; ``(relative, width name) -> (page, log)``. The
    caller closes each page's context."""
    opened = {}
    for relative in relatives:
        for width, viewport in widths.items():
            page, log = open_page(browser, site + relative, viewport=viewport, mode=mode)
            page.wait_for_function(ready_js, timeout=30_000)
            opened[(relative, width)] = (page, log)
    return opened


# JavaScript run in the page ------------------------------------------------------------------------------------

MARK_VIEWS_JS = """
() => {
  // html-manager renders each widget into a div.widget-subarea inserted just before its view script.
  const out = [];
  for (const script of document.querySelectorAll('script[type="VIEW_MIME"]')) {
    const id = JSON.parse(script.textContent).model_id;
    const el = script.previousElementSibling;
    const rendered = !!(el && el.classList.contains('widget-subarea') && el.children.length > 0);
    if (rendered) { el.setAttribute('data-pnc-view', id); }
    out.push([id, rendered]);
  }
  return out;
}
""".replace("VIEW_MIME", VIEW_MIME)



def wait_for_widgets(page: Any, timeout_ms: int = 60_000) -> int:
    """Wait until every widget view of the page has rendered (:data:`MARK_VIEWS_JS`, which also marks each view's
    element with ``data-pnc-view``) and pnc-site.js has wired the controls; return the number of views (0: the page
    has no widget and nothing is waited for)."""
    views = page.evaluate(f"() => ({MARK_VIEWS_JS})().length")
    if views:
        page.wait_for_function(f"() => ({MARK_VIEWS_JS})().every(([id, rendered]) => rendered)", timeout=timeout_ms)
        page.wait_for_timeout(300)  # pnc-site.js names the controls once they render
    return views


FRAME_HASHES_JS = """
async (root) => {
  const out = [];
  // the frame of the reader's colour mode: the other one's <picture> is not displayed
  for (const img of root.querySelectorAll('img.widget-image, img.pnc-frame-image')) {
    if (!img.checkVisibility()) { continue; }
    const data = await (await fetch(img.currentSrc || img.src)).arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', data);
    out.push(Array.from(new Uint8Array(digest)).map(b => b.toString(16).padStart(2, '0')).join(''));
  }
  return out;
}
"""

MATHJAX_JS = """
async () => {
  if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) { return null; }
  await MathJax.startup.promise;
  return {
    containers: document.querySelectorAll('mjx-container').length,
    errors: document.querySelectorAll('mjx-merror').length,
    source: document.querySelectorAll('.math').length,
    script: Array.from(document.scripts).map(s => s.src).filter(s => s.includes('mathjax')),
  };
}
"""

# Latency probe: time from a keydown to the moment a new frame is in the DOM (MutationObserver) and painted (the
# first task after the next animation frame, i.e. after the frame holding the new image was rendered).
LATENCY_SETUP_JS = """
(root) => {
  const FRAME = 'img.widget-image, img.pnc-frame-image';
  const probe = window.__pncLatency = { t0: 0, dom: 0, paint: 0 };
  document.addEventListener('keydown', () => { probe.t0 = performance.now(); probe.dom = 0; probe.paint = 0; }, true);
  const isFrame = (node) => node.nodeType === 1 &&
      (node.matches(FRAME) || node.querySelector(FRAME));
  new MutationObserver((records) => {
    if (!probe.t0 || probe.dom) { return; }
    for (const r of records) {
      const hit = (r.type === 'childList' && Array.from(r.addedNodes).some(isFrame)) ||
                  (r.type === 'attributes' && r.target.matches(FRAME));
      if (hit) {
        probe.dom = performance.now();
        requestAnimationFrame(() => setTimeout(() => { probe.paint = performance.now(); }, 0));
        return;
      }
    }
  }).observe(root, { subtree: true, childList: true, attributes: true, attributeFilter: ['src'] });
}
"""

# The widgets shim: html-manager typesets labels through MathJax 2's Hub.Queue; the shim must route that to MathJax 3.
SHIM_TYPESET_JS = r"""
async () => {
  if (!window.MathJax || !MathJax.startup) { return 'MathJax missing'; }
  await MathJax.startup.promise;
  if (!MathJax.Hub || typeof MathJax.Hub.Queue !== 'function') { return 'no MathJax.Hub.Queue (widgets shim missing)'; }
  const probe = document.createElement('span');
  probe.textContent = '\\(x^2 + \\xi\\)';
  document.body.appendChild(probe);
  MathJax.Hub.Queue(['Typeset', MathJax.Hub, probe]);
  for (let i = 0; i < 100 && !probe.querySelector('mjx-container'); i++) {
    await new Promise(resolve => setTimeout(resolve, 50));
  }
  const ok = !!probe.querySelector('mjx-container');
  probe.remove();
  return ok ? 'ok' : 'Hub.Queue did not typeset';
}
"""


def colour_mode(page: Any) -> str:
    """The page's colour mode as the theme applies it (``<html data-theme>``)."""
    return page.evaluate("() => document.documentElement.dataset.theme")


def set_colour_mode(page: Any, mode: str) -> None:
    """Click the page's theme button (it cycles light, dark, auto) until the page is in ``mode``: the reader's live
    switch, no reload."""
    button = page.locator(".theme-switch-button >> visible=true").first
    for _ in range(3):
        if colour_mode(page) == mode:
            break
        button.click()
        page.wait_for_timeout(100)
    assert colour_mode(page) == mode, f"the theme button never switched to {mode}"
    # the pointer leaves the button, as a reader's does: its hover tooltip is not part of the page being checked
    page.mouse.move(0, page.viewport_size["height"] - 1 if page.viewport_size else 0)
    page.wait_for_timeout(50)


# The image a figure shows (of its light and dark renderings, the one not hidden), scrolled into view so that a lazy
# image loads, once loaded.
SHOWN_IMAGE_JS = """
async (holder) => {
  const img = Array.from(holder.querySelectorAll('img')).find(i => i.checkVisibility()) || null;
  if (!img) { return null; }
  img.scrollIntoView({block: 'center'});
  if (!img.complete || img.naturalWidth === 0) {
    await new Promise(r => { img.addEventListener('load', r, {once: true}); img.addEventListener('error', r,
                                                                                                {once: true});
                             setTimeout(r, 5000); });
  }
  return img;
}
"""

# Per figure: the smallest text in CSS px as displayed (font size at natural size x displayed / natural width).
FIGURE_TEXT_JS = """
async () => {
  const shown = """ + SHOWN_IMAGE_JS + """;
  const out = [];
  // figures, and the explorer frame each explorer shows (the other frames are hidden pages of its widget stack)
  for (const holder of document.querySelectorAll('.pnc-figure:has(> picture)')) {
    const frame = !!holder.closest('.pnc-frame');
    if (frame && !Array.from(holder.querySelectorAll('img')).some(i => i.checkVisibility())) { continue; }
    const img = await shown(holder);
    // the narrow rendering is the <source> of the image's <picture>; its text has its own size
    const source = img ? img.parentElement.querySelector('source') : null;
    const narrow = !!source && img.currentSrc === new URL(source.getAttribute('srcset'), document.baseURI).href;
    const font = parseFloat(narrow ? holder.dataset.pncNarrowFontPx : holder.dataset.pncFontPx);
    const scale = parseFloat(holder.dataset.pncScale);
    out.push({where: holder.closest('figure, section').id, frame: frame, font: font, narrow: narrow,
              has_narrow: !!source,
              natural: img ? img.naturalWidth : 0,
              shown: img ? img.getBoundingClientRect().width : 0,
              px: img ? font * img.getBoundingClientRect().width / (img.naturalWidth / scale) : 0,
              src: img ? img.currentSrc.split('/').pop() : null});
  }
  return out;
}
"""
