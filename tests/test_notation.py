"""The notation page lists every symbol the chapters use, each defined once, at a place that defines it.

Every token of the chapters' math (a LaTeX macro such as ``\\kappa``, a decorated symbol such as ``\\mathcal{L}``, or
a single letter) must be in one of three maintained lists:

- ``TRACKED``: symbols with one meaning across the book. Each must be the defined symbol of a row of
  ``notation.md`` (the first symbol of an entry in its first column), and that row's ``where`` must name a block
  that exists and contains the symbol.
- ``LOCAL``: letters that a proof, an exercise or a code walk-through names where it uses them (the notation page
  says so under "Conventions").
- ``STRUCTURE``: operators, decorations and spacing, which are not symbols.

A new symbol in a chapter fails :func:`test_every_math_token_is_classified` until someone decides which list it
belongs to; a tracked symbol whose row is removed from the notation page fails
:func:`test_notation_page_lists_every_tracked_symbol` (and :func:`test_detector_reports_a_removed_row` checks that the
detector notices); two rows defining one symbol fail :func:`test_no_symbol_is_defined_twice`.

The ``where`` column of the notation page is the maintained list of definition sites: a chapter sentence that defines a
tracked symbol ("let $X$ be the ...", "let $X$ denote", "write $X$ for", "$X$ denotes", "denote ... by $X$", "we call
$X$") must sit in a cell that holds one of the blocks the symbol's rows name, so a second definition of a symbol
elsewhere fails :func:`test_defining_sentences_sit_where_the_notation_page_says` (its detector is checked by
:func:`test_detector_reports_a_second_definition`). Inline math never runs across a line break
(:func:`test_no_inline_math_is_split_across_lines`): the token checks above read ``$...$`` one line at a time, and a
formula broken inside a paragraph is easy to misread in the notebook view.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest
from conftest import ROOT

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
NOTATION = ROOT / "notation.md"

TRACKED = frozenset(
    # Greek letters and decorated symbols with one meaning across the book, then Latin letters
    r"""
    \alpha \beta \Gamma \Delta \delta \varepsilon \epsilon \eta \kappa \lambda \mu \xi \rho \sigma \Sigma \tau \Theta
    \vartheta \zeta \omega
    \nabla \ell \mathcal{L} \mathcal{M} \mathbb{E}
    C D E G H J K L M N P R T W X Y Z d m n s z
    """.split()
)

LOCAL = frozenset(
    # named in the proof, exercise or cell that uses them
    r"""
    \Lambda \Phi \Psi \Pi \gamma \nu \theta \pi \phi \psi \chi
    \mathbf{1} \mathbb{1} \mathcal{R} \mathcal{N} \mathcal{O} \mathcal{X} \mathcal{Y}
    A B F O Q S U V a b c e f g h i j k l o p q r t u v w x y
    """.split()
)

STRUCTURE = frozenset(
    # operators, delimiters, spacing and decorations; the reals, trace, expectation and identity of the conventions
    r"""
    \top \frac \tfrac \dfrac \sum \prod \sqrt \log \ln \exp \det \Pr \cos \max \min \arg
    \big \Big \bigg \Bigg \left \right \lVert \rVert \lvert \rvert \langle \rangle
    \le \ge \leq \geq \ne \neq \ll \gg \approx \sim \propto \times \cdot \cdots \dots \ldots
    \in \to \mapsto \leftarrow \perp \star \ast \infty \pm \partial \angle \qquad \quad \begin \end
    \R \mathbb{R} \Tr \E \mathbb \mathcal \mathbf \bar \tilde \hat \dot \texttt \mathtt \operatorname \text \mathrm I
    """.split()
)

_WRAPPERS = re.compile(r"\\(?:text|operatorname|mathrm|texttt|mathtt|begin|end|label)\s*\{[^{}]*\}")
_NAMED = re.compile(r"\\(mathcal|mathbb|mathbf)\s*\{?\s*([A-Za-z0-9])\s*\}?")
_TRANSPARENT = re.compile(r"\\(?:bar|tilde|hat|dot)(?![A-Za-z])")
_TOKEN = re.compile(r"\\(?:mathcal|mathbb|mathbf)\{[A-Za-z0-9]\}|\\[A-Za-z]+|[A-Za-z]")


def math_spans(text: str) -> list[str]:
    """The math of a Markdown text: ``$$...$$`` blocks and ``$...$`` inline spans, outside code and roles."""
    text = re.sub(r"`[^`\n]*`", " ", text)
    blocks = re.findall(r"\$\$(.+?)\$\$", text, flags=re.S)
    text = re.sub(r"\$\$.+?\$\$", " ", text, flags=re.S)
    return blocks + re.findall(r"\$([^$\n]+?)\$", text)


def tokens(math: str) -> list[str]:
    """The symbols of one math span: macros, decorated symbols (``\\mathcal{L}``) and single letters."""
    math = _WRAPPERS.sub(" ", math)
    math = _NAMED.sub(lambda m: f"\\{m.group(1)}{{{m.group(2)}}}", math)
    math = _TRANSPARENT.sub(" ", math)
    found = []
    for match in _TOKEN.finditer(math):
        found.append(match.group(0))
    return [t for t in found if not t.isdigit()]


def _markdown(path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def chapter_tokens() -> dict[str, set[str]]:
    """Every math token of the chapters, with the chapters that use it."""
    used: dict[str, set[str]] = defaultdict(set)
    for path in CHAPTERS:
        for span in math_spans(_markdown(path)):
            for token in tokens(span):
                used[token].add(path.stem)
    return used


def notation_rows(text: str) -> list[tuple[str, str]]:
    """``(symbol cell, where cell)`` of every table row of the notation page."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else []
        if len(cells) == 3 and cells[0] not in ("symbol", "") and not set(cells[0]) <= set("-: "):
            rows.append((cells[0], cells[2]))
    return rows


def _head(item: str) -> str | None:
    """The defined symbol of one entry: its first non-structural token with its sub- and superscripts (a layer
    superscript ``^l`` dropped); ``None`` for an entry that continues a word (``NC1 $=\\dots$``)."""
    if item.lstrip().startswith("="):
        return None
    item = _NAMED.sub(lambda m: f"\\{m.group(1)}{{{m.group(2)}}}", _TRANSPARENT.sub(" ", _WRAPPERS.sub(" ", item)))
    for match in _TOKEN.finditer(item):
        token = match.group(0)
        if token in STRUCTURE:
            continue
        rest, subscript = item[match.end() :], ""
        while rest[:1] in ("_", "^"):
            part = re.match(r"[_^](\{[^{}]*\}|\\[A-Za-z]+|.)", rest)
            if part is None:
                break
            if rest[0] == "_" or part.group(1) not in ("l", "{l}"):
                subscript += part.group(0)
            rest = rest[part.end() :]
        return token + subscript
    return None


def _entries(symbol_cell: str) -> list[str]:
    """The entries of a symbol cell: each math span split at top-level commas, and the words outside math."""
    entries = []
    for span in math_spans(symbol_cell):
        depth, start = 0, 0
        for index, char in enumerate(span + ","):
            depth += {"{": 1, "}": -1}.get(char, 0)
            if char == "," and depth == 0:
                entries.append(span[start:index])
                start = index + 1
    words = re.sub(r"\$[^$]*\$", ",", symbol_cell)
    entries += [f"text:{w.strip()}" for w in words.split(",") if re.search(r"[A-Za-z]", w)]
    return entries


def defined(text: str) -> dict[str, list[int]]:
    """Defined key (symbol with its subscript, or a word) -> the rows that define it."""
    keys: dict[str, list[int]] = defaultdict(list)
    for row, (symbol_cell, _) in enumerate(notation_rows(text)):
        for entry in _entries(symbol_cell):
            key = entry if entry.startswith("text:") else _head(entry)
            if key is not None and row not in keys[key]:
                keys[key].append(row)
    return keys


def listed(text: str) -> set[str]:
    """The symbols the notation page defines (subscripts dropped)."""
    out = set()
    for key in defined(text):
        if not key.startswith("text:"):
            out.add(_TOKEN.match(key).group(0))
    return out


def missing(text: str, used: set[str]) -> set[str]:
    """Tracked symbols that the chapters use and the notation page does not define."""
    return {t for t in used if t in TRACKED} - listed(text)


def duplicates(text: str) -> dict[str, list[int]]:
    return {key: rows for key, rows in defined(text).items() if len(rows) > 1}


def _labelled_blocks() -> dict[str, str]:
    """Label -> the text from its ``:label:`` line to the end of its Markdown cell (the block and what follows it)."""
    blocks = {}
    for path in CHAPTERS:
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            for match in re.finditer(r"^:label:\s*(\S+)", source, flags=re.M):
                blocks[match.group(1)] = source[match.end() :]
            for match in re.finditer(r"^:name:\s*(\S+)", source, flags=re.M):
                blocks[match.group(1)] = source
    return blocks


def test_every_math_token_is_classified() -> None:
    unknown = {t: sorted(c) for t, c in chapter_tokens().items() if t not in TRACKED | LOCAL | STRUCTURE}
    assert not unknown, f"math tokens in no list of tests/test_notation.py (add each to TRACKED or LOCAL): {unknown}"


def test_lists_are_disjoint() -> None:
    assert not (TRACKED & LOCAL) and not (TRACKED & STRUCTURE) and not (LOCAL & STRUCTURE)


def test_notation_page_lists_every_tracked_symbol() -> None:
    used = chapter_tokens()
    absent = missing(NOTATION.read_text(), set(used))
    assert not absent, {t: sorted(used[t]) for t in absent}


def test_no_symbol_is_defined_twice() -> None:
    twice = duplicates(NOTATION.read_text())
    assert not twice, f"defined in more than one row of notation.md: {twice}"


def test_where_names_a_block_that_defines_the_symbol() -> None:
    blocks = _labelled_blocks()
    wrong = []
    for symbol_cell, where in notation_rows(NOTATION.read_text()):
        labels = re.findall(r"\{(?:prf:ref|numref|ref)\}`([^`<>]+)`", where)
        assert labels, f"row {symbol_cell!r} names no place"
        for label in labels:
            if label not in blocks:
                wrong.append((symbol_cell, label, "no such label"))
                continue
            block_tokens = {t for span in math_spans(blocks[label]) for t in tokens(span)}
            heads = {
                _TOKEN.match(h).group(0) if not h.startswith("\\math") else h.split("_")[0]
                for e in _entries(symbol_cell)
                if not e.startswith("text:") and (h := _head(e))
            }
            if heads and not heads & block_tokens:
                wrong.append((symbol_cell, label, "the block does not use the symbol"))
    assert not wrong, wrong


def test_tracked_symbols_are_used() -> None:
    stale = TRACKED - set(chapter_tokens())
    assert not stale, f"TRACKED lists symbols no chapter uses: {sorted(stale)}"


@pytest.mark.parametrize(
    "symbol",
    [r"\kappa", "G", r"\Gamma", "J", r"\tau", r"\Theta", r"\vartheta", r"\zeta", "d", "m", r"\mathcal{L}", r"\sigma"],
)
def test_detector_reports_a_removed_row(symbol) -> None:
    text = NOTATION.read_text()
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("|")
        and any(_head(e) and _head(e).split("_")[0] == symbol for e in _entries(line.strip("|").split("|")[0]))
    ]
    assert rows, f"no row defines {symbol}"
    without = "\n".join(line for line in text.splitlines() if line not in rows)
    assert symbol not in missing(text, {symbol})
    assert symbol in missing(without, {symbol})


def test_detector_reports_a_duplicated_row() -> None:
    text = NOTATION.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| $\\kappa"))
    assert duplicates(text + "\n" + row + "\n")


_MATH = r"\$([^$\n]+)\$"
_DEFINING = (
    re.compile(r"(?i)\blet\s+" + _MATH + r"\s+(?:(?:be|denote)\s+(?:the|a|an|its|their)\b|denote\b)"),
    re.compile(r"(?i)\blet\s+\$([^$\n=]+=[^$\n]+)\$\s+be\b"),
    re.compile(r"(?i)\bwrite\s+" + _MATH + r"\s+for\b"),
    re.compile(r"(?i)" + _MATH + r"\s+(?:denotes|stands for|is defined as|will denote)\b"),
    re.compile(r"(?i)\bdenote\s+[^$.\n]{0,60}\bby\s+" + _MATH),
    re.compile(r"(?i)\bwe call\s+" + _MATH),
)


def defining_symbols(text: str) -> list[str]:
    """Tracked symbols that a sentence of ``text`` defines ("let $X$ be the ...", "write $X$ for ...", ...).

    The defined symbol is the head of the math before its first ``=``; a decorated symbol (``\\bar C``) is another
    symbol and is skipped, and so is an identity ("write $a-b=c$ for ...", with an operator before the ``=``)."""
    found = []
    for pattern in _DEFINING:
        for match in pattern.finditer(text):
            lhs = match.group(1).split("=")[0].strip()
            if re.match(r"\\(?:bar|tilde|hat|dot)\b", lhs) or re.search(r"(?<!\\)[-+]|\\cdot|\\times", lhs):
                continue
            head = _head(lhs)
            if head is None:
                continue
            base = _TOKEN.match(head).group(0)
            if base in TRACKED:
                found.append(base)
    return found


def definition_sites(text: str) -> dict[str, set[str]]:
    """Tracked symbol -> the labels that the ``where`` cells of its notation rows name."""
    rows = notation_rows(text)
    sites: dict[str, set[str]] = defaultdict(set)
    for key, row_numbers in defined(text).items():
        if key.startswith("text:"):
            continue
        base = _TOKEN.match(key).group(0)
        for row in row_numbers:
            sites[base] |= set(re.findall(r"\{(?:prf:ref|numref|ref)\}`([^`<>]+)`", rows[row][1]))
    return sites


def _cell_labels(source: str) -> set[str]:
    """The labels of the blocks and targets of one cell (``:label:``, ``:name:``, ``(target)=``)."""
    return {a or b for a, b in re.findall(r"^:(?:label|name):\s*(\S+)|^\(([\w-]+)\)=", source, flags=re.M)}


def misplaced_definitions(notation: str, cells: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(chapter, symbol)`` of every defining sentence in a cell that holds none of the symbol's definition sites."""
    sites = definition_sites(notation)
    wrong = []
    for stem, source in cells:
        for symbol in defining_symbols(source):
            if not sites.get(symbol, set()) & _cell_labels(source):
                wrong.append((stem, symbol))
    return wrong


def _markdown_cells() -> list[tuple[str, str]]:
    return [
        (path.stem, "".join(c["source"]))
        for path in CHAPTERS
        for c in json.loads(path.read_text())["cells"]
        if c["cell_type"] == "markdown"
    ]


def test_defining_sentences_sit_where_the_notation_page_says() -> None:
    wrong = misplaced_definitions(NOTATION.read_text(), _markdown_cells())
    assert not wrong, (
        "tracked symbols defined in a cell that the notation page does not name as their definition (define each "
        f"symbol once, refer to the definition elsewhere, or add the block to the row's where): {wrong}"
    )


def test_detector_reports_a_second_definition() -> None:
    notation = NOTATION.read_text()
    cell = ("somewhere", ":label: def-elsewhere\n\nLet $\\kappa$ be the number of epochs, and write $T$ for the time.")
    assert misplaced_definitions(notation, [cell]) == [("somewhere", r"\kappa"), ("somewhere", "T")]
    at_home = (
        "04_progressive_compression",
        "```{prf:theorem} x\n:label: thm-ch4-geometric\n\nLet $\\kappa$ be the factor.",
    )
    assert misplaced_definitions(notation, [at_home]) == []
    not_definitions = "Let $G$ be invertible. Write $z_i-\\bar z=a+b$ for the split. Let $\\bar C$ be the mean."
    assert defining_symbols(not_definitions) == []


def inline_math_breaks(text: str) -> list[str]:
    """Inline ``$...$`` spans of a Markdown text that contain a line break (display math, code and roles aside)."""
    text = re.sub(r"^(`{3,}|~{3,})(?!\{(?!code))[^\n]*\n.*?^\1", " ", text, flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"\$\$.+?\$\$", " ", text, flags=re.S).replace(r"\$", "  ")
    dollars = [m.start() for m in re.finditer(r"\$", text)]
    broken = [text[a : b + 1] for a, b in zip(dollars[::2], dollars[1::2], strict=False) if "\n" in text[a:b]]
    if len(dollars) % 2:
        broken.append("unpaired $: " + text[dollars[-1] : dollars[-1] + 60])
    return broken


def test_no_inline_math_is_split_across_lines() -> None:
    broken = [(stem, span[:80]) for stem, source in _markdown_cells() for span in inline_math_breaks(source)]
    broken += [("notation", span[:80]) for span in inline_math_breaks(NOTATION.read_text())]
    assert not broken, f"inline formulas broken across lines (join the line, or use display math): {broken}"


def test_detector_reports_a_split_formula() -> None:
    assert inline_math_breaks("a $x=\n1$ b") == ["$x=\n1$"]
    assert inline_math_breaks("a $x=1$\nb $y$ $$\nz\n$$ `$a` b") == []
    assert inline_math_breaks("```{prf:proof}\nso $a=\nb$.\n```") == ["$a=\nb$"]
    assert inline_math_breaks("```python\nx = '$a\nb$'\n```") == []


def test_tokens() -> None:
    assert tokens(r"\kappa=\varepsilon^2\Big(\frac{\alpha^2}{n}\Big)^{1/L}") == [
        r"\kappa",
        r"\varepsilon",
        r"\Big",
        r"\frac",
        r"\alpha",
        "n",
        r"\Big",
        "L",
    ]
    decorated = r"\mathcal L+\mathbb{E}_w\bar x\operatorname{rank}\text{ if }"
    assert tokens(decorated) == [r"\mathcal{L}", r"\mathbb{E}", "w", "x"]
    assert _head(r"\Sigma_W^l") == r"\Sigma_W" and _head(r"z^l_{k,i}") == "z_{k,i}"
    assert _head(r"\lVert\Gamma_l\rVert_F") == r"\Gamma_l" and _head("X^+") == "X^+" and _head("=K") is None
