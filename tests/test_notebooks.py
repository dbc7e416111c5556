"""Notebook hygiene: committed without outputs, and the table of contents matches chapters/."""

from __future__ import annotations

import ast
import json

import pytest
import yaml
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = []
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files.extend(section["file"] for section in chapter.get("sections", []))
    return files


def test_there_are_chapters() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path) -> None:
    notebook = json.loads(path.read_text())
    dirty = [
        index
        for index, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts"


def test_toc_and_chapters_agree() -> None:
    listed = {f for f in _toc_files() if f.startswith("chapters/")}
    present = {f"chapters/{p.stem}" for p in NOTEBOOKS}
    assert listed == present, f"only in _toc.yml: {listed - present}; only in chapters/: {present - listed}"
    for name in _toc_files():
        assert any((ROOT / f"{name}{ext}").exists() for ext in (".ipynb", ".md")), f"_toc.yml lists missing {name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_imports_pnc_and_defines_no_models(path) -> None:
    # Notebooks stay thin: models and metrics live in pnc, not in cells.
    code = "\n".join(
        "".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"
    )
    assert "import pnc" in code or "from pnc" in code
    # IPython magics are not Python; drop them before parsing.
    tree = ast.parse("\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))))
    classes = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    assert not classes, f"{path.name} defines classes {classes}; models and metrics belong in pnc"
    subclassing = [
        node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "Module"
    ]
    assert not subclassing, f"{path.name} refers to nn.Module; define models in pnc"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_boilerplate_is_hidden_the_same_way_in_every_chapter(path) -> None:
    """The first code cell (imports and setup) is folded (``hide-input``) in every chapter; so is any other cell that
    does nothing but import."""
    codes = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert codes, f"{path.name} has no code cell"
    assert "hide-input" in codes[0]["metadata"].get("tags", []), f"{path.name}: the setup cell is not hide-input"
    for index, cell in enumerate(codes[1:], start=1):
        body = [n for n in ast.parse("".join(cell["source"])).body]
        if body and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body):
            tags = cell["metadata"].get("tags", [])
            assert {"hide-input", "remove-input", "remove-cell"} & set(tags), (
                f"{path.name}: code cell {index} only imports but is shown")


def _comment_lines(markdown: str) -> list[str]:
    """Lines MyST reads as comments (``%`` first on the line) outside code fences and ``$$`` blocks."""
    found, fence, math = [], None, False
    for line in markdown.splitlines():
        stripped = line.strip()
        marker = stripped[:3]
        if marker in ("```", "~~~") or stripped.startswith("````"):
            ticks = stripped[: len(stripped) - len(stripped.lstrip(marker[0]))]
            if fence is None:
                fence = ticks
            elif ticks == fence:
                fence = None
            continue
        one_line_display = len(stripped) > 4 and stripped.startswith("$$") and stripped.endswith("$$")
        if fence is None and not one_line_display and (stripped.startswith("$$") or stripped.endswith("$$")):
            math = not math
            continue
        if fence is None and not math and stripped.startswith("%"):
            found.append(line)
    return found


PROSE = NOTEBOOKS + [ROOT / name for name in ("intro.md", "notation.md", "bibliography.md", "license.md")]


@pytest.mark.parametrize("path", PROSE, ids=lambda p: p.name)
def test_no_prose_line_starts_with_a_percent_sign(path) -> None:
    """MyST drops a line that starts with ``%`` (a comment): a wrapped "... 5\\n% of the runs" loses the rest."""
    if path.suffix == ".ipynb":
        texts = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]
    else:
        texts = [path.read_text()]
    dropped = [line for text in texts for line in _comment_lines(text)]
    assert not dropped, f"{path.name}: lines MyST would drop as comments: {dropped}"


def test_the_comment_check_finds_a_wrapped_percent_sign() -> None:
    assert _comment_lines("the law is within 5\n% of the runs") == ["% of the runs"]
    assert _comment_lines("$$\nx % a LaTeX comment\n% another\n$$\n```python\n% not prose\n```") == []
