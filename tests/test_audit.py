"""Checks from the audit of the formal statements (issue 23).

- A proof cites only blocks that come before it in reading order, so no step rests on a fact proved later.
- Every term the notation page defines in words ("nearly orthonormal", ...) is defined no later than the first
  chapter whose prose uses it, or that chapter points forward to the definition.
- No chapter points its reader at files outside the published book (reference notes, the test suite).
- A sentence that relates glued numbers (larger, smaller, within, about, monotone, linear, ...) takes them from a code
  cell that asserts: the gluing cell itself or one of the two code cells before it holds an ``assert``. Which
  relation the assert checks is for the reader of the cell to judge (each assert carries the sentence it checks as a
  comment); a glue cell with no assert at all cannot pass.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import ROOT

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))

UNPUBLISHED = re.compile(r"theory\.md|shared/reference|style\.md|tests/[\w/]*\.py")


def _cells(path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _markdown(path) -> str:
    return "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown")


def _reading_order() -> tuple[dict[str, tuple[int, int]], list[tuple[str, tuple[int, int], list[str]]]]:
    """Position of every label, and every proof with its position and the labels it cites."""
    labels, proofs = {}, []
    for chapter, path in enumerate(CHAPTERS):
        text = _markdown(path)
        for match in re.finditer(r"^:label:\s*(\S+)|^\(([\w-]+)\)=", text, flags=re.M):
            labels[match.group(1) or match.group(2)] = (chapter, match.start())
        for match in re.finditer(r"^```\{prf:proof\}\n(.*?)^```", text, flags=re.M | re.S):
            cited = re.findall(r"\{(?:prf:ref|ref)\}`(?:[^`<]*<)?([\w-]+)>?`", match.group(1))
            proofs.append((path.stem, (chapter, match.start()), cited))
    return labels, proofs


def test_proofs_cite_only_earlier_blocks() -> None:
    labels, proofs = _reading_order()
    assert proofs
    later = [
        (stem, label)
        for stem, position, cited in proofs
        for label in cited
        if label in labels and labels[label] > position and not label.startswith("chap-")
    ]
    assert not later, f"proofs that cite a block placed after them: {later}"


def test_words_on_the_notation_page_are_defined_before_first_use() -> None:
    labels, _ = _reading_order()
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in (ROOT / "notation.md").read_text().splitlines()
        if line.startswith("|")
    ]
    checked = 0
    for symbol, _, where in (r for r in rows if len(r) == 3):
        if "$" in symbol or symbol == "symbol" or not re.fullmatch(r"[a-z][a-z -]+", symbol):
            continue
        label = re.search(r"`([\w-]+)`", where).group(1)
        first_use = next((chapter for chapter, path in enumerate(CHAPTERS) if symbol in _markdown(path).lower()), None)
        if first_use is not None:
            checked += 1
            defined_in = labels[label][0]
            forward = label in _markdown(CHAPTERS[first_use]) or CHAPTERS[defined_in].stem in _markdown(
                CHAPTERS[first_use]
            )
            assert defined_in <= first_use or forward, (
                f"{symbol!r} is used in {CHAPTERS[first_use].stem} before {label}, with no reference to it"
            )
    assert checked >= 3


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_pointer_to_unpublished_files(path) -> None:
    text = "\n".join("".join(c["source"]) for c in _cells(path))
    assert not UNPUBLISHED.findall(text)


def test_notation_page_points_at_no_unpublished_file() -> None:
    assert not UNPUBLISHED.findall((ROOT / "notation.md").read_text())


RELATION = re.compile(
    r"(?i)\b(?:larger|smaller|greater|less|more|fewer|higher|lower|above|below|exceeds?|monoton\w*|increas\w*"
    r"|decreas\w*|rises?|falls?|grows?|shrinks?|linear(?:ly)?|within|about|roughly|approximately|halves|halved"
    r"|doubles?|twice|times|same|equal|matches|agree|close|between|never|every|all|only)\b|[<>≈≤≥]|\\(?:le|ge|approx)\b"
)


def _glue_sources(cells: list[dict]) -> dict[str, set[int]]:
    """Pattern of a glued name (``f"ch_{x}"`` becomes ``ch_\\w+``) -> the code cells that glue it."""
    sources: dict[str, set[int]] = {}
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        names = re.findall(r"glue\(\s*f?[\"']([\w{}:\-]+)[\"']", source) + re.findall(r"[\"']([\w-]+)[\"']\s*:", source)
        for name in names:
            pattern = "^" + re.sub(r"\\\{[^}]*\\\}", r"[\\w-]+", re.escape(name)) + "$"
            sources.setdefault(pattern, set()).add(index)
    return sources


def unasserted_relations(cells: list[dict]) -> list[tuple[int, str]]:
    """``(markdown cell, glued name)`` of each number in a relational sentence with no assert near its glue cell."""
    sources = _glue_sources(cells)
    missing = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        for sentence in re.split(r"(?<=[.;:])\s+(?=[A-Z(*])|\n\s*\n", "".join(cell["source"])):
            names = re.findall(r"\{glue(?::text)?\}`([\w-]+)", sentence)
            if not names or not RELATION.search(re.sub(r"\{glue[^`]*`[^`]*`|\$[^$]*\$", "", sentence)):
                continue
            for name in names:
                gluers = {i for pattern, found in sources.items() if re.match(pattern, name) for i in found}
                near = {j for i in gluers for j in range(max(0, i - 2), i + 1) if cells[j]["cell_type"] == "code"}
                if not any("assert" in "".join(cells[j]["source"]) for j in near):
                    missing.append((index, name))
    return missing


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_relations_between_glued_numbers_are_asserted(path) -> None:
    missing = unasserted_relations(_cells(path))
    assert not missing, f"relational sentences whose numbers no assert checks (markdown cell, glue name): {missing}"


def test_detector_reports_an_unasserted_relation() -> None:
    def cell(kind, text):
        return {"cell_type": kind, "source": [text]}

    glued = cell("code", 'glue("a", 1.0)\nglue(f"b_{k}", 2.0)')
    prose = cell("markdown", "The first is {glue:text}`a:.1f`, larger than {glue:text}`b_3:.1f`. It is {glue:text}`a`.")
    assert unasserted_relations([glued, prose]) == [(1, "a"), (1, "b_3")]
    checked = cell("code", 'assert 1.0 < 2.0\nglue("a", 1.0)\nglue(f"b_{k}", 2.0)')
    assert unasserted_relations([checked, prose]) == []
    far = [cell("code", "assert True"), cell("code", "x = 1"), cell("code", "y = 2"), glued, prose]
    assert unasserted_relations(far) == [(4, "a"), (4, "b_3")]  # an assert three cells up does not count
