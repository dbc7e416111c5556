"""The ``notebooks`` branch: the converted chapter notebooks where Colab and Binder can open them.

Colab opens notebooks from a GitHub repository (``colab.research.google.com/github/ORG/REPO/blob/BRANCH/PATH``) and
Binder builds a repository's branch, so the notebooks the site hands out (install cell, glued values, plain
Markdown; :mod:`pnc.book.export`) must be committed somewhere. They are generated, so they do not belong on ``main``
(whose notebooks are committed without outputs): :func:`publish_branch` commits them to a branch of their own, at
the same paths as their sources (``chapters/NAME.ipynb``), with a ``requirements.txt`` for Binder and a README. The
site's Colab and Binder buttons point at that branch (``pnc_launch_branch`` in ``_config.yml``; book_ext/pnc_site.py).

It writes with git plumbing only (``hash-object``, ``mktree``, ``commit-tree``, ``update-ref``), so the working tree,
the index and the checked-out branch are untouched, and it commits nothing when the notebooks did not change.
``python3 dev.py notebooks`` runs it on ``_build/html/notebooks/``; ``git push origin notebooks`` publishes it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pnc.book.export import install_spec

__all__ = ["DEFAULT_BRANCH", "branch_files", "publish_branch"]

DEFAULT_BRANCH = "notebooks"


def branch_files(notebooks_dir: str | os.PathLike[str], repo_url: str, source_branch: str = "main") -> dict[str, bytes]:
    """``{path in the branch: content}``: every ``*.ipynb`` of ``notebooks_dir`` under ``chapters/``, a Binder
    ``requirements.txt`` installing ``pnc`` from ``repo_url`` at ``source_branch``, and a README."""
    folder = Path(notebooks_dir)
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        raise ValueError(f"no notebooks in {folder}: build the book first (python3 dev.py book)")
    files = {f"chapters/{p.name}": p.read_bytes() for p in notebooks}
    files["requirements.txt"] = (install_spec(repo_url, source_branch) + "\n").encode()  # as the install cell
    names = "\n".join(f"- `chapters/{p.name}`" for p in notebooks)
    files["README.md"] = (
        f"# Chapter notebooks of the pnc book\n\nGenerated from `{source_branch}` of {repo_url} by "
        "`python3 dev.py notebooks` (`pnc.book.publish`); do not edit here. Each notebook starts with a cell that "
        "installs `pnc`, shows the book's computed values in its text, and runs top to bottom on a CPU.\n\n"
        f"{names}\n"
    ).encode()
    return files


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        raise ValueError(f"git {' '.join(args)} failed in {repo}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode().strip()


def _tree(repo: Path, files: dict[str, bytes]) -> str:
    """Write ``files`` (paths with at most one folder level) as a git tree; its id."""
    folders: dict[str, dict[str, bytes]] = {}
    top: dict[str, bytes] = {}
    for path, content in files.items():
        parts = path.split("/")
        if len(parts) == 1:
            top[path] = content
        elif len(parts) == 2:
            folders.setdefault(parts[0], {})[parts[1]] = content
        else:
            raise ValueError(f"{path}: only one folder level is supported")
    entries = []
    for name, content in top.items():
        blob = _git(repo, "hash-object", "-w", "--stdin", stdin=content)
        entries.append(f"100644 blob {blob}\t{name}")
    for name, inner in folders.items():
        entries.append(f"040000 tree {_tree(repo, inner)}\t{name}")
    return _git(repo, "mktree", stdin=("\n".join(sorted(entries, key=lambda e: e.split("\t")[1])) + "\n").encode())


def publish_branch(
    repo: str | os.PathLike[str],
    notebooks_dir: str | os.PathLike[str],
    repo_url: str,
    branch: str = DEFAULT_BRANCH,
    source_branch: str = "main",
) -> str | None:
    """Commit the converted notebooks to ``branch`` of the git repository ``repo``; the new commit's id, or ``None``
    when the branch already holds exactly these files."""
    repo = Path(repo)
    if not branch or branch.startswith("-") or " " in branch:
        raise ValueError(f"not a branch name: {branch!r}")
    tree = _tree(repo, branch_files(notebooks_dir, repo_url, source_branch))
    try:
        parent = _git(repo, "rev-parse", "--verify", "-q", f"refs/heads/{branch}")
    except ValueError:
        parent = ""
    if parent and _git(repo, "rev-parse", f"{parent}^{{tree}}") == tree:
        return None
    try:
        source = _git(repo, "rev-parse", "--short", "HEAD")
    except ValueError:
        source = "an unborn HEAD"
    message = f"Chapter notebooks generated from {source_branch} at {source}"
    args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
    env_id = {"GIT_AUTHOR_NAME": "pnc-book", "GIT_AUTHOR_EMAIL": "pnc-book@users.noreply.github.com"}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False,
                          env={**os.environ, **env_id, "GIT_COMMITTER_NAME": env_id["GIT_AUTHOR_NAME"],
                               "GIT_COMMITTER_EMAIL": env_id["GIT_AUTHOR_EMAIL"]})
    if done.returncode != 0:
        raise ValueError(f"git commit-tree failed: {done.stderr.decode(errors='replace').strip()}")
    commit = done.stdout.decode().strip()
    _git(repo, "update-ref", f"refs/heads/{branch}", commit, *([parent] if parent else []))
    return commit
