"""Build the whole book from scratch, executing every chapter, exactly as `python3 dev.py book` does.

The build runs with -W -n --keep-going, so a failing cell (including a sympy assertion), a broken cross-reference
or a bad citation fails this test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    html = out / "_build" / "html"
    if result.returncode != 0:
        reports = html / "reports"
        details = "\n".join(p.read_text()[-4000:] for p in reports.glob("**/*.err.log")) if reports.exists() else ""
        pytest.fail(f"book build failed ({result.returncode}):\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
                    f"\n{details}")
    yield html
    shutil.rmtree(out, ignore_errors=True)


@pytest.mark.book
def test_book_builds_every_chapter(built_book: Path) -> None:
    assert (built_book / "index.html").exists()
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            page = built_book / f"{chapter['file']}.html"
            assert page.exists(), f"missing page {page}"
    assert not list((built_book / "reports").glob("**/*.log")) if (built_book / "reports").exists() else True


@pytest.mark.book
def test_chapters_executed_and_glued_numbers(built_book: Path) -> None:
    page = (built_book / "chapters" / "04_progressive_compression.html").read_text()
    assert "Traceback" not in page
    # A glued number is rendered from the executed notebook, not typed into the prose.
    assert "0.2846" in page
    assert "<img" in page  # the glued figure
