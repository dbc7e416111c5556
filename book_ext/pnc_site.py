"""Sphinx extension of the book's site (loaded through ``sphinx.local_extensions`` in _config.yml).

Two repairs of the theme stack pinned in requirements/lock.txt, both checked by tests/test_browser.py:

- **Navigation drawers.** pydata-sphinx-theme 0.17 binds the ☰ and "contents" handlers to the *first*
  ``.primary-toggle`` / ``.secondary-toggle`` in the page, a hidden header copy, so sphinx-book-theme's visible buttons
  do nothing at any width (pydata/pydata-sphinx-theme#2451). ``pnc-site.js`` forwards a click on every other copy to
  the bound one.
- **Duplicate scripts.** sphinx-thebe's configuration snippet (``const THEBE_JS_URL = ...``) reaches every page twice
  (its ``env-before-read-docs`` handler adds it with each read), which logs ``Identifier 'THEBE_JS_URL' has already
  been declared``. Script entries with the same file or body and attributes are dropped per page here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent / "static"


def _dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        # the same file or inline body (filename None or ""), whatever priority it was added with
        key = (str(getattr(script, "filename", script) or ""), repr(sorted(getattr(script, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    context["script_files"] = unique


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", lambda app: app.config.html_static_path.append(str(STATIC)))
    app.add_js_file("pnc-site.js", loading_method="defer")
    app.add_css_file("pnc-site.css")
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
