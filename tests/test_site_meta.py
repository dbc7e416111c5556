"""The site's metadata: one repository URL, licence, how to cite, footer, issue links and the bibliography.

Source checks (fast, no build):

- Every URL of *our* repository in README.md, intro.md, license.md, CITATION.cff and the chapters (a GitHub URL whose
  owner or name is the configured repository's, or any ``git clone`` / ``git+`` URL) equals ``repository.url`` in
  _config.yml (sub-paths such as ``/issues`` allowed); intro.md writes none and uses ``{{ repo_url }}`` instead.
- CITATION.cff is YAML with the keys CFF 1.2.0 requires and the ones the book promises; its version equals
  ``pnc.__version__`` and pyproject.toml's, its repository URL the configured one, and it references the paper
  (arXiv:2311.02960).
- Every entry of references.bib has a DOI, an arXiv e-print or a URL, well formed.

Built-site checks (``book``; the build is shared with the other book tests, or ``PNC_BOOK_HTML``):

- Every page's footer shows ``pnc <version>`` and a build date (ISO, not in the future), links to the licence page
  and to a new issue at ``<repo>/issues/new``; the header's issue button points there too; no field is left unfilled.
- The licence page exists, is in the navigation of every page, states MIT and CC BY 4.0 (linked) and has the two
  BibTeX entries (the book with the configured URL and version, and the paper).
- Every bibliography entry has an author-year label, a DOI or arXiv link (or a URL where no identifier could be
  verified), and "Cited in" links whose targets exist; every in-text citation shows the label of the entry it links.
- The live-code (thebe) configuration names our repository, not sphinx-thebe's stock example.

Browser checks (``browser``): the footer line is visible and fits the page at 390 px and 1400 px (screenshots in
test-artifacts/).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import yaml
from conftest import ARTIFACTS, ROOT

PAPER_ARXIV = "2311.02960"
GITHUB_URL = re.compile(r"https?://(?:www\.)?github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)((?:/[^\s\"'<>)`\]]*)?)")
GIT_URL = re.compile(r"(?:git\s+clone\s+|git\+)(https?://[^\s\"'<>)`]+)")
DOI = re.compile(r"^10\.\d{4,9}/\S+$")
ARXIV_ID = re.compile(r"^\d{4}\.\d{4,5}(v\d+)?$")
AUTHOR_YEAR = re.compile(r"^\S.*?(?: and \S.*| et al\.)?, \d{4}[a-z]?$")


def _config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _repo_url() -> str:
    url = _config()["repository"]["url"].rstrip("/")
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), f"repository.url is not a GitHub URL: {url}"
    return url


def _version() -> str:
    """The version in pyproject.toml (``[project]``; read with a pattern: tomllib is Python 3.11+)."""
    text = (ROOT / "pyproject.toml").read_text()
    found = re.search(r'^\[project\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
    assert found, "pyproject.toml has no [project] version"
    return found.group(1)


def _sources() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "intro.md", ROOT / "license.md", ROOT / "CITATION.cff"]
    files += sorted((ROOT / "chapters").glob("*.ipynb")) + sorted((ROOT / "chapters").glob("*.md"))
    return [f for f in files if f.exists()]


# ------------------------------------------------------------------------------------------------ source checks


def test_repository_urls_agree_with_config() -> None:
    url = _repo_url()
    owner, name = urlparse(url).path.strip("/").split("/")
    problems: list[str] = []
    for path in _sources():
        text = path.read_text()
        for match in GITHUB_URL.finditer(text):
            found_owner, found_name = match.group(1), match.group(2).rstrip(".").removesuffix(".git")
            ours = found_owner.lower() in {owner.lower(), name.lower()} or found_name.lower() == name.lower()
            if ours and f"https://github.com/{found_owner}/{found_name}" != url:
                problems.append(f"{path.name}: {match.group(0)} is not {url}")
        for match in GIT_URL.finditer(text):
            found = match.group(1).rstrip(".").removesuffix(".git")
            if found.rstrip("/") != url:
                problems.append(f"{path.name}: git URL {found} is not {url}")
    assert not problems, "\n".join(problems)


def test_readme_names_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert _repo_url() in readme
    assert "CITATION.cff" in readme and "CC BY 4.0" in readme and "MIT" in readme


def test_intro_takes_the_url_from_config() -> None:
    intro = (ROOT / "intro.md").read_text()
    assert "github.com" not in intro, "intro.md writes a repository URL; use {{ repo_url }}"
    assert 'git+{{ repo_url }}"' in intro and "git clone {{ repo_url }}" in intro


def test_thebe_has_no_stock_repository_in_config() -> None:
    assert "binder-examples" not in (ROOT / "_config.yml").read_text()


def test_citation_cff() -> None:
    import pnc

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors", "version", "date-released", "repository-code",
                "license", "preferred-citation", "references"):
        assert key in cff, f"CITATION.cff has no {key}"
    assert cff["cff-version"] == "1.2.0"
    assert {"name": "The pnc-book authors"} in cff["authors"]
    assert str(cff["version"]) == pnc.__version__ == _version()
    released = cff["date-released"]
    released = released if isinstance(released, dt.date) else dt.date.fromisoformat(str(released))
    assert released <= dt.date.today()
    assert cff["repository-code"] == _repo_url()
    assert cff["license"] == "MIT"
    preferred = cff["preferred-citation"]
    assert preferred["type"] == "book" and preferred["title"] == cff["title"]
    assert preferred["authors"] == cff["authors"] and str(preferred["version"]) == pnc.__version__
    assert preferred["url"] == _repo_url()
    paper = next(r for r in cff["references"] if "Layerwise Feature Compression" in r["title"])
    assert [a["family-names"] for a in paper["authors"]] == ["Wang", "Li", "Yaras", "Zhu", "Balzano", "Hu", "Qu"]
    assert paper["url"] == f"https://arxiv.org/abs/{PAPER_ARXIV}"
    assert {"type": "other", "value": f"arXiv:{PAPER_ARXIV}"}.items() <= paper["identifiers"][0].items()
    assert paper["journal"] == "Journal of Machine Learning Research" and paper["year"] == 2025


def test_license_page_is_in_the_book() -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert "license" in files
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    page = (ROOT / "license.md").read_text()
    assert "https://creativecommons.org/licenses/by/4.0/" in page and "MIT License" in page


def test_every_bibliography_entry_has_an_identifier() -> None:
    from pybtex.database import parse_file

    problems: list[str] = []
    for key, entry in parse_file(str(ROOT / "references.bib")).entries.items():
        fields = entry.fields
        if "doi" in fields and not DOI.match(fields["doi"]):
            problems.append(f"{key}: malformed DOI {fields['doi']}")
        if "eprint" in fields and (fields.get("archivePrefix") != "arXiv" or not ARXIV_ID.match(fields["eprint"])):
            problems.append(f"{key}: eprint {fields['eprint']} is not an arXiv identifier with archivePrefix arXiv")
        if "url" in fields and not fields["url"].startswith("https://"):
            problems.append(f"{key}: url {fields['url']} is not https")
        if not {"doi", "eprint", "url"} & set(fields):
            problems.append(f"{key}: no doi, eprint or url")
    assert not problems, "\n".join(problems)


# -------------------------------------------------------------------------------------------- built-site checks


def _pages(built_book: Path) -> list[Path]:
    """The content pages of the site (not index.html, Jupyter Book's redirect to the landing page)."""
    from browser_support import site_pages

    return [p for p in site_pages(built_book) if 'http-equiv="Refresh"' not in p.read_text(errors="replace")[:2000]]


def _target_exists(built_book: Path, page: Path, href: str) -> bool:
    """Whether a relative link from ``page`` points at an existing file (and anchor, when it has one)."""
    path, fragment = urldefrag(urljoin(page.relative_to(built_book).as_posix(), href))
    target = built_book / path
    if not target.is_file():
        return False
    return not fragment or re.search(rf'id="{re.escape(fragment)}"', target.read_text(errors="replace")) is not None


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


@pytest.mark.book
def test_footer_shows_version_date_licence_and_issue_link(built_book: Path) -> None:
    url, version = _repo_url(), _version()
    problems: list[str] = []
    pages = _pages(built_book)
    assert len(pages) >= 12
    for page in pages:
        where = page.relative_to(built_book).as_posix()
        text = page.read_text(errors="replace")
        footer = re.search(r'<div class="extra_footer">(.*?)</div>', text, re.S)
        if not footer:
            problems.append(f"{where}: no extra footer")
            continue
        body = footer.group(1)
        if f"pnc {version}" not in _text(body):
            problems.append(f"{where}: footer does not show pnc {version}")
        date = re.search(r'<time datetime="(\d{4}-\d{2}-\d{2})">\1</time>', body)
        if not date or dt.date.fromisoformat(date.group(1)) > dt.date.today() + dt.timedelta(days=1):
            problems.append(f"{where}: footer shows no build date")
        if re.search(r"\{\w+\}", body):
            problems.append(f"{where}: unfilled footer field in {body!r}")
        issue = re.search(r'class="pnc-issue-link" href="([^"]+)"', body)
        if not issue or not html.unescape(issue.group(1)).startswith(f"{url}/issues/new?"):
            problems.append(f"{where}: footer issue link missing or not at {url}/issues/new")
        licence = re.search(r'class="pnc-license-link" href="([^"]+)"', body)
        if not licence or not _target_exists(built_book, page, licence.group(1)):
            problems.append(f"{where}: footer licence link missing or broken")
        cite = re.search(r'class="pnc-cite-link" href="([^"]+)"', body)
        if not cite or not _target_exists(built_book, page, html.unescape(cite.group(1))):
            problems.append(f"{where}: footer 'How to cite' link missing or broken")
        button = re.search(r'<a href="([^"]+)"[^>]*\n?\s*class="[^"]*btn-source-issues-button', text)
        if not button or not html.unescape(button.group(1)).startswith(f"{url}/issues/new?"):
            problems.append(f"{where}: no 'open issue' button pointing at {url}/issues/new")
    assert not problems, "\n".join(problems)


@pytest.mark.book
def test_license_page_is_built_linked_and_has_citations(built_book: Path) -> None:
    url, version = _repo_url(), _version()
    page = built_book / "license.html"
    assert page.is_file()
    text = page.read_text()
    assert 'href="https://creativecommons.org/licenses/by/4.0/"' in text and "CC BY 4.0" in text
    assert "MIT License" in text
    assert f'href="{url}/blob/{_config()["repository"].get("branch", "main")}/LICENSE"' in text
    assert 'id="how-to-cite"' in text
    code = _text(" ".join(re.findall(r'<div class="highlight-bibtex[^"]*">(.*?)</div>\s*</div>', text, re.S)))
    assert "@misc{pncbook," in code and f"url          = {{{url}}}" in code and f"Version {version}" in code
    assert "@article{wang2025understanding," in code and f"eprint        = {{{PAPER_ARXIV}}}" in code
    assert "{{" not in re.sub(r"\{\{The pnc-book authors\}\}", "", code), "unexpanded substitution"
    unlinked = [other.relative_to(built_book).as_posix() for other in _pages(built_book) if other != page
                and not re.search(r'<a class="reference internal" href="(?:\.\./)*license\.html">',
                                  other.read_text(errors="replace"))]
    assert not unlinked, f"pages whose navigation does not link the licence page: {unlinked}"


@pytest.mark.book
def test_no_page_shows_an_unexpanded_substitution(built_book: Path) -> None:
    for page in _pages(built_book):
        text = page.read_text(errors="replace")
        for name in ("repo_url", "repo_branch", "issues_url", "pnc_version"):
            assert not re.search(r"\{\{\s*" + name, text), f"{page.name}: unexpanded {{{{ {name} }}}}"
    intro = (built_book / "intro.html").read_text()
    assert f"git+{_repo_url()}&quot;" in intro or f'git+{_repo_url()}"' in intro
    assert f"git clone {_repo_url()}" in _text(intro)


@pytest.mark.book
def test_bibliography_labels_links_and_back_references(built_book: Path) -> None:
    page = built_book / "bibliography.html"
    text = page.read_text()
    entries = re.findall(r'<div class="citation" id="([^"]+)" role="doc-biblioentry">(.*?)\n</div>', text, re.S)
    keys = re.findall(r"^@\w+\{([^,]+),", (ROOT / "references.bib").read_text(), re.M)
    assert len(keys) >= 35, f"only {len(keys)} works in references.bib"
    # the page lists cited entries only: as many entries as works means every work is cited in the text
    assert len(entries) == len(keys), f"{len(keys) - len(entries)} works of references.bib are cited nowhere"
    labels: dict[str, str] = {}
    problems: list[str] = []
    for ident, body in entries:
        found = re.search(r'<span class="label">(.*?)</span>\s*<p>', body, re.S)
        label = _text(found.group(1)).strip("[]") if found else ""
        labels[ident] = label
        if not AUTHOR_YEAR.match(label):
            problems.append(f"{ident}: label {label!r} is not author-year")
        links = re.findall(r'href="(https://[^"]+)"', body)
        if not any(link.startswith(("https://doi.org/10.", "https://arxiv.org/abs/")) for link in links):
            # only the two entries without a verified DOI/arXiv identifier may fall back to a plain URL
            if not any(link.startswith(("https://ieeexplore.ieee.org/", "https://github.com/")) for link in links):
                problems.append(f"{label}: no DOI or arXiv link")
        cited = re.search(r'<p class="pnc-cited-in">(.*?)</p>', body, re.S)
        if not cited:
            problems.append(f"{label}: no 'Cited in' links")
            continue
        for href in re.findall(r'href="([^"]+)"', cited.group(1)):
            if not _target_exists(built_book, page, html.unescape(href)):
                problems.append(f"{label}: 'Cited in' link {href} is broken")
    assert len(set(labels.values())) == len(labels), "bibliography labels are not unique"
    # Every in-text citation shows the label of the entry it links to: "[Wang et al., 2025]" (parenthetical) or
    # "Wang et al. [2025]" (textual).
    cited = 0
    for chapter in _pages(built_book):
        for span in re.findall(r'<span class="bibtex-citation"[^>]*>(.*?)</span>', chapter.read_text(errors="replace"),
                               re.S):
            shown = " ".join(_text(span).split())
            for ident in re.findall(r'href="(?:\.\./)*bibliography\.html#([^"]+)"', span):
                cited += 1
                who, year = labels.get(ident, "?, ?").rsplit(", ", 1)
                if labels.get(ident) not in shown and not (who in shown and f"[{year}" in shown):
                    problems.append(f"{chapter.name}: cites {shown!r}, bibliography says {labels.get(ident)!r}")
    assert cited >= 20, f"only {cited} in-text citations found"
    assert not problems, "\n".join(problems)


@pytest.mark.book
def test_live_code_configuration_names_our_repository(built_book: Path) -> None:
    owner_repo = urlparse(_repo_url()).path.strip("/")
    configs = 0
    for page in _pages(built_book):
        text = page.read_text(errors="replace")
        assert "binder-examples" not in text, f"{page.name}: thebe still points at the stock example repository"
        for block in re.findall(r'<script type="text/x-thebe-config">(.*?)</script>', text, re.S):
            configs += 1
            assert f'repo: "{owner_repo}"' in block, f"{page.name}: thebe repository is not {owner_repo}"
            assert f'ref: "{_config()["repository"].get("branch", "main")}"' in block
    assert configs > 0, "no page carries a thebe configuration"


# ------------------------------------------------------------------------------------------------ browser checks

PHONE = (390, 844)
DESKTOP = (1400, 1000)

FOOTER_JS = """
() => {
  const footer = document.querySelector('.extra_footer .pnc-footer');
  if (!footer) { return null; }
  footer.scrollIntoView();
  const box = footer.getBoundingClientRect();
  const style = getComputedStyle(footer);
  const issue = footer.querySelector('a.pnc-issue-link').getBoundingClientRect();
  return {left: box.left, right: box.right, width: box.width, height: box.height, visible: style.display !== 'none'
          && style.visibility !== 'hidden', text: footer.innerText, issueWidth: issue.width,
          pageWidth: document.documentElement.scrollWidth, viewport: window.innerWidth};
}
"""


@pytest.mark.browser
@pytest.mark.book
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1400px"])
def test_footer_is_visible_and_fits(built_book: Path, site: str, chromium: Any, viewport: tuple[int, int]) -> None:
    from browser_support import open_page

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, log = open_page(chromium, site + "chapters/04_progressive_compression.html", viewport=viewport)
    try:
        page.wait_for_load_state("load")  # not network idle, which a page of lazy images can miss
        info = page.evaluate(FOOTER_JS)
        assert info is not None, "no footer line on the page"
        page.wait_for_timeout(200)
        page.screenshot(path=str(ARTIFACTS / f"footer-{viewport[0]}px.png"))
        assert info["visible"] and info["height"] > 0 and info["issueWidth"] > 0
        assert f"pnc {_version()}" in info["text"] and "Open an issue" in info["text"]
        assert 0 <= info["left"] and info["right"] <= viewport[0] + 0.5, f"footer overflows: {info}"
        assert info["pageWidth"] <= info["viewport"], f"the page scrolls sideways at {viewport[0]} px: {info}"
        assert not log.problems(), log.problems()
    finally:
        page.context.close()


@pytest.mark.book
def test_every_chapter_links_to_the_notation_page(built_book: Path) -> None:
    notation = built_book / "notation.html"
    assert notation.is_file()
    rows = re.findall(r"<tr[ >]", notation.read_text())
    assert len(rows) >= 25, f"only {len(rows)} rows in the notation tables"
    missing = []
    for page in sorted((built_book / "chapters").glob("*.html")):
        hrefs = re.findall(r'href="([^"]+)"', page.read_text(errors="replace"))
        if not any(urldefrag(h)[0].endswith("notation.html") and _target_exists(built_book, page, h) for h in hrefs
                   if "#" in h or h.endswith("notation.html")):
            missing.append(page.name)
    assert not missing, f"chapters without a link to the notation page: {missing}"
