"""The notebooks branch (pnc.book.publish) and the site's Colab/Binder buttons that open it."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from pnc.book import publish


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    (path / "tracked.txt").write_text("main's file\n")
    _git(path, "add", "tracked.txt")
    _git(path, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "first")
    return path


def _notebooks(folder: Path, text: str = "x") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("01_a", "02_b"):
        (folder / f"{name}.ipynb").write_text(json.dumps({"cells": [{"source": f"{name} {text}"}]}))
    return folder


def test_the_branch_holds_the_notebooks_at_their_sources_paths(repo: Path, tmp_path: Path) -> None:
    built = _notebooks(tmp_path / "site" / "notebooks")
    commit = publish.publish_branch(repo, built, "https://github.com/o/r", source_branch="main")
    assert commit and _git(repo, "rev-parse", "notebooks") == commit
    files = _git(repo, "ls-tree", "-r", "--name-only", "notebooks").splitlines()
    assert files == ["README.md", "chapters/01_a.ipynb", "chapters/02_b.ipynb", "requirements.txt"]
    assert _git(repo, "show", "notebooks:chapters/02_b.ipynb") == (built / "02_b.ipynb").read_text()
    assert _git(repo, "show", "notebooks:requirements.txt") == "pnc[book] @ git+https://github.com/o/r@main"
    # the checkout is untouched: still on main, nothing staged or changed
    assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main" and _git(repo, "status", "--porcelain") == ""
    # unchanged notebooks: no new commit; a changed one: a commit on top of the last
    assert publish.publish_branch(repo, built, "https://github.com/o/r") is None
    _notebooks(built, "changed")
    second = publish.publish_branch(repo, built, "https://github.com/o/r")
    assert second and _git(repo, "rev-parse", f"{second}^") == commit


def test_bad_input_is_named(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no notebooks in .*dev.py book"):
        publish.publish_branch(repo, tmp_path / "empty", "https://github.com/o/r")
    built = _notebooks(tmp_path / "nb")
    with pytest.raises(ValueError, match="http"):
        publish.publish_branch(repo, built, "github.com/o/r")
    with pytest.raises(ValueError, match="branch name"):
        publish.publish_branch(repo, built, "https://github.com/o/r", branch="-x")
    with pytest.raises(ValueError, match="git .* failed"):
        publish.publish_branch(tmp_path / "not-a-repo", built, "https://github.com/o/r")


@pytest.mark.book
def test_colab_and_binder_open_the_converted_notebooks(built_book: Path) -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"].removeprefix("https://github.com/")
    chapters = sorted(p for p in (built_book / "chapters").glob("*.html"))
    assert chapters
    for page in chapters:
        text = page.read_text(errors="replace")
        links = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', text)]
        colab = [h for h in links if h.startswith("https://colab.research.google.com/")]
        binder = [h for h in links if h.startswith("https://mybinder.org/")]
        assert colab == [f"https://colab.research.google.com/github/{url}/blob/notebooks/chapters/{page.stem}.ipynb"]
        assert len(binder) == 1 and binder[0].startswith(f"https://mybinder.org/v2/gh/{url}/notebooks?urlpath=")
        assert binder[0].endswith(f"chapters/{page.stem}.ipynb")
        # what the branch would hold at that path: the converted notebook the build wrote
        converted = json.loads((built_book / "notebooks" / f"{page.stem}.ipynb").read_text())
        assert converted["cells"][0]["id"] == "pnc-install"


def _workflow_commands() -> list[str]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "publish.yml").read_text())
    steps = workflow["jobs"]["publish"]["steps"]
    return [line.strip() for step in steps for line in str(step.get("run", "")).splitlines() if line.strip()]


def test_the_publish_workflow_builds_the_site_pdf_and_notebooks_branch_in_order() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "publish.yml").read_text())
    assert workflow[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the key `on` as True
    commands = _workflow_commands()
    order = ["python3 dev.py book", "python3 dev.py pdf", "python3 dev.py notebooks", "git push origin notebooks"]
    assert [c for c in commands if c in order] == order
    fetch = next(i for i, c in enumerate(commands) if c.startswith("git fetch origin notebooks:notebooks"))
    assert fetch < commands.index("python3 dev.py notebooks")
    uses = [step.get("uses", "") for step in workflow["jobs"]["publish"]["steps"]]
    upload = next(step for step in workflow["jobs"]["publish"]["steps"]
                  if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert uses[-1].startswith("actions/deploy-pages")


def test_fresh_runners_publish_the_branch_as_fast_forwards(repo: Path, tmp_path: Path) -> None:
    """The workflow's sequence (fresh clone, fetch the branch, publish, push) twice: the second builds on the first."""
    remote = tmp_path / "remote.git"
    _git(tmp_path, "clone", "-q", "--bare", str(repo), str(remote))
    pushed = []
    for run, text in enumerate(("first build", "second build")):
        runner = tmp_path / f"runner{run}"
        _git(tmp_path, "clone", "-q", str(remote), str(runner))
        subprocess.run(["git", "-C", str(runner), "fetch", "origin", "notebooks:notebooks"], capture_output=True,
                       check=False)  # fails on the first run, as in the workflow
        commit = publish.publish_branch(runner, _notebooks(tmp_path / f"nb{run}", text), "https://example.org/r")
        assert commit is not None
        _git(runner, "push", "-q", "origin", "notebooks")
        pushed.append(commit)
    assert _git(remote, "rev-parse", "notebooks") == pushed[1]
    assert _git(remote, "rev-parse", "notebooks^") == pushed[0]
