"""What the PDF prints (book_ext/pnc_print.py): bookkeeping cells without their code, listings without glue calls,
HTML tables as typeset tables."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "book_ext"))
from pnc_print import html_table, is_bookkeeping, printed_source, table_node  # noqa: E402


@pytest.mark.parametrize("source, expected", [
    ('glue("a", 1.0, display=False)\nassert x < 1', True),
    ('ratio = c[1] / c[0]\nassert ratio < 0.3\nglue("ratio", ratio, display=False)\ntables.show(rows)', True),
    ('for run in runs:\n    assert run.converged\nglue("n", len(runs), display=False)', True),
    ("np.testing.assert_allclose(a, b)", True),
    ("x = 1\ny = 2", False),                                            # no glue, no check: code to read
    ('print(x)\nglue("x", x, display=False)', False),                   # prints: the reader reads the code
    ("net = models.DeepLinearNetwork(in_dim=50)\nresult = train.train(net, X, y, config)\nreport", False),
    ("%pip install pnc", False),
])
def test_bookkeeping_cells(source: str, expected: bool) -> None:
    assert is_bookkeeping(source) is expected


def test_printed_listings_leave_out_glue_only() -> None:
    source = ('from myst_nb import glue\nx = f(1)\nglue("x", x, display=False)\nfor k, v in d.items():\n'
              '    glue(k, v, display=False)\nprint(x)\n')
    assert printed_source(source) == "x = f(1)\nprint(x)"
    assert printed_source("y = 2\nprint(y)") == "y = 2\nprint(y)"


def test_every_printed_listing_of_the_book_compiles_and_has_no_glue() -> None:
    printed = 0
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or is_bookkeeping(cell.source) or cell.source.lstrip().startswith("%"):
                continue
            listing = printed_source(cell.source)
            compile(listing, f"{path.name}", "exec")
            assert "glue(" not in listing, (path.name, listing[:200])
            printed += 1
    assert printed >= 50


def test_html_tables_become_docutils_tables() -> None:
    html = ('<div class="pnc-table-wrap"><style>.x{}</style><table class="pnc-table"><thead><tr><th>layer</th>'
            '<th>C</th></tr></thead><tbody><tr><td>0</td><td>1.5</td></tr><tr><td>1</td><td>0.4</td></tr>'
            '</tbody></table></div>')
    rows = html_table(html)
    assert rows == [[(True, "layer"), (True, "C")], [(False, "0"), (False, "1.5")], [(False, "1"), (False, "0.4")]]
    node = table_node(rows)
    assert node.astext().split() == ["layer", "C", "0", "1.5", "1", "0.4"]
    assert html_table('<table><tr><td>1</td></tr></table><table><tr><td>2</td></tr></table>') is None
    assert html_table('<img src="a.png"><table><tr><td>1</td></tr></table>') is None


def test_wide_tables_get_a_smaller_type() -> None:
    from pnc_print import font_size

    narrow = [[(True, "layer"), (True, "C")], [(False, "0"), (False, "1.5")]]
    assert font_size(narrow) == ""
    header = [(True, h) for h in ("xi", "n", "L", "alpha", "seed", "kappa", "C1/C0", "C2/C1", "C3/C2", "C4/C3",
                                  "C5/C4", "C6/C5", "C7/C6", "worst |ratio/kappa-1|", "epochs")]
    body = [(False, v) for v in ("0.3", "10", "6", "100", "1", "0.284", "0.290", "0.281", "0.279", "0.279",
                                 "0.2789", "—", "—", "0.02041", "70")]
    assert font_size([header, body]) in ("\\footnotesize", "\\scriptsize")


def test_print_numbers_exercises_and_theorems_as_the_site(tmp_path) -> None:
    """A two-part book built by the LaTeX builder (no PDF): exercises and theorems are numbered chapter.count, as on
    the site, not chapter.section.count, which sphinx-jupyterbook-latex's numfig_secnum_depth = 2 gives."""
    import subprocess
    import textwrap

    from pnc_print import SITE_SECNUM_DEPTH
    from sphinx.config import Config

    assert "numfig_secnum_depth" not in (ROOT / "_config.yml").read_text()  # the site keeps Sphinx's default
    assert SITE_SECNUM_DEPTH == Config.config_values["numfig_secnum_depth"].default
    files = {
        "_config.yml": f"""\
            title: two parts
            author: test
            execute:
              execute_notebooks: "off"
            latex:
              use_jupyterbook_latex: true
              latex_documents:
                targetname: book.tex
            sphinx:
              extra_extensions: [sphinx_proof, sphinx_exercise]
              local_extensions:
                pnc_print: {ROOT / "book_ext"}/
            """,
        "_toc.yml": """\
            format: jb-book
            root: intro
            parts:
              - caption: One
                numbered: true
                chapters: [{file: a}]
              - caption: Two
                numbered: true
                chapters: [{file: b}]
            """,
        "intro.md": "# Intro\n\nText.\n",
        "a.md": "# Chapter A\n\n## First\n\n```{exercise}\n:label: ex-a1\n\nDo a.\n```\n",
        "b.md": "# Chapter B\n\n## First\n\n```{prf:theorem} T\n:label: thm-b\n\nTrue.\n```\n\n## Exercises\n\n"
                "```{exercise}\n:label: ex-b1\n\nDo b.\n```\n\n"
                "```{exercise}\n:label: ex-b2\n\nSee {ref}`ex-b1`.\n```\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    jupyter_book = str(Path(sys.executable).parent / "jupyter-book")
    done = subprocess.run([jupyter_book, "build", str(tmp_path), "--builder", "latex", "-W", "-n"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    tex = (tmp_path / "_build" / "latex" / "book.tex").read_text()
    titles = re.findall(r"\\begin\{sphinxadmonition\}\{note\}\{((?:Exercise|Theorem) [0-9.]+)", tex)
    assert titles == ["Exercise 1.1", "Theorem 2.1", "Exercise 2.1", "Exercise 2.2"], titles
    assert "\\hyperref[exercise:ex-b1]{Exercise 2.1}" in tex
