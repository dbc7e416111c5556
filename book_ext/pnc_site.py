"""Sphinx extension of the book's site (loaded through ``sphinx.local_extensions`` in _config.yml).

Two repairs of the theme stack pinned in requirements/lock.txt, both checked by tests/test_browser.py:

- **Navigation drawers.** pydata-sphinx-theme 0.17 binds the ☰ and "contents" handlers to the *first*
  ``.primary-toggle`` / ``.secondary-toggle`` in the page, a hidden header copy, so sphinx-book-theme's visible buttons
  do nothing at any width (pydata/pydata-sphinx-theme#2451). ``pnc-site.js`` forwards a click on every other copy to
  the bound one.
- **Figures as files.** A figure's HTML (:func:`pnc.plotting.figure_html`) carries its light and dark, wide and
  narrow renderings inline (the notebook needs no files); the page serves them as ``_images/pnc-<hash>.png`` files
  instead, so a page weighs its text, and a reader's browser fetches only the rendering it shows (the images load
  lazily; the hidden theme's ``<picture>`` is never fetched until the reader switches). The light and dark images
  of every explorer frame (HTML in the page's widget state) move the same way, so a frame is fetched when a control
  shows it.
- **Duplicate scripts.** sphinx-thebe's configuration snippet (``const THEBE_JS_URL = ...``) reaches every page twice
  (its ``env-before-read-docs`` handler adds it with each read), which logs ``Identifier 'THEBE_JS_URL' has already
  been declared``. Script entries with the same file or body and attributes are dropped per page here.

And the site's metadata, checked by tests/test_site_meta.py:

- **One repository URL.** ``repository.url`` in _config.yml (the theme option ``repository_url``) is the only place
  the URL is written. ``{{ repo_url }}``, ``{{ repo_branch }}``, ``{{ issues_url }}`` and ``{{ pnc_version }}`` in a
  page's source, code blocks included (where MyST substitutions do not reach), are replaced by their values when the
  page is read; the same names are MyST substitutions. The live-code (thebe) configuration gets the same repository
  and branch instead of sphinx-thebe's stock example repository.
- **Footer.** ``html.extra_footer`` may contain ``{version}`` (``pnc.__version__``), ``{build_date}`` (UTC date of the
  build, or of ``SOURCE_DATE_EPOCH``), ``{repository_url}``, ``{issue_url}`` (a new issue about this page),
  ``{license_url}`` and ``{cite_url}`` (the licence page and its "How to cite" section, relative to this page), and
  ``{pdf_link}``: a "PDF edition" link to ``pnc-book.pdf`` in the site's root when that file is there at the start
  of the build (``python3 dev.py pdf`` copies it in and rebuilds the pages), else nothing, so no page links a
  missing file. Whether it is there is the config value ``pnc_pdf_in_site`` (set at ``config-inited``; an "html"
  value, so a change rewrites every page).
- **Launch buttons.** Colab and Binder open the converted chapter notebooks (install cell, glued values, plain
  Markdown) that ``python3 dev.py notebooks`` commits to the branch ``pnc_launch_branch`` (default ``notebooks``,
  :mod:`pnc.book.publish`) at the sources' paths, not the output-free sources on ``repository.branch``.
- **Bibliography.** The ``pnc_author_year`` style labels entries "Wang et al., 2025" (as the text cites them),
  sorted by author and year, and every entry of a bibliography ends with links to the pages that cite it.
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from docutils import nodes
from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.transforms.post_transforms import SphinxPostTransform

STATIC = Path(__file__).resolve().parent / "static"
ROOT = Path(__file__).resolve().parent.parent
LICENSE_DOC = "license"
CITE_ANCHOR = "how-to-cite"
PDF_NAME = "pnc-book.pdf"  # the PDF edition in the site's root; dev.py pdf copies it there
BIB_STYLE = "pnc_author_year"
_FOOTER_FIELD = re.compile(r"\{(\w+)\}")


@cache
def package_version() -> str:
    """``pnc.__version__``, read from pnc/__init__.py without importing the package (and torch)."""
    tree = ast.parse((ROOT / "pnc" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise RuntimeError("pnc/__init__.py defines no __version__")


@cache
def build_date() -> str:
    """The build's date (UTC, ISO 8601): ``SOURCE_DATE_EPOCH`` if set (reproducible builds), else today."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc) if epoch else dt.datetime.now(dt.timezone.utc)
    return moment.date().isoformat()


def repository_url(config: Any) -> str:
    """The repository URL of _config.yml (``repository.url``, which Jupyter Book passes as a theme option)."""
    return str((config.html_theme_options or {}).get("repository_url", "")).rstrip("/")


def _substitutions(config: Any) -> dict[str, str]:
    url = repository_url(config)
    branch = str((config.html_theme_options or {}).get("repository_branch") or "main")
    return {"repo_url": url, "repo_branch": branch, "issues_url": f"{url}/issues", "pnc_version": package_version()}


def _configure(app: Any, config: Any) -> None:
    """Point thebe at our repository, define the MyST substitutions and note whether the site has the PDF edition
    (at ``config-inited``)."""
    config.pnc_pdf_in_site = (Path(app.outdir) / PDF_NAME).is_file()
    url = repository_url(config)
    if not url:
        return
    thebe = getattr(config, "thebe_config", None)
    if isinstance(thebe, dict):
        thebe = dict(thebe)
        thebe.setdefault("repository_url", url)
        thebe.setdefault("repository_branch", _substitutions(config)["repo_branch"])
        config.thebe_config = thebe
    if hasattr(config, "myst_substitutions"):
        config.myst_substitutions = {**_substitutions(config), **(config.myst_substitutions or {})}


def _expand_source(app: Any, docname: str, source: list[str]) -> None:
    """Replace ``{{ repo_url }}`` etc. in a page's source, code included (``source-read``)."""
    text = source[0]
    if "{{" not in text:
        return
    for name, value in _substitutions(app.config).items():
        text = re.sub(r"\{\{\s*" + name + r"\s*\}\}", value, text)
    source[0] = text


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


FIGURE_PICTURE = re.compile(r'<picture class="pnc-theme-[a-z]+"[^>]*>.*?</picture>', re.S)
"""A figure's rendering for one theme (pnc.plotting.figure_html) in the page's body."""
_INLINE_PNG = re.compile(r'\b(src|srcset)="data:image/png;base64,([A-Za-z0-9+/=]+)"')
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
FRAME_PICTURE = re.compile(r'<picture class=\\"pnc-theme-[a-z]+\\"[^>]*>.*?</picture>', re.S)
"""The same in an explorer frame: HTML in the widget state, a JSON string (quotes escaped)."""
_FRAME_PNG = re.compile(r'\b(src|srcset)=\\"data:image/png;base64,([A-Za-z0-9+/=]+)\\"')


def figure_file(outdir: Path, data: bytes) -> str:
    """Write ``data`` (a PNG) to ``outdir/_images/pnc-<hash>.png`` (named by its content) and return that path
    relative to ``outdir``."""
    name = f"_images/pnc-{hashlib.sha256(data).hexdigest()[:24]}.png"
    path = Path(outdir) / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")  # parallel writers: each its own file, then a rename
        partial.write_bytes(data)
        partial.replace(path)
    return name


def _figures_as_files(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """Move the inline PNGs of every figure ``<picture>`` in the page's body, and of every explorer frame's in the
    page's widget state, to files (``html-page-context``)."""

    def to_file(match: re.Match, quote: str = '"') -> str:
        name = figure_file(Path(app.outdir), base64.b64decode(match.group(2)))
        return f'{match.group(1)}={quote}{context["pathto"](name, 1)}{quote}'

    body = context.get("body")
    if body and "pnc-theme-" in body:
        context["body"] = FIGURE_PICTURE.sub(lambda block: _INLINE_PNG.sub(to_file, block.group(0)), body)
    scripts = context.get("script_files") or []
    for i, script in enumerate(scripts):
        attributes = getattr(script, "attributes", None) or {}
        state = attributes.get("body")
        if attributes.get("type") != WIDGET_STATE or not state or "pnc-theme-" not in state:
            continue
        state = FRAME_PICTURE.sub(lambda block: _FRAME_PNG.sub(lambda m: to_file(m, '\\"'), block.group(0)), state)
        scripts[i] = type(script)(script.filename, priority=script.priority, **{**attributes, "body": state})


LIVE_MARK = 'class="pnc-live '
"""What the HTML of a continuous explorer (pnc/book/live.py) starts its class attribute with."""


def _live_assets(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """Add uPlot (vendored, ``_vendor/uplot``) and ``pnc-live.js``/``.css`` to the pages that hold a continuous
    explorer, and only to them (``app.add_js_file`` inside ``html-page-context`` is per page)."""
    if LIVE_MARK not in str(context.get("body", "")):
        return
    app.add_css_file("uplot/uPlot.min.css")
    app.add_css_file("pnc-live.css")
    app.add_js_file("uplot/uPlot.iife.min.js", loading_method="defer")
    app.add_js_file("pnc-live.js", loading_method="defer")


def _launch_from_notebooks_branch(app: Any, pagename: str, templatename: str, context: dict[str, Any],
                                  doctree: Any) -> None:
    """Point the Colab and Binder buttons (made by sphinx-book-theme at priority 501) at ``pnc_launch_branch``."""
    target = app.config.pnc_launch_branch
    branch = (app.config.html_theme_options or {}).get("repository_branch") or "main"
    if not target or target == branch:
        return
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            url = button.get("url", "")
            if "colab" in url:
                button["url"] = url.replace(f"/blob/{branch}/", f"/blob/{target}/", 1)
            elif "/v2/" in url:
                button["url"] = url.replace(f"/{branch}?urlpath=", f"/{target}?urlpath=", 1)


def _fill_footer(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """Fill the fields of ``html.extra_footer`` for this page (``html-page-context``)."""
    footer = context.get("theme_extra_footer")
    if not footer or "{" not in footer:
        return
    url = repository_url(app.config)
    license_page = "" if pagename == LICENSE_DOC else context["pathto"](LICENSE_DOC)  # pathto gives "#" on itself
    title = quote(f"Issue on page /{pagename}.html")
    values = {
        "version": package_version(),
        "build_date": build_date(),
        "repository_url": url,
        "issue_url": f"{url}/issues/new?title={title}",
        "license_url": license_page or "#",
        "cite_url": f"{license_page}#{CITE_ANCHOR}",
        "pdf_url": context["pathto"](PDF_NAME, 1),
        # the link only where the site has the PDF (dev.py pdf copies it in, then rebuilds the pages with it)
        "pdf_link": (f'<span><a class="pnc-pdf-link" href="{context["pathto"](PDF_NAME, 1)}">PDF edition</a> ·</span>'
                     if app.config.pnc_pdf_in_site else ""),
    }
    context["theme_extra_footer"] = _FOOTER_FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), footer)


def _last_names(person: Any) -> str:
    return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render_as("text")


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels as the text cites: "Greydanus, 2020", "He and Su, 2023", "Wang et al., 2025" (a, b, ... if equal)."""

    def format_labels(self, sorted_entries: Iterable[Any]) -> Iterator[str]:
        labels = [self.format_label(entry) for entry in sorted_entries]
        counts = Counter(labels)
        seen: Counter[str] = Counter()
        for label in labels:
            if counts[label] > 1:
                seen[label] += 1
                yield f"{label}{chr(ord('a') + seen[label] - 1)}"
            else:
                yield label

    def format_label(self, entry: Any) -> str:
        persons = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [_last_names(p) for p in persons]
        if not names:
            who = Text.from_latex(entry.fields.get("key", entry.key)).render_as("text")
        elif len(names) == 1:
            who = names[0]
        elif len(names) == 2:
            who = f"{names[0]} and {names[1]}"
        else:
            who = f"{names[0]} et al."
        return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(UnsrtStyle):
    """pybtex's unsrt entries (with their doi/eprint/url links), author-year labels, sorted by author and year."""

    default_label_style = BIB_STYLE
    default_sorting_style = "author_year_title"


class CitedIn(SphinxPostTransform):
    """End every bibliography entry with "Cited in:" links to each page citing it (sphinxcontrib-bibtex links back
    only within one page)."""

    default_priority = 6  # after sphinxcontrib-bibtex's BibliographyTransform (5), before references resolve (10)
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        env = self.env
        domain = env.get_domain("cite")
        docname = env.docname
        keys = {c.citation_id: c.key for c in domain.citations if c.bibliography_key.docname == docname}
        if not keys:
            return
        order = _document_order(env)
        for citation in list(self.document.findall(nodes.citation)):
            key = next((keys[i] for i in citation["ids"] if i in keys), None)
            if key is None:
                continue
            first: dict[str, str] = {}
            for ref in domain.citation_refs:
                if key in {t.key for t in ref.targets} and ref.docname != docname:
                    first.setdefault(ref.docname, ref.citation_ref_id)
            if not first:
                continue
            para = nodes.paragraph(classes=["pnc-cited-in"])
            para += nodes.Text("Cited in: ")
            for n, (doc, ref_id) in enumerate(sorted(first.items(), key=lambda item: order.get(item[0], 10**6))):
                if n:
                    para += nodes.Text(", ")
                uri = f"{self.app.builder.get_relative_uri(docname, doc)}#{ref_id}"
                title = env.titles[doc].astext() if doc in env.titles else doc
                para += nodes.reference("", title, refuri=uri, internal=True)
            para += nodes.Text(".")
            citation += para


def _document_order(env: Any) -> dict[str, int]:
    """Position of each document in the table of contents (depth first from the root)."""
    order: dict[str, int] = {}

    def visit(doc: str) -> None:
        if doc in order:
            return
        order[doc] = len(order)
        for child in env.toctree_includes.get(doc, []):
            visit(child)

    visit(env.config.root_doc)
    return order


def setup(app: Any) -> dict[str, Any]:
    register_plugin("pybtex.style.labels", BIB_STYLE, AuthorYearLabelStyle)
    register_plugin("pybtex.style.formatting", BIB_STYLE, AuthorYearStyle)
    app.connect("config-inited", _configure)
    app.connect("builder-inited", lambda app: app.config.html_static_path.append(str(STATIC)))
    app.connect("source-read", _expand_source)
    app.add_js_file("pnc-site.js", loading_method="defer")
    app.add_css_file("pnc-site.css")
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("html-page-context", _fill_footer)
    app.connect("html-page-context", _live_assets, priority=400)
    app.connect("html-page-context", _figures_as_files, priority=600)  # after myst-nb adds the widget state
    app.add_config_value("pnc_launch_branch", "notebooks", "html", [str])
    app.add_config_value("pnc_pdf_in_site", False, "html", [bool])
    app.connect("html-page-context", _launch_from_notebooks_branch, priority=510)
    app.add_post_transform(CitedIn)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
