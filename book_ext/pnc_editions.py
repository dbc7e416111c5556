"""Sphinx extension: three editions of the book from one source (loaded through ``sphinx.local_extensions``).

The edition is the config value ``pnc_edition``, which the environment variable ``PNC_EDITION`` overrides
(``python3 dev.py book --edition student`` sets it; Jupyter Book's command line cannot pass ``-D``):

- ``full`` (default): the public book. Every exercise with its solution in a "Click to show" fold; no grading notes.
- ``student``: every exercise and **no solution**. Solutions are removed from the document tree right after
  sphinx-exercise merges the gated ``solution-start`` ... ``solution-end`` blocks (its own ``hide_solutions`` drops
  only the opening directive and leaves the gated content on the page), so neither their text nor their code cells
  reach the page, the search index, the PDF or the notebooks (:func:`pnc.book.export.export_notebook` drops them
  too, ``edition="student"``). The chapters are executed exactly as in the full book (same jupyter-cache), so every
  number in the text is the same.
- ``instructor``: every solution, open (no fold), with its grading note.

A grading note is written inside a solution as

    ```{grading-note}
    Full marks for ...; common mistakes: ...
    ```

and appears only in the instructor edition (an admonition titled "Grading note").

``PNC_EXECUTION_CACHE`` (a folder) points an edition's build, which has its own output folder, at the execution cache
of the full build, so that building another edition executes nothing the full build already executed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.errors import ConfigError
from sphinx.transforms import SphinxTransform
from sphinx.util.docutils import SphinxDirective

EDITIONS = ("full", "student", "instructor")
"""The editions, in the order ``dev.py --edition`` lists them."""
EDITION_ENV = "PNC_EDITION"
CACHE_ENV = "PNC_EXECUTION_CACHE"
GRADING_CLASS = "pnc-grading-note"


def _configure(app: Any, config: Any) -> None:
    """Read ``PNC_EDITION`` and ``PNC_EXECUTION_CACHE`` (``config-inited``)."""
    edition = os.environ.get(EDITION_ENV) or config.pnc_edition
    if edition not in EDITIONS:
        raise ConfigError(f"{EDITION_ENV} / pnc_edition must be one of {', '.join(EDITIONS)}, not {edition!r}")
    config.pnc_edition = edition
    cache = os.environ.get(CACHE_ENV)
    if cache:
        config.nb_execution_cache_path = str(Path(cache).resolve())
    if edition == "student":  # the Colab/Binder buttons open the student notebooks (python3 dev.py notebooks)
        config.pnc_launch_branch = "notebooks-student"


class GradingNote(SphinxDirective):
    """``{grading-note}``: an admonition "Grading note" in the instructor edition, nothing in the others."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        if self.config.pnc_edition != "instructor":
            return []
        note = nodes.admonition(classes=["admonition", GRADING_CLASS])
        note += nodes.title(text="Grading note")
        self.state.nested_parse(self.content, self.content_offset, note)
        return [note]


class EditionSolutions(SphinxTransform):
    """Remove every solution (student edition) or open every fold (instructor edition), after sphinx-exercise's
    gated-directive merges (priority 10)."""

    default_priority = 20

    def apply(self, **kwargs: Any) -> None:
        from sphinx_exercise.nodes import solution_end_node, solution_node, solution_start_node

        edition = self.config.pnc_edition
        if edition == "full":
            return
        for node in list(self.document.findall(lambda n: isinstance(n, (solution_node, solution_start_node,
                                                                         solution_end_node)))):
            if edition == "student":
                node.parent.remove(node)
            elif isinstance(node, solution_node):
                node["classes"] = [c for c in node["classes"] if c != "dropdown"]


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("pnc_edition", "full", "env", [str])
    app.connect("config-inited", _configure, priority=400)
    app.add_directive("grading-note", GradingNote)
    app.add_transform(EditionSolutions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
