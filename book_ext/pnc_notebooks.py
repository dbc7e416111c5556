"""Sphinx extension of the book's site: chapter notebooks that run anywhere (loaded by ``sphinx.local_extensions``).

On ``build-finished`` every notebook chapter is converted by :func:`pnc.book.export.export_notebook` (install cell
first, MyST directives and roles as plain Markdown, glued values and figures pasted from this build's execution) and
written

- over ``_sources/<docname>.ipynb``, where sphinx-book-theme's download button (".ipynb") links, and
- to ``notebooks/<name>.ipynb`` of the site, a stable address to hand out.

The glued values are those myst-nb saved for the page in ``<outdir>/../jupyter_execute/<docname>.glue.json`` (the
executed notebook there has them stripped). Numbers of labelled blocks are taken from Sphinx's own numbering
(``env.toc_fignumbers``) where it has them, so the notebook says "Theorem 1" where the page does. Cross-references
link to ``pnc_notebooks_site_url`` (default: ``html_baseurl``; plain text when neither is set); the install cell
installs from the theme's ``repository_url`` (Jupyter Book's ``repository.url``) and ``repository_branch``. A chapter
that cannot be converted is a warning (an error with ``-W``). The notebooks follow the build's edition
(``pnc_edition``, book_ext/pnc_editions.py): the student edition's have no solution.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import nbformat
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _numbers_from_env(env: Any) -> dict[tuple[str, str], str]:
    numbers = {}
    for docname, by_type in getattr(env, "toc_fignumbers", {}).items():
        for ids in by_type.values():
            for node_id, number in ids.items():
                numbers[(docname, node_id)] = ".".join(str(n) for n in number)
    return numbers


def _export(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from pnc.book import export

    srcdir, outdir = Path(app.srcdir), Path(app.outdir)
    theme = app.config.html_theme_options or {}
    repo_url = theme.get("repository_url") or ""
    if not repo_url:
        logger.warning("pnc_notebooks: no repository_url (Jupyter Book's repository.url); no notebooks written",
                       type="pnc_notebooks")
        return
    site_url = app.config.pnc_notebooks_site_url or app.config.html_baseurl or None
    try:
        index = export.BookIndex.from_book(srcdir)
        bib_files = list(getattr(app.config, "bibtex_bibfiles", []) or [])
        bibliography = export.Bibliography(srcdir / bib_files[0]) if bib_files else None
    except ValueError as error:
        logger.warning(f"pnc_notebooks: {error}", type="pnc_notebooks")
        return
    numbers = _numbers_from_env(app.env)
    for label, target in list(index.targets.items()):
        number = numbers.get((target.docname, target.anchor))
        if number and number != target.number:
            index.targets[label] = dataclasses.replace(target, number=number)
    branch = theme.get("repository_branch") or None
    substitutions = {**export.default_substitutions(srcdir, repo_url, branch),
                     **(getattr(app.config, "myst_substitutions", None) or {})}
    execute_dir = outdir.parent / "jupyter_execute"
    chapters = sorted(doc for doc in app.env.found_docs if str(app.env.doc2path(doc)).endswith(".ipynb"))
    written = 0
    for docname in chapters:
        glue_path = execute_dir.joinpath(*docname.split("/")[:-1], docname.split("/")[-1] + ".glue.json")
        try:
            glue = json.loads(glue_path.read_text()) if glue_path.exists() else {}
            notebook = export.export_notebook(
                app.env.doc2path(docname), site_url=site_url, repo_url=repo_url, glue=glue, index=index,
                bibliography=bibliography, book_root=srcdir, branch=branch, substitutions=substitutions,
                edition=getattr(app.config, "pnc_edition", "full"),
            )
        except ValueError as error:
            logger.warning(f"pnc_notebooks: {error}", type="pnc_notebooks", location=docname)
            continue
        for target in (outdir / "_sources" / f"{docname}.ipynb", outdir / "notebooks" / f"{Path(docname).name}.ipynb"):
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, target)
        written += 1
    logger.info(f"pnc_notebooks: {written} chapter notebooks written to _sources/ and notebooks/")


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("pnc_notebooks_site_url", "", "html", [str])
    app.connect("build-finished", _export)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
