"""Checks from the audit of the formal statements (issue 23).

- A proof cites only blocks that come before it in reading order, so no step rests on a fact proved later.
- Every term the notation page defines in words ("nearly orthonormal", ...) is defined no later than the first
  chapter whose prose uses it, or that chapter points forward to the definition.
- No chapter points its reader at files outside the published book (reference notes, the test suite).
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
