"""Chapter notebooks that run anywhere: the book's MyST notebooks converted for plain Jupyter, JupyterLab and Colab.

A chapter in ``chapters/`` is written for the book build: its markdown uses MyST directives and roles (sphinx-proof
theorems, sphinx-exercise exercises, myst-nb glue, sphinxcontrib-bibtex citations, cross-references) that Jupyter
shows as raw text, it has no outputs, and it imports ``pnc`` without installing it. :func:`export_notebook` turns a
chapter plus its *executed* version (for the glued values) into a notebook that

- starts with an install cell (``%pip install "pnc[book] @ git+<repository>"``, skipped where ``pnc`` imports);
- has every ``{glue:text}`` value formatted as in the book and every ``{glue:figure}`` embedded as an image
  (a ``data:`` URI in an ``<img>`` tag: JupyterLab, Notebook 7, VS Code and Colab show it; Colab ignores cell
  attachments) with its caption;
- writes theorem-like blocks as **Theorem 1 (title).** paragraphs, proofs as **Proof.** ... ∎, exercises and
  solutions with bold headings, admonitions as bold-titled blockquotes, equations with ``\\tag``;
- writes cross-references as links to the published site (or plain text without ``site_url``) and citations as
  author–year text, with a reference list at the end;
- keeps every code cell, without outputs; the one book-only import, ``from myst_nb import glue``, gets a fallback
  for kernels without myst-nb.

Numbers (Definition 7, Fig. 3, Exercise 7) follow the book: one counter per kind across the documents of
``_toc.yml``, in order, as sphinx-proof, sphinx-exercise and Sphinx's ``numfig`` count them when the table of
contents is not numbered. Anything the converter does not know (a directive, a role, a label, a glue name, a
citation key) is a ``ValueError`` naming the document, so nothing reaches a reader raw.

``python -m pnc.book.export OUT`` converts every chapter into ``OUT`` (executing the chapters, or reading a build's
jupyter-cache with ``--cache``).
"""

from __future__ import annotations

import argparse
import base64
import copy
import html
import re
from ast import literal_eval
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml
from nbformat import NotebookNode

__all__ = [
    "Bibliography",
    "BookIndex",
    "MarkdownConverter",
    "book_macros",
    "default_substitutions",
    "Target",
    "convert_markdown",
    "drop_solutions",
    "execute_notebook",
    "executed_from_cache",
    "export_book",
    "export_notebook",
    "format_glue_text",
    "glue_data",
    "install_cell",
    "repository_branch",
    "repository_url",
    "substitute",
]

EDITIONS = ("full", "student", "instructor")
"""The book's editions (book_ext/pnc_editions.py): ``full`` has every solution (folded) and no grading note,
``student`` no solution, ``instructor`` every solution (open) with its grading note."""

INSTALL_TAG = "pnc-install"
"""Metadata tag of the install cell :func:`export_notebook` puts first."""

PROOF_KINDS = (
    "algorithm", "assumption", "axiom", "conjecture", "corollary", "criterion", "definition", "example", "lemma",
    "notation", "observation", "property", "proposition", "remark", "theorem",
)
"""sphinx-proof's numbered directives (``{prf:<kind>}``); ``{prf:proof}`` is the one unnumbered kind."""

ADMONITIONS = {
    "admonition": "", "attention": "Attention", "caution": "Caution", "danger": "Danger", "error": "Error",
    "hint": "Hint", "important": "Important", "note": "Note", "seealso": "See also", "tip": "Tip",
    "warning": "Warning", "margin": "", "sidebar": "", "topic": "", "epigraph": "", "dropdown": "",
}
"""Admonition-like directives and their default titles (``""``: the directive's argument is the title)."""

NUMFIG_FORMAT = {"figure": "Fig. {}", "table": "Table {}", "code-block": "Listing {}", "section": "Section {}"}
"""Sphinx's default ``numfig_format`` (what ``{numref}`` writes)."""

GLUE_FALLBACK = '''try:
    from myst_nb import glue
except ImportError:  # outside the book build: glue(name, value) shows value unless display=False
    from IPython.display import display as _display

    def glue(name, variable, display=True):
        if display:
            _display(variable)'''
"""What ``from myst_nb import glue`` becomes in the exported code cells."""

_IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
_DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[\w:.+-]+)\}\s*(?P<arg>.*?)\s*$")
_OPTION = re.compile(r"^:(?P<key>[\w-]+):(?:\s+(?P<value>.*?))?\s*$")
_LABEL_LINE = re.compile(r"^[ \t]*\((?P<label>[^()\s]+)\)=[ \t]*$")
_HEADING = re.compile(r"^[ \t]{0,3}(?P<hashes>#{1,6})[ \t]+(?P<title>.*?)[ \t#]*$")
_COMMENT_LINE = re.compile(r"^[ \t]*%.*$")
# a role (``{name}`content```, any number of backticks) or an inline code span, whichever starts first
_INLINE = re.compile(r"\{(?P<role>[\w:.+-]+)\}(?P<ticks>`+)(?P<content>.*?)(?P=ticks)"
                     r"|(?P<code>(?P<cticks>`+).*?(?P=cticks))", re.DOTALL)
_DISPLAY_MATH = re.compile(r"\$\$(?P<body>.+?)\$\$(?P<label>[ \t]*\((?P<name>[^()\s]+)\))?", re.DOTALL)
_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.DOTALL)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_$<>\[\]|#])")
_SUBSTITUTION = re.compile(r"\{\{\s*(?P<name>[A-Za-z_]\w*)\s*\}\}")


# ---------------------------------------------------------------------------------------------------------------------
# MyST block structure


@dataclass
class _Directive:
    name: str
    argument: str
    options: dict[str, str]
    body: str
    fence: str


@dataclass
class _Code:
    text: str


@dataclass
class _Text:
    text: str


_Block = _Directive | _Code | _Text


def _parse_blocks(text: str, where: str) -> list[_Block]:
    """Split MyST markdown into plain text, code fences and directives (bodies unparsed, nested fences intact)."""
    lines = text.split("\n")
    blocks: list[_Block] = []
    plain: list[str] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            plain.append(lines[i])
            i += 1
            continue
        fence, info = match.group("fence"), match.group("info").strip()
        directive = _DIRECTIVE_INFO.match(info)
        if fence[0] == ":" and not directive:
            raise ValueError(f"{where}: a colon fence {lines[i].strip()!r} that opens no directive")
        if fence[0] == "`" and "`" in info:  # an inline code span at the start of a line, not a fence
            plain.append(lines[i])
            i += 1
            continue
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = i + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines) and directive:
            raise ValueError(f"{where}: the {{{directive.group('name')}}} block opened by {lines[i].strip()!r} "
                             f"is never closed (a fence of {len(fence)} or more {fence[0]!r})")
        if plain:
            blocks.append(_Text("\n".join(plain)))
            plain = []
        body = lines[i + 1:end]
        indent = len(match.group("indent"))
        if indent:
            body = [line[indent:] if line[:indent].strip() == "" else line.lstrip() for line in body]
        if directive:
            options, content = _split_options(body, where)
            blocks.append(_Directive(directive.group("name"), directive.group("arg"), options, content, fence))
        else:
            blocks.append(_Code("\n".join(lines[i:end + 1])))
        i = end + 1
    if plain:
        blocks.append(_Text("\n".join(plain)))
    return blocks


def _split_options(body: list[str], where: str) -> tuple[dict[str, str], str]:
    """A directive's options (``:key: value`` lines or a ``---`` YAML block) and the rest of its body."""
    options: dict[str, str] = {}
    start = 0
    if body and body[0].strip() == "---":
        try:
            close = next(j for j in range(1, len(body)) if body[j].strip() == "---")
        except StopIteration:
            raise ValueError(f"{where}: a directive's '---' option block is never closed") from None
        loaded = yaml.safe_load("\n".join(body[1:close])) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{where}: a directive's '---' option block is not a mapping")
        options = {str(k): "" if v is None else str(v) for k, v in loaded.items()}
        start = close + 1
    else:
        while start < len(body):
            option = _OPTION.match(body[start].strip()) if body[start].strip().startswith(":") else None
            if not option:
                break
            options[option.group("key")] = option.group("value") or ""
            start += 1
    content = body[start:]
    while content and not content[0].strip():
        content = content[1:]
    while content and not content[-1].strip():
        content = content[:-1]
    return options, "\n".join(content)


_OPAQUE = ("code-block", "code", "sourcecode", "raw", "math", "glue:math", "eval-rst")
"""Directives whose bodies are not MyST."""


def _walk(blocks: list[_Block], where: str) -> Iterator[_Directive | _Text]:
    """Every directive and text block in document (pre-)order, those in directive bodies included."""
    for block in blocks:
        if isinstance(block, _Text):
            yield block
        elif isinstance(block, _Directive):
            yield block
            if block.name not in _OPAQUE:
                yield from _walk(_parse_blocks(block.body, where), where)


def _directive_kind(directive: _Directive) -> str | None:
    """The counter a directive advances (``None``: not numbered), as the book's extensions count."""
    name = directive.name
    if "nonumber" in directive.options:
        return None
    if name.startswith("prf:") and name[4:] in PROOF_KINDS:
        return name[4:]
    if name in ("exercise", "exercise-start"):
        return "exercise"
    if name in ("figure", "glue:figure") and directive.options.get("name"):
        return "figure"
    if name in ("table", "list-table", "csv-table") and directive.options.get("name"):
        return "table"
    if name in ("math", "glue:math") and directive.options.get("label"):
        return "equation"
    return None


# ---------------------------------------------------------------------------------------------------------------------
# The book's labels and numbers


@dataclass(frozen=True)
class Target:
    """Where a label points: a document, an anchor in its page, the kind of thing, its title and number."""

    docname: str
    anchor: str
    kind: str
    title: str = ""
    number: str | None = None


@dataclass
class BookIndex:
    """Every document's title and every label's :class:`Target`, plus each document's counters before it starts."""

    titles: dict[str, str] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    offsets: dict[str, Counter[str]] = field(default_factory=dict)

    @classmethod
    def from_book(cls, root: str | Path) -> BookIndex:
        """Index the documents of ``root/_toc.yml`` (``.ipynb`` markdown cells or ``.md`` files), in order."""
        root = Path(root)
        index = cls()
        counts: Counter[str] = Counter()
        for docname, path in _toc_documents(root):
            index.add_document(docname, _markdown_sources(path), counts)
        return index

    def add_document(self, docname: str, sources: Sequence[str], counts: Counter[str]) -> None:
        """Record one document's title, labels and numbered blocks; ``counts`` (per kind) carries on to the next."""
        self.offsets[docname] = Counter(counts)
        equations = 0
        for text in sources:
            pending: list[str] = []
            for block in _walk(_parse_blocks(text, docname), docname):
                if isinstance(block, _Text):
                    pending = self._add_sections(docname, block.text, pending)
                    for match in _DISPLAY_MATH.finditer(block.text):
                        if match.group("name"):
                            equations += 1
                            self._add(match.group("name"), Target(docname, _html_id(f"equation-{match['name']}"),
                                                                  "equation", "", str(equations)))
                    continue
                for name in pending:  # a label right before a directive names it
                    self._add(name, Target(docname, _html_id(name), block.name, block.argument.strip()))
                pending = []
                kind = _directive_kind(block)
                number = None
                if kind == "equation":
                    equations += 1
                    number = str(equations)
                elif kind:
                    counts[kind] += 1
                    number = str(counts[kind])
                label = block.options.get("label") or block.options.get("name")
                if label and block.name not in ("solution", "solution-start"):
                    title = block.body if block.name in ("figure", "glue:figure") else block.argument
                    anchor = _html_id(f"equation-{label}" if kind == "equation" else label)
                    self._add(label, Target(docname, anchor, kind or block.name, title.strip(), number))

    def _add_sections(self, docname: str, text: str, pending: list[str]) -> list[str]:
        """Labels ``(name)=`` of the headings (or paragraphs) that follow them; the labels still open at the end."""
        for line in text.split("\n"):
            label = _LABEL_LINE.match(line)
            heading = _HEADING.match(line)
            if label:
                pending.append(label.group("label"))
            elif heading:
                title = heading.group("title")
                if docname not in self.titles and len(heading.group("hashes")) == 1:
                    self.titles[docname] = title
                for name in pending:
                    self._add(name, Target(docname, _html_id(name), "section", title))
                pending = []
            elif line.strip() and pending:
                for name in pending:
                    self._add(name, Target(docname, _html_id(name), "paragraph"))
                pending = []
        return pending

    def _add(self, label: str, target: Target) -> None:
        if label in self.targets and self.targets[label] != target:
            raise ValueError(f"label {label!r} is defined twice: in {self.targets[label].docname} and "
                             f"{target.docname}")
        self.targets[label] = target

    def target(self, label: str, where: str) -> Target:
        """The target of ``label``; a ``ValueError`` naming ``where`` if the book has no such label."""
        try:
            return self.targets[label]
        except KeyError:
            raise ValueError(f"{where}: unknown label {label!r} (not in any document of the table of contents)") \
                from None


def _html_id(label: str) -> str:
    """The HTML id docutils makes from a label (lower case, runs of other characters become one '-')."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _toc_documents(root: Path) -> list[tuple[str, Path]]:
    toc_path = root / "_toc.yml"
    if not toc_path.exists():
        raise ValueError(f"{root} has no _toc.yml")
    toc = yaml.safe_load(toc_path.read_text()) or {}
    names: list[str] = [toc["root"]] if toc.get("root") else []

    def visit(entries: Sequence[Mapping[str, Any]]) -> None:
        for entry in entries:
            if "file" in entry:
                names.append(str(entry["file"]))
            visit(entry.get("sections", []))
            visit(entry.get("chapters", []))

    visit(toc.get("parts", []))
    visit(toc.get("chapters", []))
    visit(toc.get("sections", []))
    documents = []
    for name in names:
        name = name.removesuffix(".ipynb").removesuffix(".md")
        path = next((root / f"{name}{ext}" for ext in (".ipynb", ".md") if (root / f"{name}{ext}").exists()), None)
        if path is None:
            raise ValueError(f"_toc.yml lists {name!r}, which is neither {name}.ipynb nor {name}.md")
        documents.append((name, path))
    return documents


def _markdown_sources(path: Path) -> list[str]:
    if path.suffix == ".ipynb":
        notebook = nbformat.read(path, as_version=4)
        return [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
    text = path.read_text()
    if text.startswith("---\n"):  # front matter
        end = text.find("\n---", 4)
        text = text[end + 4:] if end >= 0 else text
    return [text]


# ---------------------------------------------------------------------------------------------------------------------
# Citations


class Bibliography:
    """The entries of a ``.bib`` file, cited author–year (``Wang et al. (2025)``, ``(Wang et al., 2025)``)."""

    def __init__(self, path: str | Path) -> None:
        from pybtex.database import parse_file

        self.path = Path(path)
        if not self.path.exists():
            raise ValueError(f"bibliography {self.path} does not exist")
        self.data = parse_file(str(self.path))

    def _entry(self, key: str, where: str = "") -> Any:
        try:
            return self.data.entries[key]
        except KeyError:
            raise ValueError(f"{where}: citation key {key!r} is not in {self.path.name}") from None

    def authors(self, key: str, where: str = "") -> str:
        """``Smith``, ``Smith and Jones`` or ``Smith et al.`` (LaTeX accents decoded)."""
        from pybtex.richtext import Text

        entry = self._entry(key, where)
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [Text.from_latex(" ".join(p.prelast_names + p.last_names)).render_as("text") for p in people]
        if not names:
            return Text.from_latex(entry.fields.get("title", key)).render_as("text")
        if len(names) == 1:
            return names[0]
        if len(names) == 2:
            return f"{names[0]} and {names[1]}"
        return f"{names[0]} et al."

    def year(self, key: str, where: str = "") -> str:
        """The entry's year (``n.d.`` without one)."""
        return str(self._entry(key, where).fields.get("year", "n.d."))

    def cite(self, role: str, keys: Sequence[str], where: str = "") -> str:
        """The text of a ``{cite:<role>}`` role for ``keys`` (``cite`` and ``cite:p`` are parenthetical)."""
        variant = role.split(":", 1)[1] if ":" in role else "p"
        variant = variant.lstrip("c").rstrip("s") or "p"  # cite:ct / cite:ts / cite:ps: capitalised / all authors
        pairs = [(self.authors(key, where), self.year(key, where)) for key in keys]
        if variant == "t":
            return "; ".join(f"{a} ({y})" for a, y in pairs)
        if variant in ("p", "alp"):
            return "(" + "; ".join(f"{a}, {y}" for a, y in pairs) + ")"
        if variant in ("author", "authors"):
            return "; ".join(a for a, _ in pairs)
        if variant in ("authorpar", "authorspar"):
            return "(" + "; ".join(a for a, _ in pairs) + ")"
        if variant == "year":
            return "; ".join(y for _, y in pairs)
        if variant == "yearpar":
            return "(" + "; ".join(y for _, y in pairs) + ")"
        if variant in ("label", "text"):
            return "; ".join(f"{a} {y}" for a, y in pairs)
        if variant in ("labelpar", "num"):
            return "[" + "; ".join(f"{a} {y}" for a, y in pairs) + "]"
        raise ValueError(f"{where}: unsupported citation role {{{role}}}")

    def references(self, keys: Sequence[str]) -> str:
        """A Markdown list of the full references of ``keys`` (pybtex's ``plain`` style), sorted by author."""
        from pybtex.database import BibliographyData
        from pybtex.plugin import find_plugin

        cleaned = BibliographyData()
        for key in dict.fromkeys(keys):
            entry = copy.deepcopy(self._entry(key))
            for name, value in list(entry.fields.items()):
                entry.fields[name] = re.sub(r"\\url\{([^{}]*)\}", r"\1", value)
            cleaned.add_entry(key, entry)
        style = find_plugin("pybtex.style.formatting", "plain")(abbreviate_names=False)
        formatted = style.format_bibliography(cleaned, list(cleaned.entries))
        return "\n".join("- " + " ".join(entry.text.render_as("markdown").split()) for entry in formatted)


# ---------------------------------------------------------------------------------------------------------------------
# Glue


def glue_data(executed: NotebookNode) -> dict[str, NotebookNode]:
    """Every glued output of an executed notebook, by name (``data`` with myst-nb's mime prefix removed)."""
    found: dict[str, NotebookNode] = {}
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if not scrapbook:
                continue
            prefix = scrapbook.get("mime_prefix", "")
            bundle = copy.deepcopy(output)
            bundle["data"] = {k.removeprefix(prefix): v for k, v in output.get("data", {}).items()}
            found[scrapbook["name"]] = bundle
    return found


def format_glue_text(plain: str, fmt: str) -> str:
    """A glued ``text/plain`` repr formatted as myst-nb's ``{glue:text}`name:fmt``` does (quotes of strings removed)."""
    try:
        value: Any = literal_eval(plain)
    except (SyntaxError, ValueError):
        value = plain
    if fmt == "":
        return str(value)
    kind = fmt[-1]
    try:
        if kind == "s":
            value = str(value)
        elif kind in "bcdoxX":
            value = int(value)
        elif kind in "eEfFgGn%":
            value = float(value)
        return format(value, fmt)
    except (TypeError, ValueError) as error:
        raise ValueError(f"cannot format {plain!r} with {fmt!r}: {error}") from None


def _image_html(bundle: Mapping[str, Any], alt: str) -> str | None:
    data, metadata = bundle.get("data", {}), bundle.get("metadata", {})
    for mime in _IMAGE_MIMES:
        if mime not in data:
            continue
        payload = data[mime]
        if mime == "image/svg+xml":
            payload = base64.b64encode(str(payload).encode()).decode()
        else:
            payload = "".join(str(payload).split())
        size = metadata.get(mime, {}) if isinstance(metadata.get(mime), Mapping) else {}
        attributes = "".join(f' {k}="{int(size[k])}"' for k in ("width", "height") if k in size)
        return f'<img src="data:{mime};base64,{payload}" alt="{html.escape(alt, quote=True)}"{attributes}>'
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Conversion


@dataclass
class MarkdownConverter:
    """Converts one document's markdown cells, in order (numbers and citations carry over from cell to cell).

    ``docname`` is the document's name in the book (``chapters/03_deep_linear_networks``), ``index`` the book's
    labels and numbers, ``glue`` the glued outputs by name (:func:`glue_data`), ``site_url`` the published site
    (cross-references become links there; ``None``: plain text), ``source_dir`` the folder relative figure paths
    start from, ``macros`` the book's MathJax macros (``\\R`` → ``\\mathbb{R}``: Jupyter and Colab do not know them),
    ``substitutions`` the values of MyST substitutions ``{{ name }}`` (in code blocks too, as the book replaces them).
    """

    docname: str
    index: BookIndex = field(default_factory=BookIndex)
    glue: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    bibliography: Bibliography | None = None
    site_url: str | None = None
    source_dir: Path | None = None
    macros: Mapping[str, str] = field(default_factory=dict)
    substitutions: Mapping[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    equations: int = 0
    cited: list[str] = field(default_factory=list)
    exercises: dict[str, str] = field(default_factory=dict)
    edition: str = "full"

    def __post_init__(self) -> None:
        if self.site_url:
            self.site_url = self.site_url.rstrip("/") + "/"

    def convert(self, text: str) -> str:
        """One markdown cell's MyST as plain (Jupyter/CommonMark) Markdown."""
        return convert_markdown(text, self)

    def link(self, text: str, target: Target | None = None, docname: str | None = None) -> str:
        if not self.site_url:
            return text
        page = f"{self.site_url}{target.docname if target else docname}.html"
        anchor = f"#{target.anchor}" if target and target.anchor else ""
        return f"[{text}]({page}{anchor})"

    def glued(self, name: str) -> Mapping[str, Any]:
        if "::" in name:
            raise ValueError(f"{self.docname}: glue from another document ({name!r}) is not supported")
        try:
            return self.glue[name]
        except KeyError:
            raise ValueError(f"{self.docname}: no glued value {name!r} in the executed notebook "
                             "(was it executed, and does a cell glue that name?)") from None


def convert_markdown(text: str, context: MarkdownConverter) -> str:
    """One markdown cell's MyST converted to plain (Jupyter/CommonMark) Markdown by ``context``."""
    parts = []
    for block in _parse_blocks(text, context.docname):
        if isinstance(block, _Code):
            parts.append(substitute(block.text, context.substitutions))
        elif isinstance(block, _Text):
            parts.append(_convert_text(block.text, context))
        else:
            parts.append(_convert_directive(block, context))
    converted = "\n".join(parts)
    return re.sub(r"\n{3,}", "\n\n", converted).strip("\n")


def substitute(text: str, substitutions: Mapping[str, str], where: str | None = None) -> str:
    """``{{ name }}`` replaced by its value; an unknown name is left as it is, or is a ``ValueError`` with ``where``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name in substitutions:
            return str(substitutions[name])
        if where is not None:
            raise ValueError(f"{where}: unknown substitution {{{{ {name} }}}} (known: {', '.join(substitutions)})")
        return match.group(0)

    return _SUBSTITUTION.sub(replace, text)


def _convert_text(text: str, context: MarkdownConverter) -> str:
    text = _substitute_outside_code(text, context)
    lines = [line for line in text.split("\n") if not _LABEL_LINE.match(line) and not _COMMENT_LINE.match(line)]
    text = "\n".join(lines)
    text = _DISPLAY_MATH.sub(lambda m: _display_math(m, context), text)
    return _convert_inline(text, context)


def _substitute_outside_code(text: str, context: MarkdownConverter) -> str:
    parts = []
    position = 0
    for match in _INLINE.finditer(text):
        parts.append(substitute(text[position:match.start()], context.substitutions, context.docname))
        parts.append(substitute(match.group(0), context.substitutions))
        position = match.end()
    parts.append(substitute(text[position:], context.substitutions, context.docname))
    return "".join(parts)


def _display_math(match: re.Match[str], context: MarkdownConverter) -> str:
    if not match.group("name"):
        return match.group(0)
    context.equations += 1
    target = context.index.targets.get(match.group("name"))
    number = target.number if target is not None and target.number else str(context.equations)
    body = match.group("body")
    tail = "\n" if body.endswith("\n") else " "
    return f"$${body.rstrip()} \\tag{{{number}}}{tail}$$"


def _convert_inline(text: str, context: MarkdownConverter) -> str:
    parts = []
    position = 0
    for match in _INLINE.finditer(text):
        parts.append(_expand_macros(text[position:match.start()], context.macros))
        if match.group("code") is not None:
            parts.append(match.group("code"))
        else:
            parts.append(_convert_role(match.group("role"), match.group("content"), context))
        position = match.end()
    parts.append(_expand_macros(text[position:], context.macros))
    return "".join(parts)


def _expand_macros(text: str, macros: Mapping[str, str]) -> str:
    for name, value in macros.items():
        text = re.sub(rf"\\{re.escape(name)}(?![A-Za-z])", value.replace("\\", "\\\\"), text)
    return text


def _escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _explicit(content: str) -> tuple[str | None, str]:
    """``text <target>`` → (text, target); a bare target → (None, target)."""
    match = _EXPLICIT.match(content.strip())
    if match and match.group("text"):
        return " ".join(match.group("text").split()), match.group("target").strip()
    return None, content.strip()


def _convert_role(role: str, content: str, context: MarkdownConverter) -> str:
    where = context.docname
    if role == "glue:text":
        key, _, fmt = content.rpartition(":")
        key, fmt = (key, fmt) if key else (content, "")
        bundle = context.glued(key)
        if "text/plain" not in bundle.get("data", {}):
            raise ValueError(f"{where}: glued value {key!r} has no text/plain to paste")
        try:
            return _escape(format_glue_text(bundle["data"]["text/plain"], fmt))
        except ValueError as error:
            raise ValueError(f"{where}: {{glue:text}}`{content}`: {error}") from None
    if role in ("glue", "glue:", "glue:any"):
        return _render_bundle(context.glued(content), content, context, inline=True)
    if role == "glue:md":
        key = content.rsplit(":", 1)[0] if ":" in content else content
        data = context.glued(key).get("data", {})
        if "text/markdown" not in data:
            raise ValueError(f"{where}: glued value {key!r} has no text/markdown")
        return str(data["text/markdown"]).strip()
    if role == "cite" or role.startswith("cite:"):
        if context.bibliography is None:
            raise ValueError(f"{where}: {{{role}}}`{content}` needs a bibliography (bib_path)")
        keys = [key.strip() for key in content.split(",") if key.strip()]
        context.cited.extend(keys)
        return _escape(context.bibliography.cite(role, keys, where))
    if role in ("ref", "numref", "prf:ref", "eq"):
        text, label = _explicit(content)
        target = context.index.target(label, where)
        return context.link(_reference_text(role, text, target, label, where), target)
    if role == "doc":
        text, name = _explicit(content)
        docname = _resolve_doc(context.docname, name)
        if docname not in context.index.titles and text is None:
            raise ValueError(f"{where}: {{doc}}`{content}` names {docname!r}, which has no title in the book")
        return context.link(text or context.index.titles[docname], docname=docname)
    if role == "math":
        return f"${content}$"
    if role in ("code", "literal", "samp", "file", "command", "program"):
        return f"`{content}`"
    if role in ("sub", "sup", "kbd", "abbr"):
        tag = {"abbr": "abbr"}.get(role, role)
        return f"<{tag}>{html.escape(content)}</{tag}>"
    if role in ("term", "dfn", "emphasis", "strong", "menuselection", "guilabel"):
        text, _ = _explicit(content)
        shown = text or content
        return f"**{shown}**" if role == "strong" else f"*{shown}*" if role in ("emphasis", "dfn") else shown
    raise ValueError(f"{where}: the role {{{role}}} is not supported by the notebook export")


def _reference_text(role: str, text: str | None, target: Target, label: str, where: str) -> str:
    kind_title = target.kind.replace("-", " ").capitalize()
    number = target.number
    if role == "eq":
        if not number:
            raise ValueError(f"{where}: {{eq}}`{label}` is not a numbered equation")
        return f"({number})"
    if role == "numref":
        if not number:
            raise ValueError(f"{where}: {{numref}}`{label}` points to something without a number")
        template = text or NUMFIG_FORMAT.get(target.kind, f"{kind_title} {{}}").replace("{}", "%s")
        return template.replace("%s", number).replace("{number}", number).replace("{name}", target.title)
    if text:
        return text
    if role == "prf:ref":
        return f"{kind_title} {number}" if number else (target.title or kind_title)
    if target.kind == "section":
        return target.title
    if number:
        return f"{NUMFIG_FORMAT.get(target.kind, kind_title + ' {}').format(number)}"
    if target.title:
        return target.title
    raise ValueError(f"{where}: {{ref}}`{label}` needs an explicit text (the target has no title)")


def _resolve_doc(current: str, name: str) -> str:
    name = name.removesuffix(".ipynb").removesuffix(".md")
    if name.startswith("/"):
        return name.lstrip("/")
    parts = current.split("/")[:-1]
    for part in name.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def _render_bundle(bundle: Mapping[str, Any], name: str, context: MarkdownConverter, inline: bool) -> str:
    """A glued output as Markdown, by myst-nb's HTML priority (image, HTML, Markdown, LaTeX, plain text)."""
    data = bundle.get("data", {})
    image = _image_html(bundle, name)
    if "text/html" in data:
        return str(data["text/html"]).strip()
    if image:
        return image
    if "text/markdown" in data:
        return str(data["text/markdown"]).strip()
    if "text/latex" in data:
        latex = str(data["text/latex"]).strip()
        return latex if inline or latex.startswith("$") else f"$$\n{latex}\n$$"
    if "text/plain" in data:
        plain = format_glue_text(str(data["text/plain"]), "")
        return _escape(plain) if inline else "```\n" + plain + "\n```"
    raise ValueError(f"{context.docname}: glued value {name!r} has no output Jupyter can show as Markdown")


def _heading(label: str, title: str, body: str) -> str:
    """``**Label (title).**`` run into the body's first paragraph when that is plain text."""
    head = f"**{label} ({title}).**" if title else f"**{label}.**"
    first = body.lstrip("\n").split("\n", 1)[0]
    if body.strip() and not re.match(r"^\s*([-*+]\s|[>|#<]|\$\$|\d+[.)]\s|`{3}|~{3}|\\\[|\\begin)", first):
        return f"{head} {body.lstrip()}"
    return f"{head}\n\n{body}" if body.strip() else head


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.split("\n"))


def _convert_directive(directive: _Directive, context: MarkdownConverter) -> str:
    name, where = directive.name, context.docname
    kind = _directive_kind(directive)
    number = None
    if kind == "equation":
        context.equations += 1
        number = str(context.equations)
    elif kind:
        context.counts[kind] += 1
        number = str(context.index.offsets.get(where, Counter())[kind] + context.counts[kind])
    label_target = context.index.targets.get(directive.options.get("label") or directive.options.get("name") or "")
    if kind and label_target is not None and label_target.number:
        number = label_target.number  # the book's own number where the index has one (Sphinx's, in the extension)
    title = _convert_inline(directive.argument, context) if directive.argument else ""

    def body() -> str:
        return convert_markdown(directive.body, context)

    if name.startswith("prf:"):
        kind_name = name[4:]
        if kind_name == "proof":
            text = body()
            last = text.rstrip().rsplit("\n", 1)[-1]
            block_end = text.rstrip().endswith(("$$", "```", ">")) or re.match(r"^\s*([-*+>|]|\d+[.)])\s", last)
            return _heading("Proof", title, text) + ("\n\n∎" if block_end else " ∎")
        if kind_name not in PROOF_KINDS:
            raise ValueError(f"{where}: unknown sphinx-proof directive {{{name}}}")
        label = kind_name.capitalize() + (f" {number}" if number else "")
        return _heading(label, title, body())
    if name in ("exercise", "exercise-start"):
        label = "Exercise" + (f" {number}" if number else "")
        if directive.options.get("label"):
            context.exercises[directive.options["label"]] = label
        text = body() if name == "exercise" else ""
        return _heading(label, title, text)
    if name in ("exercise-end", "solution-end"):
        return ""
    if name in ("solution", "solution-start"):
        exercise = directive.argument.strip()
        if not exercise:
            raise ValueError(f"{where}: a {{{name}}} without the label of its exercise")
        label = context.exercises.get(exercise)
        if label is None:
            target = context.index.target(exercise, where)
            label = f"Exercise {target.number}" if target.number else "Exercise"
        target_title = context.index.targets.get(exercise)
        sub = _convert_inline(target_title.title, context) if target_title and target_title.title else ""
        head = f"Solution to {label}" + (f" ({sub})" if sub else "")
        if name == "solution-start":
            return f"**{head}.**"
        if "dropdown" in directive.options.get("class", "").split() and context.edition != "instructor":
            return f"<details>\n<summary><b>{head}</b></summary>\n\n{body()}\n\n</details>"
        return _heading(head, "", body())
    if name == "grading-note":  # book_ext/pnc_editions.py: shown in the instructor edition only
        return _quote(f"**Grading note.** {body().lstrip()}") if context.edition == "instructor" else ""
    if name in ADMONITIONS:
        heading = title or ADMONITIONS[name]
        text = body()
        if name == "dropdown":
            return f"<details>\n<summary><b>{heading or 'Details'}</b></summary>\n\n{text}\n\n</details>"
        return _quote(f"**{heading}**\n\n{text}" if heading else text)
    if name in ("figure", "image"):
        return _figure(directive, context, number)
    if name == "glue:figure":
        return _glue_figure(directive, context, number)
    if name in ("glue", "glue:", "glue:any"):
        return _render_bundle(context.glued(directive.argument.strip()), directive.argument, context, inline=False)
    if name == "glue:md":
        data = context.glued(directive.argument.strip()).get("data", {})
        if "text/markdown" not in data:
            raise ValueError(f"{where}: glued value {directive.argument!r} has no text/markdown")
        return str(data["text/markdown"]).strip()
    if name in ("math", "glue:math"):
        latex = directive.body
        if name == "glue:math":
            data = context.glued(directive.argument.strip()).get("data", {})
            if "text/latex" not in data:
                raise ValueError(f"{where}: glued value {directive.argument!r} has no text/latex")
            latex = str(data["text/latex"]).strip().strip("$")
        tag = f" \\tag{{{number}}}" if number else ""
        return f"$$\n{_expand_macros(latex.strip(), context.macros)}{tag}\n$$"
    if name in ("code-block", "code", "sourcecode"):
        return f"```{directive.argument}\n{directive.body}\n```"
    if name == "raw":
        if directive.argument.strip() not in ("html", "markdown"):
            return ""
        return directive.body
    if name == "table":
        caption = (f"**Table {number}.** " if number else "") + title
        return f"{caption}\n\n{body()}" if caption.strip() else body()
    if name in ("bibliography", "tableofcontents"):
        return ""
    raise ValueError(f"{where}: the directive {{{name}}} is not supported by the notebook export")


def _figure(directive: _Directive, context: MarkdownConverter, number: str | None) -> str:
    source = directive.argument.strip()
    alt = directive.options.get("alt", "")
    attributes = "".join(f' {k}="{html.escape(directive.options[k])}"' for k in ("width", "height")
                         if k in directive.options)
    path = (context.source_dir / source) if context.source_dir and not re.match(r"^[a-z]+:", source) else None
    if path is not None and path.is_file():
        mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                ".svg": "image/svg+xml"}.get(path.suffix.lower())
        if mime is None:
            raise ValueError(f"{context.docname}: figure {source!r} is not a PNG, JPEG, GIF or SVG")
        payload = base64.b64encode(path.read_bytes()).decode()
        image = f'<img src="data:{mime};base64,{payload}" alt="{html.escape(alt, quote=True)}"{attributes}>'
    else:
        image = f'<img src="{html.escape(source, quote=True)}" alt="{html.escape(alt, quote=True)}"{attributes}>'
    return _with_caption(image, directive, context, number)


def _glue_figure(directive: _Directive, context: MarkdownConverter, number: str | None) -> str:
    key = directive.argument.strip()
    bundle = context.glued(key)
    alt = directive.options.get("alt") or _figure_alt(bundle) or (f"Fig. {number}" if number else key)
    image = _image_html(bundle, alt) or _render_bundle(bundle, key, context, inline=False)
    return _with_caption(image, directive, context, number)


def _figure_alt(bundle: Mapping[str, Any]) -> str | None:
    """The alternative text a figure's own HTML gives its image (:func:`pnc.plotting.figure_html`), if any."""
    page = str(bundle.get("data", {}).get("text/html", ""))
    match = re.search(r'<img[^>]*\balt="([^"]*)"', page)
    return html.unescape(match.group(1)) if match else None


def _with_caption(image: str, directive: _Directive, context: MarkdownConverter, number: str | None) -> str:
    caption = convert_markdown(directive.body, context) if directive.body.strip() else ""
    prefix = f"**Fig. {number}.**" if number else ""
    text = f"{prefix} {caption}".strip()
    return f"{image}\n\n{text}" if text else image


# ---------------------------------------------------------------------------------------------------------------------
# Notebooks


def repository_url(root: str | Path) -> str:
    """``repository.url`` of the book's ``_config.yml`` (the install cell installs ``pnc`` from there)."""
    path = Path(root) / "_config.yml"
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    config = yaml.safe_load(path.read_text()) or {}
    url = (config.get("repository") or {}).get("url")
    if not url:
        raise ValueError(f"{path} sets no repository.url")
    return str(url)


def repository_branch(root: str | Path) -> str | None:
    """``repository.branch`` of the book's ``_config.yml`` (``None`` where it sets none)."""
    path = Path(root) / "_config.yml"
    config = yaml.safe_load(path.read_text()) or {} if path.exists() else {}
    branch = (config.get("repository") or {}).get("branch")
    return str(branch) if branch else None


def book_macros(root: str | Path) -> dict[str, str]:
    """The MathJax macros of ``_config.yml`` (``sphinx.config.mathjax3_config.tex.macros``; none without it)."""
    path = Path(root) / "_config.yml"
    if not path.exists():
        return {}
    config = yaml.safe_load(path.read_text()) or {}
    macros = ((((config.get("sphinx") or {}).get("config") or {}).get("mathjax3_config") or {}).get("tex") or {}) \
        .get("macros") or {}
    found = {}
    for name, value in macros.items():
        if isinstance(value, list):
            if len(value) > 1 and value[1]:
                raise ValueError(f"{path}: the macro \\{name} takes arguments, which the notebook export cannot expand")
            value = value[0]
        found[str(name)] = str(value)
    return found


def install_spec(repo_url: str, branch: str | None = None) -> str:
    """The pip requirement of the book's package from its repository: ``pnc[book] @ git+URL[@branch]``."""
    if not re.match(r"^https?://\S+$", repo_url or ""):
        raise ValueError(f"repo_url must be an http(s) URL, got {repo_url!r}")
    return f"pnc[book] @ git+{repo_url.rstrip('/')}" + (f"@{branch}" if branch else "")


def install_cell(repo_url: str, branch: str | None = None) -> NotebookNode:
    """The first cell: install ``pnc[book]`` from the repository, unless ``pnc`` already imports."""
    spec = install_spec(repo_url, branch)
    source = (
        "# Installs the book's package where it is missing (Colab, a fresh Jupyter); does nothing where pnc imports.\n"
        "try:\n"
        "    import pnc  # noqa: F401\n"
        "except ImportError:\n"
        f'    %pip install --quiet "{spec}"\n'
        "    import importlib\n"
        "\n"
        "    importlib.invalidate_caches()\n"
        "    import pnc  # noqa: F401"
    )
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INSTALL_TAG]})
    cell.id = INSTALL_TAG
    return cell


def _solution_fence(lines: list[str], i: int) -> tuple[str | None, int]:
    """The directive a fence at ``lines[i]`` opens (``None`` for a code fence or no fence) and its last line."""
    match = _FENCE.match(lines[i])
    if not match:
        return None, i
    fence, info = match.group("fence"), match.group("info").strip()
    if fence[0] == "`" and "`" in info:  # an inline code span at the start of a line
        return None, i
    closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
    end = i + 1
    while end < len(lines) and not closing.match(lines[end]):
        end += 1
    directive = _DIRECTIVE_INFO.match(info)
    return (directive.group("name") if directive else None), min(end, len(lines) - 1)


def drop_solutions(cells: Sequence[NotebookNode], where: str = "") -> list[NotebookNode]:
    """``cells`` without any solution: a ``{solution}`` block, and everything from a ``{solution-start}`` to its
    ``{solution-end}``, markdown and code cells alike (the student edition). A markdown cell left empty is dropped;
    a ``{solution-start}`` never closed is a ``ValueError``."""
    kept: list[NotebookNode] = []
    inside = False
    for cell in cells:
        if cell.cell_type != "markdown":
            if not inside:
                kept.append(cell)
            continue
        lines, out, i = cell.source.split("\n"), [], 0
        while i < len(lines):
            name, end = _solution_fence(lines, i)
            if name == "solution-start":
                if inside:
                    raise ValueError(f"{where}: a {{solution-start}} inside another solution")
                inside = True
            elif name == "solution-end":
                if not inside:
                    raise ValueError(f"{where}: a {{solution-end}} without its {{solution-start}}")
                inside = False
            elif name != "solution" and not inside:
                out.extend(lines[i:end + 1])
            i = end + 1
        text = "\n".join(out).strip("\n")
        if text.strip():
            exported = copy.deepcopy(cell)
            exported.source = text
            kept.append(exported)
    if inside:
        raise ValueError(f"{where}: a {{solution-start}} is never closed by a {{solution-end}}")
    return kept


def _code_cell(cell: NotebookNode, substitutions: Mapping[str, str]) -> NotebookNode:
    exported = copy.deepcopy(cell)
    exported.outputs = []
    exported.execution_count = None
    source = re.sub(r"^from myst_nb import glue[ \t]*$", GLUE_FALLBACK, cell.source, flags=re.M)
    exported.source = substitute(source, substitutions)
    return exported


def default_substitutions(root: str | Path | None, repo_url: str, branch: str | None = None) -> dict[str, str]:
    """The MyST substitutions of the book: ``repo_url``, ``repo_branch``, ``issues_url`` and ``pnc_version`` (as
    book_ext/pnc_site.py defines them), then ``parse.myst_substitutions`` of ``_config.yml``."""
    from pnc import __version__

    url = repo_url.rstrip("/")
    values = {"repo_url": url, "repo_branch": branch or "main", "issues_url": f"{url}/issues",
              "pnc_version": __version__}
    path = Path(root) / "_config.yml" if root else None
    if path is not None and path.exists():
        config = yaml.safe_load(path.read_text()) or {}
        extra = (config.get("parse") or {}).get("myst_substitutions") or {}
        values.update({str(k): str(v) for k, v in extra.items()})
    return values


def export_notebook(source_path: str | Path, executed_nb: NotebookNode | None = None,
                    bib_path: str | Path | None = None, site_url: str | None = None, repo_url: str = "", *,
                    glue: Mapping[str, Any] | None = None, index: BookIndex | None = None,
                    bibliography: Bibliography | None = None, book_root: str | Path | None = None,
                    branch: str | None = None, macros: Mapping[str, str] | None = None,
                    substitutions: Mapping[str, str] | None = None, edition: str = "full") -> NotebookNode:
    """A chapter notebook for plain Jupyter/Colab: install cell first, MyST converted, glued values pasted.

    ``executed_nb`` (the chapter after execution) supplies the glued values; ``glue`` (name → output, e.g. myst-nb's
    ``<doc>.glue.json``) can be given instead. ``bib_path`` is the book's ``.bib``; ``site_url`` the published site
    (cross-references link there; ``None``: plain text); ``repo_url`` the repository the install cell installs from.
    ``index`` (or ``book_root``, default: the nearest folder above the notebook with a ``_toc.yml``) gives labels
    and numbers; ``macros`` the MathJax macros to expand (default: those of the book's ``_config.yml``);
    ``substitutions`` the values of ``{{ name }}`` (default: :func:`default_substitutions`). ``edition`` is one of
    :data:`EDITIONS`: ``"student"`` leaves every solution out (:func:`drop_solutions`), ``"instructor"`` shows
    solutions open with their grading notes, ``"full"`` folds solutions and leaves grading notes out.
    """
    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {', '.join(EDITIONS)}, not {edition!r}")
    source_path = Path(source_path).resolve()
    if not source_path.exists():
        raise ValueError(f"{source_path} does not exist")
    root = Path(book_root).resolve() if book_root else _find_book_root(source_path)
    if index is None:
        index = BookIndex.from_book(root)
    if bibliography is None and bib_path is not None:
        bibliography = Bibliography(bib_path)
    if glue is None:
        glue = glue_data(executed_nb) if executed_nb is not None else {}
    docname = source_path.relative_to(root).with_suffix("").as_posix()
    if macros is None:
        macros = book_macros(root)
    if substitutions is None:
        substitutions = default_substitutions(root, repo_url, branch)
    context = MarkdownConverter(docname, index, glue, bibliography, site_url, source_dir=source_path.parent,
                                macros=macros, substitutions=substitutions, edition=edition)

    source = nbformat.read(source_path, as_version=4)
    cells = [install_cell(repo_url, branch)]
    chapter = drop_solutions(source.cells, docname) if edition == "student" else source.cells
    for cell in chapter:
        if cell.cell_type == "markdown":
            exported = copy.deepcopy(cell)
            exported.source = context.convert(cell.source)
            if exported.source.strip():
                cells.append(exported)
        elif cell.cell_type == "code":
            cells.append(_code_cell(cell, context.substitutions))
        else:
            cells.append(copy.deepcopy(cell))
    if context.cited and bibliography is not None:
        references = nbformat.v4.new_markdown_cell("## References\n\n" + bibliography.references(context.cited))
        references.id = "pnc-references"
        cells.append(references)
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(source.metadata))
    notebook.metadata["pnc_export"] = {"source": f"{docname}{source_path.suffix}", "edition": edition}
    if context.site_url:
        notebook.metadata["pnc_export"]["page"] = f"{context.site_url}{docname}.html"
    nbformat.validate(notebook)
    return notebook


def _find_book_root(path: Path) -> Path:
    for folder in path.parents:
        if (folder / "_toc.yml").exists():
            return folder
    raise ValueError(f"no _toc.yml above {path}: pass book_root or index")


def execute_notebook(path: str | Path, timeout: int = 600, kernel_name: str = "python3") -> NotebookNode:
    """The notebook at ``path`` executed top to bottom with nbclient, in its own folder."""
    from nbclient import NotebookClient

    path = Path(path).resolve()
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=timeout, kernel_name=kernel_name,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return notebook


def executed_from_cache(cache_path: str | Path, sources: Sequence[str | Path]) -> dict[Path, NotebookNode]:
    """The executed notebooks a jupyter-cache (e.g. ``_build/.jupyter_cache``) holds for ``sources`` (absent if
    stale: only a cache record whose hash matches the source's current code cells counts)."""
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_path))
    found: dict[Path, NotebookNode] = {}
    for source in sources:
        path = Path(source).resolve()
        if not path.exists():
            continue
        try:
            record = cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:  # no record for the current code: the chapter changed since
            continue
        found[path] = cache.get_cache_bundle(record.pk).nb
    return found


def export_book(book_root: str | Path, out_dir: str | Path, *, site_url: str | None, repo_url: str | None = None,
                executed: Mapping[Path, NotebookNode] | None = None,
                glue: Mapping[Path, Mapping[str, Any]] | None = None,
                bib_path: str | Path | None = None, chapters: Sequence[str | Path] | None = None,
                branch: str | None = None, execute_missing: bool = True, timeout: int = 600,
                edition: str = "full") -> list[Path]:
    """Export every chapter (``.ipynb`` documents of ``_toc.yml``, or ``chapters``) into ``out_dir/<name>.ipynb``.

    Glued values come from ``glue`` (path → name → output) or ``executed`` (path → executed notebook); a chapter in
    neither is executed here with nbclient (``execute_missing``) or is a ``ValueError``. ``repo_url`` defaults to
    ``repository.url`` of ``_config.yml`` (``branch`` to its ``repository.branch``), ``bib_path`` to ``references.bib``
    of the book.
    """
    root = Path(book_root).resolve()
    out = Path(out_dir)
    if not repo_url:
        repo_url, branch = repository_url(root), branch or repository_branch(root)
    bib = Path(bib_path) if bib_path else root / "references.bib"
    index = BookIndex.from_book(root)
    bibliography = Bibliography(bib) if bib.exists() else None
    if chapters is None:
        paths = [path.resolve() for _, path in _toc_documents(root) if path.suffix == ".ipynb"]
    else:
        paths = [Path(p).resolve() for p in chapters]
    executed = {Path(k).resolve(): v for k, v in (executed or {}).items()}
    glue = {Path(k).resolve(): v for k, v in (glue or {}).items()}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        values = glue.get(path)
        if values is None:
            notebook = executed.get(path)
            if notebook is None:
                if not execute_missing:
                    raise ValueError(f"no executed notebook or glue data for {path.name}")
                notebook = execute_notebook(path, timeout=timeout)
            values = glue_data(notebook)
        exported = export_notebook(path, site_url=site_url, repo_url=repo_url, glue=values, index=index,
                                   bibliography=bibliography, book_root=root, branch=branch, edition=edition)
        target = out / path.name
        nbformat.write(exported, target)
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m pnc.book.export OUT [--root .] [--cache _build/.jupyter_cache] [--site-url URL]``."""
    parser = argparse.ArgumentParser(prog="python -m pnc.book.export", description=main.__doc__)
    parser.add_argument("out", type=Path, help="folder for the exported notebooks")
    parser.add_argument("--root", type=Path, default=Path("."), help="the book (folder of _toc.yml)")
    parser.add_argument("--cache", type=Path, help="a build's jupyter-cache; chapters not in it are executed")
    parser.add_argument("--site-url", help="the published site (cross-references link there)")
    parser.add_argument("--edition", choices=EDITIONS, default="full",
                        help="student: no solutions; instructor: solutions open, with grading notes")
    args = parser.parse_args(argv)
    chapters = [path for _, path in _toc_documents(args.root.resolve()) if path.suffix == ".ipynb"]
    executed = executed_from_cache(args.cache, chapters) if args.cache else None
    for path in export_book(args.root, args.out, site_url=args.site_url, executed=executed, edition=args.edition):
        print(path)


if __name__ == "__main__":
    main()
