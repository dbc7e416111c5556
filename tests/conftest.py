"""Shared pytest fixtures and settings.

``built_book`` builds the whole book once per test session (the slowest step in CI) for both tests/test_book.py and
tests/test_browser.py. Set ``PNC_BOOK_HTML`` to an already built ``_build/html`` to reuse it instead (development).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
"""Folder CI keeps (screenshots of the browser tests)."""


def load_dev() -> ModuleType:
    """The project's ``dev.py`` as a module (it is not a package module: it runs before anything is installed)."""
    spec = importlib.util.spec_from_file_location("pnc_dev", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ensure_vendor() -> Path:
    """Make sure ``_vendor/`` (widget embed script, MathJax) exists and matches the lock, as ``dev.py setup`` does."""
    try:
        return load_dev().vendor()
    except SystemExit as error:  # dev.py reports problems with sys.exit(message)
        pytest.fail(f"could not vendor the front-end assets: {error}")


def ensure_vendor_test() -> Path:
    """Make sure ``_vendor_test/`` (axe-core, for the accessibility checks) exists and matches its lock."""
    try:
        return load_dev().vendor(kind="test")
    except SystemExit as error:
        pytest.fail(f"could not vendor the test-only front-end assets: {error}")


def build_book(out: Path) -> Path:
    """Build the book (executing every chapter) under ``out`` with -W -n --keep-going; returns the html folder."""
    ensure_vendor()
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    env = {**os.environ, "PNC_EDITION": "full"}  # the full book, whatever the shell says (book_ext/pnc_editions.py)
    env.pop("PNC_EXECUTION_CACHE", None)
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    html = out / "_build" / "html"
    if result.returncode != 0:
        reports = html / "reports"
        details = "\n".join(p.read_text()[-4000:] for p in reports.glob("**/*.err.log")) if reports.exists() else ""
        pytest.fail(f"book build failed ({result.returncode}):\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
                    f"\n{details}")
    return html


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site (``_build/html``), built once per session from the repository's book."""
    reuse = os.environ.get("PNC_BOOK_HTML")
    if reuse:
        html = Path(reuse)
        if not (html / "index.html").exists():
            pytest.fail(f"PNC_BOOK_HTML={reuse} has no index.html")
        yield html
        return
    out = tmp_path_factory.mktemp("book")
    yield build_book(out)
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="session")
def built_pdf(built_book: Path) -> Path:
    """``book.pdf``, built next to the session's site so the LaTeX build reuses its execution cache (``dev.py pdf``
    then rebuilds the site's pages, whose footers link it). ``PNC_BOOK_PDF`` reuses a built one."""
    reuse = os.environ.get("PNC_BOOK_PDF")
    if reuse:
        return Path(reuse)
    out = built_book.parent.parent  # <out>/_build/html -> <out>
    try:
        return load_dev().pdf(Path(sys.executable), out)
    except SystemExit as error:  # dev.py reports a failed build with sys.exit(message)
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def site(built_book: Path) -> Iterator[str]:
    """The built site served on 127.0.0.1 (base URL with a trailing slash)."""
    from browser_support import serve

    with serve(built_book) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright (the browser tests fail, not skip, when it is missing)."""
    from browser_support import CHROMIUM, launch

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `python3 dev.py test` installs Debian chromium (or set PNC_CHROMIUM)")
    with launch() as browser:
        yield browser
