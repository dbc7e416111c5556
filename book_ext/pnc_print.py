"""Sphinx extension: the PDF prints what a reader needs (loaded through ``sphinx.local_extensions``).

Two post-transforms that run for the LaTeX builder only, on the same executed document tree as the site, and the
numbering of exercises and theorems in print (:func:`number_as_on_the_site`):

- **Bookkeeping cells lose their code.** A code cell that only fills the text (``glue(...)`` calls), checks a claim
  (``assert``, ``np.testing.assert_*``) and computes what those need, optionally ending with one expression that
  displays a result (a table), is printed as its output alone, as is a cell tagged ``hide-input``. Its source stays
  on the site (in a fold where tagged) and in the notebooks. In a cell that is printed, the ``glue(...)``
  statements and ``from myst_nb import glue`` are left out of the listing: they only hand numbers to the text.
  :func:`is_bookkeeping` decides; :func:`printed_source` gives the listing.
- **Tables are typeset as tables.** An output whose HTML is one table (``pnc.book.tables.show`` or a pandas
  DataFrame) becomes a LaTeX table (Sphinx's tabulary, wrapping cell text to the line width; a longtable across
  pages beyond 30 rows), set in a smaller type when its columns would not fit the text width (:func:`font_size`),
  instead of the plain-text form whose wide columns pandas cuts to "…".
"""

from __future__ import annotations

import ast
import re
from html.parser import HTMLParser
from typing import Any

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

_LONG_TABLE_ROWS = 30


def _call_name(node: ast.AST) -> str:
    """``glue`` for ``glue(...)``, ``assert_allclose`` for ``np.testing.assert_allclose(...)``, else ""."""
    if isinstance(node, ast.Expr):
        node = node.value
    if not isinstance(node, ast.Call):
        return ""
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _is_glue(stmt: ast.stmt) -> bool:
    return _call_name(stmt) == "glue" or (isinstance(stmt, ast.ImportFrom) and stmt.module == "myst_nb")


def _is_check(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Assert) or (isinstance(stmt, ast.Expr) and _call_name(stmt).startswith("assert"))


def _bookkeeping_statement(stmt: ast.stmt) -> bool:
    if _is_glue(stmt) or _is_check(stmt):
        return True
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return True
    if isinstance(stmt, (ast.For, ast.If)):
        return all(_bookkeeping_statement(s) for s in stmt.body + stmt.orelse)
    return False


def is_bookkeeping(source: str) -> bool:
    """Whether a code cell only glues values and asserts claims (plus the assignments they need, and at most one
    final expression that displays a result): printed without its code."""
    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython magics and the like: print as it is
        return False
    if body and isinstance(body[-1], ast.Expr) and not _is_glue(body[-1]) and not _is_check(body[-1]):
        body = body[:-1]  # the displayed result
    if not body or not all(_bookkeeping_statement(s) for s in body):
        return False
    return any(_is_glue(s) or _is_check(s) for s in ast.walk(ast.Module(body=body, type_ignores=[]))
               if isinstance(s, ast.stmt))


def printed_source(source: str) -> str:
    """The listing the PDF prints for a code cell: its source without ``glue(...)`` statements (and loops or
    branches that only glue) and ``from myst_nb import glue``; functions are printed whole."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return source
    drop: set[int] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for stmt in statements:
            inner = [s for field in ("body", "orelse", "finalbody") for s in getattr(stmt, field, [])
                     if isinstance(s, ast.stmt)] if not isinstance(stmt, (ast.FunctionDef, ast.ClassDef)) else []
            if _is_glue(stmt) or (inner and all(_is_glue(s) for s in inner)):
                drop.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
            else:
                visit(inner)

    visit(body)
    if not drop:
        return source
    lines = [line for n, line in enumerate(source.split("\n"), 1) if n not in drop]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


class _TableParser(HTMLParser):
    """The cells of the HTML tables in a document: ``tables[t][row] = [(is_header, text), ...]``."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[bool, str]]]] = []
        self.images = 0
        self._cell: list[str] | None = None
        self._header = False
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "img":
            self.images += 1
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables and self.tables[-1]:
            self._cell, self._header = [], tag == "th"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip = max(0, self._skip - 1)
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append((self._header, " ".join("".join(self._cell).split())))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None and not self._skip:
            self._cell.append(data)


def html_table(html: str) -> list[list[tuple[bool, str]]] | None:
    """The rows of ``html`` when it is one table and no image, else ``None``."""
    parser = _TableParser()
    parser.feed(html)
    parser.close()
    if len(parser.tables) != 1 or parser.images or not any(parser.tables[0]):
        return None
    return [row for row in parser.tables[0] if row]


_FONT_SIZES = ((90, ""), (112, "\\footnotesize"), (130, "\\scriptsize"), (10**9, "\\tiny"))
"""(widest table in characters at the text size, LaTeX size command) for a table to fit the text width; a column's
width is its longest cell plus three characters of padding, and the text column holds about 90 characters."""


def font_size(rows: list[list[tuple[bool, str]]]) -> str:
    """The LaTeX size command that makes a table of ``rows`` fit the text width ("" when it fits as it is). Header
    cells wrap, so a column is as wide as its longest *body* cell or the longest word of its header."""
    width = max(len(row) for row in rows)
    columns = [0] * width
    for row in rows:
        for j, (header, text) in enumerate(row):
            longest = max((len(word) for word in text.split()), default=0) if header else len(text)
            columns[j] = max(columns[j], longest)
    total = sum(c + 3 for c in columns)
    return next(size for limit, size in _FONT_SIZES if total <= limit)


def table_node(rows: list[list[tuple[bool, str]]]) -> nodes.table:
    """A docutils table of ``rows``: leading rows of header cells only are its head."""
    width = max(len(row) for row in rows)
    head_rows = 0
    while head_rows < len(rows) - 1 and all(header for header, _ in rows[head_rows]):
        head_rows += 1
    table = nodes.table(classes=["pnc-print-table"] + (["longtable"] if len(rows) > _LONG_TABLE_ROWS else []))
    group = nodes.tgroup(cols=width)
    table += group
    for _ in range(width):
        group += nodes.colspec(colwidth=1)
    for part, part_rows in ((nodes.thead(), rows[:head_rows]), (nodes.tbody(), rows[head_rows:])):
        if not part_rows:
            continue
        for row in part_rows:
            row_node = nodes.row()
            for _, text in row + [(False, "")] * (width - len(row)):
                entry = nodes.entry()
                entry += nodes.paragraph(text=text)
                row_node += entry
            part += row_node
        group += part
    return table


class PrintedCells(SphinxPostTransform):
    """Bookkeeping cells without their code, other listings without their glue calls (LaTeX only)."""

    default_priority = 3
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        for cell in list(self.document.findall(nodes.container)):
            if cell.get("nb_element") != "cell_code":
                continue
            source = next((c for c in cell.children if c.get("nb_element") == "cell_code_source"), None)
            if source is None:
                continue
            block = next(iter(source.findall(nodes.literal_block)), None)
            text = block.astext() if block is not None else ""
            tags = (cell.get("cell_metadata") or {}).get("tags", [])
            if "hide-input" in tags or is_bookkeeping(text):
                cell.remove(source)
            elif block is not None:
                printed = printed_source(text)
                if printed != text:
                    block.replace_self(nodes.literal_block(printed, printed, **{
                        k: v for k, v in block.attributes.items() if k in ("language", "classes", "linenos")}))


class PrintedTables(SphinxPostTransform):
    """An output that is one HTML table becomes a typeset table (LaTeX only; before myst-nb picks a mime type)."""

    default_priority = 3
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        for bundle in list(self.document.findall(nodes.container)):
            if bundle.get("nb_element") != "mime_bundle":
                continue
            html = next((c for c in bundle.children if c.get("mime_type") == "text/html"), None)
            if html is None or any(c.get("mime_type", "").startswith("image/") for c in bundle.children):
                continue
            rows = html_table("".join(raw.astext() for raw in html.findall(nodes.raw)))
            if not rows:
                continue
            size = font_size(rows)
            if size:  # a smaller type, in a group of its own, for a table wider than the text
                bundle.replace_self([nodes.raw("", f"\\begingroup{size}", format="latex"), table_node(rows),
                                     nodes.raw("", "\\endgroup", format="latex")])
            else:
                bundle.replace_self(table_node(rows))


SITE_SECNUM_DEPTH = 1
"""Exercises and theorems are numbered per chapter on the site (Sphinx's default ``numfig_secnum_depth``: "4.3")."""


def number_as_on_the_site(app: Any) -> None:
    """In print, number exercises and theorems as the site does: chapter, then count ("Exercise 4.3").

    For a book with parts, sphinx-jupyterbook-latex sets ``numfig_secnum_depth = 2`` when the LaTeX builder starts,
    so sphinx-exercise and sphinx-proof, which print the numbers of ``env.toc_fignumbers``, put the section in them
    ("Exercise 4.11.3", the Exercises section being section 11). Figures, tables and equations are numbered by LaTeX
    itself and are not affected. Connected to ``builder-inited`` after sphinx-jupyterbook-latex (priority 900).
    """
    if getattr(app.builder, "format", "") == "latex":
        app.config.numfig_secnum_depth = SITE_SECNUM_DEPTH


def setup(app: Any) -> dict[str, Any]:
    app.add_post_transform(PrintedCells)
    app.add_post_transform(PrintedTables)
    app.connect("builder-inited", number_as_on_the_site, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
