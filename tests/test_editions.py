"""The three editions (book_ext/pnc_editions.py, ``python3 dev.py book --edition``): the student edition's site and
notebooks hold every exercise and no solution; the instructor edition's notebooks hold every solution with its
grading note; bad ``--edition`` values are refused with a message naming the option.

The student site is built once per session next to the session's full build (``built_book``), from its execution
cache, so nothing is executed twice; ``PNC_STUDENT_HTML`` reuses a built student site
(``_build/student/_build/html`` after ``python3 dev.py book --edition student``).
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, build_once, ensure_vendor, load_dev

from pnc.book import export

sys.path.insert(0, str(ROOT / "book_ext"))
from pnc_print import is_bookkeeping, printed_source  # noqa: E402

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
URL = "https://github.com/pnc-book/pnc-book"
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


class AnyGlue(dict):
    """Glued values for a conversion without an executed book: every name is a number and an image."""

    def __missing__(self, name: str) -> dict:
        return {"data": {"text/plain": "1", "image/png": PIXEL}, "metadata": {}}


def _export(path: Path, edition: str = "full") -> str:
    notebook = export.export_notebook(path, repo_url=URL, glue=AnyGlue(), bib_path=ROOT / "references.bib",
                                      edition=edition)
    assert notebook.metadata["pnc_export"]["edition"] == edition
    return nbformat.writes(notebook)


@dataclass(frozen=True)
class Solution:
    chapter: str
    exercise: str
    code_lines: tuple[str, ...]
    """Lines of the solution's code that appear nowhere outside the book's solutions."""
    printed_lines: tuple[str, ...]
    """Those of them the PDF prints (book_ext/pnc_print.py leaves out bookkeeping cells and glue calls)."""


def _printed_prefix(line: str) -> str:
    """The first 40 characters of a code line without white space and without its trailing comment: a wrapped
    listing breaks later than that, and moves a long line's comment to a continuation line, which a page break
    can separate from the code by the page's footer and header."""
    return re.sub(r"\s+", "", re.sub(r"\s{2,}#.*$", "", line))[:40]


def _solutions() -> list[Solution]:
    """Every solution of the book, found with a state machine of its own (not export.drop_solutions)."""
    found: list[tuple[str, str, list[str], set[str]]] = []
    outside: set[str] = set()
    prose: list[str] = []  # the chapters' Markdown outside the solutions (an exercise may name the code to submit)
    for path in CHAPTERS:
        current: tuple[str, str, list[str]] | None = None
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                for line in cell.source.split("\n"):
                    start = re.match(r"^`{3,}\{solution-start\}\s+(\S+)", line)
                    if start:
                        current = (path.stem, start.group(1), [], set())
                        found.append(current)
                    elif re.match(r"^`{3,}\{solution-end\}", line):
                        current = None
                    elif current is None:
                        prose.append(line)
            elif cell.cell_type == "code":
                lines = [line.strip() for line in cell.source.split("\n")]
                if current is not None:
                    current[2].extend(lines)
                    if not is_bookkeeping(cell.source):
                        current[3].update(line.strip() for line in printed_source(cell.source).split("\n"))
                else:
                    outside.update(lines)
    solutions = []
    outside_prefixes = {_printed_prefix(line) for line in outside}
    prose_text = re.sub(r"\s+", "", "\n".join(prose))
    for chapter, label, lines, printed in found:
        distinctive = sorted({line for line in lines if len(line) >= 30 and line not in outside
                              and _printed_prefix(line) not in outside_prefixes and not line.startswith("#")
                              and re.sub(r"\s+", "", line) not in prose_text},
                             key=len, reverse=True)[:3]
        solutions.append(Solution(chapter, label, tuple(distinctive), tuple(x for x in distinctive if x in printed)))
    return solutions


SOLUTIONS = _solutions()


def test_every_chapter_with_exercises_has_solutions_to_search_for() -> None:
    assert len(SOLUTIONS) >= 25
    with_code = [s for s in SOLUTIONS if s.code_lines]
    assert len(with_code) >= 20, [s.exercise for s in SOLUTIONS if not s.code_lines]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_notebook_export_has_every_exercise_and_no_solution(path: Path) -> None:
    text = _export(path, "student")
    mine = [s for s in SOLUTIONS if s.chapter == path.stem]
    for solution in mine:
        for line in solution.code_lines:
            assert line not in text, (solution.exercise, line)
    assert "Solution to" not in text and "solution-start" not in text
    full = _export(path)
    exercises = re.findall(r"\*\*(Exercise \d+)", full)
    assert exercises == re.findall(r"\*\*(Exercise \d+)", text)
    assert len(re.findall(r"Solution to Exercise", full)) == len(mine)


def test_grading_notes_only_in_the_instructor_notebooks() -> None:
    path = ROOT / "chapters" / "04_progressive_compression.ipynb"
    instructor, full, student = (_export(path, edition) for edition in ("instructor", "full", "student"))
    assert instructor.count("**Grading note.**") >= 4
    assert "Grading note" not in full and "Grading note" not in student
    assert instructor.count("Solution to Exercise") == full.count("Solution to Exercise") == 4
    assert "<summary><b>Solution" not in instructor  # open, not folded


def test_drop_solutions_refuses_an_unclosed_solution() -> None:
    cells = [nbformat.v4.new_markdown_cell("Text.\n\n````{solution-start} ex-a\n:class: dropdown\n````\nSecret"),
             nbformat.v4.new_code_cell("secret = 1")]
    with pytest.raises(ValueError, match="never closed"):
        export.drop_solutions(cells, "doc")
    cells.append(nbformat.v4.new_markdown_cell("````{solution-end}\n````\nAfter."))
    kept = export.drop_solutions(cells, "doc")
    assert [c.source for c in kept] == ["Text.", "After."]
    with pytest.raises(ValueError, match="edition"):
        export.export_notebook(CHAPTERS[0], edition="teacher")


@pytest.mark.parametrize("argv, message", [
    (["book", "--edition", "teacher"], "--edition must be one of full, student, instructor, not 'teacher'"),
    (["pdf", "--edition"], "--edition needs a value"),
    (["notebooks", "--solutions"], "unknown argument '--solutions'"),
])
def test_dev_refuses_a_bad_edition_naming_the_option(argv: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "dev.py"), *argv], capture_output=True, text=True)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_dev_builds_editions_apart_from_the_full_book() -> None:
    dev = load_dev()
    assert dev.edition_root("full") == ROOT
    assert dev.edition_root("student") == ROOT / "_build" / "student"
    assert dev._shared_cache(dev.edition_root("student")) == ROOT / "_build" / ".jupyter_cache"
    assert dev.NOTEBOOK_BRANCHES["student"] != dev.NOTEBOOK_BRANCHES["full"]


@pytest.fixture(scope="session")
def student_site(built_book: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    reuse = os.environ.get("PNC_STUDENT_HTML")
    if reuse:
        return Path(reuse)

    def build(out: Path) -> Path:
        ensure_vendor()
        env = {**os.environ, "PNC_EDITION": "student",
               "PNC_EXECUTION_CACHE": str(built_book.parent / ".jupyter_cache")}
        result = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT),
                                 "--path-output", str(out), "-W", "-n", "--keep-going"], cwd=ROOT, env=env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"student build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return out / "_build" / "html"

    return build_once(tmp_path_factory, "student-site", build)


def _site_text(site: Path) -> dict[Path, str]:
    """Every text file of the site but the vendored assets, HTML also as its text (highlighted code is split into
    spans and escaped)."""
    files = {}
    for path in site.rglob("*"):
        if path.is_file() and path.suffix in {".html", ".ipynb", ".js", ".json", ".txt", ".md"} \
                and "_static" not in path.parts:
            text = path.read_text(errors="replace")
            if path.suffix == ".html":
                text += "\n" + html.unescape(re.sub(r"<[^>]+>", "", text))
            files[path] = text
    return files


@pytest.mark.book
def test_student_site_and_notebooks_hold_no_solution(student_site: Path) -> None:
    files = _site_text(student_site)
    assert any(p.suffix == ".ipynb" and p.parent.name == "notebooks" for p in files)
    for solution in SOLUTIONS:
        for line in solution.code_lines:
            leaks = [str(p.relative_to(student_site)) for p, text in files.items() if line in text]
            assert not leaks, (solution.exercise, line, leaks)
    for path, text in files.items():
        if path.suffix in {".html", ".ipynb"}:
            assert "Solution to" not in text, path
            assert 'class="solution' not in text and "solution-content" not in text, path


@pytest.mark.book
def test_student_site_has_every_exercise(student_site: Path, built_book: Path) -> None:
    for path in CHAPTERS:
        page = f"chapters/{path.stem}.html"
        full = (built_book / page).read_text()
        student = (student_site / page).read_text()
        labels = re.findall(r'<div class="exercise[^"]*" id="([\w-]+)"', full)
        assert labels == re.findall(r'<div class="exercise[^"]*" id="([\w-]+)"', student), page
        if labels:
            assert "Solution to" in full
    assert "notebooks-student" in (student_site / "chapters" / "04_progressive_compression.html").read_text()


def test_dev_notebooks_commits_the_student_notebooks_to_their_own_branch(tmp_path: Path) -> None:
    """``dev.py notebooks --edition student`` commits the student build's notebooks to ``notebooks-student``."""
    repo = tmp_path / "repo"
    folder = repo / "_build" / "student" / "_build" / "html" / "notebooks"
    folder.mkdir(parents=True)
    (repo / "_config.yml").write_text("repository:\n  url: https://github.com/pnc-book/pnc-book\n  branch: main\n")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("exercise only")]),
                   folder / "04_progressive_compression.ipynb")
    git = ["git", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    dev = load_dev()
    dev.ROOT = repo
    assert dev.notebooks(Path(sys.executable), "student") == 0
    listing = subprocess.run([*git, "ls-tree", "-r", "--name-only", "notebooks-student"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert "chapters/04_progressive_compression.ipynb" in listing
    assert subprocess.run([*git, "rev-parse", "-q", "--verify", "refs/heads/notebooks"]).returncode != 0


def _pdf_text(pdf: Path) -> str:
    """The PDF's text with all white space removed (listings wrap and pdftotext spaces them its own way)."""
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"\s+", "", text)


def _edition_pdf(tmp_path_factory: pytest.TempPathFactory, edition: str, out: Path | None, cache: Path) -> Path:
    """The ``edition``'s PDF, built once for all workers from the session's execution cache ``cache`` (under ``out``,
    default a folder of its own); its site is not relinked, since only the PDF is read."""
    def build(folder: Path) -> Path:
        return load_dev().pdf(Path(sys.executable), out or folder, edition=edition, cache=cache, link=False)

    return build_once(tmp_path_factory, f"{edition}-pdf", build)


@pytest.fixture(scope="session")
def student_pdf(student_site: Path, built_book: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    reuse = os.environ.get("PNC_STUDENT_PDF")
    if reuse:
        return Path(reuse)
    return _edition_pdf(tmp_path_factory, "student", student_site.parent.parent, built_book.parent / ".jupyter_cache")


@pytest.mark.book
def test_student_pdf_holds_every_exercise_and_no_solution(student_pdf: Path) -> None:
    text = _pdf_text(student_pdf)
    assert "Solutionto" not in text and "Gradingnote" not in text
    assert text.count("Exercise") >= 30
    leaks = [(s.exercise, line) for s in SOLUTIONS for line in s.code_lines if _printed_prefix(line) in text]
    assert not leaks, leaks[:10]


@pytest.mark.book
def test_the_pdf_leak_search_finds_the_solutions_in_the_full_pdf(built_pdf: Path) -> None:
    """The same search over the full edition's PDF finds the solutions' code: the student test can fail."""
    text = _pdf_text(built_pdf)
    lines = [line for s in SOLUTIONS for line in s.printed_lines]
    assert len(lines) >= 40
    # a line at the top of a page can be extracted with the page's running header ("5.7. Exercises") between its
    # first word and the rest: such a line counts as found when the rest of it is
    missing = [line for line in lines
               if _printed_prefix(line) not in text and _printed_prefix(line.strip().partition(" ")[2]) not in text]
    assert not missing, missing[:10]


def test_every_solution_has_one_grading_note() -> None:
    """Each solution of the book (between its solution-start and solution-end) holds exactly one {grading-note}."""
    for path in CHAPTERS:
        notes, current = {}, None
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "markdown":
                continue
            for line in cell.source.split("\n"):
                start = re.match(r"^`{3,}\{solution-start\}\s+(\S+)", line)
                if start:
                    current = start.group(1)
                    notes[current] = 0
                elif re.match(r"^`{3,}\{solution-end\}", line):
                    current = None
                elif line.startswith("```{grading-note}"):
                    assert current is not None, (path.name, "a grading note outside a solution")
                    notes[current] += 1
        assert all(count == 1 for count in notes.values()), (path.name, notes)


@pytest.fixture(scope="session")
def instructor_pdf(built_book: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    reuse = os.environ.get("PNC_INSTRUCTOR_PDF")
    if reuse:
        return Path(reuse)
    ensure_vendor()
    return _edition_pdf(tmp_path_factory, "instructor", None, built_book.parent / ".jupyter_cache")


@pytest.mark.book
def test_instructor_pdf_has_every_solution_with_its_grading_note(instructor_pdf: Path) -> None:
    text = subprocess.run(["pdftotext", str(instructor_pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert text.count("Solution to Exercise") == len(SOLUTIONS)
    assert text.count("Grading note") == len(SOLUTIONS)
    flat = re.sub(r"\s+", "", text)
    missing = [line for s in SOLUTIONS for line in s.printed_lines if _printed_prefix(line) not in flat]
    assert not missing, missing[:10]


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds, names it reads) at any depth; IPython lines (%, !) are skipped."""
    import ast

    code = "\n".join(line for line in source.split("\n") if not line.lstrip().startswith(("%", "!")))
    bound, read = set(), set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store) else read).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return bound, read


def reads_of_solution_names(cells: list, where: str) -> list[tuple[list[str], str]]:
    """(names, cell start) for every cell outside the solutions that reads a name only a solution's code binds."""
    kept = {id(cell) for cell in export.drop_solutions(cells, where)}
    defined: set[str] = set()
    only_in_solutions: set[str] = set()
    found = []
    for cell in cells:
        if cell.cell_type != "code":
            continue
        bound, read = _names(cell.source)
        if id(cell) in kept:
            needs = read & only_in_solutions - bound
            if needs:
                found.append((sorted(needs), cell.source[:120]))
            defined |= bound
            only_in_solutions -= bound
        else:
            only_in_solutions |= bound - defined
    return found


def test_the_dependency_check_sees_a_cell_that_needs_a_solution() -> None:
    md = nbformat.v4.new_markdown_cell
    cells = [nbformat.v4.new_code_cell("a = 1"), md("````{solution-start} ex-a\n````"),
             nbformat.v4.new_code_cell("b = a + 1"), md("````{solution-end}\n````"),
             nbformat.v4.new_code_cell("print(a, b)")]
    assert reads_of_solution_names(cells, "doc") == [(["b"], "print(a, b)")]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_notebooks_need_nothing_a_solution_defines(path: Path) -> None:
    """A cell outside the solutions reads no name that only a solution's code binds: the student notebook, which has
    no solution, runs top to bottom."""
    found = reads_of_solution_names(nbformat.read(path, as_version=4).cells, path.stem)
    assert not found, (path.name, found)
