"""The setup is what a new user meets first: check its pieces agree with each other."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml
from conftest import ROOT


def _pins(*files: str) -> dict[str, str]:
    pins = {}
    for name in files:
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if not line or line.startswith("-"):
                continue
            match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
            assert match, f"{name}: not an exact pin: {line!r}"
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def _conda_pip_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_block = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    pins = {}
    for entry in pip_block:
        if entry.startswith("-"):
            continue
        name, version = entry.split("==")
        pins[name.lower().replace("_", "-")] = version
    return pins


def test_environment_yml_agrees_with_requirements() -> None:
    assert _conda_pip_pins() == _pins("requirements/book.in", "requirements/test.in")


def test_lock_contains_every_top_level_pin() -> None:
    lock = _pins("requirements/lock.txt")
    top = _pins("requirements/book.in", "requirements/test.in")
    mismatched = {name: (version, lock.get(name)) for name, version in top.items() if lock.get(name) != version}
    assert not mismatched, f"lock.txt disagrees with the .in pins: {mismatched}"
    assert lock["torch"] == "2.13.0"
    assert not [name for name in lock if name.startswith("nvidia")], "a CUDA package crept into the lock"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(python3 dev\.py \w+)", readme, flags=re.M)
    assert commands[:2] == ["python3 dev.py book", "python3 dev.py test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec python3 dev\.py test$", ci, flags=re.M)


def test_dev_py_rejects_unknown_command() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "dev.py"), "nonsense"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "python3 dev.py book" in result.stdout


def test_no_static_folder() -> None:
    # Jupyter Book 1 injects every js/css under _static/ into every page.
    assert not (ROOT / "_static").exists()
