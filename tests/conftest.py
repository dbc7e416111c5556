"""Shared pytest fixtures and settings.

``built_book`` builds the whole book once per test session (the slowest step in CI) for both tests/test_book.py and
tests/test_browser.py. Set ``PNC_BOOK_HTML`` to an already built ``_build/html`` to reuse it instead (development).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
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


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder every pytest-xdist worker of this run sees (without xdist: the session's own)."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]) -> Path:
    """``build(folder)`` once for the whole test run, however many pytest-xdist workers ask for it: the first to ask
    builds under a file lock in the run's shared temporary folder; the others wait for it and get its result, or
    fail with its error. Without xdist it is a plain once-per-session build."""
    from filelock import FileLock

    root = shared_root(tmp_path_factory)
    folder, record = root / f"shared-{name}", root / f"shared-{name}.json"
    with FileLock(str(root / f"shared-{name}.lock")):
        if record.exists():
            done = json.loads(record.read_text())
            if done["error"]:
                pytest.fail(f"{name} (built by another worker) failed:\n{done['error']}")
            return Path(done["path"])
        folder.mkdir(exist_ok=True)
        try:
            path = build(folder)
        except (Exception, SystemExit, pytest.fail.Exception) as error:
            record.write_text(json.dumps({"path": None, "error": str(error)[-20000:] or repr(error)}))
            if isinstance(error, SystemExit):  # dev.py reports a failed build with sys.exit(message)
                pytest.fail(str(error))
            raise
        record.write_text(json.dumps({"path": str(path), "error": None}))
        return path


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site (``_build/html``), built once per test run from the repository's book."""
    reuse = os.environ.get("PNC_BOOK_HTML")
    if reuse:
        html = Path(reuse)
        if not (html / "index.html").exists():
            pytest.fail(f"PNC_BOOK_HTML={reuse} has no index.html")
        return html
    return build_once(tmp_path_factory, "book", build_book)


@pytest.fixture(scope="session")
def built_pdf(built_book: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``book.pdf``, built from the session's execution cache in a copy of the session's build, whose site
    ``dev.py pdf`` then rebuilds so that its footers link the PDF (``pdf_site``); the session's own site is never
    rewritten while other workers read it. ``PNC_BOOK_PDF`` reuses a built one (its site is the folder beside it)."""
    reuse = os.environ.get("PNC_BOOK_PDF")
    if reuse:
        return Path(reuse)

    def build(folder: Path) -> Path:
        shutil.copytree(built_book.parent, folder / "_build", symlinks=True)  # <out>/_build: site, doctrees, cache
        return load_dev().pdf(Path(sys.executable), folder)

    return build_once(tmp_path_factory, "pdf", build)


@pytest.fixture(scope="session")
def pdf_site(built_pdf: Path) -> Path:
    """The site built with the PDF (its footers link ``pnc-book.pdf``): ``<out>/_build/html`` beside
    ``<out>/_build/latex/book.pdf``."""
    return built_pdf.parent.parent / "html"


BUILD_FIXTURES = {"built_book", "built_pdf", "pdf_site", "student_site", "student_pdf", "instructor_pdf",
                  "cached_executions"}
"""Session builds of the site and its PDFs (each built once for all workers; see ``build_once``), and the fixtures
that ask for one at run time (``request.getfixturevalue``), which pytest cannot see in a test's fixture names."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the book's build first, then the tests that need a build, then the rest. With ``--dist worksteal``
    (``dev.py test``) the first worker starts the build at once; the other runs the tests queued last (the ones
    that need no build) and steals more of them while the build runs."""
    def needs_build(item: pytest.Item) -> bool:
        return bool(BUILD_FIXTURES & set(getattr(item, "fixturenames", ())))

    def rank(item: pytest.Item) -> int:
        if item.name == "test_book_builds_every_chapter":
            return 0
        if not needs_build(item):
            return 3
        # the PDFs and the student site last among the build tests: an idle worker steals them from the end of
        # the queue and builds them while the first worker drives the browser
        return 2 if (BUILD_FIXTURES - {"built_book"}) & set(item.fixturenames) else 1

    items.sort(key=rank)  # stable: the files' order within each rank


@pytest.fixture(scope="module")
def site(built_book: Path) -> Iterator[str]:
    """The built site served on 127.0.0.1 (base URL with a trailing slash)."""
    from browser_support import serve

    with serve(built_book) as url:
        yield url


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's Chromium through Playwright (the browser tests fail, not skip, when it is missing). One browser at a
    time across the xdist workers (a file lock held for the module): two browsers loading the book's heaviest pages
    on 2 cores have been seen to take more than a minute and a half to fall network-idle."""
    from browser_support import CHROMIUM, launch
    from filelock import FileLock

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `python3 dev.py test` installs Debian chromium (or set PNC_CHROMIUM)")
    with FileLock(str(shared_root(tmp_path_factory) / "browser.lock")), launch() as browser:
        yield browser
