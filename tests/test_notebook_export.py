"""The chapter notebooks handed out to students (pnc.book.export): install cell, plain Markdown, glued values.

Unit tests convert small made-up MyST snippets, one transformation at a time. The ``book``-marked test converts every
chapter of the book from its executed version (from the jupyter-cache of the session's book build or of
``$PNC_JUPYTER_CACHE``; a chapter not in it is executed here) and executes the result with nbclient, on CPU, from
chapters/.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import ROOT
from IPython.core.inputtransformer2 import TransformerManager

from pnc.book import export
from pnc.book.export import Bibliography, BookIndex, MarkdownConverter, Target

SITE = "https://example.org/book/"
REPO = "https://github.com/example/book"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()

BIB = r"""
@article{wang2025understanding,
  author = {Wang, Peng and Li, Xiao and Yaras, Can},
  title = {Understanding Deep Representation Learning},
  journal = {JMLR}, year = {2025}
}
@article{he2023law,
  author = {He, Hangfeng and Su, Weijie J.}, title = {A law of data separation}, journal = {PNAS}, year = {2023}
}
@inproceedings{galanti2022role,
  author = {Galanti, Tomer and Gy{\"o}rgy, Andr{\'a}s and Hutter, Marcus}, title = {On the role of neural collapse},
  booktitle = {ICLR}, year = {2022}
}
@book{greydanus2020scaling,
  author = {Greydanus, Sam}, title = {Scaling down deep learning}, publisher = {arXiv}, year = {2020}
}
"""

FORBIDDEN = re.compile(r"\{prf:|\{glue|\{cite|\{ref\}|\{doc\}|\{exercise|\{solution|\{numref\}|:::|```\{")


def glued(value: str, **extra: str) -> dict:
    return {"output_type": "display_data", "metadata": {}, "data": {"text/plain": value, **extra}}


@pytest.fixture
def bib(tmp_path: Path) -> Bibliography:
    path = tmp_path / "refs.bib"
    path.write_text(BIB)
    return Bibliography(path)


@pytest.fixture
def index() -> BookIndex:
    doc = "chapters/02_two"
    return BookIndex(
        titles={doc: "Chapter two", "bibliography": "Bibliography"},
        targets={
            "chap-two": Target(doc, "chap-two", "section", "Chapter two"),
            "thm-main": Target(doc, "thm-main", "theorem", "Main", "4"),
            "fig-main": Target(doc, "fig-main", "figure", "A caption", "3"),
            "ex-one": Target(doc, "ex-one", "exercise", "Warm-up", "7"),
            "eq-main": Target(doc, "equation-eq-main", "equation", "", "1"),
        },
        offsets={doc: Counter({"theorem": 3, "figure": 2, "exercise": 6})},
    )


def converter(index: BookIndex | None = None, glue: dict | None = None, bibliography: Bibliography | None = None,
              site_url: str | None = SITE, **kwargs) -> MarkdownConverter:
    return MarkdownConverter("chapters/02_two", index or BookIndex(), glue or {}, bibliography, site_url, **kwargs)


# --- install cell, glue values -----------------------------------------------------------------------------------


def test_install_cell_installs_from_the_repository_only_without_pnc() -> None:
    cell = export.install_cell(REPO, branch="main")
    assert cell.cell_type == "code" and export.INSTALL_TAG in cell.metadata["tags"]
    assert f'pnc[book] @ git+{REPO}@main' in cell.source
    python = TransformerManager().transform_cell(cell.source)  # the %pip magic is valid inside the except branch
    assert "run_line_magic('pip'" in python
    compile(python, "install", "exec")
    namespace: dict = {"get_ipython": lambda: pytest.fail("pip ran although pnc imports")}
    exec(python, namespace)  # pnc imports here: nothing is installed
    with pytest.raises(ValueError, match="http"):
        export.install_cell("not a url")


def test_repository_url_comes_from_config(tmp_path: Path) -> None:
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    assert export.repository_url(ROOT) == repository["url"]
    assert export.repository_branch(ROOT) == repository.get("branch")
    (tmp_path / "_config.yml").write_text("title: x\n")
    assert export.repository_branch(tmp_path) is None
    with pytest.raises(ValueError, match="repository.url"):
        export.repository_url(tmp_path)


@pytest.mark.parametrize(("plain", "fmt", "expected"), [
    ("0.03116735378192309", ".1f", "0.0"),
    ("0.03116735378192309", ".2%", "3.12%"),
    ("0.000298", ".1e", "3.0e-04"),
    ("12345", ",", "12,345"),
    ("67", "", "67"),
    ("'fashion'", "", "fashion"),
    ("3.0", "d", "3"),
    ("0.5", "+.2f", "+0.50"),
])
def test_glue_text_formats_like_myst_nb(plain: str, fmt: str, expected: str) -> None:
    assert export.format_glue_text(plain, fmt) == expected
    from myst_nb.core.variables import format_plain_text  # the book's own formatter agrees

    assert format_plain_text(plain, fmt) == expected


def test_glue_values_in_markdown_and_errors() -> None:
    glue = {"ratio": glued("0.2846"), "name": glued("'a_b*c'")}
    text = converter(glue=glue).convert("ratio {glue:text}`ratio:.1%`, plain {glue:text}`ratio`, {glue}`name`")
    assert text == r"ratio 28.5%, plain 0.2846, a\_b\*c"
    with pytest.raises(ValueError, match="no glued value 'missing'"):
        converter(glue=glue).convert("{glue:text}`missing:.2f`")
    with pytest.raises(ValueError, match="cannot format"):
        converter(glue=glue).convert("{glue:text}`name:.2f`")


def test_glue_data_from_an_executed_notebook() -> None:
    prefix = "application/papermill.record/"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("glue(...)")])
    notebook.cells[0].outputs = [
        nbformat.v4.new_output("display_data", data={prefix + "text/plain": "1.5"},
                               metadata={"scrapbook": {"name": "x", "mime_prefix": prefix}}),
        nbformat.v4.new_output("display_data", data={"text/plain": "2"},
                               metadata={"scrapbook": {"name": "shown", "mime_prefix": ""}}),
        nbformat.v4.new_output("stream", text="hello"),
    ]
    data = export.glue_data(notebook)
    assert data["x"]["data"] == {"text/plain": "1.5"} and data["shown"]["data"] == {"text/plain": "2"}


def test_glue_fallback_without_myst_nb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import fails as on Colab
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    namespace: dict = {}
    exec(export.GLUE_FALLBACK, namespace)
    namespace["glue"]("hidden", 1, display=False)
    namespace["glue"]("shown", 2)
    assert shown == [2]


# --- directives ----------------------------------------------------------------------------------------------------


def test_theorem_like_blocks_become_bold_numbered_paragraphs(index: BookIndex) -> None:
    text = converter(index).convert(
        "```{prf:theorem} Main\n:label: thm-main\n\nEvery $x$ is fine.\n```\n\n"
        ":::{prf:definition} Kernel\nA **kernel** is\n\n$$\nk(x,y)\n$$\n:::\n\n"
        "```{prf:remark}\n- a list first\n```"
    )
    assert "**Theorem 4 (Main).** Every $x$ is fine." in text
    assert "**Definition 1 (Kernel).** A **kernel** is\n\n$$\nk(x,y)\n$$" in text
    assert "**Remark 1.**\n\n- a list first" in text
    assert ":label:" not in text and "```" not in text and ":::" not in text


def test_proofs_end_with_a_tombstone() -> None:
    text = converter().convert("```{prf:proof}\nObvious.\n```")
    assert text == "**Proof.** Obvious. ∎"
    text = converter().convert("```{prf:proof}\nBecause\n\n$$\na=b\n$$\n```")
    assert text.endswith("$$\na=b\n$$\n\n∎")


def test_exercises_and_solutions(index: BookIndex) -> None:
    gated = converter(index).convert(
        "````{exercise-start} Warm-up\n:label: ex-one\n````\nProve it.\n````{exercise-end}\n````\n\n"
        "````{solution-start} ex-one\n:class: dropdown\n````\nIt holds."
    )
    assert gated == "**Exercise 7 (Warm-up).**\nProve it.\n\n**Solution to Exercise 7 (Warm-up).**\nIt holds."
    end = converter(index).convert("The end.\n````{solution-end}\n````")
    assert end == "The end."
    whole = converter(index).convert(
        "```{exercise}\n:label: ex-one\nProve it.\n```\n\n```{solution} ex-one\n:class: dropdown\nIt holds.\n```"
    )
    assert "**Exercise 7.** Prove it." in whole
    assert "<details>\n<summary><b>Solution to Exercise 7 (Warm-up)</b></summary>\n\nIt holds.\n\n</details>" in whole


def test_admonitions_become_bold_titled_blockquotes() -> None:
    text = converter().convert("```{admonition} Audience\n:class: tip\nYou know\n\n- lists\n```\n\n"
                               ":::{note}\nA note.\n:::\n\n```{warning}\nCareful.\n```")
    assert "> **Audience**\n>\n> You know\n>\n> - lists" in text
    assert "> **Note**\n>\n> A note." in text
    assert "> **Warning**\n>\n> Careful." in text


def test_nested_fences(index: BookIndex) -> None:
    text = converter(index).convert(
        "````{admonition} Outer\n```{prf:theorem} Main\n:label: thm-main\nInner, see {prf:ref}`thm-main`.\n```\n\n"
        "```python\nx = {'a': 1}  # {glue:text}`not_a_role`\n```\n````"
    )
    assert text.startswith("> **Outer**\n>\n> **Theorem 4 (Main).** Inner, see [Theorem 4]")
    assert "> ```python\n> x = {'a': 1}  # {glue:text}`not_a_role`\n> ```" in text  # code is left alone


def test_glue_figure_becomes_an_embedded_image_with_caption(index: BookIndex) -> None:
    glue = {"fig_main": {"output_type": "display_data", "metadata": {"image/png": {"width": 640}},
                         "data": {"image/png": PNG, "text/plain": "<Figure>"}}}
    text = converter(index, glue).convert("```{glue:figure} fig_main\n:name: fig-main\n\nThe $C_l$ curve.\n```")
    assert text == f'<img src="data:image/png;base64,{PNG}" alt="Fig. 3" width="640">\n\n**Fig. 3.** The $C_l$ curve.'
    anonymous = converter(index, glue).convert("```{glue:figure} fig_main\n```\n\n```{glue} fig_main\n```")
    assert anonymous.count("<img") == 2 and "**Fig." not in anonymous


def test_figure_from_a_file_is_embedded(tmp_path: Path) -> None:
    (tmp_path / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    text = converter(source_dir=tmp_path).convert("```{figure} pic.png\n:alt: a picture\n:width: 300px\n\nCap.\n```")
    assert text.startswith(f'<img src="data:image/png;base64,{PNG}" alt="a picture" width="300px">')
    assert text.endswith("\n\nCap.")


def test_labels_comments_equations_and_macros(index: BookIndex) -> None:
    text = converter(index, macros={"R": r"\mathbb{R}"}).convert(
        "(chap-two)=\n# Chapter two\n% a MyST comment\n$$\nx\\in\\R^d\n$$ (eq-main)\n\nBy {eq}`eq-main`, $\\Re z$."
    )
    assert text == ("# Chapter two\n$$\nx\\in\\mathbb{R}^d \\tag{1}\n$$\n\nBy "
                    f"[(1)]({SITE}chapters/02_two.html#equation-eq-main), $\\Re z$.")
    math = converter(index).convert("```{math}\n:label: eq-main\na=b\n```")
    assert math == "$$\na=b \\tag{1}\n$$"


def test_substitutions_in_text_and_code() -> None:
    values = {"repo_url": REPO}
    text = converter(substitutions=values).convert(
        "Clone [it]({{ repo_url }}):\n\n```bash\ngit clone {{repo_url}} {{ other }}\n```\n\nand `{{ repo_url }}`."
    )
    assert text == f"Clone [it]({REPO}):\n\n```bash\ngit clone {REPO} {{{{ other }}}}\n```\n\nand `{REPO}`."
    with pytest.raises(ValueError, match="unknown substitution"):
        converter(substitutions=values).convert("see {{ nope }}")
    defaults = export.default_substitutions(ROOT, REPO + "/", "dev")
    assert defaults["issues_url"] == f"{REPO}/issues" and defaults["repo_branch"] == "dev"


def test_unknown_directives_and_roles_are_errors() -> None:
    with pytest.raises(ValueError, match=r"directive \{tab-set\}"):
        converter().convert("```{tab-set}\nx\n```")
    with pytest.raises(ValueError, match=r"role \{foo\}"):
        converter().convert("{foo}`bar`")
    with pytest.raises(ValueError, match="never closed"):
        converter().convert("````{note}\nx\n```")
    with pytest.raises(ValueError, match="colon fence"):
        converter().convert(":::\nx\n:::")


# --- roles ---------------------------------------------------------------------------------------------------------


def test_cross_references_link_to_the_site(index: BookIndex) -> None:
    page = f"{SITE}chapters/02_two.html"
    text = converter(index).convert(
        "See {ref}`chap-two`, {ref}`that chapter <chap-two>`, {numref}`fig-main`, {numref}`Figure %s <fig-main>`, "
        "{prf:ref}`thm-main`, {prf:ref}`the theorem <thm-main>`, {ref}`ex-one` and {doc}`../bibliography`."
    )
    assert text == (
        f"See [Chapter two]({page}#chap-two), [that chapter]({page}#chap-two), [Fig. 3]({page}#fig-main), "
        f"[Figure 3]({page}#fig-main), [Theorem 4]({page}#thm-main), [the theorem]({page}#thm-main), "
        f"[Exercise 7]({page}#ex-one) and [Bibliography]({SITE}bibliography.html)."
    )
    plain = converter(index, site_url=None).convert("{prf:ref}`thm-main` in {doc}`02_two`")
    assert plain == "Theorem 4 in Chapter two"
    with pytest.raises(ValueError, match="unknown label 'nope'"):
        converter(index).convert("{ref}`nope`")


def test_roles_in_inline_code_are_left_alone(index: BookIndex) -> None:
    text = converter(index).convert("Write ``{ref}`chap-two` `` or `{cite}` to cite; {ref}`chap-two`.")
    assert text.startswith("Write ``{ref}`chap-two` `` or `{cite}` to cite; [Chapter two](")


def test_citations_author_year(bib: Bibliography) -> None:
    conv = converter(bibliography=bib)
    text = conv.convert(
        "As {cite:t}`wang2025understanding` show {cite}`he2023law`; see {cite:p}`galanti2022role,greydanus2020scaling`."
    )
    assert text == ("As Wang et al. (2025) show (He and Su, 2023); see (Galanti et al., 2022; Greydanus, 2020).")
    assert conv.cited == ["wang2025understanding", "he2023law", "galanti2022role", "greydanus2020scaling"]
    assert bib.authors("galanti2022role") == "Galanti et al." and "György" in bib.references(["galanti2022role"])
    with pytest.raises(ValueError, match="'nobody2000' is not in refs.bib"):
        conv.convert("{cite}`nobody2000`")


# --- whole notebooks -----------------------------------------------------------------------------------------------


def _small_book(tmp_path: Path) -> Path:
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: A\n    chapters:\n      - file: chapters/01_one\n"
        "      - file: chapters/02_two\n"
    )
    (tmp_path / "intro.md").write_text("# Intro\n\n```{prf:theorem} Zero\n:label: thm-zero\nx\n```\n")
    (tmp_path / "chapters").mkdir()
    one = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "(chap-one)=\n# One\n\n```{prf:theorem} First\n:label: thm-first\nx\n```\n\n"
        "```{glue:figure} f\n:name: fig-one\nCap\n```")])
    nbformat.write(one, tmp_path / "chapters" / "01_one.ipynb")
    two = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Two\n\n```{prf:theorem}\nUnlabelled.\n```\n\n"
                                      "```{prf:theorem} Second\n:label: thm-second\nAfter {prf:ref}`thm-first`.\n```"),
        nbformat.v4.new_code_cell("from myst_nb import glue\nglue('v', 0.25, display=False)"),
        nbformat.v4.new_markdown_cell("The value is {glue:text}`v:.0%`, as {cite:t}`he2023law` say."),
    ])
    two.cells[1].outputs = [nbformat.v4.new_output("stream", text="x")]
    two.cells[1].execution_count = 3
    nbformat.write(two, tmp_path / "chapters" / "02_two.ipynb")
    (tmp_path / "refs.bib").write_text(BIB)
    return tmp_path


def test_book_index_numbers_across_documents(tmp_path: Path) -> None:
    index = BookIndex.from_book(_small_book(tmp_path))
    assert index.titles == {"intro": "Intro", "chapters/01_one": "One", "chapters/02_two": "Two"}
    assert [index.targets[k].number for k in ("thm-zero", "thm-first", "thm-second")] == ["1", "2", "4"]
    assert index.targets["fig-one"].number == "1" and index.targets["chap-one"].title == "One"
    assert index.offsets["chapters/02_two"]["theorem"] == 2


def test_export_notebook(tmp_path: Path) -> None:
    root = _small_book(tmp_path)
    notebook = export.export_notebook(root / "chapters" / "02_two.ipynb", None, root / "refs.bib", SITE, REPO,
                                      glue={"v": glued("0.25")}, macros={})
    cells = notebook.cells
    assert cells[0].metadata["tags"] == [export.INSTALL_TAG]
    assert "**Theorem 3.** Unlabelled." in cells[1].source
    assert f"**Theorem 4 (Second).** After [Theorem 2]({SITE}chapters/01_one.html#thm-first)." in cells[1].source
    assert cells[2].outputs == [] and cells[2].execution_count is None
    assert cells[2].source.startswith(export.GLUE_FALLBACK) and "glue('v', 0.25" in cells[2].source
    assert cells[3].source == "The value is 25%, as He and Su (2023) say."
    assert cells[4].source.startswith("## References\n\n- Hangfeng He and Weijie J\\. Su")
    assert notebook.metadata["pnc_export"] == {"source": "chapters/02_two.ipynb", "page": f"{SITE}chapters/02_two.html",
                                               "edition": "full"}
    nbformat.validate(notebook)
    with pytest.raises(ValueError, match="no glued value 'f'"):
        export.export_notebook(root / "chapters" / "01_one.ipynb", repo_url=REPO)


# --- every chapter of the book -------------------------------------------------------------------------------------

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


@pytest.fixture(scope="module")
def cached_executions(request: pytest.FixtureRequest) -> dict[Path, nbformat.NotebookNode]:
    """Executed chapters from a build's jupyter-cache, where still current (the cache matches the code cells):
    ``$PNC_JUPYTER_CACHE`` if set, else the cache of the session's book build (``built_book``, which the other
    ``book`` tests build anyway; ``PNC_BOOK_HTML`` reuses a build)."""
    cache = os.environ.get("PNC_JUPYTER_CACHE")
    path = Path(cache) if cache else request.getfixturevalue("built_book").parent / ".jupyter_cache"
    return export.executed_from_cache(path, CHAPTERS) if path.exists() else {}


@pytest.mark.book
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_exports_and_runs(path: Path, cached_executions: dict, tmp_path: Path) -> None:
    from nbclient import NotebookClient

    executed = cached_executions.get(path.resolve()) or export.execute_notebook(path, timeout=1200)
    notebook = export.export_notebook(path, executed, ROOT / "references.bib", SITE, export.repository_url(ROOT))
    assert notebook.cells[0].metadata.get("tags") == [export.INSTALL_TAG]
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            leftover = FORBIDDEN.search(cell.source)
            assert not leftover, f"{path.name}: book-only syntax {leftover.group(0)!r} in\n{cell.source[:500]}"
            assert not re.search(r"^\([\w:-]+\)=\s*$", cell.source, re.M), f"{path.name}: a label is left"
    glued = [name for name, out in export.glue_data(executed).items() if "image/png" in out.get("data", {})]
    images = sum(cell.source.count("<img src=\"data:image/") for cell in notebook.cells if cell.cell_type == "markdown")
    figures = sum(cell.source.count("{glue:figure}") for cell in nbformat.read(path, 4).cells
                  if cell.cell_type == "markdown")
    assert images >= figures, f"{path.name}: {figures} glued figures but {images} images ({glued})"
    source_code = [c.source for c in nbformat.read(path, 4).cells if c.cell_type == "code"]
    assert len(source_code) + 1 == sum(c.cell_type == "code" for c in notebook.cells)
    out = tmp_path / path.name
    nbformat.write(notebook, out)
    client = NotebookClient(nbformat.read(out, 4), timeout=1200, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell


@pytest.mark.book
def test_site_notebooks(built_book: Path) -> None:
    """``pnc_notebooks`` is enabled in _config.yml, and the download button serves the converted notebook."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "pnc_notebooks" in ((config.get("sphinx") or {}).get("local_extensions") or {})
    for path in CHAPTERS:
        for served in (built_book / "_sources" / "chapters" / path.name, built_book / "notebooks" / path.name):
            notebook = json.loads(served.read_text())
            assert notebook["cells"][0]["metadata"]["tags"] == [export.INSTALL_TAG], served
            markdown = "".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
            assert not FORBIDDEN.search(markdown), served
