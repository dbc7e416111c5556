"""Figure captions name panels by the letters the figures show ("(a)", "(b)", ...; :func:`pnc.plotting.panel_letters`),
never by place: on a phone the panels of a figure are stacked (:func:`pnc.plotting.narrowed`), so "Left:" or "the
right panel" would be wrong for that reader (issue #26). Checked in every chapter's text and explorer captions."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "chapters").glob("*.ipynb"))

BY_PLACE = re.compile(
    r"\b(?:left|right|top|bottom|middle)\s*:"  # "Left: ...", "right: ...", "Top: ..."
    r"|\b(?:left|right|top|bottom|middle)(?:-hand)?\s+(?:panel|plot|graph)s?\b"  # "the left panel"
    r"|\((?:left|right|top|bottom|middle)\b[,;)]",  # "(left, log scale)", "(right)"
    re.IGNORECASE)
"""A panel named by its place on a wide screen."""


def _texts(path: Path) -> list[tuple[str, str]]:
    """``(where, text)`` of every markdown cell and every ``caption=`` string of a code cell (explorers, plots)."""
    out = []
    for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            out.append((f"{path.name} cell {i}", source))
        elif cell["cell_type"] == "code":
            try:
                tree = ast.parse(source)
            except SyntaxError:  # IPython magics: read the raw text instead
                out += [(f"{path.name} cell {i} caption", m) for m in re.findall(r"caption=(.*)", source)]
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.keyword) and node.arg == "caption" and isinstance(node.value, ast.Constant):
                    out.append((f"{path.name} cell {i} caption", str(node.value.value)))
    return out


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_caption_names_a_panel_by_its_place(path: Path) -> None:
    found = [(where, m.group(0)) for where, text in _texts(path) for m in BY_PLACE.finditer(text)]
    assert not found, f"name these panels by their letters, (a), (b), ...: {found}"


def test_the_check_finds_what_it_forbids() -> None:
    for text in ("Left: C_l. Right: D_l.", "the left panel shows", "Compression (left, log scale)", "Top: depth L",
                 "Middle: the imbalance", "in the right-hand plot", "(right)"):
        assert BY_PLACE.search(text), text
    for text in ("(a) C_l. (b) D_l.", "the right singular vectors", "left_inverse * W", "the two right-hand sides",
                 "top $h$ layers", "the left and right sides of the equation"):
        assert not BY_PLACE.search(text), text
